//! The `database_files` fuzz target: the check is
//! tests/fuzz/checks/database_files.rs, shared with the corpus replay in
//! tests/fuzz_corpus.rs.

#![no_main]

#[path = "../checks/alloc_limit.rs"]
mod alloc_limit;
#[path = "../checks/common.rs"]
mod common;
#[path = "../checks/database_files.rs"]
mod database_files;

// The check bounds single allocations by the size of the files it plants.
#[global_allocator]
static ALLOCATOR: alloc_limit::Limited = alloc_limit::Limited;

libfuzzer_sys::fuzz_target!(|data: &[u8]| database_files::check(data));
