//! [`SegmentCursor`], a forward-only walk over one segment for scans in
//! series-id order: a scan of many series reads each group's index once.
//! It finds groups by binary search over the directory and series by
//! walking a group's entries, which relies on series ids increasing across
//! groups ([S3]) and within one ([S2]), as the reader checks.

use super::Columns;
use super::reader::{EntryIter, Segment, SeriesEntry};
use crate::error::Result;

/// A forward-only cursor over one segment: `seek` with non-decreasing ids
/// walks the groups in order, decoding each index once, so a scan of many
/// series costs one pass over the segment.
pub(crate) struct SegmentCursor<'a> {
    segment: &'a Segment,
    need: Columns,
    group: Option<usize>,
    entries: Option<EntryIter<'a>>,
    pending: Option<SeriesEntry<'a>>,
}

impl<'a> SegmentCursor<'a> {
    pub(crate) fn new(segment: &'a Segment, need: Columns) -> SegmentCursor<'a> {
        SegmentCursor {
            segment,
            need,
            group: None,
            entries: None,
            pending: None,
        }
    }

    /// The entry of series `id`, if this segment has it. Ids passed to
    /// successive calls must not decrease.
    pub(crate) fn seek(&mut self, id: u32) -> Result<Option<SeriesEntry<'a>>> {
        let footer = self.segment.footer();
        if id < footer.first_series || id > footer.last_series {
            return Ok(None);
        }
        let in_current = match self.group {
            Some(g) => self.segment.group(g)?.last_series >= id,
            None => false,
        };
        if !in_current {
            let from = self.group.map_or(0, |g| g + 1);
            let Some(g) = self.segment.group_at_or_after(id, from)? else {
                return Ok(None);
            };
            let data = self.segment.load_group(g, self.need)?;
            self.group = Some(g);
            self.entries = Some(data.entries()?);
            self.pending = None;
        }
        if let Some(p) = self.pending {
            if p.id > id {
                return Ok(None);
            }
            self.pending = None;
            if p.id == id {
                return Ok(Some(p));
            }
        }
        let Some(entries) = self.entries.as_mut() else {
            return Ok(None);
        };
        while let Some(e) = entries.next_entry()? {
            if e.id == id {
                return Ok(Some(e));
            }
            if e.id > id {
                self.pending = Some(e);
                return Ok(None);
            }
        }
        entries.finish()?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::segment_file_name;
    use super::super::tests::{sample, write_segment};
    use super::*;

    #[test]
    fn written_series_read_back_through_cursor_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let series = sample();
        let meta = write_segment(dir.path(), &series);
        let path = dir.path().join(segment_file_name(7));
        assert!(
            !dir.path()
                .join(format!("{}.tmp", segment_file_name(7)))
                .exists()
        );
        let seg = Segment::open(&path, 7, Some(meta.file_len)).unwrap();
        assert!(seg.group_count() > 1, "sample should span several groups");
        assert_eq!(seg.verify().unwrap(), meta.points);

        let mut cursor = SegmentCursor::new(&seg, Columns::BOTH);
        let (mut t, mut v) = (Vec::new(), Vec::new());
        for id in 0..3100u32 {
            let found = cursor.seek(id).unwrap();
            let expected = series.iter().find(|s| s.0 == id);
            match (found, expected) {
                (None, None) => {}
                (Some(e), Some((_, pts))) => {
                    t.clear();
                    v.clear();
                    e.decode(Columns::BOTH, &mut t, &mut v).unwrap();
                    let got: Vec<(i64, u64)> = t.iter().copied().zip(v.iter().copied()).collect();
                    assert_eq!(&got, pts, "series {id}");
                }
                (f, e) => panic!(
                    "series {id}: found {} expected {}",
                    f.is_some(),
                    e.is_some()
                ),
            }
        }
        // A fresh cursor can jump straight to a late series.
        let mut cursor = SegmentCursor::new(&seg, Columns::BOTH);
        assert_eq!(cursor.seek(2999).unwrap().map(|e| e.id), Some(2999));
    }
}
