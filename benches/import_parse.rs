//! Throughput of `tally import` from files to a sink, in rows per second.
//!
//! The data is hourly snapshots of `time,account,followers,following`, the
//! accounts in the same order in every file but for a little churn, as real
//! snapshot files are. It is generated from a fixed seed, written to a
//! temporary folder (so the page cache holds it, as for a repeated import),
//! and imported whole per iteration into a new sink that keeps names in hash
//! maps and points in a vector, the cheap part of what a writer does.
//!
//! Two shapes of 200,000 rows each:
//!
//! - `20x10k`: 20 files of 10,000 accounts. One row in 20 brings an account
//!   new to the sink; the rest are the steady state of a long import (a
//!   month of hourly files of the same accounts is 720 files).
//! - `4x50k`: 4 files of 50,000 accounts. One row in 4 brings a new account,
//!   the worst case of a first import of a few snapshots.
//!
//! The `20x10k` files are also imported gzipped (`csv_gz_20x10k`) and as
//! JSON lines (`jsonl_20x10k`).
//!
//! Run with `cargo bench --bench import_parse`; criterion prints the rows
//! per second as "thrpt" (elements are rows). The import uses both cores, so
//! anything else running halves the figure: on a shared machine, run one
//! case at a time while it is quiet, as in
//! `cargo bench --bench import_parse -- csv_20x10k --warm-up-time 1 --measurement-time 4`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tally::bench_support_import::{BenchSink, Format, import_paths};

/// Accounts dropped and added between two files, per 10,000.
const CHURN_PER_10K: usize = 10;
const FIRST_HOUR: i64 = 1_550_052_000; // 2019-02-13T10:00:00Z

/// splitmix64: a tiny generator, good enough for test data and dependency
/// free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A handle like Instagram's: 5 to 20 of letters, digits, `_` and `.`.
fn handle(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_.";
    let length = 5 + rng.below(16) as usize;
    (0..length)
        .map(|_| CHARS[rng.below(CHARS.len() as u64) as usize] as char)
        .collect()
}

/// A row: (account, followers, following).
type Row = (String, u64, u64);

/// The content of one file: its time, in Unix seconds, and its rows.
type Snapshot = (i64, Vec<Row>);

/// One snapshot per file, an hour apart.
fn snapshots(files: usize, accounts: usize) -> Vec<Snapshot> {
    let mut rng = Rng(0x7a11_7a11);
    let churn = accounts * CHURN_PER_10K / 10_000;
    let mut accounts: Vec<Row> = (0..accounts)
        .map(|_| {
            // Follower counts spread over orders of magnitude.
            let magnitude = 10u64.pow(1 + rng.below(6) as u32);
            let followers = rng.below(magnitude);
            (handle(&mut rng), followers, rng.below(7500))
        })
        .collect();
    let mut snapshots = Vec::new();
    for file in 0..files {
        snapshots.push((FIRST_HOUR + 3600 * file as i64, accounts.clone()));
        for _ in 0..churn {
            let gone = rng.below(accounts.len() as u64) as usize;
            accounts.remove(gone);
            let at = rng.below(accounts.len() as u64) as usize;
            accounts.insert(at, (handle(&mut rng), rng.below(1000), rng.below(1000)));
        }
        for (_, followers, following) in &mut accounts {
            *followers = (*followers + rng.below(20)).saturating_sub(rng.below(20));
            *following = (*following + rng.below(3)).saturating_sub(rng.below(3));
        }
    }
    snapshots
}

fn rfc3339(seconds: i64) -> String {
    // Whole hours of 2019-02-13 and after, as the fixture needs no more.
    let hours = (seconds - FIRST_HOUR) / 3600 + 10;
    format!("2019-02-{:02}T{:02}:00:00Z", 13 + hours / 24, hours % 24)
}

fn csv_text(time: i64, rows: &[Row]) -> String {
    let mut text = String::from("time,account,followers,following\n");
    let time = rfc3339(time);
    for (account, followers, following) in rows {
        let _ = writeln!(text, "{time},{account},{followers},{following}");
    }
    text
}

fn jsonl_text(time: i64, rows: &[Row]) -> String {
    let mut text = String::new();
    let time = rfc3339(time);
    for (account, followers, following) in rows {
        let _ = writeln!(
            text,
            r#"{{"time":"{time}","account":"{account}","followers":{followers},"following":{following}}}"#
        );
    }
    text
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(text.as_bytes())
        .expect("compressing in memory");
    encoder.finish().expect("compressing in memory")
}

/// Writes snapshots in one format and returns the file paths.
fn write_files(
    dir: &Path,
    snapshots: &[Snapshot],
    name: &str,
    content: impl Fn(i64, &[Row]) -> Vec<u8>,
) -> Vec<PathBuf> {
    snapshots
        .iter()
        .enumerate()
        .map(|(index, (time, rows))| {
            let path = dir.join(format!("{index:02}{name}"));
            std::fs::write(&path, content(*time, rows)).expect("writing the fixture");
            path
        })
        .collect()
}

fn import_parse(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let steady = snapshots(20, 10_000);
    let first = snapshots(4, 50_000);
    let rows: usize = steady.iter().map(|(_, rows)| rows.len()).sum();
    assert_eq!(
        rows,
        first.iter().map(|(_, rows)| rows.len()).sum::<usize>()
    );
    let csv = |t: i64, r: &[Row]| csv_text(t, r).into_bytes();
    let cases = [
        ("csv_20x10k", write_files(dir.path(), &steady, "a.csv", csv)),
        ("csv_4x50k", write_files(dir.path(), &first, "b.csv", csv)),
        (
            "csv_gz_20x10k",
            write_files(dir.path(), &steady, "c.csv.gz", |t, r| {
                gzip(&csv_text(t, r))
            }),
        ),
        (
            "jsonl_20x10k",
            write_files(dir.path(), &steady, "d.jsonl", |t, r| {
                jsonl_text(t, r).into_bytes()
            }),
        ),
    ];

    let mut group = c.benchmark_group("import_parse");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (name, paths) in &cases {
        group.bench_function(*name, |b| {
            // The sink is dropped outside the timing: freeing it is not the
            // importer's work.
            b.iter_with_large_drop(|| {
                let mut sink = BenchSink::default();
                let summary =
                    import_paths(&mut sink, paths, None::<Format>).expect("the fixture imports");
                assert_eq!(summary.rows as usize, rows);
                sink
            })
        });
    }
    group.finish();
}

criterion_group!(benches, import_parse);
criterion_main!(benches);
