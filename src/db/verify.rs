//! `verify`: reads every checksummed byte of a database and lists what is
//! damaged, without stopping at the first problem where it can go on.

use std::collections::HashSet;
use std::path::Path;

use crate::db::manifest::Manifest;
use crate::db::snapshot::{load_dictionary, open_segment, parse_whole_dictionary};
use crate::error::{Error, Result};
use crate::storage::dictionary::{Dictionary, SeriesKey};

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// One sentence per damaged thing, naming the file.
    pub problems: Vec<String>,
    /// Segment files read.
    pub segments: u64,
    /// Points decoded.
    pub points: u64,
    /// Bytes read and checked.
    pub bytes: u64,
}

impl VerifyReport {
    /// True when nothing is damaged.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

pub(crate) fn verify(dir: &Path) -> Result<VerifyReport> {
    if !dir.is_dir() {
        return Err(Error::Invalid(format!("no database at {}", dir.display())));
    }
    let mut report = VerifyReport::default();
    let manifest = match Manifest::load(dir) {
        Ok(m) => m,
        Err(e @ Error::Corrupt { .. }) => {
            report.problems.push(e.to_string());
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    report.bytes += manifest.encode().len() as u64;
    match parse_whole_dictionary(dir, &manifest) {
        Ok(dict) => {
            report.bytes += manifest.dict_len;
            // [DI1]: names are unique within their kind.
            let path = dir.join(crate::db::snapshot::DICTIONARY);
            let accounts = dict.parsed_accounts();
            for (kind, table) in [("metric", &dict.metrics), ("account", accounts)] {
                let mut seen = HashSet::with_capacity(table.len());
                if let Some((_, dup)) = table.iter().find(|(_, n)| !seen.insert(*n)) {
                    report.problems.push(
                        Error::corrupt(&path, format!("{kind} {dup:?} is defined twice"))
                            .to_string(),
                    );
                }
            }
            let mut pairs = HashSet::with_capacity(dict.series_count());
            if dict.parsed_series().iter().any(|k| !pairs.insert(*k)) {
                report
                    .problems
                    .push(Error::corrupt(&path, "a series is defined twice").to_string());
            }
            if let Some(meta) = manifest.index {
                report.bytes += meta.file_len;
                match load_dictionary(dir, &manifest) {
                    Ok(indexed) => {
                        if let Err(e) = check_index(&indexed, &dict) {
                            report.problems.push(e.to_string());
                        }
                    }
                    Err(e) => report.problems.push(e.to_string()),
                }
            }
        }
        Err(e) => report.problems.push(e.to_string()),
    }
    for meta in &manifest.segments {
        let path = dir.join(meta.file_name());
        let checked = open_segment(dir, meta, manifest.series).and_then(|seg| {
            let points = seg.verify()?;
            if points != meta.points {
                return Err(Error::corrupt(
                    &path,
                    format!(
                        "it holds {points} points but the manifest says {}",
                        meta.points
                    ),
                ));
            }
            Ok(points)
        });
        match checked {
            Ok(points) => {
                // Each equals its manifest entry's, and those add up
                // without passing 2^64 - 1 ([M9]), as do the file lengths.
                report.segments += 1;
                report.points += points;
                report.bytes += meta.file_len;
            }
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    Ok(report)
}

/// [DX4]: every page of the index is sound, and it says what `whole` (the
/// dictionary parsed from series.dict alone) says of every id it covers.
fn check_index(indexed: &Dictionary, whole: &Dictionary) -> Result<()> {
    let Some(index) = indexed.index() else {
        return Ok(());
    };
    index.check_every_page()?;
    let wrong = |what: String| Err(Error::corrupt(index.path(), what));
    if index.metric_names().iter().map(String::as_str).ne(whole
        .metrics
        .iter()
        .take(index.metric_names().len())
        .map(|(_, n)| n))
    {
        return wrong("its metric names differ from series.dict's".to_string());
    }
    // The series each indexed account should list, by (account, metric),
    // gathered in one pass rather than one scan per account.
    let mut expected: Vec<(u32, SeriesKey)> = (0..index.series_count())
        .filter_map(|id| whole.series_key(id).map(|k| (id, k)))
        .collect();
    expected.sort_unstable_by_key(|(_, k)| (k.account, k.metric));
    let mut expected = expected.into_iter().peekable();
    for id in 0..index.account_count() {
        if index.account_name(id) != Some(whole.account_name(id)) {
            return wrong(format!(
                "the name of account {id} differs from series.dict's"
            ));
        }
        for listed in index.series_of_account(id) {
            if expected.next() != Some(listed) {
                return wrong(format!(
                    "the series of account {id} differ from series.dict's"
                ));
            }
        }
        if expected.peek().is_some_and(|(_, k)| k.account == id) {
            return wrong(format!(
                "the series of account {id} differ from series.dict's"
            ));
        }
    }
    if expected.next().is_some() {
        return wrong("it lists fewer series than series.dict defines".to_string());
    }
    for id in 0..index.series_count() {
        if index.series_key(id) != whole.series_key(id) {
            return wrong(format!("series {id} differs from series.dict's"));
        }
    }
    for (metric, _) in whole.metrics.iter().take(index.metric_names().len()) {
        if index.series_of_metric(metric).ne(whole
            .series_of_metric(metric)
            .filter(|&s| s < index.series_count()))
        {
            return wrong(format!(
                "the series of metric {metric} differ from series.dict's"
            ));
        }
    }
    let mut seen = vec![false; index.account_count() as usize];
    let mut previous: Option<&str> = None;
    for id in index.accounts_by_name_from("") {
        let name = index.account_name(id).unwrap_or("");
        let first = seen
            .get_mut(id as usize)
            .map(|s| !std::mem::replace(s, true));
        if first != Some(true) || previous.is_some_and(|p| p.as_bytes() >= name.as_bytes()) {
            return wrong("its accounts are not sorted by name, each once".to_string());
        }
        previous = Some(name);
    }
    if seen.iter().any(|s| !s) {
        return wrong("its sorted accounts leave some out".to_string());
    }
    match index.damage() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
