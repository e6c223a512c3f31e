//! `verify`: reads every checksummed byte of a database and lists what is
//! damaged, without stopping at the first problem where it can go on.

use std::collections::HashSet;
use std::path::Path;

use crate::db::manifest::Manifest;
use crate::db::snapshot::{load_dictionary, open_segment};
use crate::error::{Error, Result};
use crate::storage::segment::segment_file_name;

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
    match load_dictionary(dir, &manifest) {
        Ok(dict) => {
            report.bytes += manifest.dict_len;
            // [DI1]: names are unique within their kind.
            let path = dir.join(crate::db::snapshot::DICTIONARY);
            for (kind, table) in [("metric", &dict.metrics), ("account", &dict.accounts)] {
                let mut seen = HashSet::with_capacity(table.len());
                if let Some((_, dup)) = table.iter().find(|(_, n)| !seen.insert(*n)) {
                    report.problems.push(
                        Error::corrupt(&path, format!("{kind} {dup:?} is defined twice"))
                            .to_string(),
                    );
                }
            }
            let mut pairs = HashSet::with_capacity(dict.series_count());
            if dict.series().iter().any(|k| !pairs.insert(*k)) {
                report
                    .problems
                    .push(Error::corrupt(&path, "a series is defined twice").to_string());
            }
        }
        Err(e) => report.problems.push(e.to_string()),
    }
    for meta in &manifest.segments {
        let path = dir.join(segment_file_name(meta.number));
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
