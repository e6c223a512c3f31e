//! The `query_text` fuzz target: the check is tests/fuzz/checks/query_text.rs, shared
//! with the corpus replay in tests/fuzz_corpus.rs.

#![no_main]

#[path = "../checks/common.rs"]
mod common;
#[path = "../checks/query_text.rs"]
mod query_text;

libfuzzer_sys::fuzz_target!(|data: &[u8]| query_text::check(data));
