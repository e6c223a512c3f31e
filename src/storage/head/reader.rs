//! Reading a head file (docs/format.md, "Head file"): [`Head`] maps the
//! committed prefix and checks every frame header when opened ([HD1]), and
//! each frame's body against its checksum the first time it is decoded;
//! [`HeadCursor`] reads it in series-id order, one chunk of
//! [`CHUNK_IDS`] ids across every frame at a time, as a segment cursor
//! reads a group.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::{Mmap, MmapOptions};

use super::{CHUNK_IDS, FRAME_HEADER_LEN};
use crate::error::{Error, Result};
use crate::storage::encoding::{Word, decode_deltas, get_varint};
use crate::storage::format::{ByteReader, HEADER_LEN, MAGIC_HEAD, check_header};
use crate::storage::segment::{Columns, SegmentMeta};

/// The largest count there is ([S2]): counts are at most 2^63 − 1.
const MAX_COUNT: u64 = i64::MAX as u64;

/// u64 words of a bitmap over one chunk's positions.
const CHUNK_WORDS: usize = CHUNK_IDS as usize / 64;

/// Which positions of a chunk a decode keeps: bit `j % 64` of word
/// `j / 64` for position `j`.
type ChunkMask = [u64; CHUNK_WORDS];

/// Every position of a chunk.
const ALL_POSITIONS: ChunkMask = [u64::MAX; CHUNK_WORDS];

/// Whether position `j` is in `mask`.
fn has(mask: &ChunkMask, j: usize) -> bool {
    mask.get(j / 64).is_some_and(|w| w >> (j % 64) & 1 == 1)
}

/// Adds position `j` to `mask`.
fn add(mask: &mut ChunkMask, j: usize) {
    if let Some(w) = mask.get_mut(j / 64) {
        *w |= 1 << (j % 64);
    }
}

/// The positions whose bits are set in `word`, word `w` of a chunk mask,
/// in increasing order.
fn positions(w: usize, mut word: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (word != 0).then(|| {
            let j = 64 * w + word.trailing_zeros() as usize;
            word &= word - 1;
            j
        })
    })
}

/// Frames a decode adds up at a time: each wanted id's counts after them
/// are [`FRAME_BLOCK`] consecutive words of [`ChunkBuffer`]'s counts, one
/// or two cache lines written whole rather than a word in each of eight.
const FRAME_BLOCK: usize = 8;

/// The smallest and largest of `counts` (`u64::MAX` and 0 when empty).
///
/// Without a branch per count: a series' counts rise and fall in no order
/// a branch predictor learns, and the branches it mispredicted were a
/// sixth of a scan. Four running pairs keep four chains apart.
fn min_max(counts: &[u64]) -> (u64, u64) {
    // `select(a, b, take_b)`: b when take_b, else a, by masking.
    fn select(a: u64, b: u64, take_b: bool) -> u64 {
        a ^ ((a ^ b) & u64::from(take_b).wrapping_neg())
    }
    let mut lo = [u64::MAX; 4];
    let mut hi = [0u64; 4];
    let mut quads = counts.chunks_exact(4);
    for quad in &mut quads {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(quad) {
            *l = select(*l, v, v < *l);
            *h = select(*h, v, v > *h);
        }
    }
    for &v in quads.remainder() {
        lo[0] = select(lo[0], v, v < lo[0]);
        hi[0] = select(hi[0], v, v > hi[0]);
    }
    let lo = lo.iter().fold(u64::MAX, |a, &b| a.min(b));
    let hi = hi.iter().fold(0, |a, &b| a.max(b));
    (lo, hi)
}

/// The ids of the chunk at `start` that exist in some frame of `head`:
/// `start + chunk_ids` is past every frame's range.
fn chunk_ids(head: &Head, start: u32) -> usize {
    // At most CHUNK_IDS: fits a usize.
    (head.end_id.saturating_sub(u64::from(start))).min(u64::from(CHUNK_IDS)) as usize
}

/// For each word `w` of `mask`, the number of positions in the words
/// before it: with the positions below `j` in its own word, where position
/// `j`'s run is among the wanted positions' runs ([`ChunkBuffer::rank`]).
///
/// Taken once per decoded chunk, since x86-64's baseline has no `popcnt`
/// instruction: `count_ones` is a dozen operations a word, and counting up
/// to 16 words for each series sought was 5% of a scan's cycles.
fn word_ranks(mask: &ChunkMask) -> [u16; CHUNK_WORDS] {
    const { assert!(CHUNK_IDS <= u16::MAX as u32) };
    let mut ranks = [0u16; CHUNK_WORDS];
    let mut below = 0u16;
    for (rank, word) in ranks.iter_mut().zip(mask) {
        *rank = below;
        // At most 1024 positions in all: fits a u16.
        below += word.count_ones() as u16;
    }
    ranks
}

/// One frame's header, checked ([HD1]).
#[derive(Debug, Clone)]
struct Frame {
    time: i64,
    first: u32,
    count: u32,
    points: u32,
    body: Range<usize>,
    directory_len: usize,
    directory_crc: u32,
}

impl Frame {
    /// The end of the frame's id range (exclusive), as a u64: F + C may be
    /// 2^32.
    fn end(&self) -> u64 {
        u64::from(self.first) + u64::from(self.count)
    }
}

/// How a frame lists the ids of its range it does not hold ([HD2]).
#[derive(Debug, Clone)]
enum Absent {
    /// It holds every id.
    None,
    /// Per chunk, a list of gaps: the chunks' end offsets (u32) at
    /// `ends`, and the gaps at `area` (absolute offsets in the file).
    Lists { ends: usize, area: Range<usize> },
    /// A bitmap of the range at these bytes: bit j set when position j is
    /// absent.
    Bitmap(Range<usize>),
}

/// Where the parts of a frame's directory are, once its checksum and
/// shape held ([HD2]). Nothing is copied out of the file.
#[derive(Debug, Clone)]
struct Layout {
    /// Absolute offset of the chunk columns' end offsets (K × u32), each
    /// followed, at `+ 4·K`, by its checksum.
    column_ends: usize,
    /// Absolute offset of the first chunk column.
    columns: usize,
    /// The number of chunk columns, K.
    chunks: usize,
    absent: Absent,
}

/// A head file opened for reading, up to its committed length.
pub(crate) struct Head {
    path: PathBuf,
    number: u64,
    map: Mmap,
    frames: Vec<Frame>,
    layouts: Vec<OnceLock<std::result::Result<Layout, String>>>,
    points: u64,
    first_id: u32,
    end_id: u64,
    /// Set once a scan of many ids asked for readahead ([`Head::scanning`]).
    read_ahead: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("path", &self.path)
            .field("frames", &self.frames.len())
            .finish()
    }
}

impl Head {
    /// Opens and maps the first `committed` bytes of a head, checking its
    /// header and every frame header ([HD1]).
    pub(crate) fn open(path: &Path, number: u64, committed: u64) -> Result<Head> {
        let corrupt = |what: String| Error::corrupt(path, what);
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < committed {
            return Err(corrupt(format!(
                "file is {len} bytes but {committed} bytes were committed"
            )));
        }
        let committed_len = usize::try_from(committed)
            .map_err(|_| corrupt("committed length does not fit in memory".to_string()))?;
        if committed_len < HEADER_LEN + FRAME_HEADER_LEN {
            return Err(corrupt(format!(
                "{committed} committed bytes are too few for a head"
            )));
        }
        // SAFETY: only the committed prefix is mapped, and nothing ever
        // changes or cuts a head below a committed length: appends go after
        // it and recovery cuts only the uncommitted tail ([HD4], [R1]).
        let map = unsafe { MmapOptions::new().len(committed_len).map(&file) }
            .map_err(|e| Error::io(path, e))?;
        // A read of a few series touches a directory and a column in each
        // frame: without readahead (and, on Linux, without mapping the
        // pages around each fault) it costs a few pages a frame instead of
        // 64 to 128 KiB. A reader of many ids turns readahead back on
        // (`scanning`).
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        check_header(&map, MAGIC_HEAD).map_err(corrupt)?;
        let mut frames = Vec::new();
        let mut at = HEADER_LEN;
        let mut points = 0u64;
        let (mut first_id, mut end_id) = (u32::MAX, 0u64);
        while at < map.len() {
            let frame = read_frame_header(&map, at)
                .map_err(|e| corrupt(format!("frame at byte {at}: {e}")))?;
            if frames.last().is_some_and(|f: &Frame| f.time >= frame.time) {
                return Err(corrupt(format!(
                    "frame at byte {at}: its time is not after the frame before ([HD1])"
                )));
            }
            at = frame.body.end;
            points += u64::from(frame.points);
            first_id = first_id.min(frame.first);
            end_id = end_id.max(frame.end());
            frames.push(frame);
        }
        let layouts = (0..frames.len()).map(|_| OnceLock::new()).collect();
        Ok(Head {
            path: path.to_path_buf(),
            number,
            map,
            frames,
            layouts,
            points,
            first_id,
            end_id,
            read_ahead: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// The committed length this head was opened at.
    pub(crate) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Says that a scan of many ids is reading this head (a query's scan,
    /// a merge, `verify`, the last counts of a head a batch appends to):
    /// its frames' columns are then read front to back, where readahead
    /// pays, so the random-access advice of `open` is lifted, once, for
    /// every reader of this mapping, later one-account reads included
    /// (advice changes speed, never what is read).
    pub(crate) fn scanning(&self) {
        if !self
            .read_ahead
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            #[cfg(unix)]
            let _ = self.map.advise(memmap2::Advice::Normal);
        }
    }

    /// Number of frames.
    pub(crate) fn frame_count(&self) -> usize {
        self.frames.len()
    }

    fn corrupt(&self, what: impl Into<String>) -> Error {
        Error::corrupt(&self.path, what)
    }

    /// Checks the frames against the manifest's entry for this head ([M3]):
    /// the same point count and time range, and no series the dictionary
    /// does not commit.
    pub(crate) fn check_manifest_entry(&self, meta: &SegmentMeta, series: u32) -> Result<()> {
        let t_min = self.frames.first().map_or(i64::MAX, |f| f.time);
        let t_max = self.frames.last().map_or(i64::MIN, |f| f.time);
        if (self.points, t_min, t_max) != (meta.points, meta.t_min, meta.t_max) {
            return Err(self.corrupt(format!(
                "its frames' point count and time range ({} points, {t_min} ..= {t_max}) \
                 disagree with the manifest's ({} points, {} ..= {})",
                self.points, meta.points, meta.t_min, meta.t_max
            )));
        }
        if self.end_id > u64::from(series) {
            return Err(self.corrupt(format!(
                "it holds series up to {} but the manifest commits {series} series",
                self.end_id - 1
            )));
        }
        Ok(())
    }

    /// Frame `f`'s directory, checked against its checksum and parsed, once.
    fn layout(&self, f: usize) -> Result<&Layout> {
        let (Some(frame), Some(cell)) = (self.frames.get(f), self.layouts.get(f)) else {
            return Err(self.corrupt(format!("no frame {f}")));
        };
        cell.get_or_init(|| parse_layout(&self.map, frame))
            .as_ref()
            .map_err(|e| self.corrupt(format!("frame {f}: {e}")))
    }

    /// The counts the ids `first .. end` have after the last frame (0 for
    /// an id no frame holds): what the next frame, whose range that is, is
    /// coded against ([HD3]). `first` is a multiple of [`CHUNK_IDS`]. The
    /// caller's range bounds what is allocated, not the head's: two forged
    /// frames far apart could claim a range of 2^32 ids.
    pub(crate) fn last_values(&self, first: u32, end: u64) -> Result<Vec<u64>> {
        if end.saturating_sub(u64::from(first)) > u64::from(CHUNK_IDS) {
            self.scanning();
        }
        let mut out = Vec::with_capacity(end.saturating_sub(u64::from(first)) as usize);
        let mut chunk = ChunkBuffer::default();
        let mut start = u64::from(first);
        while start < end {
            let n = (end - start).min(u64::from(CHUNK_IDS)) as usize;
            if start + n as u64 <= u64::from(self.first_id) || start >= self.end_id {
                out.resize(out.len() + n, 0);
            } else {
                // start < end_id <= 2^32.
                chunk.decode(self, start as u32, &ALL_POSITIONS, Keep::LastOnly)?;
                let have = chunk.state.get(..n).unwrap_or(&[]);
                out.extend_from_slice(have);
                out.resize(out.len() + (n - have.len()), 0);
            }
            start += u64::from(CHUNK_IDS);
        }
        Ok(out)
    }

    /// Reads every frame and decodes every chunk, checking all the rules of
    /// docs/format.md ([HD1], [HD2]). Used by `verify`. Returns the points.
    pub(crate) fn verify(&self) -> Result<u64> {
        self.scanning();
        let mut chunk = ChunkBuffer::default();
        let mut points = 0u64;
        let mut start = u64::from(self.first_id);
        while start < self.end_id {
            chunk.decode(self, start as u32, &ALL_POSITIONS, Keep::LastOnly)?;
            points += chunk.points();
            start += u64::from(CHUNK_IDS);
        }
        if points != self.points {
            return Err(self.corrupt(format!(
                "its frames hold {points} points but their headers say {}",
                self.points
            )));
        }
        Ok(points)
    }
}

/// Reads and checks the frame header at `at` ([HD1]).
fn read_frame_header(map: &[u8], at: usize) -> std::result::Result<Frame, String> {
    let header = map
        .get(at..at + FRAME_HEADER_LEN)
        .ok_or("the frame header runs past the committed length")?;
    let mut r = ByteReader::new(header);
    let body_len = r.u32()? as usize;
    let time = r.i64()?;
    let first = r.u32()?;
    let count = r.u32()?;
    let points = r.u32()?;
    let directory_len = r.u32()? as usize;
    let directory_crc = r.u32()?;
    let header_crc = r.u32()?;
    if crc32fast::hash(header.get(..32).unwrap_or(&[])) != header_crc {
        return Err("frame header checksum mismatch".to_string());
    }
    if first % CHUNK_IDS != 0 {
        return Err(format!("first id {first} is not a multiple of {CHUNK_IDS}"));
    }
    if count == 0 || u64::from(first) + u64::from(count) > 1 << 32 {
        return Err(format!("id count {count} from id {first} is out of range"));
    }
    if points == 0 || points > count {
        return Err(format!("point count {points} is not within 1 ..= {count}"));
    }
    if directory_len > body_len {
        return Err(format!(
            "directory length {directory_len} is more than the body's {body_len}"
        ));
    }
    let start = at + FRAME_HEADER_LEN;
    let end = start
        .checked_add(body_len)
        .filter(|&end| end <= map.len())
        .ok_or("the frame body runs past the committed length")?;
    // [HD2]: each id costs at least 1/256 of a byte of its column.
    if u64::from(count) > 256 * body_len as u64 {
        return Err(format!(
            "id count {count} is more than a {body_len}-byte body can hold"
        ));
    }
    Ok(Frame {
        time,
        first,
        count,
        points,
        body: start..end,
        directory_len,
        directory_crc,
    })
}

/// Checks a frame directory's checksum and shape ([HD2]): the column
/// ends fit the body and the last is its end, and the absent lists or the
/// bitmap fill the rest of the directory exactly. A bitmap's bits are
/// counted here; the lists' counts are checked against A by `verify`.
fn parse_layout(map: &[u8], frame: &Frame) -> std::result::Result<Layout, String> {
    let body = map
        .get(frame.body.clone())
        .ok_or("the frame body runs past the committed length")?;
    let directory = body
        .get(..frame.directory_len)
        .ok_or("the directory runs past the frame body")?;
    if crc32fast::hash(directory) != frame.directory_crc {
        return Err("directory checksum mismatch".to_string());
    }
    let chunks = frame.count.div_ceil(CHUNK_IDS) as usize;
    let fixed = directory
        .get(..8 * chunks)
        .ok_or("the column ends and checksums run past the directory")?;
    let columns_len = (body.len() - frame.directory_len) as u64;
    let last_end = fixed
        .get(4 * chunks - 4..4 * chunks)
        .map(|b| ByteReader::new(b).u32())
        .transpose()?
        .unwrap_or(0);
    if u64::from(last_end) != columns_len {
        return Err("the last chunk column does not end at the frame's end".to_string());
    }
    let mut pos = 8 * chunks;
    let code = get_varint(directory, &mut pos).map_err(|e| e.0.to_string())?;
    let absent_count = code >> 1;
    if absent_count != u64::from(frame.count - frame.points) {
        return Err(format!(
            "{absent_count} ids are absent but the header's counts say {}",
            frame.count - frame.points
        ));
    }
    let start = frame.body.start;
    let absent = if absent_count == 0 {
        if code != 0 || pos != directory.len() {
            return Err("bytes after the directory of a frame that holds every id".to_string());
        }
        Absent::None
    } else if code & 1 == 0 {
        let ends = pos;
        let area = ends + 4 * chunks;
        let last = directory
            .get(area - 4..area)
            .map(|b| ByteReader::new(b).u32())
            .transpose()?
            .ok_or("the absent lists' ends run past the directory")?;
        if area as u64 + u64::from(last) != directory.len() as u64 {
            return Err("the absent lists do not end at the directory's end".to_string());
        }
        Absent::Lists {
            ends: start + ends,
            area: start + area..start + directory.len(),
        }
    } else {
        let len = frame.count.div_ceil(8) as usize;
        let bits = directory
            .get(pos..)
            .filter(|b| b.len() == len)
            .ok_or("the absent bitmap does not fill the directory")?;
        let set: u64 = bits.iter().map(|b| u64::from(b.count_ones())).sum();
        let padding = frame.count % 8;
        if set != absent_count || (padding != 0 && bits.last().is_some_and(|&b| b >> padding != 0))
        {
            return Err("the absent bitmap disagrees with the header's counts".to_string());
        }
        Absent::Bitmap(start + pos..start + pos + len)
    };
    Ok(Layout {
        column_ends: start,
        columns: start + frame.directory_len,
        chunks,
        absent,
    })
}

/// A little-endian u32 at `at` in `map`, if it is there.
fn u32_at(map: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = map.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

impl Layout {
    /// Chunk column `k`'s bytes and checksum; its start is the previous
    /// column's end, and the ends must not decrease ([HD2]).
    fn column<'m>(&self, map: &'m [u8], k: usize) -> std::result::Result<(&'m [u8], u32), String> {
        if k >= self.chunks {
            return Err(format!("no chunk column {k}"));
        }
        let end = u32_at(map, self.column_ends + 4 * k).ok_or("a column end is missing")?;
        let start = match k {
            0 => 0,
            _ => u32_at(map, self.column_ends + 4 * (k - 1)).ok_or("a column end is missing")?,
        };
        let crc =
            u32_at(map, self.column_ends + 4 * (self.chunks + k)).ok_or("a checksum is missing")?;
        if start > end {
            return Err(format!("chunk column {k} ends before it starts"));
        }
        let bytes = map
            .get(self.columns + start as usize..self.columns + end as usize)
            .ok_or_else(|| format!("chunk column {k} runs past the frame"))?;
        Ok((bytes, crc))
    }

    /// Sets bit `j` of `bits` for each position `j` of chunk `k` that the
    /// frame does not hold, checking each is below `n`, the chunk's ids
    /// ([HD2]). Returns how many there were.
    fn absent_bits(
        &self,
        map: &[u8],
        k: usize,
        n: usize,
        bits: &mut [u64],
    ) -> std::result::Result<u64, String> {
        match &self.absent {
            Absent::None => Ok(0),
            Absent::Lists { ends, area } => {
                let end = u32_at(map, ends + 4 * k).ok_or("an absent list end is missing")?;
                let start = match k {
                    0 => 0,
                    _ => u32_at(map, ends + 4 * (k - 1)).ok_or("an absent list end is missing")?,
                };
                let list = map
                    .get(area.start + start as usize..area.start + end as usize)
                    .filter(|_| start <= end && area.start + end as usize <= area.end)
                    .ok_or_else(|| format!("the absent list of chunk {k} runs out of its area"))?;
                let (mut pos, mut next, mut found) = (0, 0u64, 0);
                while pos < list.len() {
                    let gap = get_varint(list, &mut pos).map_err(|e| e.0.to_string())?;
                    let j = next
                        .checked_add(gap)
                        .filter(|&j| j < n as u64)
                        .ok_or("an absent position is past the frame's ids")?;
                    if let Some(word) = bits.get_mut(j as usize / 64) {
                        *word |= 1 << (j % 64);
                    }
                    next = j + 1;
                    found += 1;
                }
                Ok(found)
            }
            Absent::Bitmap(range) => {
                // The chunk's bits start on a byte (chunks are 1,024 ids),
                // in the order of a little-endian u64: word w of the chunk
                // is its bytes 8w .. 8w + 8. Bits at n and past are not
                // positions of the chunk: `parse_layout` checked that the
                // bitmap's padding is clear.
                let bitmap = map.get(range.clone()).unwrap_or(&[]);
                let bytes = bitmap.get(k * CHUNK_IDS as usize / 8..).unwrap_or(&[]);
                let mut found = 0;
                for (w, word) in bits.iter_mut().enumerate().take(n.div_ceil(64)) {
                    let mut le = [0u8; 8];
                    for (to, from) in le.iter_mut().zip(bytes.iter().skip(8 * w)) {
                        *to = *from;
                    }
                    let valid = (n - 64 * w).min(64);
                    let mask = if valid == 64 {
                        u64::MAX
                    } else {
                        (1u64 << valid) - 1
                    };
                    let set = u64::from_le_bytes(le) & mask;
                    found += u64::from(set.count_ones());
                    *word |= set;
                }
                Ok(found)
            }
        }
    }
}

/// One chunk of ids decoded across every frame of a head, the wanted
/// positions' counts stored series by series: for the `r`-th wanted
/// position and frame `f`, `counts[r·F + f]` is the count when the frame
/// holds the id, so that a series' points are one contiguous run.
///
/// The frames are decoded [`FRAME_BLOCK`] at a time: their differences
/// first, one array per frame, then each wanted id's running count through
/// those frames, written as one run of consecutive words. (Written a frame
/// at a time, each id's count went to a different cache line, frame after
/// frame: that cost half a scan once heads held a week of frames. Keeping
/// each id's changes instead of its counts cost more still: the generated
/// hourly data moves most accounts most hours.)
///
/// When every frame holds every id of the chunk (the usual case of full
/// snapshots), `all_present` is set. Otherwise `absent` holds one bitmap
/// per frame, `words` u64s each, bit `j` set when the frame does not hold
/// position `j`, and `holes` their union: a series whose bit is clear
/// there is read as if all were present. (Absences were once a `bool` per
/// count, cleared one at a time: a read-modify-write per absent id per
/// frame, a third of the decode when half a frame's range was absent.)
#[derive(Default)]
struct ChunkBuffer {
    /// The first id of the chunk decoded, if any.
    start: Option<u32>,
    /// Ids of the chunk that exist in some frame: `start + ids` is past
    /// every frame's range.
    ids: usize,
    /// Frames of the head decoded: `F` above.
    frames: usize,
    counts: Vec<u64>,
    /// The wanted positions below `ids`, increasing.
    kept: Vec<u16>,
    all_present: bool,
    absent: Vec<u64>,
    /// u64 words per frame in `absent`.
    words: usize,
    holes: Vec<u64>,
    /// The running count of each id of the chunk after the frames so far
    /// (of the wanted ones only, unless [`Keep::LastOnly`]).
    state: Vec<u64>,
    /// The differences of the block of frames being decoded, [`CHUNK_IDS`]
    /// per frame (0 past a frame's range).
    deltas: Vec<u64>,
    /// The positions the last decode kept.
    wanted: ChunkMask,
    /// [`word_ranks`] of `wanted`.
    ranks: [u16; CHUNK_WORDS],
}

/// Which frames hold one position of a chunk that some frame lacks.
struct Held<'a> {
    absent: &'a [u64],
    words: usize,
    word: usize,
    bit: usize,
}

impl Held<'_> {
    /// Whether frame `f` holds the position.
    fn holds(&self, f: usize) -> bool {
        self.absent
            .get(f * self.words + self.word)
            .is_some_and(|bits| bits >> self.bit & 1 == 0)
    }
}

/// What a decode keeps of a chunk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Every frame's counts, for reading series.
    Counts,
    /// The counts after the last frame only ([`Head::last_values`]).
    LastOnly,
}

impl ChunkBuffer {
    /// Decodes the chunk of ids starting at `start` (a multiple of
    /// [`CHUNK_IDS`]) across every frame of `head`, keeping the counts of
    /// the positions in `wanted` (with [`Keep::Counts`]; [`Keep::LastOnly`]
    /// keeps every position's last count).
    ///
    /// Every column is still decoded whole and checked, since the codec
    /// decodes a column whole; what is skipped for the other positions is
    /// their running count and its store, the bulk of a chunk's cost. A
    /// count above 2^63 − 1, or a difference at an absent id, is found at
    /// the positions kept only; `verify` keeps every one.
    fn decode(&mut self, head: &Head, start: u32, wanted: &ChunkMask, keep: Keep) -> Result<()> {
        let width = CHUNK_IDS as usize;
        let frames = head.frames.len();
        self.start = None;
        if frames == 0 {
            // `open` refuses a head without frames; `chunks_exact_mut`
            // below needs a width of at least one.
            return Err(head.corrupt("the head has no frames"));
        }
        let ids = chunk_ids(head, start);
        // Every frame must cover the whole chunk, with nothing absent in
        // it, for the fast path.
        let mut all_present = true;
        for (f, frame) in head.frames.iter().enumerate() {
            let covers = u64::from(frame.first) <= u64::from(start)
                && frame.end() >= u64::from(start) + ids as u64;
            all_present &= covers && matches!(head.layout(f)?.absent, Absent::None);
        }
        self.all_present = all_present;
        self.words = ids.div_ceil(64);
        self.kept.clear();
        for (w, &word) in wanted.iter().enumerate() {
            // Positions are below 1024: they fit a u16.
            self.kept.extend(
                positions(w, word)
                    .take_while(|&j| j < ids)
                    .map(|j| j as u16),
            );
        }
        if keep == Keep::Counts {
            // Every word of every kept run is written below, block by
            // block, before anything reads it, so the words a chunk
            // before left here need not be cleared: clearing 700 KB a
            // chunk was about 2% of a scan's cycles.
            self.counts.resize(self.kept.len() * frames, 0);
        } else {
            self.counts.clear();
        }
        self.absent.clear();
        if !all_present {
            self.absent.resize(self.words * frames, 0);
        }
        self.state.clear();
        self.state.resize(width, 0);
        for first in (0..frames).step_by(FRAME_BLOCK) {
            let block = FRAME_BLOCK.min(frames - first);
            self.deltas.clear();
            for f in first..first + block {
                self.decode_frame(head, f, start, wanted)?;
                self.deltas.resize((f - first + 1) * width, 0);
            }
            // A count above 2^63 − 1 is damage, checked once per block
            // without a branch per id.
            let mut too_large = 0u64;
            let deltas = &self.deltas;
            // A whole block, the usual case, has a fixed shape: each
            // frame's differences as an array of CHUNK_IDS, so that the
            // loop over the block's frames unrolls into eight adds and
            // stores with no bounds check (5% of a scan's cycles on the
            // hourly week, docs/performance.md). A last, shorter block
            // takes the general loop after it.
            let rows: Option<&[[u64; CHUNK_IDS as usize]; FRAME_BLOCK]> = if block == FRAME_BLOCK {
                deltas.as_chunks().0.first_chunk()
            } else {
                None
            };
            if let (Keep::Counts, Some(rows)) = (keep, rows) {
                for (&j, run) in self.kept.iter().zip(self.counts.chunks_exact_mut(frames)) {
                    let j = usize::from(j);
                    let (Some(state), Some(run)) = (
                        self.state.get_mut(j),
                        run.get_mut(first..first + FRAME_BLOCK)
                            .and_then(|run| <&mut [u64; FRAME_BLOCK]>::try_from(run).ok()),
                    ) else {
                        continue;
                    };
                    if j >= CHUNK_IDS as usize {
                        continue;
                    }
                    let mut sum = *state;
                    for (count, row) in run.iter_mut().zip(rows) {
                        // j < CHUNK_IDS, the length of `row`, checked
                        // just above: this index cannot panic.
                        sum = sum.wrapping_add(row[j]);
                        *count = sum;
                        too_large |= sum;
                    }
                    *state = sum;
                }
            } else if keep == Keep::Counts {
                for (&j, run) in self.kept.iter().zip(self.counts.chunks_exact_mut(frames)) {
                    let j = usize::from(j);
                    let (Some(state), Some(run)) =
                        (self.state.get_mut(j), run.get_mut(first..first + block))
                    else {
                        continue;
                    };
                    // The id's differences are a column of `deltas`, one
                    // frame's array apart; a local sum keeps the chain in
                    // a register.
                    let mut sum = *state;
                    for (count, d) in run.iter_mut().zip(deltas.iter().skip(j).step_by(width)) {
                        sum = sum.wrapping_add(*d);
                        *count = sum;
                        too_large |= sum;
                    }
                    *state = sum;
                }
            } else {
                for frame_deltas in deltas.chunks_exact(width) {
                    for (state, &d) in self.state.iter_mut().zip(frame_deltas) {
                        *state = state.wrapping_add(d);
                        too_large |= *state;
                    }
                }
            }
            if too_large > MAX_COUNT {
                return Err(head.corrupt(format!(
                    "frames {first}..{}: a count in ids {start}.. is above 2^63 - 1",
                    first + block
                )));
            }
        }
        self.holes.clear();
        if !all_present {
            self.holes.resize(self.words, 0);
            for row in self.absent.chunks(self.words.max(1)) {
                for (hole, &bits) in self.holes.iter_mut().zip(row) {
                    *hole |= bits;
                }
            }
        }
        self.ids = ids;
        self.frames = frames;
        self.wanted = *wanted;
        self.ranks = word_ranks(wanted);
        self.start = Some(start);
        Ok(())
    }

    /// Appends frame `f`'s differences over the chunk at `start` to
    /// `deltas` (none when the frame's range misses the chunk), and records
    /// and checks its absent ids ([HD2]).
    fn decode_frame(
        &mut self,
        head: &Head,
        f: usize,
        start: u32,
        wanted: &ChunkMask,
    ) -> Result<()> {
        let Some(frame) = head.frames.get(f) else {
            return Ok(());
        };
        let ids = chunk_ids(head, start);
        let covered =
            if u64::from(start) < u64::from(frame.first) || u64::from(start) >= frame.end() {
                0
            } else {
                (frame.end() - u64::from(start)).min(ids as u64) as usize
            };
        let words = self.words;
        let absent = self
            .absent
            .get_mut(f * words..(f + 1) * words)
            .unwrap_or(&mut []);
        if !self.all_present {
            // The ids past the frame's range are not in it.
            set_bits(absent, covered, ids);
        }
        if covered == 0 {
            return Ok(());
        }
        let layout = head.layout(f)?;
        let offset = start - frame.first;
        let k = (offset / CHUNK_IDS) as usize;
        let (column, crc) = layout
            .column(&head.map, k)
            .map_err(|e| head.corrupt(format!("frame {f}: {e}")))?;
        if crc32fast::hash(column) != crc {
            return Err(head.corrupt(format!("frame {f}, chunk column {k}: checksum mismatch")));
        }
        let base = self.deltas.len();
        decode_deltas(column, covered, &mut self.deltas)
            .map_err(|e| head.corrupt(format!("frame {f}, chunk column {k}: {}", e.0)))?;
        if self.all_present {
            return Ok(());
        }
        // The absent ids: no point here, and no difference ([HD2]). Only
        // the absent positions of those wanted are looked at.
        layout
            .absent_bits(&head.map, k, covered, absent)
            .map_err(|e| head.corrupt(format!("frame {f}: {e}")))?;
        let deltas = self.deltas.get(base..).unwrap_or(&[]);
        for (w, (&absent_bits, &wanted_bits)) in absent.iter().zip(wanted).enumerate() {
            for j in positions(w, absent_bits & wanted_bits) {
                // Positions past the column are past the frame's range.
                let Some(&d) = deltas.get(j) else {
                    break;
                };
                if d != 0 {
                    return Err(head.corrupt(format!(
                        "frame {f}: id {} is absent but has a difference",
                        u64::from(start) + j as u64
                    )));
                }
            }
        }
        Ok(())
    }

    /// The counts of position `j`, which must be wanted, in every frame,
    /// and, when some frame does not hold it, which do.
    fn series(&self, j: usize) -> (&[u64], Option<Held<'_>>) {
        let r = self.rank(j);
        let counts = self
            .counts
            .get(r * self.frames..(r + 1) * self.frames)
            .unwrap_or(&[]);
        let (word, bit) = (j / 64, j % 64);
        let some_absent = self
            .holes
            .get(word)
            .is_some_and(|bits| bits >> bit & 1 == 1);
        let held = some_absent.then_some(Held {
            absent: &self.absent,
            words: self.words,
            word,
            bit,
        });
        (counts, held)
    }

    /// The number of wanted positions below `j`: where position `j`'s run
    /// is among the wanted positions' runs.
    fn rank(&self, j: usize) -> usize {
        let (word, bit) = (j / 64, j % 64);
        let below = self.ranks.get(word).copied().unwrap_or(0);
        let within = self
            .wanted
            .get(word)
            .map_or(0, |w| (w & ((1u64 << bit) - 1)).count_ones());
        usize::from(below) + within as usize
    }

    /// How many (id, frame) pairs hold a point.
    fn points(&self) -> u64 {
        let all = (self.ids * self.frames) as u64;
        let absent: u64 = self.absent.iter().map(|w| u64::from(w.count_ones())).sum();
        all - absent
    }
}

/// Sets bits `from .. to` of a bitmap, a word at a time.
fn set_bits(bits: &mut [u64], from: usize, to: usize) {
    let mut j = from;
    while j < to {
        let bit = j % 64;
        let n = (64 - bit).min(to - j);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << bit
        };
        if let Some(word) = bits.get_mut(j / 64) {
            *word |= mask;
        }
        j += n;
    }
}

/// What a head says of one series: as a segment's index entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadEntry {
    pub id: u32,
    pub points: u64,
    pub t_min: i64,
    pub t_max: i64,
    pub v_min: u64,
    pub v_max: u64,
}

/// A forward-only cursor over one head: `seek` with non-decreasing ids
/// decodes each chunk once, unless it seeks an id it was not told of
/// ([`HeadCursor::expect`]), which decodes that chunk again.
pub(crate) struct HeadCursor<'a> {
    head: &'a Head,
    chunk: ChunkBuffer,
    /// Every frame's time, in order.
    times: Vec<i64>,
    /// The ids of the head's range the caller said it will seek,
    /// increasing ([`HeadCursor::expect`]); `None`: any id.
    expected: Option<Vec<u32>>,
}

impl<'a> HeadCursor<'a> {
    pub(crate) fn new(head: &'a Head) -> HeadCursor<'a> {
        HeadCursor {
            head,
            chunk: ChunkBuffer::default(),
            times: head.frames.iter().map(|f| f.time).collect(),
            expected: None,
        }
    }

    /// Says which series the next seeks will ask for, in increasing order,
    /// so that decoding a chunk keeps only their counts. It is a hint: a
    /// seek of an id not listed decodes its chunk again with that id added,
    /// and answers as if nothing had been said.
    pub(crate) fn expect(&mut self, ids: &[u32]) {
        let lo = ids.partition_point(|&id| id < self.head.first_id);
        let hi = ids.partition_point(|&id| u64::from(id) < self.head.end_id);
        let mine = ids.get(lo..hi.max(lo)).unwrap_or(&[]);
        if mine.len() > CHUNK_IDS as usize {
            self.head.scanning();
        }
        let expected = self.expected.get_or_insert_with(Vec::new);
        expected.clear();
        expected.extend_from_slice(mine);
    }

    /// The positions of the chunk at `start` that the caller expects.
    fn mask_for(&self, start: u32) -> ChunkMask {
        let Some(expected) = &self.expected else {
            return ALL_POSITIONS;
        };
        let end = u64::from(start) + u64::from(CHUNK_IDS);
        let lo = expected.partition_point(|&id| id < start);
        let hi = expected.partition_point(|&id| u64::from(id) < end);
        let mut mask = [0; CHUNK_WORDS];
        for &id in expected.get(lo..hi.max(lo)).unwrap_or(&[]) {
            // Ids below `start` are before `lo` when the list increases, as
            // `expect` asks; were it not sorted, such an id is left out,
            // and a seek of it decodes the chunk again.
            if let Some(j) = id.checked_sub(start) {
                add(&mut mask, j as usize);
            }
        }
        mask
    }

    /// What the head holds of series `id`, if anything.
    pub(crate) fn seek(&mut self, id: u32) -> Result<Option<HeadEntry>> {
        if id < self.head.first_id || u64::from(id) >= self.head.end_id {
            return Ok(None);
        }
        let start = super::range_start(id);
        let j = (id - start) as usize;
        if self.chunk.start != Some(start) || !has(&self.chunk.wanted, j) {
            let mut mask = if self.chunk.start == Some(start) {
                self.chunk.wanted
            } else {
                self.mask_for(start)
            };
            add(&mut mask, j);
            self.chunk.decode(self.head, start, &mask, Keep::Counts)?;
        }
        let (counts, present) = self.chunk.series(j);
        let entry = match present {
            None => {
                let (Some(&t_min), Some(&t_max)) = (self.times.first(), self.times.last()) else {
                    return Ok(None);
                };
                let (v_min, v_max) = min_max(counts);
                HeadEntry {
                    id,
                    points: counts.len() as u64,
                    t_min,
                    t_max,
                    v_min,
                    v_max,
                }
            }
            Some(present) => {
                let mut found: Option<HeadEntry> = None;
                for (f, (&v, &t)) in counts.iter().zip(&self.times).enumerate() {
                    if !present.holds(f) {
                        continue;
                    }
                    let e = found.get_or_insert(HeadEntry {
                        id,
                        points: 0,
                        t_min: t,
                        t_max: t,
                        v_min: v,
                        v_max: v,
                    });
                    e.points += 1;
                    e.t_max = t;
                    e.v_min = e.v_min.min(v);
                    e.v_max = e.v_max.max(v);
                }
                match found {
                    Some(e) => e,
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(entry))
    }

    /// Appends the points of series `id`, which the last [`seek`] found, to
    /// `times` and `values` (only the columns asked for).
    ///
    /// [`seek`]: HeadCursor::seek
    pub(crate) fn decode<W: Word>(
        &self,
        id: u32,
        need: Columns,
        times: &mut Vec<i64>,
        values: &mut Vec<W>,
    ) -> Result<()> {
        let start = super::range_start(id);
        if self.chunk.start != Some(start) || !has(&self.chunk.wanted, (id - start) as usize) {
            return Err(self.head.corrupt(format!("series {id} was not sought")));
        }
        let (counts, present) = self.chunk.series((id - start) as usize);
        match present {
            None => {
                if need.times {
                    times.extend_from_slice(&self.times);
                }
                if need.values {
                    values.extend(counts.iter().map(|&v| W::from_bits(v)));
                }
            }
            Some(present) => {
                for (f, (&v, &t)) in counts.iter().zip(&self.times).enumerate() {
                    if !present.holds(f) {
                        continue;
                    }
                    if need.times {
                        times.push(t);
                    }
                    if need.values {
                        values.push(W::from_bits(v));
                    }
                }
            }
        }
        Ok(())
    }
}
