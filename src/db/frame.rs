//! How a snapshot-shaped batch becomes a head frame (docs/format.md, "Head
//! file", [HD3], [HD4]): appended to the manifest's last head when the
//! rules allow it, or written as a new head. Like a flushed segment, the
//! frame is durable but invisible until the commit's manifest names the
//! head's new length (db/writer.rs).

use std::path::Path;
use std::sync::Arc;

use crate::db::flush::FramePoints;
use crate::db::merge::{HEAD_TIER, WINDOWS_MS};
use crate::db::snapshot::Snapshot;
use crate::error::{Error, Result};
use crate::storage::format::{MAGIC_HEAD, put_header};
use crate::storage::fs::FileSystem;
use crate::storage::head::{MAX_FRAMES, encode_frame, head_file_name};
use crate::storage::part::Part;
use crate::storage::segment::SegmentMeta;

/// The window a head's frames share ([HD3]): an epoch-aligned week, the
/// tier the head merges at once it closes.
const HEAD_WINDOW_MS: i64 = WINDOWS_MS[HEAD_TIER];

/// A frame written for the batch being committed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingHead {
    /// The head's manifest entry once the batch commits.
    pub meta: SegmentMeta,
    /// The head's committed length before the append, when the frame was
    /// appended to the manifest's last head; `None` for a new head.
    pub appended_to: Option<u64>,
    /// Bytes the frame added.
    pub bytes: u64,
}

impl PendingHead {
    /// Undoes the write of a batch that is discarded: a new head is
    /// removed, an appended one cut back to its committed length ([I9]).
    /// A failure leaves what recovery removes or cuts ([R1], [HD4]).
    pub(crate) fn discard(&self, fs: &dyn FileSystem, dir: &Path) {
        let path = dir.join(head_file_name(self.meta.number));
        let _ = match self.appended_to {
            Some(len) => fs.truncate(&path, len),
            None => fs.remove_file(&path),
        };
    }
}

/// Writes `frame` for the batch on `base` ([HD3], [HD4]): appended to the
/// manifest's last entry when it is a head of the same week with fewer than
/// [`MAX_FRAMES`] frames, all before the frame's time; otherwise as a new
/// head numbered by `take_number`.
pub(crate) fn write_frame(
    fs: &Arc<dyn FileSystem>,
    base: &Snapshot,
    frame: &FramePoints,
    take_number: impl FnOnce() -> Result<u64>,
) -> Result<PendingHead> {
    let dir = &base.dir;
    let points = frame.ids.len() as u64;
    if let (Some(meta), Some(part)) = (base.manifest.segments.last(), base.segments.last())
        && let Part::Head(head) = &**part
        && meta.head
        && meta.t_max < frame.time
        && meta.t_max.div_euclid(HEAD_WINDOW_MS) == frame.time.div_euclid(HEAD_WINDOW_MS)
        && head.frame_count() < MAX_FRAMES
    {
        let (Some(&first_id), Some(&last_id)) = (frame.ids.first(), frame.ids.last()) else {
            return Err(Error::Invalid("a frame needs a point".into()));
        };
        let first = crate::storage::head::range_start(first_id);
        let previous = head.last_values(first, u64::from(last_id) + 1)?;
        let bytes = encode_frame(frame.time, &frame.ids, &frame.values, |id| {
            id.checked_sub(first)
                .and_then(|k| previous.get(k as usize))
                .copied()
                .unwrap_or(0)
        });
        let path = dir.join(head_file_name(meta.number));
        // [HD4]: a discarded append may have left bytes past the committed
        // length; the frame must follow the committed bytes directly.
        let on_disk = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        if on_disk != meta.file_len {
            fs.truncate(&path, meta.file_len)
                .map_err(|e| Error::io(&path, e))?;
        }
        let pending = PendingHead {
            meta: SegmentMeta {
                file_len: meta.file_len + bytes.len() as u64,
                points: meta.points + points,
                t_max: frame.time,
                ..*meta
            },
            appended_to: Some(meta.file_len),
            bytes: bytes.len() as u64,
        };
        let written = fs.append(&path).and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync()
        });
        if let Err(e) = written {
            pending.discard(&**fs, dir);
            return Err(Error::io(&path, e));
        }
        return Ok(pending);
    }
    let number = take_number()?;
    let mut bytes = Vec::new();
    put_header(&mut bytes, MAGIC_HEAD);
    bytes.extend_from_slice(&encode_frame(frame.time, &frame.ids, &frame.values, |_| 0));
    let name = head_file_name(number);
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let written = fs
        .create(&tmp)
        .and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync()
        })
        .and_then(|()| fs.rename(&tmp, &path));
    if let Err(e) = written {
        let _ = fs.remove_file(&tmp);
        return Err(Error::io(&path, e));
    }
    Ok(PendingHead {
        meta: SegmentMeta {
            number,
            file_len: bytes.len() as u64,
            points,
            t_min: frame.time,
            t_max: frame.time,
            head: true,
        },
        appended_to: None,
        bytes: bytes.len() as u64,
    })
}
