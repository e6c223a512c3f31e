//! Head files against a plain model: frames written with [`encode_frame`]
//! read back, through [`HeadCursor`], as the points that were put in
//! ([HD1]–[HD3]); every damaged byte is found.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::storage::format::{MAGIC_HEAD, put_header};
use crate::storage::segment::Columns;

/// One frame: its time and the (id, count) pairs it holds.
type ModelFrame = (i64, Vec<(u32, u64)>);

/// Writes a head of `frames` (times increasing) and returns its bytes.
fn head_bytes(frames: &[ModelFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(&mut out, MAGIC_HEAD);
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for (time, points) in frames {
        let ids: Vec<u32> = points.iter().map(|p| p.0).collect();
        let values: Vec<u64> = points.iter().map(|p| p.1).collect();
        out.extend(encode_frame(*time, &ids, &values, |id| {
            last.get(&id).copied().unwrap_or(0)
        }));
        for &(id, v) in points {
            last.insert(id, v);
        }
    }
    out
}

fn open(dir: &Path, bytes: &[u8]) -> crate::error::Result<Head> {
    let path = dir.join(head_file_name(3));
    std::fs::write(&path, bytes).unwrap();
    Head::open(&path, 3, bytes.len() as u64)
}

/// Every point of the head, by series, read through a cursor.
fn read_all(head: &Head, ids: std::ops::Range<u32>) -> BTreeMap<u32, Vec<(i64, u64)>> {
    read_ids(HeadCursor::new(head), ids)
}

/// The points of the series `ids` (increasing), read through `cursor`.
fn read_ids(
    mut cursor: HeadCursor<'_>,
    ids: impl IntoIterator<Item = u32>,
) -> BTreeMap<u32, Vec<(i64, u64)>> {
    let mut out = BTreeMap::new();
    for id in ids {
        if let Some(entry) = cursor.seek(id).unwrap() {
            let (mut t, mut v) = (Vec::new(), Vec::<u64>::new());
            cursor.decode(id, Columns::BOTH, &mut t, &mut v).unwrap();
            assert_eq!(entry.points as usize, t.len());
            assert_eq!((entry.t_min, entry.t_max), (t[0], *t.last().unwrap()));
            assert_eq!(entry.v_min, *v.iter().min().unwrap());
            assert_eq!(entry.v_max, *v.iter().max().unwrap());
            out.insert(id, t.into_iter().zip(v).collect());
        }
    }
    out
}

fn model(frames: &[ModelFrame]) -> BTreeMap<u32, Vec<(i64, u64)>> {
    let mut out: BTreeMap<u32, Vec<(i64, u64)>> = BTreeMap::new();
    for (time, points) in frames {
        for &(id, v) in points {
            out.entry(id).or_default().push((*time, v));
        }
    }
    out
}

/// Frames over ids near `base`, dense enough for [`frame_fits`], with
/// counts that mostly repeat the frame before, as snapshots do.
fn frames_strategy() -> impl Strategy<Value = Vec<ModelFrame>> {
    (
        0u32..3000,
        prop::collection::vec(
            (
                1i64..5,
                1u32..2600,
                prop::collection::vec((any::<bool>(), 0u64..4, any::<u64>()), 2600),
                any::<bool>(),
            ),
            1..6,
        ),
    )
        .prop_map(|(base, frames)| {
            let mut time = 1_550_016_000_000;
            let mut counts = vec![0u64; 2600];
            let mut out = Vec::new();
            for (step, len, cells, sparse) in frames {
                time += step * 3_600_000;
                let mut points = Vec::new();
                for (k, (keep, how, r)) in cells.into_iter().take(len as usize).enumerate() {
                    // Some frames hold every third id only (one metric of
                    // three), whose absent ids are a bitmap.
                    if (!keep && k % 3 == 0) || (sparse && k % 3 != 0) {
                        continue;
                    }
                    counts[k] = match how {
                        0 => r >> 1,
                        1 => counts[k].saturating_add(r % 7),
                        _ => counts[k],
                    };
                    points.push((base + k as u32, counts[k]));
                }
                if !points.is_empty() {
                    out.push((time, points));
                }
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn frames_read_back_as_written(frames in frames_strategy()) {
        prop_assume!(!frames.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let head = open(dir.path(), &head_bytes(&frames)).unwrap();
        let expected = model(&frames);
        prop_assert_eq!(read_all(&head, 0..6000), expected.clone());
        let points: usize = expected.values().map(Vec::len).sum();
        prop_assert_eq!(head.verify().unwrap(), points as u64);
        // [HD3]: what the next frame is coded against.
        let last = head.last_values(0, 6000).unwrap();
        for (id, pts) in &expected {
            prop_assert_eq!(last[*id as usize], pts.last().unwrap().1);
        }
        prop_assert_eq!(last.len(), 6000);
        for (id, &v) in last.iter().enumerate() {
            if !expected.contains_key(&(id as u32)) {
                prop_assert_eq!(v, 0, "id {}", id);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A cursor told which series will be read ([`HeadCursor::expect`])
    /// decodes only those, and still answers every seek as the plain model
    /// does: the series it was told of, and those it was not (every
    /// `surprise`-th of the others), which decode their chunk again.
    #[test]
    fn a_cursor_told_what_to_expect_reads_the_same(
        frames in frames_strategy(),
        stride in 1u32..5,
        offset in 0u32..4,
        surprise in 2u32..40,
    ) {
        prop_assume!(!frames.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let head = open(dir.path(), &head_bytes(&frames)).unwrap();
        let told: Vec<u32> = (0..6000).filter(|id| id % stride == offset % stride).collect();
        let asked: Vec<u32> = (0..6000)
            .filter(|id| id % stride == offset % stride || id % surprise == 0)
            .collect();
        let mut cursor = HeadCursor::new(&head);
        cursor.expect(&told);
        let expected: BTreeMap<u32, Vec<(i64, u64)>> = model(&frames)
            .into_iter()
            .filter(|(id, _)| asked.contains(id))
            .collect();
        prop_assert_eq!(read_ids(cursor, asked.iter().copied()), expected);
    }
}

#[test]
fn frames_need_dense_ids() {
    // [HD3]
    assert!(frame_fits(&[0, 1, 2]));
    assert!(frame_fits(&[0, 3, 6]), "one metric of three");
    assert!(frame_fits(&[1030, 1035]), "the range starts at 1024");
    assert!(!frame_fits(&[1040]), "the range starts at 1024");
    assert!(frame_fits(&[1024, 1030, 1055]));
    assert!(!frame_fits(&[1024, 1030, 1080]));
    assert!(!frame_fits(&[0, 5000]));
    assert!(!frame_fits(&[]));
}

#[test]
fn an_unmoved_snapshot_costs_next_to_nothing() {
    // A second frame where no count moved is a zero block per 256 ids.
    let ids: Vec<u32> = (0..100_000).collect();
    let values: Vec<u64> = ids.iter().map(|&i| 1_000 + u64::from(i) * 37).collect();
    let first = encode_frame(0, &ids, &values, |_| 0);
    let second = encode_frame(1, &ids, &values, |id| values[id as usize]);
    assert!(first.len() > 200_000, "{}", first.len());
    // Per chunk of 1024 ids: a column end, a checksum, v_0 and four zero
    // blocks, 13 bytes (0.013 byte an id).
    assert!(second.len() < 1_400, "{}", second.len());
}

#[test]
fn every_damaged_byte_is_found() {
    // [HD1] [HD2] [I4]
    // Frames 0 to 2 list their absent ids, frame 3 (one id in three) is a
    // bitmap.
    let frames: Vec<ModelFrame> = (0..4)
        .map(|f| {
            let points = (0..40u32)
                .filter(|i| if f == 3 { i % 3 == 0 } else { i % 7 != f })
                .map(|i| (i, u64::from(i) * 10 + f as u64))
                .collect();
            (1_000 + i64::from(f), points)
        })
        .collect();
    let bytes = head_bytes(&frames);
    let dir = tempfile::tempdir().unwrap();
    assert!(open(dir.path(), &bytes).unwrap().verify().is_ok());
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x41;
        let found = open(dir.path(), &damaged).and_then(|h| h.verify());
        assert!(found.is_err(), "a flip at byte {at} went unnoticed");
    }
    // A cut anywhere but between frames is found when opened.
    let ends: Vec<usize> = {
        let mut at = 16;
        let mut ends = vec![];
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            at += FRAME_HEADER_LEN + len;
            ends.push(at);
        }
        ends
    };
    for cut in 17..bytes.len() {
        let result = open(dir.path(), &bytes[..cut]);
        assert_eq!(result.is_ok(), ends.contains(&cut), "cut at {cut}");
    }
}

#[test]
fn a_forged_id_count_is_refused_before_anything_is_allocated() {
    // [HD2]: a frame claiming 2^32 - 1024 ids in a few bytes.
    let mut bytes = Vec::new();
    put_header(&mut bytes, MAGIC_HEAD);
    let body = [0u8, 1, 0];
    let mut header = Vec::new();
    header.extend_from_slice(&(body.len() as u32).to_le_bytes());
    header.extend_from_slice(&0i64.to_le_bytes());
    header.extend_from_slice(&1024u32.to_le_bytes());
    header.extend_from_slice(&(u32::MAX - 1023).to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&2u32.to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(&body[..2]).to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    bytes.extend(header);
    bytes.extend(body);
    let dir = tempfile::tempdir().unwrap();
    let err = open(dir.path(), &bytes).unwrap_err().to_string();
    assert!(err.contains("more than a 3-byte body can hold"), "{err}");
}
