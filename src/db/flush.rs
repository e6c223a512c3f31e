//! The flush: the writer's log of appended points, and how a full log
//! becomes a segment (docs/format.md, "Segment file"). The log is sorted by
//! series with a counting sort (stable, so that among points of one series
//! and time the one appended last wins), cut into chunks of whole series,
//! and encoded into sealed groups on every core. Nothing a flush writes is
//! visible until a commit names it (db/writer.rs).

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::storage::fs::FileSystem;
use crate::storage::segment::{GroupBuilder, SealedGroup, SegmentMeta, SegmentWriter};

/// The log: the points appended since the last flush, in append order, as
/// three columns.
#[derive(Debug, Default)]
pub(super) struct Log {
    series: Vec<u32>,
    times: Vec<i64>,
    values: Vec<u64>,
}

impl Log {
    pub(super) fn len(&self) -> usize {
        self.series.len()
    }

    /// Appends a point. The columns grow by doubling, but never past `cap`
    /// points (the point at which the log is flushed), so that a full log
    /// takes what the budget counts and not up to twice that.
    #[inline]
    pub(super) fn push(&mut self, series: u32, time_ms: i64, count: u64, cap: usize) {
        if self.series.len() == self.series.capacity() {
            let len = self.series.len();
            let more = len.max(1024).min(cap.saturating_sub(len)).max(1);
            self.series.reserve_exact(more);
            self.times.reserve_exact(more);
            self.values.reserve_exact(more);
        }
        self.series.push(series);
        self.times.push(time_ms);
        self.values.push(count);
    }

    pub(super) fn clear(&mut self) {
        self.series.clear();
        self.times.clear();
        self.values.clear();
    }
}

/// What a flush wrote.
pub(super) enum Flushed {
    /// A segment, `None` for an empty log.
    Segment(Option<SegmentMeta>),
    /// A frame of the batch's heads ([HD3]).
    Frame,
}

/// What a flush on its own thread hands back: what it wrote, the log's
/// columns for reuse, and for a frame the batch's heads and the segment
/// number it was given if it did not use it.
pub(super) struct FlushOutcome {
    pub(super) result: Result<Flushed>,
    pub(super) log: Log,
    pub(super) heads: Option<crate::db::frame::BatchHeads>,
    pub(super) unused_number: Option<u64>,
}

/// Writes `log` as segment `number` in `dir` (not yet visible); `None` for
/// an empty log. The log is sorted by series (a counting sort), then cut
/// into chunks of whole series that are gathered and encoded into sealed
/// groups on every core at once; the groups are appended to the segment in
/// series order, a wave of chunks at a time so that the encoded bytes
/// waiting to be written stay small. The chunks are encoded on `pool`. On
/// error, nothing is left behind (but for a panic, whose temporary file
/// the next writer's recovery removes).
pub(super) fn write_segment(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    number: u64,
    log: &Log,
    pool: &rayon::ThreadPool,
) -> Result<Option<SegmentMeta>> {
    if log.len() == 0 {
        return Ok(None);
    }
    let sorted = SortedLog::new(&log.series);
    let mut segment = SegmentWriter::create(fs, dir, number)?;
    let columns = LogColumns {
        order: &sorted.order,
        times: &log.times,
        values: &log.values,
    };
    let chunks = sorted.chunks();
    let wave_len = 2 * pool.current_num_threads().max(1);
    let result = (|| {
        for wave in chunks.chunks(wave_len) {
            let encoded: Vec<Result<Vec<SealedGroup>>> =
                pool.install(|| wave.par_iter().map(|runs| columns.encode(runs)).collect());
            for groups in encoded {
                for group in groups? {
                    segment.append_group(group)?;
                }
            }
        }
        Ok::<(), Error>(())
    })();
    if let Err(e) = result {
        segment.abandon();
        return Err(e);
    }
    segment.finish()
}

/// A group of points of one time, as a head frame stores it ([HD3]).
pub(super) struct FramePoints {
    pub(super) time: i64,
    /// Strictly increasing.
    pub(super) ids: Vec<u32>,
    /// The count of each id: the last appended for it ([I5]).
    pub(super) values: Vec<u64>,
}

/// The log as a frame, when all its points have one time and its series
/// are dense enough in their range ([HD3]); `None` otherwise.
pub(super) fn as_frame(log: &Log) -> Option<FramePoints> {
    let (&time, rest) = log.times.split_first()?;
    if rest.iter().any(|&t| t != time) {
        return None;
    }
    let lo = *log.series.iter().min()?;
    let hi = *log.series.iter().max()?;
    let start = crate::storage::head::range_start(lo);
    // Even without repeats the ids could not be dense enough: decide
    // before allocating anything the size of the range.
    if crate::storage::head::MIN_DENSITY * log.len() as u64 <= u64::from(hi - start) {
        return None;
    }
    let span = (hi - lo) as usize + 1;
    let mut latest = vec![0u64; span];
    let mut seen = vec![false; span];
    for (&id, &v) in log.series.iter().zip(&log.values) {
        // lo <= id <= hi, so the index is below span.
        if let (Some(slot), Some(flag)) = (
            latest.get_mut((id - lo) as usize),
            seen.get_mut((id - lo) as usize),
        ) {
            *slot = v;
            *flag = true;
        }
    }
    let mut ids = Vec::with_capacity(log.len().min(span));
    let mut values = Vec::with_capacity(ids.capacity());
    for (k, (&v, &s)) in latest.iter().zip(&seen).enumerate() {
        if s {
            ids.push(lo + k as u32);
            values.push(v);
        }
    }
    crate::storage::head::frame_fits(&ids).then_some(FramePoints { time, ids, values })
}

/// A flush chunk holds at most this many series, so that it makes about one
/// group (docs/format.md: at most 1024 series per group).
const CHUNK_MAX_SERIES: usize = 1024;
/// … and at most about this many points, so that the chunks of a wave, encoded
/// and waiting to be written, stay a few MiB even for incompressible counts.
const CHUNK_MAX_POINTS: usize = 1 << 18;

/// The points of one series in the sorted log: `order[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    series: u32,
    start: u32,
    end: u32,
}

/// The log ordered by series: a permutation of its indexes, and the run of
/// each series present, in increasing id.
struct SortedLog {
    order: Vec<u32>,
    runs: Vec<Run>,
}

impl SortedLog {
    /// Sorts the indexes of `series` by series id, stably (a counting sort:
    /// two passes over the log and one array over the ids' range), so that
    /// among the points of one series the order of appends is kept.
    fn new(series: &[u32]) -> SortedLog {
        let (Some(&lo), Some(&hi)) = (series.iter().min(), series.iter().max()) else {
            return SortedLog {
                order: Vec::new(),
                runs: Vec::new(),
            };
        };
        // next[k] is where the next point of series lo + k goes: first the
        // start of its run, and after the scatter the end of it.
        let mut next = vec![0u32; (hi - lo) as usize + 2];
        for &s in series {
            // s - lo <= hi - lo, so the index is in bounds.
            next[(s - lo) as usize + 1] += 1;
        }
        for i in 1..next.len() {
            next[i] += next[i - 1];
        }
        let mut order = vec![0u32; series.len()];
        for (i, &s) in series.iter().enumerate() {
            let slot = &mut next[(s - lo) as usize];
            order[*slot as usize] = i as u32;
            *slot += 1;
        }
        let mut runs = Vec::new();
        let mut start = 0;
        for (k, &end) in next.iter().enumerate().take((hi - lo) as usize + 1) {
            if end > start {
                runs.push(Run {
                    series: lo + k as u32,
                    start,
                    end,
                });
            }
            start = end;
        }
        SortedLog { order, runs }
    }

    /// The runs cut into chunks of at most `CHUNK_MAX_SERIES` series and
    /// about `CHUNK_MAX_POINTS` points (a longer series makes a chunk alone).
    fn chunks(&self) -> Vec<&[Run]> {
        let mut chunks = Vec::new();
        let mut first = 0;
        let mut points = 0;
        for (i, run) in self.runs.iter().enumerate() {
            let len = (run.end - run.start) as usize;
            if i > first && (i - first >= CHUNK_MAX_SERIES || points + len > CHUNK_MAX_POINTS) {
                chunks.push(&self.runs[first..i]);
                first = i;
                points = 0;
            }
            points += len;
        }
        if first < self.runs.len() {
            chunks.push(&self.runs[first..]);
        }
        chunks
    }
}

/// The columns of the log, read through the sorted order.
struct LogColumns<'a> {
    order: &'a [u32],
    times: &'a [i64],
    values: &'a [u64],
}

impl LogColumns<'_> {
    /// Gathers and encodes the series of `runs` into sealed groups. Among
    /// points of one series with the same time, the last appended wins
    /// ([I5]).
    fn encode(&self, runs: &[Run]) -> Result<Vec<SealedGroup>> {
        let mut groups = Vec::new();
        let mut builder = GroupBuilder::default();
        let mut pairs: Vec<(i64, u64)> = Vec::new();
        let (mut times, mut values) = (Vec::new(), Vec::new());
        for run in runs {
            pairs.clear();
            // The runs partition `order` and every index in it is below the
            // log's length (SortedLog::new), so neither lookup can fail; a
            // failure would be a bug, reported rather than a panic.
            let Some(indexes) = self.order.get(run.start as usize..run.end as usize) else {
                return Err(Error::Invalid("the flush's sort lost its place".into()));
            };
            for &i in indexes {
                let (Some(&t), Some(&v)) =
                    (self.times.get(i as usize), self.values.get(i as usize))
                else {
                    return Err(Error::Invalid("the flush's sort lost its place".into()));
                };
                pairs.push((t, v));
            }
            // A stable sort keeps equal times in append order, so keeping the
            // last of each run of equal times keeps the latest append.
            if pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
                pairs.sort_by_key(|p| p.0);
            }
            times.clear();
            values.clear();
            for (k, &(t, v)) in pairs.iter().enumerate() {
                if pairs.get(k + 1).is_some_and(|next| next.0 == t) {
                    continue;
                }
                times.push(t);
                values.push(v);
            }
            if builder.add_series(run.series, &times, &values)? {
                groups.extend(builder.seal()?);
            }
        }
        groups.extend(builder.seal()?);
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// [HD3]: a log of one time is the frame of the last count appended
        /// for each id, in increasing id order, and no frame when its ids
        /// are not dense enough or it holds a second time.
        #[test]
        fn a_log_of_one_time_is_the_frame_of_its_last_counts(
            points in proptest::collection::vec((0u32..3000, 0u64..1000), 1..400),
            sorted in proptest::bool::ANY,
            base in 0u32..5000,
        ) {
            let mut points: Vec<(u32, u64)> =
                points.into_iter().map(|(id, v)| (id + base, v)).collect();
            if sorted {
                points.sort_by_key(|p| p.0);
                points.dedup_by_key(|p| p.0);
            }
            let mut log = Log::default();
            for &(id, v) in &points {
                log.push(id, 7, v, usize::MAX);
            }
            let model: std::collections::BTreeMap<u32, u64> = points.iter().copied().collect();
            let ids: Vec<u32> = model.keys().copied().collect();
            let values: Vec<u64> = model.values().copied().collect();
            let dense = crate::storage::head::frame_fits(&ids);
            match as_frame(&log) {
                Some(frame) => {
                    proptest::prop_assert!(dense);
                    proptest::prop_assert_eq!(frame.time, 7);
                    proptest::prop_assert_eq!(frame.ids, ids);
                    proptest::prop_assert_eq!(frame.values, values);
                }
                None => proptest::prop_assert!(!dense),
            }
            log.push(base, 8, 1, usize::MAX);
            proptest::prop_assert!(as_frame(&log).is_none(), "two times are no frame");
        }
    }

    #[test]
    fn counting_sort_is_stable_and_finds_the_runs() {
        let series = [5, 3, 5, 3, 9, 5];
        let sorted = SortedLog::new(&series);
        assert_eq!(sorted.order, vec![1, 3, 0, 2, 5, 4]);
        let run = |series, start, end| Run { series, start, end };
        assert_eq!(sorted.runs, vec![run(3, 0, 2), run(5, 2, 5), run(9, 5, 6)]);
        let empty = SortedLog::new(&[]);
        assert!(empty.order.is_empty() && empty.runs.is_empty());
    }

    #[test]
    fn chunks_hold_whole_series_within_both_limits() {
        // 3000 series of 200 points each: the point limit (2^18 = 262144)
        // would cut every 1310 series, the series limit cuts every 1024.
        let mut series = Vec::new();
        for s in 0..3000u32 {
            series.extend(std::iter::repeat_n(s, 200));
        }
        let sorted = SortedLog::new(&series);
        let sizes: Vec<usize> = sorted.chunks().iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![1024, 1024, 952]);
        // 1000 series of 1000 points: the point limit cuts every 262.
        let mut series = Vec::new();
        for s in 0..1000u32 {
            series.extend(std::iter::repeat_n(s, 1000));
        }
        let sorted = SortedLog::new(&series);
        let sizes: Vec<usize> = sorted.chunks().iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![262, 262, 262, 214]);
        // One long series is a chunk alone, whatever its length.
        let mut series = vec![7u32; CHUNK_MAX_POINTS + 5];
        series.extend([8, 9]);
        let sorted = SortedLog::new(&series);
        let sizes: Vec<usize> = sorted.chunks().iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![1, 2]);
    }
}
