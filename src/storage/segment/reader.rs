//! Reading a segment file (docs/format.md, "Segment file"): [`Segment`]
//! maps the file and checks its header and footer when opened ([H1], [M3],
//! [S3]), its directory the first time it is used ([S1], [S3]), and each
//! region against its checksum when it is loaded ([I4]); [`EntryIter`]
//! walks the index entries of a group and [`SeriesEntry`] decodes one
//! series' columns, checking them against its entry ([S2]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;

use super::{Columns, SegmentMeta};
use crate::error::{Error, Result};
use crate::storage::encoding::{self, get_varint};
use crate::storage::format::{
    DIRECTORY_ENTRY_LEN, FOOTER_LEN, Footer, GROUP_SHARED_TIMES, GroupEntry, HEADER_LEN,
    MAGIC_SEGMENT, check_header,
};

/// A segment file opened for reading.
pub(crate) struct Segment {
    path: PathBuf,
    number: u64,
    map: Mmap,
    footer: Footer,
    /// The result of checking the directory's checksum and tiling, done the
    /// first time any group is looked at.
    directory_ok: OnceLock<Result<(), String>>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("footer", &self.footer)
            .finish()
    }
}

impl Segment {
    /// Opens and maps a segment, checking its header and footer. When the
    /// manifest knows the file's length, a different length is damage ([M3]).
    pub(crate) fn open(path: &Path, number: u64, expected_len: Option<u64>) -> Result<Segment> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if let Some(expected) = expected_len
            && expected != len
        {
            return Err(Error::corrupt(
                path,
                format!("file is {len} bytes but the manifest says {expected}"),
            ));
        }
        if len < (HEADER_LEN + FOOTER_LEN) as u64 {
            return Err(Error::corrupt(
                path,
                format!("file is {len} bytes, too short for a segment"),
            ));
        }
        // SAFETY: segment files are never modified or truncated once renamed
        // into place ([I1]); compaction only unlinks them, which leaves an
        // existing mapping intact. A process that truncated a segment by hand
        // would make reads fault, which no Rust code can prevent for mmap.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let version = check_header(&map, MAGIC_SEGMENT).map_err(|e| Error::corrupt(path, e))?;
        let footer_bytes = map.get(map.len() - FOOTER_LEN..).unwrap_or(&[]);
        let footer = Footer::read(footer_bytes).map_err(|e| Error::corrupt(path, e))?;
        if footer.version != version {
            return Err(Error::corrupt(
                path,
                format!(
                    "footer says format version {} but the header says {version}",
                    footer.version
                ),
            ));
        }
        let dir_len = u64::from(footer.group_count) * DIRECTORY_ENTRY_LEN as u64;
        // [S3]: the directory ends exactly where the footer starts.
        if footer.directory_offset.checked_add(dir_len) != Some(len - FOOTER_LEN as u64)
            || footer.directory_offset < HEADER_LEN as u64
            || footer.group_count == 0
        {
            return Err(Error::corrupt(
                path,
                "footer's directory offset and group count do not fit the file",
            ));
        }
        Ok(Segment {
            path: path.to_path_buf(),
            number,
            map,
            footer,
            directory_ok: OnceLock::new(),
        })
    }

    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Checks the footer against the manifest's entry for this segment and
    /// the manifest's series count ([M3]): the same point count and time
    /// range, and no series the dictionary does not commit.
    pub(crate) fn check_manifest_entry(&self, meta: &SegmentMeta, series: u32) -> Result<()> {
        let f = &self.footer;
        if (f.points, f.t_min, f.t_max) != (meta.points, meta.t_min, meta.t_max) {
            return Err(self.corrupt(format!(
                "its footer's point count and time range ({} points, {} ..= {}) disagree with \
                 the manifest's ({} points, {} ..= {})",
                f.points, f.t_min, f.t_max, meta.points, meta.t_min, meta.t_max
            )));
        }
        if f.last_series >= series {
            return Err(self.corrupt(format!(
                "it holds series {} but the manifest commits {series} series",
                f.last_series
            )));
        }
        Ok(())
    }

    pub(crate) fn footer(&self) -> &Footer {
        &self.footer
    }

    fn corrupt(&self, what: impl Into<String>) -> Error {
        Error::corrupt(&self.path, what)
    }

    fn directory_bytes(&self) -> &[u8] {
        // Bounds were checked against the file length in `open`.
        let start = self.footer.directory_offset as usize;
        let end = self.map.len() - FOOTER_LEN;
        self.map.get(start..end).unwrap_or(&[])
    }

    /// Checks the directory's checksum and that its groups tile the file in
    /// increasing series order ([S1], [S3]); done once.
    fn check_directory(&self) -> Result<()> {
        let result = self.directory_ok.get_or_init(|| {
            let dir = self.directory_bytes();
            if crc32fast::hash(dir) != self.footer.directory_crc {
                return Err("directory checksum mismatch".to_string());
            }
            let mut expected_offset = HEADER_LEN as u64;
            let mut prev_last: Option<u32> = None;
            let (mut series, mut points) = (0u64, 0u64);
            let (mut t_min, mut t_max) = (i64::MAX, i64::MIN);
            for chunk in dir.chunks_exact(DIRECTORY_ENTRY_LEN) {
                let g = GroupEntry::read(chunk)?;
                // [S5]: version 1 has no flags; version 2 knows one.
                let known = if self.footer.version >= 2 {
                    GROUP_SHARED_TIMES
                } else {
                    0
                };
                if g.flags & !known != 0 {
                    return Err(format!(
                        "group at byte {} has unknown layout flags {:#x}",
                        g.offset, g.flags
                    ));
                }
                if g.offset != expected_offset {
                    return Err(format!(
                        "group at byte {} does not follow the previous one",
                        g.offset
                    ));
                }
                if g.first_series > g.last_series
                    || prev_last.is_some_and(|p| g.first_series <= p)
                    || g.series_count == 0
                    || u64::from(g.series_count) > u64::from(g.last_series - g.first_series) + 1
                    || g.t_min > g.t_max
                {
                    return Err(format!("group at byte {} is out of order", g.offset));
                }
                // [S4]: each series has a point, and at most what its value
                // column can hold; summed over the group, at most
                // 256·(values region) − 255·(series), or, where a one-point
                // series has no column ([S5]), 256·(values region) +
                // (series). The products fit a u64 (a u32 times 256).
                let most = if g.flags & GROUP_SHARED_TIMES != 0 {
                    256 * u64::from(g.values_len) + u64::from(g.series_count)
                } else {
                    (256 * u64::from(g.values_len)).saturating_sub(255 * u64::from(g.series_count))
                };
                if g.points < u64::from(g.series_count) {
                    return Err(format!(
                        "group at byte {} claims {} points, fewer than its {} series",
                        g.offset, g.points, g.series_count
                    ));
                }
                if g.points > most {
                    return Err(format!(
                        "group at byte {} claims {} points, more than its {}-byte values \
                         region can hold",
                        g.offset, g.points, g.values_len
                    ));
                }
                prev_last = Some(g.last_series);
                expected_offset += g.len();
                series += u64::from(g.series_count);
                points = points.saturating_add(g.points);
                t_min = t_min.min(g.t_min);
                t_max = t_max.max(g.t_max);
            }
            let f = &self.footer;
            if expected_offset != f.directory_offset {
                return Err("groups do not end where the directory starts".to_string());
            }
            if series != f.series_count
                || points != f.points
                || t_min != f.t_min
                || t_max != f.t_max
            {
                return Err("footer totals disagree with the directory".to_string());
            }
            Ok(())
        });
        result.clone().map_err(|e| self.corrupt(e))
    }

    /// Number of groups.
    pub(crate) fn group_count(&self) -> usize {
        self.footer.group_count as usize
    }

    /// The directory entry of group `i` (`i < group_count()`).
    pub(crate) fn group(&self, i: usize) -> Result<GroupEntry> {
        self.check_directory()?;
        let start = i * DIRECTORY_ENTRY_LEN;
        let bytes = self
            .directory_bytes()
            .get(start..start + DIRECTORY_ENTRY_LEN)
            .ok_or_else(|| self.corrupt(format!("no group {i}")))?;
        GroupEntry::read(bytes).map_err(|e| self.corrupt(e))
    }

    /// The first group at or after `from` whose last series is >= `id`.
    pub(super) fn group_at_or_after(&self, id: u32, from: usize) -> Result<Option<usize>> {
        let (mut lo, mut hi) = (from, self.group_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.group(mid)?.last_series < id {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok((lo < self.group_count()).then_some(lo))
    }

    /// Checks and returns group `i`'s regions. The times and values regions
    /// are checked only when asked for, so that a query reads only the
    /// columns it needs.
    pub(crate) fn load_group(&self, i: usize, need: Columns) -> Result<GroupData<'_>> {
        let entry = self.group(i)?;
        let region = |offset: u64, len: u32, crc: u32, name: &str, check: bool| {
            // The tiling check made every region lie inside the file.
            let start = offset as usize;
            let bytes = self.map.get(start..start + len as usize).ok_or_else(|| {
                self.corrupt(format!("{name} region of group {i} is out of bounds"))
            })?;
            if check && crc32fast::hash(bytes) != crc {
                return Err(self.corrupt(format!("{name} region of group {i}: checksum mismatch")));
            }
            Ok(bytes)
        };
        let times_at = entry.offset;
        let values_at = times_at + u64::from(entry.times_len);
        let index_at = values_at + u64::from(entry.values_len);
        Ok(GroupData {
            segment: self,
            group: i,
            // A shared-times group's times region holds the count every
            // entry of it relies on ([S5]), so it is checked even when only
            // values are read.
            times: region(
                times_at,
                entry.times_len,
                entry.times_crc,
                "times",
                need.times || entry.flags & GROUP_SHARED_TIMES != 0,
            )?,
            values: region(
                values_at,
                entry.values_len,
                entry.values_crc,
                "values",
                need.values,
            )?,
            index: region(index_at, entry.index_len, entry.index_crc, "index", true)?,
            entry,
        })
    }

    /// Reads every byte of the segment and decodes every series, checking all
    /// the rules of docs/format.md. Used by `verify`.
    pub(crate) fn verify(&self) -> Result<u64> {
        self.check_directory()?;
        let mut times = Vec::new();
        let mut values: Vec<u64> = Vec::new();
        let mut points = 0u64;
        for g in 0..self.group_count() {
            let data = self.load_group(g, Columns::BOTH)?;
            let mut count = 0u32;
            let mut group_points = 0u64;
            let mut entries = data.entries()?;
            while let Some(entry) = entries.next_entry()? {
                times.clear();
                values.clear();
                entry.decode(Columns::BOTH, &mut times, &mut values)?;
                // Saturating: a sum past 2^64 - 1 cannot equal the
                // directory's count, so it is reported below.
                group_points = group_points.saturating_add(entry.points);
                count += 1;
            }
            entries.finish()?;
            if count != data.entry.series_count {
                return Err(self.corrupt(format!(
                    "group {g} holds {count} series but its directory entry says {}",
                    data.entry.series_count
                )));
            }
            // [S4]: the entries' counts add up to the directory's.
            if group_points != data.entry.points {
                return Err(self.corrupt(format!(
                    "group {g} holds {group_points} points but its directory entry says {}",
                    data.entry.points
                )));
            }
            // The directory's counts add up to the footer's without passing
            // 2^64 - 1 ([S3], checked by `check_directory`).
            points = points.saturating_add(group_points);
        }
        Ok(points)
    }
}

/// The checked regions of one group.
pub(crate) struct GroupData<'a> {
    segment: &'a Segment,
    group: usize,
    pub entry: GroupEntry,
    times: &'a [u8],
    values: &'a [u8],
    index: &'a [u8],
}

impl<'a> GroupData<'a> {
    /// The group's index entries. In a shared-times group this reads the
    /// shared time column's header first ([S5]).
    pub(crate) fn entries(&self) -> Result<EntryIter<'a>> {
        let mut iter = EntryIter {
            segment: self.segment,
            group: self.group,
            entry: self.entry,
            times: self.times,
            values: self.values,
            index: self.index,
            pos: 0,
            times_at: 0,
            values_at: 0,
            prev_id: None,
            shared: None,
        };
        if self.entry.flags & GROUP_SHARED_TIMES != 0 {
            iter.shared = Some(iter.read_shared()?);
        }
        Ok(iter)
    }
}

/// Walks the index entries of one group in order ([S2]).
pub(crate) struct EntryIter<'a> {
    segment: &'a Segment,
    group: usize,
    entry: GroupEntry,
    times: &'a [u8],
    values: &'a [u8],
    index: &'a [u8],
    pos: usize,
    times_at: usize,
    values_at: usize,
    prev_id: Option<u32>,
    /// The time column a shared-times group's series share ([S5]).
    shared: Option<SharedTimes<'a>>,
}

/// The shared time column of a shared-times group ([S5]).
#[derive(Clone, Copy)]
struct SharedTimes<'a> {
    points: u64,
    t_min: i64,
    t_max: i64,
    column: &'a [u8],
}

impl<'a> EntryIter<'a> {
    /// Reads the header of the times region of a shared-times group and the
    /// shared column after it; own columns follow it.
    fn read_shared(&mut self) -> Result<SharedTimes<'a>> {
        let mut pos = 0;
        let mut field = || get_varint(self.times, &mut pos).map_err(|e| self.corrupt(e.0));
        let (points, t_min_off, t_span, len) = (field()?, field()?, field()?, field()?);
        let (t_min, t_max) = self.time_range(t_min_off, t_span)?;
        self.check_points(points)?;
        let column = usize::try_from(len)
            .ok()
            .and_then(|len| self.times.get(pos..pos.checked_add(len)?))
            .ok_or_else(|| self.corrupt("the shared time column runs past its region"))?;
        self.times_at = pos + column.len();
        Ok(SharedTimes {
            points,
            t_min,
            t_max,
            column,
        })
    }

    /// A series' time range from its offsets, inside its group's ([S2]).
    fn time_range(&self, t_min_off: u64, t_span: u64) -> Result<(i64, i64)> {
        let t_min = self.entry.t_min.wrapping_add(t_min_off as i64);
        let t_max = t_min.wrapping_add(t_span as i64);
        if t_min < self.entry.t_min || t_max > self.entry.t_max || t_max < t_min {
            return Err(self.corrupt("a series' time range is outside its group's"));
        }
        Ok((t_min, t_max))
    }

    fn check_points(&self, points: u64) -> Result<()> {
        if points == 0 || points > u64::from(u32::MAX) {
            return Err(self.corrupt("a series has an impossible point count"));
        }
        Ok(())
    }

    fn corrupt(&self, what: &str) -> Error {
        self.segment
            .corrupt(format!("index of group {}: {what}", self.group))
    }

    /// The next entry, or `None` at the end of the group.
    pub(crate) fn next_entry(&mut self) -> Result<Option<SeriesEntry<'a>>> {
        if self.pos >= self.index.len() {
            return Ok(None);
        }
        let id_delta = self.field()?;
        let base = self.prev_id.unwrap_or(self.entry.first_series);
        if (self.prev_id.is_some() && id_delta == 0) || (self.prev_id.is_none() && id_delta != 0) {
            return Err(self.corrupt("series ids do not increase"));
        }
        let id = u64::from(base) + id_delta;
        if id > u64::from(self.entry.last_series) {
            return Err(self.corrupt("a series id is past the group's last"));
        }
        let id = id as u32; // <= last_series, a u32.
        let take = |region: &'a [u8], at: &mut usize, len: u64| -> Option<&'a [u8]> {
            let len = usize::try_from(len).ok()?;
            let end = at.checked_add(len)?;
            let bytes = region.get(*at..end)?;
            *at = end;
            Some(bytes)
        };
        // Version 1: count, t_min offset, t_span, v_min, v_span, times
        // length, values length. Shared-times groups ([S5]): times length
        // first, 0 for the shared column, else followed by count, t_min
        // offset and t_span; then v_min, v_span, values length.
        let (points, t_min, t_max, times, v_min, v_span, values_len) = match self.shared {
            None => {
                let points = self.field()?;
                let (t_min_off, t_span) = (self.field()?, self.field()?);
                let (v_min, v_span) = (self.field()?, self.field()?);
                let (times_len, values_len) = (self.field()?, self.field()?);
                self.check_points(points)?;
                let (t_min, t_max) = self.time_range(t_min_off, t_span)?;
                let times = take(self.times, &mut self.times_at, times_len)
                    .ok_or_else(|| self.corrupt("a time column runs past its region"))?;
                (points, t_min, t_max, times, v_min, v_span, values_len)
            }
            Some(shared) => {
                let times_len = self.field()?;
                let (points, t_min, t_max, times) = if times_len == 0 {
                    (shared.points, shared.t_min, shared.t_max, shared.column)
                } else {
                    let points = self.field()?;
                    let (t_min_off, t_span) = (self.field()?, self.field()?);
                    self.check_points(points)?;
                    let (t_min, t_max) = self.time_range(t_min_off, t_span)?;
                    let times = take(self.times, &mut self.times_at, times_len)
                        .ok_or_else(|| self.corrupt("a time column runs past its region"))?;
                    (points, t_min, t_max, times)
                };
                let (v_min, v_span, values_len) = (self.field()?, self.field()?, self.field()?);
                // [S5]: exactly the one-point series have no value column.
                if (points == 1) != (values_len == 0) || (points == 1 && v_span != 0) {
                    return Err(
                        self.corrupt("a series' value column does not match its point count")
                    );
                }
                (points, t_min, t_max, times, v_min, v_span, values_len)
            }
        };
        // [S4]: the count must fit in the value column before anything is
        // decoded or allocated for it; a regular time column would vouch
        // for any count. A one-point series of a shared-times group has no
        // column at all ([S5], checked above).
        if values_len > 0 && points > encoding::max_points(values_len) {
            return Err(self.corrupt(&format!(
                "series {id} claims {points} points, more than its {values_len}-byte value \
                 column can hold"
            )));
        }
        if values_len == 0 && self.shared.is_none() {
            return Err(self.corrupt(&format!("series {id} has no value column")));
        }
        // [S2]: counts are at most 2^63 - 1, so readers may treat them as i64.
        let Some(v_max) = v_min.checked_add(v_span).filter(|&m| m <= i64::MAX as u64) else {
            return Err(self.corrupt("a series' value range is above 2^63 - 1"));
        };
        let values = take(self.values, &mut self.values_at, values_len)
            .ok_or_else(|| self.corrupt("a value column runs past its region"))?;
        self.prev_id = Some(id);
        Ok(Some(SeriesEntry {
            segment: self.segment,
            id,
            points,
            t_min,
            t_max,
            v_min,
            v_max,
            times,
            values,
            relative: self.shared.is_some(),
        }))
    }

    fn field(&mut self) -> Result<u64> {
        get_varint(self.index, &mut self.pos).map_err(|e| self.corrupt(e.0))
    }

    /// Checks that the group's columns were used up exactly ([S2]).
    pub(crate) fn finish(&self) -> Result<()> {
        if self.times_at != self.times.len() || self.values_at != self.values.len() {
            return Err(self.corrupt("column lengths do not add up to the regions"));
        }
        Ok(())
    }
}

/// One series' entry in one segment.
#[derive(Clone, Copy)]
pub(crate) struct SeriesEntry<'a> {
    segment: &'a Segment,
    pub id: u32,
    pub points: u64,
    pub t_min: i64,
    pub t_max: i64,
    pub v_min: u64,
    pub v_max: u64,
    times: &'a [u8],
    values: &'a [u8],
    /// The value column is that of a shared-times group: it starts with
    /// v_0 − v_min, and is empty for a one-point series ([S5]).
    relative: bool,
}

impl SeriesEntry<'_> {
    /// Appends the series' points to `times` and `values` (only the columns
    /// asked for), checking them against the index entry ([S2]).
    ///
    /// Values are decoded as `u64` or, for queries, straight into `i64`
    /// ([`encoding::Word`]); the bounds check makes both the same numbers.
    pub(crate) fn decode<W: encoding::Word>(
        &self,
        need: Columns,
        times: &mut Vec<i64>,
        values: &mut Vec<W>,
    ) -> Result<()> {
        let n = self.points as usize; // <= u32::MAX, checked when read.
        let what = |e: crate::storage::encoding::DecodeError| {
            self.segment.corrupt(format!("series {}: {}", self.id, e.0))
        };
        if need.times {
            let start = times.len();
            encoding::decode_times(self.times, self.t_min, n, times).map_err(what)?;
            if times.len() != start + n || times.last() != Some(&self.t_max) {
                return Err(self.segment.corrupt(format!(
                    "series {}: decoded times disagree with the index",
                    self.id
                )));
            }
        }
        if need.values {
            // The decoder checks every value against the index entry's
            // bounds as it makes them, and appends exactly n values or
            // fails, leaving `values` as it was.
            if !self.relative {
                encoding::decode_values_within(self.values, n, self.v_min, self.v_max, values)
                    .map_err(what)?;
            } else if self.values.is_empty() {
                // A one-point series: its value is v_min (next_entry checked
                // that the point count is 1).
                values.push(W::from_bits(self.v_min));
            } else {
                // Decoded relative to v_min, within 0 ..= v_max − v_min, then
                // moved up; v_max <= 2^63 − 1, so nothing wraps.
                let start = values.len();
                let span = self.v_max - self.v_min;
                encoding::decode_values_within(self.values, n, 0, span, values).map_err(what)?;
                if self.v_min != 0 {
                    for v in values.get_mut(start..).unwrap_or(&mut []) {
                        *v = W::from_bits(v.to_bits() + self.v_min);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::segment_file_name;
    use super::super::tests::{sample, write_segment};
    use super::*;
    use crate::storage::encoding::put_varint;
    use crate::storage::format::put_header_version;
    use crate::storage::segment::SegmentCursor;

    /// One series of a hand-made group: its count, time range and columns,
    /// with values all 5.
    struct Forged {
        points: u64,
        t_min: i64,
        t_span: u64,
        times: Vec<u8>,
        values: Vec<u8>,
    }

    /// A one-group segment of `series` (ids 0, 1, …) whose checksums all
    /// hold, whatever it claims; the directory and footer count
    /// `dir_points` points, or the sum of the series' counts.
    fn forge(series: &[Forged], dir_points: Option<u64>) -> Vec<u8> {
        let (mut times, mut values, mut index) = (Vec::new(), Vec::new(), Vec::new());
        let t_min = series.iter().map(|s| s.t_min).min().unwrap();
        let t_max = series
            .iter()
            .map(|s| s.t_min + s.t_span as i64)
            .max()
            .unwrap();
        for (i, s) in series.iter().enumerate() {
            for field in [
                u64::from(i > 0),
                s.points,
                (s.t_min - t_min) as u64,
                s.t_span,
                5,
                0,
                s.times.len() as u64,
                s.values.len() as u64,
            ] {
                put_varint(&mut index, field);
            }
            times.extend_from_slice(&s.times);
            values.extend_from_slice(&s.values);
        }
        let n = series.len() as u32;
        let points = dir_points.unwrap_or(series.iter().map(|s| s.points).sum());
        let entry = GroupEntry {
            first_series: 0,
            last_series: n - 1,
            series_count: n,
            times_len: times.len() as u32,
            values_len: values.len() as u32,
            index_len: index.len() as u32,
            offset: HEADER_LEN as u64,
            t_min,
            t_max,
            points,
            times_crc: crc32fast::hash(&times),
            values_crc: crc32fast::hash(&values),
            index_crc: crc32fast::hash(&index),
            // A version-1 group, as the file's header says.
            flags: 0,
        };
        let mut file = Vec::new();
        put_header_version(&mut file, MAGIC_SEGMENT, 1);
        file.extend_from_slice(&times);
        file.extend_from_slice(&values);
        file.extend_from_slice(&index);
        let mut directory = Vec::new();
        entry.put(&mut directory);
        let footer = Footer {
            directory_offset: file.len() as u64,
            group_count: 1,
            directory_crc: crc32fast::hash(&directory),
            series_count: u64::from(n),
            points,
            t_min,
            t_max,
            first_series: 0,
            last_series: n - 1,
            version: 1,
        };
        file.extend_from_slice(&directory);
        footer.put(&mut file);
        file
    }

    /// A series that claims `points` points one millisecond apart: a
    /// regular time column (`00 01 00`, valid for any count) and a value
    /// column of `values_len` bytes (v_0, then all-zero blocks).
    fn regular(points: u64, values_len: usize) -> Forged {
        let mut values = vec![5];
        values.resize(values_len, 0);
        Forged {
            points,
            t_min: 1_550_052_000_000,
            t_span: points - 1,
            times: vec![0, 1, 0],
            values,
        }
    }

    fn open_forged(dir: &Path, bytes: &[u8]) -> Segment {
        let path = dir.join(segment_file_name(1));
        std::fs::write(&path, bytes).unwrap();
        Segment::open(&path, 1, Some(bytes.len() as u64)).unwrap()
    }

    #[test]
    fn a_255_byte_segment_claiming_4_billion_points_is_damage_not_32_gib() {
        // [S4]: the segment of issue 10. Every checksum holds and every
        // count agrees with every other, but a 76-byte value column holds
        // at most 256·75 + 1 points. Before the rule, verify and every
        // query reserved 2^32 - 1 times (32 GiB) and aborted; now the
        // directory is refused before any column is decoded.
        let dir = tempfile::tempdir().unwrap();
        let bytes = forge(&[regular(u64::from(u32::MAX), 76)], None);
        assert_eq!(bytes.len(), 255);
        let seg = open_forged(dir.path(), &bytes);
        let err = seg.verify().unwrap_err().to_string();
        assert!(
            err.contains("seg-0000000000000001.tseg")
                && err.contains("claims 4294967295 points, more than its 76-byte values region"),
            "{err}"
        );
        let err = SegmentCursor::new(&seg, Columns::BOTH)
            .seek(0)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("claims 4294967295 points"), "{err}");
    }

    #[test]
    fn an_index_entry_claiming_more_than_its_value_column_holds_is_damage() {
        // [S4], per series: the group as a whole is within its bound (the
        // second series leaves room), but the first series claims one
        // point more than its 76 bytes can hold.
        let dir = tempfile::tempdir().unwrap();
        let most = 256 * 75 + 1;
        let bytes = forge(&[regular(most + 1, 76), regular(1, 76)], None);
        let seg = open_forged(dir.path(), &bytes);
        let err = seg.verify().unwrap_err().to_string();
        assert!(
            err.contains("series 0 claims 19202 points, more than its 76-byte value column"),
            "{err}"
        );
        let mut cursor = SegmentCursor::new(&seg, Columns::BOTH);
        assert!(cursor.seek(0).is_err());
        // At the bound, the same series is valid and reads back (and so is
        // the group, at its own bound: 256·77 − 255·2 points).
        let bytes = forge(&[regular(most, 76), regular(1, 1)], None);
        let seg = open_forged(dir.path(), &bytes);
        assert_eq!(seg.verify().unwrap(), most + 1);
        let entry = SegmentCursor::new(&seg, Columns::BOTH)
            .seek(0)
            .unwrap()
            .unwrap();
        let (mut t, mut v) = (Vec::new(), Vec::<u64>::new());
        entry.decode(Columns::BOTH, &mut t, &mut v).unwrap();
        assert_eq!((t.len(), v.len()), (most as usize, most as usize));
    }

    #[test]
    fn a_group_whose_entries_do_not_add_up_to_its_directory_count_is_damage() {
        // [S4]: three points in the index, four in the directory (and so
        // in the footer), within every bound.
        let dir = tempfile::tempdir().unwrap();
        let seg = open_forged(dir.path(), &forge(&[regular(3, 2)], Some(4)));
        let err = seg.verify().unwrap_err().to_string();
        assert!(
            err.contains("group 0 holds 3 points but its directory entry says 4"),
            "{err}"
        );
        assert_eq!(
            open_forged(dir.path(), &forge(&[regular(3, 2)], None))
                .verify()
                .unwrap(),
            3
        );
    }

    #[test]
    fn a_segment_must_agree_with_its_manifest_entry() {
        // [M3]: the footer's count and time range, and the series the
        // dictionary commits.
        let dir = tempfile::tempdir().unwrap();
        let bytes = forge(&[regular(3, 2), regular(1, 1)], None);
        let seg = open_forged(dir.path(), &bytes);
        let f = *seg.footer();
        let meta = SegmentMeta {
            number: 1,
            file_len: bytes.len() as u64,
            points: f.points,
            t_min: f.t_min,
            t_max: f.t_max,
            head: false,
        };
        seg.check_manifest_entry(&meta, 2).unwrap();
        let err = seg.check_manifest_entry(&meta, 1).unwrap_err().to_string();
        assert!(
            err.contains("it holds series 1 but the manifest commits 1 series"),
            "{err}"
        );
        for other in [
            SegmentMeta { points: 5, ..meta },
            SegmentMeta {
                t_min: f.t_min - 1,
                ..meta
            },
            SegmentMeta {
                t_max: f.t_max + 1,
                ..meta
            },
        ] {
            let err = seg.check_manifest_entry(&other, 2).unwrap_err().to_string();
            assert!(
                err.contains("seg-0000000000000001.tseg")
                    && err.contains("disagree with the manifest's"),
                "{err}"
            );
        }
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_an_error() {
        // [I4] [S1]: every byte is covered by a checksum.
        let dir = tempfile::tempdir().unwrap();
        let series: Vec<_> = sample().into_iter().take(40).collect();
        let meta = write_segment(dir.path(), &series);
        let path = dir.path().join(segment_file_name(7));
        let good = std::fs::read(&path).unwrap();
        let bad_path = dir.path().join("bad.tseg");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            std::fs::write(&bad_path, &bad).unwrap();
            let result = Segment::open(&bad_path, 7, Some(meta.file_len)).and_then(|s| s.verify());
            assert!(result.is_err(), "flip at byte {i} went unnoticed");
        }
        for cut in [0, 10, HEADER_LEN, good.len() / 2, good.len() - 1] {
            std::fs::write(&bad_path, &good[..cut]).unwrap();
            let result = Segment::open(&bad_path, 7, None).and_then(|s| s.verify());
            let err = result.expect_err("truncation went unnoticed");
            assert!(err.to_string().contains("bad.tseg"), "{err}");
        }
    }
}
