//! Head files (docs/format.md, "Head file"): append-only logs of snapshot
//! frames. A frame holds one time and the counts of a dense range of
//! series, each as its difference from the same series in the frame
//! before ([HD1]–[HD4]), so that an hourly snapshot of a million accounts
//! costs a fraction of a byte a point instead of a segment's five.
//!
//! This module owns the frame's bytes: [`frame_fits`] (which commits make
//! frames, [HD3]), [`encode_frame`], and the file names; `reader` maps a
//! head and reads it as a segment of the same points.

mod reader;

pub(crate) use reader::{Head, HeadCursor};

use crate::storage::encoding::{encode_values, put_varint};
use crate::storage::files::NumberedFile;

/// Ids per chunk column: the unit a reader decodes, and a frame's first id
/// is a multiple of it ([HD1]).
pub(crate) const CHUNK_IDS: u32 = 1024;
/// Length of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 36;
/// A head takes no more frames than this ([HD3]), so that reading one id
/// of a head stays a bounded walk: a week of hourly snapshots (168 frames)
/// fits, with room for a few commits between the hours.
pub(crate) const MAX_FRAMES: usize = 256;

/// The file name of head `number`.
pub(crate) fn head_file_name(number: u64) -> String {
    NumberedFile::HEAD.name(number)
}

/// The head number of a file name, if it is one.
pub(crate) fn parse_head_file_name(name: &str) -> Option<u64> {
    NumberedFile::HEAD.parse(name)
}

/// The first id of the range of a frame whose smallest id is `id`.
pub(crate) fn range_start(id: u32) -> u32 {
    id - id % CHUNK_IDS
}

/// A frame holds a point for at least one id in this many of its range
/// ([HD3]): its absent ids cost at most a bit each, so even then a frame
/// costs at most 2 bytes a point more than its differences, against a
/// segment's 5 or 6.
pub(crate) const MIN_DENSITY: u64 = 16;

/// [HD3]: whether the series `ids` (strictly increasing, at least one) are
/// dense enough in their range to be stored as a frame: at least one id in
/// [`MIN_DENSITY`] from [`range_start`] of the first to the last has a
/// point.
pub(crate) fn frame_fits(ids: &[u32]) -> bool {
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        return false;
    };
    let range = u64::from(last - range_start(first)) + 1;
    MIN_DENSITY * ids.len() as u64 >= range
}

/// Encodes one frame ([HD1], [HD2]) of the counts `values` of the series
/// `ids` (strictly increasing, dense as [`frame_fits`] says) at `time`.
/// `previous(id)` is the id's count in the latest earlier frame of the
/// head that holds it, or 0.
pub(crate) fn encode_frame(
    time: i64,
    ids: &[u32],
    values: &[u64],
    previous: impl Fn(u32) -> u64,
) -> Vec<u8> {
    debug_assert_eq!(ids.len(), values.len());
    let (Some(&first_id), Some(&last_id)) = (ids.first(), ids.last()) else {
        return Vec::new();
    };
    let first = range_start(first_id);
    let count = last_id - first + 1;
    // The differences of every position of the range, 0 where absent.
    let mut deltas = vec![0u64; count as usize];
    let mut absent = Vec::new();
    let mut expected = first;
    for (&id, &v) in ids.iter().zip(values) {
        for missing in expected..id {
            absent.push(missing - first);
        }
        expected = id + 1;
        if let Some(slot) = deltas.get_mut((id - first) as usize) {
            *slot = v.wrapping_sub(previous(id));
        }
    }
    // The columns, with each one's end offset and checksum.
    let mut columns = Vec::new();
    let mut column_ends = Vec::new();
    let mut crcs = Vec::new();
    let mut sums = Vec::with_capacity(CHUNK_IDS as usize);
    for chunk in deltas.chunks(CHUNK_IDS as usize) {
        sums.clear();
        let mut sum = 0u64;
        for &d in chunk {
            sum = sum.wrapping_add(d);
            sums.push(sum);
        }
        let start = columns.len();
        encode_values(&sums, &mut columns);
        column_ends.push(columns.len() as u32);
        crcs.push(crc32fast::hash(columns.get(start..).unwrap_or(&[])));
    }
    // The absent ids, chunk by chunk: each chunk's positions as gaps from
    // the chunk's first position, so that a reader of one chunk reads only
    // its own ([HD2]).
    let chunks = column_ends.len();
    let mut gaps = Vec::new();
    let mut gap_ends = Vec::with_capacity(chunks);
    let mut next = absent.iter().peekable();
    for k in 0..chunks as u32 {
        let chunk_start = k * CHUNK_IDS;
        let mut expected = chunk_start;
        while let Some(&&position) = next.peek() {
            if position >= chunk_start + CHUNK_IDS {
                break;
            }
            put_varint(&mut gaps, u64::from(position - expected));
            expected = position + 1;
            next.next();
        }
        gap_ends.push(gaps.len() as u32);
    }
    // The directory: fixed-width column ends and checksums first, so that
    // column k is found without reading the others, then the absent ids
    // as lists or as a bitmap, whichever is shorter.
    let mut body = Vec::new();
    for end in column_ends {
        body.extend_from_slice(&end.to_le_bytes());
    }
    for crc in crcs {
        body.extend_from_slice(&crc.to_le_bytes());
    }
    let bitmap_len = count.div_ceil(8) as usize;
    if absent.is_empty() {
        put_varint(&mut body, 0);
    } else if 4 * chunks + gaps.len() <= bitmap_len {
        put_varint(&mut body, (absent.len() as u64) << 1);
        for end in gap_ends {
            body.extend_from_slice(&end.to_le_bytes());
        }
        body.extend_from_slice(&gaps);
    } else {
        put_varint(&mut body, (absent.len() as u64) << 1 | 1);
        let mut bitmap = vec![0u8; bitmap_len];
        for &position in &absent {
            if let Some(byte) = bitmap.get_mut((position / 8) as usize) {
                *byte |= 1 << (position % 8);
            }
        }
        body.extend_from_slice(&bitmap);
    }
    let directory_len = body.len() as u32;
    let directory_crc = crc32fast::hash(&body);
    body.extend_from_slice(&columns);

    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&time.to_le_bytes());
    frame.extend_from_slice(&first.to_le_bytes());
    frame.extend_from_slice(&count.to_le_bytes());
    frame.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    frame.extend_from_slice(&directory_len.to_le_bytes());
    frame.extend_from_slice(&directory_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&header_crc.to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

#[cfg(test)]
mod tests;
