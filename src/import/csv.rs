//! The CSV snapshot format ([IM5]): a header row naming the columns, then
//! one row per account.
//!
//! Splitting, with standard quoting, is `split`'s; lines are counted there
//! too, and the `\r` of a `\r\n` line end is dropped here.

use std::io::Read;

use super::MAX_COLUMNS;
use super::batch::{MetricSlots, RowBatch};
use super::reader::{HeaderMetrics, ReaderState, Stop};
use super::source::Opened;
use super::split::{Record, SplitFailure, Splitter};
use super::values::{TimeCache, parse_count, quote_cell};
use crate::Error;

/// Where the columns of a file are.
#[derive(Debug)]
struct Layout {
    field_count: usize,
    /// The `time` column; `None` when `--at` gives the time.
    time_column: Option<usize>,
    /// The time of every row when there is no time column.
    fixed_time: i64,
    account_column: usize,
    metric_columns: Vec<MetricColumn>,
}

#[derive(Debug)]
struct MetricColumn {
    index: usize,
    slot: u32,
    name: String,
}

/// The field at `index`, without the `\r` of a `\r\n` line end if it is the
/// last field.
#[inline]
fn field<'a>(record: &Record<'a>, index: usize) -> &'a [u8] {
    let text = record.get(index).unwrap_or_default();
    if index + 1 == record.len() {
        text.strip_suffix(b"\r").unwrap_or(text)
    } else {
        text
    }
}

/// What is appended to every CSV text, so that the end of a file is always
/// seen the same way:
///
/// - the `\n` ends the last record when the file does not end with a line
///   end;
/// - the quote and the mark make one more record, made of just the mark
///   and a `\n`, when the file ends outside quotes; but when the file ends
///   inside a quoted field, the `\n` joins that field, the quote closes it
///   and the mark follows it, so the last field ends with the mark.
///   `csv_core` does not report an unclosed quote otherwise.
///
/// The NUL bytes keep the mark from being mistaken for text.
const END_OF_TEXT: &[u8] = b"\n\"\0tally: end of the file\0\n";

/// The mark inside [`END_OF_TEXT`].
fn end_mark() -> &'static [u8] {
    END_OF_TEXT
        .get(2..END_OF_TEXT.len() - 1)
        .unwrap_or_default()
}

/// Reads the next record that is not blank, and returns the line it starts
/// on, or `None` at the end of the file.
fn next_record<'s>(
    splitter: &'s mut Splitter<impl Read>,
    opened: &Opened,
    display: &str,
    state: &ReaderState,
) -> Result<Option<(u64, Record<'s>)>, Stop> {
    let (line, record) = match splitter.next_record() {
        Ok(Some(found)) => found,
        // Only when the text ends inside the mark, which cannot happen.
        Ok(None) => return Ok(None),
        Err(SplitFailure::Read { error, line }) => {
            return Err(Stop::Failed(
                opened.read_error(display, line, &error, &state.raw),
            ));
        }
        Err(SplitFailure::TooLong { line }) => {
            return Err(Stop::Failed(Error::Import {
                file: display.to_string(),
                line,
                reason: super::line_too_long(),
            }));
        }
    };
    // The mark holds a quote, so only a quoted record can be or end with it.
    if !record.was_quoted() {
        return Ok(Some((line, record)));
    }
    let last_field = record
        .get(record.len().saturating_sub(1))
        .unwrap_or_default();
    if record.len() == 1 && last_field.strip_suffix(b"\n") == Some(end_mark()) {
        return Ok(None);
    }
    if last_field.ends_with(end_mark()) {
        return Err(Stop::Failed(Error::Import {
            file: display.to_string(),
            line,
            reason: "a quoted field in this row is never closed".to_string(),
        }));
    }
    Ok(Some((line, record)))
}

/// Reads the header into a layout; the error is the reason for the header's
/// line.
fn parse_header(
    record: &Record<'_>,
    at: Option<i64>,
    metrics: &mut MetricSlots,
    new_metrics: &mut Vec<(u32, String)>,
) -> Result<Layout, String> {
    // Checked first, so that a huge header costs nothing more ([IM16]).
    if record.len() > MAX_COLUMNS {
        return Err(format!(
            "the header has {} columns; the most allowed is {MAX_COLUMNS}",
            record.len()
        ));
    }
    // At most MAX_COLUMNS names, so the quadratic search for a repeated
    // one costs at most half a million short comparisons.
    let mut names = Vec::with_capacity(record.len());
    for index in 0..record.len() {
        let name = std::str::from_utf8(field(record, index))
            .map_err(|_| "the header is not valid UTF-8".to_string())?;
        if names.contains(&name) {
            return Err(format!("column {name:?} appears twice in the header"));
        }
        names.push(name);
    }
    let time_column = names.iter().position(|&n| n == "time");
    let account_column = names
        .iter()
        .position(|&n| n == "account")
        .ok_or_else(|| "the header has no account column".to_string())?;
    let fixed_time = match (time_column, at) {
        (Some(_), Some(_)) => {
            return Err("the header has a time column, but --at was given".to_string());
        }
        (None, None) => {
            return Err(
                "the header has no time column; give --at to import the file at one time"
                    .to_string(),
            );
        }
        (Some(_), None) => 0,
        (None, Some(at)) => at,
    };
    let metric_columns: Vec<MetricColumn> = names
        .iter()
        .enumerate()
        .filter(|&(_, &name)| name != "time" && name != "account")
        .map(|(index, &name)| MetricColumn {
            index,
            slot: metrics.slot(name, new_metrics),
            name: name.to_string(),
        })
        .collect();
    if metric_columns.is_empty() {
        return Err(
            "the header has no metric column (a column besides time and account)".to_string(),
        );
    }
    Ok(Layout {
        field_count: record.len(),
        time_column,
        fixed_time,
        account_column,
        metric_columns,
    })
}

impl Layout {
    /// Parses one data row into the batch, as a good or a bad row.
    #[inline]
    fn parse_row(
        &self,
        record: &Record<'_>,
        line: u64,
        times: &mut TimeCache,
        batch: &mut RowBatch,
    ) {
        if record.len() != self.field_count {
            let mut reason = format!(
                "the row has {} field{}, but the header has {}",
                record.len(),
                if record.len() == 1 { "" } else { "s" },
                self.field_count
            );
            // A quote that is never closed swallows the lines after it into
            // one field; say so, since the row count alone would puzzle.
            if record.spans_lines() {
                reason.push_str(" (a quoted field spans lines; is a quote not closed?)");
            }
            return batch.reject(line, reason);
        }
        // The counts are parsed before the time, though a bad time is
        // reported first: a bad count is remembered until the time is known
        // good.
        let mut count_problem = None;
        for column in &self.metric_columns {
            let text = field(record, column.index);
            if text.is_empty() {
                continue;
            }
            match parse_count(text) {
                Ok(value) => batch.push_cell(column.slot, value),
                Err(problem) => {
                    count_problem = Some((column, text, problem));
                    break;
                }
            }
        }
        let time_ms = match self.time_column {
            Some(column) => match times.parse(field(record, column)) {
                Ok(ms) => ms,
                Err(reason) => return batch.reject(line, reason),
            },
            None => self.fixed_time,
        };
        let account = field(record, self.account_column);
        if account.is_empty() {
            return batch.reject(line, "the account is empty".to_string());
        }
        if let Some((column, text, problem)) = count_problem {
            let reason = format!(
                "count {} in column {} {}",
                quote_cell(text),
                column.name,
                problem.phrase()
            );
            return batch.reject(line, reason);
        }
        batch.accept(line, time_ms, account);
    }
}

/// Reads one CSV file into batches.
pub(super) fn read_file(
    state: &mut ReaderState,
    file: usize,
    display: &str,
    mut opened: Opened,
) -> Result<(), Stop> {
    let text = std::mem::replace(&mut opened.text, Box::new(std::io::empty()));
    let mut splitter = Splitter::new(text.chain(END_OF_TEXT));

    let Some((header_line, record)) = next_record(&mut splitter, &opened, display, state)? else {
        return Err(Stop::Failed(Error::Import {
            file: display.to_string(),
            line: 0,
            reason: "the file has no header row (it is empty or blank)".to_string(),
        }));
    };
    let mut new_metrics = Vec::new();
    let layout = parse_header(&record, state.at, &mut state.metrics, &mut new_metrics).map_err(
        |reason| {
            Stop::Failed(Error::Import {
                file: display.to_string(),
                line: header_line,
                reason,
            })
        },
    )?;
    let metric_slots = layout.metric_columns.iter().map(|c| c.slot).collect();
    state.start_file(
        file,
        new_metrics,
        Some(HeaderMetrics {
            line: header_line,
            metric_slots,
        }),
    )?;

    while let Some((line, record)) = next_record(&mut splitter, &opened, display, state)? {
        layout.parse_row(&record, line, &mut state.times, &mut state.batch);
        state.row_done()?;
    }
    state.end_file()
}
