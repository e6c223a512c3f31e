//! `database_files`: a small valid database with one of its files replaced
//! by the fuzzer's bytes, then opened, queried, verified and written to.
//!
//! Input: byte 0 picks the file (`MANIFEST`, the segments, `series.dict`, in
//! name order), byte 1 how to plant the rest as that file's new contents:
//!
//! - 0, raw: as they are, so nearly every change stops at a checksum;
//! - 1, forged: with every CRC32 recomputed where docs/format.md puts it
//!   (header, manifest, dictionary frames, group regions, directory,
//!   footer), so that the checks past the checksums are reached;
//! - 2, forged and agreed: as 1, and the manifest is also rewritten to
//!   agree with the new file (a segment's length, points and time range; the
//!   dictionary's committed length and counts), so that the checks past the
//!   manifest's are reached too.
//!
//! The seeds (see [`seeds`]) are the database's own files, so the fuzzer
//! starts from valid files and mutates them. Checked:
//!
//! - nothing panics, and no single allocation exceeds a bound set by the
//!   size of the files (64 MiB plus 8 KiB per byte: a point can cost as
//!   little as 1/256 byte, [C2], and takes 16 bytes decoded);
//! - what reads succeed give is plausible: times increasing, counts within
//!   2^63 - 1;
//! - a database that verifies clean opens, reads whole, has the points its
//!   manifest counts, and answers a query consistently with its points;
//!   a commit on it keeps it clean and adds exactly the new point;
//! - a commit that succeeds on any database reads back its point;
//! - a file planted unchanged changes nothing.

use std::sync::LazyLock;

use tally::{Db, Options, Point, TimeRange, Value};

use crate::common::{self, Files};

/// The template database: three commits (so three segments, as merging is
/// off), a dictionary of three frames, and a manifest. Besides the sample
/// day, a long noisy series (PFOR blocks with exceptions, several blocks),
/// a long steady one with a few moves (sparse blocks), and short and
/// irregular ones (both time modes, with exceptions).
static TEMPLATE: LazyLock<Files> = LazyLock::new(|| {
    let dir = common::tempdir();
    let db = Db::open_with(dir.path(), Options::default().auto_merge(false))
        .expect("the template database opens");
    let mut w = db.writer().expect("the template database's writer");
    const MINUTE: i64 = 60_000;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    common::append_sample(&mut w, 0..8);
    for i in 0..600 {
        // xorshift: deterministic noise, so the seeds do not change.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        w.append("noisy", "followers", common::T0 + i * MINUTE, state % 5_000)
            .expect("a template point");
    }
    w.commit().expect("the template commits");
    common::append_sample(&mut w, 8..16);
    for i in 0..600 {
        let count = 50_000 + if i % 97 == 0 { i as u64 } else { 0 };
        w.append("steady", "following", common::T0 + i * MINUTE, count)
            .expect("a template point");
    }
    w.commit().expect("the template commits");
    common::append_sample(&mut w, 16..24);
    w.append("single", "followers", common::T0, 1)
        .expect("a template point");
    w.append("pair", "followers", common::T0, 10)
        .expect("a template point");
    w.append("pair", "followers", common::T0 + 7 * MINUTE, 9)
        .expect("a template point");
    for (i, gap) in [1, 1, 1, 5, 1, 1, 30, 1, 1, 1, 2].iter().enumerate() {
        let t = common::T0 + 60 * MINUTE * gap + i as i64 * MINUTE;
        w.append("irregular", "following", t, 100 - i as u64)
            .expect("a template point");
    }
    w.commit().expect("the template commits");
    drop(w);
    common::read_files(dir.path())
});

/// The queries run on every database that opens.
const QUERIES: [&str; 6] = [
    "count(followers)",
    "followers",
    "drop(followers, 5%, 1h)",
    "recovered_within(drop(followers, 5%, 1h), 1d)",
    "summarize(drop(following, 1, 1h), 1h)",
    "latest(resample(following, 6h))",
];

/// The point every check tries to commit.
const NEW: (&str, &str, Point) = (
    "fuzz_new",
    "followers",
    Point {
        time: common::T0 + 30 * common::HOUR,
        count: 123,
    },
);

/// The seed inputs: every file of the template, in every mode.
#[allow(dead_code)] // Only tests/fuzz_corpus.rs writes and replays them.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (i, (_, bytes)) in TEMPLATE.iter().enumerate() {
        for mode in 0..3u8 {
            let mut seed = vec![i as u8, mode];
            seed.extend_from_slice(bytes);
            seeds.push(seed);
        }
    }
    seeds
}

pub fn check(data: &[u8]) {
    let [which, mode, payload @ ..] = data else {
        return;
    };
    let template = &*TEMPLATE;
    let which = usize::from(*which) % template.len();
    let mut files = template.clone();
    files[which].1 = payload.to_vec();
    match mode % 3 {
        0 => {}
        1 => forge(&mut files, which, false),
        _ => forge(&mut files, which, true),
    }
    let unchanged = files == *template;
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let dir = common::tempdir();
    let db_dir = dir.path().join("db");
    common::write_files(&db_dir, &files);
    let _limit = crate::alloc_limit::limit((64 << 20) + 8192 * bytes);
    if SKIP_DECODE_REGULAR_RESERVE && regular_column_claims_too_many(&files) {
        return;
    }
    let skip_stats = SKIP_STATS_POINTS_OVERFLOW && manifest_points_overflow(&files);
    let skip_commit_check = SKIP_ORPHAN_SERIES_IDS && segments_hold_undefined_ids(&files);
    exercise(&db_dir, unchanged, skip_stats, skip_commit_check);
}

/// A segment may hold series ids the dictionary does not define (its
/// committed frames end before them, with counts in the manifest to
/// match): `Db::verify` reports nothing, reads never show those points,
/// and the next new series the writer defines takes the first such id and
/// with it the orphaned points, so a commit of one point makes a series
/// of many appear
/// (tests/fuzz/corpus/database_files/orphan-series-id-reused-by-commit).
/// Until that is fixed this target does not compare what such a database
/// holds after its commit, so that fuzzing goes on to find other things.
/// Fixed on main (f9f63fa, [M3]: opening refuses a segment whose footer
/// names a series the manifest does not commit), so the switch is off.
const SKIP_ORPHAN_SERIES_IDS: bool = false;

/// Whether a segment's footer names a last series id at or past the
/// manifest's series count.
fn segments_hold_undefined_ids(files: &Files) -> bool {
    let Some(series) = files
        .iter()
        .find(|(n, _)| n == "MANIFEST")
        .and_then(|(_, m)| get_u32(m, 40))
    else {
        return false;
    };
    files
        .iter()
        .filter(|(name, _)| name.ends_with(".tseg"))
        .filter_map(|(_, b)| get_u32(b, b.len().checked_sub(72 - 52)?))
        .any(|last| last >= series)
}

/// `decode_regular` (src/storage/encoding/times.rs) reserves the point
/// count of the series' index entry once the time column's exceptions
/// check out, and a regular column of three bytes describes any count: a
/// damaged index entry whose checksum holds makes it reserve up to
/// 2^32 - 1 times 8 bytes before the value column, far too short for that
/// many points, is read
/// (tests/fuzz/corpus/database_files/decode-regular-reserves-index-count).
/// Another engineer is fixing it; until that lands this target skips inputs
/// with a regular (mode 0) time column whose count no value column of its
/// length can hold, so that fuzzing goes on to find other things. The fix landed
/// (f9f63fa, [S4]) and the switch is off.
const SKIP_DECODE_REGULAR_RESERVE: bool = false;

/// Whether an index entry of a segment has a mode 0 time column and more
/// points than its value column can hold: at least one byte for the first
/// value and one per block of 256 deltas (docs/format.md, [C2]), so at most
/// 256 points per byte.
fn regular_column_claims_too_many(files: &Files) -> bool {
    files
        .iter()
        .filter(|(name, _)| name.ends_with(".tseg"))
        .any(|(_, b)| segment_claims_too_many(b).unwrap_or(false))
}

fn segment_claims_too_many(b: &[u8]) -> Option<bool> {
    let footer = b.len().checked_sub(72)?;
    let directory = usize::try_from(get_u64(b, footer)?).ok()?;
    let groups = get_u32(b, footer + 8)? as usize;
    for g in 0..groups.min(b.len() / 72) {
        // Inside the file, so that the offsets below cannot overflow.
        let entry = directory
            .checked_add(g.checked_mul(72)?)
            .filter(|&e| e <= b.len())?;
        let times_len = get_u32(b, entry + 12)? as usize;
        let values_len = get_u32(b, entry + 16)? as usize;
        let index_len = get_u32(b, entry + 20)? as usize;
        let times = usize::try_from(get_u64(b, entry + 24)?).ok()?;
        let index = times.checked_add(times_len)?.checked_add(values_len)?;
        let region = b.get(index..index.checked_add(index_len)?)?;
        let mut pos = 0;
        let mut column = times;
        while pos < region.len() {
            let mut fields = [0u64; 8];
            for field in &mut fields {
                *field = varint(region, &mut pos)?;
            }
            let [_, count, _, _, _, _, t_len, v_len] = fields;
            if b.get(column) == Some(&0) && count > 256u64.saturating_mul(v_len).saturating_add(1) {
                return Some(true);
            }
            column = column.checked_add(usize::try_from(t_len).ok()?)?;
        }
    }
    Some(false)
}

/// `Db::stats` adds up the point counts of the manifest's segment entries
/// with `+` (src/db/mod.rs), which panics in a debug build, and wraps in a
/// release one, when a manifest whose checksum holds has counts summing past
/// `u64::MAX`; opening does not compare an entry's count with its segment
/// (tests/fuzz/corpus/database_files/stats-points-sum-overflow). Until that
/// is fixed this target does not call `stats` on such a manifest, so that
/// fuzzing goes on to find other things. The fix landed (f9f63fa, [M9]) and the switch is off.
const SKIP_STATS_POINTS_OVERFLOW: bool = false;

/// Whether the point counts of the manifest's entries sum past `u64::MAX`.
fn manifest_points_overflow(files: &Files) -> bool {
    let Some((_, m)) = files.iter().find(|(n, _)| n == "MANIFEST") else {
        return false;
    };
    let count = get_u32(m, 44).unwrap_or(0) as usize;
    (0..count)
        .map_while(|k| get_u64(m, 56 + 40 * k + 16))
        .try_fold(0u64, u64::checked_add)
        .is_none()
}

fn exercise(dir: &std::path::Path, unchanged: bool, skip_stats: bool, skip_commit_check: bool) {
    let verified = Db::verify(dir);
    let clean = matches!(&verified, Ok(report) if report.is_clean());
    let opened = Db::open_with(dir, Options::default().create(false));
    let db = match opened {
        Ok(db) => db,
        Err(e) => {
            assert!(!clean, "verify found nothing wrong, but open failed: {e}");
            return;
        }
    };
    let stats = if skip_stats {
        Err(tally::Error::Invalid("stats skipped".into()))
    } else {
        db.stats()
    };
    for name in db.metrics() {
        assert!(
            !name.is_empty()
                && name.len() <= 255
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit(),
            "a metric name breaks [D1]: {name:?}"
        );
    }
    for name in db.accounts() {
        assert!(
            !name.is_empty() && name.len() <= 4096,
            "an account name breaks [D1]: {name:?}"
        );
    }
    let mut answers = Vec::new();
    for query in QUERIES {
        let answer = db.query(query);
        if let Ok(table) = &answer {
            for row in table.rows() {
                for value in row {
                    // Times print whatever their value.
                    let _ = value.to_string();
                }
            }
        }
        answers.push(answer);
    }
    let dump = common::dump(&db);
    if let Ok(dump) = &dump {
        common::check_plausible(dump);
    }
    if clean {
        let report = verified.as_ref().expect("clean implies Ok");
        let dump = match &dump {
            Ok(dump) => dump,
            Err(e) => panic!("verify found nothing wrong, but reading failed: {e}"),
        };
        let stats = match &stats {
            Ok(stats) => stats,
            Err(e) => panic!("verify found nothing wrong, but stats failed: {e}"),
        };
        assert_eq!(report.points, stats.points, "verify and the manifest");
        let stored: usize = dump.values().map(Vec::len).sum();
        assert!(
            stored as u64 <= stats.points,
            "more points read than stored"
        );
        let followers: usize = dump
            .iter()
            .filter(|((_, m), _)| m == "followers")
            .map(|(_, p)| p.len())
            .sum();
        match &answers[0] {
            Ok(table) => assert_eq!(
                table.rows(),
                &[vec![Value::Int(followers as i64)]],
                "count(followers) disagrees with the points"
            ),
            Err(e) => panic!("verify found nothing wrong, but a query failed: {e}"),
        }
    }
    if unchanged {
        assert!(clean, "the template does not verify clean: {verified:?}");
        assert!(
            dump.as_ref().ok() == Some(&template_dump()),
            "the template reads differently"
        );
    }

    // A commit on whatever opened.
    let Ok(mut writer) = db.writer() else {
        return;
    };
    let (account, metric, point) = NEW;
    if writer
        .append(account, metric, point.time, point.count)
        .is_err()
    {
        return;
    }
    let committed = writer.commit();
    drop(writer);
    if committed.is_err() {
        return;
    }
    if let Ok(points) = db.points(account, metric, TimeRange::ALL) {
        assert!(
            points.contains(&point),
            "the committed point reads back as {points:?}"
        );
    }
    if clean && !skip_commit_check {
        let report = Db::verify(dir).expect("verify runs");
        assert!(
            report.is_clean(),
            "a commit damaged a clean database: {:?}",
            report.problems
        );
        let mut expected = dump.expect("read above");
        expected
            .entry((account.to_string(), metric.to_string()))
            .or_default()
            .push(point);
        let reopened = Db::open(dir).expect("a clean database reopens");
        let after = common::dump(&reopened).expect("a clean database reads");
        let differ: Vec<_> = after
            .iter()
            .filter(|(key, points)| expected.get(*key) != Some(*points))
            .map(|(key, _)| key)
            .chain(expected.keys().filter(|key| !after.contains_key(*key)))
            .map(|key| (key, expected.get(key), after.get(key)))
            .collect();
        assert!(
            differ.is_empty(),
            "the commit changed more than its point (expected, found): {differ:?}"
        );
    }
}

/// What the template reads as.
fn template_dump() -> common::Dump {
    static DUMP: LazyLock<common::Dump> = LazyLock::new(|| {
        let dir = common::tempdir();
        common::write_files(dir.path(), &TEMPLATE);
        common::dump(&Db::open(dir.path()).expect("the template opens"))
            .expect("the template reads")
    });
    DUMP.clone()
}

fn get_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn get_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = at
        .checked_add(bytes.len())
        .and_then(|end| b.get_mut(at..end))
    {
        slot.copy_from_slice(bytes);
    }
}

/// The CRC32 of `b[start..end]`, when that is inside `b`.
fn crc(b: &[u8], start: usize, end: usize) -> Option<u32> {
    b.get(start..end).map(crc32fast::hash)
}

/// Recomputes the checksums of file `which` of `files`, and with `agree`
/// also makes the manifest agree with it.
fn forge(files: &mut Files, which: usize, agree: bool) {
    let (name, bytes) = &mut files[which];
    let name = name.clone();
    // Every file: the header's CRC of bytes 0..12 at 12..16.
    if let Some(c) = crc(bytes, 0, 12) {
        put(bytes, 12, &c.to_le_bytes());
    }
    if name == "MANIFEST" {
        seal_manifest(bytes);
        return;
    }
    let mut facts = ManifestFacts::default();
    if name == "series.dict" {
        facts = forge_dictionary(bytes);
    } else if let Some(number) = name
        .strip_prefix("seg-")
        .and_then(|n| n.strip_suffix(".tseg"))
        .and_then(|n| n.parse::<u64>().ok())
    {
        facts = forge_segment(bytes, number);
    }
    if !agree {
        return;
    }
    let len = files[which].1.len() as u64;
    let Some(manifest) = files.iter_mut().find(|(n, _)| n == "MANIFEST") else {
        return;
    };
    let m = &mut manifest.1;
    match facts {
        ManifestFacts::Dictionary {
            metrics,
            accounts,
            series,
        } => {
            put(m, 24, &len.to_le_bytes());
            put(m, 32, &metrics.to_le_bytes());
            put(m, 36, &accounts.to_le_bytes());
            put(m, 40, &series.to_le_bytes());
        }
        ManifestFacts::Segment {
            number,
            footer: found,
        } => {
            let count = get_u32(m, 44).unwrap_or(0) as usize;
            for k in 0..count {
                let entry = 56 + 40 * k;
                if get_u64(m, entry) != Some(number) {
                    continue;
                }
                put(m, entry + 8, &len.to_le_bytes());
                if let Some((points, t_min, t_max)) = found {
                    put(m, entry + 16, &points.to_le_bytes());
                    put(m, entry + 24, &t_min.to_le_bytes());
                    put(m, entry + 32, &t_max.to_le_bytes());
                }
            }
        }
        ManifestFacts::None => return,
    }
    seal_manifest(m);
}

/// What a forged file tells the manifest.
#[derive(Default)]
enum ManifestFacts {
    #[default]
    None,
    /// The counts of names the dictionary's whole frames define.
    Dictionary {
        metrics: u32,
        accounts: u32,
        series: u32,
    },
    /// A segment's number, and its footer's points and time range.
    Segment {
        number: u64,
        footer: Option<(u64, i64, i64)>,
    },
}

/// The manifest's CRC of everything before its last 4 bytes.
fn seal_manifest(m: &mut [u8]) {
    if let Some(c) = crc(m, 0, 12) {
        put(m, 12, &c.to_le_bytes());
    }
    if m.len() >= 20 {
        let end = m.len() - 4;
        if let Some(c) = crc(m, 0, end) {
            put(m, end, &c.to_le_bytes());
        }
    }
}

/// Recomputes each whole frame's CRC (after its length) and counts what the
/// frames define.
fn forge_dictionary(b: &mut [u8]) -> ManifestFacts {
    let (mut metrics, mut accounts, mut series) = (0u32, 0u32, 0u32);
    let mut pos = 16;
    while let Some(len) = get_u32(b, pos) {
        let start = pos + 8;
        let Some(end) = start.checked_add(len as usize).filter(|&e| e <= b.len()) else {
            break;
        };
        if let Some(c) = crc(b, start, end) {
            put(b, pos + 4, &c.to_le_bytes());
        }
        // Count the entries: kinds 1 and 2 are a varint length and a name,
        // kind 3 two varints (docs/format.md, series.dict).
        let payload = &b[start..end];
        let mut i = 0;
        while let Some(&kind) = payload.get(i) {
            i += 1;
            let Some(first) = varint(payload, &mut i) else {
                break;
            };
            match kind {
                1 | 2 => {
                    i = i.saturating_add(usize::try_from(first).unwrap_or(usize::MAX));
                    if kind == 1 {
                        metrics = metrics.wrapping_add(1);
                    } else {
                        accounts = accounts.wrapping_add(1);
                    }
                }
                3 => {
                    if varint(payload, &mut i).is_none() {
                        break;
                    }
                    series = series.wrapping_add(1);
                }
                _ => break,
            }
        }
        pos = end;
    }
    ManifestFacts::Dictionary {
        metrics,
        accounts,
        series,
    }
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7F).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Recomputes a segment's region CRCs (in each 72-byte directory entry),
/// the directory's and the footer's (in the 72-byte footer).
fn forge_segment(b: &mut [u8], number: u64) -> ManifestFacts {
    let Some(footer) = b.len().checked_sub(72).filter(|&f| f >= 16) else {
        return ManifestFacts::Segment {
            number,
            footer: None,
        };
    };
    let directory = get_u64(b, footer).and_then(|d| usize::try_from(d).ok());
    let groups = get_u32(b, footer + 8).map(|g| g as usize);
    if let (Some(directory), Some(groups)) = (directory, groups)
        && let Some(end) = groups
            .checked_mul(72)
            .and_then(|l| directory.checked_add(l))
            .filter(|&e| e <= footer)
    {
        for g in 0..groups {
            let entry = directory + 72 * g;
            let lengths = [12, 16, 20].map(|at| get_u32(b, entry + at).map(|l| l as usize));
            let Some(mut start) = get_u64(b, entry + 24).and_then(|o| usize::try_from(o).ok())
            else {
                continue;
            };
            for (k, length) in lengths.into_iter().enumerate() {
                let Some(stop) = length.and_then(|l| start.checked_add(l)) else {
                    break;
                };
                if let Some(c) = crc(b, start, stop) {
                    put(b, entry + 56 + 4 * k, &c.to_le_bytes());
                }
                start = stop;
            }
        }
        if let Some(c) = crc(b, directory, end) {
            put(b, footer + 12, &c.to_le_bytes());
        }
    }
    if let Some(c) = crc(b, footer, footer + 68) {
        put(b, footer + 68, &c.to_le_bytes());
    }
    let facts = (
        get_u64(b, footer + 24),
        get_u64(b, footer + 32),
        get_u64(b, footer + 40),
    );
    ManifestFacts::Segment {
        number,
        footer: match facts {
            (Some(points), Some(t_min), Some(t_max)) => Some((points, t_min as i64, t_max as i64)),
            _ => None,
        },
    }
}
