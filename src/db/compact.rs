//! Compaction: merging every segment into as few large ones as possible.
//!
//! Many segments cost an index entry per series each and a cursor each at
//! query time; one long segment stores a series' whole history as one
//! column. Compaction is the merge of docs/format.md ("Merging") applied to
//! every segment at once, committed through the same protocol as every
//! other commit, so a kill at any moment leaves either the old segments or
//! the new ones live ([I2]).

use crate::db::merge;
use crate::db::writer::Writer;
use crate::error::Result;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactSummary {
    /// Segments before.
    pub segments_before: u64,
    /// Segments after.
    pub segments_after: u64,
    /// Bytes of segment files before.
    pub bytes_before: u64,
    /// Bytes of segment files after.
    pub bytes_after: u64,
    /// Points stored after (overwritten points are gone).
    pub points_after: u64,
}

pub(crate) fn compact(writer: &mut Writer) -> Result<CompactSummary> {
    let before = &writer.base().manifest.segments;
    let mut summary = CompactSummary {
        segments_before: before.len() as u64,
        bytes_before: before.iter().map(|s| s.file_len).sum(),
        ..CompactSummary::default()
    };
    if before.len() > 1 {
        // Every segment, in commit order: nothing lies between them, so the
        // merge keeps which point wins ([MG3]).
        let inputs: Vec<usize> = (0..before.len()).collect();
        merge::merge(writer, &inputs)?;
    }
    crate::db::dict_index::index_if_due(writer, true)?;
    let after = &writer.base().manifest.segments;
    summary.segments_after = after.len() as u64;
    summary.bytes_after = after.iter().map(|s| s.file_len).sum();
    summary.points_after = after.iter().map(|s| s.points).sum();
    Ok(summary)
}
