//! Writing a segment file (docs/format.md, "Segment file"):
//! [`GroupBuilder`] encodes series, in increasing id, into the three regions
//! of a group and its index entries ([S2]) apart from any file, so that a
//! flush can build groups on several threads; [`SegmentWriter`] appends the
//! groups from offset 16 on, then the directory and the footer, so that the
//! regions tile the file ([S1], [S3]), and renames the file into place only
//! once it is durable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{SegmentMeta, segment_file_name};
use crate::error::{Error, Result};
use crate::storage::encoding::{self, get_varint, put_varint};
use crate::storage::format::{
    Footer, GROUP_SHARED_TIMES, GroupEntry, HEADER_LEN, MAGIC_SEGMENT, SEGMENT_VERSION, put_header,
};
use crate::storage::fs::{BufferedFile, FileSystem};

/// At most this many series per group.
const GROUP_MAX_SERIES: usize = 1024;
/// A group is closed once its columns pass this many bytes.
const GROUP_MAX_BYTES: usize = 1 << 20;

/// An index entry before its group is closed.
struct EntryDraft {
    id: u32,
    points: u64,
    t_min: i64,
    t_max: i64,
    v_min: u64,
    v_max: u64,
    /// Where the series' own time column and value column start in the
    /// builder's buffers, and their lengths.
    times_start: usize,
    times_len: usize,
    values_start: usize,
    values_len: usize,
}

impl EntryDraft {
    fn time_column<'a>(&self, times: &'a [u8]) -> &'a [u8] {
        // The draft's range was cut from this very buffer in `add_series`.
        times
            .get(self.times_start..self.times_start + self.times_len)
            .unwrap_or(&[])
    }

    fn value_column<'a>(&self, values: &'a [u8]) -> &'a [u8] {
        values
            .get(self.values_start..self.values_start + self.values_len)
            .unwrap_or(&[])
    }

    /// The key under which series share a time column ([S5]).
    fn times_key<'a>(&self, times: &'a [u8]) -> (u64, i64, i64, &'a [u8]) {
        (self.points, self.t_min, self.t_max, self.time_column(times))
    }
}

/// Encodes series, in increasing id, into the regions of one group
/// (docs/format.md, "Group"), apart from any file: the unit that
/// [`SegmentWriter`] appends, and that a flush builds on several threads at
/// once.
#[derive(Default)]
pub(crate) struct GroupBuilder {
    times: Vec<u8>,
    values: Vec<u8>,
    drafts: Vec<EntryDraft>,
}

/// A closed group: its three regions back to back (times, values, index)
/// and its directory entry, whose `offset` is set when it is appended.
pub(crate) struct SealedGroup {
    entry: GroupEntry,
    bytes: Vec<u8>,
}

impl GroupBuilder {
    /// Adds one series. Its id must be greater than every id added to this
    /// group, `times` strictly increasing and as long as `values`, and not
    /// empty. Returns whether the group is now full and should be sealed.
    pub(crate) fn add_series(&mut self, id: u32, times: &[i64], values: &[u64]) -> Result<bool> {
        let (Some(&t_min), Some(&t_max)) = (times.first(), times.last()) else {
            return Err(Error::Invalid("a series in a segment needs points".into()));
        };
        if times.len() != values.len()
            || self.drafts.last().is_some_and(|last| id <= last.id)
            || times.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(Error::Invalid(format!(
                "series {id} is out of order or its times do not strictly increase"
            )));
        }
        let (mut v_min, mut v_max) = (u64::MAX, 0);
        for &v in values {
            v_min = v_min.min(v);
            v_max = v_max.max(v);
        }
        let times_start = self.times.len();
        encoding::encode_times(times, &mut self.times);
        let values_start = self.values.len();
        encoding::encode_values(values, &mut self.values);
        self.drafts.push(EntryDraft {
            id,
            points: times.len() as u64,
            t_min,
            t_max,
            v_min,
            v_max,
            times_start,
            times_len: self.times.len() - times_start,
            values_start,
            values_len: self.values.len() - values_start,
        });
        Ok(self.drafts.len() >= GROUP_MAX_SERIES
            || self.times.len() + self.values.len() >= GROUP_MAX_BYTES)
    }

    /// Closes the group: builds its three regions in the shared-times layout
    /// of docs/format.md ([S5]) and its directory entry, and leaves the
    /// builder empty for the next group. `None` when empty.
    pub(crate) fn seal(&mut self) -> Result<Option<SealedGroup>> {
        let (Some(first), Some(last)) = (self.drafts.first(), self.drafts.last()) else {
            return Ok(None);
        };
        let (first_series, last_series) = (first.id, last.id);
        let t_min = self.drafts.iter().map(|d| d.t_min).min().unwrap_or(0);
        let t_max = self.drafts.iter().map(|d| d.t_max).max().unwrap_or(0);

        // The time column most series of the group have (snapshots counted
        // at the same hours have one column between them), the first such
        // on a tie.
        // (points, t_min, t_max, column) -> (series with it, first of them).
        type TimesKey<'a> = (u64, i64, i64, &'a [u8]);
        let mut counts: std::collections::HashMap<TimesKey<'_>, (usize, usize)> =
            std::collections::HashMap::with_capacity(self.drafts.len());
        for (k, d) in self.drafts.iter().enumerate() {
            counts.entry(d.times_key(&self.times)).or_insert((0, k)).0 += 1;
        }
        let shared = counts
            .values()
            .max_by_key(|&&(count, k)| (count, std::cmp::Reverse(k)))
            .map_or(0, |&(_, k)| k);
        let Some(shared) = self.drafts.get(shared) else {
            return Ok(None);
        };
        let shared_key = shared.times_key(&self.times);

        let mut times = Vec::with_capacity(self.times.len() / 2 + 16);
        put_varint(&mut times, shared.points);
        put_varint(&mut times, shared.t_min.wrapping_sub(t_min) as u64);
        put_varint(&mut times, shared.t_max.wrapping_sub(shared.t_min) as u64);
        put_varint(&mut times, shared_key.3.len() as u64);
        times.extend_from_slice(shared_key.3);
        let mut values = Vec::with_capacity(self.values.len());
        let mut index = Vec::with_capacity(self.drafts.len() * 8);
        let mut prev = first_series;
        let mut points = 0;
        for d in &self.drafts {
            put_varint(&mut index, u64::from(d.id - prev));
            prev = d.id;
            if d.times_key(&self.times) == shared_key {
                put_varint(&mut index, 0);
            } else {
                let column = d.time_column(&self.times);
                put_varint(&mut index, column.len() as u64);
                put_varint(&mut index, d.points);
                put_varint(&mut index, d.t_min.wrapping_sub(t_min) as u64);
                put_varint(&mut index, d.t_max.wrapping_sub(d.t_min) as u64);
                times.extend_from_slice(column);
            }
            put_varint(&mut index, d.v_min);
            put_varint(&mut index, d.v_max - d.v_min);
            // A one-point series has no value column: its value is v_min.
            // Otherwise the column starts with v_0 − v_min instead of v_0.
            let start = values.len();
            if d.points > 1 {
                let column = d.value_column(&self.values);
                let mut pos = 0;
                let v_0 = get_varint(column, &mut pos).map_err(|e| {
                    Error::Invalid(format!("series {}: own value column: {}", d.id, e.0))
                })?;
                put_varint(&mut values, v_0.wrapping_sub(d.v_min));
                values.extend_from_slice(column.get(pos..).unwrap_or(&[]));
            }
            put_varint(&mut index, (values.len() - start) as u64);
            points += d.points;
        }
        let region_len = |len: usize| {
            u32::try_from(len).map_err(|_| Error::Invalid("a segment group exceeds 4 GiB".into()))
        };
        let entry = GroupEntry {
            first_series,
            last_series,
            series_count: self.drafts.len() as u32,
            times_len: region_len(times.len())?,
            values_len: region_len(values.len())?,
            index_len: region_len(index.len())?,
            offset: 0,
            t_min,
            t_max,
            points,
            times_crc: crc32fast::hash(&times),
            values_crc: crc32fast::hash(&values),
            index_crc: crc32fast::hash(&index),
            flags: GROUP_SHARED_TIMES,
        };
        let mut bytes = Vec::with_capacity(times.len() + values.len() + index.len());
        bytes.extend_from_slice(&times);
        bytes.extend_from_slice(&values);
        bytes.extend_from_slice(&index);
        self.times.clear();
        self.values.clear();
        self.drafts.clear();
        Ok(Some(SealedGroup { entry, bytes }))
    }
}

/// Streams series or sealed groups, in increasing id, into a new segment
/// file.
pub(crate) struct SegmentWriter {
    fs: Arc<dyn FileSystem>,
    number: u64,
    tmp_path: PathBuf,
    final_path: PathBuf,
    out: BufferedFile,
    written: u64,
    open: GroupBuilder,
    directory: Vec<u8>,
    groups: u32,
    footer: Footer,
    last_id: Option<u32>,
}

impl SegmentWriter {
    /// Starts segment `number` in `dir`, under a temporary name, written
    /// through `fs`.
    pub(crate) fn create(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        number: u64,
    ) -> Result<SegmentWriter> {
        let final_path = dir.join(segment_file_name(number));
        let tmp_path = dir.join(format!("{}.tmp", segment_file_name(number)));
        let file = fs.create(&tmp_path).map_err(|e| Error::io(&tmp_path, e))?;
        let mut out = BufferedFile::new(file, 1 << 20);
        let mut header = Vec::new();
        put_header(&mut header, MAGIC_SEGMENT);
        out.write_all(&header)
            .map_err(|e| Error::io(&tmp_path, e))?;
        Ok(SegmentWriter {
            fs: Arc::clone(fs),
            number,
            tmp_path,
            final_path,
            out,
            written: HEADER_LEN as u64,
            open: GroupBuilder::default(),
            directory: Vec::new(),
            groups: 0,
            footer: Footer {
                directory_offset: 0,
                group_count: 0,
                directory_crc: 0,
                series_count: 0,
                points: 0,
                t_min: i64::MAX,
                t_max: i64::MIN,
                first_series: 0,
                last_series: 0,
                version: SEGMENT_VERSION,
            },
            last_id: None,
        })
    }

    /// Bytes the file will have if finished now, roughly (the open group's
    /// index and the directory are not counted).
    pub(crate) fn bytes_written(&self) -> u64 {
        self.written + (self.open.times.len() + self.open.values.len()) as u64
    }

    // Tests write segments a series at a time; the database writes sealed
    // groups (flushes and merges encode them on every core).
    #[cfg(test)]
    /// Adds one series to the open group. Its id must be greater than every
    /// id added before, `times` strictly increasing and as long as `values`,
    /// and not empty.
    pub(crate) fn add_series(&mut self, id: u32, times: &[i64], values: &[u64]) -> Result<()> {
        if self.last_id.is_some_and(|last| id <= last) {
            return Err(Error::Invalid(format!(
                "series {id} is out of order or its times do not strictly increase"
            )));
        }
        if self.open.add_series(id, times, values)? {
            self.close_group()?;
        }
        Ok(())
    }

    /// Writes the open group, if any.
    fn close_group(&mut self) -> Result<()> {
        if let Some(group) = self.open.seal()? {
            self.write_group(group)?;
        }
        Ok(())
    }

    /// Appends a group sealed elsewhere. Its series must all come after every
    /// series added before; the open group, if any, is written first.
    pub(crate) fn append_group(&mut self, group: SealedGroup) -> Result<()> {
        self.close_group()?;
        if self
            .last_id
            .is_some_and(|last| group.entry.first_series <= last)
        {
            return Err(Error::Invalid(format!(
                "a group starting at series {} is out of order",
                group.entry.first_series
            )));
        }
        self.write_group(group)
    }

    /// Writes a sealed group's regions at the end of the file and records
    /// its directory entry and its share of the footer.
    fn write_group(&mut self, group: SealedGroup) -> Result<()> {
        let SealedGroup { mut entry, bytes } = group;
        entry.offset = self.written;
        self.out
            .write_all(&bytes)
            .map_err(|e| Error::io(&self.tmp_path, e))?;
        self.written += entry.len();
        entry.put(&mut self.directory);
        self.groups += 1;
        if self.last_id.is_none() {
            self.footer.first_series = entry.first_series;
        }
        self.last_id = Some(entry.last_series);
        self.footer.last_series = entry.last_series;
        self.footer.series_count += u64::from(entry.series_count);
        self.footer.points += entry.points;
        self.footer.t_min = self.footer.t_min.min(entry.t_min);
        self.footer.t_max = self.footer.t_max.max(entry.t_max);
        Ok(())
    }

    /// Writes the directory and footer, makes the file durable and renames it
    /// to its final name. The caller fsyncs the directory. Returns `None`
    /// (and removes the file) when no series was added.
    pub(crate) fn finish(self) -> Result<Option<SegmentMeta>> {
        let tmp_path = self.tmp_path.clone();
        let fs = Arc::clone(&self.fs);
        let finished = self.finish_inner();
        if finished.is_err() {
            // Nothing of a failed segment is left behind (the rename, the
            // last step, did not happen, so the file has its temporary name).
            let _ = fs.remove_file(&tmp_path);
        }
        finished
    }

    fn finish_inner(mut self) -> Result<Option<SegmentMeta>> {
        self.close_group()?;
        if self.groups == 0 {
            drop(self.out);
            let _ = self.fs.remove_file(&self.tmp_path);
            return Ok(None);
        }
        self.footer.directory_offset = self.written;
        self.footer.group_count = self.groups;
        self.footer.directory_crc = crc32fast::hash(&self.directory);
        let mut tail = std::mem::take(&mut self.directory);
        self.footer.put(&mut tail);
        let path = self.tmp_path.clone();
        self.out.write_all(&tail).map_err(|e| Error::io(&path, e))?;
        self.written += tail.len() as u64;
        self.out.finish().map_err(|e| Error::io(&path, e))?;
        self.fs
            .rename(&path, &self.final_path)
            .map_err(|e| Error::io(&self.final_path, e))?;
        Ok(Some(SegmentMeta {
            number: self.number,
            file_len: self.written,
            points: self.footer.points,
            t_min: self.footer.t_min,
            t_max: self.footer.t_max,
            head: false,
        }))
    }

    /// Abandons the segment and removes its temporary file.
    pub(crate) fn abandon(self) {
        drop(self.out);
        let _ = self.fs.remove_file(&self.tmp_path);
    }
}
