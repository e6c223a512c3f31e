//! `tally import` through the real binary (docs/import.md): every format
//! and option, every kind of bad input (its `file:line: reason`, exit 1,
//! and a database left exactly as it was), atomicity under SIGKILL, and
//! read-back equality on generated data.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use flate2::Compression;
use flate2::write::GzEncoder;
use predicates::prelude::PredicateBooleanExt;
use tally::{Db, TimeRange};

fn tally(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tally").unwrap();
    cmd.arg("--db").arg(db).env_remove("TALLY_DB");
    cmd
}

/// Every point of the database as (account, metric, time) → count.
fn contents(db: &Path) -> BTreeMap<(String, String, i64), u64> {
    let db = Db::open(db).unwrap();
    let mut out = BTreeMap::new();
    for metric in db.metrics() {
        for s in db.series(&metric, |_| true).unwrap() {
            for p in db.points(&s.account, &metric, TimeRange::ALL).unwrap() {
                out.insert((s.account.clone(), metric.clone(), p.time), p.count);
            }
        }
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

const T10: i64 = 1_550_052_000_000; // 2019-02-13T10:00:00Z
const HOUR: i64 = 3_600_000;

#[test]
fn csv_jsonl_gzip_folders_and_stdin_import_the_same_points() {
    // [IM1] [IM2] [IM3] [IM5] [IM6] [IM7] [IM11]
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps");
    std::fs::create_dir(&snaps).unwrap();
    std::fs::write(
        snaps.join("2019-02-13T10.csv"),
        "account,time,followers,following\n\"ad, \"\"ela\"\"\",2019-02-13T10:00:00Z,10234,512\nüni,1550052000,7,\n",
    )
    .unwrap();
    std::fs::write(
        snaps.join("2019-02-13T11.jsonl.gz"),
        gzip(b"{\"time\": \"2019-02-13T16:30:00+05:30\", \"followers\": 224, \"account\": \"ad, \\\"ela\\\"\"}\n\n{\"account\":\"\xc3\xbcni\",\"time\":1550055600,\"followers\":8,\"following\":null}\n"),
    )
    .unwrap();
    std::fs::write(snaps.join("notes.txt"), "not a snapshot").unwrap();
    let db = dir.path().join("db");
    tally(&db)
        .arg("import")
        .arg(&snaps)
        .assert()
        .success()
        .stdout(predicates::str::starts_with(
            "imported 2 files, 4 rows, 5 points, 3 new series",
        ));
    // The same through stdin, with --format and --at.
    let db2 = dir.path().join("db2");
    tally(&db2)
        .args([
            "import",
            "--format",
            "csv",
            "--at",
            "2019-02-13T12:00:00Z",
            "-",
        ])
        .write_stdin("account,followers\nüni,9\n")
        .assert()
        .success();
    let got = contents(&db);
    let want: BTreeMap<_, _> = [
        (
            ("ad, \"ela\"".to_string(), "followers".to_string(), T10),
            10234,
        ),
        (
            (
                "ad, \"ela\"".to_string(),
                "followers".to_string(),
                T10 + HOUR,
            ),
            224,
        ),
        (
            ("ad, \"ela\"".to_string(), "following".to_string(), T10),
            512,
        ),
        (("üni".to_string(), "followers".to_string(), T10), 7),
        (("üni".to_string(), "followers".to_string(), T10 + HOUR), 8),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        contents(&db2).into_iter().collect::<Vec<_>>(),
        vec![(
            ("üni".to_string(), "followers".to_string(), T10 + 2 * HOUR),
            9
        )]
    );
}

#[test]
fn the_later_row_wins_within_and_across_imports() {
    // [IM11]
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    std::fs::write(
        &a,
        "time,account,followers\n1550052000,x,1\n1550052000,x,2\n",
    )
    .unwrap();
    std::fs::write(&b, "time,account,followers\n1550052000,x,3\n").unwrap();
    tally(&db).arg("import").arg(&a).assert().success();
    assert_eq!(contents(&db).values().copied().collect::<Vec<_>>(), vec![2]);
    tally(&db).arg("import").arg(&b).arg(&a).assert().success();
    assert_eq!(contents(&db).values().copied().collect::<Vec<_>>(), vec![2]);
    tally(&db).arg("import").arg(&a).arg(&b).assert().success();
    assert_eq!(contents(&db).values().copied().collect::<Vec<_>>(), vec![3]);
}

/// (file name, content, the expected `file:line: reason` after the path).
fn bad_inputs() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let h = "time,account,followers\n";
    vec![
        (
            "count.csv",
            format!("{h}1550052000,a,12a\n").into_bytes(),
            ":2: count \"12a\" in column followers is not a whole number",
        ),
        (
            "negative.csv",
            format!("{h}1550052000,a,-5\n").into_bytes(),
            ":2: count \"-5\" in column followers is negative",
        ),
        (
            "huge.csv",
            format!("{h}1550052000,a,9223372036854775808\n").into_bytes(),
            ":2: count \"9223372036854775808\" in column followers is larger than the largest count, 9223372036854775807",
        ),
        (
            "time.csv",
            format!("{h}yesterday,a,1\n").into_bytes(),
            ":2: time \"yesterday\" is neither RFC 3339 (like 2019-02-13T10:00:00Z) nor Unix seconds",
        ),
        (
            "notime.csv",
            format!("{h},a,1\n").into_bytes(),
            ":2: the time is empty",
        ),
        (
            "noaccount.csv",
            format!("{h}1550052000,,1\n").into_bytes(),
            ":2: the account is empty",
        ),
        (
            "fields.csv",
            format!("{h}1550052000,a,1,2\n").into_bytes(),
            ":2: the row has 4 fields, but the header has 3",
        ),
        (
            "dupheader.csv",
            b"time,account,followers,followers\n".to_vec(),
            ":1: column \"followers\" appears twice in the header",
        ),
        (
            "noaccountcol.csv",
            b"time,followers\n1550052000,1\n".to_vec(),
            ":1: the header has no account column",
        ),
        (
            "utf8.csv",
            [h.as_bytes(), b"1550052000,a\xff,1\n"].concat(),
            ":2: the account is not valid UTF-8",
        ),
        (
            "line3.csv",
            format!("{h}1550052000,a,1\n1550052000,b,x\n").into_bytes(),
            ":3: count \"x\" in column followers is not a whole number",
        ),
        (
            "obj.jsonl",
            b"{\"time\":1550052000,\"account\":\"a\",\"followers\":1.5}\n".to_vec(),
            ":1: count 1.5 for key \"followers\" is not a whole number",
        ),
        (
            "notobj.jsonl",
            b"{\"time\":1550052000,\"account\":\"a\",\"followers\":1}\n[1]\n".to_vec(),
            ":2: the line is not a JSON object",
        ),
        (
            "broken.csv.gz",
            gzip(format!("{h}1550052000,a,1\n").as_bytes())[..20].to_vec(),
            "",
        ),
        (
            "empty.csv",
            Vec::new(),
            ":0: the file has no header row (it is empty or blank)",
        ),
    ]
}

#[test]
fn every_kind_of_bad_input_names_its_line_exits_1_and_changes_nothing() {
    // [IM12]
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "time,account,followers\n1550052000,kept,1\n").unwrap();
    tally(&db).arg("import").arg(&good).assert().success();
    let before = contents(&db);
    let files_before: Vec<_> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();

    for (name, content, expected) in bad_inputs() {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        // A good file first, so the failure must undo real work.
        let out = tally(&db)
            .arg("import")
            .arg(&good)
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        let prefix = format!("tally: {}", path.display());
        assert!(stderr.starts_with(&prefix), "{name}: {stderr}");
        if expected.is_empty() {
            assert!(stderr.contains("gzip"), "{name}: {stderr}");
        } else {
            assert_eq!(stderr.trim_end(), format!("{prefix}{expected}"), "{name}");
        }
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert_eq!(contents(&db), before, "{name} changed the database");
    }
    // A missing file fails before anything is read.
    tally(&db)
        .arg("import")
        .arg(dir.path().join("missing.csv"))
        .assert()
        .code(1)
        .stderr(format!(
            "tally: {}:0: no such file or folder\n",
            dir.path().join("missing.csv").display()
        ));
    let files_after: Vec<_> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files_before.len(),
        files_after.len(),
        "leftover files: {files_after:?}"
    );
    assert!(Db::verify(&db).unwrap().is_clean());
}

#[test]
fn skip_bad_skips_counts_and_reports_bad_rows() {
    // [IM13]
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let f = dir.path().join("mixed.csv");
    let mut text = String::from("time,account,followers\n");
    for i in 0..30 {
        if i % 2 == 0 {
            text.push_str(&format!("1550052000,acct{i},{i}\n"));
        } else {
            text.push_str(&format!("1550052000,acct{i},bad{i}\n"));
        }
    }
    std::fs::write(&f, text).unwrap();
    let out = tally(&db)
        .args(["import", "--skip-bad"])
        .arg(&f)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with("tally: skipped 15 bad rows; the first:\n"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 11, "{stderr}");
    assert!(stderr.contains(&format!(
        "  {}:3: count \"bad1\" in column followers is not a whole number",
        f.display()
    )));
    assert!(String::from_utf8_lossy(&out.stdout).contains("15 rows, 15 points"));
    assert_eq!(contents(&db).len(), 15);
}

#[test]
fn a_killed_import_of_snapshots_leaves_the_database_as_it_was() {
    // Snapshots in time order are written as head frames as they come
    // ([HD3]): the kill finds a new head under its temporary name.
    killed_import(true, |name| name.ends_with(".thead.tmp"));
}

#[test]
fn a_killed_import_of_account_histories_leaves_the_database_as_it_was() {
    // One account's hours after the other: segments spill at the budget.
    killed_import(false, |name| name.ends_with(".tseg"));
}

/// Atomicity: SIGKILL while rows stream in through stdin, with a small
/// memory budget, once part of the batch is on disk (a file whose name
/// `spilled` accepts); rows hour after hour if `by_hour`, else account
/// after account.
fn killed_import(by_hour: bool, spilled: fn(&str) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let seed = dir.path().join("seed.csv");
    std::fs::write(&seed, "time,account,followers\n1550052000,kept,1\n").unwrap();
    tally(&db).arg("import").arg(&seed).assert().success();
    let before = contents(&db);

    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_tally"))
        .arg("--db")
        .arg(&db)
        .args(["import", "--format", "csv", "--memory-budget", "1MiB", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "time,account,followers").unwrap();
    for outer in 0..200 {
        let mut chunk = String::new();
        for inner in 0..2000 {
            let (h, a) = if by_hour {
                (outer, inner)
            } else {
                (inner % 200, outer * 10 + inner / 200)
            };
            chunk.push_str(&format!("{},new{a},{}\n", 1_550_052_000 + h * 3600, a + h));
        }
        stdin.write_all(chunk.as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let written: Vec<String> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| spilled(name))
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert!(
        !written.is_empty(),
        "the import should have written part of the batch before the kill"
    );
    assert_eq!(contents(&db), before);
    assert!(Db::verify(&db).unwrap().is_clean());
    // The next writer removes what the killed one left.
    tally(&db).arg("import").arg(&seed).assert().success();
    // Segments and heads ([HD3]: the seed's one row is a head frame).
    let segments = std::fs::read_dir(&db)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".tseg") || name.ends_with(".thead") || name.ends_with(".tmp")
        })
        .count();
    assert_eq!(
        segments as u64,
        Db::open(&db).unwrap().stats().unwrap().segments
    );
}

#[test]
fn generated_snapshots_read_back_exactly() {
    // Several thousand accounts through `tally generate` and `tally import`:
    // every row of every file is in the database, and nothing else.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    Command::cargo_bin("tally")
        .unwrap()
        .args(["generate", "--accounts", "3000", "--hours", "30", "--out"])
        .arg(&out)
        .assert()
        .success();
    let db = dir.path().join("db");
    tally(&db)
        .arg("import")
        .arg(out.join("snapshots"))
        .assert()
        .success()
        .stderr("");
    // The same files under a budget of a few thousand points make many
    // segments: with --no-merge, the same points and a hint to compact.
    let spilled = dir.path().join("spilled");
    tally(&spilled)
        .args(["import", "--no-merge", "--memory-budget", "256KiB"])
        .arg(out.join("snapshots"))
        .assert()
        .success()
        .stderr(predicates::str::contains("`tally compact` merges them"));
    let spilled_segments = Db::open(&spilled).unwrap().stats().unwrap().segments;
    assert!(spilled_segments >= 16);
    // Without it, the import merges them ([MG2]: the segments of each
    // closed 6-hour window and day become one).
    let merged = dir.path().join("merged");
    tally(&merged)
        .args(["import", "--memory-budget", "256KiB"])
        .arg(out.join("snapshots"))
        .assert()
        .success()
        .stderr(
            predicates::str::contains("tally: merged")
                .and(predicates::str::contains("`tally compact`").not()),
        );
    let merged_segments = Db::open(&merged).unwrap().stats().unwrap().segments;
    assert!(
        merged_segments * 2 < spilled_segments,
        "{merged_segments} segments after merging, {spilled_segments} without"
    );

    let mut want = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(out.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header, ["time", "account", "followers", "following"]);
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            let t = cells[0]
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_millisecond();
            for (metric, cell) in [("followers", cells[2]), ("following", cells[3])] {
                if !cell.is_empty() {
                    want.insert(
                        (cells[1].to_string(), metric.to_string(), t),
                        cell.parse::<u64>().unwrap(),
                    );
                }
            }
        }
    }
    assert!(want.len() > 150_000, "{}", want.len());
    assert_eq!(contents(&db), want);
    assert_eq!(contents(&spilled), want);
    assert_eq!(contents(&merged), want);
    assert!(Db::verify(&merged).unwrap().is_clean());
}

#[test]
fn shard_imports_split_one_file_and_refuse_another_shards_database() {
    // docs/scale-out.md, [SO3] [SO4]: each shard imports the same file and
    // keeps its own accounts; together they hold exactly the file's points.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.csv");
    let mut text = String::from("account,time,followers\n");
    for i in 0..40 {
        text.push_str(&format!("acct{i},2019-02-13T10:00:00Z,{}\n", 100 + i));
    }
    std::fs::write(&file, &text).unwrap();
    let whole = dir.path().join("whole");
    tally(&whole).arg("import").arg(&file).assert().success();
    let mut union = BTreeMap::new();
    for s in 0..4 {
        let shard = dir.path().join(format!("shard-{s}"));
        tally(&shard)
            .args(["import", "--shard", &format!("{s}/4")])
            .arg(&file)
            .assert()
            .success()
            .stderr(predicates::str::contains(format!(
                "shard {s} of 4: passed over"
            )));
        let marker = std::fs::read_to_string(shard.join("SHARD")).unwrap();
        assert_eq!(marker, format!("shard {s} of 4, fnv1a64\n"));
        let points = contents(&shard);
        assert!(
            !points.is_empty() && points.len() < 40,
            "shard {s}: {points:?}"
        );
        union.extend(points);
    }
    assert_eq!(union, contents(&whole));
    // A database marked as one shard refuses the import of another.
    tally(&dir.path().join("shard-0"))
        .args(["import", "--shard", "1/4"])
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "is shard 0 of 4, not shard 1 of 4",
        ));
    tally(&whole)
        .args(["import", "--shard", "1/3"])
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicates::str::contains("power of two"));
}
