//! The file-system seam: every write, fsync, rename, removal, directory
//! creation and directory sync a database makes goes through
//! [`FileSystem`] (docs/format.md, "Durability", [I8]).
//!
//! Production code uses [`StdFs`], plain `std::fs` calls. Tests swap in a
//! file system that records every operation and can fail any of them
//! (`testing.rs`), from which `image.rs` builds the disk a power cut would
//! leave behind. Reads do not go through the seam: segments and the
//! dictionary are memory-mapped, and what a crash leaves is decided by the
//! writes alone.
//!
//! The one exception is the `LOCK` file: `flock` needs a real descriptor,
//! and its content (the holder's pid) is never read back as data.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

#[cfg(test)]
pub(crate) mod image;
#[cfg(test)]
pub(crate) mod testing;

/// A file opened for writing through the seam.
pub(crate) trait WritableFile: Write + Send {
    /// Makes everything written so far durable (`fsync`).
    fn sync(&mut self) -> io::Result<()>;
}

/// The operations that change a database directory.
pub(crate) trait FileSystem: Send + Sync + Debug {
    /// Creates `path` (or empties it) for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens `path` for appending, creating it if missing.
    fn append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Cuts the file at `path` to `len` bytes and makes that durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates the directory `path`; its parent exists.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Makes the creations, renames and removals in directory `path` durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// The file system of `std::fs`, as production uses it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StdFs;

/// [`StdFs`], shared.
pub(crate) fn std_fs() -> std::sync::Arc<dyn FileSystem> {
    std::sync::Arc::new(StdFs)
}

impl WritableFile for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

impl FileSystem for StdFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(File::create(path)?))
    }

    fn append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        ))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

/// A writable file that buffers writes, for files written in many small
/// pieces (segments). Dropping it without [`BufferedFile::finish`] loses
/// what is buffered, which is what an abandoned segment wants.
pub(crate) struct BufferedFile {
    inner: std::io::BufWriter<Box<dyn WritableFile>>,
}

impl BufferedFile {
    pub(crate) fn new(file: Box<dyn WritableFile>, capacity: usize) -> BufferedFile {
        BufferedFile {
            inner: std::io::BufWriter::with_capacity(capacity, file),
        }
    }

    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)
    }

    /// Writes what is buffered and makes the whole file durable.
    pub(crate) fn finish(self) -> io::Result<()> {
        let mut file = self.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync()
    }
}
