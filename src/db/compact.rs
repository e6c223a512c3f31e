//! Compaction: merging every segment into as few large ones as possible.
//!
//! Many small segments (one per hourly import) cost an index entry per
//! series each and a cursor each at query time; one long segment stores a
//! series' month as one column. Compaction streams series in id order
//! through one cursor per input segment, so it needs memory for one series
//! at a time, and commits by replacing the manifest, so a kill at any
//! moment leaves either the old segments or the new ones live ([I2]).

use crate::db::snapshot::{Scanner, TimeRange};
use crate::db::writer::Writer;
use crate::error::Result;
use crate::storage::segment::{Columns, SegmentWriter, segment_file_name};

/// Output segments are cut when they pass this size, so that no single file
/// grows without bound.
const MAX_OUTPUT_BYTES: u64 = 4 << 30;

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
    let base = std::sync::Arc::clone(writer.base());
    let before = &base.manifest.segments;
    let mut summary = CompactSummary {
        segments_before: before.len() as u64,
        bytes_before: before.iter().map(|s| s.file_len).sum(),
        ..CompactSummary::default()
    };
    if before.len() <= 1 {
        summary.segments_after = summary.segments_before;
        summary.bytes_after = summary.bytes_before;
        summary.points_after = before.iter().map(|s| s.points).sum();
        return Ok(summary);
    }
    let mut outputs = Vec::new();
    let mut scanner = Scanner::new(&base, Columns::BOTH);
    let (mut times, mut values) = (Vec::new(), Vec::new());
    let mut current: Option<SegmentWriter> = None;
    let series_count = base.dict.series_count() as u32;
    let result = (|| {
        for id in 0..series_count {
            scanner.read(id, TimeRange::ALL, &mut times, &mut values)?;
            if times.is_empty() {
                continue;
            }
            if current.is_none() {
                current = Some(SegmentWriter::create(
                    &base.dir,
                    writer.take_segment_number()?,
                )?);
            }
            if let Some(seg) = current.as_mut() {
                seg.add_series(id, &times, &values)?;
            }
            if current
                .as_ref()
                .is_some_and(|seg| seg.bytes_written() >= MAX_OUTPUT_BYTES)
                && let Some(seg) = current.take()
                && let Some(meta) = seg.finish()?
            {
                outputs.push(meta);
            }
        }
        if let Some(seg) = current.take()
            && let Some(meta) = seg.finish()?
        {
            outputs.push(meta);
        }
        Ok::<(), crate::Error>(())
    })();
    if let Err(e) = result {
        if let Some(seg) = current.take() {
            seg.abandon();
        }
        for meta in &outputs {
            let _ = std::fs::remove_file(base.dir.join(segment_file_name(meta.number)));
        }
        return Err(e);
    }
    summary.segments_after = outputs.len() as u64;
    summary.bytes_after = outputs.iter().map(|s| s.file_len).sum();
    summary.points_after = outputs.iter().map(|s| s.points).sum();
    writer.commit_replacement(outputs)?;
    // The old files are no longer named by the manifest; readers that still
    // map them keep their mapping. A failure to remove one leaves a file the
    // next writer removes ([R1]).
    for meta in before {
        let _ = std::fs::remove_file(base.dir.join(segment_file_name(meta.number)));
    }
    Ok(summary)
}
