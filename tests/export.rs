//! The real `tally` binary's Arrow and Parquet output (the `arrow`
//! feature): `tally query --format arrow` read back with arrow-ipc's
//! reader, and `tally export` read back with the parquet crate's Arrow
//! reader, against what the library says the database holds.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use assert_cmd::Command;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use tally::{Db, TimeRange, Value};

const T0: i64 = 1_550_052_000_000; // 2019-02-13T10:00:00Z
const HOUR: i64 = 3_600_000;
const HOURS: i64 = 48;

fn account_name(i: usize) -> String {
    match i {
        0 => "evada, \"the\" first".to_string(),
        1 => "ünïcode".to_string(),
        _ => format!("acct_{:03}", (i * 37) % 101),
    }
}

/// Sixty accounts over two metrics, 48 hours, with a fall that recovers and
/// one that does not, committed in two parts (the second overwrites some
/// points of the first and adds hours), so that series span segments.
fn sample_db(dir: &Path) {
    let db = Db::open(dir).unwrap();
    let value = |a: usize, h: i64, metric: usize| -> u64 {
        let base = 1_000 + (a as u64) * 13 + metric as u64 * 7;
        match (a % 5, h) {
            (0, 20..=25) => base / 2,   // a glitch, recovered
            (1, 30..) => base * 9 / 10, // a purge, not recovered
            _ => base + (h as u64 % 3),
        }
    };
    for (part, hours) in [(0, 0..30), (1, 25..HOURS)] {
        let mut w = db.writer().unwrap();
        for a in 0..60 {
            // Some accounts lack a metric, and one skips hours.
            for (m, metric) in ["followers", "following"].iter().enumerate() {
                if m == 1 && a % 4 == 3 {
                    continue;
                }
                for h in hours.clone() {
                    if a == 7 && h % 5 == 0 {
                        continue;
                    }
                    let v = value(a, h, m) + if part == 1 && h < 30 { 1 } else { 0 };
                    w.append(&account_name(a), metric, T0 + h * HOUR, v)
                        .unwrap();
                }
            }
        }
        w.commit().unwrap();
    }
}

fn tally(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tally").unwrap();
    cmd.arg("--db").arg(db).env_remove("TALLY_DB");
    cmd
}

/// Record batches as tally's rows, each column converted by its Arrow type.
fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .map(|col| {
                    assert_eq!(col.null_count(), 0);
                    match col.data_type() {
                        DataType::Utf8 => Value::Text(col.as_string::<i32>().value(r).to_string()),
                        DataType::Int64 => Value::Int(col.as_primitive::<Int64Type>().value(r)),
                        DataType::Timestamp(TimeUnit::Millisecond, Some(tz)) if &**tz == "UTC" => {
                            Value::Time(col.as_primitive::<TimestampMillisecondType>().value(r))
                        }
                        DataType::Decimal128(20, 2) => Value::Percent(
                            i64::try_from(col.as_primitive::<Decimal128Type>().value(r)).unwrap(),
                        ),
                        other => panic!("unexpected column type {other:?}"),
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    rows
}

fn arrow_stream(db: &Path, args: &[&str]) -> (Vec<String>, Vec<RecordBatch>) {
    let out = tally(db)
        .args(["query", "--format", "arrow"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = arrow_ipc::reader::StreamReader::try_new(&out.stdout[..], None).unwrap();
    let names = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
    (names, batches)
}

#[test]
fn the_arrow_stream_is_the_query_table() {
    let dir = tempfile::tempdir().unwrap();
    sample_db(dir.path());
    let db = Db::open(dir.path()).unwrap();
    let queries = [
        "followers",
        "change(following, 2h)",
        "drop(followers, 5%, 1h)",
        "recovered_within(drop(followers, 5%, 1h), 1d)",
        "not recovered_within(drop(followers, 5%, 1h), 1d)",
        "topk(3, drop(followers, 5%, 1h))",
        "count(followers)",
        "sum(drop(followers, 5%, 1h))",
        "summarize(drop(followers, 5%, 1h), 6h)",
        "drop(likes, 5%, 1h)",
    ];
    for q in queries {
        let table = db.query(q).unwrap();
        let (names, batches) = arrow_stream(dir.path(), &[q]);
        assert_eq!(names, table.columns(), "{q}");
        assert_eq!(rows_of(&batches), table.rows(), "{q}");
    }
    assert!(!db.query("drop(followers, 5%, 1h)").unwrap().is_empty());
    // --from/--to apply as they do to every format.
    let from = "2019-02-14T00:00:00Z";
    let (_, batches) = arrow_stream(dir.path(), &["--from", from, "followers"]);
    let ranged = tally::Query::parse("followers")
        .unwrap()
        .range(TimeRange {
            from: T0 + 14 * HOUR,
            to: i64::MAX,
        })
        .run(&db)
        .unwrap();
    assert_eq!(rows_of(&batches), ranged.rows());
}

/// What one exported file holds.
struct Part {
    path: PathBuf,
    names: Vec<String>,
    rows: Vec<Vec<Value>>,
    row_groups: usize,
}

fn read_parts(out: &Path) -> Vec<Part> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
            let meta = builder.metadata().clone();
            for rg in meta.row_groups() {
                for col in rg.columns() {
                    assert!(
                        matches!(col.compression(), Compression::ZSTD(_)),
                        "{}: {:?}",
                        path.display(),
                        col.compression()
                    );
                }
            }
            let names = builder
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let batches = builder
                .build()
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            Part {
                path,
                names,
                rows: rows_of(&batches),
                row_groups: meta.num_row_groups(),
            }
        })
        .collect()
}

/// The documented partition of an account: FNV-1a 64 of its UTF-8 bytes,
/// modulo the number of files (docs/export.md).
fn fnv_partition(account: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in account.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h % n
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn export_writes_every_point_partitioned_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    sample_db(&db_dir);
    let out = dir.path().join("out");
    tally(&db_dir)
        .args(["export", "--partitions", "3", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicates::str::starts_with("exported "));
    let parts = read_parts(&out);
    let files: Vec<String> = parts
        .iter()
        .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        [
            "part-00000.parquet",
            "part-00001.parquet",
            "part-00002.parquet"
        ]
    );

    let db = Db::open(&db_dir).unwrap();
    let mut seen: BTreeMap<(String, String), Vec<tally::Point>> = BTreeMap::new();
    let mut account_file: BTreeMap<String, usize> = BTreeMap::new();
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part.names, ["account", "metric", "time", "value"]);
        assert!(!part.rows.is_empty(), "{}", part.path.display());
        // Sorted by account, then time (then metric).
        let keys: Vec<(&str, &Value, &str)> = part
            .rows
            .iter()
            .map(|r| (text(&r[0]), &r[2], text(&r[1])))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{}",
            part.path.display()
        );
        for row in &part.rows {
            let account = text(&row[0]).to_string();
            // Each account in exactly one file, the one its hash names.
            assert_eq!(*account_file.entry(account.clone()).or_insert(i), i);
            assert_eq!(fnv_partition(&account, 3), i as u64, "{account}");
            let (Value::Time(time), Value::Int(count)) = (&row[2], &row[3]) else {
                panic!("{row:?}");
            };
            seen.entry((account, text(&row[1]).to_string()))
                .or_default()
                .push(tally::Point {
                    time: *time,
                    count: u64::try_from(*count).unwrap(),
                });
        }
    }
    // The same points as the database holds, series by series.
    let mut expected = 0;
    for metric in db.metrics() {
        for series in db.series(&metric, |_| true).unwrap() {
            let points = db
                .points(&series.account, &series.metric, TimeRange::ALL)
                .unwrap();
            expected += points.len();
            assert_eq!(
                seen.get(&(series.account.clone(), series.metric.clone())),
                Some(&points),
                "{series:?}"
            );
        }
    }
    let total: usize = seen.values().map(Vec::len).sum();
    assert_eq!(total, expected);
    assert_eq!(account_file.len(), 60);
}

#[test]
fn export_honours_from_and_to() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    sample_db(&db_dir);
    let out = dir.path().join("out");
    tally(&db_dir)
        .args([
            "export",
            "--partitions",
            "1",
            "--from",
            "2019-02-13T20:00:00Z",
        ])
        .args(["--to", "2019-02-14T02:00:00Z", "--out"])
        .arg(&out)
        .assert()
        .success();
    let parts = read_parts(&out);
    assert_eq!(parts.len(), 1);
    let db = Db::open(&db_dir).unwrap();
    let range = TimeRange {
        from: T0 + 10 * HOUR,
        to: T0 + 16 * HOUR,
    };
    let mut expected = 0;
    for metric in db.metrics() {
        for s in db.series(&metric, |_| true).unwrap() {
            expected += db.points(&s.account, &s.metric, range).unwrap().len();
        }
    }
    assert_eq!(parts[0].rows.len(), expected);
    assert!(parts[0].rows.iter().all(|r| match r[2] {
        Value::Time(t) => range.from <= t && t < range.to,
        _ => false,
    }));
}

#[test]
fn export_of_a_query_is_its_table_partitioned_by_account() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    sample_db(&db_dir);
    let db = Db::open(&db_dir).unwrap();
    for q in [
        "recovered_within(drop(followers, 5%, 1h), 1d)",
        "drop(followers, 5%, 1h)",
        "following",
    ] {
        let out = dir.path().join(format!("out-{}", q.len()));
        tally(&db_dir)
            .args(["export", "--partitions", "4", "--out"])
            .arg(&out)
            .arg(q)
            .assert()
            .success();
        let table = db.query(q).unwrap();
        assert!(!table.is_empty(), "{q}");
        let parts = read_parts(&out);
        assert_eq!(parts.len(), 4);
        // The third column is `time` or `start`.
        let time_col = 2;
        let mut all = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.names, table.columns(), "{q}");
            let keys: Vec<(&str, &Value)> = part
                .rows
                .iter()
                .map(|r| (text(&r[0]), &r[time_col]))
                .collect();
            assert!(
                keys.windows(2).all(|w| w[0] <= w[1]),
                "{q}: {}",
                part.path.display()
            );
            for row in &part.rows {
                assert_eq!(fnv_partition(text(&row[0]), 4), i as u64);
            }
            all.extend(part.rows.iter().cloned());
        }
        let mut expected = table.rows().to_vec();
        all.sort();
        expected.sort();
        assert_eq!(all, expected, "{q}");
    }
    // A table without accounts is one file; the others are empty.
    let out = dir.path().join("count");
    tally(&db_dir)
        .args(["export", "--partitions", "2", "--out"])
        .arg(&out)
        .arg("summarize(drop(followers, 5%, 1h), 6h)")
        .assert()
        .success();
    let parts = read_parts(&out);
    let table = db.query("summarize(drop(followers, 5%, 1h), 6h)").unwrap();
    assert_eq!(parts[0].rows, table.rows());
    assert!(parts[1].rows.is_empty());
    assert_eq!(parts[1].names, table.columns());
    assert_eq!(parts[1].row_groups, 0);
}

#[test]
fn bad_exports_fail_with_one_line_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    sample_db(&db_dir);
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, "x").unwrap();
    let not_empty = dir.path().join("not-empty");
    std::fs::create_dir(&not_empty).unwrap();
    std::fs::write(not_empty.join("part-00000.parquet"), "old").unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "--partitions".into(),
                "0".into(),
                "--out".into(),
                "x".into(),
            ],
            2,
            "--partitions must be at least 1",
        ),
        (
            vec!["--out".into(), a_file.join("sub").display().to_string()],
            1,
            "a-file/sub",
        ),
        (
            vec!["--out".into(), not_empty.display().to_string()],
            1,
            "is not empty",
        ),
        (
            vec!["--out".into(), "y".into(), "drop(followers, 5%)".into()],
            2,
            "drop",
        ),
        (
            vec![
                "--out".into(),
                "z".into(),
                "--from".into(),
                "2019-02-14T00:00:00Z".into(),
                "--to".into(),
                "2019-02-13T00:00:00Z".into(),
            ],
            2,
            "is after --to",
        ),
    ];
    for (args, code, says) in cases {
        let out = tally(&db_dir)
            .current_dir(dir.path())
            .arg("export")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panic") && !stderr.contains("internal error"),
            "{stderr}"
        );
        if code == 1 {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        }
    }
    // The old file of the non-empty directory is untouched.
    assert_eq!(
        std::fs::read(not_empty.join("part-00000.parquet")).unwrap(),
        b"old"
    );
    // A missing database is said so, and nothing is created.
    let out = tally(&dir.path().join("missing"))
        .args(["export", "--out"])
        .arg(dir.path().join("never"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
    assert!(!dir.path().join("never").exists());
}
