//! A snapshot: one committed state of the database (a manifest, the
//! dictionary it covers and its segments, all opened), and the reads on it.
//!
//! A snapshot never changes. A reader keeps the one it opened until it asks
//! for a fresh one, so a commit or a compaction in another process never
//! shows it half a state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

use crate::db::manifest::Manifest;
use crate::error::{Error, Result};
use crate::storage::dictionary::Dictionary;
use crate::storage::dictionary::index::{DictIndex, index_file_name};
use crate::storage::encoding::Word;
use crate::storage::merge::merge_parts;
use crate::storage::part::{Found, Part, PartCursor};
use crate::storage::segment::{Columns, SegmentMeta};

pub(crate) const DICTIONARY: &str = "series.dict";

/// A half-open time range `[from, to)` in milliseconds. A range with
/// `from >= to` holds no time and selects no points (docs/query-language.md,
/// rule Q19a).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: i64,
    /// Exclusive end.
    pub to: i64,
}

impl TimeRange {
    /// Every time.
    pub const ALL: TimeRange = TimeRange {
        from: i64::MIN,
        to: i64::MAX,
    };

    /// True when the range holds no time: `to` is not after `from`. An
    /// empty or reversed range selects no points (docs/query-language.md,
    /// [Q19a]), as `t >= from AND t < to` would in SQL.
    pub(crate) fn is_empty(&self) -> bool {
        self.from >= self.to
    }

    /// True when `[lo, hi]` (closed) meets this range. An empty range meets
    /// nothing ([Q19a]).
    pub(crate) fn overlaps(&self, lo: i64, hi: i64) -> bool {
        !self.is_empty() && hi >= self.from && lo < self.to
    }

    /// The positions `lo..hi` of the times of sorted `times` that lie in
    /// the range. The end is never before the start, even for a reversed
    /// range, so slicing or draining with it cannot panic ([Q19a]).
    pub(crate) fn positions(&self, times: &[i64]) -> std::ops::Range<usize> {
        let lo = times.partition_point(|&t| t < self.from);
        let hi = times.partition_point(|&t| t < self.to).max(lo);
        lo..hi
    }
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange::ALL
    }
}

/// One committed state, opened.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub dict: Arc<Dictionary>,
    /// The segments and heads the manifest names, in its order.
    pub segments: Vec<Arc<Part>>,
}

impl Snapshot {
    /// Opens the current committed state of `dir`. If a segment or the
    /// dictionary index named by the manifest vanishes while we open it (a
    /// merge, a compaction or a new index committed in between), the
    /// manifest is read again ([MG5]).
    pub(crate) fn load(dir: &Path) -> Result<Snapshot> {
        let mut attempts = 0;
        loop {
            let manifest = Manifest::load(dir)?;
            let opened = load_dictionary(dir, &manifest)
                .and_then(|dict| Ok((dict, open_segments(dir, &manifest)?)));
            match opened {
                Ok((dict, segments)) => {
                    return Ok(Snapshot {
                        dir: dir.to_path_buf(),
                        manifest,
                        dict: Arc::new(dict),
                        segments,
                    });
                }
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && attempts < 5
                        && Manifest::load(dir)?.generation != manifest.generation =>
                {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Builds the snapshot a writer just committed, reusing the segments it
    /// already has open (a head is opened again when its committed length
    /// grew).
    pub(crate) fn after_commit(
        &self,
        manifest: Manifest,
        dict: Arc<Dictionary>,
    ) -> Result<Snapshot> {
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for meta in &manifest.segments {
            match self.segments.iter().find(|s| s.is(meta)) {
                Some(seg) => segments.push(Arc::clone(seg)),
                None => segments.push(open_segment(&self.dir, meta, manifest.series)?),
            }
        }
        Ok(Snapshot {
            dir: self.dir.clone(),
            manifest,
            dict,
            segments,
        })
    }

    /// The points of one series within `range`, merged across segments.
    pub(crate) fn read_series(
        &self,
        id: u32,
        range: TimeRange,
        times: &mut Vec<i64>,
        values: &mut Vec<u64>,
    ) -> Result<()> {
        let mut scanner = Scanner::new(self, Columns::BOTH);
        scanner.read(id, range, times, values)
    }
}

/// The committed dictionary of `manifest`: through its index when it names
/// one ([DX1]), parsed whole otherwise.
pub(crate) fn load_dictionary(dir: &Path, manifest: &Manifest) -> Result<Dictionary> {
    load(dir, manifest, true)
}

/// The committed dictionary parsed whole from series.dict, ignoring any
/// index (`verify` checks the index against it, [DX4]).
pub(crate) fn parse_whole_dictionary(dir: &Path, manifest: &Manifest) -> Result<Dictionary> {
    load(dir, manifest, false)
}

fn load(dir: &Path, manifest: &Manifest, use_index: bool) -> Result<Dictionary> {
    if manifest.generation == 0 {
        return Ok(Dictionary::default());
    }
    let path = dir.join(DICTIONARY);
    let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
    if len < manifest.dict_len {
        return Err(Error::corrupt(
            &path,
            format!(
                "file is {len} bytes but {} bytes were committed",
                manifest.dict_len
            ),
        ));
    }
    let map = map_file(&file, &path, manifest.dict_len)?;
    let dict = match manifest.index.filter(|_| use_index) {
        None => Dictionary::parse(&map).map_err(|e| Error::corrupt(&path, e))?,
        Some(meta) => {
            // [DX1], [M11]: ids below the index's counts come from it, and
            // the frames after what it covers are parsed.
            let index_path = dir.join(index_file_name(meta.number));
            let index = DictIndex::open(&index_path, meta.file_len, &path, map)?;
            if index.covered() > manifest.dict_len
                || index.account_count() > manifest.accounts
                || index.series_count() > manifest.series
                || index.metric_names().len() > manifest.metrics as usize
            {
                return Err(Error::corrupt(
                    &index_path,
                    "the index covers more of the dictionary than the manifest committed",
                ));
            }
            Dictionary::with_index(Arc::new(index)).map_err(|e| Error::corrupt(&path, e))?
        }
    };
    // [DI2]: the committed counts must match what the frames define.
    if dict.metrics.len() != manifest.metrics as usize
        || dict.account_count() != manifest.accounts as usize
        || dict.series_count() != manifest.series as usize
    {
        return Err(Error::corrupt(
            &path,
            "the committed frames do not define the number of names the manifest records",
        ));
    }
    Ok(dict)
}

/// Maps the committed prefix of series.dict at `path`.
pub(crate) fn map_committed(path: &Path, dict_len: u64) -> Result<Mmap> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    map_file(&file, path, dict_len)
}

fn map_file(file: &std::fs::File, path: &Path, dict_len: u64) -> Result<Mmap> {
    let committed = usize::try_from(dict_len)
        .map_err(|_| Error::corrupt(path, "committed length does not fit in memory"))?;
    // SAFETY: only the committed prefix is mapped, and nothing ever shortens
    // series.dict below a committed length: recovery truncates only the
    // uncommitted tail ([I3], [R1]).
    unsafe { MmapOptions::new().len(committed).map(file) }.map_err(|e| Error::io(path, e))
}

fn open_segments(dir: &Path, manifest: &Manifest) -> Result<Vec<Arc<Part>>> {
    manifest
        .segments
        .iter()
        .map(|meta| open_segment(dir, meta, manifest.series))
        .collect()
}

/// Opens a segment or head the manifest names and checks it against its
/// entry ([M3]).
pub(crate) fn open_segment(dir: &Path, meta: &SegmentMeta, series: u32) -> Result<Arc<Part>> {
    Ok(Arc::new(Part::open(dir, meta, series)?))
}

/// Keeps the points of `times` (increasing) and `values` that lie in
/// `range`. `values` is either as long as `times` or empty (a read of the
/// times alone); empty, it stays so.
fn cut_to<W>(range: TimeRange, times: &mut Vec<i64>, values: &mut Vec<W>) {
    let std::ops::Range { start: lo, end: hi } = range.positions(times);
    if lo > 0 || hi < times.len() {
        times.truncate(hi);
        times.drain(..lo);
        if !values.is_empty() {
            values.truncate(hi);
            values.drain(..lo);
        }
    }
}

/// Reads series in increasing id order with one forward cursor per segment,
/// reusing its buffers; the unit of work of every scan.
///
/// Reading is two steps: [`Scanner::locate`] finds a series' entries in
/// every segment and returns what their index entries say (no column is
/// decoded), and [`Scanner::read_located`] decodes them. A caller that can
/// tell from the index alone that a series cannot matter skips the second.
///
/// Values come as `W`: `u64`, as stored, or `i64` for queries, decoded
/// straight into that type ([`Word`]).
pub(crate) struct Scanner<'a, W: Word = u64> {
    cursors: Vec<PartCursor<'a>>,
    located: Vec<Option<Found<'a>>>,
    need: Columns,
    part_times: Vec<Vec<i64>>,
    part_values: Vec<Vec<W>>,
}

/// What the index entries of a located series say, over every segment that
/// holds points of it in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Located {
    /// The smallest value of the entries (a bound: points outside the range
    /// or overwritten by a later segment are included).
    pub v_min: u64,
    /// The largest value of the entries (a bound, likewise).
    pub v_max: u64,
}

impl<'a, W: Word> Scanner<'a, W> {
    pub(crate) fn new(snapshot: &'a Snapshot, need: Columns) -> Scanner<'a, W> {
        Scanner::over(&snapshot.segments, need)
    }

    /// A scanner over some segments only, given in commit order (a merge
    /// reads its inputs this way).
    pub(crate) fn over(segments: &'a [Arc<Part>], need: Columns) -> Scanner<'a, W> {
        let n = segments.len();
        Scanner {
            cursors: segments.iter().map(|s| s.cursor(need)).collect(),
            located: vec![None; n],
            need,
            part_times: vec![Vec::new(); n],
            part_values: vec![Vec::new(); n],
        }
    }

    /// Says which series the next calls will read, in increasing order: a
    /// hint that lets each head decode only their counts (a scan of one
    /// metric of several, or of some accounts). Reading a series not listed
    /// still gives its points, at the cost of decoding its chunk again.
    pub(crate) fn expect(&mut self, ids: &[u32]) {
        for cursor in &mut self.cursors {
            cursor.expect(ids);
        }
    }

    /// Finds series `id` in every segment, keeping the entries whose time
    /// range meets `range`. Returns `None` when no entry does. Ids passed to
    /// successive calls must increase.
    pub(crate) fn locate(&mut self, id: u32, range: TimeRange) -> Result<Option<Located>> {
        let mut found: Option<Located> = None;
        for (cursor, slot) in self.cursors.iter_mut().zip(&mut self.located) {
            *slot = cursor
                .seek(id)?
                .filter(|entry| range.overlaps(entry.t_min, entry.t_max));
            if let Some(entry) = slot {
                let bounds = found.get_or_insert(Located {
                    v_min: entry.v_min,
                    v_max: entry.v_max,
                });
                bounds.v_min = bounds.v_min.min(entry.v_min);
                bounds.v_max = bounds.v_max.max(entry.v_max);
            }
        }
        Ok(found)
    }

    /// Replaces `times`/`values` with series `id`'s points in `range`. Ids
    /// passed to successive calls must increase.
    pub(crate) fn read(
        &mut self,
        id: u32,
        range: TimeRange,
        times: &mut Vec<i64>,
        values: &mut Vec<W>,
    ) -> Result<()> {
        times.clear();
        values.clear();
        if self.locate(id, range)?.is_some() {
            self.read_located(range, times, values)?;
        }
        Ok(())
    }

    /// Replaces `times`/`values` with the points in `range` of the series
    /// the last [`Scanner::locate`] found, merged across segments ([I5]).
    pub(crate) fn read_located(
        &mut self,
        range: TimeRange,
        times: &mut Vec<i64>,
        values: &mut Vec<W>,
    ) -> Result<()> {
        times.clear();
        values.clear();
        // Several parts whose time ranges follow one another, as a week's
        // heads and the segments of closed windows usually do: no point of
        // one can override another's ([I5]), so each part's points go
        // straight to the end of the answer, and the range is cut once.
        let mut last_t_max: Option<i64> = None;
        let mut parts = 0;
        let mut in_order = true;
        for found in self.located.iter().flatten() {
            in_order &= last_t_max.is_none_or(|t| t < found.t_min);
            last_t_max = Some(found.t_max);
            parts += 1;
        }
        if parts > 1 && in_order {
            let need = Columns {
                times: true,
                values: self.need.values,
            };
            for (slot, cursor) in self.located.iter().zip(&self.cursors) {
                if let Some(found) = slot {
                    cursor.decode(found, need, times, values)?;
                }
            }
            cut_to(range, times, values);
            return Ok(());
        }
        let mut parts = 0;
        let mut only = None;
        for (i, (slot, cursor)) in self.located.iter().zip(&self.cursors).enumerate() {
            let Some(found) = slot else {
                continue;
            };
            let (pt, pv) = (&mut self.part_times[i], &mut self.part_values[i]);
            pt.clear();
            pv.clear();
            // Times are needed to cut the range even when only values are
            // asked for.
            cursor.decode(
                found,
                Columns {
                    times: true,
                    values: self.need.values,
                },
                pt,
                pv,
            )?;
            cut_to(range, pt, pv);
            parts += 1;
            only = Some(i);
        }
        match (parts, only) {
            (0, _) | (_, None) => {}
            (1, Some(i)) => {
                // The usual case: one segment holds the series. Hand its
                // buffer over; the caller's (cleared) buffer takes its place.
                std::mem::swap(times, &mut self.part_times[i]);
                std::mem::swap(values, &mut self.part_values[i]);
            }
            _ => {
                // Buffers of segments that were skipped are empty (every
                // call leaves them so), so merging all of them is correct.
                let refs: Vec<(&[i64], &[W])> = self
                    .part_times
                    .iter()
                    .zip(&self.part_values)
                    .map(|(t, v)| (t.as_slice(), v.as_slice()))
                    .collect();
                merge_parts(&refs, times, values);
                for (t, v) in self.part_times.iter_mut().zip(&mut self.part_values) {
                    t.clear();
                    v.clear();
                }
            }
        }
        Ok(())
    }
}
