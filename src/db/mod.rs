//! The database directory: manifest, lock, recovery, writer, compaction,
//! verification.
