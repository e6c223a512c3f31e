//! The writer: buffers appended points, spills them into segments when the
//! memory budget is reached, and commits a batch atomically ([I2], [I3]).
//!
//! Points are logged in append order into three flat columns (series, time,
//! count); db/flush.rs turns a full log into a segment, and db/frame.rs a
//! log of one time into a head frame ([HD3]). Nothing a flush writes is
//! visible until `commit` writes the manifest that names it, and `install`
//! is the one commit protocol of batches, merges and compactions.
//!
//! A flush that the budget forces, or the frame of a snapshot once the next
//! one begins, runs on a thread of its own while the writer goes on logging
//! into a second log, so that a bulk import keeps parsing while the
//! previous part of it is encoded; at most one such flush runs at a time.
//! The flush at commit runs on the committing thread. A segment's series
//! are encoded in chunks on every core.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::db::Db;
use crate::db::flush::{FlushOutcome, Flushed, Log, as_frame, write_segment};
use crate::db::frame::BatchHeads;
use crate::db::lock::WriteLock;
use crate::db::manifest::{Manifest, sync_dir};
use crate::db::recovery;
use crate::db::snapshot::{DICTIONARY, Snapshot};
use crate::error::{Error, Result};
use crate::storage::dictionary::DictionaryBuilder;
use crate::storage::format::{MAGIC_DICTIONARY, put_header};
use crate::storage::segment::SegmentMeta;

use crate::time::{MAX_TIME_MS, MIN_TIME_MS};

/// Bytes of the memory budget one logged point is charged: its series id,
/// time and count in the log being filled (20 bytes), the same again in a
/// log being flushed meanwhile, with its slot in the sort permutation (24),
/// plus 12 for everything else an import holds at the same time (the
/// importer's batches and buffers, the dictionary, encoded groups), so that
/// the process's peak stays within the budget. Measured: a 50 M-point import
/// peaked at 986 MiB of RSS with 8 for everything else, under a 1 GiB
/// budget but too close to it.
const BYTES_PER_LOGGED_POINT: usize = 20 + 24 + 12;

/// A group of points of one time, followed by a point of a later time,
/// becomes a head frame only with at least this many appended points
/// ([HD3]): one
/// chunk's worth. Smaller groups stay in the log, so that a batch of a
/// few series' histories is not cut into a frame per time.
const MIN_FRAME_POINTS: usize = 1024;

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitSummary {
    /// Points appended in the batch (before duplicates were resolved).
    pub points: u64,
    /// Series that did not exist before the batch.
    pub new_series: u64,
    /// Segment files the batch was written as.
    pub segments: u64,
    /// Bytes of those segment files.
    pub segment_bytes: u64,
    /// What the merges after the commit did (docs/format.md, "Merging");
    /// all zero when [`Options::auto_merge`](crate::Options::auto_merge)
    /// is off.
    pub merged: MergeSummary,
}

/// Appends points to a database and commits them atomically.
///
/// A `Writer` holds the database's write lock (docs/format.md, rule I6). Points appended since
/// the last [`commit`](Writer::commit) are invisible to every reader until
/// it returns; dropping the writer without committing discards them, and so
/// does a crash. See the crate documentation for an example.
pub struct Writer {
    db: Db,
    _lock: WriteLock,
    base: Arc<Snapshot>,
    dict: DictionaryBuilder,
    /// The points appended since the last flush.
    log: Log,
    /// The columns of a finished flush, kept to be the next log.
    spare: Option<Log>,
    /// The flush running on its own thread, if any.
    in_flight: Option<JoinHandle<FlushOutcome>>,
    /// The threads a flush encodes on, started at the first flush. Not the
    /// global pool: a program that appends from a task of that pool would
    /// otherwise wait for a flush that waits for the same pool's threads.
    encoders: Option<Arc<rayon::ThreadPool>>,
    /// Why the batch was discarded under the caller: a background flush
    /// failed. Appends fail until the next commit, which reports it.
    discarded: Option<String>,
    /// Why this writer cannot go on at all: a commit failed after its
    /// manifest was in place, so the writer's view is stale.
    unusable: Option<String>,
    /// The manifest a commit is about to write, with its dictionary.
    pending_manifest: Option<(Manifest, crate::storage::dictionary::Dictionary)>,
    /// Tests set this to make the next commit fail right after its manifest
    /// is in place, which no real fault can be made to do on cue.
    #[cfg(test)]
    fail_after_manifest: bool,
    max_logged_points: usize,
    /// Bytes of the segments the last commit wrote: what bounds the merges
    /// after it ([MG4]).
    last_commit_bytes: u64,
    /// The segments the last commit wrote, which the merge after it joins
    /// first when there are several ([MG2]).
    last_commit_segments: Vec<u64>,
    flushed: Vec<SegmentMeta>,
    /// The heads this batch wrote frames to ([HD3]); moved to the flush
    /// thread while it writes one.
    heads: BatchHeads,
    /// Whether the batch may still make frames: true until a point comes
    /// at a time before the log's, a group of one time is too small or not
    /// dense enough to be a frame, or the budget forces a segment ([HD3]).
    framing: bool,
    /// The time of every point in the log, while `framing`.
    group_time: Option<i64>,
    /// A group of one time followed by a later time becomes a frame only
    /// with at least this many points ([HD3]).
    min_frame_points: usize,
    /// A segment number taken for a flush that did not need it, kept for
    /// the next.
    reserved_number: Option<u64>,
    next_segment: u64,
    batch_points: u64,
    series_at_start: usize,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("dir", &self.base.dir)
            .field("pending_points", &self.batch_points)
            .finish()
    }
}

impl Writer {
    pub(crate) fn new(db: &Db) -> Result<Writer> {
        let dir = db.path().to_path_buf();
        let lock = WriteLock::acquire(&dir)?;
        // We hold the lock: nobody else can commit, so the state we load now
        // is the one we build on.
        let manifest = Manifest::load(&dir)?;
        recovery::clean_up(&**db.fs(), &dir, &manifest)?;
        let base = Arc::new(Snapshot::load(&dir)?);
        db.publish(Arc::clone(&base));
        let dict = DictionaryBuilder::new((*base.dict).clone());
        // The log is indexed by u32 during a flush.
        let max_logged_points =
            (db.options().memory_budget / BYTES_PER_LOGGED_POINT).clamp(256, u32::MAX as usize - 1);
        Ok(Writer {
            db: db.clone(),
            _lock: lock,
            series_at_start: base.dict.series_count(),
            next_segment: base.manifest.next_segment,
            base,
            dict,
            log: Log::default(),
            spare: None,
            in_flight: None,
            encoders: None,
            discarded: None,
            unusable: None,
            pending_manifest: None,
            #[cfg(test)]
            fail_after_manifest: false,
            max_logged_points,
            last_commit_bytes: 0,
            last_commit_segments: Vec::new(),
            flushed: Vec::new(),
            heads: BatchHeads::default(),
            framing: true,
            group_time: None,
            min_frame_points: MIN_FRAME_POINTS,
            reserved_number: None,
            batch_points: 0,
        })
    }

    /// Appends one point of (account, metric). A later point of the same
    /// series and time wins over an earlier one, in this batch or a
    /// committed one.
    ///
    /// Fails on a metric name that is not `[A-Za-z_][A-Za-z0-9_]*`, an empty
    /// account name, a count above 2^63 − 1 or a time outside the years 0000
    /// to 9999; the batch is kept, without the point.
    ///
    /// Points past the memory budget are spilled to a segment file in the
    /// background, and so is each snapshot of a batch of snapshots in time
    /// order, as a head frame, once the next begins (docs/format.md, rule
    /// HD3). If writing one fails (a full disk, say), the whole
    /// uncommitted batch is discarded, as when a commit fails: a later
    /// `append` returns [`Error::Writer`], so does every append after it,
    /// and so does the next [`commit`](Writer::commit), after which the
    /// writer starts a new batch. No part of the batch can be committed
    /// without the rest.
    pub fn append(&mut self, account: &str, metric: &str, time_ms: i64, count: u64) -> Result<()> {
        let metric = self.metric_id(metric)?;
        let account = self.account_id(account)?;
        let series = self.series_id(account, metric)?;
        self.push(series, time_ms, count)
    }

    pub(crate) fn metric_id(&mut self, name: &str) -> Result<u32> {
        self.check_usable()?;
        self.dict.metric_id(name).map_err(Error::Invalid)
    }

    pub(crate) fn account_id(&mut self, name: &str) -> Result<u32> {
        self.check_usable()?;
        self.dict.account_id(name).map_err(Error::Invalid)
    }

    pub(crate) fn series_id(&mut self, account: u32, metric: u32) -> Result<u32> {
        self.check_usable()?;
        self.dict.series_id(account, metric).map_err(Error::Invalid)
    }

    /// Logs one point of a series this writer knows; starts a flush when
    /// the log reaches the memory budget (see `append` for its errors).
    pub(crate) fn push(&mut self, series: u32, time_ms: i64, count: u64) -> Result<()> {
        self.check_usable()?;
        if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&time_ms) {
            return Err(Error::Invalid(format!(
                "time {time_ms} ms is outside the years 0000 to 9999"
            )));
        }
        if count > i64::MAX as u64 {
            return Err(Error::Invalid(format!(
                "count {count} is larger than 2^63 - 1"
            )));
        }
        if self.framing {
            match self.group_time {
                Some(t) if t == time_ms => {}
                Some(t) if t < time_ms && self.log.len() >= self.min_frame_points => {
                    self.start_flush(FlushKind::Frame)?;
                }
                Some(_) => self.framing = false,
                None => {}
            }
            self.group_time = Some(time_ms);
        }
        self.log
            .push(series, time_ms, count, self.max_logged_points);
        self.batch_points += 1;
        if self.log.len() >= self.max_logged_points {
            self.start_flush(FlushKind::Segment)?;
        }
        Ok(())
    }

    /// Resets what the writer knows of the batch for the next one. A
    /// number reserved and not used is dropped, so that the batch's files
    /// take numbers in the order they are written, after those merges and
    /// indexes take between batches.
    fn start_batch(&mut self) {
        self.batch_points = 0;
        self.framing = true;
        self.group_time = None;
        self.reserved_number = None;
    }

    /// The number of the batch's next file: the one reserved for a frame
    /// that did not need it, else a new one.
    fn next_number(&mut self) -> Result<u64> {
        match self.reserved_number.take() {
            Some(number) => Ok(number),
            None => self.take_segment_number(),
        }
    }

    /// Lets a test make frames of groups smaller than production does.
    #[cfg(test)]
    pub(crate) fn set_min_frame_points(&mut self, points: usize) {
        self.min_frame_points = points;
    }

    /// Points appended since the last commit.
    pub fn pending_points(&self) -> u64 {
        self.batch_points
    }

    /// Fails when the batch was discarded under the caller, or when the
    /// writer cannot go on.
    fn check_usable(&self) -> Result<()> {
        if let Some(why) = &self.unusable {
            return Err(Error::Writer(format!(
                "this writer cannot go on ({why}); open a new one"
            )));
        }
        if let Some(why) = &self.discarded {
            return Err(Error::Writer(format!(
                "the uncommitted batch was discarded because a spilled segment or head \
                 frame could not be written ({why}); commit to start a new batch"
            )));
        }
        Ok(())
    }

    /// The threads flushes encode on, started the first time.
    pub(crate) fn encoders(&mut self) -> Result<Arc<rayon::ThreadPool>> {
        if let Some(pool) = &self.encoders {
            return Ok(Arc::clone(pool));
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tally-encode-{i}"))
            .build()
            .map_err(|e| Error::Writer(format!("cannot start the threads that encode: {e}")))?;
        let pool = Arc::new(pool);
        self.encoders = Some(Arc::clone(&pool));
        Ok(pool)
    }

    /// Hands the log to a flush on its own thread, to be written as `kind`
    /// says, and goes on with an empty log, once the flush before it, if
    /// any, is done (a frame only if that one left the batch framing). If
    /// that one failed,
    /// the whole batch is discarded: this append and every one after it
    /// fail until the next commit, which reports it too, so that no part of
    /// the batch can be committed without the rest.
    fn start_flush(&mut self, kind: FlushKind) -> Result<()> {
        let started = self.finish_flush().and_then(|()| match kind {
            FlushKind::Segment => self.spawn_flush(kind),
            // The flush that just ended may have found its group unfit for
            // a frame, which ends framing for the batch.
            FlushKind::Frame if self.framing => self.spawn_flush(kind),
            FlushKind::Frame => Ok(()),
        });
        if let Err(e) = started {
            self.discard();
            self.discarded = Some(e.to_string());
            return self.check_usable();
        }
        Ok(())
    }

    fn spawn_flush(&mut self, kind: FlushKind) -> Result<()> {
        if kind == FlushKind::Segment {
            // A segment of part of a group: the rest of the batch is
            // segments too, so that they all follow its frames ([HD3]).
            self.framing = false;
        }
        let pool = self.encoders()?;
        let number = self.next_number()?;
        let base = Arc::clone(&self.base);
        let fs = Arc::clone(self.db.fs());
        // The log and the heads go to the thread only once it runs: if it
        // cannot start, the writer still has them, and the discard that
        // follows removes what the heads wrote.
        let (send, receive) = std::sync::mpsc::channel::<(Log, BatchHeads)>();
        let spawned = std::thread::Builder::new()
            .name("tally-flush".to_string())
            .spawn(move || {
                let Ok((log, mut heads)) = receive.recv() else {
                    return FlushOutcome {
                        result: Err(Error::Writer("the flush was never handed its log".into())),
                        log: Log::default(),
                        heads: None,
                        unused_number: Some(number),
                    };
                };
                let mut used = false;
                let mut take_number = || {
                    used = true;
                    Ok(number)
                };
                let result = match kind {
                    FlushKind::Segment => take_number()
                        .and_then(|n| write_segment(&fs, &base.dir, n, &log, &pool))
                        .map(Flushed::Segment),
                    FlushKind::Frame => {
                        flush_group(&fs, &base, &log, &mut heads, &pool, take_number)
                    }
                };
                FlushOutcome {
                    result,
                    log,
                    heads: Some(heads),
                    unused_number: (!used).then_some(number),
                }
            });
        let handle = match spawned {
            Ok(handle) => handle,
            Err(e) => {
                self.reserved_number = Some(number);
                return Err(Error::Writer(format!("cannot start a flush thread: {e}")));
            }
        };
        let next = self.spare.take().unwrap_or_default();
        let log = std::mem::replace(&mut self.log, next);
        let heads = std::mem::take(&mut self.heads);
        // The thread waits on the receiver, so the send cannot fail unless
        // it died; the join in `finish_flush` then reports it.
        let _ = send.send((log, heads));
        self.in_flight = Some(handle);
        Ok(())
    }

    /// Waits for the flush on its own thread, if any, and records its
    /// segment; keeps its columns for the next log.
    fn finish_flush(&mut self) -> Result<()> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        // A panic in the flush is a bug; it goes on in the caller, with its
        // message, as if the flush had run here.
        let outcome = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let mut log = outcome.log;
        log.clear();
        self.spare = Some(log);
        if let Some(heads) = outcome.heads {
            self.heads = heads;
        }
        if let Some(number) = outcome.unused_number {
            self.reserved_number = Some(number);
        }
        match outcome.result? {
            Flushed::Frame => {}
            Flushed::Segment(meta) => {
                self.framing = false;
                self.flushed.extend(meta);
            }
        }
        Ok(())
    }

    /// Writes the rest of the log (not yet visible), on this thread, after
    /// the flush in flight: as a head frame when the batch is still framing
    /// ([HD3]) and the log fits one, otherwise as one segment.
    fn flush(&mut self) -> Result<()> {
        self.finish_flush()?;
        if self.log.len() == 0 {
            return Ok(());
        }
        if self.framing {
            let pool = self.encoders()?;
            let dir = self.base.dir.clone();
            let (next, reserved) = (&mut self.next_segment, &mut self.reserved_number);
            let flushed = flush_group(
                self.db.fs(),
                &self.base,
                &self.log,
                &mut self.heads,
                &pool,
                || match reserved.take() {
                    Some(number) => Ok(number),
                    None => crate::db::manifest::take_segment_number(&dir, next),
                },
            )?;
            if let Flushed::Segment(meta) = flushed {
                self.flushed.extend(meta);
            }
            self.log.clear();
            return Ok(());
        }
        let pool = self.encoders()?;
        let number = self.next_number()?;
        if let Some(meta) = write_segment(self.db.fs(), &self.base.dir, number, &self.log, &pool)? {
            self.flushed.push(meta);
        }
        self.log.clear();
        Ok(())
    }

    /// Makes every point appended since the last commit visible, atomically:
    /// after a crash at any moment the database holds all of the batch or
    /// none of it. On error the batch is discarded and the writer is back at
    /// the last committed state — except in the rare case that the error
    /// comes after the batch became visible (making the new manifest durable
    /// or opening the new segments failed): then the batch stays committed,
    /// the error says so, and the writer refuses to go on, since its view of
    /// the database is stale.
    pub fn commit(&mut self) -> Result<CommitSummary> {
        self.check_usable_for_commit()?;
        match self.try_commit() {
            Ok(summary) => {
                // Between batches the writer holds no log: an idle writer
                // should not keep hundreds of MiB.
                self.log = Log::default();
                self.spare = None;
                Ok(summary)
            }
            Err(CommitError::Before(e)) => {
                self.discard();
                Err(e)
            }
            Err(CommitError::After(e)) => Err(self.stop("the batch was committed", e)),
        }
        .and_then(|mut summary| {
            self.last_commit_bytes = summary.segment_bytes;
            if self.db.options().auto_merge {
                summary.merged = self.merge().map_err(|e| {
                    Error::Writer(format!(
                        "the batch was committed, but the merge after it failed: {e}"
                    ))
                })?;
            }
            Ok(summary)
        })
    }

    /// Runs the merges the policy of docs/format.md ("Merging") asks for,
    /// each committed atomically on its own, as many as read up to four
    /// times the bytes of the last commit (at least one), so that the work
    /// stays in proportion to what was committed (docs/format.md, rule MG4); the summary says
    /// whether more is left. [`commit`](Writer::commit) calls this after every
    /// batch unless [`Options::auto_merge`](crate::Options::auto_merge) is
    /// off. A merge that fails leaves the database as it was before that
    /// merge, and the writer goes on. It runs between batches only: with
    /// points appended and not committed it fails with [`Error::Writer`],
    /// since the batch may already be appending frames to the head a
    /// merge would replace (docs/format.md, rule HD4).
    pub fn merge(&mut self) -> Result<MergeSummary> {
        self.check_usable()?;
        if self.batch_points > 0 {
            return Err(Error::Writer(format!(
                "{} points are appended and not committed; commit them before merging",
                self.batch_points
            )));
        }
        let batch = std::mem::take(&mut self.last_commit_segments);
        crate::db::merge::merge_step(self, self.last_commit_bytes, &batch)
    }

    /// Marks this writer as unable to go on after a commit failed past its
    /// point of no return, and returns the error that says so.
    fn stop(&mut self, what: &str, e: Error) -> Error {
        let why = format!("{what}, but then: {e}");
        self.unusable = Some(why.clone());
        Error::Writer(why)
    }

    /// True once a commit failed after its manifest was in place.
    pub(crate) fn is_stopped(&self) -> bool {
        self.unusable.is_some()
    }

    /// Reports a batch discarded under the caller, once, and clears it, so
    /// that the commit after it starts a new batch.
    fn check_usable_for_commit(&mut self) -> Result<()> {
        let checked = self.check_usable();
        if checked.is_err() && self.unusable.is_none() {
            self.discarded = None;
        }
        checked
    }

    fn try_commit(&mut self) -> std::result::Result<CommitSummary, CommitError> {
        self.prepare_commit().map_err(CommitError::Before)?;
        let Some((manifest, dict)) = self.pending_manifest.take() else {
            return Ok(CommitSummary::default());
        };
        let summary = CommitSummary {
            points: self.batch_points,
            new_series: (dict.series_count() - self.series_at_start) as u64,
            segments: self.flushed.len() as u64 + self.heads.summary().0,
            segment_bytes: self.flushed.iter().map(|s| s.file_len).sum::<u64>()
                + self.heads.summary().1,
            merged: MergeSummary::default(),
        };
        let installed = self.install(manifest, Arc::new(dict));
        if !matches!(installed, Err(CommitError::Before(_))) {
            // From the manifest's rename on, the batch is committed: its
            // segments belong to the database, not to the batch.
            // The batch's heads are not joined with its segments: they are
            // already what the policy keeps for a week ([MG2]).
            self.last_commit_segments = self.flushed.iter().map(|s| s.number).collect();
            self.flushed.clear();
            self.heads = BatchHeads::default();
            self.start_batch();
        }
        installed?;
        self.series_at_start = self.base.dict.series_count();
        Ok(summary)
    }

    /// The one commit protocol ([I2]), for batches, merges and compactions
    /// alike: every file the manifest names is already durable, its
    /// directory entry too; the manifest is written to a temporary name,
    /// fsynced and renamed over the old one, and the directory is fsynced.
    /// The rename is the point of no return: an error before it leaves the
    /// last committed state (`Before`), an error after it leaves the new
    /// one committed but this writer's view stale (`After`).
    fn install(
        &mut self,
        manifest: Manifest,
        dict: Arc<crate::storage::dictionary::Dictionary>,
    ) -> std::result::Result<(), CommitError> {
        let dir = self.base.dir.clone();
        let fs = Arc::clone(self.db.fs());
        manifest.replace(&*fs, &dir).map_err(CommitError::Before)?;
        // The point of no return: readers may see the new state from here
        // on, so nothing below may undo it.
        #[cfg(test)]
        if self.fail_after_manifest {
            return Err(CommitError::After(Error::Writer(
                "a failure injected after the manifest".into(),
            )));
        }
        sync_dir(&*fs, &dir).map_err(CommitError::After)?;
        let snapshot = Arc::new(
            self.base
                .after_commit(manifest, dict)
                .map_err(CommitError::After)?,
        );
        self.db.publish(Arc::clone(&snapshot));
        self.base = snapshot;
        Ok(())
    }

    /// Everything of a commit before its manifest replaces the old one:
    /// flushes the rest, makes the dictionary frame and the segments
    /// durable, and leaves the manifest to write in `pending_manifest`
    /// (`None` when the batch is empty).
    fn prepare_commit(&mut self) -> Result<()> {
        self.flush()?;
        let dir = self.base.dir.clone();
        self.heads.finish(self.db.fs(), &dir)?;
        let frame = self.dict.take_frame();
        if self.flushed.is_empty() && self.heads.is_empty() && frame.is_none() {
            return Ok(());
        }
        // [I3]: the dictionary is durable before the manifest that covers it.
        let dict_path = dir.join(DICTIONARY);
        let mut dict_len = self.base.manifest.dict_len;
        if let Some(frame) = frame {
            // [I9]: a discarded batch's frame may still be past the committed
            // length (cutting it back failed); the new frame must follow the
            // committed bytes directly, or the manifest would cover the old
            // frame in its place.
            match std::fs::metadata(&dict_path) {
                Ok(meta) if meta.len() != dict_len => self
                    .db
                    .fs()
                    .truncate(&dict_path, dict_len)
                    .map_err(|e| Error::io(&dict_path, e))?,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&dict_path, e)),
            }
            let mut file = self
                .db
                .fs()
                .append(&dict_path)
                .map_err(|e| Error::io(&dict_path, e))?;
            if dict_len == 0 {
                let mut header = Vec::new();
                put_header(&mut header, MAGIC_DICTIONARY);
                file.write_all(&header)
                    .map_err(|e| Error::io(&dict_path, e))?;
                dict_len = header.len() as u64;
            }
            file.write_all(&frame)
                .map_err(|e| Error::io(&dict_path, e))?;
            file.sync().map_err(|e| Error::io(&dict_path, e))?;
            dict_len += frame.len() as u64;
        }
        // The new segments were renamed into place; make the renames durable
        // before the manifest names them.
        sync_dir(&**self.db.fs(), &dir)?;
        let dict = self.dict.dictionary();
        let mut segments = self.base.manifest.segments.clone();
        // [HD4]: an appended head keeps its place (it is the last entry,
        // [HD3]) with its new length; new heads follow, then the segments,
        // in the order the batch wrote them ([I5]).
        self.heads.add_to(&mut segments);
        segments.extend_from_slice(&self.flushed);
        let manifest = Manifest {
            generation: self.base.manifest.next_generation(&dir)?,
            dict_len,
            metrics: dict.metrics.len() as u32,
            accounts: dict.account_count() as u32,
            series: dict.series_count() as u32,
            next_segment: self.next_segment,
            segments,
            index: self.base.manifest.index,
        };
        self.pending_manifest = Some((manifest, dict.clone()));
        Ok(())
    }

    /// Drops the uncommitted batch: its log, its segment files and its new
    /// names.
    fn discard(&mut self) {
        // A flush in flight writes a file of this batch too: let it finish,
        // so that its file is removed with the others. Its error, if any,
        // matters no more.
        let _ = self.finish_flush();
        for meta in self.flushed.drain(..) {
            let path = self
                .base
                .dir
                .join(crate::storage::segment::segment_file_name(meta.number));
            let _ = self.db.fs().remove_file(&path);
        }
        self.heads.discard(&**self.db.fs(), &self.base.dir);
        self.log.clear();
        self.start_batch();
        if self.dict.dictionary().series_count() != self.base.dict.series_count()
            || self.dict.has_pending()
        {
            self.dict = DictionaryBuilder::new((*self.base.dict).clone());
        }
        // The dictionary file may hold a frame written before the failure;
        // it is past the committed length and the next writer cuts it ([R1]).
        let _ = self
            .db
            .fs()
            .truncate(&self.base.dir.join(DICTIONARY), self.base.manifest.dict_len);
    }

    /// Merges every segment into as few as possible, dropping overwritten
    /// points; commits pending points first. Safe to kill at any moment:
    /// the old segments stay live until the manifest naming the new ones is
    /// durable.
    pub fn compact(&mut self) -> Result<CompactSummary> {
        self.commit()?;
        crate::db::compact::compact(self)
    }

    pub(crate) fn base(&self) -> &Arc<Snapshot> {
        &self.base
    }

    pub(crate) fn fs(&self) -> &Arc<dyn crate::storage::fs::FileSystem> {
        self.db.fs()
    }

    /// The number of the next new segment; fails when none is left ([M10]).
    pub(crate) fn take_segment_number(&mut self) -> Result<u64> {
        crate::db::manifest::take_segment_number(&self.base.dir, &mut self.next_segment)
    }

    /// Commits a manifest whose segments are `segments` (a merge's or a
    /// compaction's outcome), through the one commit protocol. The new
    /// segments are already durable under their names.
    pub(crate) fn commit_segments(&mut self, segments: Vec<SegmentMeta>) -> Result<()> {
        let dir = self.base.dir.clone();
        // The new segments were renamed into place; make the renames durable
        // before the manifest names them.
        sync_dir(&**self.db.fs(), &dir)?;
        let manifest = Manifest {
            generation: self.base.manifest.next_generation(&dir)?,
            next_segment: self.next_segment,
            segments,
            ..self.base.manifest.clone()
        };
        let dict = Arc::clone(&self.base.dict);
        match self.install(manifest, dict) {
            Ok(()) => Ok(()),
            Err(CommitError::Before(e)) => Err(e),
            Err(CommitError::After(e)) => Err(self.stop("the merge was committed", e)),
        }
    }
}

impl Writer {
    /// Commits a manifest naming the dictionary index `meta` (already
    /// durable under its name), through the one commit protocol, and
    /// rebuilds the writer's dictionary on it ([DX3]).
    pub(crate) fn commit_index(
        &mut self,
        meta: crate::db::manifest::IndexMeta,
        dict: crate::storage::dictionary::Dictionary,
    ) -> Result<()> {
        let dir = self.base.dir.clone();
        sync_dir(&**self.db.fs(), &dir)?;
        let manifest = Manifest {
            generation: self.base.manifest.next_generation(&dir)?,
            next_segment: self.next_segment,
            index: Some(meta),
            ..self.base.manifest.clone()
        };
        match self.install(manifest, Arc::new(dict)) {
            Ok(()) => {
                // Nothing is pending between commits, so the builder can
                // start again on the index, dropping the maps of what it
                // parsed before.
                self.dict = DictionaryBuilder::new((*self.base.dict).clone());
                Ok(())
            }
            Err(CommitError::Before(e)) => Err(e),
            Err(CommitError::After(e)) => Err(self.stop("the dictionary index was committed", e)),
        }
    }
}

/// An abandoned batch leaves nothing behind: the segments it spilled are
/// removed now rather than by the next writer's recovery.
impl Drop for Writer {
    fn drop(&mut self) {
        if !self.flushed.is_empty() || self.in_flight.is_some() || !self.heads.is_empty() {
            self.discard();
        }
    }
}

pub use crate::db::compact::CompactSummary;
pub use crate::db::merge::MergeSummary;
/// What a flush on the flush thread writes: a segment of the log (the
/// budget is reached), or the log, one group of one time, as a head frame
/// when it fits one ([HD3]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlushKind {
    Segment,
    Frame,
}

/// Writes `log`, a group of one time, as the batch's next head frame when
/// it fits one ([HD3]), or else as a segment; `take_number` numbers the new
/// head or the segment, if one is needed.
fn flush_group(
    fs: &Arc<dyn crate::storage::fs::FileSystem>,
    base: &Snapshot,
    log: &Log,
    heads: &mut BatchHeads,
    pool: &rayon::ThreadPool,
    take_number: impl FnOnce() -> Result<u64>,
) -> Result<Flushed> {
    match as_frame(log) {
        Some(frame) => {
            heads.append(fs, base, &frame, take_number)?;
            Ok(Flushed::Frame)
        }
        None => {
            let number = take_number()?;
            write_segment(fs, &base.dir, number, log, pool).map(Flushed::Segment)
        }
    }
}

/// How a commit failed: before its manifest replaced the old one (the
/// batch is discarded), or after (the batch is committed).
enum CommitError {
    Before(Error),
    After(Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    /// The rename of MANIFEST is the point of no return: a commit that fails
    /// after it keeps the batch (its segments and dictionary frame, which
    /// the new manifest names), says so, and stops the writer. Discarding
    /// there once deleted segments the durable manifest named.
    #[test]
    fn a_commit_that_fails_after_its_manifest_keeps_the_batch_and_stops_the_writer() {
        const T0: i64 = 1_550_052_000_000;
        const HOUR: i64 = 3_600_000;
        let dir = tempfile::tempdir().expect("a temporary folder");
        // 1 KiB of budget: the batch spills into several segments.
        let db = Db::open_with(dir.path(), Options::default().memory_budget(1024))
            .expect("the database opens");
        let mut w = db.writer().expect("the writer opens");
        w.append("kept", "followers", T0, 1).expect("appended");
        w.commit().expect("committed");
        for i in 0..2_000i64 {
            w.append(
                &format!("a{}", i % 50),
                "followers",
                T0 + i * HOUR,
                i as u64,
            )
            .expect("appended");
        }
        w.fail_after_manifest = true;
        let error = w.commit().expect_err("the injected failure");
        assert!(matches!(error, Error::Writer(_)), "{error:?}");
        assert!(error.to_string().contains("committed"), "{error}");
        let again = w
            .append("later", "followers", T0, 1)
            .expect_err("the writer stopped");
        assert!(again.to_string().contains("open a new one"), "{again}");
        drop(w);

        let report = Db::verify(dir.path()).expect("verify runs");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.points, 2_001);
        let db = Db::open(dir.path()).expect("the database opens");
        assert_eq!(db.stats().expect("stats").points, 2_001);
        let mut w = db.writer().expect("a new writer opens");
        w.append("next", "followers", T0, 3).expect("appended");
        assert_eq!(w.commit().expect("committed").points, 1);
    }
}

#[cfg(test)]
mod frame_tests {
    use crate::{Db, TimeRange};

    const HOUR: i64 = 3_600_000;
    /// 2019-02-13T00:00:00Z, a Wednesday: epoch weeks begin on Thursdays,
    /// so hour 24 begins a week.
    const T0: i64 = 1_550_016_000_000;

    /// [HD3]: a batch of snapshots in increasing time makes one frame each,
    /// appended to the manifest's last head while its week lasts and then
    /// to a new head; a point at an earlier time ends the framing, and the
    /// rest of the batch (the group it interrupted included) is a segment
    /// listed after the heads, whose points override the frames' ([I5]).
    #[test]
    fn a_batch_of_snapshots_becomes_frames_until_time_goes_back() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = Db::open(dir.path()).expect("the database opens");
        let mut w = db.writer().expect("the writer opens");
        let accounts = 600u64;
        let snapshot = |w: &mut crate::Writer, hour: i64, plus: u64| {
            for a in 0..accounts {
                for metric in ["followers", "following"] {
                    w.append(&format!("a{a}"), metric, T0 + hour * HOUR, a + plus)
                        .expect("appended");
                }
            }
        };
        snapshot(&mut w, 20, 0);
        w.commit().expect("committed");
        // Two frames for the committed head (hours 21 and 22), one for a
        // new head (hour 30, the next week), then hour 21 again, which
        // makes hour 31 and itself a segment.
        for (hour, plus) in [(21, 1), (22, 2), (30, 3), (31, 5), (21, 4)] {
            snapshot(&mut w, hour, plus);
        }
        let summary = w.commit().expect("committed");
        assert_eq!(summary.points, 5 * 2 * accounts);
        let snapshot = db.snapshot();
        let entries: Vec<(bool, i64, i64, u64)> = snapshot
            .manifest
            .segments
            .iter()
            .map(|s| (s.head, s.t_min, s.t_max, s.points))
            .collect();
        let n = 2 * accounts;
        assert_eq!(
            entries,
            vec![
                (true, T0 + 20 * HOUR, T0 + 22 * HOUR, 3 * n),
                (true, T0 + 30 * HOUR, T0 + 30 * HOUR, n),
                (false, T0 + 21 * HOUR, T0 + 31 * HOUR, 2 * n),
            ]
        );
        let points = db.points("a7", "following", TimeRange::ALL).expect("read");
        let got: Vec<(i64, u64)> = points
            .iter()
            .map(|p| ((p.time - T0) / HOUR, p.count))
            .collect();
        assert_eq!(got, vec![(20, 7), (21, 11), (22, 9), (30, 10), (31, 12)]);
        drop(w);
        let report = Db::verify(dir.path()).expect("verify runs");
        assert!(report.is_clean(), "{:?}", report.problems);
    }

    /// A merge between appends could replace the head the batch is
    /// appending frames to ([HD4]): it waits for the commit.
    #[test]
    fn a_merge_waits_for_the_pending_batch() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = Db::open_with(dir.path(), crate::Options::default().auto_merge(false))
            .expect("the database opens");
        let mut w = db.writer().expect("the writer opens");
        w.append("a", "followers", T0, 1).expect("appended");
        let refused = w.merge().expect_err("a batch is pending");
        assert!(matches!(refused, crate::Error::Writer(_)), "{refused:?}");
        assert!(refused.to_string().contains("commit them"), "{refused}");
        w.commit().expect("committed");
        w.merge().expect("merged between batches");
        assert_eq!(db.stats().expect("stats").points, 1);
    }

    /// [HD3]: groups smaller than a chunk are not cut into frames, so a
    /// batch of a few series' histories stays one segment.
    #[test]
    fn small_groups_of_one_time_stay_in_the_log() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = Db::open(dir.path()).expect("the database opens");
        let mut w = db.writer().expect("the writer opens");
        for hour in 0..500 {
            w.append("solo", "followers", T0 + hour * HOUR, hour as u64)
                .expect("appended");
        }
        w.commit().expect("committed");
        let snapshot = db.snapshot();
        let heads = snapshot.manifest.segments.iter().filter(|s| s.head).count();
        assert_eq!((snapshot.manifest.segments.len(), heads), (1, 0));
    }
}
