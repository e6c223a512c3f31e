//! Segment files (docs/format.md, "Segment file"): the writer that streams
//! series into a new file, and the memory-mapped reader with a forward
//! cursor for scans in series-id order.
//!
//! A segment is immutable once renamed into place ([I1]); that is what makes
//! memory-mapping it safe. Every region is checked against its checksum
//! before its bytes are decoded ([I4]).
//!
//! This module holds what writing and reading share: [`SegmentMeta`], the
//! file names and [`Columns`]. The rest is in `writer` ([`GroupBuilder`],
//! [`SegmentWriter`]), `reader` ([`Segment`] and the entries of its groups)
//! and `cursor` ([`SegmentCursor`]), re-exported here.

mod cursor;
mod reader;
mod writer;

pub(crate) use cursor::SegmentCursor;
pub(crate) use reader::{Segment, SeriesEntry};
pub(crate) use writer::{GroupBuilder, SealedGroup, SegmentWriter};

/// What the manifest records of a finished segment, or of a head's
/// committed frames ([M12]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub number: u64,
    /// The file's length; for a head, its committed length.
    pub file_len: u64,
    pub points: u64,
    pub t_min: i64,
    pub t_max: i64,
    /// The entry names a head file (`head-N.thead`) rather than a segment.
    pub head: bool,
}

impl SegmentMeta {
    /// The name of the file this entry names.
    pub(crate) fn file_name(&self) -> String {
        if self.head {
            crate::storage::head::head_file_name(self.number)
        } else {
            segment_file_name(self.number)
        }
    }
}

/// The file name of segment `number`.
pub(crate) fn segment_file_name(number: u64) -> String {
    crate::storage::files::NumberedFile::SEGMENT.name(number)
}

/// The segment number of a file name, if it is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    crate::storage::files::NumberedFile::SEGMENT.parse(name)
}

/// Which columns a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Columns {
    pub times: bool,
    pub values: bool,
}

impl Columns {
    pub(crate) const BOTH: Columns = Columns {
        times: true,
        values: true,
    };
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    pub(super) fn write_segment(dir: &Path, series: &[(u32, Vec<(i64, u64)>)]) -> SegmentMeta {
        let mut w = SegmentWriter::create(&crate::storage::fs::std_fs(), dir, 7).unwrap();
        for (id, points) in series {
            let times: Vec<i64> = points.iter().map(|p| p.0).collect();
            let values: Vec<u64> = points.iter().map(|p| p.1).collect();
            w.add_series(*id, &times, &values).unwrap();
        }
        w.finish().unwrap().unwrap()
    }

    pub(super) fn sample() -> Vec<(u32, Vec<(i64, u64)>)> {
        (0..3000u32)
            .filter(|i| i % 3 != 1)
            .map(|i| {
                let n = 1 + (i as usize % 50);
                let pts = (0..n)
                    .map(|k| {
                        (
                            k as i64 * 3_600_000 + i64::from(i),
                            u64::from(i) * 10 + k as u64,
                        )
                    })
                    .collect();
                (i, pts)
            })
            .collect()
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(segment_file_name(42), "seg-0000000000000042.tseg");
        assert_eq!(
            parse_segment_file_name("seg-0000000000000042.tseg"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("seg-42.tseg"), None);
        assert_eq!(
            parse_segment_file_name("seg-0000000000000042.tseg.tmp"),
            None
        );
    }
}
