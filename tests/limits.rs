//! Hostile input through the real binary: a line without an end, a gzip
//! bomb and a query of a megabyte each fail with a short, clear error and
//! leave the database as it was (docs/import.md, rule IM16;
//! docs/query-language.md, rules Q11a and Q16). The limits themselves are
//! tested closer to the code (src/import/tests.rs, src/query/parse.rs,
//! src/query/check.rs); docs/reliability.md ("Bounded resources") gives
//! the memory measured on each input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use assert_cmd::Command;
use tally::{Db, TimeRange};

fn tally(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tally").unwrap();
    cmd.arg("--db").arg(db).env_remove("TALLY_DB");
    cmd
}

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

/// A database holding one imported snapshot.
fn database(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("db");
    let snapshot = dir.join("first.csv");
    std::fs::write(
        &snapshot,
        "time,account,followers\n1550052000,ann,10\n1550052000,bob,20\n",
    )
    .unwrap();
    tally(&db).arg("import").arg(&snapshot).assert().success();
    db
}

const TOO_LONG: &str =
    "the line is longer than 1048576 bytes, the longest allowed (is a line end missing?)";

#[test]
fn a_line_without_an_end_fails_the_import_and_changes_nothing() {
    // [IM16] [IM12]
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let before = contents(&db);
    for (format, mut text) in [
        (
            "csv",
            b"time,account,followers\n1550055600,carl,1\n".to_vec(),
        ),
        (
            "jsonl",
            b"{\"time\": 1550055600, \"account\": \"carl\", \"followers\": 1}\n".to_vec(),
        ),
    ] {
        text.extend(std::iter::repeat_n(b'7', 3 << 20));
        let output = tally(&db)
            .args(["import", "--skip-bad", "--format", format, "-"])
            .write_stdin(text)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = if format == "csv" { 3 } else { 2 };
        assert!(
            stderr.contains(&format!("-:{line}: {TOO_LONG}")),
            "{format}: {stderr}"
        );
        assert!(
            stderr.len() < 1000,
            "{format}: {} bytes of stderr",
            stderr.len()
        );
        assert_eq!(contents(&db), before, "{format}");
    }
    tally(&db).arg("verify").assert().success();
}

#[test]
fn a_gzip_bomb_of_one_line_fails_at_the_line_limit() {
    // [IM16] [IM3]: 1 GiB of text without a line end in about 1 MB of gzip.
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let before = contents(&db);
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(&vec![b'a'; 1 << 20]).unwrap();
    let member = member.finish().unwrap();
    let mut header = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    header
        .write_all(b"time,account,followers\n1550055600,")
        .unwrap();
    let mut bomb = header.finish().unwrap();
    for _ in 0..1024 {
        bomb.extend_from_slice(&member);
    }
    let path = dir.path().join("bomb.csv.gz");
    std::fs::write(&path, &bomb).unwrap();
    tally(&db)
        .arg("import")
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "bomb.csv.gz:2: {TOO_LONG}"
        )));
    assert_eq!(contents(&db), before);
}

#[test]
fn a_query_far_over_the_length_limit_is_a_short_error() {
    // [Q11a] [Q16]: a single argument may be at most 128 KiB on Linux, so
    // 100 KB stands for the megabyte the library test parses.
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let query = format!("followers{{account=~\"{}\"}}", "(".repeat(100_000));
    let output = tally(&db)
        .args(["query", &query])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the query is 100022 bytes long; the longest allowed is 65536"),
        "{stderr}"
    );
    assert!(stderr.len() < 1000, "{} bytes of stderr", stderr.len());
}
