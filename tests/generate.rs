//! The sample-data generator: `tally generate` writes the same bytes for
//! the same seed, in the snapshot format, with a truth that matches; and on
//! a generated database, organic noise never makes `drop(followers, 5%, 1h)`
//! fire: its answer is exactly the purge and glitch falls of 5% or more.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tally::Db;
use tally::generate::{
    Config, DAY_MS, EventKind, Generator, HOUR_MS, STORY_GLITCH_MS, Truth, fill_db,
};

fn generate(out: &Path, extra: &[&str]) -> String {
    let output = Command::cargo_bin("tally")
        .unwrap()
        .arg("generate")
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Every file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// The config `tally generate` uses for these flags.
fn config_for(accounts: u32, hours: u32, start: i64, seed: u64) -> Config {
    let mut config = Config {
        accounts,
        hours,
        start_ms: start,
        seed,
        ..Config::default()
    };
    config.fit_events();
    config
}

fn truth_of(config: &Config) -> Truth {
    Generator::new(config.clone())
        .unwrap()
        .run(|_| Ok(()))
        .unwrap()
}

const START: &str = "2019-02-10T00:00:00Z";
const START_MS: i64 = STORY_GLITCH_MS - 3 * DAY_MS - 10 * HOUR_MS;

#[test]
fn same_seed_same_bytes_in_hourly_csv_files_with_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--accounts",
        "300",
        "--hours",
        "120",
        "--start",
        START,
        "--seed",
        "7",
    ];
    let summary = generate(&dir.path().join("a"), &flags);
    generate(&dir.path().join("b"), &flags);
    let a = files(&dir.path().join("a"));
    let b = files(&dir.path().join("b"));
    assert_eq!(a, b);
    assert!(summary.starts_with("wrote 120 files, "), "{summary}");
    assert!(summary.contains(" points, "), "{summary}");

    // One file per hour, named so that name order is time order, and the
    // truth beside them.
    assert_eq!(a.len(), 121);
    assert_eq!(a[0].0, Path::new("snapshots/snapshot-2019-02-10T00.csv"));
    assert_eq!(a[119].0, Path::new("snapshots/snapshot-2019-02-14T23.csv"));
    assert_eq!(a[120].0, Path::new("truth.csv"));
    let first = String::from_utf8(a[0].1.clone()).unwrap();
    let mut lines = first.lines();
    assert_eq!(lines.next(), Some("time,account,followers,following"));
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(row.len(), 4);
    assert_eq!(row[0], "2019-02-10T00:00:00Z");
    assert!(row[2].parse::<u64>().unwrap() >= 20);

    // Every row, every hour, against the library's generator.
    let config = config_for(300, 120, START_MS, 7);
    let generator = Generator::new(config.clone()).unwrap();
    let names = generator.account_names().to_vec();
    let mut expected_files = Vec::new();
    let truth = generator
        .run(|rows| {
            let mut text = String::from("time,account,followers,following\n");
            for r in rows {
                let following = r.following.map(|f| f.to_string()).unwrap_or_default();
                text.push_str(&format!(
                    "{},{},{},{}\n",
                    jiff::Timestamp::from_millisecond(r.time_ms).unwrap(),
                    names[r.account as usize],
                    r.followers,
                    following
                ));
            }
            expected_files.push(text.into_bytes());
            Ok(())
        })
        .unwrap();
    for (got, want) in a.iter().zip(&expected_files) {
        assert_eq!(got.1, *want, "{}", got.0.display());
    }
    let mut truth_csv = Vec::new();
    truth.write_csv(&mut truth_csv).unwrap();
    assert_eq!(a[120].1, truth_csv);
    // The story's glitch is in this range; the purge was moved into it.
    assert!(truth.of(EventKind::Glitch).count() >= 60);
    assert_eq!(truth.of(EventKind::Purge).count(), 30);

    // Another seed, other bytes.
    generate(
        &dir.path().join("c"),
        &[
            "--accounts",
            "300",
            "--hours",
            "120",
            "--start",
            START,
            "--seed",
            "8",
        ],
    );
    assert_ne!(files(&dir.path().join("c")), a);
}

#[test]
fn single_gzipped_json_lines_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("j");
    let flags = [
        "--accounts",
        "50",
        "--hours",
        "30",
        "--start",
        START,
        "--seed",
        "3",
        "--format",
        "jsonl",
        "--gzip",
        "--single-file",
    ];
    let summary = generate(&out, &flags);
    assert!(summary.starts_with("wrote 1 files, "), "{summary}");
    let all = files(&out);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, Path::new("snapshots/snapshots.jsonl.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&all[0].1[..])
        .read_to_string(&mut text)
        .unwrap();
    let config = config_for(50, 30, START_MS, 3);
    let generator = Generator::new(config).unwrap();
    let names = generator.account_names().to_vec();
    let mut rows = Vec::new();
    generator
        .run(|hour| {
            rows.extend_from_slice(hour);
            Ok(())
        })
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), rows.len());
    let mut missing_following = 0;
    for (line, row) in lines.iter().zip(&rows) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["time"],
            jiff::Timestamp::from_millisecond(row.time_ms)
                .unwrap()
                .to_string()
        );
        assert_eq!(v["account"], names[row.account as usize]);
        assert_eq!(v["followers"], row.followers);
        match row.following {
            Some(f) => assert_eq!(v["following"], f),
            None => {
                assert!(v.get("following").is_none());
                missing_following += 1;
            }
        }
    }
    // The rows are in time order in the single file.
    assert!(rows.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    let _ = missing_following;
}

#[test]
fn bad_flags_and_a_used_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.csv"), b"x").unwrap();
    let cases: [(&Path, &[&str], &str); 3] = [
        (dir.path(), &[], "is not empty"),
        (
            &dir.path().join("n"),
            &["--start", "2019-02-13T10:30:00Z"],
            "not a whole hour",
        ),
        (&dir.path().join("m"), &["--accounts", "0"], "at least 1"),
    ];
    for (out, extra, message) in cases {
        let output = Command::cargo_bin("tally")
            .unwrap()
            .arg("generate")
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{extra:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// On a generated database, the falls of 5% or more within an hour are
/// exactly the truth's, to the hour and the follower; the recovered ones
/// the glitch, the others the purge.
fn check_db(config: &Config) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("g.db")).unwrap();
    let filled = fill_db(&db, config).unwrap();
    let truth = filled.truth;
    assert_eq!(truth, truth_of(config));

    type Fall = (String, i64, i64, i64, i64);
    let table = db.query("drop(followers, 5%, 1h)").unwrap();
    let found: BTreeSet<Fall> = table
        .rows()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[2].as_i64().unwrap(),
                r[3].as_i64().unwrap(),
                r[4].as_i64().unwrap(),
                r[6].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(found.len(), table.len());
    let fall = |e: &tally::generate::TruthEvent| -> Fall {
        (
            e.account.clone(),
            e.start_ms(),
            e.time_ms,
            e.before as i64,
            e.lost as i64,
        )
    };
    let want: BTreeSet<Fall> = truth.reaching(5).map(fall).collect();
    assert_eq!(found, want, "seed {}", config.seed);

    let names = |q: &str| -> BTreeSet<(String, i64)> {
        db.query(q)
            .unwrap()
            .rows()
            .iter()
            .map(|r| (r[0].as_str().unwrap().to_string(), r[3].as_i64().unwrap()))
            .collect()
    };
    let of = |kind: EventKind| -> BTreeSet<(String, i64)> {
        truth
            .reaching(5)
            .filter(|e| e.kind == kind)
            .map(|e| (e.account.clone(), e.time_ms))
            .collect()
    };
    assert_eq!(
        names("recovered_within(drop(followers, 5%, 1h), 1d)"),
        of(EventKind::Glitch)
    );
    assert_eq!(
        names("not recovered_within(drop(followers, 5%, 1h), 1d)"),
        of(EventKind::Purge)
    );
}

#[test]
fn noise_never_falls_5_percent_in_an_hour_on_a_generated_database() {
    for seed in [1, 2, 3] {
        let mut config = Config {
            accounts: 1_500,
            hours: 24 * 14,
            start_ms: START_MS,
            seed,
            ..Config::default()
        };
        config.fit_events();
        check_db(&config);
    }
    // More accounts with missing hours and missing following counts.
    let mut config = Config {
        accounts: 800,
        hours: 24 * 30,
        seed: 99,
        gap_permille: 300,
        following_missing_permille: 50,
        ..Config::default()
    };
    config.fit_events();
    check_db(&config);
}
