//! The `points` table: every point of a tally database as the rows
//! `(account utf8view, metric utf8view, time timestamp(ms, UTC), value int64)`,
//! the columns of `tally export` (`crate::output::arrow`), with the names as
//! string views ([`points_schema`]).
//!
//! This module owns the filter pushdown and the scan. Filters on `metric`,
//! `account` and `time` that tally can answer from its dictionary and its
//! segment index become a [`Selection`]: the series it names are found in
//! the dictionary, split into contiguous series-id ranges, one per
//! partition, and each partition reads its series in id order with one
//! [`Scanner`] (the order segments store series in, so each cursor only
//! moves forward), on a blocking thread of its own, sending record batches
//! as they fill.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::builder::make_view;
use arrow_array::{
    ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, StringViewArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::buffer::{Buffer, ScalarBuffer};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::expr::{Between, InList, Like};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use crate::db::snapshot::{Scanner, Snapshot, TimeRange};
use crate::output::arrow::{BATCH_ROWS, UTC, schema};
use crate::storage::segment::Columns;

/// The columns of `points`, in order: those of a selector's table.
pub(crate) const POINT_COLUMNS: [&str; 4] = ["account", "metric", "time", "value"];
const ACCOUNT: usize = 0;
const METRIC: usize = 1;
const TIME: usize = 2;
const VALUE: usize = 3;

/// The schema of `points`: that of a selector's table (`tally export`'s),
/// but for its two names, which are string views (docs/sql.md, "Output").
///
/// A scan repeats one account and one metric name on every point of a
/// series. As views, a name of at most 12 bytes is the 16-byte view itself
/// and a longer one is stored once per series and batch, where a `Utf8`
/// column copies the bytes on every row; and DataFusion groups and
/// compares short views without touching string bytes. It is also the type
/// DataFusion gives the strings of the Parquet files it reads.
fn points_schema() -> SchemaRef {
    let plain = schema(&POINT_COLUMNS);
    let fields: Vec<Field> = plain
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The `points` table over one committed state of a database.
#[derive(Debug)]
pub(crate) struct PointsTable {
    snapshot: Arc<Snapshot>,
    /// `--from`/`--to`: no point outside it is ever a row.
    range: TimeRange,
    schema: SchemaRef,
    /// Series read by every scan so far: what the tests look at to see the
    /// pushdown at work.
    series_read: Arc<AtomicU64>,
}

impl PointsTable {
    pub(crate) fn new(snapshot: Arc<Snapshot>, range: TimeRange) -> PointsTable {
        PointsTable {
            snapshot,
            range,
            schema: points_schema(),
            series_read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many series the scans of this table have read so far.
    #[cfg(test)]
    pub(crate) fn series_read(&self) -> u64 {
        self.series_read.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl TableProvider for PointsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match Constraint::of(f) {
                Some((_, true)) => TableProviderFilterPushDown::Exact,
                Some((_, false)) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let mut selection = Selection::new(self.range);
        for filter in filters {
            // DataFusion hands back only the filters this table accepted
            // above, so each is a constraint; one that were not would be
            // applied by DataFusion above the scan, as an Unsupported one is.
            if let Some((constraint, _)) = Constraint::of(filter) {
                selection.add(constraint);
            }
        }
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..POINT_COLUMNS.len()).collect(),
        };
        let projected = Arc::new(self.schema.project(&columns)?);
        let ids = selection.series(&self.snapshot).map_err(external)?;
        let partitions = state.config().target_partitions().max(1);
        let per_partition = ids.len().div_ceil(partitions).max(1);
        let ids: Arc<[u32]> = ids.into();
        let streams: Vec<Arc<dyn PartitionStream>> = (0..partitions)
            .map(|p| {
                let lo = (p * per_partition).min(ids.len());
                let hi = ((p + 1) * per_partition).min(ids.len());
                Arc::new(PointsPartition {
                    snapshot: Arc::clone(&self.snapshot),
                    ids: Arc::clone(&ids),
                    span: (lo, hi),
                    range: selection.range,
                    columns: columns.clone(),
                    schema: Arc::clone(&projected),
                    series_read: Arc::clone(&self.series_read),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTableExec::try_new(
            projected,
            streams,
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// A tally error as DataFusion carries it: the CLI takes it back out
/// (`super::failure`), so that it prints as tally prints it.
pub(crate) fn external(e: crate::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

// --- the pushdown ------------------------------------------------------------

/// What one filter says about the rows, in tally's terms.
#[derive(Debug)]
enum Constraint {
    /// The metric is one of these.
    Metric(Vec<String>),
    /// The account passes this test.
    Account(AccountTest),
    /// The time is in this range.
    Time(TimeRange),
}

/// A test of an account's name.
#[derive(Debug)]
enum AccountTest {
    OneOf(Vec<String>),
    Prefix(String),
    /// Unanchored, as SQL's `~` is: DataFusion's `~` runs the same regex
    /// crate, so both agree on every pattern.
    Regex(regex::Regex),
}

impl AccountTest {
    fn accepts(&self, account: &str) -> bool {
        match self {
            AccountTest::OneOf(names) => names.iter().any(|n| n == account),
            AccountTest::Prefix(prefix) => account.starts_with(prefix.as_str()),
            AccountTest::Regex(re) => re.is_match(account),
        }
    }
}

/// The account test a `LIKE` pattern states, when it is an exact name or a
/// plain prefix: no wildcard but one `%` at the very end. A backslash
/// escapes the next character, as in DataFusion's `LIKE` without an `ESCAPE`
/// clause, so `'acct\_1%'` is the prefix `acct_1`, while `'acct_1%'` (where `_` is any
/// one character) is left to DataFusion.
fn like_test(pattern: &str) -> Option<AccountTest> {
    let mut stem = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => stem.push(chars.next()?),
            '%' if chars.as_str().is_empty() => return Some(AccountTest::Prefix(stem)),
            '%' | '_' => return None,
            c => stem.push(c),
        }
    }
    Some(AccountTest::OneOf(vec![stem]))
}

impl Constraint {
    /// The constraint `filter` states, and whether tally applies it exactly
    /// (true) or only narrows the rows, leaving DataFusion to apply the
    /// filter again (false). `None` for a filter tally cannot use.
    fn of(filter: &Expr) -> Option<(Constraint, bool)> {
        match filter {
            // DataFusion's simplifier rewrites a short `IN` list as a chain
            // of `OR`ed equalities, so `a = x OR a = y` is `a IN (x, y)`.
            // Only names of one column join this way, and only when both
            // sides are exact.
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => match (Constraint::of(left)?, Constraint::of(right)?) {
                ((Constraint::Metric(mut a), true), (Constraint::Metric(b), true)) => {
                    a.extend(b);
                    Some((Constraint::Metric(a), true))
                }
                (
                    (Constraint::Account(AccountTest::OneOf(mut a)), true),
                    (Constraint::Account(AccountTest::OneOf(b)), true),
                ) => {
                    a.extend(b);
                    Some((Constraint::Account(AccountTest::OneOf(a)), true))
                }
                _ => None,
            },
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                // `literal op column` is `column op' literal`.
                let (column, op, literal) = match (column_name(left), column_name(right)) {
                    (Some(c), None) => (c, *op, literal(right)?),
                    (None, Some(c)) => (c, op.swap()?, literal(left)?),
                    _ => return None,
                };
                match (column, op) {
                    ("metric", Operator::Eq) => {
                        Some((Constraint::Metric(vec![text(literal)?]), true))
                    }
                    ("account", Operator::Eq) => Some((
                        Constraint::Account(AccountTest::OneOf(vec![text(literal)?])),
                        true,
                    )),
                    ("account", Operator::RegexMatch) => {
                        let re = regex::Regex::new(&text(literal)?).ok()?;
                        Some((Constraint::Account(AccountTest::Regex(re)), true))
                    }
                    ("time", op) => time_bound(op, literal),
                    _ => None,
                }
            }
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) => {
                let names = list
                    .iter()
                    .map(|e| literal(e).and_then(text))
                    .collect::<Option<Vec<_>>>()?;
                match column_name(expr)? {
                    "metric" => Some((Constraint::Metric(names), true)),
                    "account" => Some((Constraint::Account(AccountTest::OneOf(names)), true)),
                    _ => None,
                }
            }
            Expr::Like(Like {
                negated: false,
                expr,
                pattern,
                escape_char: None,
                case_insensitive: false,
            }) if column_name(expr)? == "account" => {
                let pattern = text(literal(pattern)?)?;
                Some((Constraint::Account(like_test(&pattern)?), true))
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if column_name(expr)? == "time" => {
                let (Constraint::Time(lo), lo_exact) = time_bound(Operator::GtEq, literal(low)?)?
                else {
                    return None;
                };
                let (Constraint::Time(hi), hi_exact) = time_bound(Operator::LtEq, literal(high)?)?
                else {
                    return None;
                };
                Some((
                    Constraint::Time(TimeRange {
                        from: lo.from,
                        to: hi.to,
                    }),
                    lo_exact && hi_exact,
                ))
            }
            _ => None,
        }
    }
}

/// The name of the column `e` is, if it is a bare column.
fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

/// The value of `e`, if it is a literal.
fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(value, _) => Some(value),
        _ => None,
    }
}

/// The text of a string literal (not a NULL).
fn text(value: &ScalarValue) -> Option<String> {
    value.try_as_str().flatten().map(str::to_string)
}

/// The range of times `time op value` allows. Exact for a millisecond
/// literal, tally's own unit; a literal in another unit is rounded outwards
/// to whole milliseconds, so the range holds every matching point and a few
/// more, and DataFusion filters again (inexact).
fn time_bound(op: Operator, value: &ScalarValue) -> Option<(Constraint, bool)> {
    let (raw, per_ms) = match value {
        ScalarValue::TimestampMillisecond(Some(v), _) => (*v, 1),
        ScalarValue::TimestampSecond(Some(v), _) => (v.checked_mul(1000)?, 1),
        ScalarValue::TimestampMicrosecond(Some(v), _) => (*v, 1000),
        ScalarValue::TimestampNanosecond(Some(v), _) => (*v, 1_000_000),
        _ => return None,
    };
    let ms = raw.div_euclid(per_ms);
    let exact = raw.rem_euclid(per_ms) == 0;
    // In milliseconds: `from` inclusive, `to` exclusive. When the literal
    // falls inside a millisecond, the bounds take that whole millisecond.
    let after = if exact { ms.saturating_add(1) } else { ms };
    let through = ms.saturating_add(1);
    let range = match op {
        Operator::Eq => TimeRange {
            from: ms,
            to: through,
        },
        Operator::Gt => TimeRange {
            from: after,
            to: i64::MAX,
        },
        Operator::GtEq => TimeRange {
            from: ms,
            to: i64::MAX,
        },
        Operator::Lt => TimeRange {
            from: i64::MIN,
            to: if exact { ms } else { through },
        },
        Operator::LtEq => TimeRange {
            from: i64::MIN,
            to: through,
        },
        _ => return None,
    };
    Some((Constraint::Time(range), exact))
}

/// The conjunction of the constraints of a scan.
#[derive(Debug)]
struct Selection {
    /// `None` is every metric.
    metrics: Option<Vec<String>>,
    accounts: Vec<AccountTest>,
    range: TimeRange,
}

impl Selection {
    fn new(range: TimeRange) -> Selection {
        Selection {
            metrics: None,
            accounts: Vec::new(),
            range,
        }
    }

    fn add(&mut self, constraint: Constraint) {
        match constraint {
            Constraint::Metric(names) => {
                self.metrics = Some(match self.metrics.take() {
                    None => names,
                    Some(before) => before.into_iter().filter(|m| names.contains(m)).collect(),
                });
            }
            Constraint::Account(test) => self.accounts.push(test),
            Constraint::Time(r) => {
                self.range = TimeRange {
                    from: self.range.from.max(r.from),
                    to: self.range.to.min(r.to),
                };
            }
        }
    }

    /// The ids of the series selected, increasing.
    fn series(&self, snapshot: &Snapshot) -> crate::Result<Vec<u32>> {
        let dict = &snapshot.dict;
        if self.range.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<u32> = match &self.metrics {
            // The dictionary lists each metric's series: a metric filter
            // never looks at the others.
            Some(metrics) => metrics
                .iter()
                .filter_map(|m| dict.metric_id(m))
                .flat_map(|m| dict.series_of_metric(m))
                .collect(),
            None => (0..u32::try_from(dict.series_count()).unwrap_or(u32::MAX)).collect(),
        };
        if !self.accounts.is_empty() {
            ids.retain(|&id| {
                dict.series_key(id).is_some_and(|key| {
                    let account = dict.account_name(key.account);
                    self.accounts.iter().all(|t| t.accepts(account))
                })
            });
        }
        ids.sort_unstable();
        ids.dedup();
        // A damaged page of the dictionary index answers as if its entries
        // were absent; the answer would miss rows ([DX2]).
        if let Some(damage) = dict.damage() {
            return Err(damage);
        }
        Ok(ids)
    }
}

// --- the scan ----------------------------------------------------------------

/// One partition of a scan: the series `ids[span.0..span.1]`.
#[derive(Debug)]
struct PointsPartition {
    snapshot: Arc<Snapshot>,
    ids: Arc<[u32]>,
    span: (usize, usize),
    range: TimeRange,
    /// The columns asked for, as indexes into [`POINT_COLUMNS`].
    columns: Vec<usize>,
    schema: SchemaRef,
    series_read: Arc<AtomicU64>,
}

impl PartitionStream for PointsPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        // Reading and decoding is blocking work: it runs on a thread of its
        // own and hands batches over a short channel, so that a slow
        // consumer holds back the reader rather than buffering the table.
        let mut builder = RecordBatchReceiverStreamBuilder::new(Arc::clone(&self.schema), 2);
        let tx = builder.tx();
        let snapshot = Arc::clone(&self.snapshot);
        let ids = Arc::clone(&self.ids);
        let (lo, hi) = self.span;
        let range = self.range;
        let columns = self.columns.clone();
        let schema = Arc::clone(&self.schema);
        let series_read = Arc::clone(&self.series_read);
        builder.spawn_blocking(move || {
            let ids = ids.get(lo..hi).unwrap_or(&[]);
            let mut batch = BatchBuilder::new(schema, columns);
            let mut scanner: Scanner<'_, i64> = Scanner::new(
                &snapshot,
                Columns {
                    times: true,
                    values: batch.wants(VALUE),
                },
            );
            scanner.expect(ids);
            let (mut times, mut values) = (Vec::new(), Vec::new());
            for &id in ids {
                scanner
                    .read(id, range, &mut times, &mut values)
                    .map_err(external)?;
                series_read.fetch_add(1, Ordering::Relaxed);
                if times.is_empty() {
                    continue;
                }
                let key = snapshot.dict.series_key(id);
                let account = key.map_or("", |k| snapshot.dict.account_name(k.account));
                let metric = key.map_or("", |k| snapshot.dict.metrics.get(k.metric));
                batch.push(account, metric, &times, &values)?;
                if batch.rows >= BATCH_ROWS && tx.blocking_send(batch.finish()).is_err() {
                    // The consumer is gone (a LIMIT was met, or the query
                    // was cancelled): stop reading.
                    return Ok(());
                }
            }
            if batch.rows > 0 {
                // An error here is the consumer gone, as above.
                let _ = tx.blocking_send(batch.finish());
            }
            Ok(())
        });
        builder.build()
    }
}

/// The columns of one record batch being filled, only those asked for.
struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<usize>,
    accounts: ViewColumn,
    metrics: ViewColumn,
    times: Vec<i64>,
    values: Vec<i64>,
    rows: usize,
}

impl BatchBuilder {
    fn new(schema: SchemaRef, columns: Vec<usize>) -> BatchBuilder {
        BatchBuilder {
            schema,
            columns,
            accounts: ViewColumn::default(),
            metrics: ViewColumn::default(),
            times: Vec::new(),
            values: Vec::new(),
            rows: 0,
        }
    }

    fn wants(&self, column: usize) -> bool {
        self.columns.contains(&column)
    }

    fn push(
        &mut self,
        account: &str,
        metric: &str,
        times: &[i64],
        values: &[i64],
    ) -> datafusion::common::Result<()> {
        let n = times.len();
        if self.wants(ACCOUNT) {
            self.accounts.push(account, n)?;
        }
        if self.wants(METRIC) {
            self.metrics.push(metric, n)?;
        }
        if self.wants(TIME) {
            self.times.extend_from_slice(times);
        }
        if self.wants(VALUE) {
            self.values.extend_from_slice(values);
        }
        self.rows += n;
        Ok(())
    }

    /// The batch so far; the builder starts the next one empty.
    fn finish(&mut self) -> datafusion::common::Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&c| -> ArrayRef {
                match c {
                    ACCOUNT => Arc::new(self.accounts.finish()),
                    METRIC => Arc::new(self.metrics.finish()),
                    TIME => Arc::new(
                        TimestampMillisecondArray::from(std::mem::take(&mut self.times))
                            .with_timezone(UTC),
                    ),
                    _ => Arc::new(Int64Array::from(std::mem::take(&mut self.values))),
                }
            })
            .collect();
        // The row count is given for a scan that asks for no column
        // (`count(*)`), whose batches are rows without columns.
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            arrays,
            &options,
        )?)
    }
}

/// The bytes a buffer of a view column holds before the next one starts:
/// as many as a view's u32 offset can reach (a few in tests, so that they
/// cover the change of buffer).
const MAX_BLOCK_BYTES: usize = if cfg!(test) { 64 } else { u32::MAX as usize };

/// A string-view column being filled with runs of one string: a series'
/// name, once per point. Its fields are changed only by `push` and
/// `finish`, which keep the promise `finish`'s `unsafe` relies on.
#[derive(Default)]
struct ViewColumn {
    views: Vec<u128>,
    /// Full buffers of the strings longer than a view holds.
    blocks: Vec<Buffer>,
    /// The buffer being filled, block number `blocks.len()`: each long
    /// string once per run.
    data: Vec<u8>,
}

impl ViewColumn {
    /// Appends `text`, `n` times.
    fn push(&mut self, text: &str, n: usize) -> datafusion::common::Result<()> {
        let bytes = text.as_bytes();
        // A view holds a string of up to 12 bytes itself; a longer one
        // names a buffer and an offset in it, both u32.
        let view = if bytes.len() <= 12 {
            make_view(bytes, 0, 0)
        } else {
            let len = u32::try_from(bytes.len()).map_err(|_| {
                DataFusionError::Execution(format!(
                    "a name of {} bytes is longer than an Arrow string can be",
                    bytes.len()
                ))
            })?;
            if !self.data.is_empty() && self.data.len() + bytes.len() > MAX_BLOCK_BYTES {
                self.blocks
                    .push(Buffer::from_vec(std::mem::take(&mut self.data)));
            }
            let block = u32::try_from(self.blocks.len()).map_err(|_| {
                DataFusionError::Execution(
                    "a batch's names need more string buffers than Arrow can number".to_string(),
                )
            })?;
            // `data` is now empty, or its length plus `len` is at most
            // MAX_BLOCK_BYTES, so the offset and its end fit in a u32.
            let offset = u32::try_from(self.data.len()).map_err(|_| {
                DataFusionError::Execution("a string buffer passed 4 GiB".to_string())
            })?;
            debug_assert!(offset.checked_add(len).is_some());
            self.data.extend_from_slice(bytes);
            make_view(bytes, block, offset)
        };
        self.views.extend(std::iter::repeat_n(view, n));
        Ok(())
    }

    /// The column so far; the next one starts empty.
    fn finish(&mut self) -> StringViewArray {
        let views = ScalarBuffer::from(std::mem::take(&mut self.views));
        let mut blocks = std::mem::take(&mut self.blocks);
        blocks.push(Buffer::from_vec(std::mem::take(&mut self.data)));
        // SAFETY: every view was made by `make_view` from the bytes of a
        // `&str`: an inline one holds valid UTF-8 of its length, and a
        // longer one names the block and offset its bytes were copied to,
        // with their length, within that block (`push`). Blocks are only
        // ever added at the end, so block numbers stay right.
        // `StringViewArray::try_new` would check all this again on every
        // row, which costs about as much as the rest of the column
        // building.
        unsafe { StringViewArray::new_unchecked(views, blocks, None) }
    }
}

#[cfg(test)]
mod tests {
    use super::ViewColumn;
    use arrow_array::Array;

    #[test]
    fn a_view_column_holds_runs_of_short_and_long_names() {
        let runs = [
            ("acct_1", 3),
            ("a name longer than twelve bytes", 2),
            ("", 1),
            ("exactly12byt", 2),
            ("thirteen byte", 1),
            ("a name longer than twelve bytes", 1),
            ("ünïcödé names, long enough", 2),
        ];
        let mut column = ViewColumn::default();
        // Two batches from one column: `finish` must leave it empty and
        // ready for the next.
        for _ in 0..2 {
            for (name, n) in runs {
                column.push(name, n).unwrap();
            }
            let array = column.finish();
            let expected: Vec<&str> = runs
                .iter()
                .flat_map(|&(name, n)| std::iter::repeat_n(name, n))
                .collect();
            assert_eq!(array.len(), expected.len());
            let got: Vec<&str> = (0..array.len()).map(|i| array.value(i)).collect();
            assert_eq!(got, expected);
            // Long names are spread over several buffers (MAX_BLOCK_BYTES
            // is small in tests).
            assert!(array.data_buffers().len() >= 2);
            // What `try_new` would have checked, once here.
            arrow_array::StringViewArray::try_new(
                array.views().clone(),
                array.data_buffers().to_vec(),
                None,
            )
            .unwrap();
        }
    }
}
