//! The real `tally` binary's `tally sql` (the `datafusion` feature): its
//! answers against `tally query`'s on a generated database, its formats,
//! and its errors (docs/sql.md).

use std::path::Path;

use assert_cmd::Command;

/// A database of `tally generate`'s sample data: 40 accounts over 72
/// hours, seeded, so that drops, recoveries and purges are all there.
fn generated_db(dir: &Path) -> std::path::PathBuf {
    let gen_dir = dir.join("gen");
    let db = dir.join("db");
    Command::cargo_bin("tally")
        .unwrap()
        .args([
            "generate",
            "--accounts",
            "40",
            "--hours",
            "72",
            "--seed",
            "7",
        ])
        .arg("--out")
        .arg(&gen_dir)
        .assert()
        .success();
    tally(&db)
        .arg("import")
        .arg(gen_dir.join("snapshots"))
        .assert()
        .success();
    db
}

fn tally(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tally").unwrap();
    cmd.arg("--db").arg(db).env_remove("TALLY_DB");
    cmd
}

/// Runs `tally ARGS` and returns its standard output, asserting success.
fn stdout(db: &Path, args: &[&str]) -> String {
    let out = tally(db).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// CSV text with its data lines sorted (the header stays first).
fn sorted_csv(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some(rest) = lines.get_mut(1..) {
        rest.sort();
    }
    lines
}

#[test]
fn tally_in_sql_answers_as_tally_query_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = generated_db(dir.path());
    for query in [
        "drop(followers, 5%, 1h)",
        "recovered_within(drop(followers, 5%, 1h), 1d)",
        "not recovered_within(drop(followers, 5%, 1h), 1d)",
        "topk(5, drop(followers, 5%, 1h))",
        "summarize(drop(followers, 5%, 1h))",
    ] {
        let direct = stdout(&db, &["query", "--format", "csv", query]);
        assert!(direct.lines().count() > 1, "{query}: no rows to compare");
        let sql = format!("SELECT * FROM tally('{query}')");
        let through_sql = stdout(&db, &["sql", "--format", "csv", &sql]);
        assert_eq!(sorted_csv(&through_sql), sorted_csv(&direct), "{query}");
    }
}

#[test]
fn points_answers_as_the_selector_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = generated_db(dir.path());
    let range = [
        "--from",
        "2018-11-20T12:00:00Z",
        "--to",
        "2018-11-21T12:00:00Z",
    ];
    let mut args = vec!["query", "--format", "csv"];
    args.extend(range);
    args.push("followers{account=~\"[a-m].*\"}");
    let direct = stdout(&db, &args);
    assert!(direct.lines().count() > 1);
    let mut args = vec!["sql", "--format", "csv"];
    args.extend(range);
    args.push(
        "SELECT account, metric, time, value FROM points \
         WHERE metric = 'followers' AND account ~ '^(?:[a-m].*)$'",
    );
    let through_sql = stdout(&db, &args);
    assert_eq!(sorted_csv(&through_sql), sorted_csv(&direct));
}

#[test]
fn sql_writes_json_and_arrow() {
    let dir = tempfile::tempdir().unwrap();
    let db = generated_db(dir.path());
    let sql = "SELECT count(*) AS falls, max(lost_pct) AS worst \
               FROM tally('drop(followers, 5%, 1h)')";
    let count = stdout(
        &db,
        &["query", "--format", "csv", "count(drop(followers, 5%, 1h))"],
    );
    let count: i64 = count.lines().nth(1).unwrap().parse().unwrap();
    let json = stdout(&db, &["sql", "--format", "json", sql]);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["falls"], count);
    assert!(parsed[0]["worst"].as_f64().unwrap() >= 5.0, "{json}");

    let out = tally(&db)
        .args(["sql", "--format", "arrow", sql])
        .output()
        .unwrap();
    assert!(out.status.success());
    let reader = arrow_ipc::reader::StreamReader::try_new(&out.stdout[..], None).unwrap();
    let schema = reader.schema();
    assert_eq!(schema.field(0).name(), "falls");
    assert_eq!(
        schema.field(1).data_type(),
        &arrow_schema::DataType::Decimal128(20, 2)
    );
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 1);

    // The points' names are string views inside DataFusion; the stream
    // gives them as plain utf8, as `tally query --format arrow` does.
    let out = tally(&db)
        .args([
            "sql",
            "--format",
            "arrow",
            "SELECT account, metric, value FROM points LIMIT 3",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let reader = arrow_ipc::reader::StreamReader::try_new(&out.stdout[..], None).unwrap();
    let schema = reader.schema();
    assert_eq!(schema.field(0).data_type(), &arrow_schema::DataType::Utf8);
    assert_eq!(schema.field(1).data_type(), &arrow_schema::DataType::Utf8);
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 3);
}

#[test]
fn a_bad_tally_query_inside_sql_shows_tallys_caret() {
    let dir = tempfile::tempdir().unwrap();
    let db = generated_db(dir.path());
    let out = tally(&db)
        .args([
            "sql",
            "SELECT * FROM tally('recovered_within(followers, 1d)')",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("expects a drop table"), "{stderr}");
    assert!(
        stderr.contains("recovered_within(followers, 1d)\n"),
        "{stderr}"
    );
    assert!(stderr.contains('^'), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_sql_is_a_usage_error_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let db = generated_db(dir.path());
    let out = tally(&db)
        .args(["sql", "SELECT account FROM points WHERE"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("tally: the SQL does not parse"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n  SELECT account FROM points WHERE\n"),
        "{stderr}"
    );

    let out = tally(&db)
        .args(["sql", "SELECT * FROM no_such_table"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no_such_table"), "{stderr}");

    // tally sql only reads.
    let out = tally(&db)
        .args(["sql", "COPY (SELECT 1) TO 'x.csv'"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("x.csv").exists());
}
