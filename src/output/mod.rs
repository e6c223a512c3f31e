//! Printing result tables. One interface, [`Printer`], with one
//! implementation per format: CSV and JSON here (usable without the CLI),
//! the terminal table in `table.rs` behind the `cli` feature, and the Arrow
//! IPC stream in `arrow.rs` behind the `arrow` feature.
//!
//! Every format prints a value the same way ([`crate::Value`]'s plain
//! text): times as RFC 3339 in UTC, percentages with two decimals.

#[cfg(feature = "arrow")]
pub(crate) mod arrow;
#[cfg(feature = "cli")]
pub(crate) mod table;

use std::io::{self, Write};

use crate::query::{Table, Value};

/// Writes a whole table in one format.
pub(crate) trait Printer {
    fn print(&mut self, table: &Table, out: &mut dyn Write) -> io::Result<()>;
}

/// RFC 4180 CSV with a header row; an empty result is the header alone.
pub(crate) struct CsvPrinter;

impl Printer for CsvPrinter {
    fn print(&mut self, table: &Table, out: &mut dyn Write) -> io::Result<()> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(out);
        writer.write_record(table.columns())?;
        let mut fields: Vec<String> = Vec::new();
        for row in table.rows() {
            fields.resize(row.len(), String::new());
            for (field, value) in fields.iter_mut().zip(row) {
                field.clear();
                value.write_plain(field);
            }
            writer.write_record(&fields)?;
        }
        writer.flush()
    }
}

/// A JSON array of objects keyed by column name. Names and times are
/// strings; counts and percentages are numbers.
pub(crate) struct JsonPrinter;

impl Printer for JsonPrinter {
    fn print(&mut self, table: &Table, out: &mut dyn Write) -> io::Result<()> {
        let mut out = io::BufWriter::new(out);
        let keys: Vec<String> = table
            .columns()
            .iter()
            .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "\"\"".to_string()))
            .collect();
        let mut text = String::new();
        out.write_all(b"[")?;
        for (i, row) in table.rows().iter().enumerate() {
            out.write_all(if i == 0 { b"\n  {" } else { b",\n  {" })?;
            for (j, (key, value)) in keys.iter().zip(row).enumerate() {
                if j > 0 {
                    out.write_all(b", ")?;
                }
                out.write_all(key.as_bytes())?;
                out.write_all(b": ")?;
                text.clear();
                value.write_plain(&mut text);
                match value {
                    Value::Int(_) | Value::Percent(_) => out.write_all(text.as_bytes())?,
                    Value::Text(_) | Value::Time(_) => serde_json::to_writer(&mut out, &text)?,
                }
            }
            out.write_all(b"}")?;
        }
        out.write_all(if table.is_empty() { b"]\n" } else { b"\n]\n" })?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    Value::Time(0),
                    Value::Int(0),
                    Value::Percent(10_000),
                ],
            ],
        )
    }

    fn render(p: &mut dyn Printer, t: &Table) -> String {
        let mut out = Vec::new();
        p.print(t, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_and_formats() {
        assert_eq!(
            render(&mut CsvPrinter, &sample()),
            "account,start,lost,lost_pct\n\"a,\"\"b\"\"\",2019-02-13T10:00:00.250Z,12,5.05\nünï,1970-01-01T00:00:00Z,0,100.00\n"
        );
        let empty = Table::new(vec!["count"], vec![]);
        assert_eq!(render(&mut CsvPrinter, &empty), "count\n");
    }

    #[test]
    fn json_is_an_array_of_objects() {
        let text = render(&mut JsonPrinter, &sample());
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[0]["account"], "a,\"b\"");
        assert_eq!(parsed[0]["start"], "2019-02-13T10:00:00.250Z");
        assert_eq!(parsed[0]["lost_pct"].as_f64(), Some(5.05));
        assert_eq!(parsed[1]["lost"], 0);
        assert!(text.contains("\"lost_pct\": 100.00"));
        let empty = Table::new(vec!["count"], vec![]);
        assert_eq!(render(&mut JsonPrinter, &empty), "[]\n");
    }
}
