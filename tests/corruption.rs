//! Damage to every kind of file ([I4], [H1], [M1], [S1], [DI2]): each
//! flipped byte and each truncation of a committed file is reported by
//! `verify` and makes a query fail with an error that names the file —
//! never a panic and never a wrong answer.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tally::{Db, Error, Options};

const T0: i64 = 1_550_052_000_000;
const HOUR: i64 = 3_600_000;

/// A database with three commits: three segments, a dictionary of three
/// frames and a manifest, all on one metric so that one query reads all.
/// Merging is off so that the three segments stay.
fn build(dir: &Path) {
    let db = Db::open_with(dir, Options::default().auto_merge(false)).unwrap();
    let mut w = db.writer().unwrap();
    for commit in 0..3i64 {
        for a in 0..40u64 {
            for h in 0..6i64 {
                let t = T0 + (commit * 6 + h) * HOUR;
                w.append(
                    &format!("acct{a:02}_{commit}"),
                    "followers",
                    t,
                    a * 100 + h as u64,
                )
                .unwrap();
            }
        }
        w.commit().unwrap();
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "LOCK"))
        .collect();
    files.sort();
    files
}

fn query_all(dir: &Path) -> Result<usize, Error> {
    let db = Db::open(dir)?;
    Ok(db.query("count(followers)")?.len())
}

#[test]
fn every_flipped_byte_of_every_file_is_reported() {
    let good = tempfile::tempdir().unwrap();
    build(good.path());
    assert!(Db::verify(good.path()).unwrap().is_clean());
    let names: Vec<String> = files(good.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".tseg")).count(),
        3,
        "{names:?}"
    );
    assert!(names.contains(&"MANIFEST".to_string()) && names.contains(&"series.dict".to_string()));

    flip_every_byte(good.path(), &names, &names);
}

#[test]
fn every_flipped_byte_of_a_head_and_its_manifest_is_reported() {
    // [HD1], [HD2], [M12]: two snapshot commits after the bulk ones make a
    // head of two frames, and a version-3 manifest.
    let good = tempfile::tempdir().unwrap();
    build(good.path());
    {
        let db = Db::open_with(good.path(), Options::default().auto_merge(false)).unwrap();
        let mut w = db.writer().unwrap();
        for hour in [30, 31] {
            for a in 0..40u64 {
                let t = T0 + hour * HOUR;
                w.append(
                    &format!("acct{a:02}_0"),
                    "followers",
                    t,
                    a * 7 + hour as u64 % 3,
                )
                .unwrap();
            }
            w.commit().unwrap();
        }
    }
    assert!(Db::verify(good.path()).unwrap().is_clean());
    let names: Vec<String> = files(good.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let flipped: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(".thead") || *n == "MANIFEST")
        .cloned()
        .collect();
    assert_eq!(flipped.len(), 2, "{names:?}");
    flip_every_byte(good.path(), &names, &flipped);
}

/// Flips bytes of each file of `flipped` in a copy of the database at
/// `good` (whose files are `names`), and checks that `verify` and a query
/// both report the damage, naming the file.
fn flip_every_byte(good: &Path, names: &[String], flipped: &[String]) {
    let bad = tempfile::tempdir().unwrap();
    for name in flipped {
        let original = std::fs::read(good.join(name)).unwrap();
        // Every byte of the small files; a stride through the segments keeps
        // the test quick (segment.rs flips every byte of a segment).
        let stride = if name.ends_with(".tseg") { 7 } else { 1 };
        for i in (0..original.len()).step_by(stride) {
            for n in names {
                std::fs::copy(good.join(n), bad.path().join(n)).unwrap();
            }
            let mut damaged = original.clone();
            damaged[i] ^= 0x20;
            std::fs::write(bad.path().join(name), &damaged).unwrap();
            let report = Db::verify(bad.path()).unwrap();
            assert!(
                report.problems.iter().any(|p| p.contains(name.as_str())),
                "{name} byte {i}: verify said {:?}",
                report.problems
            );
            match query_all(bad.path()) {
                Err(e) => assert!(
                    e.to_string().contains(name.as_str()),
                    "{name} byte {i}: {e}"
                ),
                Ok(rows) => panic!("{name} byte {i}: the query answered ({rows} rows)"),
            }
        }
    }
}

#[test]
fn truncated_files_are_reported_by_the_cli() {
    let good = tempfile::tempdir().unwrap();
    build(good.path());
    let names: Vec<String> = files(good.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        let original = std::fs::read(good.path().join(name)).unwrap();
        for cut in [0, 8, original.len() / 2, original.len() - 1] {
            let bad = tempfile::tempdir().unwrap();
            for n in &names {
                std::fs::copy(good.path().join(n), bad.path().join(n)).unwrap();
            }
            std::fs::write(bad.path().join(name), &original[..cut]).unwrap();
            let out = Command::cargo_bin("tally")
                .unwrap()
                .args(["--db", bad.path().to_str().unwrap(), "verify"])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(1), "{name} cut at {cut}: {stdout}");
            assert!(
                stdout.contains(name.as_str()),
                "{name} cut at {cut}: {stdout}"
            );
            let out = Command::cargo_bin("tally")
                .unwrap()
                .args([
                    "--db",
                    bad.path().to_str().unwrap(),
                    "query",
                    "count(followers)",
                ])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name} cut at {cut}: {stderr}");
            assert!(
                stderr.starts_with("tally: ") && stderr.contains(name.as_str()),
                "{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

#[test]
fn a_clean_database_verifies_with_exit_zero() {
    let good = tempfile::tempdir().unwrap();
    build(good.path());
    let out = Command::cargo_bin("tally")
        .unwrap()
        .args(["--db", good.path().to_str().unwrap(), "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: 3 segments, 720 points"));
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The 255-byte segment of issue 10, built byte by byte from
/// docs/format.md: one series claiming 2^32 − 1 points, one millisecond
/// apart (a regular time column, `00 01 00`, is valid for any count), with
/// a 76-byte value column; every checksum holds and every count agrees.
fn forged_segment(t_min: i64, points: u64) -> Vec<u8> {
    let header = |magic: &[u8]| {
        let mut h = magic.to_vec();
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        h
    };
    let t_max = t_min + points as i64 - 1;
    let times = [0u8, 1, 0];
    let mut values = vec![5u8];
    values.resize(76, 0);
    let mut index = Vec::new();
    for field in [0, points, 0, points - 1, 5, 0, 3, 76] {
        put_varint(&mut index, field);
    }
    let mut file = header(b"TALLYSEG");
    file.extend_from_slice(&times);
    file.extend_from_slice(&values);
    file.extend_from_slice(&index);
    let mut directory = Vec::new();
    for v in [0u32, 0, 1, 3, 76, index.len() as u32] {
        directory.extend_from_slice(&v.to_le_bytes());
    }
    directory.extend_from_slice(&16u64.to_le_bytes());
    directory.extend_from_slice(&t_min.to_le_bytes());
    directory.extend_from_slice(&t_max.to_le_bytes());
    directory.extend_from_slice(&points.to_le_bytes());
    for region in [&times[..], &values, &index] {
        directory.extend_from_slice(&crc32fast::hash(region).to_le_bytes());
    }
    directory.extend_from_slice(&0u32.to_le_bytes());
    let mut footer = Vec::new();
    footer.extend_from_slice(&(file.len() as u64).to_le_bytes());
    footer.extend_from_slice(&1u32.to_le_bytes());
    footer.extend_from_slice(&crc32fast::hash(&directory).to_le_bytes());
    footer.extend_from_slice(&1u64.to_le_bytes());
    footer.extend_from_slice(&points.to_le_bytes());
    footer.extend_from_slice(&t_min.to_le_bytes());
    footer.extend_from_slice(&t_max.to_le_bytes());
    footer.extend_from_slice(&0u32.to_le_bytes());
    footer.extend_from_slice(&0u32.to_le_bytes());
    footer.extend_from_slice(b"TALLYEND");
    footer.extend_from_slice(&1u16.to_le_bytes());
    footer.extend_from_slice(&0u16.to_le_bytes());
    let crc = crc32fast::hash(&footer);
    footer.extend_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(&directory);
    file.extend_from_slice(&footer);
    file
}

#[cfg(unix)]
#[test]
fn a_segment_claiming_billions_of_points_is_damage_not_an_allocation() {
    // [S4], [M7]: a database whose one segment is the forged 255-byte
    // file, the manifest entry patched to agree with it (length, count,
    // times). `tally verify` and `tally query` run under a 1 GiB
    // address-space limit, so that without the rules they fail at once on
    // their 32 GiB allocation (an abort) instead of exhausting the machine;
    // with them, they report a damaged file and exit 1. Either rule is
    // enough here: the manifest's entry cannot claim more points than 255
    // bytes can hold ([M7]), nor can the segment's directory ([S4]), which
    // is the rule left for files large enough to pass [M7] (unit-tested in
    // segment.rs).
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path()).unwrap();
        let mut w = db.writer().unwrap();
        // Two times, so that the commit is a segment, not a head ([HD3]).
        w.append("x", "followers", T0, 5).unwrap();
        w.append("x", "followers", T0 + 1, 5).unwrap();
        w.commit().unwrap();
    }
    let points = u64::from(u32::MAX);
    let segment = forged_segment(T0, points);
    assert_eq!(segment.len(), 255);
    std::fs::write(dir.path().join("seg-0000000000000001.tseg"), &segment).unwrap();
    let manifest_path = dir.path().join("MANIFEST");
    let mut manifest = std::fs::read(&manifest_path).unwrap();
    assert_eq!(manifest.len(), 60 + 40, "one segment entry");
    manifest[64..72].copy_from_slice(&255u64.to_le_bytes());
    manifest[72..80].copy_from_slice(&points.to_le_bytes());
    manifest[80..88].copy_from_slice(&T0.to_le_bytes());
    manifest[88..96].copy_from_slice(&(T0 + points as i64 - 1).to_le_bytes());
    let crc = crc32fast::hash(&manifest[..96]);
    manifest[96..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&manifest_path, &manifest).unwrap();

    let tally = env!("CARGO_BIN_EXE_tally");
    for (command, stream) in [
        (&["verify"][..], "stdout"),
        (&["query", "count(followers)"][..], "stderr"),
    ] {
        let start = std::time::Instant::now();
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                "ulimit -v 1048576 && exec \"$@\"",
                "sh",
                tally,
                "--db",
            ])
            .arg(dir.path())
            .args(command)
            .env_remove("TALLY_DB")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(if stream == "stdout" {
            &out.stdout
        } else {
            &out.stderr
        })
        .into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{command:?}: {:?} {text} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            (text.contains("seg-0000000000000001.tseg") || text.contains("MANIFEST"))
                && text.contains("4294967295")
                && text.contains("can hold"),
            "{command:?}: {text}"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
    }
}

/// Rewrites the committed MANIFEST of `dir` through `edit`, then puts a
/// checksum on it that holds, as a forger would.
fn patch_manifest(dir: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let path = dir.join("MANIFEST");
    let mut bytes = std::fs::read(&path).unwrap();
    edit(&mut bytes);
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The damage every reader reports: by `Db::open`, by `Db::verify` and by
/// `tally verify` (exit 1), each naming `file` and saying `what`.
fn assert_damage_everywhere(dir: &Path, file: &str, what: &str) {
    let err = Db::open(dir).unwrap_err().to_string();
    assert!(err.contains(file) && err.contains(what), "open: {err}");
    let report = Db::verify(dir).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(file) && p.contains(what)),
        "verify: {:?}",
        report.problems
    );
    let out = Command::cargo_bin("tally")
        .unwrap()
        .args(["--db", dir.to_str().unwrap(), "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(what));
}

#[test]
fn a_manifest_at_generation_0_with_data_is_damage() {
    // [M4]: issue 10's manifest. It used to verify clean, `stats` counted
    // its points, every query returned no rows (the dictionary is ignored
    // at generation 0) and the next commit left a database that would not
    // open.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    patch_manifest(dir.path(), |m| put_u64(m, 16, 0));
    assert_damage_everywhere(
        dir.path(),
        "MANIFEST",
        "generation is 0 (nothing committed) but the committed dictionary length is",
    );
    // Nothing opens it, so no writer can start on it and no commit can
    // make it worse.
}

#[test]
fn a_manifest_entry_that_disagrees_with_its_segment_is_damage() {
    // [M3]: the footer says 240 points over the segment's hours; the
    // manifest entry of the first segment is made to say 241, and then
    // another time range.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    patch_manifest(dir.path(), |m| put_u64(m, 72, 241));
    assert_damage_everywhere(
        dir.path(),
        "seg-0000000000000001.tseg",
        "disagree with the manifest's (241 points",
    );
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    patch_manifest(dir.path(), |m| put_u64(m, 80, (T0 - HOUR) as u64));
    assert_damage_everywhere(
        dir.path(),
        "seg-0000000000000001.tseg",
        "disagree with the manifest's",
    );
}

#[test]
fn manifest_fields_that_cannot_be_are_damage_naming_the_field() {
    // [M7], [M8]: a segment entry with no points, one whose times are
    // reversed, and a next segment number past 16 digits.
    let cases: [(usize, u64, &str); 3] = [
        (72, 0, "segment 1: the point count is 0"),
        (
            88,
            (T0 - 2 * HOUR) as u64,
            "segment 1: the smallest time 1550052000000 is after the largest",
        ),
        (
            48,
            u64::MAX,
            "the next segment number 18446744073709551615 is",
        ),
    ];
    for (at, value, what) in cases {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        patch_manifest(dir.path(), |m| put_u64(m, at, value));
        assert_damage_everywhere(dir.path(), "MANIFEST", what);
    }
}

/// [DX2]: a page of series.dict under the dictionary index that no longer
/// matches its checksum fails `Db::accounts` and `Db::series`, naming the
/// file, instead of listing an empty name in place of the names on that
/// page (found by the database_files fuzz target,
/// tests/fuzz/corpus/database_files/index-damaged-page-lists-empty-account).
#[test]
fn a_damaged_dictionary_page_under_the_index_fails_the_listings() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.writer().unwrap();
    for i in 0..50u64 {
        w.append(&format!("acct{i:03}"), "followers", T0, i)
            .unwrap();
    }
    w.commit().unwrap();
    w.compact().unwrap();
    drop(w);
    drop(db);
    assert!(
        files(dir.path())
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "tdix")),
        "compaction writes the dictionary index"
    );
    let path = dir.path().join("series.dict");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(7)
        .position(|w| w == b"acct025")
        .expect("the name is in series.dict");
    bytes[at + 4] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let db = Db::open(dir.path()).unwrap();
    let err = db.accounts().unwrap_err().to_string();
    assert!(err.contains("series.dict"), "{err}");
    let db = Db::open(dir.path()).unwrap();
    let err = db.series("followers", |_| true).unwrap_err().to_string();
    assert!(err.contains("series.dict"), "{err}");
}
