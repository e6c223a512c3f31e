//! `tally repl`: the interactive shell.
//!
//! On a terminal (standard input and output both) it reads lines with
//! rustyline: a `tally> ` prompt, `  ...> ` while a query's brackets are
//! open, Tab completion (`helper`), a history file, and Ctrl-C to cancel
//! the line or a running query. Otherwise it reads standard input as a
//! script: no prompts, no banner, results in CSV unless `.format` says
//! otherwise, and exit code 1 if anything failed, after running everything.
//!
//! Both ways cut the input into statements the same way (`input`) and run
//! them through one [`Session`], which holds the settings the meta commands
//! (`meta`) change. A result that is one series also gets a sparkline
//! (`sparkline`).

mod helper;
mod input;
mod meta;
mod sparkline;

use std::collections::HashSet;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config, Editor};

use super::args::OutputFormat;
use super::{printer, resolve_format, stdout_error};
use crate::{Db, Error, Query, Table, TimeRange, Value};
use helper::ReplHelper;
use input::{Splitter, Statement};
use meta::{Meta, RangeCommand};
use sparkline::{DROP_THRESHOLD, DROP_WINDOW, Fall, RECOVERY_WINDOW};

const PROMPT: &str = "tally> ";
const CONTINUATION_PROMPT: &str = "  ...> ";
/// The widest sparkline, whatever the terminal: wider ones are hard to take
/// in at a glance.
const MAX_SPARKLINE_WIDTH: usize = 80;
/// Rows a table shows unless `.maxrows` says otherwise, as in DuckDB's
/// shell: enough to see what a result looks like, few enough that a query
/// returning millions of points does not bury the prompt (the sparkline and
/// `.format csv` are there for the rest).
const DEFAULT_MAX_ROWS: usize = 40;
/// History entries kept in the file.
const HISTORY_SIZE: usize = 10_000;

/// Runs the shell on `db` until the input ends or `.quit`.
pub(super) fn run(db: &Db) -> Result<ExitCode, Error> {
    let interactive = io::stdin().is_terminal() && io::stdout().is_terminal();
    let mut session = Session {
        db: db.clone(),
        format: resolve_format(None),
        timer: false,
        max_rows: DEFAULT_MAX_ROWS,
        range: TimeRange::ALL,
        cancel: Arc::new(AtomicBool::new(false)),
        width: MAX_SPARKLINE_WIDTH,
        interactive,
        failures: 0,
        last: None,
    };
    if interactive {
        run_terminal(&mut session)
    } else {
        run_script(&mut session)
    }
}

/// What the shell does after a statement.
enum Flow {
    Continue,
    Quit,
}

/// The state of the shell between statements.
struct Session {
    db: Db,
    format: OutputFormat,
    timer: bool,
    /// The most rows the table format shows; 0 for all.
    max_rows: usize,
    /// Applied to every query, as `tally query --from --to` would be.
    range: TimeRange,
    /// Set by Ctrl-C while a query runs; the query checks it between series.
    cancel: Arc<AtomicBool>,
    /// Columns a sparkline may use.
    width: usize,
    /// A person is typing: worth a word when a list is empty or settings are
    /// asked for.
    interactive: bool,
    /// Statements that failed, for the exit code of a script.
    failures: usize,
    /// The last query that ran, for `.plot`.
    last: Option<Query>,
}

impl Session {
    /// Runs one statement. Only a failure to write the results is an error
    /// here; a query's or command's own failure is reported and counted.
    fn execute(&mut self, statement: Statement) -> io::Result<Flow> {
        match statement {
            Statement::Query(text) => self.run_query(&text).map(|()| Flow::Continue),
            Statement::Meta(line) => match meta::parse(&line) {
                Ok(command) => self.run_meta(command),
                Err(message) => {
                    self.fail_with(&message);
                    Ok(Flow::Continue)
                }
            },
        }
    }

    fn run_query(&mut self, text: &str) -> io::Result<()> {
        // Another process may have imported since the last query.
        if let Err(e) = self.db.refresh() {
            self.fail(&e);
            return Ok(());
        }
        // The timer measures parsing and running, not printing: it tells
        // what the query costs, whatever the terminal's speed.
        let started = Instant::now();
        let outcome = Query::parse(text).and_then(|query| {
            let query = query.range(self.range).cancel_on(Arc::clone(&self.cancel));
            let table = query.run(&self.db)?;
            Ok((query, table))
        });
        let elapsed = started.elapsed();
        let (query, table) = match outcome {
            Ok(done) => done,
            Err(e) => {
                self.fail(&e);
                return Ok(());
            }
        };
        let mut out = CancellableWriter {
            inner: io::stdout().lock(),
            cancel: &self.cancel,
        };
        let printed = self.print(&table, &mut out).and_then(|()| {
            if self.format == OutputFormat::Table {
                out.write_all(self.sparkline(&query, &table).as_bytes())?;
            }
            if self.timer {
                writeln!(out, "{}", run_time(elapsed))?;
            }
            out.flush()
        });
        // After the result, so they are read last (docs/query-language.md,
        // rule Q50).
        {
            let mut stderr = io::stderr().lock();
            for notice in table.notices() {
                let _ = writeln!(stderr, "note: {notice}");
            }
        }
        self.last = Some(query);
        match printed {
            Err(e) if e.kind() == CANCELLED_OUTPUT && self.cancel.load(Ordering::Relaxed) => {
                let _ = out.inner.flush();
                eprintln!("\noutput cancelled");
                Ok(())
            }
            other => other,
        }
    }

    /// Prints a result in the current format; a table longer than
    /// `max_rows` shows its first and last rows around a row of `…`.
    fn print(&self, table: &Table, out: &mut dyn Write) -> io::Result<()> {
        let Some(shown) = elide_middle(table, self.format, self.max_rows) else {
            return printer(self.format).print(table, out);
        };
        let mut text = Vec::new();
        printer(self.format).print(&shown, &mut text)?;
        // The table printer ends with its own count of the rows it was given;
        // say instead how many there are and how many are shown.
        let body = text
            .strip_suffix(b"\n")
            .and_then(|t| t.iter().rposition(|&b| b == b'\n').map(|end| &text[..=end]))
            .unwrap_or(&text);
        out.write_all(body)?;
        writeln!(
            out,
            "({} rows, {} shown: .maxrows 0 shows all)",
            table.len(),
            shown.len() - 1
        )
    }

    /// The sparkline of a result that is one series, or nothing.
    fn sparkline(&self, query: &Query, table: &Table) -> String {
        let Some(series) = one_series(table) else {
            return String::new();
        };
        let falls = self.falls(query).unwrap_or_default();
        sparkline::draw(
            &format!("{} of {}", series.metric, series.account),
            &series.points,
            &falls,
            self.width,
        )
    }

    /// The falls of the series `query` returns, each marked as recovered or
    /// not, found by the same functions a user would write. `None` when the
    /// series cannot have falls (a series of differences) or the lookup was
    /// cancelled: the sparkline is then drawn without marks.
    fn falls(&self, query: &Query) -> Option<Vec<Fall>> {
        let drops = format!("drop({query}, {DROP_THRESHOLD}, {DROP_WINDOW})");
        let run = |text: &str| {
            Query::parse(text)
                .ok()?
                .range(self.range)
                .cancel_on(Arc::clone(&self.cancel))
                .run(&self.db)
                .ok()
        };
        let all = run(&drops)?;
        let recovered = run(&format!("recovered_within({drops}, {RECOVERY_WINDOW})"))?;
        let key = |table: &Table, row: &[Value]| {
            let time = |column| table.get(row, column).and_then(Value::as_i64);
            Some((time("start")?, time("end")?))
        };
        let came_back: HashSet<(i64, i64)> = recovered
            .rows()
            .iter()
            .filter_map(|row| key(&recovered, row))
            .collect();
        Some(
            all.rows()
                .iter()
                .filter_map(|row| key(&all, row))
                .map(|(start, end)| Fall {
                    end,
                    recovered: came_back.contains(&(start, end)),
                })
                .collect(),
        )
    }

    fn run_meta(&mut self, command: Meta) -> io::Result<Flow> {
        let mut out = io::stdout();
        match command {
            Meta::Help => out.write_all(meta::help_text().as_bytes())?,
            Meta::Quit => return Ok(Flow::Quit),
            Meta::Metrics => {
                if let Err(e) = self.db.refresh() {
                    self.fail(&e);
                    return Ok(Flow::Continue);
                }
                let metrics = self.db.metrics();
                for metric in &metrics {
                    writeln!(out, "{metric}")?;
                }
                if metrics.is_empty() && self.interactive {
                    writeln!(out, "(no metrics: the database is empty)")?;
                }
            }
            Meta::Accounts(pattern) => self.list_accounts(pattern.as_deref())?,
            Meta::Stats => {
                let shown = self.db.refresh().and_then(|()| super::stats(&self.db));
                if let Err(e) = shown {
                    self.fail(&e);
                }
            }
            Meta::Format(Some(format)) => self.format = format,
            Meta::Format(None) => writeln!(out, "{}", format_name(self.format))?,
            Meta::MaxRows(Some(n)) => self.max_rows = n,
            Meta::MaxRows(None) => writeln!(out, "{}", self.max_rows)?,
            Meta::Timer(Some(on)) => self.timer = on,
            Meta::Timer(None) => {
                writeln!(out, "{}", if self.timer { "on" } else { "off" })?;
            }
            Meta::Range(RangeCommand::Set(range)) => self.range = range,
            Meta::Range(RangeCommand::Off) => self.range = TimeRange::ALL,
            Meta::Range(RangeCommand::Show) => {
                writeln!(out, "{}", meta::describe_range(self.range))?;
            }
            Meta::Plot(path) => self.plot(&path)?,
        }
        out.flush()?;
        Ok(Flow::Continue)
    }

    /// `.plot FILE`: runs the last query again, with the range it ran
    /// with, over the database as it is now, and writes its picture into
    /// FILE (docs/query-language.md, rule Q60).
    fn plot(&mut self, path: &str) -> io::Result<()> {
        let Some(query) = self.last.clone() else {
            self.fail_with(".plot draws the last query's result; run a query first");
            return Ok(());
        };
        if !crate::chart::can_draw(&query) {
            self.fail_with(
                ".plot draws series of counts, drop and recovery tables, and summarize(…, STEP); \
                 the last query's result has no picture",
            );
            return Ok(());
        }
        let drawn = self
            .db
            .refresh()
            .and_then(|()| crate::chart::render(&self.db, &query));
        let svg = match drawn {
            Ok((_, Some(svg))) => svg,
            // can_draw said there is a picture.
            Ok((_, None)) => String::new(),
            Err(e) => {
                self.fail(&e);
                return Ok(());
            }
        };
        match std::fs::write(path, svg.as_bytes()) {
            Ok(()) => writeln!(io::stdout(), "wrote {path}")?,
            Err(e) => self.fail_with(&format!("cannot write {path}: {e}")),
        }
        Ok(())
    }

    /// `.accounts [PATTERN]`: the pattern is a regular expression that must
    /// match the whole name, exactly as in `account=~"PATTERN"`, so that
    /// the list previews what such a selector selects.
    fn list_accounts(&mut self, pattern: Option<&str>) -> io::Result<()> {
        let matcher = match pattern.map(|p| regex::Regex::new(&format!("^(?:{p})$"))) {
            None => None,
            Some(Ok(re)) => Some(re),
            Some(Err(e)) => {
                self.fail_with(&format!("invalid pattern: {e}"));
                return Ok(());
            }
        };
        if let Err(e) = self.db.refresh() {
            self.fail(&e);
            return Ok(());
        }
        let mut out = io::stdout().lock();
        let mut shown = 0usize;
        let accounts = match self.db.accounts() {
            Ok(accounts) => accounts,
            Err(e) => {
                self.fail(&e);
                return Ok(());
            }
        };
        for account in accounts {
            if matcher.as_ref().is_none_or(|re| re.is_match(&account)) {
                writeln!(out, "{account}")?;
                shown += 1;
            }
        }
        if self.interactive {
            match (shown, pattern) {
                (0, Some(p)) => writeln!(
                    out,
                    "(no account matches: the pattern must match the whole name, as in account=~; try .accounts .*{p}.*)"
                )?,
                (0, None) => writeln!(out, "(no accounts: the database is empty)")?,
                (1, _) => writeln!(out, "(1 account)")?,
                (n, _) => writeln!(out, "({n} accounts)")?,
            }
        }
        out.flush()
    }

    /// Reports a failed query or command: a syntax or type error draws the
    /// query with a caret under the problem, anything else is one line.
    fn fail(&mut self, e: &Error) {
        let text = match e {
            Error::Query(q) => q.render(),
            Error::Cancelled => "query cancelled\n".to_string(),
            other => format!("error: {other}\n"),
        };
        self.failures += 1;
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }

    fn fail_with(&mut self, message: &str) {
        self.failures += 1;
        let _ = writeln!(io::stderr().lock(), "error: {message}");
    }

    /// Runs statements in order, stopping early at `.quit` or when Ctrl-C
    /// cancelled one of them (the rest were typed together with it).
    fn execute_all(&mut self, statements: Vec<Statement>) -> io::Result<Flow> {
        let total = statements.len();
        for (i, statement) in statements.into_iter().enumerate() {
            if self.cancel.load(Ordering::Relaxed) {
                let skipped = total - i;
                let _ = writeln!(
                    io::stderr().lock(),
                    "cancelled: skipped the {skipped} statement{} after it",
                    if skipped == 1 { "" } else { "s" }
                );
                break;
            }
            if let Flow::Quit = self.execute(statement)? {
                return Ok(Flow::Quit);
            }
        }
        Ok(Flow::Continue)
    }
}

/// The error kind by which [`CancellableWriter`] stops a printer.
const CANCELLED_OUTPUT: io::ErrorKind = io::ErrorKind::Other;

/// Passes writes through until Ctrl-C sets `cancel`, then fails them, so
/// that a long result stops printing as a long query stops running.
struct CancellableWriter<'a, W: Write> {
    inner: W,
    cancel: &'a AtomicBool,
}

impl<W: Write> Write for CancellableWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::new(CANCELLED_OUTPUT, "output cancelled"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The rows of `table` the table format shows when it has more than
/// `max_rows`: the first half, a row of `…`, and the last half. `None` when
/// everything is shown (other formats are for programs and show all).
fn elide_middle(table: &Table, format: OutputFormat, max_rows: usize) -> Option<Table> {
    if format != OutputFormat::Table || max_rows == 0 || table.len() <= max_rows {
        return None;
    }
    let head = max_rows.div_ceil(2);
    let tail = max_rows / 2;
    let rows = table.rows();
    let mut shown = rows[..head].to_vec();
    shown.push(vec![Value::Text("…".to_string()); table.columns().len()]);
    shown.extend_from_slice(&rows[rows.len() - tail..]);
    let columns = table.columns().iter().map(String::as_str).collect();
    Some(Table::new(columns, shown))
}

/// A result that is the points of one (account, metric).
#[derive(Debug, PartialEq, Eq)]
struct OneSeries {
    account: String,
    metric: String,
    /// (time in milliseconds, value), in time order.
    points: Vec<(i64, i64)>,
}

/// The series of a result that holds exactly one (account, metric) and at
/// least two points.
fn one_series(table: &Table) -> Option<OneSeries> {
    if table.columns() != ["account", "metric", "time", "value"] || table.len() < 2 {
        return None;
    }
    let mut points = Vec::with_capacity(table.len());
    let mut name: Option<(&str, &str)> = None;
    for row in table.rows() {
        let [
            Value::Text(account),
            Value::Text(metric),
            Value::Time(time),
            Value::Int(value),
        ] = row.as_slice()
        else {
            return None;
        };
        match name {
            None => name = Some((account, metric)),
            Some(n) if n == (account.as_str(), metric.as_str()) => {}
            Some(_) => return None,
        }
        points.push((*time, *value));
    }
    let (account, metric) = name?;
    Some(OneSeries {
        account: account.to_string(),
        metric: metric.to_string(),
        points,
    })
}

/// The timer line, in sqlite's words.
fn run_time(elapsed: Duration) -> String {
    format!("Run Time: {:.3} s", elapsed.as_secs_f64())
}

fn format_name(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Table => "table",
        OutputFormat::Csv => "csv",
        OutputFormat::Json => "json",
    }
}

/// Reads standard input as a script: statements are cut by `input`, run
/// in order, and every failure is reported and counted, but none stops the
/// script (only `.quit` and the end of input do).
fn run_script(session: &mut Session) -> Result<ExitCode, Error> {
    let mut stdin = io::stdin().lock();
    let mut splitter = Splitter::default();
    let mut line = String::new();
    let mut flow = Flow::Continue;
    while let Flow::Continue = flow {
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => flow = output(session.execute_all(splitter.push(&line)))?,
            Err(e) => {
                session.fail_with(&format!("cannot read standard input: {e}"));
                break;
            }
        }
    }
    if let Flow::Continue = flow
        && let Some(unfinished) = splitter.finish()
    {
        output(session.execute_all(vec![unfinished]))?;
    }
    Ok(if session.failures > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Turns a failure to write results into the shell's answer: a closed pipe
/// (`| head`) ends the shell quietly, anything else is an error.
fn output(result: io::Result<Flow>) -> Result<Flow, Error> {
    match result {
        Ok(flow) => Ok(flow),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Flow::Quit),
        Err(e) => Err(stdout_error(e)),
    }
}

/// The interactive shell on a terminal.
fn run_terminal(session: &mut Session) -> Result<ExitCode, Error> {
    let cancel = Arc::clone(&session.cancel);
    // Ctrl-C at the prompt reaches rustyline as a key; while a query runs
    // the terminal is back in its normal mode and Ctrl-C is a signal, which
    // this turns into a request to cancel rather than the end of the shell.
    if let Err(e) = ctrlc::set_handler(move || cancel.store(true, Ordering::Relaxed)) {
        eprintln!("warning: Ctrl-C will end the shell instead of cancelling a query ({e})");
    }
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .history_ignore_space(true)
        .history_ignore_dups(true)
        .and_then(|b| b.max_history_size(HISTORY_SIZE))
        .map_err(terminal_error)?
        .build();
    let mut editor: Editor<ReplHelper, FileHistory> =
        Editor::with_config(config).map_err(terminal_error)?;
    editor.set_helper(Some(ReplHelper::new(session.db.clone())));
    let mut history = HistoryFile::open(&mut editor);

    println!(
        "tally {} — type .help, Ctrl-D to quit",
        env!("CARGO_PKG_VERSION")
    );
    let mut splitter = Splitter::default();
    // The lines of the statements being typed, kept as one history entry
    // so that a multi-line query comes back whole.
    let mut entry = String::new();
    loop {
        let prompt = if splitter.is_pending() {
            CONTINUATION_PROMPT
        } else {
            PROMPT
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let line = format!("{line}\n");
                entry.push_str(&line);
                let statements = splitter.push(&line);
                if !splitter.is_pending() {
                    history.add(&mut editor, entry.trim_end());
                    entry.clear();
                }
                if let Some((columns, _)) = editor.dimensions() {
                    session.width = usize::from(columns).clamp(1, MAX_SPARKLINE_WIDTH);
                }
                session.cancel.store(false, Ordering::Relaxed);
                if let Flow::Quit = output(session.execute_all(statements))? {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                splitter.clear();
                entry.clear();
            }
            Err(ReadlineError::Eof) => {
                if splitter.is_pending() {
                    eprintln!("(the unfinished query was discarded)");
                }
                break;
            }
            Err(e) => return Err(terminal_error(e)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn terminal_error(e: ReadlineError) -> Error {
    match e {
        ReadlineError::Io(e) => Error::io("<terminal>", e),
        other => Error::Invalid(format!("cannot read the terminal: {other}")),
    }
}

/// The history file: `$TALLY_HISTORY` if set (empty turns history off),
/// else `$XDG_DATA_HOME/tally/history`, else
/// `$HOME/.local/share/tally/history`.
struct HistoryFile {
    path: Option<PathBuf>,
}

impl HistoryFile {
    /// Finds the file, creates its folder and loads what it holds. Trouble
    /// with the history is worth a warning, never the end of the shell.
    fn open(editor: &mut Editor<ReplHelper, FileHistory>) -> HistoryFile {
        let Some(path) = history_path() else {
            return HistoryFile { path: None };
        };
        if let Some(folder) = path.parent()
            && let Err(e) = std::fs::create_dir_all(folder)
        {
            eprintln!(
                "warning: no history: cannot create {}: {e}",
                folder.display()
            );
            return HistoryFile { path: None };
        }
        match editor.load_history(&path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "warning: cannot read the history in {}: {e}",
                path.display()
            ),
        }
        HistoryFile { path: Some(path) }
    }

    /// Adds an entry and appends it to the file at once, so that a shell
    /// that is killed keeps what was typed. An entry typed with a leading
    /// space is left out, as in bash, for the odd query better not kept.
    fn add(&mut self, editor: &mut Editor<ReplHelper, FileHistory>, entry: &str) {
        if entry.trim().is_empty() || !matches!(editor.add_history_entry(entry), Ok(true)) {
            return;
        }
        let Some(path) = &self.path else { return };
        if let Err(e) = editor.append_history(path) {
            eprintln!(
                "warning: cannot save the history to {}: {e}; it is kept for this session only",
                path.display()
            );
            self.path = None;
        }
    }
}

fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TALLY_HISTORY") {
        return (!path.is_empty()).then(|| PathBuf::from(path));
    }
    // The XDG base directory specification says to ignore a relative path.
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".local").join("share"))
        })?;
    Some(data_home.join("tally").join("history"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_needs_one_account_and_metric() {
        let row = |account: &str, time: i64, value: i64| {
            vec![
                Value::Text(account.to_string()),
                Value::Text("followers".to_string()),
                Value::Time(time),
                Value::Int(value),
            ]
        };
        let columns = vec!["account", "metric", "time", "value"];
        let one = Table::new(columns.clone(), vec![row("a", 0, 5), row("a", 1, 6)]);
        assert_eq!(
            one_series(&one),
            Some(OneSeries {
                account: "a".into(),
                metric: "followers".into(),
                points: vec![(0, 5), (1, 6)]
            })
        );
        let two = Table::new(columns.clone(), vec![row("a", 0, 5), row("b", 1, 6)]);
        assert_eq!(one_series(&two), None);
        let single = Table::new(columns, vec![row("a", 0, 5)]);
        assert_eq!(one_series(&single), None);
    }

    #[test]
    fn long_tables_show_their_ends() {
        let rows = (0..10).map(|i| vec![Value::Int(i)]).collect();
        let table = Table::new(vec!["n"], rows);
        let shown = elide_middle(&table, OutputFormat::Table, 5).unwrap();
        let values: Vec<String> = shown.rows().iter().map(|r| r[0].to_string()).collect();
        assert_eq!(values, ["0", "1", "2", "…", "8", "9"]);
        assert!(elide_middle(&table, OutputFormat::Table, 10).is_none());
        assert!(elide_middle(&table, OutputFormat::Table, 0).is_none());
        assert!(elide_middle(&table, OutputFormat::Csv, 5).is_none());
    }

    #[test]
    fn the_table_printer_ends_with_the_row_count_that_print_replaces() {
        let table = Table::new(vec!["n"], vec![vec![Value::Int(1)], vec![Value::Int(2)]]);
        let mut text = Vec::new();
        printer(OutputFormat::Table)
            .print(&table, &mut text)
            .unwrap();
        assert!(
            String::from_utf8(text)
                .unwrap()
                .ends_with("│ 2 │\n└───┘\n(2 rows)\n")
        );
    }

    #[test]
    fn run_time_reads_like_sqlite() {
        assert_eq!(run_time(Duration::from_millis(12)), "Run Time: 0.012 s");
    }
}
