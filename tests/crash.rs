//! Crash safety ([I2], [I3], [R1]): a child process commits batches (and
//! now and then compacts) in a loop and is killed with SIGKILL at random
//! moments. After every kill the database must open, pass `verify`, and hold
//! exactly the batches whose commit returned — or one more, when the kill
//! landed after the manifest's rename but before the child could say so.
//!
//! The child is this same test binary, started on the ignored test
//! `child_writer`, so no extra program is needed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tally::{Db, Options, TimeRange};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_550_052_000_000;
const POINTS_PER_BATCH: u64 = 600;
const KILLS: usize = 60;

/// Every point of batch `k`: (account, metric, time, count). Batches touch
/// overlapping series and times, so later-wins matters, and each defines a
/// new account, so dictionary atomicity matters.
fn batch(k: u64) -> Vec<(String, &'static str, i64, u64)> {
    let mut points = Vec::new();
    for i in 0..POINTS_PER_BATCH {
        let account = format!("acct{:03}", (k * 37 + i) % 300);
        let metric = if i % 2 == 0 { "followers" } else { "following" };
        let time = T0 + ((k + i / 300) % 40) as i64 * HOUR;
        points.push((account, metric, time, k * 100_000 + i));
    }
    points.push((format!("new{k:05}"), "followers", T0, k));
    points
}

type Model = BTreeMap<(String, String, i64), u64>;

fn model_after(batches: u64) -> Model {
    let mut model = Model::new();
    for k in 0..batches {
        for (a, m, t, v) in batch(k) {
            model.insert((a, m.to_string(), t), v);
        }
    }
    model
}

fn contents(db: &Db) -> Model {
    let mut out = Model::new();
    for metric in db.metrics() {
        for s in db.series(&metric, |_| true).unwrap() {
            for p in db.points(&s.account, &metric, TimeRange::ALL).unwrap() {
                out.insert((s.account.clone(), metric.clone(), p.time), p.count);
            }
        }
    }
    out
}

/// The number of committed batches, read from the `new*` accounts, which
/// must be exactly new00000 .. new{n-1}.
fn committed_batches(db: &Db) -> u64 {
    let news: Vec<String> = db
        .accounts()
        .unwrap()
        .into_iter()
        .filter(|a| a.starts_with("new"))
        .collect();
    for (i, name) in news.iter().enumerate() {
        assert_eq!(
            name,
            &format!("new{i:05}"),
            "batches are not a prefix: {news:?}"
        );
    }
    news.len() as u64
}

#[test]
#[ignore = "run by `killed_writers_leave_exactly_the_committed_batches` as a child process"]
fn child_writer() {
    let dir = std::env::var_os("TALLY_CRASH_DIR").expect("TALLY_CRASH_DIR");
    let mut k: u64 = std::env::var("TALLY_CRASH_START").unwrap().parse().unwrap();
    // A small budget makes every batch spill into two segments, so kills
    // land between spills of one batch too.
    let db = Db::open_with(&dir, Options::default().memory_budget(8 * 1024)).unwrap();
    let mut writer = db.writer().unwrap();
    loop {
        if k % 9 == 8 {
            writer.compact().unwrap();
        }
        for (a, m, t, v) in batch(k) {
            writer.append(&a, m, t, v).unwrap();
        }
        writer.commit().unwrap();
        println!("committed {k}");
        k += 1;
    }
}

#[test]
fn killed_writers_leave_exactly_the_committed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next_batch = 0u64;
    let mut kills = 0;
    while kills < KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("TALLY_CRASH_DIR", dir.path())
            .env("TALLY_CRASH_START", next_batch.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the child to get going, then kill it after a random delay.
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            // libtest prints "test child_writer ... " without a newline, so
            // the first report may share its line.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, k)) = line.split_once("committed ") {
                    last = k.trim().parse::<u64>().ok();
                }
            }
            last
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 120));
        child.kill().unwrap(); // SIGKILL on Unix.
        child.wait().unwrap();
        kills += 1;
        let last_reported = reader.join().unwrap();

        let report = Db::verify(dir.path()).unwrap();
        assert!(report.is_clean(), "kill {kills}: {:?}", report.problems);
        let db = Db::open(dir.path()).unwrap();
        let committed = committed_batches(&db);
        let at_least = last_reported.map_or(next_batch, |k| k + 1);
        assert!(
            committed == at_least || committed == at_least + 1,
            "kill {kills}: {committed} batches survived, the child reported {last_reported:?}"
        );
        assert!(
            contents(&db) == model_after(committed),
            "kill {kills}: contents differ from the model of {committed} batches"
        );
        next_batch = committed;
    }
    // A writer cleans up whatever the last kill left ([R1]).
    let db = Db::open(dir.path()).unwrap();
    drop(db.writer().unwrap());
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with(".tmp"), "leftover {name}");
    }
    assert!(
        next_batch > 5,
        "the child committed only {next_batch} batches in {KILLS} runs"
    );
    assert_eq!(contents(&db), model_after(next_batch));
}

/// Kills inside merges ([MG4]): a child commits one snapshot an hour of
/// `HOURLY_ACCOUNTS` accounts and runs the merge step after each commit,
/// saying "merging" before it and "merged" after. Half the kills land at a
/// random moment of the loop; the other half 0 to 1.5 ms after a "merging"
/// that closes a 6-hour window, so mostly inside a merge that has work to
/// do (a small merge can finish first).
const HOURLY_ACCOUNTS: u64 = 400;
const MERGE_KILLS: usize = 100;
/// 2019-02-13T00:00:00Z: a whole day, so the child's hours fill the merge
/// windows as a crawler's do.
const DAY0: i64 = 1_550_016_000_000;

fn snapshot(hour: u64) -> Vec<(String, i64, u64)> {
    (0..HOURLY_ACCOUNTS)
        .map(|a| {
            let value = (hour * 7919 + a * 104_729) % 50_000;
            (format!("acct{a:04}"), DAY0 + hour as i64 * HOUR, value)
        })
        // Each hour names a new account, which tells how many snapshots a
        // database holds. Every fourth hour puts it at another time, which
        // makes that commit a segment; the other hours are snapshots that
        // go to head frames, appended to the last head ([HD3]).
        .chain(std::iter::once((
            format!("new{hour:05}"),
            if hour.is_multiple_of(4) {
                DAY0
            } else {
                DAY0 + hour as i64 * HOUR
            },
            hour,
        )))
        .collect()
}

fn hourly_model(hours: u64) -> Model {
    let mut model = Model::new();
    for h in 0..hours {
        for (a, t, v) in snapshot(h) {
            model.insert((a, "followers".to_string(), t), v);
        }
    }
    model
}

#[test]
#[ignore = "run by `kills_inside_merges_leave_exactly_the_committed_snapshots` as a child process"]
fn child_hourly_writer() {
    let dir = std::env::var_os("TALLY_CRASH_DIR").expect("TALLY_CRASH_DIR");
    let mut hour: u64 = std::env::var("TALLY_CRASH_START").unwrap().parse().unwrap();
    let db = Db::open_with(&dir, Options::default().auto_merge(false)).unwrap();
    let mut writer = db.writer().unwrap();
    loop {
        for (a, t, v) in snapshot(hour) {
            writer.append(&a, "followers", t, v).unwrap();
        }
        writer.commit().unwrap();
        println!("committed {hour}");
        println!("merging {hour}");
        let merged = writer.merge().unwrap();
        println!("merged {hour} {}", merged.merges);
        hour += 1;
    }
}

#[test]
fn kills_inside_merges_leave_exactly_the_committed_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next_hour = 0u64;
    let mut in_merge = 0;
    let mut merges_seen = 0;
    // MERGE_KILLS kills, and more (up to three times as many) while fewer
    // than a fifth landed inside a merge: on a loaded machine the aimed
    // kills land late more often, and a count of tries must not make the
    // test flaky.
    let mut kill = 0;
    while kill < MERGE_KILLS || (in_merge < MERGE_KILLS / 5 && kill < 3 * MERGE_KILLS) {
        kill += 1;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let target_merge = kill % 2 == 1;
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "child_hourly_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("TALLY_CRASH_DIR", dir.path())
            .env("TALLY_CRASH_START", next_hour.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let child = std::sync::Arc::new(std::sync::Mutex::new(child));
        let killer = std::sync::Arc::clone(&child);
        let delay_us = seed % 1_500;
        // The reader thread follows the child's lines; in the targeted runs
        // it kills the child itself, shortly after a merge begins.
        let reader = std::thread::spawn(move || {
            let mut last_committed = None;
            let mut last_line = String::new();
            let mut merges = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("committed ") {
                    last_committed = rest.trim().parse::<u64>().ok();
                }
                if let Some((_, rest)) = line.split_once("merged ") {
                    merges += rest
                        .split_whitespace()
                        .nth(1)
                        .and_then(|m| m.parse::<u64>().ok())
                        .unwrap_or(0);
                }
                let closes_a_window = line
                    .split_once("merging ")
                    .and_then(|(_, h)| h.trim().parse::<u64>().ok())
                    .is_some_and(|h| h > 0 && h % 6 == 0);
                last_line = line;
                if target_merge && closes_a_window {
                    std::thread::sleep(Duration::from_micros(delay_us));
                    // SIGKILL on Unix.
                    let _ = killer.lock().unwrap().kill();
                }
            }
            (last_committed, last_line, merges)
        });
        if target_merge {
            // The reader kills it; this bounds a run that never merges.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while child.lock().unwrap().try_wait().unwrap().is_none()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            std::thread::sleep(Duration::from_millis(20 + seed % 120));
        }
        let _ = child.lock().unwrap().kill();
        child.lock().unwrap().wait().unwrap();
        let (last_reported, last_line, merges) = reader.join().unwrap();
        merges_seen += merges;
        if last_line.contains("merging") {
            in_merge += 1;
        }

        let report = Db::verify(dir.path()).unwrap();
        assert!(report.is_clean(), "kill {kill}: {:?}", report.problems);
        let db = Db::open(dir.path()).unwrap();
        let committed = committed_batches(&db);
        let at_least = last_reported.map_or(next_hour, |k| k + 1);
        assert!(
            committed == at_least || committed == at_least + 1,
            "kill {kill}: {committed} snapshots survived, the child reported {last_reported:?}"
        );
        assert!(
            contents(&db) == hourly_model(committed),
            "kill {kill}: contents differ from the model of {committed} snapshots"
        );
        next_hour = committed;
    }
    // The next writer removes what the last kill left ([R1]) and merges on.
    let db = Db::open(dir.path()).unwrap();
    let mut writer = db.writer().unwrap();
    writer.merge().unwrap();
    drop(writer);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with(".tmp"), "leftover {name}");
    }
    let named = db.stats().unwrap().segments as usize;
    let files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".tseg") || name.ends_with(".thead")
        })
        .count();
    assert_eq!(
        files, named,
        "segment or head files that no manifest names remain"
    );
    assert_eq!(contents(&db), hourly_model(next_hour));
    eprintln!(
        "{kill} kills, {in_merge} inside a merge, {merges_seen} merges completed, {next_hour} snapshots"
    );
    assert!(
        in_merge >= MERGE_KILLS / 5,
        "only {in_merge} of {kill} kills landed inside a merge"
    );
    assert!(merges_seen > 0, "no merge completed in {kill} runs");
}
