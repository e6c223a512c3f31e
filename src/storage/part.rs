//! A *part* is whatever a manifest entry names: a segment file or a head
//! file ([M12]). Both hold points of series in id order and are read the
//! same way, through [`PartCursor`]: seek a series, look at what its entry
//! says ([`Found`]), decode its points if they matter. Scans, merges and
//! `verify` see only parts.

use std::path::Path;

use crate::error::Result;
use crate::storage::encoding::Word;
use crate::storage::head::{Head, HeadCursor};
use crate::storage::segment::{Columns, Segment, SegmentCursor, SegmentMeta, SeriesEntry};

/// A segment or a head, opened.
#[derive(Debug)]
pub(crate) enum Part {
    Segment(Segment),
    Head(Head),
}

impl Part {
    /// Opens the file `meta` names in `dir` and checks it against the
    /// entry ([M3]).
    pub(crate) fn open(dir: &Path, meta: &SegmentMeta, series: u32) -> Result<Part> {
        let path = dir.join(meta.file_name());
        let part = if meta.head {
            Part::Head(Head::open(&path, meta.number, meta.file_len)?)
        } else {
            Part::Segment(Segment::open(&path, meta.number, Some(meta.file_len))?)
        };
        match &part {
            Part::Segment(s) => s.check_manifest_entry(meta, series)?,
            Part::Head(h) => h.check_manifest_entry(meta, series)?,
        }
        Ok(part)
    }

    /// Whether this is the part `meta` names, as opened: the same file at
    /// the same committed length (a head grows from commit to commit).
    pub(crate) fn is(&self, meta: &SegmentMeta) -> bool {
        match self {
            Part::Segment(s) => !meta.head && s.number() == meta.number,
            Part::Head(h) => meta.head && h.number() == meta.number && h.len() == meta.file_len,
        }
    }

    /// Reads every byte and decodes every series, checking all the rules of
    /// docs/format.md; returns the points. Used by `verify`.
    pub(crate) fn verify(&self) -> Result<u64> {
        match self {
            Part::Segment(s) => s.verify(),
            Part::Head(h) => h.verify(),
        }
    }

    /// Says that the part is about to be read whole (a merge): a head
    /// turns readahead back on ([`Head::scanning`]).
    pub(crate) fn scanning(&self) {
        if let Part::Head(h) = self {
            h.scanning();
        }
    }

    /// A forward cursor over the part, reading the columns in `need`.
    pub(crate) fn cursor(&self, need: Columns) -> PartCursor<'_> {
        match self {
            Part::Segment(s) => PartCursor::Segment(Box::new(SegmentCursor::new(s, need))),
            Part::Head(h) => PartCursor::Head(Box::new(HeadCursor::new(h))),
        }
    }
}

/// What one part holds of one series, before any column is decoded: its
/// time range and value bounds.
#[derive(Clone, Copy)]
pub(crate) struct Found<'a> {
    pub id: u32,
    pub t_min: i64,
    pub t_max: i64,
    pub v_min: u64,
    pub v_max: u64,
    /// A segment's index entry, which decodes itself; `None` for a head,
    /// whose cursor holds the decoded chunk.
    entry: Option<SeriesEntry<'a>>,
}

/// A forward-only cursor over one part.
pub(crate) enum PartCursor<'a> {
    /// Both boxed: each is a few hundred bytes, and a scanner holds one
    /// per segment.
    Segment(Box<SegmentCursor<'a>>),
    Head(Box<HeadCursor<'a>>),
}

impl<'a> PartCursor<'a> {
    /// Says which series the next seeks will ask for, in increasing order:
    /// a hint that lets a head skip the other series of the chunks it
    /// decodes ([`HeadCursor::expect`]). A segment reads only the entries
    /// it is asked for anyway.
    pub(crate) fn expect(&mut self, ids: &[u32]) {
        if let PartCursor::Head(c) = self {
            c.expect(ids);
        }
    }

    /// What the part holds of series `id`, if anything. Ids passed to
    /// successive calls must not decrease.
    pub(crate) fn seek(&mut self, id: u32) -> Result<Option<Found<'a>>> {
        Ok(match self {
            PartCursor::Segment(c) => c.seek(id)?.map(|e| Found {
                id: e.id,
                t_min: e.t_min,
                t_max: e.t_max,
                v_min: e.v_min,
                v_max: e.v_max,
                entry: Some(e),
            }),
            PartCursor::Head(c) => c.seek(id)?.map(|e| Found {
                id: e.id,
                t_min: e.t_min,
                t_max: e.t_max,
                v_min: e.v_min,
                v_max: e.v_max,
                entry: None,
            }),
        })
    }

    /// Appends the points of `found`, the last series this cursor found,
    /// to `times` and `values` (only the columns asked for).
    pub(crate) fn decode<W: Word>(
        &self,
        found: &Found<'a>,
        need: Columns,
        times: &mut Vec<i64>,
        values: &mut Vec<W>,
    ) -> Result<()> {
        match (self, &found.entry) {
            (_, Some(entry)) => entry.decode(need, times, values),
            (PartCursor::Head(c), None) => c.decode(found.id, need, times, values),
            (PartCursor::Segment(_), None) => Ok(()),
        }
    }
}
