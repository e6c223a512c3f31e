//! Replays the fuzz corpora (tests/fuzz/corpus/TARGET/) through the same
//! checks the fuzz targets run (tests/fuzz/checks/TARGET.rs), as an
//! ordinary test: CI needs no fuzzing toolchain, and every input a fuzzer
//! once found interesting keeps being checked. docs/reliability.md,
//! "Fuzzing", describes the targets.
//!
//! Inputs that still fail, findings not yet fixed, are kept in
//! tests/fuzz/known/TARGET/ rather than in the corpus;
//! `cargo test --test fuzz_corpus -- --ignored known_findings` replays them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "fuzz/checks/alloc_limit.rs"]
mod alloc_limit;
#[path = "fuzz/checks/api_hostile.rs"]
mod api_hostile;
#[path = "fuzz/checks/common.rs"]
mod common;
#[path = "fuzz/checks/database_files.rs"]
mod database_files;
#[path = "fuzz/checks/import_snapshot.rs"]
mod import_snapshot;
#[path = "fuzz/checks/query_text.rs"]
mod query_text;

// database_files bounds single allocations by the size of its files, as in
// its fuzz target.
#[global_allocator]
static ALLOCATOR: alloc_limit::Limited = alloc_limit::Limited;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

/// The files of `dir`, sorted, with their bytes; none if it does not exist.
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a corpus file reads");
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` on every input, and fails naming each that panicked (its
/// message is printed above by the panic hook).
fn replay(inputs: &[(PathBuf, Vec<u8>)], check: fn(&[u8])) {
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, data)| catch_unwind(AssertUnwindSafe(|| check(data))).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "failing inputs: {failed:#?}");
}

/// Replays the checked-in corpus of `target`, which must not be empty.
fn replay_corpus(target: &str, check: fn(&[u8])) {
    let corpus = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "no corpus for {target}");
    replay(&corpus, check);
}

#[test]
fn query_text_corpus() {
    replay_corpus("query_text", query_text::check);
}

#[test]
fn import_snapshot_corpus() {
    replay_corpus("import_snapshot", import_snapshot::check);
}

#[test]
fn database_files_corpus() {
    replay_corpus("database_files", database_files::check);
}

/// The seeds as the template database makes them now, whatever the
/// checked-in ones were made from.
#[test]
fn database_files_fresh_seeds() {
    let seeds: Vec<(PathBuf, Vec<u8>)> = database_files::seeds()
        .into_iter()
        .enumerate()
        .map(|(i, seed)| (PathBuf::from(format!("fresh seed {i}")), seed))
        .collect();
    replay(&seeds, database_files::check);
}

/// database_files recomputes checksums where docs/format.md puts them:
/// on the templates' own files that must change nothing.
#[test]
fn database_files_forging_is_exact() {
    database_files::check_forging_is_exact();
}

#[test]
fn api_hostile_corpus() {
    replay_corpus("api_hostile", api_hostile::check);
}

/// Writes the database_files seeds into its corpus; run after a change to
/// the template or to the writer's encodings:
/// `cargo test --test fuzz_corpus -- --ignored write_database_files_seeds`.
#[test]
#[ignore = "writes into tests/fuzz/corpus"]
fn write_database_files_seeds() {
    let dir = fuzz_dir().join("corpus/database_files");
    std::fs::create_dir_all(&dir).expect("the corpus directory");
    for seed in database_files::seeds() {
        // Bytes 0 and 1 are the file and the template and mode
        // (tests/fuzz/checks/database_files.rs); template A's seeds keep
        // the names they always had.
        let (file, mode) = (seed[0], seed[1]);
        let template = if mode >= 3 { "b-" } else { "" };
        let name = format!("seed-{template}file{file}-mode{}", mode % 3);
        std::fs::write(dir.join(name), seed).expect("a seed is written");
    }
}

/// A fuzz target: its name and its check.
type Target = (&'static str, fn(&[u8]));

/// The findings not yet fixed (tests/fuzz/known/TARGET/): fails while any
/// still fails. An input that aborts (an allocation past its bound) stops
/// the whole run with Rust's "memory allocation of N bytes failed".
#[test]
#[ignore = "replays unfixed findings, which fail"]
fn known_findings() {
    let known = fuzz_dir().join("known");
    let checks: [Target; 4] = [
        ("query_text", query_text::check),
        ("import_snapshot", import_snapshot::check),
        ("database_files", database_files::check),
        ("api_hostile", api_hostile::check),
    ];
    for (target, check) in checks {
        replay(&inputs(&known.join(target)), check);
    }
}
