//! The reader thread: opens each source in turn, parses its rows into
//! batches and sends them, in input order, to the resolving thread.
//!
//! Everything that needs no id happens here (decompression, splitting,
//! times, counts, the checks of the header), so that the resolving thread,
//! which owns the single-threaded sink, does as little as possible per row.

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use super::batch::{MetricSlots, RowBatch};
use super::source::{self, RawStats, Source};
use super::values::TimeCache;
use super::{Format, ImportOptions};
use crate::Error;

/// What the reader thread tells the resolving thread, in input order.
pub(super) enum Message {
    /// A file begins.
    FileStart {
        /// Its index in the sources.
        file: usize,
        /// Metric names first seen in its header, as (slot, name).
        metrics: Vec<(u32, String)>,
        /// For CSV, the header's metric columns, which must all be valid
        /// metric names before any row is imported.
        header: Option<HeaderMetrics>,
    },
    /// Rows of the current file.
    Rows {
        /// The index of the file in the sources.
        file: usize,
        /// The rows.
        batch: RowBatch,
    },
    /// The current file was read to its end.
    FileEnd {
        /// Bytes read from all inputs so far.
        bytes_read: u64,
    },
    /// The import cannot go on; nothing follows.
    Failed(Error),
    /// Every file was read; nothing follows.
    Done,
}

/// The metric columns of a CSV header.
pub(super) struct HeaderMetrics {
    /// The line of the header.
    pub line: u64,
    /// The slots of its metric columns, in column order.
    pub metric_slots: Vec<u32>,
}

/// Why reading stopped early.
pub(super) enum Stop {
    /// The resolving thread hung up (it failed); there is no one to tell.
    Disconnected,
    /// The input is bad; the error is sent on.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Stop {
        Stop::Failed(error)
    }
}

/// The state of the reader thread that outlives one file.
pub(super) struct ReaderState {
    sender: SyncSender<Message>,
    recycled: Receiver<RowBatch>,
    /// The batch being filled.
    pub batch: RowBatch,
    /// The file the batch belongs to.
    file: usize,
    /// The last time parsed, shared by all files since they usually repeat it.
    pub times: TimeCache,
    /// The metric names met so far.
    pub metrics: MetricSlots,
    /// The time of every row, from `--at`.
    pub at: Option<i64>,
    /// Bytes read so far.
    pub raw: Arc<RawStats>,
}

impl ReaderState {
    /// Sends a message; fails only when the resolving thread is gone.
    pub fn send(&self, message: Message) -> Result<(), Stop> {
        self.sender.send(message).map_err(|_| Stop::Disconnected)
    }

    /// Sends the current batch if it holds anything, and starts a new one
    /// from a recycled batch when one is back.
    pub fn flush(&mut self) -> Result<(), Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let next = match self.recycled.try_recv() {
            Ok(mut batch) => {
                batch.clear();
                batch
            }
            Err(_) => RowBatch::default(),
        };
        let mut full = std::mem::replace(&mut self.batch, next);
        full.bytes_read = self.raw.bytes();
        self.send(Message::Rows {
            file: self.file,
            batch: full,
        })
    }

    /// Sends the batch when it is full. Called after each row.
    #[inline]
    pub fn row_done(&mut self) -> Result<(), Stop> {
        if self.batch.is_full() {
            self.flush()?;
        }
        Ok(())
    }

    /// Announces a file, sending what the previous one left in the batch.
    pub fn start_file(
        &mut self,
        file: usize,
        metrics: Vec<(u32, String)>,
        header: Option<HeaderMetrics>,
    ) -> Result<(), Stop> {
        self.flush()?;
        self.file = file;
        self.send(Message::FileStart {
            file,
            metrics,
            header,
        })
    }

    /// Ends a file, sending its last rows.
    pub fn end_file(&mut self) -> Result<(), Stop> {
        self.flush()?;
        self.send(Message::FileEnd {
            bytes_read: self.raw.bytes(),
        })
    }
}

/// Starts the reader thread over `sources`.
pub(super) fn spawn(
    sources: Vec<Source>,
    opts: ImportOptions,
    stdin: Option<Box<dyn Read + Send>>,
    sender: SyncSender<Message>,
    recycled: Receiver<RowBatch>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tally-import-reader".to_string())
        .spawn(move || {
            let mut state = ReaderState {
                sender,
                recycled,
                batch: RowBatch::default(),
                file: 0,
                times: TimeCache::default(),
                metrics: MetricSlots::default(),
                at: opts.at,
                raw: Arc::new(RawStats::default()),
            };
            match read_all(&sources, stdin, &mut state) {
                Ok(()) => {
                    let _ = state.send(Message::Done);
                }
                Err(Stop::Failed(error)) => {
                    // The rows before the failure go first, so that a bad
                    // row among them is reported before the failure, as
                    // input order asks.
                    if state.flush().is_ok() {
                        let _ = state.send(Message::Failed(error));
                    }
                }
                Err(Stop::Disconnected) => {}
            }
        })
}

fn read_all(
    sources: &[Source],
    mut stdin: Option<Box<dyn Read + Send>>,
    state: &mut ReaderState,
) -> Result<(), Stop> {
    for (file, source) in sources.iter().enumerate() {
        let opened = source::open(source, &mut stdin, &state.raw)?;
        match opened.format {
            Format::Csv => super::csv::read_file(state, file, &source.display, opened)?,
            Format::Jsonl => super::jsonl::read_file(state, file, &source.display, opened)?,
        }
    }
    Ok(())
}
