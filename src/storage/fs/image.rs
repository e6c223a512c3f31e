//! Crash images: the disk a power cut could leave after a recorded prefix
//! of operations (docs/reliability.md, "Crash images and injected faults").
//!
//! The model is the one POSIX promises and no more:
//! - a file's data is durable up to its last `fsync`; writes after it may
//!   be lost, from any one of them on, and the first lost one may be torn
//!   (a prefix of it reached the disk);
//! - a creation, rename or removal is durable once its directory was
//!   fsynced; before that, each may be lost or kept, independently of the
//!   others (a rename stays atomic: both names change or neither).
//!
//! A [`Chooser`] decides each "may": the two extremes, a torn last write,
//! and random mixtures.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::testing::Op;

/// Decides what of the writes not yet durable survives the power cut.
pub(crate) trait Chooser {
    /// Whether a creation, rename or removal not yet made durable survives.
    fn keep_entry(&mut self) -> bool;
    /// How many of a file's `n` writes since its last fsync survive (the
    /// first ones), and how many bytes of the last of them survive when it
    /// is torn (`None`: whole).
    fn keep_writes(
        &mut self,
        n: usize,
        last_len: impl Fn(usize) -> usize,
    ) -> (usize, Option<usize>);
}

/// Nothing that was not made durable survives.
pub(crate) struct LoseAll;

impl Chooser for LoseAll {
    fn keep_entry(&mut self) -> bool {
        false
    }
    fn keep_writes(&mut self, _: usize, _: impl Fn(usize) -> usize) -> (usize, Option<usize>) {
        (0, None)
    }
}

/// Everything survives, but the last write of each file is torn in half:
/// what a process crash leaves, with the power cut in the middle of a
/// write.
pub(crate) struct KeepAllTearLast;

impl Chooser for KeepAllTearLast {
    fn keep_entry(&mut self) -> bool {
        true
    }
    fn keep_writes(
        &mut self,
        n: usize,
        last_len: impl Fn(usize) -> usize,
    ) -> (usize, Option<usize>) {
        if n == 0 {
            return (0, None);
        }
        (n, Some(last_len(n - 1) / 2))
    }
}

/// Every choice random, from a seed (xorshift: the tests need no crate for
/// it and the same seed gives the same image).
pub(crate) struct Random(pub u64);

impl Random {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n as u64).max(1)) as usize
    }
}

impl Chooser for Random {
    fn keep_entry(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn keep_writes(
        &mut self,
        n: usize,
        last_len: impl Fn(usize) -> usize,
    ) -> (usize, Option<usize>) {
        let kept = self.below(n + 1);
        if kept == 0 || self.next() & 1 == 0 {
            return (kept, None);
        }
        let len = last_len(kept - 1);
        (kept, Some(self.below(len + 1)))
    }
}

#[derive(Debug, Clone)]
enum EntryOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    /// A rename carries the file it moves: once durable, the file is there
    /// under its new name even if its creation was not made durable apart.
    Rename(PathBuf, PathBuf, u64),
    MakeDir(PathBuf),
}

#[derive(Debug, Default, Clone)]
struct File {
    durable: Vec<u8>,
    /// Writes since the last fsync: offset and bytes; `None` bytes is an
    /// emptying (creation over an existing file).
    pending: Vec<(u64, Option<Vec<u8>>)>,
}

/// What a disk holds: the durable state plus what is pending.
#[derive(Debug, Default)]
struct Disk {
    files: HashMap<u64, File>,
    /// Names as durable.
    names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    /// Entry operations since each directory's last fsync.
    pending: BTreeMap<PathBuf, Vec<EntryOp>>,
    /// Names as the running system sees them (to resolve renames).
    live: BTreeMap<PathBuf, u64>,
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn apply_write(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let offset = offset as usize;
    if data.len() < offset {
        data.resize(offset, 0);
    }
    let end = offset + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}

impl Disk {
    fn entry(&mut self, dir: PathBuf, op: EntryOp) {
        self.pending.entry(dir).or_default().push(op);
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::CreateDir { path } => self.entry(parent(path), EntryOp::MakeDir(path.clone())),
            Op::Create {
                path,
                inode,
                existing,
            } => {
                if *existing {
                    self.files
                        .entry(*inode)
                        .or_default()
                        .pending
                        .push((0, None));
                } else {
                    self.files.insert(*inode, File::default());
                    self.live.insert(path.clone(), *inode);
                    self.entry(parent(path), EntryOp::Link(path.clone(), *inode));
                }
            }
            Op::OpenAppend {
                path,
                inode,
                created,
            } => {
                if *created {
                    self.files.insert(*inode, File::default());
                    self.live.insert(path.clone(), *inode);
                    self.entry(parent(path), EntryOp::Link(path.clone(), *inode));
                }
            }
            Op::Write {
                inode,
                offset,
                bytes,
            } => self
                .files
                .entry(*inode)
                .or_default()
                .pending
                .push((*offset, Some(bytes.clone()))),
            Op::Sync { inode } => {
                let file = self.files.entry(*inode).or_default();
                file.durable = contents(file, file.pending.len(), None);
                file.pending.clear();
            }
            Op::Truncate { inode, len } => {
                let file = self.files.entry(*inode).or_default();
                let mut data = contents(file, file.pending.len(), None);
                data.resize(*len as usize, 0);
                file.durable = data;
                file.pending.clear();
            }
            Op::Rename { from, to } => {
                if let Some(inode) = self.live.remove(from) {
                    self.live.insert(to.clone(), inode);
                    self.entry(parent(to), EntryOp::Rename(from.clone(), to.clone(), inode));
                }
            }
            Op::Remove { path } => {
                self.live.remove(path);
                self.entry(parent(path), EntryOp::Unlink(path.clone()));
            }
            Op::SyncDir { path } => {
                for op in self.pending.remove(path).unwrap_or_default() {
                    apply_entry(&mut self.names, &mut self.dirs, &op);
                }
            }
            Op::Begin(_) | Op::End(_) => {}
        }
    }
}

/// A file's contents with its first `kept` pending writes, the last of them
/// cut to `torn` bytes.
fn contents(file: &File, kept: usize, torn: Option<usize>) -> Vec<u8> {
    let mut data = file.durable.clone();
    for (i, (offset, bytes)) in file.pending.iter().take(kept).enumerate() {
        match bytes {
            None => data.clear(),
            Some(bytes) => {
                let len = match torn {
                    Some(len) if i + 1 == kept => len.min(bytes.len()),
                    _ => bytes.len(),
                };
                apply_write(&mut data, *offset, &bytes[..len]);
            }
        }
    }
    data
}

fn apply_entry(names: &mut BTreeMap<PathBuf, u64>, dirs: &mut BTreeSet<PathBuf>, op: &EntryOp) {
    match op {
        EntryOp::Link(path, inode) => {
            names.insert(path.clone(), *inode);
        }
        EntryOp::Unlink(path) => {
            names.remove(path);
        }
        EntryOp::Rename(from, to, inode) => {
            names.remove(from);
            names.insert(to.clone(), *inode);
        }
        EntryOp::MakeDir(path) => {
            dirs.insert(path.clone());
        }
    }
}

/// A crash image: the directories and files a power cut after `ops` could
/// leave, as `chooser` decides.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Image {
    pub dirs: BTreeSet<PathBuf>,
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

pub(crate) fn image(ops: &[Op], chooser: &mut impl Chooser) -> Image {
    let mut disk = Disk::default();
    for op in ops {
        disk.apply(op);
    }
    let mut names = disk.names.clone();
    let mut dirs = disk.dirs.clone();
    for ops in disk.pending.values() {
        for op in ops {
            if chooser.keep_entry() {
                apply_entry(&mut names, &mut dirs, op);
            }
        }
    }
    let mut image = Image {
        dirs,
        ..Image::default()
    };
    for (path, inode) in names {
        let Some(file) = disk.files.get(&inode) else {
            continue;
        };
        let pending = &file.pending;
        let (kept, torn) = chooser.keep_writes(pending.len(), |i| {
            pending
                .get(i)
                .and_then(|(_, bytes)| bytes.as_ref())
                .map_or(0, Vec::len)
        });
        image.files.insert(path, contents(file, kept, torn));
    }
    image
}

impl Image {
    /// Writes the part of the image under `from` into `to` (which exists);
    /// `false` when the image has no directory `from`.
    pub(crate) fn materialize(&self, from: &Path, to: &Path) -> std::io::Result<bool> {
        if !self.dirs.contains(from) {
            return Ok(false);
        }
        for (path, data) in &self.files {
            if let Ok(rest) = path.strip_prefix(from) {
                std::fs::write(to.join(rest), data)?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    /// A file renamed into place and synced, but whose directory was not:
    /// the power cut may lose the name and keep the old one.
    #[test]
    fn unsynced_renames_and_writes_may_be_lost() {
        let ops = vec![
            Op::CreateDir { path: p("/d") },
            Op::SyncDir { path: p("/") },
            Op::Create {
                path: p("/d/a.tmp"),
                inode: 0,
                existing: false,
            },
            Op::Write {
                inode: 0,
                offset: 0,
                bytes: b"hello".to_vec(),
            },
            Op::Sync { inode: 0 },
            Op::Rename {
                from: p("/d/a.tmp"),
                to: p("/d/a"),
            },
            Op::Write {
                inode: 0,
                offset: 5,
                bytes: b" world".to_vec(),
            },
        ];
        let lost = image(&ops, &mut LoseAll);
        assert!(lost.dirs.contains(&p("/d")));
        assert!(lost.files.is_empty(), "{lost:?}");
        let torn = image(&ops, &mut KeepAllTearLast);
        assert_eq!(
            torn.files.get(&p("/d/a")).map(Vec::as_slice),
            Some(&b"hello wo"[..])
        );
        let mut with_sync = ops.clone();
        with_sync.push(Op::SyncDir { path: p("/d") });
        let synced = image(&with_sync, &mut LoseAll);
        assert_eq!(
            synced.files.get(&p("/d/a")).map(Vec::as_slice),
            Some(&b"hello"[..])
        );
        assert!(!synced.files.contains_key(&p("/d/a.tmp")));
    }
}
