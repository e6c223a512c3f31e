//! A file system for tests: it does what [`StdFs`] does, records every
//! operation with the bytes written, and fails the operations a test asks it
//! to fail. `image.rs` turns a recording into the disks a power cut could
//! leave; the fault tests use the failures (docs/reliability.md, "Crash
//! images and injected faults").

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{FileSystem, WritableFile};

/// One operation, as the file system saw it. Files are named by inode
/// numbers the recording hands out, so that a rename keeps a file's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// A directory was created.
    CreateDir {
        path: PathBuf,
    },
    /// `path` was created empty, as a new file (`inode`), or an existing
    /// file there was emptied (`existing`).
    Create {
        path: PathBuf,
        inode: u64,
        existing: bool,
    },
    /// `path` was opened to append; `created` when it did not exist.
    OpenAppend {
        path: PathBuf,
        inode: u64,
        created: bool,
    },
    /// Bytes written at `offset`.
    Write {
        inode: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// The file's data became durable.
    Sync {
        inode: u64,
    },
    /// The file was cut to `len` bytes, durably.
    Truncate {
        inode: u64,
        len: u64,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Remove {
        path: PathBuf,
    },
    /// The entries of directory `path` became durable.
    SyncDir {
        path: PathBuf,
    },
    /// A point the test marks in the sequence (never seen by the code under
    /// test): `Begin(i)` before an action that commits state `i`, `End(i)`
    /// once it returned.
    Begin(usize),
    End(usize),
}

/// A failure to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    /// The number of the failing operation, counting from 0 every operation
    /// that changes something (not markers).
    pub at: u64,
    /// The error returned.
    pub kind: FaultKind,
    /// Every operation after the failing one fails too (a disk that is
    /// full or gone), until the fault is cleared.
    pub sticky: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// EIO; a write writes nothing.
    Io,
    /// ENOSPC; a write writes the first half of its bytes, then fails.
    NoSpace,
}

impl FaultKind {
    fn error(self) -> io::Error {
        match self {
            FaultKind::Io => io::Error::from_raw_os_error(5),
            FaultKind::NoSpace => io::Error::from_raw_os_error(28),
        }
    }
}

#[derive(Debug, Default)]
struct Recording {
    ops: Vec<Op>,
    /// Operations counted for faults.
    count: u64,
    next_inode: u64,
    /// The file at each path now, and each file's length.
    files: HashMap<PathBuf, u64>,
    lengths: HashMap<u64, u64>,
    fault: Option<Fault>,
    /// A sticky fault has fired.
    failing: Option<FaultKind>,
    /// Every write writes at most half its bytes (a legal short write).
    short_writes: bool,
    /// Faults fired.
    fired: u64,
}

impl Recording {
    /// Counts one operation; returns the fault to answer it with, if any.
    fn check(&mut self) -> Option<FaultKind> {
        let n = self.count;
        self.count += 1;
        if let Some(kind) = self.failing {
            self.fired += 1;
            return Some(kind);
        }
        match self.fault {
            Some(fault) if fault.at == n => {
                self.fired += 1;
                if fault.sticky {
                    self.failing = Some(fault.kind);
                }
                Some(fault.kind)
            }
            _ => None,
        }
    }

    fn new_inode(&mut self, path: &Path) -> u64 {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.files.insert(path.to_path_buf(), inode);
        self.lengths.insert(inode, 0);
        inode
    }
}

/// The recording file system. Clones share one recording.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordingFs {
    state: Arc<Mutex<Recording>>,
}

impl RecordingFs {
    pub(crate) fn new() -> RecordingFs {
        RecordingFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        // A test that panicked while holding it has failed already.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The operations so far.
    pub(crate) fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// Operations counted so far (markers excluded).
    pub(crate) fn count(&self) -> u64 {
        self.lock().count
    }

    /// Faults fired so far.
    pub(crate) fn fired(&self) -> u64 {
        self.lock().fired
    }

    pub(crate) fn mark(&self, op: Op) {
        self.lock().ops.push(op);
    }

    pub(crate) fn inject(&self, fault: Fault) {
        let mut state = self.lock();
        state.fault = Some(fault);
        state.failing = None;
    }

    /// Stops failing: the disk is back.
    pub(crate) fn clear_fault(&self) {
        let mut state = self.lock();
        state.fault = None;
        state.failing = None;
    }

    pub(crate) fn short_writes(&self, on: bool) {
        self.lock().short_writes = on;
    }

    fn file(&self, file: File, inode: u64, offset: u64) -> Box<dyn WritableFile> {
        Box::new(RecordedFile {
            file,
            inode,
            offset,
            fs: self.clone(),
        })
    }
}

impl FileSystem for RecordingFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.lock();
        if let Some(kind) = state.check() {
            return Err(kind.error());
        }
        let file = File::create(path)?;
        let (inode, existing) = match state.files.get(path) {
            Some(&inode) => {
                state.lengths.insert(inode, 0);
                (inode, true)
            }
            None => (state.new_inode(path), false),
        };
        state.ops.push(Op::Create {
            path: path.to_path_buf(),
            inode,
            existing,
        });
        drop(state);
        Ok(self.file(file, inode, 0))
    }

    fn append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.lock();
        if let Some(kind) = state.check() {
            return Err(kind.error());
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (inode, created) = match state.files.get(path) {
            Some(&inode) => (inode, false),
            None => (state.new_inode(path), true),
        };
        let offset = state.lengths.get(&inode).copied().unwrap_or(0);
        state.ops.push(Op::OpenAppend {
            path: path.to_path_buf(),
            inode,
            created,
        });
        drop(state);
        Ok(self.file(file, inode, offset))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.check() {
            return Err(kind.error());
        }
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()?;
        let inode = *state
            .files
            .get(path)
            .unwrap_or_else(|| panic!("{} was made outside the recording", path.display()));
        state.lengths.insert(inode, len);
        state.ops.push(Op::Truncate { inode, len });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.check() {
            return Err(kind.error());
        }
        std::fs::rename(from, to)?;
        if let Some(inode) = state.files.remove(from) {
            state.files.insert(to.to_path_buf(), inode);
        }
        state.ops.push(Op::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.check() {
            return Err(kind.error());
        }
        std::fs::remove_file(path)?;
        state.files.remove(path);
        state.ops.push(Op::Remove {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.check() {
            return Err(kind.error());
        }
        std::fs::create_dir(path)?;
        state.ops.push(Op::CreateDir {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.check() {
            return Err(kind.error());
        }
        File::open(path)?.sync_all()?;
        state.ops.push(Op::SyncDir {
            path: path.to_path_buf(),
        });
        Ok(())
    }
}

struct RecordedFile {
    file: File,
    inode: u64,
    offset: u64,
    fs: RecordingFs,
}

impl Write for RecordedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.fs.lock();
        let fault = state.check();
        let mut len = buf.len();
        if state.short_writes && len > 1 {
            len = len.div_ceil(2);
        }
        if let Some(kind) = fault {
            len = match kind {
                FaultKind::Io => 0,
                FaultKind::NoSpace => buf.len() / 2,
            };
        }
        let written = &buf[..len];
        self.file.write_all(written)?;
        if !written.is_empty() {
            state.ops.push(Op::Write {
                inode: self.inode,
                offset: self.offset,
                bytes: written.to_vec(),
            });
            self.offset += len as u64;
            let end = state.lengths.entry(self.inode).or_insert(0);
            *end = (*end).max(self.offset);
        }
        match fault {
            Some(kind) => Err(kind.error()),
            None => Ok(len),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl WritableFile for RecordedFile {
    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.fs.lock();
        if let Some(kind) = state.check() {
            return Err(kind.error());
        }
        self.file.sync_all()?;
        state.ops.push(Op::Sync { inode: self.inode });
        Ok(())
    }
}
