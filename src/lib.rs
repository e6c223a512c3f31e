//! tally: an append-only columnar time-series engine for per-account count
//! series, and a query language for finding the falls in those counts and
//! telling glitches (that recover) from purges (that don't).
//!
//! See docs/architecture.md for how the modules fit together and
//! docs/format.md for the on-disk format.

#![warn(missing_docs)]

mod db;
mod error;
mod import;
mod output;
mod query;
mod storage;
mod time;


#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;

pub use error::{Error, QueryError, Result};

/// The importer as benches/import_parse.rs reaches it; not part of the API.
#[doc(hidden)]
pub mod bench_support_import {
    pub use crate::import::bench_support::{BenchSink, import_paths};
    pub use crate::import::{Format, ImportSummary};
}
