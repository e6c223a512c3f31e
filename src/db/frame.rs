//! How snapshot-shaped points become head frames (docs/format.md, "Head
//! file", [HD3], [HD4]). A batch writes its frames through [`BatchHeads`]:
//! the first one appended to the manifest's last head when the rules allow
//! it, each next one to the head the frame before went to while that head
//! takes it, and otherwise to a new head. Like a flushed segment, a frame
//! is durable but invisible until the commit's manifest names the head's
//! new length (db/writer.rs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::db::flush::FramePoints;
use crate::db::merge::{HEAD_TIER, WINDOWS_MS};
use crate::db::snapshot::Snapshot;
use crate::error::{Error, Result};
use crate::storage::format::{MAGIC_HEAD, put_header};
use crate::storage::fs::{FileSystem, WritableFile};
use crate::storage::head::{
    CHUNK_IDS, Head, MAX_FRAMES, encode_frame, head_file_name, range_start,
};
use crate::storage::part::Part;
use crate::storage::segment::SegmentMeta;

/// The window a head's frames share ([HD3]): an epoch-aligned week, the
/// tier the head merges at once it closes.
const HEAD_WINDOW_MS: i64 = WINDOWS_MS[HEAD_TIER];

/// A head the batch wrote frames to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingHead {
    /// The head's manifest entry once the batch commits.
    pub meta: SegmentMeta,
    /// The head's committed length before the batch, when the batch
    /// appended to the manifest's last head; `None` for a new head.
    pub appended_to: Option<u64>,
    /// Bytes the batch's frames added.
    pub bytes: u64,
}

impl PendingHead {
    /// Undoes the batch's writes to this head: a new head is removed (under
    /// its temporary name too), an appended one cut back to its committed
    /// length ([I9]). A failure leaves what recovery removes or cuts ([R1],
    /// [HD4]).
    fn discard(&self, fs: &dyn FileSystem, dir: &Path) {
        let path = dir.join(head_file_name(self.meta.number));
        let _ = match self.appended_to {
            Some(len) => fs.truncate(&path, len),
            None => {
                let _ = fs.remove_file(&temporary(&path));
                fs.remove_file(&path)
            }
        };
    }
}

/// The temporary name a new head is written under until it is finished.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The heads of one batch, in the order their frames were written: the
/// manifest lists them in that order ([HD3], [I5]).
#[derive(Default)]
pub(crate) struct BatchHeads {
    /// Heads the batch is done with: durable under their names.
    finished: Vec<PendingHead>,
    /// The head the batch's last frame went to, which the next may follow.
    open: Option<OpenHead>,
}

/// The head a batch is appending frames to.
struct OpenHead {
    head: PendingHead,
    /// The head's frames, committed and the batch's.
    frames: usize,
    /// Where the frames go: the head's file, or its temporary name for a
    /// new head.
    file: Box<dyn WritableFile>,
    path: PathBuf,
    /// The committed head the batch appends to, which holds the previous
    /// counts of the ids the batch's frames did not hold yet.
    committed: Option<Arc<Part>>,
    /// The previous count ([HD2]) of each id from `first` on: its count in
    /// the head's latest frame that holds it, or 0. `first` and the end
    /// are multiples of [`CHUNK_IDS`].
    first: u32,
    previous: Vec<u64>,
}

impl BatchHeads {
    /// True when the batch wrote no frame.
    pub(crate) fn is_empty(&self) -> bool {
        self.finished.is_empty() && self.open.is_none()
    }

    /// The heads written so far, finished or not.
    fn all(&self) -> impl Iterator<Item = &PendingHead> {
        self.finished
            .iter()
            .chain(self.open.as_ref().map(|open| &open.head))
    }

    /// Heads the batch wrote to, and bytes its frames added.
    pub(crate) fn summary(&self) -> (u64, u64) {
        self.all()
            .fold((0, 0), |(heads, bytes), h| (heads + 1, bytes + h.bytes))
    }

    /// Writes `frame` after the batch's earlier frames ([HD3], [HD4]): to
    /// the head the last one went to, or for the batch's first frame to the
    /// manifest's last entry, when that is a head of the same week with
    /// fewer than [`MAX_FRAMES`] frames, all before the frame's time;
    /// otherwise to a new head, numbered by `take_number`. On error the
    /// batch's heads are as they were before the call but for bytes past
    /// their lengths, which [`discard`](Self::discard) or recovery removes.
    pub(crate) fn append(
        &mut self,
        fs: &Arc<dyn FileSystem>,
        base: &Snapshot,
        frame: &FramePoints,
        take_number: impl FnOnce() -> Result<u64>,
    ) -> Result<()> {
        let (Some(&first_id), Some(&last_id)) = (frame.ids.first(), frame.ids.last()) else {
            return Err(Error::Invalid("a frame needs a point".into()));
        };
        let follows = |meta: &SegmentMeta, frames: usize| {
            meta.t_max < frame.time
                && meta.t_max.div_euclid(HEAD_WINDOW_MS) == frame.time.div_euclid(HEAD_WINDOW_MS)
                && frames < MAX_FRAMES
        };
        if let Some(open) = &self.open
            && !follows(&open.head.meta, open.frames)
        {
            self.finish(fs, &base.dir)?;
        }
        if self.open.is_none() {
            self.open = Some(match self.reusable_head(base, &follows) {
                Some((meta, part, frames)) => {
                    OpenHead::append_to(fs, &base.dir, meta, part, frames)?
                }
                None => OpenHead::create(fs, &base.dir, take_number()?, frame.time)?,
            });
        }
        let Some(open) = self.open.as_mut() else {
            return Err(Error::Invalid("the batch lost its head".into()));
        };
        open.write(frame, first_id, last_id)
    }

    /// The manifest's last entry, when the batch has written no head yet
    /// and that entry is a head the frame may follow ([HD3]).
    fn reusable_head(
        &self,
        base: &Snapshot,
        follows: &impl Fn(&SegmentMeta, usize) -> bool,
    ) -> Option<(SegmentMeta, Arc<Part>, usize)> {
        if !self.finished.is_empty() {
            return None;
        }
        let (meta, part) = (base.manifest.segments.last()?, base.segments.last()?);
        let Part::Head(head) = &**part else {
            return None;
        };
        (meta.head && follows(meta, head.frame_count()))
            .then(|| (*meta, Arc::clone(part), head.frame_count()))
    }

    /// Makes the open head durable under its name, if there is one.
    pub(crate) fn finish(&mut self, fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<()> {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        let path = dir.join(head_file_name(open.head.meta.number));
        // The file is closed before the rename, which some systems refuse
        // on an open file.
        let synced = open.file.sync();
        drop(open.file);
        let done = synced.and_then(|()| match open.head.appended_to {
            Some(_) => Ok(()),
            None => fs.rename(&open.path, &path),
        });
        let head = open.head;
        // The head is the batch's whatever happened, so that a discard
        // removes or cuts it.
        self.finished.push(head);
        done.map_err(|e| Error::io(&path, e))
    }

    /// The manifest entries of `committed` (the manifest's segments) once
    /// the batch's finished heads are added: an appended head keeps its
    /// place, the last entry ([HD3]), with its new length; new heads follow.
    pub(crate) fn add_to(&self, segments: &mut Vec<SegmentMeta>) {
        for head in &self.finished {
            if head.appended_to.is_some() {
                segments.pop();
            }
            segments.push(head.meta);
        }
    }

    /// Undoes every write of the batch's heads.
    pub(crate) fn discard(&mut self, fs: &dyn FileSystem, dir: &Path) {
        // The open head's file is closed before it is cut or removed.
        let open = self.open.take().map(|open| open.head);
        for head in self.finished.drain(..).chain(open) {
            head.discard(fs, dir);
        }
    }
}

impl OpenHead {
    /// Opens the committed head `meta` for appending, cut back to its
    /// committed length first if a discarded batch left bytes past it
    /// ([HD4]).
    fn append_to(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        meta: SegmentMeta,
        part: Arc<Part>,
        frames: usize,
    ) -> Result<OpenHead> {
        let path = dir.join(head_file_name(meta.number));
        let on_disk = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        if on_disk != meta.file_len {
            fs.truncate(&path, meta.file_len)
                .map_err(|e| Error::io(&path, e))?;
        }
        let file = fs.append(&path).map_err(|e| Error::io(&path, e))?;
        Ok(OpenHead {
            head: PendingHead {
                meta,
                appended_to: Some(meta.file_len),
                bytes: 0,
            },
            frames,
            file,
            path,
            committed: Some(part),
            first: 0,
            previous: Vec::new(),
        })
    }

    /// Starts head `number` under its temporary name, with its header.
    fn create(fs: &Arc<dyn FileSystem>, dir: &Path, number: u64, time: i64) -> Result<OpenHead> {
        let final_path = dir.join(head_file_name(number));
        let path = temporary(&final_path);
        let mut header = Vec::new();
        put_header(&mut header, MAGIC_HEAD);
        let mut file = fs.create(&path).map_err(|e| Error::io(&path, e))?;
        if let Err(e) = file.write_all(&header) {
            let _ = fs.remove_file(&path);
            return Err(Error::io(&path, e));
        }
        let len = header.len() as u64;
        Ok(OpenHead {
            head: PendingHead {
                meta: SegmentMeta {
                    number,
                    file_len: len,
                    points: 0,
                    t_min: time,
                    t_max: time,
                    head: true,
                },
                appended_to: None,
                bytes: len,
            },
            frames: 0,
            file,
            path,
            committed: None,
            first: 0,
            previous: Vec::new(),
        })
    }

    /// Encodes `frame` against the previous counts, writes it, and takes its
    /// counts as the next frame's previous ones.
    fn write(&mut self, frame: &FramePoints, first_id: u32, last_id: u32) -> Result<()> {
        self.cover(range_start(first_id), u64::from(last_id) + 1)?;
        let (first, previous) = (self.first, &self.previous);
        let bytes = encode_frame(frame.time, &frame.ids, &frame.values, |id| {
            id.checked_sub(first)
                .and_then(|k| previous.get(k as usize))
                .copied()
                .unwrap_or(0)
        });
        if let Err(e) = self.file.write_all(&bytes) {
            return Err(Error::io(&self.path, e));
        }
        for (&id, &value) in frame.ids.iter().zip(&frame.values) {
            // `cover` made the range hold every id of the frame.
            if let Some(slot) = id
                .checked_sub(first)
                .and_then(|k| self.previous.get_mut(k as usize))
            {
                *slot = value;
            }
        }
        let meta = &mut self.head.meta;
        meta.file_len += bytes.len() as u64;
        meta.points += frame.ids.len() as u64;
        meta.t_max = frame.time;
        self.head.bytes += bytes.len() as u64;
        self.frames += 1;
        Ok(())
    }

    /// Widens `previous` to hold ids `first .. end` (`first` a multiple of
    /// [`CHUNK_IDS`]), taking the counts of the ids it gains from the
    /// committed head the batch appends to, or 0.
    fn cover(&mut self, first: u32, end: u64) -> Result<()> {
        // Rounded up to a whole chunk, so that every range asked of the
        // committed head starts at a chunk's first id.
        let end = end.div_ceil(u64::from(CHUNK_IDS)) * u64::from(CHUNK_IDS);
        let committed = |from: u32, to: u64| -> Result<Vec<u64>> {
            match self.committed.as_deref() {
                Some(Part::Head(head)) => Head::last_values(head, from, to),
                _ => Ok(vec![0; to.saturating_sub(u64::from(from)) as usize]),
            }
        };
        if self.previous.is_empty() {
            self.previous = committed(first, end)?;
            self.first = first;
            return Ok(());
        }
        if first < self.first {
            let mut wider = committed(first, u64::from(self.first))?;
            wider.append(&mut self.previous);
            self.previous = wider;
            self.first = first;
        }
        let covered = u64::from(self.first) + self.previous.len() as u64;
        if end > covered {
            // `covered` is a multiple of CHUNK_IDS below 2^32 + CHUNK_IDS;
            // a range past 2^32 ids holds no committed id and is zeros.
            let start = u32::try_from(covered).unwrap_or(u32::MAX);
            let mut more = if u64::from(start) == covered {
                committed(start, end)?
            } else {
                vec![0; (end - covered) as usize]
            };
            self.previous.append(&mut more);
        }
        Ok(())
    }
}
