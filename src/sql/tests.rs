//! The SQL session against what the library says the database holds:
//! `points` against `Db::points`, the pushdown at work (EXPLAIN and the
//! count of series read), `tally('…')` against `Db::query`, and the errors.

use std::path::Path;
use std::sync::Arc;

use datafusion::execution::context::SessionContext;

use super::points::PointsTable;
use super::*;
use crate::db::Point;

const T0: i64 = 1_550_052_000_000; // 2019-02-13T10:00:00Z
const HOUR: i64 = 3_600_000;

fn account_name(i: usize) -> String {
    format!("acct_{i:02}")
}

/// Thirty accounts over two metrics, 30 hours, with falls that recover and
/// falls that don't, committed in two parts so that series span segments.
fn sample_db(dir: &Path) -> Db {
    let db = Db::open(dir).unwrap();
    for hours in [0..16, 12..30] {
        let mut w = db.writer().unwrap();
        for a in 0..30 {
            for metric in ["followers", "following"] {
                if metric == "following" && a % 3 == 2 {
                    continue;
                }
                for h in hours.clone() {
                    let base = 1_000 + a as u64 * 17;
                    let v = match (a % 4, h) {
                        (0, 8..=10) => base / 2,
                        (1, 20..) => base * 8 / 10,
                        _ => base + h as u64 % 3,
                    };
                    w.append(&account_name(a), metric, T0 + h as i64 * HOUR, v)
                        .unwrap();
                }
            }
        }
        w.commit().unwrap();
    }
    db
}

/// A session with `table` as `points`, and the runtime to run it on.
fn session_with(table: Arc<PointsTable>) -> (tokio::runtime::Runtime, SessionContext) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("points", table).unwrap();
    (runtime, ctx)
}

fn collect(runtime: &tokio::runtime::Runtime, ctx: &SessionContext, sql: &str) -> Table {
    let (schema, batches) = runtime.block_on(async {
        let frame = ctx.sql(sql).await.unwrap();
        let schema = Arc::clone(frame.schema().inner());
        (schema, frame.collect().await.unwrap())
    });
    table_of(&SqlAnswer {
        schema,
        batches,
        notices: Vec::new(),
    })
    .unwrap()
}

/// The rows `Db::points` gives for the series that pass `keep`, sorted.
fn expected_points(
    db: &Db,
    keep: impl Fn(&str, &str) -> bool,
    range: TimeRange,
) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for account in db.accounts().unwrap() {
        for metric in db.metrics() {
            if !keep(&account, &metric) {
                continue;
            }
            for Point { time, count } in db.points(&account, &metric, range).unwrap() {
                rows.push(vec![
                    Value::Text(account.clone()),
                    Value::Text(metric.clone()),
                    Value::Time(time),
                    Value::Int(count as i64),
                ]);
            }
        }
    }
    rows.sort();
    rows
}

fn sorted(table: &Table) -> Vec<Vec<Value>> {
    let mut rows = table.rows().to_vec();
    rows.sort();
    rows
}

#[test]
fn points_holds_every_point_of_every_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let table = Arc::new(PointsTable::new(db.snapshot(), TimeRange::ALL));
    let (rt, ctx) = session_with(Arc::clone(&table));
    let answer = collect(&rt, &ctx, "SELECT account, metric, time, value FROM points");
    assert_eq!(answer.columns(), ["account", "metric", "time", "value"]);
    let expected = expected_points(&db, |_, _| true, TimeRange::ALL);
    assert_eq!(expected.len(), 30 * 30 + 20 * 30);
    assert_eq!(sorted(&answer), expected);
    assert_eq!(table.series_read(), 50);
}

/// Which series a pushed-down filter should keep: `(account, metric) -> keep?`.
type SeriesFilter = dyn Fn(&str, &str) -> bool;

#[test]
fn filters_are_applied_inside_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let from = T0 + 5 * HOUR;
    let to = T0 + 20 * HOUR;
    let range = TimeRange { from, to };
    let cases: Vec<(&str, Box<SeriesFilter>, TimeRange, u64)> = vec![
        (
            "metric = 'followers'",
            Box::new(|_, m| m == "followers"),
            TimeRange::ALL,
            30,
        ),
        (
            "metric IN ('following', 'nope') AND account = 'acct_03'",
            Box::new(|a, m| m == "following" && a == "acct_03"),
            TimeRange::ALL,
            1,
        ),
        (
            "account IN ('acct_01', 'acct_02')",
            Box::new(|a, _| a == "acct_01" || a == "acct_02"),
            TimeRange::ALL,
            3,
        ),
        (
            r"account LIKE 'acct\_1%' AND metric = 'followers'",
            Box::new(|a, m| a.starts_with("acct_1") && m == "followers"),
            TimeRange::ALL,
            10,
        ),
        (
            "account ~ '^acct_2[0-4]$' AND metric = 'followers'",
            Box::new(|a, m| {
                m == "followers"
                    && ["acct_20", "acct_21", "acct_22", "acct_23", "acct_24"].contains(&a)
            }),
            TimeRange::ALL,
            5,
        ),
        (
            "metric = 'followers' AND time >= '2019-02-13T15:00:00Z' AND time < '2019-02-14T06:00:00Z'",
            Box::new(|_, m| m == "followers"),
            range,
            30,
        ),
        (
            "metric = 'followers' AND time > '2019-02-13T14:00:00Z' AND time <= '2019-02-14T05:00:00Z'",
            Box::new(|_, m| m == "followers"),
            range,
            30,
        ),
        (
            "metric = 'followers' AND time BETWEEN '2019-02-13T15:00:00Z' AND '2019-02-14T05:00:00Z'",
            Box::new(|_, m| m == "followers"),
            range,
            30,
        ),
    ];
    for (filter, keep, range, series) in cases {
        let table = Arc::new(PointsTable::new(db.snapshot(), TimeRange::ALL));
        let (rt, ctx) = session_with(Arc::clone(&table));
        let sql = format!("SELECT account, metric, time, value FROM points WHERE {filter}");
        let answer = collect(&rt, &ctx, &sql);
        assert_eq!(
            sorted(&answer),
            expected_points(&db, keep, range),
            "{filter}"
        );
        assert_eq!(table.series_read(), series, "{filter}");
        // Every filter was exact: DataFusion applies none of them again.
        let plan = collect(&rt, &ctx, &format!("EXPLAIN {sql}"));
        let text = format!("{:?}", plan.rows());
        assert!(!text.contains("FilterExec"), "{filter}: {text}");
    }
}

#[test]
fn filters_tally_cannot_use_are_left_to_datafusion() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let table = Arc::new(PointsTable::new(db.snapshot(), TimeRange::ALL));
    let (rt, ctx) = session_with(Arc::clone(&table));
    // An upper-case LIKE is not a plain prefix, and `value` is not pushed
    // down: the answer is still right, through DataFusion's own filter.
    let sql = "SELECT account, metric, time, value FROM points \
               WHERE (account LIKE 'acct\\_0%' OR account = 'acct_29') AND value > 1100";
    let answer = collect(&rt, &ctx, sql);
    let expected: Vec<Vec<Value>> = expected_points(
        &db,
        |a, _| a.starts_with("acct_0") || a == "acct_29",
        TimeRange::ALL,
    )
    .into_iter()
    .filter(|row| row.get(3).and_then(Value::as_i64).is_some_and(|v| v > 1100))
    .collect();
    assert!(!expected.is_empty());
    assert_eq!(sorted(&answer), expected);
    let plan = collect(&rt, &ctx, &format!("EXPLAIN {sql}"));
    assert!(format!("{:?}", plan.rows()).contains("FilterExec"));
}

#[test]
fn count_star_and_times_alone_count_overwritten_points_once() {
    // The sample's two commits overlap in hours 12 to 15, so those points
    // are in two segments. A scan that reads no value column must still
    // merge the two, the later winning ([I5]), rather than drop them.
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    assert!(
        db.snapshot().manifest.segments.len() >= 2,
        "two parts to merge"
    );
    let expected = expected_points(&db, |_, metric| metric == "following", TimeRange::ALL);
    let table = Arc::new(PointsTable::new(db.snapshot(), TimeRange::ALL));
    let (rt, ctx) = session_with(table);
    let answer = collect(
        &rt,
        &ctx,
        "SELECT count(*) AS n FROM points WHERE metric = 'following'",
    );
    assert_eq!(answer.rows(), [vec![Value::Int(expected.len() as i64)]]);
    let answer = collect(
        &rt,
        &ctx,
        "SELECT account, metric, time FROM points WHERE metric = 'following' \
         ORDER BY account, time",
    );
    let without_counts: Vec<Vec<Value>> = expected
        .iter()
        .map(|row| row.iter().take(3).cloned().collect())
        .collect();
    assert_eq!(answer.rows(), without_counts.as_slice());
}

#[test]
fn count_star_counts_points_without_reading_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let table = Arc::new(PointsTable::new(
        db.snapshot(),
        TimeRange {
            from: T0,
            to: T0 + 10 * HOUR,
        },
    ));
    let (rt, ctx) = session_with(table);
    let answer = collect(
        &rt,
        &ctx,
        "SELECT count(*) AS n FROM points WHERE metric = 'following'",
    );
    assert_eq!(answer.rows(), [vec![Value::Int(20 * 10)]]);
}

#[test]
fn tally_gives_the_table_of_tally_query() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    for query in [
        "drop(followers, 5%, 1h)",
        "recovered_within(drop(followers, 5%, 1h), 3h)",
        "not recovered_within(drop(followers, 5%, 1h), 3h)",
        "topk(3, drop(followers, 5%, 1h))",
        "summarize(drop(followers, 5%, 1h))",
        "count(drop(following, 5%, 1h))",
    ] {
        let expected = db.query(query).unwrap();
        assert!(!expected.is_empty(), "{query}");
        let answer = run(
            &db,
            &format!("SELECT * FROM tally('{query}')"),
            TimeRange::ALL,
        )
        .unwrap();
        let table = table_of(&answer).unwrap();
        assert_eq!(table.columns(), expected.columns(), "{query}");
        assert_eq!(sorted(&table), sorted(&expected), "{query}");
    }
}

#[test]
fn tally_joins_with_a_parquet_file_named_in_from() {
    use parquet::arrow::ArrowWriter;

    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path().join("db").as_path());
    // Accounts and their countries: even accounts in "fr", odd in "jp".
    let path = dir.path().join("accounts.parquet");
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("account", DataType::Utf8, false),
        arrow_schema::Field::new("country", DataType::Utf8, false),
    ]));
    let accounts: Vec<String> = (0..30).map(account_name).collect();
    let countries: Vec<&str> = (0..30)
        .map(|i| if i % 2 == 0 { "fr" } else { "jp" })
        .collect();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(arrow_array::StringArray::from(accounts)),
            Arc::new(arrow_array::StringArray::from(countries)),
        ],
    )
    .unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let query = "not recovered_within(drop(followers, 5%, 1h), 3h)";
    let sql = format!(
        "SELECT a.country, count(*) AS falls FROM tally('{query}') d \
         JOIN '{}' a USING (account) GROUP BY 1 ORDER BY 1",
        path.display()
    );
    let table = table_of(&run(&db, &sql, TimeRange::ALL).unwrap()).unwrap();
    let falls = db.query(query).unwrap();
    let mut by_country = std::collections::BTreeMap::<&str, i64>::new();
    for row in falls.rows() {
        let account = falls.get(row, "account").and_then(Value::as_str).unwrap();
        let n: usize = account.trim_start_matches("acct_").parse().unwrap();
        *by_country
            .entry(if n.is_multiple_of(2) { "fr" } else { "jp" })
            .or_default() += 1;
    }
    let expected: Vec<Vec<Value>> = by_country
        .into_iter()
        .map(|(c, n)| vec![Value::Text(c.to_string()), Value::Int(n)])
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(table.columns(), ["country", "falls"]);
    assert_eq!(table.rows(), expected);
}

#[test]
fn a_bad_tally_query_is_tallys_error_with_its_caret() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let err = run(
        &db,
        "SELECT * FROM tally('recovered_within(followers, 1h)')",
        TimeRange::ALL,
    )
    .unwrap_err();
    let SqlFailure::Tally(crate::Error::Query(q)) = err else {
        panic!("{err:?}");
    };
    let text = q.render();
    assert!(text.contains("expects a drop table"), "{text}");
    assert!(text.contains('^'), "{text}");
}

#[test]
fn bad_sql_says_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let cases = [
        ("SELECT count(*) FORM points", "does not parse", true),
        ("SELECT nope FROM points", "nope", false),
        ("SELECT * FROM missing_table", "missing_table", false),
        (
            "SELECT * FROM tally(3)",
            "tally() takes one argument",
            false,
        ),
        ("CREATE TABLE t AS SELECT 1", "", false),
    ];
    for (sql, says, caret) in cases {
        let err = run(&db, sql, TimeRange::ALL).unwrap_err();
        let SqlFailure::Statement(message) = &err else {
            panic!("{sql}: {err:?}");
        };
        assert!(message.contains(says), "{sql}: {message}");
        assert_eq!(
            message.contains("\n  SELECT count(*) FORM points\n  "),
            caret,
            "{sql}: {message}"
        );
    }
}

#[test]
fn the_caret_sits_under_the_column_sqlparser_names() {
    assert_eq!(
        with_caret("SELECT 1\nFORM x", "oops at Line: 2, Column: 3"),
        "oops at Line: 2, Column: 3\n  FORM x\n    ^"
    );
    assert_eq!(with_caret("SELECT", "no position"), "no position");
}
