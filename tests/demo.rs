//! `tally demo` end to end: the real binary builds the sample database and
//! prints its analysis; the answers it prints, and those the database gives
//! the library afterwards, are compared with the generator's ground truth
//! for the same data set (`Config::default()`, the story the demo replays).

use std::collections::{BTreeMap, BTreeSet};

use assert_cmd::Command;
use tally::generate::{Config, EventKind, Generator, HOUR_MS, Truth, TruthEvent};
use tally::{Db, Value};

/// The truth of the demo's data set, without writing a database.
fn story_truth() -> Truth {
    Generator::new(Config::default())
        .unwrap()
        .run(|_| Ok(()))
        .unwrap()
}

/// The answers of the demo's output: for each `$ tally query …` line, the
/// command, and the CSV block after it (header first).
fn answers(text: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(command) = line.strip_prefix("$ tally query ") else {
            continue;
        };
        let mut block = Vec::new();
        for row in lines.by_ref() {
            if row.is_empty() {
                break;
            }
            block.push(row.split(',').map(str::to_string).collect());
        }
        out.insert(command.to_string(), block);
    }
    out
}

fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

fn run_demo(db: &std::path::Path) -> String {
    let output = Command::cargo_bin("tally")
        .unwrap()
        .env_remove("TALLY_DB")
        .args(["demo", "--format", "csv", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_demo_tells_the_glitch_from_the_purge() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.db");
    let text = run_demo(&path);
    let answers = answers(&text);
    let truth = story_truth();

    let glitch: Vec<&TruthEvent> = truth.of(EventKind::Glitch).collect();
    let purge: Vec<&TruthEvent> = truth
        .of(EventKind::Purge)
        .filter(|e| e.reaches_percent(5))
        .collect();
    assert!(glitch.iter().all(|e| e.reaches_percent(5)));
    assert!(
        glitch.len() > 500 && purge.len() > 100,
        "{} {}",
        glitch.len(),
        purge.len()
    );
    // Some purge losses are under 5%: the query rightly does not see them.
    assert!(truth.of(EventKind::Purge).count() > purge.len());

    let summary = |events: &[&TruthEvent]| {
        let accounts: BTreeSet<&str> = events.iter().map(|e| e.account.as_str()).collect();
        let lost: u64 = events.iter().map(|e| e.lost).sum();
        vec![
            events.len().to_string(),
            accounts.len().to_string(),
            lost.to_string(),
        ]
    };
    let header = |cols: &str| cols.split(',').map(str::to_string).collect::<Vec<_>>();

    // The recovered falls are the glitch, the unrecovered the purge.
    assert_eq!(
        answers["'summarize(recovered_within(drop(followers, 5%, 1h), 1d))'"],
        vec![header("episodes,accounts,lost"), summary(&glitch)]
    );
    assert_eq!(
        answers["'summarize(not recovered_within(drop(followers, 5%, 1h), 1d))'"],
        vec![header("episodes,accounts,lost"), summary(&purge)]
    );
    let all: Vec<&TruthEvent> = truth.reaching(5).collect();
    assert_eq!(
        answers["'summarize(drop(followers, 5%, 1h))'"],
        vec![header("episodes,accounts,lost"), summary(&all)]
    );

    // Per day: the purge's day and the glitch's, nothing else.
    let per_day = &answers["'summarize(drop(followers, 5%, 1h), 1d)'"];
    assert_eq!(per_day.len(), 3);
    assert_eq!(per_day[1][0], "2018-11-26T00:00:00Z");
    assert_eq!(per_day[1][1], purge.len().to_string());
    assert_eq!(per_day[2][0], "2019-02-13T00:00:00Z");
    assert_eq!(per_day[2][1], glitch.len().to_string());

    // Hour by hour on 13 February, grouped by the hour each fall started.
    let mut by_hour: BTreeMap<i64, (usize, u64)> = BTreeMap::new();
    for e in &glitch {
        let slot = by_hour.entry(e.start_ms()).or_default();
        slot.0 += 1;
        slot.1 += e.lost;
    }
    let expected: Vec<Vec<String>> =
        std::iter::once(header("bucket,episodes,accounts,lost"))
            .chain(by_hour.iter().map(|(&t, &(n, lost))| {
                vec![time(t), n.to_string(), n.to_string(), lost.to_string()]
            }))
            .collect();
    assert_eq!(
        answers["--from 2019-02-13T00:00:00Z --to 2019-02-14T00:00:00Z 'summarize(drop(followers, 5%, 1h), 1h)'"],
        expected
    );
    assert!(by_hour.len() >= 3);

    // The ten largest falls of all, largest first.
    let mut largest = all.clone();
    largest.sort_by(|a, b| {
        b.lost
            .cmp(&a.lost)
            .then_with(|| a.account.cmp(&b.account))
            .then(a.time_ms.cmp(&b.time_ms))
    });
    let top = &answers["'topk(10, drop(followers, 5%, 1h))'"];
    assert_eq!(top.len(), 11);
    for (row, e) in top[1..].iter().zip(&largest) {
        assert_eq!(
            row[..7],
            [
                e.account.clone(),
                "followers".to_string(),
                time(e.start_ms()),
                time(e.time_ms),
                e.before.to_string(),
                e.after().to_string(),
                e.lost.to_string()
            ]
        );
    }

    // The five largest recovered falls say when they came back.
    let top_glitch = &answers["'topk(5, recovered_within(drop(followers, 5%, 1h), 1d))'"];
    assert_eq!(top_glitch.len(), 6);
    let recovered_at = top_glitch[0]
        .iter()
        .position(|c| c == "recovered_at")
        .unwrap();
    for row in &top_glitch[1..] {
        let e = glitch.iter().find(|e| e.account == row[0]).unwrap();
        assert_eq!(row[recovered_at], time(e.recovered_at_ms.unwrap()));
    }

    // One glitch account, hour by hour: down, then back.
    let (command, series) = answers
        .iter()
        .find(|(k, _)| k.contains("followers{account="))
        .unwrap();
    let e = glitch
        .iter()
        .find(|e| command.contains(&format!("\"{}\"", e.account)))
        .unwrap();
    let value_at = |t: i64| {
        series
            .iter()
            .find(|row| row[2] == time(t))
            .map(|row| row[3].parse::<u64>().unwrap())
    };
    assert_eq!(value_at(e.start_ms()), Some(e.before));
    assert_eq!(value_at(e.time_ms), Some(e.after()));
    assert!(value_at(e.recovered_at_ms.unwrap()).unwrap() >= e.before);

    assert!(text.contains("Checked against the ground truth"), "{text}");
    assert!(!text.contains("MISMATCH"));

    // The kept database answers the library exactly as the truth says.
    let db = Db::open(&path).unwrap();
    let recovered: BTreeSet<(String, i64, i64, i64)> = db
        .query("recovered_within(drop(followers, 5%, 1h), 1d)")
        .unwrap()
        .rows()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[3].as_i64().unwrap(),
                r[6].as_i64().unwrap(),
                r[8].as_i64().unwrap(),
            )
        })
        .collect();
    let want: BTreeSet<(String, i64, i64, i64)> = glitch
        .iter()
        .map(|e| {
            (
                e.account.clone(),
                e.time_ms,
                e.lost as i64,
                e.recovered_at_ms.unwrap(),
            )
        })
        .collect();
    assert_eq!(recovered, want);
    let table = db
        .query("not recovered_within(drop(followers, 5%, 1h), 1d)")
        .unwrap();
    let unrecovered: BTreeSet<(String, i64, i64)> = table
        .rows()
        .iter()
        .map(|r| {
            assert_eq!(
                table.get(r, "metric"),
                Some(&Value::Text("followers".into()))
            );
            (
                r[0].as_str().unwrap().to_string(),
                r[3].as_i64().unwrap(),
                r[6].as_i64().unwrap(),
            )
        })
        .collect();
    let want: BTreeSet<(String, i64, i64)> = purge
        .iter()
        .map(|e| (e.account.clone(), e.time_ms, e.lost as i64))
        .collect();
    assert_eq!(unrecovered, want);
    // And the purges stay down for a week, not just a day.
    let week = db
        .query("count(recovered_within(drop(followers, 5%, 1h), 1w, 50%))")
        .unwrap();
    assert_eq!(week.rows()[0][0], Value::Int(glitch.len() as i64));
    // A compacted database: one segment.
    assert_eq!(db.stats().unwrap().segments, 1);
    assert_eq!(
        db.stats().unwrap().time_range,
        Some((
            tally::generate::DEFAULT_START_MS,
            tally::generate::DEFAULT_START_MS
                + (i64::from(tally::generate::DEFAULT_HOURS) - 1) * HOUR_MS
        ))
    );
}

#[test]
fn the_demo_refuses_an_existing_database_and_cleans_up_its_temporary_one() {
    let dir = tempfile::tempdir().unwrap();
    // An existing, non-empty --db is never written to.
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("precious"), b"x").unwrap();
    let output = Command::cargo_bin("tally")
        .unwrap()
        .env_remove("TALLY_DB")
        .args(["demo", "--db"])
        .arg(&taken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);

    // Without --db, the database goes into the temporary directory and is
    // removed; nothing is written where the command runs.
    let tmp = dir.path().join("tmp");
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::create_dir(&cwd).unwrap();
    let output = Command::cargo_bin("tally")
        .unwrap()
        .env_remove("TALLY_DB")
        .env("TMPDIR", &tmp)
        .current_dir(&cwd)
        .args(["demo", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("\"recovered_at\": \"2019-02-13T"));
    assert!(text.contains("tally demo --db PATH"));
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);
}
