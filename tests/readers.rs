//! Readers in another process during imports and merges ([MG5], [I2]): a
//! child process queries the database in a loop while this process commits
//! hourly snapshots (most as head frames, some as segments), merging after
//! each, and now and then compacts, which
//! replaces the dictionary index. Every state the reader sees must be
//! exactly the state after some number of whole commits.
//!
//! The child is this same test binary, started on the ignored test
//! `child_reader`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tally::{Db, TimeRange};

const HOUR: i64 = 3_600_000;
/// 2019-02-13T00:00:00Z, a whole day, so hours fill the merge windows.
const DAY0: i64 = 1_550_016_000_000;
const ACCOUNTS: u64 = 300;
const HOURS: u64 = 150;

fn value(hour: u64, account: u64) -> u64 {
    (hour * 31 + account * 7) % 10_000
}

/// The number of whole hourly commits `db` holds, or why it is not such a
/// state.
fn committed_hours(db: &Db) -> Result<u64, String> {
    let mut per_hour: BTreeMap<i64, u64> = BTreeMap::new();
    let series = db.series("followers", |_| true).unwrap();
    for s in &series {
        let account: u64 = s.account[1..]
            .parse()
            .map_err(|_| format!("unexpected account {}", s.account))?;
        let points = db
            .points(&s.account, "followers", TimeRange::ALL)
            .map_err(|e| e.to_string())?;
        for p in points {
            let hour = (p.time - DAY0) / HOUR;
            if p.count != value(hour as u64, account) {
                return Err(format!("{} at hour {hour} is {}", s.account, p.count));
            }
            *per_hour.entry(hour).or_default() += 1;
        }
    }
    let hours = per_hour.len() as u64;
    for (i, (&hour, &n)) in per_hour.iter().enumerate() {
        if hour != i as i64 || n != ACCOUNTS {
            return Err(format!("hour {hour} has {n} points; hours {per_hour:?}"));
        }
    }
    if hours > 0 && series.len() as u64 != ACCOUNTS {
        return Err(format!("{} series", series.len()));
    }
    Ok(hours)
}

#[test]
#[ignore = "run by `readers_in_another_process_see_only_committed_states` as a child process"]
fn child_reader() {
    let dir = std::env::var_os("TALLY_READER_DIR").expect("TALLY_READER_DIR");
    let stop = std::path::PathBuf::from(&dir).with_extension("stop");
    let db = Db::open(&dir).unwrap();
    let (mut reads, mut last) = (0u64, 0u64);
    while !stop.exists() {
        // Half the reads refresh a long-lived handle, half open afresh.
        let fresh;
        let handle = if reads % 2 == 0 {
            db.refresh().unwrap();
            &db
        } else {
            fresh = Db::open(&dir).unwrap();
            &fresh
        };
        match committed_hours(handle) {
            Ok(hours) => {
                assert!(hours >= last, "went back from {last} to {hours} hours");
                last = hours;
            }
            Err(why) => panic!("read {reads} saw a state no commit made: {why}"),
        }
        reads += 1;
    }
    println!("reads {reads} last {last}");
}

#[test]
fn readers_in_another_process_see_only_committed_states() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let db = Db::open(&db_dir).unwrap();
    let mut writer = db.writer().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_reader",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("TALLY_READER_DIR", &db_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut merges = 0;
    let mut indexes = 0;
    for hour in 0..HOURS {
        for a in 0..ACCOUNTS {
            writer
                .append(
                    &format!("a{a}"),
                    "followers",
                    DAY0 + hour as i64 * HOUR,
                    value(hour, a),
                )
                .unwrap();
        }
        // Hours 4k and 4k + 1 are committed together, as a segment of two
        // times; the other hours are snapshot commits, appended to heads
        // ([HD3]). The segments merge as their windows close, among heads.
        if hour.is_multiple_of(4) {
            continue;
        }
        merges += writer.commit().unwrap().merged.merges;
        // Now and then a new name and a compaction, which writes a new
        // dictionary index and removes the one readers may be opening
        // ([DX3], [MG5]); "posts" is a metric the reader does not count.
        if hour % 15 == 14 {
            writer
                .append(&format!("n{hour}"), "posts", DAY0, hour)
                .unwrap();
            writer.commit().unwrap();
            writer.compact().unwrap();
            indexes += 1;
        }
        // Give the reader time to read states in between.
        std::thread::sleep(Duration::from_millis(3));
    }
    std::fs::write(db_dir.with_extension("stop"), b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the reader failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reads: u64 = stdout
        .split_once("reads ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    eprintln!(
        "{reads} reads during {HOURS} commits and {merges} merges in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(merges >= 10, "only {merges} merges");
    assert_eq!(
        indexes,
        (0..HOURS)
            .filter(|h| h % 15 == 14 && !h.is_multiple_of(4))
            .count() as u64
    );
    let names: Vec<String> = std::fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".tdix")).count(),
        1,
        "{names:?}"
    );
    assert!(reads >= 20, "only {reads} reads");
    assert_eq!(committed_hours(&db), Ok(HOURS));
}
