//! The `api_hostile` fuzz target: the check is tests/fuzz/checks/api_hostile.rs, shared
//! with the corpus replay in tests/fuzz_corpus.rs.

#![no_main]

#[path = "../checks/api_hostile.rs"]
mod api_hostile;
#[path = "../checks/common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| api_hostile::check(data));
