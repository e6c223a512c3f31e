//! The `import_snapshot` fuzz target: the check is tests/fuzz/checks/import_snapshot.rs, shared
//! with the corpus replay in tests/fuzz_corpus.rs.

#![no_main]

#[path = "../checks/common.rs"]
mod common;
#[path = "../checks/import_snapshot.rs"]
mod import_snapshot;

libfuzzer_sys::fuzz_target!(|data: &[u8]| import_snapshot::check(data));
