//! SQL over a tally database, through Apache DataFusion, behind the
//! `datafusion` feature (docs/sql.md).
//!
//! This module owns the SQL session: what it can read, and how its answers
//! and its errors come back to tally. A session sees one committed state of
//! the database and has
//! - the table `points` (`points.rs`): every point, with filters on
//!   `metric`, `account` and `time` pushed down into tally's own selection;
//! - the table function `tally('QUERY')` (`function.rs`): the table of a
//!   query in tally's own language;
//! - any Parquet, CSV, JSON or Arrow file named by its path in FROM
//!   (`FROM 'accounts.parquet'`), read by DataFusion itself.
//!
//! Statements that would change anything (DDL, `COPY`, `INSERT`, `SET`) are
//! refused: `tally sql` only reads. A result is record batches; the CLI
//! prints them through the same printers as `tally query`
//! ([`table_of`] turns them into tally's [`Table`]), or as an Arrow stream.

mod function;
mod points;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::compute::cast;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};

use crate::Notice;
use crate::db::Db;
use crate::db::snapshot::{Snapshot, TimeRange};
use crate::query::{Table, Value};

/// The answer to a SQL statement.
#[derive(Debug)]
pub(crate) struct SqlAnswer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The notices of the tally queries it ran (`tally('…')`).
    pub notices: Vec<Notice>,
}

impl SqlAnswer {
    /// The answer with its columns of string views (`points`' names, and
    /// the strings of Parquet files DataFusion reads) as plain `Utf8`, the
    /// type `tally query --format arrow` and `tally export` write, which
    /// every Arrow reader knows (docs/sql.md, "Output"). Views nested in another
    /// type (a list from `array_agg`) are left as they are.
    pub(crate) fn with_plain_strings(&self) -> Result<SqlAnswer, arrow_schema::ArrowError> {
        let plain = |t: &DataType| match t {
            DataType::Utf8View => DataType::Utf8,
            other => other.clone(),
        };
        let fields: Vec<arrow_schema::Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_data_type(plain(f.data_type())))
            .collect();
        let schema = Arc::new(arrow_schema::Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ));
        let batches = self
            .batches
            .iter()
            .map(|batch| {
                let columns = batch
                    .columns()
                    .iter()
                    .map(|c| match c.data_type() {
                        DataType::Utf8View => cast(c, &DataType::Utf8),
                        _ => Ok(Arc::clone(c)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let options =
                    arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                RecordBatch::try_new_with_options(Arc::clone(&schema), columns, &options)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqlAnswer {
            schema,
            batches,
            notices: self.notices.clone(),
        })
    }
}

/// Why a SQL statement gave no answer.
#[derive(Debug)]
pub(crate) enum SqlFailure {
    /// tally's own error: a query inside `tally('…')` that does not parse
    /// or check (its caret message), or a damaged file.
    Tally(crate::Error),
    /// The statement is wrong: it does not parse, names a table or column
    /// that does not exist, mixes types, or would write. A sentence, with a
    /// caret under the SQL where DataFusion says where.
    Statement(String),
    /// It failed while running.
    Run(String),
}

/// A SQL session over the committed state `db` holds now. `range` is
/// `--from`/`--to`: no point outside it is seen, by `points` or by
/// `tally('…')`.
fn session(
    snapshot: Arc<Snapshot>,
    range: TimeRange,
    notices: Arc<Mutex<Vec<Notice>>>,
) -> Result<SessionContext, DataFusionError> {
    let config = SessionConfig::new().with_information_schema(false);
    let ctx = SessionContext::new_with_config(config).enable_url_table();
    ctx.register_table(
        "points",
        Arc::new(points::PointsTable::new(Arc::clone(&snapshot), range)),
    )?;
    ctx.register_udtf(
        "tally",
        Arc::new(function::TallyFunction::new(snapshot, range, notices)),
    );
    Ok(ctx)
}

/// Runs one SQL statement on `db` and returns its whole answer.
pub(crate) fn run(db: &Db, sql: &str, range: TimeRange) -> Result<SqlAnswer, SqlFailure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| SqlFailure::Run(format!("cannot start the SQL engine's threads: {e}")))?;
    let notices = Arc::new(Mutex::new(Vec::new()));
    let ctx = session(db.snapshot(), range, Arc::clone(&notices)).map_err(|e| failure(e, sql))?;
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let (schema, batches) = runtime
        .block_on(async {
            let frame = ctx.sql_with_options(sql, read_only).await?;
            let schema = Arc::clone(frame.schema().inner());
            let batches = frame.collect().await?;
            Ok::<_, DataFusionError>((schema, batches))
        })
        .map_err(|e| failure(e, sql))?;
    let notices = notices.lock().map(|n| n.clone()).unwrap_or_default();
    Ok(SqlAnswer {
        schema,
        batches,
        notices,
    })
}

/// Sorts a DataFusion error into a [`SqlFailure`], taking tally's own
/// errors back out of the wrapping DataFusion put around them.
fn failure(e: DataFusionError, sql: &str) -> SqlFailure {
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            failure(*inner, sql)
        }
        DataFusionError::External(inner) => match inner.downcast::<crate::Error>() {
            Ok(tally) => SqlFailure::Tally(*tally),
            Err(other) => SqlFailure::Run(other.to_string()),
        },
        DataFusionError::SQL(parser, _) => SqlFailure::Statement(with_caret(
            sql,
            &format!("the SQL does not parse: {}", plain(&parser.to_string())),
        )),
        DataFusionError::Plan(message) | DataFusionError::NotImplemented(message) => {
            SqlFailure::Statement(format!("the SQL cannot run: {message}"))
        }
        DataFusionError::SchemaError(..) => {
            SqlFailure::Statement(format!("the SQL cannot run: {}", plain(&e.to_string())))
        }
        // An error shared between partitions cannot be taken apart; its
        // root says what happened, without DataFusion's prefixes.
        DataFusionError::Shared(shared) => SqlFailure::Run(match shared.find_root() {
            DataFusionError::External(inner) => inner.to_string(),
            root => root.to_string(),
        }),
        other => SqlFailure::Run(other.to_string()),
    }
}

/// A message without the prefix sqlparser and DataFusion put before it.
fn plain(message: &str) -> &str {
    ["sql parser error: ", "Schema error: "]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .unwrap_or(message)
}

/// `message`, followed by the SQL's line it names (`at Line: L, Column: C`,
/// as sqlparser says where) with a caret under the column.
fn with_caret(sql: &str, message: &str) -> String {
    let at = regex::Regex::new(r"at Line: (\d+), Column: (\d+)")
        .ok()
        .and_then(|re| re.captures(message))
        .and_then(|c| {
            let line: usize = c.get(1)?.as_str().parse().ok()?;
            let column: usize = c.get(2)?.as_str().parse().ok()?;
            Some((line, column))
        });
    // sqlparser gives no place for "found: EOF": the statement ended too
    // soon, so the caret goes just after its last character.
    let at = at.or_else(|| {
        if !message.contains("found: EOF") {
            return None;
        }
        let lines = sql.lines().count().max(1);
        let last = sql.lines().last().unwrap_or("");
        Some((lines, last.trim_end().chars().count() + 1))
    });
    let Some((line, column)) = at else {
        return message.to_string();
    };
    let Some(text) = sql.lines().nth(line.saturating_sub(1)) else {
        return message.to_string();
    };
    // Columns count characters from 1; the caret is placed under the
    // character, tabs kept so that it lines up in a terminal.
    let pad: String = text
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{message}\n  {text}\n  {pad}^")
}

/// A SQL answer as tally's [`Table`], for the table, CSV and JSON printers.
/// Texts stay texts, integers are counts, timestamps are times (to the
/// millisecond, tally's unit) and two-decimal numbers percentages, as in
/// tally's own tables; any other type (a float, a boolean, …) is its text
/// as DataFusion prints it, and a NULL the empty text.
pub(crate) fn table_of(answer: &SqlAnswer) -> crate::Result<Table> {
    let columns: Vec<&str> = answer
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for batch in &answer.batches {
        let start = rows.len();
        rows.extend((0..batch.num_rows()).map(|_| Vec::with_capacity(columns.len())));
        for array in batch.columns() {
            let cells = values(array).map_err(|e| {
                crate::Error::Invalid(format!("the SQL's answer cannot be printed: {e}"))
            })?;
            for (row, cell) in rows.iter_mut().skip(start).zip(cells) {
                row.push(cell);
            }
        }
    }
    Ok(Table::new(columns, rows))
}

/// The cells of one column.
fn values(array: &ArrayRef) -> Result<Vec<Value>, datafusion::arrow::error::ArrowError> {
    let n = array.len();
    let text_of = |array: &ArrayRef| -> Result<Vec<Value>, datafusion::arrow::error::ArrowError> {
        let options = FormatOptions::default();
        let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
        Ok((0..n)
            .map(|i| {
                Value::Text(if array.is_null(i) {
                    String::new()
                } else {
                    formatter.value(i).to_string()
                })
            })
            .collect::<Vec<_>>())
    };
    let numbers = |array: &ArrayRef, wrap: fn(i64) -> Value| -> Vec<Value> {
        let ints = array.as_primitive::<Int64Type>();
        (0..n)
            .map(|i| {
                if ints.is_null(i) {
                    Value::Text(String::new())
                } else {
                    wrap(ints.value(i))
                }
            })
            .collect()
    };
    Ok(match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let strings = cast(array, &DataType::Utf8)?;
            let strings = strings.as_string::<i32>();
            (0..n)
                .map(|i| Value::Text(strings.value(i).to_string()))
                .collect()
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => numbers(&cast(array, &DataType::Int64)?, Value::Int),
        DataType::Timestamp(..) => {
            let ms = cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            let ms = ms.as_primitive::<TimestampMillisecondType>();
            (0..n)
                .map(|i| {
                    if ms.is_null(i) {
                        Value::Text(String::new())
                    } else {
                        Value::Time(ms.value(i))
                    }
                })
                .collect()
        }
        DataType::Decimal128(_, 2) => {
            let hundredths = array.as_primitive::<Decimal128Type>();
            (0..n)
                .map(|i| match i64::try_from(hundredths.value(i)) {
                    Ok(v) if !hundredths.is_null(i) => Value::Percent(v),
                    _ => Value::Text(if hundredths.is_null(i) {
                        String::new()
                    } else {
                        hundredths.value_as_string(i)
                    }),
                })
                .collect()
        }
        _ => text_of(array)?,
    })
}
