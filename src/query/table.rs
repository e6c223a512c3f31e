//! The result of a query: named columns and typed rows.

use std::fmt;

use super::notice::Notice;
use crate::time::write_time;

/// One cell of a result table.
///
/// It serialises (serde) as `{"Text": "ann"}`, `{"Int": 5}` and so on: the
/// form in which a shard hands its rows to the coordinator
/// (docs/scale-out.md, \[SO29\]).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Value {
    /// A name: an account or a metric.
    Text(String),
    /// A whole number: a count, a loss, a number of seconds or of rows.
    Int(i64),
    /// A time, in milliseconds since the Unix epoch.
    Time(i64),
    /// A percentage in hundredths: `1234` is 12.34%.
    Percent(i64),
}

impl Value {
    /// The number inside an `Int`, `Time` or `Percent` (in its own unit).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) | Value::Time(v) | Value::Percent(v) => Some(*v),
            Value::Text(_) => None,
        }
    }

    /// The text inside a `Text`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Appends the value as every output format prints it: times as RFC
    /// 3339 in UTC, percentages with two decimals, names as they are.
    pub(crate) fn write_plain(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Value::Text(s) => out.push_str(s),
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Time(ms) => write_time(out, *ms),
            Value::Percent(h) => {
                let sign = if *h < 0 { "-" } else { "" };
                let abs = h.unsigned_abs();
                let _ = write!(out, "{sign}{}.{:02}", abs / 100, abs % 100);
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_plain(&mut s);
        f.write_str(&s)
    }
}

/// The type of every value of a column. The columns of every query are
/// fixed by docs/query-language.md (rule Q12), so a column's name decides
/// its type even when there is no row to look at: the HTTP API announces it
/// and the Arrow formats type their columns by it.
#[cfg(any(feature = "server", feature = "arrow"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    /// [`Value::Text`]: `account`, `metric`.
    Text,
    /// [`Value::Time`]: `time`, `start`, `end`, `recovered_at`, `bucket`.
    Time,
    /// [`Value::Percent`]: `lost_pct`.
    Percent,
    /// [`Value::Int`]: every other column.
    Int,
}

#[cfg(any(feature = "server", feature = "arrow"))]
impl ColumnType {
    /// The type of the column named `name`.
    pub(crate) fn of(name: &str) -> ColumnType {
        match name {
            "account" | "metric" => ColumnType::Text,
            "time" | "start" | "end" | "recovered_at" | "bucket" => ColumnType::Time,
            "lost_pct" => ColumnType::Percent,
            _ => ColumnType::Int,
        }
    }
}

/// The rows a query returned, under named columns.
///
/// ```
/// # fn main() -> tally::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = tally::Db::open(dir.path())?;
/// let mut w = db.writer()?;
/// w.append("adela_mae", "followers", 1_550_052_000_000, 10_234)?;
/// w.append("adela_mae", "followers", 1_550_055_600_000, 224)?;
/// w.commit()?;
/// let table = db.query("drop(followers, 5%, 1h)")?;
/// assert_eq!(table.columns()[6], "lost");
/// let row = &table.rows()[0];
/// assert_eq!(table.get(row, "lost"), Some(&tally::Value::Int(10_010)));
/// assert_eq!(table.get(row, "lost_pct").map(|v| v.to_string()), Some("97.81".to_string()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    notices: Vec<Notice>,
}

impl Table {
    pub(crate) fn new(columns: Vec<&str>, rows: Vec<Vec<Value>>) -> Table {
        Table {
            columns: columns.into_iter().map(str::to_string).collect(),
            rows,
            notices: Vec::new(),
        }
    }

    /// The same table, carrying `notices`.
    pub(crate) fn with_notices(mut self, notices: Vec<Notice>) -> Table {
        self.notices = notices;
        self
    }

    /// What the query says besides its rows, such as "no metric
    /// `folowers`; did you mean `followers`?" (docs/query-language.md,
    /// rules Q50–Q52). Notices never change the columns or the rows.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows, each with one value per column.
    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }

    /// The rows, taken out of the table.
    pub(crate) fn into_rows(self) -> Vec<Vec<Value>> {
        self.rows
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value of `row` in the column named `column`.
    pub fn get<'a>(&self, row: &'a [Value], column: &str) -> Option<&'a Value> {
        let i = self.columns.iter().position(|c| c == column)?;
        row.get(i)
    }
}
