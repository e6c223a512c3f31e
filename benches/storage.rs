//! Whole-database figures of the storage engine, printed as a table:
//! append+commit throughput, bytes per point after compaction, the time to
//! open a database and read one account's series, and a full-scan query.
//!
//! `cargo bench --bench storage` (defaults: 250,000 accounts x 4 metrics =
//! 1,000,000 series x 48 hourly points). `TALLY_BENCH_ACCOUNTS` and
//! `TALLY_BENCH_HOURS` change the size. Medians of several runs; no
//! assertions: this measures, the tests check.

use std::time::{Duration, Instant};

use tally::generate::Rng;
use tally::{Db, TimeRange};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_548_979_200_000; // 2019-02-01T00:00:00Z
const METRICS: [&str; 4] = ["followers", "following", "posts", "likes"];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let accounts = env_or("TALLY_BENCH_ACCOUNTS", 250_000);
    let hours = env_or("TALLY_BENCH_HOURS", 48) as i64;
    let dir = tempfile::tempdir().unwrap();
    // TALLY_BENCH_QUERY_ONLY=DIR skips building and only times queries on an
    // existing database (for profiling).
    if let Ok(existing) = std::env::var("TALLY_BENCH_QUERY_ONLY") {
        let db = Db::open(&existing).unwrap();
        let runs = env_or("TALLY_BENCH_RUNS", 5);
        let mut scans = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let n = db.query("drop(followers, 5%, 1h)").unwrap().len();
            scans.push(t.elapsed());
            println!("{n} episodes in {:?}", scans.last().unwrap());
        }
        println!("median {:?}", median(scans));
        return;
    }
    let path = std::env::var("TALLY_BENCH_KEEP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("bench.db"));
    let db = Db::open(&path).unwrap();

    // Power-law sizes (Pareto, alpha 1.2, from 100); most hourly deltas are
    // zero, big accounts move every hour; one account in 50 is purged by
    // 10% at hour 20.
    let mut rng = Rng::new(42);
    let mut state: Vec<[u64; 4]> = (0..accounts)
        .map(|_| {
            let size = (100.0 / rng.unit().max(1e-9).powf(1.0 / 1.2)).min(5e7) as u64;
            [size, size / 10 + 5, size / 100 + 1, size * 3]
        })
        .collect();
    let names: Vec<String> = (0..accounts).map(|a| format!("user_{a:07}")).collect();

    let started = Instant::now();
    let mut w = db.writer().unwrap();
    let mut points = 0u64;
    for h in 0..hours {
        let t = T0 + h * HOUR;
        for (a, s) in state.iter_mut().enumerate() {
            for (m, v) in s.iter_mut().enumerate() {
                let activity = (*v as f64).sqrt() / 300.0;
                if rng.unit() < activity.min(1.0) {
                    let step = (activity * 3.0).max(1.0) as u64;
                    let up = rng.next_u64() % (2 * step + 1);
                    *v = (*v + up).saturating_sub(step);
                }
                if m == 0 && h == 20 && a % 50 == 0 {
                    *v -= *v / 10;
                }
                w.append(&names[a], METRICS[m], t, *v).unwrap();
                points += 1;
            }
        }
    }
    let appended = started.elapsed();
    w.commit().unwrap();
    drop(w);
    let written = started.elapsed();
    let before = db.stats().unwrap();
    let started = Instant::now();
    db.compact().unwrap();
    let compacted = started.elapsed();
    let stats = db.stats().unwrap();

    // Open + read one account's four series, cold handle each time.
    let mut opens = Vec::new();
    let mut reads = Vec::new();
    for i in 0..9 {
        let account = &names[(i * 7919) % accounts];
        let t = Instant::now();
        let db = Db::open(&path).unwrap();
        let opened = t.elapsed();
        let mut n = 0;
        for m in METRICS {
            n += db.points(account, m, TimeRange::ALL).unwrap().len();
        }
        assert_eq!(n as i64, 4 * hours);
        opens.push(opened);
        reads.push(t.elapsed() - opened);
    }

    let mut scans = Vec::new();
    let mut drops = 0;
    for _ in 0..5 {
        let t = Instant::now();
        drops = db.query("drop(followers, 5%, 1h)").unwrap().len();
        scans.push(t.elapsed());
    }
    let scan = median(scans);
    let followers_points = accounts as f64 * hours as f64;

    println!("storage bench: {accounts} accounts x 4 metrics x {hours} hours = {points} points");
    println!(
        "{:<44}{:>14}",
        "append + commit (one batch)",
        format!("{:.2} s", written.as_secs_f64())
    );
    println!(
        "{:<44}{:>14}",
        "  of which append",
        format!("{:.2} s", appended.as_secs_f64())
    );
    println!(
        "{:<44}{:>14}",
        "  points per second",
        format!("{:.2} M", points as f64 / written.as_secs_f64() / 1e6)
    );
    println!(
        "{:<44}{:>14}",
        "segments before compaction", before.segments
    );
    println!(
        "{:<44}{:>14}",
        "bytes per point before compaction",
        format!("{:.3}", before.bytes_per_point())
    );
    println!(
        "{:<44}{:>14}",
        "compaction",
        format!("{:.2} s", compacted.as_secs_f64())
    );
    println!(
        "{:<44}{:>14}",
        "bytes per point after compaction",
        format!("{:.3}", stats.bytes_per_point())
    );
    println!(
        "{:<44}{:>14}",
        "open (median of 9)",
        format!("{:.1} ms", median(opens).as_secs_f64() * 1e3)
    );
    println!(
        "{:<44}{:>14}",
        "read one account's 4 series (median)",
        format!("{:.2} ms", median(reads).as_secs_f64() * 1e3)
    );
    println!(
        "{:<44}{:>14}",
        "drop(followers, 5%, 1h) (median of 5)",
        format!("{:.3} s", scan.as_secs_f64())
    );
    println!(
        "{:<44}{:>14}",
        "  points per second",
        format!("{:.0} M", followers_points / scan.as_secs_f64() / 1e6)
    );
    println!("{:<44}{:>14}", "  episodes found", drops);
}
