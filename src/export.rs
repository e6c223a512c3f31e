//! `tally export`, behind the `arrow` feature: a database's points, or a
//! query's table, as Parquet files (zstd) that DuckDB, Polars, pandas and
//! Spark read directly (docs/export.md).
//!
//! This module owns the layout of an export: the files
//! `part-00000.parquet` … one per partition, each account in exactly one
//! of them ([`partition_of`]: FNV-1a 64 of the account's UTF-8 bytes,
//! modulo the number of partitions), rows sorted by account and then time
//! within each file. The columns and their types are those of
//! `crate::output::arrow`, the same as `tally query --format arrow`.
//!
//! The points are streamed: each partition's series are sorted by name,
//! cut into chunks of about [`CHUNK_POINTS`] points, and each chunk is read
//! in series-id order (the order segments store series in, which is what
//! makes reading fast), reordered by account and time and written as one
//! row group. Memory is a chunk per thread, whatever the database's size.
//! Partitions are written in parallel on the rayon pool.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::Db;
use crate::db::snapshot::{Scanner, Snapshot, TimeRange};
use crate::error::{Error, Result};
use crate::output::arrow::{BATCH_ROWS, record_batch, schema};
use crate::query::{Query, Table, Value};
use crate::storage::segment::Columns;

/// The columns of a points export: those of a selector's table.
const POINT_COLUMNS: [&str; 4] = ["account", "metric", "time", "value"];

/// Points read per chunk, and so rows per row group: 16 MiB of times and
/// values per thread while a chunk is reordered, and row groups of the
/// size Parquet readers are tuned for.
pub(crate) const CHUNK_POINTS: usize = 1 << 20;

/// What `tally export` was asked to do.
#[derive(Debug)]
pub(crate) struct ExportConfig {
    /// The directory the files go into: created if missing, and it must be
    /// empty, so that no file of an earlier export is mistaken for one of
    /// this one.
    pub out: PathBuf,
    /// How many files, at least 1.
    pub partitions: u32,
    /// The query whose table is exported; `None` exports every point.
    pub query: Option<Query>,
    /// Only points in this range are exported, or seen by the query.
    pub range: TimeRange,
    /// Points per chunk of a points export ([`CHUNK_POINTS`]; the tests
    /// make it small to cut many chunks).
    pub chunk_points: usize,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportSummary {
    /// The files, in partition order.
    pub files: Vec<PathBuf>,
    /// Rows written, over all files.
    pub rows: u64,
    /// Bytes written, over all files.
    pub bytes: u64,
    /// The query's notices, for the caller to print.
    pub notices: Vec<crate::Notice>,
}

/// The partition of an account among `partitions` (at least 1): the
/// shard hash of docs/scale-out.md, [SO1] (FNV-1a 64 of its UTF-8 bytes,
/// modulo `partitions`), so that export files and shards line up.
pub(crate) fn partition_of(account: &str, partitions: u32) -> u32 {
    crate::shard::part_of(account.as_bytes(), partitions)
}

/// The name of partition `i`'s file.
pub(crate) fn file_name(i: u32) -> String {
    format!("part-{i:05}.parquet")
}

/// Runs an export.
pub(crate) fn export(db: &Db, config: &ExportConfig) -> Result<ExportSummary> {
    if config.partitions == 0 {
        return Err(Error::Invalid(
            "--partitions must be at least 1".to_string(),
        ));
    }
    prepare_dir(&config.out)?;
    let snapshot = db.snapshot();
    let (outcomes, notices) = match &config.query {
        None => (export_points(&snapshot, config)?, Vec::new()),
        Some(query) => {
            let table = query.clone().range(config.range).run_on(&snapshot)?;
            let notices = table.notices().to_vec();
            (export_table(&table, config)?, notices)
        }
    };
    let mut summary = ExportSummary {
        files: Vec::with_capacity(outcomes.len()),
        rows: 0,
        bytes: 0,
        notices,
    };
    for (path, rows, bytes) in outcomes {
        summary.files.push(path);
        summary.rows += rows;
        summary.bytes += bytes;
    }
    Ok(summary)
}

/// Creates `dir` if it is missing and checks that it is an empty directory.
fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    if entries.next().is_some() {
        return Err(Error::Invalid(format!(
            "{} is not empty; export into a new or empty directory",
            dir.display()
        )));
    }
    Ok(())
}

/// What writing one file gave: its path, rows and bytes.
type Outcome = (PathBuf, u64, u64);

/// One partition's Parquet file, written under a temporary name and
/// renamed when complete, so that a reader globbing `*.parquet` never sees
/// half a file.
struct PartWriter {
    path: PathBuf,
    partial: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    rows: u64,
}

impl PartWriter {
    fn create(dir: &Path, partition: u32, schema: &SchemaRef) -> Result<PartWriter> {
        let path = dir.join(file_name(partition));
        let partial = dir.join(format!("{}.partial", file_name(partition)));
        let file = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(CHUNK_POINTS.max(1)))
            .set_created_by(format!("tally {}", env!("CARGO_PKG_VERSION")))
            // The metric column has a handful of values, found through its
            // dictionary; its minimum and maximum, compared on every row,
            // cost more than they help. The account's are kept: the rows
            // are sorted by account, so they let a reader skip every row
            // group but one when it looks for one account.
            .set_column_statistics_enabled(ColumnPath::from("metric"), EnabledStatistics::None);
        // Counts and times are delta-encoded rather than put in a
        // dictionary: within an account they move in small steps, which
        // deltas store in a few bits, while a dictionary would hash every
        // value (the most expensive step of the export when it did) and
        // give up on counts, which rarely repeat. Names keep the
        // dictionary: an account repeats on every one of its rows.
        for field in schema.fields() {
            if matches!(field.data_type(), DataType::Int64 | DataType::Timestamp(..)) {
                let column = ColumnPath::from(field.name().as_str());
                props = props
                    .set_column_dictionary_enabled(column.clone(), false)
                    .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
            }
        }
        let props = props.build();
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            Arc::clone(schema),
            Some(props),
        )
        .map_err(|e| parquet_error(&partial, e))?;
        Ok(PartWriter {
            path,
            partial,
            writer,
            rows: 0,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| parquet_error(&self.partial, e))
    }

    /// Ends the current row group, so that it holds one chunk.
    fn flush(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(|e| parquet_error(&self.partial, e))
    }

    fn finish(self) -> Result<Outcome> {
        let PartWriter {
            path,
            partial,
            writer,
            rows,
        } = self;
        let file = writer
            .into_inner()
            .map_err(|e| parquet_error(&partial, e))?
            .into_inner()
            .map_err(|e| Error::io(&partial, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&partial, e))?;
        let bytes = file.metadata().map_err(|e| Error::io(&partial, e))?.len();
        drop(file);
        std::fs::rename(&partial, &path).map_err(|e| Error::io(&path, e))?;
        Ok((path, rows, bytes))
    }
}

/// A Parquet writer's error, named by the file: an I/O error as one,
/// anything else as a sentence.
fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => Error::io(path, *io),
                Err(other) => Error::Invalid(format!("{}: {other}", path.display())),
            }
        }
        other => Error::Invalid(format!("{}: cannot write Parquet: {other}", path.display())),
    }
}

// --- a query's table ---------------------------------------------------------

/// Writes a query's table. A table with an `account` column is partitioned
/// by account and sorted by account and then its time column (`time`,
/// `start` or `bucket`), keeping the query's order among equal keys; a
/// table without one (`count`, `sum`, `summarize`) is written whole, in its
/// own order, as partition 0, and the other partitions' files are empty.
fn export_table(table: &Table, config: &ExportConfig) -> Result<Vec<Outcome>> {
    let n = config.partitions;
    let columns = table.columns();
    let schema = schema(columns);
    let account = columns.iter().position(|c| c == "account");
    let time = ["time", "start", "bucket"]
        .iter()
        .find_map(|name| columns.iter().position(|c| c == name));
    let mut parts: Vec<Vec<&Vec<Value>>> = vec![Vec::new(); n as usize];
    for row in table.rows() {
        let p = match account.and_then(|i| row.get(i)).and_then(Value::as_str) {
            Some(name) => partition_of(name, n),
            None => 0,
        };
        if let Some(part) = parts.get_mut(p as usize) {
            part.push(row);
        }
    }
    if account.is_some() {
        for part in &mut parts {
            // A stable sort: rows equal in both keep the query's order.
            part.sort_by(|a, b| {
                let get = |i: Option<usize>| (i.and_then(|i| a.get(i)), i.and_then(|i| b.get(i)));
                let (aa, ba) = get(account);
                let (at, bt) = get(time);
                (aa, at).cmp(&(ba, bt))
            });
        }
    }
    parts
        .into_par_iter()
        .enumerate()
        .map(|(p, rows)| {
            let mut writer = PartWriter::create(&config.out, p as u32, &schema)?;
            for chunk in rows.chunks(BATCH_ROWS) {
                let batch = record_batch(&schema, chunk)
                    .map_err(|e| Error::Invalid(format!("{}: {e}", writer.partial.display())))?;
                writer.write(&batch)?;
            }
            writer.finish()
        })
        .collect()
}

// --- every point, streamed ---------------------------------------------------

/// A series to export, by name.
#[derive(Debug, Clone, Copy)]
struct SeriesRef<'a> {
    account: &'a str,
    metric: &'a str,
    id: u32,
}

/// Writes every point in the range: each partition's series sorted by
/// (account, metric), cut into chunks at account boundaries.
fn export_points(snapshot: &Snapshot, config: &ExportConfig) -> Result<Vec<Outcome>> {
    let n = config.partitions;
    let dict = &snapshot.dict;
    let mut parts: Vec<Vec<SeriesRef<'_>>> = vec![Vec::new(); n as usize];
    let count = u32::try_from(dict.series_count()).unwrap_or(u32::MAX);
    for id in 0..count {
        let Some(key) = dict.series_key(id) else {
            continue;
        };
        let account = dict.account_name(key.account);
        let series = SeriesRef {
            account,
            metric: dict.metrics.get(key.metric),
            id,
        };
        if let Some(part) = parts.get_mut(partition_of(account, n) as usize) {
            part.push(series);
        }
    }
    // A damaged page of the dictionary index makes its lookups answer as
    // if the entry were absent; the export would then miss points ([DX2]).
    if let Some(damage) = dict.damage() {
        return Err(damage);
    }
    // The manifest's count of points, over the series, sizes the chunks;
    // it is an estimate (overwritten points count until a compaction).
    let points: u64 = snapshot.manifest.segments.iter().map(|s| s.points).sum();
    let per_series = (points / u64::from(count.max(1))).max(1);
    let series_per_chunk = usize::try_from(config.chunk_points as u64 / per_series)
        .unwrap_or(1)
        .max(1);
    let schema = schema(&POINT_COLUMNS);
    parts
        .into_par_iter()
        .enumerate()
        .map(|(p, mut series)| {
            series.sort_unstable_by(|a, b| (a.account, a.metric).cmp(&(b.account, b.metric)));
            let mut writer = PartWriter::create(&config.out, p as u32, &schema)?;
            let mut chunk = ChunkBuf::default();
            let mut rest = series.as_slice();
            while !rest.is_empty() {
                // Cut after `series_per_chunk` series, moved on to the end
                // of the account so that an account is never split.
                let mut end = series_per_chunk.min(rest.len());
                while let (Some(last), Some(next)) = (rest.get(end - 1), rest.get(end)) {
                    if last.account != next.account {
                        break;
                    }
                    end += 1;
                }
                let (this, next) = rest.split_at(end);
                chunk.read(snapshot, this, config.range)?;
                chunk.write(this, &schema, &mut writer)?;
                writer.flush()?;
                rest = next;
            }
            writer.finish()
        })
        .collect()
}

/// The points of one chunk's series, read in id order: series `i` of the
/// chunk owns `times[spans[i].0..spans[i].1]` and the same of `values`.
#[derive(Default)]
struct ChunkBuf {
    spans: Vec<(usize, usize)>,
    times: Vec<i64>,
    values: Vec<i64>,
    order: Vec<usize>,
    read_times: Vec<i64>,
    read_values: Vec<i64>,
}

impl ChunkBuf {
    fn read(
        &mut self,
        snapshot: &Snapshot,
        series: &[SeriesRef<'_>],
        range: TimeRange,
    ) -> Result<()> {
        self.spans.clear();
        self.spans.resize(series.len(), (0, 0));
        self.times.clear();
        self.values.clear();
        self.order.clear();
        self.order.extend(0..series.len());
        self.order
            .sort_unstable_by_key(|&i| series.get(i).map_or(u32::MAX, |s| s.id));
        // Values are decoded straight into i64, as queries read them: the
        // segment reader checks each against its entry's bounds, which are
        // at most i64::MAX ([S2]).
        let mut scanner: Scanner<'_, i64> = Scanner::new(snapshot, Columns::BOTH);
        for &i in &self.order {
            let Some(s) = series.get(i) else { continue };
            scanner.read(s.id, range, &mut self.read_times, &mut self.read_values)?;
            let lo = self.times.len();
            self.times.extend_from_slice(&self.read_times);
            self.values.extend_from_slice(&self.read_values);
            if let Some(span) = self.spans.get_mut(i) {
                *span = (lo, self.times.len());
            }
        }
        Ok(())
    }

    /// The times and values at `lo..hi` (empty if out of bounds).
    fn span(&self, lo: usize, hi: usize) -> (&[i64], &[i64]) {
        (
            self.times.get(lo..hi).unwrap_or(&[]),
            self.values.get(lo..hi).unwrap_or(&[]),
        )
    }

    /// Writes the chunk's rows sorted by account, then time, then metric
    /// (the series are sorted by account and metric, so the series of one
    /// account are adjacent and merged by time), in batches of at most
    /// [`BATCH_ROWS`].
    fn write(
        &self,
        series: &[SeriesRef<'_>],
        schema: &SchemaRef,
        writer: &mut PartWriter,
    ) -> Result<()> {
        let mut batch = PointBatch::new();
        let mut start = 0;
        while start < series.len() {
            let account = series.get(start).map_or("", |s| s.account);
            let mut end = start + 1;
            while series.get(end).is_some_and(|s| s.account == account) {
                end += 1;
            }
            // Cursors into the account's series: (next position, end, metric).
            let mut heads: Vec<(usize, usize, &str)> = (start..end)
                .filter_map(|i| {
                    let (lo, hi) = *self.spans.get(i)?;
                    Some((lo, hi, series.get(i)?.metric))
                })
                .filter(|(lo, hi, _)| lo < hi)
                .collect();
            loop {
                // The account's last series left: its points in one go, up
                // to the batch's end.
                if let [(lo, hi, metric)] = heads.as_mut_slice() {
                    let take = (*hi - *lo).min(BATCH_ROWS - batch.len());
                    let (times, values) = self.span(*lo, *lo + take);
                    batch.extend(account, metric, times, values);
                    *lo += take;
                    if *lo >= *hi {
                        heads.clear();
                    }
                    if batch.len() >= BATCH_ROWS {
                        writer.write(&batch.take(schema, writer)?)?;
                    }
                    continue;
                }
                // Two series left (the usual case: two metrics), merged with
                // two cursors; on a tie the first, the smaller metric name.
                if let [first, second] = heads.as_mut_slice() {
                    let room = BATCH_ROWS - batch.len();
                    let (a_times, a_values) = self.span(first.0, first.1);
                    let (b_times, b_values) = self.span(second.0, second.1);
                    let (mut i, mut j) = (0, 0);
                    while i + j < room {
                        match (a_times.get(i), b_times.get(j)) {
                            (Some(&ta), Some(&tb)) if tb < ta => {
                                let v = b_values.get(j).copied().unwrap_or(0);
                                batch.push(account, second.2, tb, v);
                                j += 1;
                            }
                            (Some(&ta), Some(_)) => {
                                let v = a_values.get(i).copied().unwrap_or(0);
                                batch.push(account, first.2, ta, v);
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    first.0 += i;
                    second.0 += j;
                    heads.retain(|(lo, hi, _)| lo < hi);
                    if batch.len() >= BATCH_ROWS {
                        writer.write(&batch.take(schema, writer)?)?;
                    }
                    continue;
                }
                // More series: the head with the earliest time; on a tie the
                // first, which is the smaller metric name.
                let mut best: Option<(usize, i64)> = None;
                for (k, &(pos, _, _)) in heads.iter().enumerate() {
                    let Some(&t) = self.times.get(pos) else {
                        continue;
                    };
                    if best.is_none_or(|(_, bt)| t < bt) {
                        best = Some((k, t));
                    }
                }
                let Some((k, time)) = best else { break };
                let Some(head) = heads.get_mut(k) else { break };
                let value = self.values.get(head.0).copied().unwrap_or(0);
                batch.push(account, head.2, time, value);
                head.0 += 1;
                // `retain` keeps the others in metric order, which the tie
                // rule relies on.
                heads.retain(|(lo, hi, _)| lo < hi);
                if batch.len() >= BATCH_ROWS {
                    writer.write(&batch.take(schema, writer)?)?;
                }
            }
            start = end;
        }
        if batch.len() > 0 {
            writer.write(&batch.take(schema, writer)?)?;
        }
        Ok(())
    }
}

/// The columns of a batch of points being built.
struct PointBatch {
    accounts: StringBuilder,
    metrics: StringBuilder,
    times: Vec<i64>,
    values: Vec<i64>,
}

impl PointBatch {
    fn new() -> PointBatch {
        PointBatch {
            accounts: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16),
            metrics: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8),
            times: Vec::with_capacity(BATCH_ROWS),
            values: Vec::with_capacity(BATCH_ROWS),
        }
    }

    fn len(&self) -> usize {
        self.times.len()
    }

    fn push(&mut self, account: &str, metric: &str, time: i64, value: i64) {
        self.accounts.append_value(account);
        self.metrics.append_value(metric);
        self.times.push(time);
        self.values.push(value);
    }

    /// Appends one series' points, `times` and `values` of equal length.
    fn extend(&mut self, account: &str, metric: &str, times: &[i64], values: &[i64]) {
        for _ in 0..times.len() {
            self.accounts.append_value(account);
            self.metrics.append_value(metric);
        }
        self.times.extend_from_slice(times);
        self.values.extend_from_slice(values);
    }

    /// The batch built so far; the builders start again empty.
    fn take(&mut self, schema: &SchemaRef, writer: &PartWriter) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.accounts.finish()),
            Arc::new(self.metrics.finish()),
            Arc::new(
                TimestampMillisecondArray::from(std::mem::take(&mut self.times))
                    .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(std::mem::take(&mut self.values))),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns)
            .map_err(|e| Error::Invalid(format!("{}: {e}", writer.partial.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// A point as a row of a file: account, metric, time, value.
    type Row = (String, String, i64, i64);

    /// Every file's rows, and its number of row groups.
    fn read(dir: &Path, n: u32) -> Vec<(Vec<Row>, usize)> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Int64Type, TimestampMillisecondType};
        (0..n)
            .map(|i| {
                let file = File::open(dir.join(file_name(i))).unwrap();
                let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
                let groups = builder.metadata().num_row_groups();
                let mut rows = Vec::new();
                for batch in builder.build().unwrap() {
                    let b = batch.unwrap();
                    let (a, m) = (
                        b.column(0).as_string::<i32>(),
                        b.column(1).as_string::<i32>(),
                    );
                    let t = b.column(2).as_primitive::<TimestampMillisecondType>();
                    let v = b.column(3).as_primitive::<Int64Type>();
                    for r in 0..b.num_rows() {
                        rows.push((
                            a.value(r).to_string(),
                            m.value(r).to_string(),
                            t.value(r),
                            v.value(r),
                        ));
                    }
                }
                (rows, groups)
            })
            .collect()
    }

    #[test]
    fn small_chunks_give_the_same_rows_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        // Two commits, so that series span segments; three metrics, one of
        // them on every third account only, and times that interleave.
        for (commit, hours) in [(0, 0..10), (1, 5..20)] {
            let mut w = db.writer().unwrap();
            for a in 0..50 {
                let account = format!("a{:02}", (a * 7) % 50);
                for h in hours.clone() {
                    w.append(
                        &account,
                        "followers",
                        h * 1000,
                        (a * 100 + h) as u64 + commit,
                    )
                    .unwrap();
                    // Half the accounts' two metrics share their times.
                    let t = h * 1000 + if a % 2 == 0 { 0 } else { 500 };
                    w.append(&account, "following", t, h as u64).unwrap();
                    if a % 3 == 0 {
                        w.append(&account, "likes", h * 1000, 7).unwrap();
                    }
                }
            }
            w.commit().unwrap();
        }
        let config = |out: &str, chunk_points: usize| ExportConfig {
            out: dir.path().join(out),
            partitions: 3,
            query: None,
            range: TimeRange::ALL,
            chunk_points,
        };
        let one = export(&db, &config("one", CHUNK_POINTS)).unwrap();
        let small = export(&db, &config("small", 7)).unwrap();
        assert_eq!(one.rows, small.rows);
        assert_eq!(one.rows, 50 * 20 * 2 + 17 * 20);
        let (one, small) = (
            read(&dir.path().join("one"), 3),
            read(&dir.path().join("small"), 3),
        );
        for ((rows_one, groups_one), (rows_small, groups_small)) in one.iter().zip(&small) {
            assert_eq!(rows_one, rows_small);
            assert_eq!(*groups_one, 1);
            assert!(*groups_small > 3, "{groups_small}");
            // Account, then time, then metric.
            assert!(
                rows_one
                    .windows(2)
                    .all(|w| (&w[0].0, w[0].2, &w[0].1) < (&w[1].0, w[1].2, &w[1].1))
            );
        }
        // The second commit's value won where both wrote.
        let all: Vec<_> = one.iter().flat_map(|(rows, _)| rows.iter()).collect();
        assert!(
            all.iter()
                .any(|r| r.1 == "followers" && r.2 == 5000 && r.3 % 100 == 6)
        );
        assert!(
            !all.iter()
                .any(|r| r.1 == "followers" && r.2 == 5000 && r.3 % 100 == 5)
        );
    }

    #[test]
    fn fnv1a_partitions_are_stable() {
        // FNV-1a 64 of "" is the offset basis, of "a" 0xaf63dc4c8601ec8c:
        // the published test vectors.
        assert_eq!(
            partition_of("", u32::MAX),
            (0xcbf2_9ce4_8422_2325u64 % u64::from(u32::MAX)) as u32
        );
        assert_eq!(
            partition_of("a", 1_000_000),
            (0xaf63_dc4c_8601_ec8cu64 % 1_000_000) as u32
        );
        assert_eq!(partition_of("kavenlo", 1), 0);
        assert_eq!(partition_of("kavenlo", 0), 0);
        assert_eq!(file_name(7), "part-00007.parquet");
    }
}
