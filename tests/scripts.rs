//! Query semantics as `load`/`eval` scripts with expected rows, in the
//! manner of Prometheus's promql tests. Each file in tests/scripts/ is a
//! sequence of blocks:
//!
//! ```text
//! # comment
//! series ACCOUNT METRIC START STEP V1 V2 …   (hourly etc.; `_` skips a point)
//! point ACCOUNT METRIC TIME VALUE
//! eval [--from TIME] [--to TIME] QUERY
//! expected,csv,header
//! expected,row
//! ```
//!
//! An `eval` block ends at a blank line; its expected rows are compared with
//! the query's result printed as CSV (no quoting: scripts use plain names).
//! `series`/`point` lines load data; every `eval` runs against all data
//! loaded before it in the file.

use std::path::Path;

use tally::{Db, Query, TimeRange};

fn parse_time(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
        .as_millisecond()
}

fn parse_step(s: &str) -> i64 {
    let (num, unit) = s.split_at(s.len() - 1);
    let n: i64 = num.parse().unwrap();
    n * match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => panic!("bad step {s}"),
    }
}

fn table_csv(table: &tally::Table) -> Vec<String> {
    let mut lines = vec![table.columns().join(",")];
    for row in table.rows() {
        lines.push(
            row.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    lines
}

fn run_script(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut evals = 0;
    let mut lines = text.lines().enumerate().peekable();
    let mut writer = db.writer().unwrap();
    while let Some((n, line)) = lines.next() {
        let line = line.trim();
        let at = format!("{}:{}", path.display(), n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "series" => {
                let (account, metric) = (words[1], words[2]);
                let (start, step) = (parse_time(words[3]), parse_step(words[4]));
                for (k, v) in words[5..].iter().enumerate() {
                    if *v != "_" {
                        let t = start + k as i64 * step;
                        writer
                            .append(account, metric, t, v.parse().unwrap())
                            .unwrap();
                    }
                }
            }
            "point" => {
                let t = parse_time(words[3]);
                writer
                    .append(words[1], words[2], t, words[4].parse().unwrap())
                    .unwrap();
            }
            "eval" => {
                writer.commit().unwrap();
                let mut rest = line["eval".len()..].trim();
                let mut range = TimeRange::ALL;
                loop {
                    if let Some(r) = rest.strip_prefix("--from ") {
                        let (t, tail) = r.split_once(' ').unwrap();
                        range.from = parse_time(t);
                        rest = tail.trim();
                    } else if let Some(r) = rest.strip_prefix("--to ") {
                        let (t, tail) = r.split_once(' ').unwrap();
                        range.to = parse_time(t);
                        rest = tail.trim();
                    } else {
                        break;
                    }
                }
                let mut expected = Vec::new();
                while let Some((_, l)) = lines.peek() {
                    if l.trim().is_empty() {
                        break;
                    }
                    expected.push(l.trim().to_string());
                    lines.next();
                }
                let query = Query::parse(rest).unwrap_or_else(|e| panic!("{at}: {e}"));
                let table = query
                    .range(range)
                    .run(&db)
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                let got = table_csv(&table);
                assert_eq!(got, expected, "{at}: eval {rest}");
                evals += 1;
            }
            other => panic!("{at}: unknown directive {other}"),
        }
    }
    evals
}

#[test]
fn every_script_gives_its_expected_rows() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "no scripts found in {}", dir.display());
    let mut evals = 0;
    for f in &files {
        evals += run_script(f);
    }
    assert!(evals >= 30, "only {evals} evals ran");
}
