//! The terminal table format, drawn with comfy-table: the format people
//! read, so numbers are right-aligned and the row count follows.

use std::io::{self, Write};

use comfy_table::{CellAlignment, ContentArrangement, presets};

use super::Printer;
use crate::query::{Table, Value};

pub(crate) struct TablePrinter;

impl Printer for TablePrinter {
    fn print(&mut self, table: &Table, out: &mut dyn Write) -> io::Result<()> {
        let mut t = comfy_table::Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(table.columns());
        for row in table.rows() {
            t.add_row(row.iter().map(|v| {
                let cell = comfy_table::Cell::new(v.to_string());
                match v {
                    Value::Int(_) | Value::Percent(_) => cell.set_alignment(CellAlignment::Right),
                    Value::Text(_) | Value::Time(_) => cell,
                }
            }));
        }
        writeln!(out, "{t}")?;
        let n = table.len();
        writeln!(out, "({n} {})", if n == 1 { "row" } else { "rows" })
    }
}
