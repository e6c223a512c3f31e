//! Writing the dictionary index (docs/format.md, "Dictionary index", rule
//! DX3): when the frames parsed after the current index have grown past a
//! bound, the writer's maintenance step writes an index of the whole
//! committed dictionary and commits a manifest naming it.

use std::sync::Arc;

use crate::db::manifest::IndexMeta;
use crate::db::snapshot::{DICTIONARY, map_committed};
use crate::db::writer::Writer;
use crate::error::{Error, Result};
use crate::storage::dictionary::Dictionary;
use crate::storage::dictionary::index::{DictIndex, encode, index_file_name};

/// The longest tail a reader parses at open before the merge step writes a
/// new index ([DX3]): about 40,000 new accounts of a snapshot.
const MAX_TAIL: u64 = 1 << 20;
/// ... unless the tail is no more than this fraction of what the index
/// covers, so that rewriting the index costs a bounded multiple of the
/// dictionary's growth.
const TAIL_FRACTION: u64 = 16;

/// Writes and commits a new dictionary index when the tail is due one
/// ([DX3]), or whenever there is a tail if `always` (compaction). Returns
/// whether it did.
pub(crate) fn index_if_due(writer: &mut Writer, always: bool) -> Result<bool> {
    let base = Arc::clone(writer.base());
    let manifest = &base.manifest;
    let dir = base.dir.clone();
    if manifest.generation == 0 || manifest.accounts == 0 {
        return Ok(false);
    }
    let covered = base.dict.index().map_or(0, |i| i.covered());
    let tail = manifest.dict_len.saturating_sub(covered);
    let due = tail > 0 && (always || (tail > MAX_TAIL && tail > covered / TAIL_FRACTION));
    if !due {
        return Ok(false);
    }
    let dict_path = dir.join(DICTIONARY);
    let committed = map_committed(&dict_path, manifest.dict_len)?;
    let bytes = encode(&committed).map_err(|e| Error::corrupt(&dict_path, e))?;
    let number = writer.take_segment_number()?;
    let fs = Arc::clone(writer.fs());
    let path = dir.join(index_file_name(number));
    let tmp = dir.join(format!("{}.tmp", index_file_name(number)));
    let written = (|| -> Result<()> {
        let mut file = fs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
        file.sync().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        fs.rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    })();
    if let Err(e) = written {
        let _ = fs.remove_file(&tmp);
        let _ = fs.remove_file(&path);
        return Err(e);
    }
    let meta = IndexMeta {
        number,
        file_len: bytes.len() as u64,
    };
    drop(bytes);
    let opened = DictIndex::open(&path, meta.file_len, &dict_path, committed).and_then(|i| {
        Dictionary::with_index(Arc::new(i)).map_err(|e| Error::corrupt(&dict_path, e))
    });
    let dict = match opened {
        Ok(dict) => dict,
        Err(e) => {
            let _ = fs.remove_file(&path);
            return Err(e);
        }
    };
    let old = manifest.index;
    if let Err(e) = writer.commit_index(meta, dict) {
        if !writer.is_stopped() {
            let _ = fs.remove_file(&path);
        }
        return Err(e);
    }
    // No manifest names the old index any more; a reader that maps it keeps
    // its mapping ([MG5]), and a file we fail to remove is a leftover the
    // next writer removes ([R1]).
    if let Some(old) = old {
        let _ = fs.remove_file(&dir.join(index_file_name(old.number)));
    }
    Ok(true)
}
