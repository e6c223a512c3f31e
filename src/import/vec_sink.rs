//! An in-memory [`SnapshotSink`] for tests: it validates names as the real
//! writer does and records every call, so that tests can check what an
//! import pushed and in which order.

use std::collections::HashMap;

use super::SnapshotSink;
use crate::{Error, Result};

/// Keeps everything in vectors.
#[derive(Debug, Default)]
pub(crate) struct VecSink {
    /// Metric names by id.
    pub metrics: Vec<String>,
    /// Account names by id.
    pub accounts: Vec<String>,
    /// (account id, metric id) by series id.
    pub series: Vec<(u32, u32)>,
    /// Every push, in order: (series, time in ms, count).
    pub pushes: Vec<(u32, i64, u64)>,
    /// How many times `account_id` was called, to check the importer's cache.
    pub account_calls: usize,
    /// How many times `series_id` was called.
    pub series_calls: usize,
    metric_ids: HashMap<String, u32>,
    account_ids: HashMap<String, u32>,
    series_ids: HashMap<(u32, u32), u32>,
}

impl VecSink {
    /// Every push as (account, metric, time in ms, count), in push order.
    pub fn points(&self) -> Vec<(String, String, i64, u64)> {
        self.pushes
            .iter()
            .map(|&(series, time, value)| {
                let (account, metric) = self.series[series as usize];
                (
                    self.accounts[account as usize].clone(),
                    self.metrics[metric as usize].clone(),
                    time,
                    value,
                )
            })
            .collect()
    }

    /// The points that remain once later pushes override earlier ones for
    /// the same series and time, sorted.
    pub fn final_points(&self) -> Vec<(String, String, i64, u64)> {
        let mut latest = HashMap::new();
        for (account, metric, time, value) in self.points() {
            latest.insert((account, metric, time), value);
        }
        let mut points: Vec<_> = latest
            .into_iter()
            .map(|((account, metric, time), value)| (account, metric, time, value))
            .collect();
        points.sort();
        points
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 255
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl SnapshotSink for VecSink {
    fn metric_id(&mut self, name: &str) -> Result<u32> {
        if !valid_metric_name(name) {
            return Err(Error::Invalid(format!(
                "metric name {name:?} is not valid: it must match [A-Za-z_][A-Za-z0-9_]* and be at most 255 bytes"
            )));
        }
        let next = self.metrics.len() as u32;
        let id = *self.metric_ids.entry(name.to_string()).or_insert(next);
        if id == next {
            self.metrics.push(name.to_string());
        }
        Ok(id)
    }

    fn account_id(&mut self, name: &str) -> Result<u32> {
        self.account_calls += 1;
        if name.is_empty() || name.len() > 4096 {
            return Err(Error::Invalid(format!(
                "account name of {} bytes is not valid: it must be 1 to 4096 bytes",
                name.len()
            )));
        }
        let next = self.accounts.len() as u32;
        let id = *self.account_ids.entry(name.to_string()).or_insert(next);
        if id == next {
            self.accounts.push(name.to_string());
        }
        Ok(id)
    }

    fn series_id(&mut self, account: u32, metric: u32) -> Result<u32> {
        self.series_calls += 1;
        let next = self.series.len() as u32;
        let id = *self.series_ids.entry((account, metric)).or_insert(next);
        if id == next {
            self.series.push((account, metric));
        }
        Ok(id)
    }

    fn push(&mut self, series: u32, time_ms: i64, value: u64) -> Result<()> {
        self.pushes.push((series, time_ms, value));
        Ok(())
    }
}
