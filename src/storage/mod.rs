//! The storage engine: how points are encoded into columns, how columns are
//! laid out in immutable segment files, and how the series dictionary maps
//! (account, metric) to dense ids. The byte layout is docs/format.md.

pub(crate) mod dictionary;
pub(crate) mod encoding;
pub(crate) mod files;
pub(crate) mod format;
pub(crate) mod fs;
pub(crate) mod head;
pub(crate) mod merge;
pub(crate) mod name_hash;
pub(crate) mod part;
pub(crate) mod segment;
