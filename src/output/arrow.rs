//! The Arrow form of a result table, behind the `arrow` feature: the type
//! of each column, the record batches of a table's rows, and the printer of
//! `tally query --format arrow`, an Arrow IPC stream. `tally export` writes
//! the same schema and batches into Parquet (`crate::export`).
//!
//! A column's Arrow type follows from its name, as every other format's
//! does ([`ColumnType`]): names are `Utf8`, counts `Int64`, times
//! `Timestamp(Millisecond, "UTC")` (tally's own unit) and percentages
//! `Decimal128(20, 2)`, exactly the hundredths tally computes and prints
//! (`5.05`). No column is nullable: every cell of a tally table has a value.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Decimal128Array, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use super::Printer;
use crate::query::{ColumnType, Table, Value};

/// Rows per record batch: large enough that per-batch costs vanish, small
/// enough that a reader can start on the first batch before the last one
/// is built.
pub(crate) const BATCH_ROWS: usize = 64 * 1024;

/// The time zone of every time column: tally's times are instants, printed
/// in UTC.
pub(crate) const UTC: &str = "UTC";

/// Digits of a percentage column: any `i64` of hundredths fits in 20 digits
/// with two after the point.
const PERCENT_PRECISION: u8 = 20;
const PERCENT_SCALE: i8 = 2;

/// The Arrow type of a column of type `t`.
pub(crate) fn data_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::Text => DataType::Utf8,
        ColumnType::Time => DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into())),
        ColumnType::Percent => DataType::Decimal128(PERCENT_PRECISION, PERCENT_SCALE),
        ColumnType::Int => DataType::Int64,
    }
}

/// The schema of a table with these columns.
pub(crate) fn schema<S: AsRef<str>>(columns: &[S]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let name = c.as_ref();
            Field::new(name, data_type(ColumnType::of(name)), false)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// One record batch of `rows`, which have the columns of `schema`.
pub(crate) fn record_batch<R: AsRef<[Value]>>(
    schema: &SchemaRef,
    rows: &[R],
) -> Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| column(rows, i, field.name()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// The `i`-th column of `rows` as an array of its name's type.
fn column<R: AsRef<[Value]>>(rows: &[R], i: usize, name: &str) -> Result<ArrayRef, ArrowError> {
    // The checker fixes each column's type (rule Q12); a value of another
    // type is a bug in tally, reported rather than written.
    let mismatch = || {
        ArrowError::InvalidArgumentError(format!(
            "column {name} holds a value that is not of the column's type (this is a bug in tally)"
        ))
    };
    let t = ColumnType::of(name);
    if t == ColumnType::Text {
        let bytes = rows
            .iter()
            .map(|r| {
                r.as_ref()
                    .get(i)
                    .and_then(Value::as_str)
                    .map_or(0, str::len)
            })
            .sum();
        let mut builder = StringBuilder::with_capacity(rows.len(), bytes);
        for row in rows {
            match row.as_ref().get(i) {
                Some(Value::Text(s)) => builder.append_value(s),
                _ => return Err(mismatch()),
            }
        }
        return Ok(Arc::new(builder.finish()));
    }
    let mut numbers = Vec::with_capacity(rows.len());
    for row in rows {
        match (t, row.as_ref().get(i)) {
            (ColumnType::Int, Some(Value::Int(v)))
            | (ColumnType::Time, Some(Value::Time(v)))
            | (ColumnType::Percent, Some(Value::Percent(v))) => numbers.push(*v),
            _ => return Err(mismatch()),
        }
    }
    Ok(match t {
        ColumnType::Time => Arc::new(TimestampMillisecondArray::from(numbers).with_timezone(UTC)),
        ColumnType::Percent => Arc::new(
            numbers
                .into_iter()
                .map(i128::from)
                .collect::<Decimal128Array>()
                .with_precision_and_scale(PERCENT_PRECISION, PERCENT_SCALE)?,
        ),
        ColumnType::Int | ColumnType::Text => Arc::new(Int64Array::from(numbers)),
    })
}

/// An Arrow error as an I/O error, keeping the kind of an I/O error inside
/// it (so that a closed pipe is still recognised as one).
pub(crate) fn to_io(e: ArrowError) -> io::Error {
    match e {
        ArrowError::IoError(_, inner) => inner,
        other => io::Error::other(other),
    }
}

/// `--format arrow`: an Arrow IPC stream (the "streaming format", what
/// `pyarrow.ipc.open_stream` and `polars.read_ipc_stream` read): the schema,
/// then the rows in batches of [`BATCH_ROWS`]. An empty result is the
/// schema alone.
pub(crate) struct ArrowPrinter;

impl Printer for ArrowPrinter {
    fn print(&mut self, table: &Table, out: &mut dyn Write) -> io::Result<()> {
        let schema = schema(table.columns());
        let batches = table
            .rows()
            .chunks(BATCH_ROWS)
            .map(|rows| record_batch(&schema, rows));
        write_stream(&schema, batches, out)
    }
}

/// Writes an Arrow IPC stream of `batches`, which have `schema`: the one
/// writer of `--format arrow`, for tally's tables ([`ArrowPrinter`]) and
/// for the record batches `tally sql` answers with.
pub(crate) fn write_stream(
    schema: &SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch, ArrowError>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut writer = StreamWriter::try_new(io::BufWriter::new(out), schema).map_err(to_io)?;
    for batch in batches {
        writer.write(&batch.map_err(to_io)?).map_err(to_io)?;
    }
    writer.finish().map_err(to_io)?;
    writer.into_inner().map_err(to_io)?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int64Type, TimestampMillisecondType};
    use arrow_ipc::reader::StreamReader;

    fn sample() -> Table {
        Table::new(
            vec!["account", "start", "lost", "lost_pct"],
            vec![
                vec![
                    Value::Text("a,\"b\"".into()),
                    Value::Time(1_550_052_000_250),
                    Value::Int(12),
                    Value::Percent(505),
                ],
                vec![
                    Value::Text("ünï".into()),
                    Value::Time(-1),
                    Value::Int(i64::MIN),
                    Value::Percent(i64::MAX),
                ],
            ],
        )
    }

    fn read_back(bytes: &[u8]) -> Vec<RecordBatch> {
        StreamReader::try_new(bytes, None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn the_stream_reads_back_as_the_table() {
        let table = sample();
        let mut out = Vec::new();
        ArrowPrinter.print(&table, &mut out).unwrap();
        let batches = read_back(&out);
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.num_rows(), 2);
        let account = b.column(0).as_string::<i32>();
        assert_eq!(account.value(0), "a,\"b\"");
        assert_eq!(account.value(1), "ünï");
        let start = b.column(1).as_primitive::<TimestampMillisecondType>();
        assert_eq!(start.values(), &[1_550_052_000_250, -1]);
        assert_eq!(
            b.schema().field(1).data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        let lost = b.column(2).as_primitive::<Int64Type>();
        assert_eq!(lost.values(), &[12, i64::MIN]);
        let pct = b.column(3).as_primitive::<Decimal128Type>();
        assert_eq!(pct.value_as_string(0), "5.05");
        assert_eq!(pct.value(1), i128::from(i64::MAX));
        assert!(pct.validate_decimal_precision(PERCENT_PRECISION).is_ok());
        assert_eq!(pct.null_count(), 0);
    }

    #[test]
    fn an_empty_result_is_the_schema_alone() {
        let table = Table::new(vec!["bucket", "episodes", "accounts", "lost"], vec![]);
        let mut out = Vec::new();
        ArrowPrinter.print(&table, &mut out).unwrap();
        let reader = StreamReader::try_new(&out[..], None).unwrap();
        let names: Vec<String> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["bucket", "episodes", "accounts", "lost"]);
        assert_eq!(reader.count(), 0);
    }

    #[test]
    fn large_tables_come_in_bounded_batches() {
        let rows = (0..BATCH_ROWS as i64 + 5)
            .map(|i| vec![Value::Int(i)])
            .collect();
        let table = Table::new(vec!["count"], rows);
        let mut out = Vec::new();
        ArrowPrinter.print(&table, &mut out).unwrap();
        let sizes: Vec<usize> = read_back(&out).iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [BATCH_ROWS, 5]);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_not_a_panic() {
        let table = Table::new(vec!["lost"], vec![vec![Value::Text("x".into())]]);
        let err = ArrowPrinter.print(&table, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("column lost"), "{err}");
    }
}
