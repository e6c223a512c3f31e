//! The single-writer lock ([I6]): an advisory lock on `LOCK`, which also
//! holds the writer's pid so that a second writer can say who is in the way.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, Result};

pub(crate) const LOCK: &str = "LOCK";

/// How long a writer waits for a lock that its own process last held (see
/// `acquire`), and how often it tries meanwhile.
const FORK_GRACE: std::time::Duration = std::time::Duration::from_millis(200);
const FORK_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// Held for as long as a process may write; released when dropped (and by
/// the kernel if the process dies).
#[derive(Debug)]
pub(crate) struct WriteLock {
    _file: File,
}

impl WriteLock {
    pub(crate) fn acquire(dir: &Path) -> Result<WriteLock> {
        let path = dir.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut waited = std::time::Duration::ZERO;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
                    let pid: Option<u32> = text.trim().parse().ok();
                    // A lock this process held and released can still be held
                    // for a moment by a child it was forking (a program that
                    // runs other programs): the child shares the lock's open
                    // file until it execs. Wait that moment out; a writer
                    // of this process that really holds it still fails.
                    if pid == Some(std::process::id()) && waited < FORK_GRACE {
                        std::thread::sleep(FORK_POLL);
                        waited += FORK_POLL;
                        continue;
                    }
                    return Err(Error::Locked { pid });
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        // The pid is only for the message above; a reader that finds it
        // half-written says "another process" instead.
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{pid}"))
            .map_err(|e| Error::io(&path, e))?;
        Ok(WriteLock { _file: file })
    }
}
