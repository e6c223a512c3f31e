//! tally: an append-only columnar time-series engine for per-account count
//! series, and a query language for finding the falls in those counts and
//! telling glitches (that recover) from purges (that don't).
//!
//! See docs/architecture.md for how the modules fit together and
//! docs/format.md for the on-disk format.

#![warn(missing_docs)]

// docs/embedding.md's example is compiled and run as a doc-test.
#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
struct EmbeddingGuide;

pub mod chart;
mod db;
#[cfg(feature = "distributed")]
pub mod distributed;
mod error;
#[cfg(feature = "arrow")]
mod export;
pub mod import;
mod output;
mod query;
mod shard;
#[cfg(feature = "datafusion")]
mod sql;
mod storage;
mod time;

/// The series functions, exposed only for `benches/functions.rs`.
#[doc(hidden)]
pub mod bench_support_functions {
    pub use crate::query::functions::{
        DropFinder, Episode, Percent, Recovered, Recovery, SeriesBuf, Threshold, WindowExtremes,
        change, find_recovery, latest, not_recovered_within, recovered_within, resample,
    };
}

#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;

#[cfg(feature = "server")]
mod server;

#[doc(hidden)]
pub mod generate;

pub use db::{
    CommitSummary, CompactSummary, Db, MergeSummary, Options, Point, Series, Stats, TimeRange,
    VerifyReport, Writer,
};

/// Internals exposed only for the benchmarks in benches/; not a stable API.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::storage::encoding::{
        DecodeError, decode_times, decode_values, encode_times, encode_values,
    };
}

pub use error::{Error, QueryError, Result};
pub use query::{Function, Notice, NoticeKind, Param, Query, ShardPart, Table, Value, functions};
pub use shard::Shard;

/// The importer as benches/import_parse.rs reaches it; not part of the API.
#[doc(hidden)]
pub mod bench_support_import {
    pub use crate::import::bench_support::{BenchSink, import_paths};
    pub use crate::import::{Format, ImportSummary};
}
