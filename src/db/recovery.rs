//! Recovery after a crash ([R1]): what a writer removes before it starts.
//!
//! A crash can leave temporary files, segments and dictionary indexes that
//! were written but never named by a manifest (or no longer are), and
//! dictionary frames past the committed length.
//! None of them is visible to readers; the next writer removes them so they
//! do not pile up. Only the lock holder runs this ([I6]).

use std::path::Path;

use crate::db::manifest::Manifest;
use crate::db::snapshot::DICTIONARY;
use crate::error::{Error, Result};
use crate::storage::dictionary::index::parse_index_file_name;
use crate::storage::fs::FileSystem;
use crate::storage::head::parse_head_file_name;
use crate::storage::segment::parse_segment_file_name;

/// Removes the leftovers of unfinished writes in `dir`.
pub(crate) fn clean_up(fs: &dyn FileSystem, dir: &Path, manifest: &Manifest) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let leftover = name.ends_with(".tmp")
            || parse_segment_file_name(name)
                .is_some_and(|n| !manifest.segments.iter().any(|s| !s.head && s.number == n))
            || parse_head_file_name(name)
                .is_some_and(|n| !manifest.segments.iter().any(|s| s.head && s.number == n))
            || parse_index_file_name(name)
                .is_some_and(|n| manifest.index.is_none_or(|i| i.number != n));
        if leftover {
            let path = entry.path();
            fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    // [HD4]: a head is cut back to its committed length, as series.dict is.
    for meta in manifest.segments.iter().filter(|s| s.head) {
        let path = dir.join(meta.file_name());
        match std::fs::metadata(&path) {
            Ok(found) if found.len() > meta.file_len => {
                fs.truncate(&path, meta.file_len)
                    .map_err(|e| Error::io(&path, e))?;
            }
            Ok(_) => {}
            // A missing or short head is damage, which opening the snapshot
            // reports ([M3]).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    let dict = dir.join(DICTIONARY);
    match std::fs::metadata(&dict) {
        Ok(meta) if meta.len() > manifest.dict_len => {
            fs.truncate(&dict, manifest.dict_len)
                .map_err(|e| Error::io(&dict, e))?;
        }
        Ok(meta) if meta.len() < manifest.dict_len => {
            return Err(Error::corrupt(
                &dict,
                format!(
                    "file is {} bytes but {} bytes were committed",
                    meta.len(),
                    manifest.dict_len
                ),
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && manifest.dict_len == 0 => {}
        Err(e) => return Err(Error::io(&dict, e)),
    }
    Ok(())
}
