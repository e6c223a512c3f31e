//! Bulk import of snapshot files: CSV and JSON lines, optionally gzipped,
//! from files, folders or standard input, into a `SnapshotSink`.
//!
//! docs/import.md is the normative description of the formats, the rules
//! and the error messages; tests name the rule they check (for example
//! `\[IM5\]`).
//!
//! The work is split over two threads so that a bulk import keeps both cores
//! busy. A reader thread (`reader`) opens each input in turn, decompresses
//! it, splits it into rows and parses everything that needs no id (times and
//! counts) into batches of rows. The calling thread (`resolve`) receives the
//! batches in input order through a bounded channel, turns account and metric
//! names into ids, and pushes the points into the sink, which is
//! single-threaded. Used batches travel back to the reader so that their
//! buffers are reused instead of reallocated.

mod batch;
#[doc(hidden)]
pub mod bench_support;
mod csv;
mod jsonl;
mod reader;
mod resolve;
mod source;
mod split;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod vec_sink;

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Error, Result};
use reader::Message;
use resolve::{Resolver, RowOutcome};

/// The longest line an import reads, in bytes, not counting the `\n` that
/// ends it (docs/import.md, rule IM16). Longer lines fail the file, so that
/// a line without an end cannot make the import buffer without bound.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// The most columns a CSV header may have, and keys a JSON line
/// (docs/import.md, rule IM16).
pub(crate) const MAX_COLUMNS: usize = 1024;

/// The reason given for a line longer than [`MAX_LINE_BYTES`].
fn line_too_long() -> String {
    format!(
        "the line is longer than {MAX_LINE_BYTES} bytes, the longest allowed (is a line end missing?)"
    )
}

/// How many rejected rows [`ImportSummary::skipped_examples`] keeps.
pub const MAX_SKIPPED_EXAMPLES: usize = 10;

/// How often, at most, the progress callback is called while rows flow.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// How many batches may wait between the reader thread and the resolving
/// thread. A few are enough to absorb the jitter of either side; more would
/// only hold memory.
const CHANNEL_BATCHES: usize = 4;

/// Where imported points go.
///
/// Calls arrive in input order: files in the order given (a folder's files in
/// name order), rows in file order. A later call for the same (series, time)
/// overrides an earlier one. The writer is not committed by the importer; the
/// caller commits on success and drops it (rolling back) on error.
///
/// The importer remembers the ids it is given for the length of one import,
/// so the same name must always give the same id.
pub(crate) trait SnapshotSink {
    /// Looks up or defines a metric (validates the name: `[A-Za-z_][A-Za-z0-9_]*`, <= 255 bytes → Err(Error::Invalid) otherwise).
    fn metric_id(&mut self, name: &str) -> crate::Result<u32>;
    /// Looks up or defines an account (non-empty UTF-8, <= 4096 bytes).
    fn account_id(&mut self, name: &str) -> crate::Result<u32>;
    /// The series of (account, metric), defined if new. Fails only when the
    /// database has no series id left.
    fn series_id(&mut self, account: u32, metric: u32) -> crate::Result<u32>;
    /// Buffers one point; may flush a segment to disk when over the memory budget.
    fn push(&mut self, series: u32, time_ms: i64, value: u64) -> crate::Result<()>;
}

/// The format of a snapshot file (\[IM2\] in docs/import.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// The name the `--format` flag uses: `csv` or `jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = Error;

    /// Reads the value of `--format`: `csv` or `jsonl`.
    fn from_str(name: &str) -> Result<Format> {
        match name {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            _ => Err(Error::Invalid(format!(
                "unknown format {name:?}: expected csv or jsonl"
            ))),
        }
    }
}

/// One input of an import: a file or folder, or standard input.
///
/// ```
/// use tally::import::Input;
/// // What `tally import data/ -` passes on.
/// let inputs = vec![Input::from_arg("data/"), Input::from_arg("-")];
/// assert_eq!(inputs[1], Input::Stdin);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A snapshot file, or a folder whose snapshot files are all imported
    /// (\[IM1\]).
    Path(PathBuf),
    /// Standard input, written `-` on the command line.
    Stdin,
}

impl Input {
    /// Reads a command-line argument: `-` is standard input, anything else a
    /// path.
    pub fn from_arg(arg: impl Into<OsString>) -> Input {
        let arg = arg.into();
        if arg == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(arg))
        }
    }
}

/// The choices of `tally import` that change how inputs are read.
///
/// ```
/// use tally::import::ImportOptions;
/// // `tally import --at 2019-02-13T10:00:00Z --skip-bad followers.csv`
/// let opts = ImportOptions {
///     at: Some(1_550_052_000_000),
///     format: None,
///     skip_bad: true,
///     shard: None,
/// };
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The time of every row, in milliseconds since the Unix epoch, for files
    /// without a `time` column or key (\[IM10\]).
    pub at: Option<i64>,
    /// The format of every input, instead of telling it from the file name
    /// (\[IM2\]).
    pub format: Option<Format>,
    /// Skip bad rows (counting and reporting them) instead of failing
    /// (\[IM13\]).
    pub skip_bad: bool,
    /// Import only the rows of the accounts of this shard, and pass over
    /// the others (`tally import --shard S/N`, docs/scale-out.md, \[SO3\]):
    /// so one snapshot file feeds every shard of a cluster.
    pub shard: Option<crate::Shard>,
}

/// What an import did (\[IM14\]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Files read to their end.
    pub files: u64,
    /// Rows imported (skipped rows not included).
    pub rows: u64,
    /// Points pushed: one per non-empty count.
    pub points: u64,
    /// Rows skipped as bad (only with `skip_bad`).
    pub skipped: u64,
    /// The first [`MAX_SKIPPED_EXAMPLES`] skipped rows as `file:line: reason`.
    pub skipped_examples: Vec<String>,
    /// Rows passed over because their account belongs to another shard
    /// (only with [`ImportOptions::shard`]).
    pub other_shards: u64,
    /// Bytes read from the inputs, as stored (compressed for gzip files).
    pub bytes: u64,
}

/// How far an import has come, for drawing a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read from the inputs so far, as stored (compressed for gzip).
    pub bytes: u64,
    /// The size of all inputs, when known (it is not for standard input).
    pub total_bytes: Option<u64>,
    /// Rows handled so far, imported or skipped.
    pub rows: u64,
    /// Files read to their end so far.
    pub files: u64,
}

/// Imports snapshot files into `sink`.
///
/// Folders are expanded, every input is checked to exist and to have a known
/// format before any row is read, and then the rows are pushed in input
/// order. `progress` is called about every 100 ms while rows flow and once at
/// the end. On error nothing is undone here: the caller drops the writer.
pub(crate) fn import_into(
    sink: &mut impl SnapshotSink,
    inputs: &[Input],
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportSummary> {
    import_with_stdin(sink, inputs, opts, progress, || Box::new(std::io::stdin()))
}

/// [`import_into`] with standard input supplied by the caller, so that tests
/// can feed it.
pub(crate) fn import_with_stdin(
    sink: &mut impl SnapshotSink,
    inputs: &[Input],
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
    stdin: impl FnOnce() -> Box<dyn Read + Send>,
) -> Result<ImportSummary> {
    if let Some(at) = opts.at
        && crate::time::check_range(at).is_err()
    {
        return Err(Error::Invalid(format!(
            "--at {at} ms is outside the years 0000 to 9999"
        )));
    }
    let sources = source::expand(inputs, opts.format)?;
    let total_bytes = sources
        .iter()
        .try_fold(0u64, |sum, source| Some(sum.saturating_add(source.size?)));
    let stdin = sources.iter().any(source::Source::is_stdin).then(stdin);

    let (batches, receive_batches) = mpsc::sync_channel(CHANNEL_BATCHES);
    let (recycle, receive_recycled) = mpsc::channel();
    // The reader thread is not joined when the import fails: it may be
    // blocked reading a pipe that stays open. It stops by itself at its next
    // send, which fails once `receive_batches` is dropped.
    let reader = reader::spawn(sources.clone(), *opts, stdin, batches, receive_recycled)
        .map_err(|e| Error::Invalid(format!("cannot start the import thread: {e}")))?;

    let mut resolver = Resolver::new(sink, opts.shard);
    let mut summary = ImportSummary::default();
    let mut last_progress = Instant::now();
    let display = |file: usize| {
        sources
            .get(file)
            .map_or_else(|| "?".to_string(), |s| s.display.clone())
    };
    loop {
        let Ok(message) = receive_batches.recv() else {
            // The reader always ends with Done or Failed; a closed channel
            // without either means it panicked. Show that panic.
            if let Err(panic) = reader.join() {
                std::panic::resume_unwind(panic);
            }
            return Err(Error::Invalid(
                "the import reader stopped without finishing".to_string(),
            ));
        };
        match message {
            Message::FileStart {
                file,
                metrics,
                header,
            } => {
                resolver.start_file(metrics);
                if let Some(header) = header {
                    resolver
                        .resolve_header(&header.metric_slots)?
                        .map_err(|reason| Error::Import {
                            file: display(file),
                            line: header.line,
                            reason,
                        })?;
                }
            }
            Message::Rows { file, batch } => {
                resolver.add_metrics(&batch.new_metrics);
                for row in batch.rows() {
                    match resolver.import_row(&row)? {
                        RowOutcome::Imported { points } => {
                            summary.rows += 1;
                            summary.points += points;
                        }
                        RowOutcome::OtherShard => summary.other_shards += 1,
                        RowOutcome::Rejected(reason) => {
                            let error = Error::Import {
                                file: display(file),
                                line: row.line,
                                reason,
                            };
                            if !opts.skip_bad {
                                return Err(error);
                            }
                            summary.skipped += 1;
                            if summary.skipped_examples.len() < MAX_SKIPPED_EXAMPLES {
                                summary.skipped_examples.push(error.to_string());
                            }
                        }
                    }
                }
                summary.bytes = batch.bytes_read;
                // The reader may be gone already; then the batch is dropped.
                let _ = recycle.send(batch);
                if last_progress.elapsed() >= PROGRESS_INTERVAL {
                    last_progress = Instant::now();
                    progress(current_progress(&summary, total_bytes));
                }
            }
            Message::FileEnd { bytes_read } => {
                summary.files += 1;
                summary.bytes = bytes_read;
            }
            Message::Failed(error) => return Err(error),
            Message::Done => break,
        }
    }
    progress(current_progress(&summary, total_bytes));
    // The reader has sent its last message and is returning.
    if let Err(panic) = reader.join() {
        std::panic::resume_unwind(panic);
    }
    Ok(summary)
}

/// The real writer is a sink: points go into its uncommitted batch.
/// The importer calls the writer, never the other way round: this method
/// lives here, beside the importer it runs, though it is the writer's.
impl crate::Writer {
    /// Reads snapshot files (CSV or JSON lines, gzipped or not, folders,
    /// `-` for standard input; docs/import.md) into this writer's batch.
    /// Nothing is visible until [`commit`](crate::Writer::commit); on error, drop
    /// the writer (or keep it and the batch is discarded at the next
    /// failure) and nothing of the import remains.
    ///
    /// ```
    /// # fn main() -> tally::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let csv = dir.path().join("snap.csv");
    /// # std::fs::write(&csv, "time,account,followers\n2019-02-13T10:00:00Z,adela_mae,10234\n").unwrap();
    /// use tally::import::{ImportOptions, Input};
    /// let db = tally::Db::open(dir.path().join("db"))?;
    /// let mut writer = db.writer()?;
    /// let summary = writer.import(&[Input::Path(csv)], &ImportOptions::default(), |_| {})?;
    /// writer.commit()?;
    /// assert_eq!((summary.rows, summary.points), (1, 1));
    /// # Ok(()) }
    /// ```
    pub fn import(
        &mut self,
        inputs: &[Input],
        options: &ImportOptions,
        mut progress: impl FnMut(Progress),
    ) -> Result<ImportSummary> {
        import_into(self, inputs, options, &mut progress)
    }
}

impl SnapshotSink for crate::Writer {
    fn metric_id(&mut self, name: &str) -> Result<u32> {
        crate::Writer::metric_id(self, name)
    }

    fn account_id(&mut self, name: &str) -> Result<u32> {
        crate::Writer::account_id(self, name)
    }

    fn series_id(&mut self, account: u32, metric: u32) -> Result<u32> {
        crate::Writer::series_id(self, account, metric)
    }

    fn push(&mut self, series: u32, time_ms: i64, value: u64) -> Result<()> {
        crate::Writer::push(self, series, time_ms, value)
    }
}

fn current_progress(summary: &ImportSummary, total_bytes: Option<u64>) -> Progress {
    Progress {
        bytes: summary.bytes,
        total_bytes,
        rows: summary.rows + summary.skipped,
        files: summary.files,
    }
}
