//! The real `tally` binary: output formats, exit codes and error messages of
//! `query`, `stats`, `verify` and `compact`.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use tally::Db;

const T0: i64 = 1_550_052_000_000; // 2019-02-13T10:00:00Z
const HOUR: i64 = 3_600_000;

fn sample_db(dir: &Path) {
    let db = Db::open(dir).unwrap();
    let mut w = db.writer().unwrap();
    let series: [(&str, [u64; 4]); 3] = [
        ("adela_mae", [10_234, 224, 10_230, 10_240]),
        ("evada, \"the\" first", [60, 60, 0, 0]),
        ("ünïcode", [5, 5, 5, 5]),
    ];
    for (account, values) in series {
        for (h, v) in values.iter().enumerate() {
            w.append(account, "followers", T0 + h as i64 * HOUR, *v)
                .unwrap();
        }
    }
    w.commit().unwrap();
}

fn tally(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tally").unwrap();
    cmd.arg("--db").arg(db).env_remove("TALLY_DB");
    cmd
}

#[test]
fn csv_is_the_default_when_stdout_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args(["query", "drop(followers, 5%, 1h)"])
        .assert()
        .success()
        .stdout(
            "account,metric,start,end,before,after,lost,lost_pct\n\
             adela_mae,followers,2019-02-13T10:00:00Z,2019-02-13T11:00:00Z,10234,224,10010,97.81\n\
             \"evada, \"\"the\"\" first\",followers,2019-02-13T11:00:00Z,2019-02-13T12:00:00Z,60,0,60,100.00\n",
        );
}

#[test]
fn an_empty_csv_result_is_the_header_alone() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args(["query", "drop(likes, 5%, 1h)"])
        .assert()
        .success()
        .stdout("account,metric,start,end,before,after,lost,lost_pct\n");
}

#[test]
fn json_is_an_array_of_objects_with_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    let out = tally(dir.path())
        .args([
            "query",
            "--format",
            "json",
            "recovered_within(drop(followers, 5%, 1h), 1d)",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["account"], "adela_mae");
    assert_eq!(rows[0]["recovered_at"], "2019-02-13T13:00:00Z");
    assert_eq!(rows[0]["recovery_s"], 7200);
    assert_eq!(rows[0]["lost_pct"].as_f64(), Some(97.81));
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 10);
}

#[test]
fn table_format_draws_a_table_with_a_row_count() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args(["query", "--format", "table", "latest(followers)"])
        .assert()
        .success()
        .stdout(predicate::str::contains("│ ünïcode").and(predicate::str::contains("(3 rows)")));
}

#[test]
fn from_and_to_restrict_the_points() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args([
            "query",
            "--from",
            "2019-02-13T11:00:00Z",
            "--to",
            "1550062800",
        ])
        .arg("followers{account=\"adela_mae\"}")
        .assert()
        .success()
        .stdout(
            "account,metric,time,value\n\
             adela_mae,followers,2019-02-13T11:00:00Z,224\n\
             adela_mae,followers,2019-02-13T12:00:00Z,10230\n",
        );
}

#[test]
fn a_syntax_error_exits_2_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args(["query", "drop(followers, 5%"])
        .assert()
        .code(2)
        .stdout("")
        .stderr("error: expected `,` or `)`, found end of query\n  drop(followers, 5%\n                    ^\n");
}

#[test]
fn a_type_error_exits_2_pointing_at_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args(["query", "recovered_within(followers, 1h)"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "recovered_within() expects a drop table as its first argument, found a series",
        ))
        .stderr(predicate::str::contains("\n                   ^^^^^^^^^\n"));
}

#[test]
fn a_runtime_error_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    tally(&dir.path().join("missing"))
        .args(["query", "followers"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::starts_with("tally: no database at")
                .and(predicate::str::ends_with("\n")),
        )
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    tally(dir.path()).args(["query"]).assert().code(2);
    tally(dir.path()).args(["frobnicate"]).assert().code(2);
    tally(dir.path())
        .args(["query", "--format", "xml", "followers"])
        .assert()
        .code(2);
    tally(dir.path())
        .args(["query", "--from", "yesterday", "followers"])
        .assert()
        .code(2);
}

#[test]
fn the_database_comes_from_tally_db_then_the_default() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(&dir.path().join("tally.db"));
    // The default, ./tally.db:
    Command::cargo_bin("tally")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("TALLY_DB")
        .args(["query", "count(followers)"])
        .assert()
        .success()
        .stdout("count\n12\n");
    // $TALLY_DB:
    Command::cargo_bin("tally")
        .unwrap()
        .env("TALLY_DB", dir.path().join("tally.db"))
        .args(["query", "count(followers)"])
        .assert()
        .success()
        .stdout("count\n12\n");
}

#[test]
fn stats_and_compact_report_what_the_database_holds() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    sample_db(dir.path()); // the same points again: a second segment
    tally(dir.path())
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("series          3\n"))
        .stdout(predicate::str::contains("points          24\n"))
        .stdout(predicate::str::contains("segments        2\n"))
        .stdout(predicate::str::contains(
            "time range      2019-02-13T10:00:00Z .. 2019-02-13T13:00:00Z\n",
        ));
    tally(dir.path()).arg("compact").assert().success();
    tally(dir.path())
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("points          12\n"))
        .stdout(predicate::str::contains("segments        1\n"));
}

#[test]
fn a_reversed_or_empty_range_is_a_usage_error_naming_both_times() {
    // [Q19a]: on the command line a range that holds no time is a usage
    // error (exit 2), not an empty answer, and never a panic (this one
    // used to exit 101 on "range end index out of range").
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args([
            "query",
            "--from",
            "2019-02-13T13:00:00Z",
            "--to",
            "2019-02-13T11:00:00Z",
            "followers{account=\"adela_mae\"}",
        ])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            "tally: --from 2019-02-13T13:00:00Z is after --to 2019-02-13T11:00:00Z, \
             so no point could be in the range\n",
        );
    // Unix seconds are named as RFC 3339 too.
    tally(dir.path())
        .args(["query", "--from", "1550062800", "--to", "1550062800"])
        .arg("count(followers)")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "tally: --from 2019-02-13T13:00:00Z is the same time as --to 2019-02-13T13:00:00Z",
        ));
    // Checked before the database is opened.
    tally(&dir.path().join("missing"))
        .args(["query", "--from", "1550062800", "--to", "1550052000"])
        .arg("followers")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is after --to"));
}

#[test]
fn an_unknown_metric_is_noted_on_stderr_and_stdout_is_unchanged() {
    // [Q50], [Q51]
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args(["query", "drop(folowers, 5%, 1h)"])
        .assert()
        .success()
        .stdout("account,metric,start,end,before,after,lost,lost_pct\n")
        .stderr("tally: note: no metric `folowers`; did you mean `followers`?\n");
    tally(dir.path())
        .args(["query", "count(likes)"])
        .assert()
        .success()
        .stdout("count\n0\n")
        .stderr("tally: note: no metric `likes`; the metric is followers\n");
}

#[test]
fn an_unknown_account_is_noted_only_for_an_exact_match() {
    // [Q52]
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args(["query", r#"followers{account="adela_mea"}"#])
        .assert()
        .success()
        .stdout("account,metric,time,value\n")
        .stderr("tally: note: no account `adela_mea`; did you mean `adela_mae`?\n");
    tally(dir.path())
        .args(["query", r#"followers{account="zzzzzzzzzzzz"}"#])
        .assert()
        .success()
        .stderr("tally: note: no account `zzzzzzzzzzzz`\n");
    // A pattern that matches nothing, or an account that is there: silence.
    for query in [
        r#"followers{account=~"adela_mea"}"#,
        r#"followers{account="adela_mae"}"#,
        r#"followers{account="adela_mae", account!="adela_mae"}"#,
    ] {
        tally(dir.path())
            .args(["query", query])
            .assert()
            .success()
            .stderr("");
    }
}

#[test]
fn format_svg_draws_the_glitch_and_the_purge() {
    // [Q60], [Q61], [Q65]
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    let output = tally(dir.path())
        .args(["query", "--format", "svg", "drop(followers, 5%, 1h)"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty());
    let svg = String::from_utf8(output.stdout).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let count = |class: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .count()
    };
    // adela_mae came back within a day (a glitch); evada did not (a purge).
    assert_eq!((count("fall glitch"), count("fall purge")), (1, 1), "{svg}");
    assert_eq!(count("line"), 2);
    // The quoted account name comes through escaped and whole.
    assert!(svg.contains("evada, &quot;the&quot; first"), "{svg}");
}

#[test]
fn format_svg_of_a_result_without_a_picture_is_a_usage_error() {
    // [Q60]
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    tally(dir.path())
        .args(["query", "--format", "svg", "count(drop(followers, 5%, 1h))"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("has no picture"));
}

/// A build without the `arrow` feature keeps `export` and `--format arrow`
/// in its help, and refuses them with one line naming the feature
/// (docs/export.md). CI builds with every feature; `cargo test` alone runs
/// this.
/// A command of a feature this build lacks: exit status 2, one line on
/// standard error naming the feature, nothing on standard output.
#[cfg(not(all(feature = "arrow", feature = "datafusion", feature = "distributed")))]
fn refused_naming_the_feature(out: &std::process::Output, feature: &str, args: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(&format!("--features {feature}")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
}

#[cfg(not(feature = "arrow"))]
#[test]
fn without_the_arrow_feature_arrow_output_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    for args in [
        vec!["export", "--out", "x"],
        vec!["query", "--format", "arrow", "followers"],
    ] {
        let out = tally(dir.path())
            .current_dir(dir.path())
            .args(&args)
            .output()
            .unwrap();
        refused_naming_the_feature(&out, "arrow", &args);
    }
    assert!(!dir.path().join("x").exists());
}

/// A build without the `datafusion` feature still lists `tally sql`, and
/// refuses it with one line naming the feature (docs/sql.md). CI builds
/// with every feature; `cargo test` alone runs this.
#[cfg(not(feature = "datafusion"))]
#[test]
fn without_the_datafusion_feature_sql_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    let out = tally(dir.path())
        .args(["sql", "SELECT count(*) FROM points"])
        .output()
        .unwrap();
    refused_naming_the_feature(&out, "datafusion", &["sql"]);
}

/// A build without the `distributed` feature still lists `tally worker`
/// and `tally query --cluster`, and refuses both with one line naming the
/// feature (docs/scale-out.md). CI builds with every feature; `cargo test`
/// alone runs this.
#[cfg(not(feature = "distributed"))]
#[test]
fn without_the_distributed_feature_cluster_commands_name_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster.json");
    std::fs::write(&cluster, "{}").unwrap();
    for args in [
        vec!["worker", "--cluster", "cluster.json", "--node", "a"],
        vec!["query", "--cluster", "cluster.json", "count(followers)"],
    ] {
        let out = tally(dir.path())
            .current_dir(dir.path())
            .args(&args)
            .output()
            .unwrap();
        refused_naming_the_feature(&out, "distributed", &args);
    }
}
