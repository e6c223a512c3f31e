//! What benches/import_parse.rs needs from the importer, which is otherwise
//! private to the crate: a sink that does the cheap part of a writer's work,
//! and a way to run an import of files into it.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Format, ImportOptions, ImportSummary, Input, SnapshotSink, import_into};
use crate::Result;

/// A sink that keeps names in hash maps and points in a vector, as a writer
/// buffers them before it encodes a segment.
#[derive(Debug, Default)]
pub struct BenchSink {
    metrics: HashMap<String, u32>,
    accounts: HashMap<String, u32>,
    series: HashMap<(u32, u32), u32>,
    /// The points pushed: (series, time in ms, count).
    pub points: Vec<(u32, i64, u64)>,
}

impl SnapshotSink for BenchSink {
    fn metric_id(&mut self, name: &str) -> Result<u32> {
        let next = self.metrics.len() as u32;
        Ok(*self.metrics.entry(name.to_string()).or_insert(next))
    }

    fn account_id(&mut self, name: &str) -> Result<u32> {
        let next = self.accounts.len() as u32;
        Ok(*self.accounts.entry(name.to_string()).or_insert(next))
    }

    fn series_id(&mut self, account: u32, metric: u32) -> Result<u32> {
        let next = self.series.len() as u32;
        Ok(*self.series.entry((account, metric)).or_insert(next))
    }

    fn push(&mut self, series: u32, time_ms: i64, value: u64) -> Result<()> {
        self.points.push((series, time_ms, value));
        Ok(())
    }
}

/// Imports `paths` into `sink` with the given format (from the names when
/// `None`), as `tally import` would.
pub fn import_paths(
    sink: &mut BenchSink,
    paths: &[PathBuf],
    format: Option<Format>,
) -> Result<ImportSummary> {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::Path).collect();
    let opts = ImportOptions {
        at: None,
        format,
        skip_bad: false,
        shard: None,
    };
    import_into(sink, &inputs, &opts, &mut |_| {})
}
