//! Merging segments (docs/format.md, "Merging"): the policy that picks which
//! segments to merge after a commit, and the merge itself, which compaction
//! uses too.
//!
//! The policy is a pure function of the manifest's segment entries, so it
//! can be tested without files: every segment has a *level*, the smallest
//! tier whose epoch-aligned window holds its whole time range, and the
//! segments that lie inside one window of a tier are merged into one once
//! that window has closed, or once too many have gathered in it ([MG2]).
//!
//! A merge streams series in id order through one cursor per input segment,
//! keeping only the points that win ([I5]), writes one new segment (or a
//! few, if it passes the size cap), and commits a manifest in which the new
//! segment takes the place of the last input ([MG3]). The inputs are then
//! removed; a reader that still maps them keeps reading them ([MG5]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::db::snapshot::{Scanner, TimeRange};
use crate::db::writer::Writer;
use crate::error::Result;
use rayon::prelude::*;

use crate::storage::part::Part;
use crate::storage::segment::{Columns, GroupBuilder, SealedGroup, SegmentMeta, SegmentWriter};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The window length of each tier, in milliseconds ([MG1]). Windows are
/// aligned to the Unix epoch, and each length divides the next, so a window
/// of one tier lies inside exactly one window of every tier above it. A
/// segment whose range fits no window has level `WINDOWS_MS.len()`.
pub(crate) const WINDOWS_MS: [i64; 6] = [
    HOUR_MS,
    6 * HOUR_MS,
    DAY_MS,
    7 * DAY_MS,
    28 * DAY_MS,
    364 * DAY_MS,
];

/// A window with this many segments of the level just below gets merged
/// before it closes ([MG2]). Hourly commits put at most 7 hourly segments
/// in a 6-hour window, 3 six-hour segments in a day, 6 days in a week and 3
/// weeks in 28 days, so the count rule stays out of the way of hourly data
/// and bounds the segments of commits made more often than that.
pub(crate) const FAN_IN: usize = 8;

/// The merges after one commit read at most this many times the bytes the
/// commit wrote (but always one merge, if the policy asks for any), so that
/// the work a commit triggers stays in proportion to the commit; whatever is
/// left runs after the next commit ([MG4]).
pub(crate) const STEP_READ_FACTOR: u64 = 4;

/// And never more than this many merges, however large the commit.
pub(crate) const MAX_MERGES_PER_STEP: u64 = 64;

/// A merge's output is cut into a new segment once it passes this size, so
/// that no single file grows without bound.
const MAX_OUTPUT_BYTES: u64 = 4 << 30;

/// The level of a segment holding times `t_min ..= t_max` ([MG1]): the
/// smallest tier whose window holds both ends, or `WINDOWS_MS.len()`.
pub(crate) fn level(t_min: i64, t_max: i64) -> usize {
    WINDOWS_MS
        .iter()
        .position(|&len| t_min.div_euclid(len) == t_max.div_euclid(len))
        .unwrap_or(WINDOWS_MS.len())
}

/// The tier whose window a head's frames share ([HD3]): a head takes the
/// snapshots of one epoch-aligned week, and counts as a segment of that
/// level whatever its times ([MG1], "Head file").
pub(crate) const HEAD_TIER: usize = 3;

/// The level of a manifest entry: a head counts as a week's segment
/// whatever its times ([MG1], "Head file"), so that the tiers below leave
/// it alone until its week closes.
pub(crate) fn entry_level(s: &SegmentMeta) -> usize {
    let l = level(s.t_min, s.t_max);
    if s.head { l.max(HEAD_TIER) } else { l }
}

/// One merge the policy asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MergePlan {
    /// Positions in the manifest's segment list of the inputs, increasing.
    pub inputs: Vec<usize>,
    /// The tier whose window the inputs are merged into
    /// (`WINDOWS_MS.len()` for the unbounded tier).
    pub tier: usize,
}

/// The next merge the policy asks for in `segments` (in commit order), or
/// `None` when the database is as merged as the policy wants ([MG2]).
/// Lower tiers come first: they are cheaper, and their outputs are what the
/// tiers above merge.
pub(crate) fn plan(segments: &[SegmentMeta]) -> Option<MergePlan> {
    if segments.len() < 2 {
        return None;
    }
    let newest = segments.iter().map(|s| s.t_max).max()?;
    let levels: Vec<usize> = segments.iter().map(entry_level).collect();
    for tier in 1..=WINDOWS_MS.len() {
        // The candidates of each window of this tier: the segments that lie
        // inside it, of this level (what earlier merges made of the window)
        // or lower.
        let mut windows: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (position, segment) in segments.iter().enumerate() {
            if levels.get(position).is_some_and(|&l| l <= tier) {
                let key = WINDOWS_MS
                    .get(tier)
                    .map_or(0, |&len| segment.t_min.div_euclid(len));
                windows.entry(key).or_default().push(position);
            }
        }
        for (key, candidates) in windows {
            if candidates.len() < 2 {
                continue;
            }
            let closed = WINDOWS_MS.get(tier).is_some_and(|&len| {
                key.checked_add(1)
                    .and_then(|k| k.checked_mul(len))
                    .is_some_and(|end| newest >= end)
            });
            let children = candidates
                .iter()
                .filter(|&&p| levels.get(p) == Some(&(tier - 1)))
                .count();
            if !closed && children < FAN_IN {
                continue;
            }
            let inputs = keep_commit_order(segments, candidates);
            if inputs.len() >= 2 {
                return Some(MergePlan { inputs, tier });
            }
        }
    }
    None
}

/// The part of `inputs` (increasing positions) that can be merged without
/// changing which point wins ([MG3]): the output takes the place of the last
/// input, so it moves the earlier inputs after every segment between them
/// and it. That is harmless unless such a segment overlaps in time an
/// input before it, whose points it used to override; then only the inputs
/// after that segment are kept.
fn keep_commit_order(segments: &[SegmentMeta], mut inputs: Vec<usize>) -> Vec<usize> {
    loop {
        let (Some(&first), Some(&last)) = (inputs.first(), inputs.last()) else {
            return inputs;
        };
        let overlaps = |a: &SegmentMeta, b: &SegmentMeta| a.t_min <= b.t_max && b.t_min <= a.t_max;
        let mut cut = None;
        for between in first + 1..last {
            if inputs.binary_search(&between).is_ok() {
                continue;
            }
            let Some(other) = segments.get(between) else {
                continue;
            };
            let clashes = inputs
                .iter()
                .take_while(|&&p| p < between)
                .filter_map(|&p| segments.get(p))
                .any(|input| overlaps(input, other));
            if clashes {
                cut = Some(between);
            }
        }
        match cut {
            None => return inputs,
            Some(between) => inputs.retain(|&p| p > between),
        }
    }
}

/// What the merges after one commit (or one call of
/// [`Writer::merge`](crate::Writer::merge)) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeSummary {
    /// Merges committed.
    pub merges: u64,
    /// Segments the merges read.
    pub segments_in: u64,
    /// Segments the merges wrote.
    pub segments_out: u64,
    /// Bytes of the segments the merges read.
    pub bytes_in: u64,
    /// Bytes of the segments the merges wrote.
    pub bytes_written: u64,
    /// The step stopped at its bound with merges still to do; the next
    /// commit, or another [`Writer::merge`](crate::Writer::merge), goes on.
    pub pending: bool,
}

impl MergeSummary {
    fn add(&mut self, other: &MergeSummary) {
        self.merges += other.merges;
        self.segments_in += other.segments_in;
        self.segments_out += other.segments_out;
        self.bytes_in += other.bytes_in;
        self.bytes_written += other.bytes_written;
    }
}

/// Runs the merges the policy asks for, each committed on its own, until
/// none is left or they have read [`STEP_READ_FACTOR`] times `written` bytes
/// (the size of the commit before them) or run [`MAX_MERGES_PER_STEP`]
/// times ([MG4]).
pub(crate) fn merge_step(writer: &mut Writer, written: u64, batch: &[u64]) -> Result<MergeSummary> {
    let mut total = MergeSummary::default();
    let budget = written.saturating_mul(STEP_READ_FACTOR);
    // [MG2]: a batch larger than the memory budget was spilled into several
    // segments, each a slice of every series; they are joined first. They
    // were appended together, so they stand side by side in the manifest
    // and nothing lies between them ([MG3]).
    if batch.len() >= 2 {
        let segments = &writer.base().manifest.segments;
        let inputs: Vec<usize> = batch
            .iter()
            .filter_map(|&n| segments.iter().position(|s| s.number == n))
            .collect();
        if inputs.len() == batch.len() && inputs.windows(2).all(|w| w[1] == w[0] + 1) {
            let done = merge(writer, &inputs)?;
            total.add(&done);
        }
    }
    while let Some(plan) = plan(&writer.base().manifest.segments) {
        if total.merges > 0 && (total.bytes_in >= budget || total.merges >= MAX_MERGES_PER_STEP) {
            total.pending = true;
            break;
        }
        let done = merge(writer, &plan.inputs)?;
        total.add(&done);
    }
    crate::db::dict_index::index_if_due(writer, false)?;
    Ok(total)
}

/// Merges the segments at `inputs` (increasing positions in the manifest)
/// into new segments and commits a manifest in which they take the place
/// of the last input ([MG3]). The caller has checked that the order allows
/// it (compaction merges every segment, which it always does).
pub(crate) fn merge(writer: &mut Writer, inputs: &[usize]) -> Result<MergeSummary> {
    let base = Arc::clone(writer.base());
    let chosen: Vec<Arc<Part>> = inputs
        .iter()
        .filter_map(|&p| base.segments.get(p).cloned())
        .collect();
    let chosen_meta: Vec<SegmentMeta> = inputs
        .iter()
        .filter_map(|&p| base.manifest.segments.get(p).copied())
        .collect();
    let (Some(&last), true) = (inputs.last(), chosen.len() == inputs.len()) else {
        return Ok(MergeSummary::default());
    };
    let outputs = write_merged(writer, &chosen)?;
    let mut segments = Vec::with_capacity(base.manifest.segments.len());
    for (position, meta) in base.manifest.segments.iter().enumerate() {
        if position == last {
            segments.extend_from_slice(&outputs);
        } else if inputs.binary_search(&position).is_err() {
            segments.push(*meta);
        }
    }
    let summary = MergeSummary {
        merges: 1,
        segments_in: chosen_meta.len() as u64,
        segments_out: outputs.len() as u64,
        bytes_in: chosen_meta.iter().map(|s| s.file_len).sum(),
        bytes_written: outputs.iter().map(|s| s.file_len).sum(),
        pending: false,
    };
    if let Err(e) = writer.commit_segments(segments) {
        // The inputs are still the live segments; the outputs are named by
        // no manifest. (If the commit failed after its manifest was in
        // place, the outputs are live and the writer refuses to go on; the
        // next writer's recovery then keeps them, since the manifest names
        // them.)
        if !writer.is_stopped() {
            remove_segments(writer, &outputs);
        }
        return Err(e);
    }
    // No manifest names the inputs any more. A reader that maps them keeps
    // its mapping ([MG5]); a file we fail to remove is a leftover the next
    // writer removes ([R1]).
    remove_segments(writer, &chosen_meta);
    Ok(summary)
}

/// Series a merge reads and encodes as one unit of work: about one group.
const CHUNK_SERIES: u32 = 1024;

/// Streams the series of `inputs` (in commit order) into new segments,
/// later input winning ([I5]); nothing is visible until a manifest names
/// them. The series are cut into chunks of [`CHUNK_SERIES`] ids that are
/// read and encoded on every core (each with its own cursors over the
/// inputs), a wave at a time, and appended in id order. On error nothing is
/// left behind.
fn write_merged(writer: &mut Writer, inputs: &[Arc<Part>]) -> Result<Vec<SegmentMeta>> {
    for input in inputs {
        input.scanning();
    }
    let base = Arc::clone(writer.base());
    let fs = Arc::clone(writer.fs());
    let pool = writer.encoders()?;
    let series_count = u32::try_from(base.dict.series_count()).unwrap_or(u32::MAX);
    let chunks: Vec<(u32, u32)> = (0..series_count)
        .step_by(CHUNK_SERIES as usize)
        .map(|lo| (lo, lo.saturating_add(CHUNK_SERIES).min(series_count)))
        .collect();
    let wave_len = 2 * pool.current_num_threads().max(1);
    let mut outputs = Vec::new();
    let mut current: Option<SegmentWriter> = None;
    let result = (|| {
        for wave in chunks.chunks(wave_len) {
            let encoded: Vec<Result<Vec<SealedGroup>>> = pool.install(|| {
                wave.par_iter()
                    .map(|&(lo, hi)| encode_chunk(inputs, lo, hi))
                    .collect()
            });
            for groups in encoded {
                for group in groups? {
                    let segment = match current.as_mut() {
                        Some(segment) => segment,
                        None => current.insert(SegmentWriter::create(
                            &fs,
                            &base.dir,
                            writer.take_segment_number()?,
                        )?),
                    };
                    segment.append_group(group)?;
                }
            }
            if current
                .as_ref()
                .is_some_and(|segment| segment.bytes_written() >= MAX_OUTPUT_BYTES)
                && let Some(full) = current.take()
                && let Some(meta) = full.finish()?
            {
                outputs.push(meta);
            }
        }
        if let Some(segment) = current.take()
            && let Some(meta) = segment.finish()?
        {
            outputs.push(meta);
        }
        Ok::<(), crate::Error>(())
    })();
    if let Err(e) = result {
        if let Some(segment) = current.take() {
            segment.abandon();
        }
        remove_segments(writer, &outputs);
        return Err(e);
    }
    Ok(outputs)
}

/// Reads the series `lo .. hi` of `inputs`, merged ([I5]), and encodes them
/// into sealed groups.
fn encode_chunk(inputs: &[Arc<Part>], lo: u32, hi: u32) -> Result<Vec<SealedGroup>> {
    let mut scanner: Scanner<'_, u64> = Scanner::over(inputs, Columns::BOTH);
    let (mut times, mut values) = (Vec::new(), Vec::new());
    let mut builder = GroupBuilder::default();
    let mut groups = Vec::new();
    for id in lo..hi {
        scanner.read(id, TimeRange::ALL, &mut times, &mut values)?;
        if !times.is_empty() && builder.add_series(id, &times, &values)? {
            groups.extend(builder.seal()?);
        }
    }
    groups.extend(builder.seal()?);
    Ok(groups)
}

fn remove_segments(writer: &Writer, segments: &[SegmentMeta]) {
    let dir = &writer.base().dir;
    for meta in segments {
        let _ = writer.fs().remove_file(&dir.join(meta.file_name()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(number: u64, t_min: i64, t_max: i64) -> SegmentMeta {
        SegmentMeta {
            number,
            file_len: 100,
            points: 1,
            t_min,
            t_max,
            head: false,
        }
    }

    /// Epoch-aligned hour `h` from hour 430,776 since the epoch,
    /// 2019-02-22T00:00:00Z, a Friday: epoch weeks begin on Thursdays, so
    /// hour 144 begins a week.
    fn hour(h: i64) -> i64 {
        (430_776 + h) * HOUR_MS
    }

    #[test]
    fn levels_follow_the_windows() {
        // [MG1]
        assert_eq!(level(hour(0), hour(0)), 0);
        assert_eq!(level(hour(0), hour(0) + HOUR_MS - 1), 0);
        assert_eq!(level(hour(0), hour(1)), 1);
        assert_eq!(level(hour(0), hour(5)), 1);
        assert_eq!(level(hour(5), hour(6)), 2);
        assert_eq!(level(hour(0), hour(23)), 2);
        assert_eq!(level(i64::MIN, i64::MAX), WINDOWS_MS.len());
        assert_eq!(level(-1, 0), WINDOWS_MS.len());
        for pair in WINDOWS_MS.windows(2) {
            assert_eq!(pair[1] % pair[0], 0, "windows nest");
        }
    }

    #[test]
    fn hourly_segments_merge_when_their_window_closes() {
        // [MG2]: six hourly segments of one 6-hour window wait for it to close.
        let mut segments: Vec<SegmentMeta> = (0..6)
            .map(|h| seg(h as u64 + 1, hour(h), hour(h)))
            .collect();
        assert_eq!(plan(&segments), None);
        segments.push(seg(7, hour(6), hour(6)));
        assert_eq!(
            plan(&segments),
            Some(MergePlan {
                inputs: vec![0, 1, 2, 3, 4, 5],
                tier: 1
            })
        );
    }

    #[test]
    fn a_head_alone_in_its_closed_week_stays_a_head() {
        // [MG2]: the week of hours 0 to 143 closes at hour 144. A head alone
        // in it stays as it is (frames are smaller than columns, and a
        // one-account read of them stays small, docs/performance.md); with
        // a segment beside it in the week, the two merge.
        let head = |number, t_min, t_max| SegmentMeta {
            head: true,
            ..seg(number, t_min, t_max)
        };
        let segments = vec![head(1, hour(100), hour(143)), head(2, hour(144), hour(150))];
        assert_eq!(plan(&segments), None);
        let segments = vec![
            seg(3, hour(90), hour(99)),
            head(1, hour(100), hour(143)),
            head(2, hour(144), hour(150)),
        ];
        assert_eq!(
            plan(&segments),
            Some(MergePlan {
                inputs: vec![0, 1],
                tier: HEAD_TIER
            })
        );
    }

    #[test]
    fn too_many_segments_in_an_open_window_merge() {
        // [MG2]: minutely commits in one hour.
        let minute = 60_000;
        let segments: Vec<SegmentMeta> = (0..FAN_IN as i64)
            .map(|m| seg(m as u64 + 1, hour(0) + m * minute, hour(0) + m * minute))
            .collect();
        assert_eq!(plan(&segments[..FAN_IN - 1]), None);
        let p = plan(&segments).expect("a merge");
        assert_eq!(p.inputs.len(), FAN_IN);
    }

    #[test]
    fn a_merge_never_moves_a_point_past_one_that_overrode_it() {
        // [MG3]: segment 1 rewrote hour 0; merging 0 with 2 would put the
        // old hour 0 after the rewrite.
        let segments = vec![
            seg(1, hour(0), hour(0)),
            seg(2, hour(0), hour(30)),
            seg(3, hour(1), hour(1)),
        ];
        assert_eq!(keep_commit_order(&segments, vec![0, 2]), vec![2]);
        // A segment in between that does not overlap is no obstacle.
        let segments = vec![
            seg(1, hour(0), hour(0)),
            seg(2, hour(40), hour(40)),
            seg(3, hour(1), hour(1)),
        ];
        assert_eq!(keep_commit_order(&segments, vec![0, 2]), vec![0, 2]);
    }
}
