//! The command-line program: flags are parsed (`args`), resolved, and handed
//! to one small function per command. Errors become one line on stderr and
//! an exit code: 0 success, 1 failure (bad data, damage, a runtime error),
//! 2 usage errors and query syntax or type errors.

mod args;
mod cluster;
mod demo;
mod export;
mod generate;
mod import;
mod repl;
#[cfg(feature = "server")]
mod serve;
mod sql;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::output::table::TablePrinter;
use crate::output::{CsvPrinter, JsonPrinter, Printer};
use crate::{Db, Error, Options, Query, TimeRange};
use args::{Args, Command, OutputFormat, QueryArgs, QueryFormat};

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    install_panic_hook();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // clap prints help and version to stdout (exit 0) and usage
            // errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// Prints an error the way every command does and returns its exit code.
fn report(e: &Error) -> ExitCode {
    let mut stderr = std::io::stderr().lock();
    match e {
        Error::Query(q) => {
            let _ = write!(stderr, "{}", q.render());
            ExitCode::from(2)
        }
        other => {
            let _ = writeln!(stderr, "tally: {other}");
            ExitCode::from(1)
        }
    }
}

/// A panic is a bug in tally; say so in one line instead of a backtrace.
fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("tally: internal error{at}: {msg} (this is a bug; please report it)");
    }));
}

fn run(args: Args) -> Result<ExitCode, Error> {
    match args.command {
        Command::Stats => stats(&open_existing(&args.db)?),
        Command::Verify => verify(&args.db),
        Command::Compact => compact(&open_existing(&args.db)?),
        Command::Import(i) => import::run(&args.db, &i),
        Command::Query(q) => query(&args.db, &q),
        Command::Export(e) => export::run(&args.db, &e),
        Command::Sql(q) => sql::run(&args.db, &q),
        Command::Worker(w) => cluster::worker(&w),
        Command::Demo(d) => demo::run(&args.db, &d),
        Command::Generate(g) => generate::run(&g),
        Command::Repl => repl::run(&open_existing(&args.db)?),
        #[cfg(feature = "server")]
        Command::Serve(s) => serve::run(&args.db, &s),
    }
}

/// Resolves `--format`: a table for people, CSV for programs.
fn resolve_format(format: Option<OutputFormat>) -> OutputFormat {
    format.unwrap_or_else(|| {
        if std::io::stdout().is_terminal() {
            OutputFormat::Table
        } else {
            OutputFormat::Csv
        }
    })
}

fn printer(format: OutputFormat) -> Box<dyn Printer> {
    match format {
        OutputFormat::Table => Box::new(TablePrinter),
        OutputFormat::Csv => Box::new(CsvPrinter),
        OutputFormat::Json => Box::new(JsonPrinter),
    }
}

/// What `tally query` prints with, once `--format` is resolved (svg aside).
enum Format {
    /// One of the formats every build has.
    Print(OutputFormat),
    /// `--format arrow`'s printer.
    Arrow(Box<dyn Printer>),
}

/// The printer of `--format arrow`, or why there is none: the Arrow stream
/// is binary, so it is not written to a terminal, and it exists only in a
/// build with the `arrow` feature.
fn arrow_printer() -> Result<Box<dyn Printer>, String> {
    if std::io::stdout().is_terminal() {
        return Err(
            "--format arrow writes a binary Arrow IPC stream; redirect standard output to a \
             file or a pipe"
                .to_string(),
        );
    }
    #[cfg(feature = "arrow")]
    {
        Ok(Box::new(crate::output::arrow::ArrowPrinter))
    }
    #[cfg(not(feature = "arrow"))]
    {
        Err(export::NO_ARROW.replace("{what}", "--format arrow"))
    }
}

/// Resolves `--from`/`--to` into a range. A range that holds no time is a
/// usage error, as it is for the REPL's `.range` (docs/query-language.md,
/// [Q19a]): on the command line it is a mistake, most often the two times
/// swapped, and an empty answer would hide it.
pub(crate) fn time_range(from: Option<i64>, to: Option<i64>) -> Result<TimeRange, String> {
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        let (from_text, to_text) = (crate::time::format_time(from), crate::time::format_time(to));
        return Err(if from > to {
            format!("--from {from_text} is after --to {to_text}, so no point could be in the range")
        } else {
            format!(
                "--from {from_text} is the same time as --to {to_text}, so no point could be in \
                 the range (--to is exclusive)"
            )
        });
    }
    Ok(TimeRange {
        from: from.unwrap_or(i64::MIN),
        to: to.unwrap_or(i64::MAX),
    })
}

/// Prints a usage error found after clap's parsing, in the one-line form of
/// every error, and returns exit code 2.
fn usage_error(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "tally: {message}");
    ExitCode::from(2)
}

fn query(db: &std::path::Path, args: &QueryArgs) -> Result<ExitCode, Error> {
    // The flags are checked before the database is opened: a usage error
    // is reported as such even when the database is missing too.
    let range = match time_range(args.from, args.to) {
        Ok(range) => range,
        Err(message) => return Ok(usage_error(&message)),
    };
    let format = match args.format {
        Some(QueryFormat::Table) => Some(Format::Print(OutputFormat::Table)),
        Some(QueryFormat::Csv) => Some(Format::Print(OutputFormat::Csv)),
        Some(QueryFormat::Json) => Some(Format::Print(OutputFormat::Json)),
        Some(QueryFormat::Arrow) => match arrow_printer() {
            Ok(printer) => Some(Format::Arrow(printer)),
            Err(message) => return Ok(usage_error(&message)),
        },
        Some(QueryFormat::Svg) => None,
        None => Some(Format::Print(resolve_format(None))),
    };
    let table = match &args.cluster {
        Some(cluster) => {
            let Some(format) = format else {
                return Ok(usage_error(
                    "--format svg reads one database; with --cluster use table, csv, json or arrow",
                ));
            };
            let query = Query::parse(&args.query)?.range(range);
            match cluster::query(cluster, &query)? {
                Ok(table) => (table, format),
                Err(message) => return Ok(usage_error(&message)),
            }
        }
        None => {
            let db = open_existing(db)?;
            let query = Query::parse(&args.query)?.range(range);
            let Some(format) = format else {
                return query_svg(&db, &query);
            };
            (query.run(&db)?, format)
        }
    };
    let (table, format) = table;
    let mut printer = match format {
        Format::Print(format) => printer(format),
        Format::Arrow(printer) => printer,
    };
    let mut out = std::io::stdout().lock();
    let printed = write_output(printer.print(&table, &mut out));
    print_notices(&table);
    printed
}

/// `tally query --format svg`: the picture of the result on standard
/// output (docs/query-language.md, rule Q60). A query whose result has no
/// picture is a usage error, found before the query runs.
fn query_svg(db: &Db, query: &Query) -> Result<ExitCode, Error> {
    if !crate::chart::can_draw(query) {
        return Ok(usage_error(
            "--format svg draws series of counts, drop and recovery tables, and \
             summarize(…, STEP); this query's result has no picture (use table, csv or json)",
        ));
    }
    let (table, svg) = crate::chart::render(db, query)?;
    let svg = svg.unwrap_or_default();
    let written = std::io::stdout().lock().write_all(svg.as_bytes());
    let printed = write_output(written);
    print_notices(&table);
    printed
}

/// Prints a result's notices on standard error, after its output, so that
/// what scripts read on standard output is unchanged (docs/query-language.md,
/// rule Q50).
fn print_notices(table: &crate::Table) {
    let mut stderr = std::io::stderr().lock();
    for notice in table.notices() {
        let _ = writeln!(stderr, "tally: note: {notice}");
    }
}

/// Turns the outcome of printing into an exit code: a closed pipe (`| head`)
/// is not an error.
fn write_output(result: std::io::Result<()>) -> Result<ExitCode, Error> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(stdout_error(e)),
    }
}

fn open_existing(path: &std::path::Path) -> Result<Db, Error> {
    Db::open_with(path, Options::default().create(false))
}

fn stats(db: &Db) -> Result<ExitCode, Error> {
    let s = db.stats()?;
    let range = match s.time_range {
        Some((lo, hi)) => format!(
            "{} .. {}",
            crate::time::format_time(lo),
            crate::time::format_time(hi)
        ),
        None => "-".to_string(),
    };
    let rows = [
        ("series", s.series.to_string()),
        ("accounts", s.accounts.to_string()),
        ("metrics", s.metrics.to_string()),
        ("points", s.points.to_string()),
        ("time range", range),
        ("segments", s.segments.to_string()),
        ("bytes on disk", s.bytes_on_disk.to_string()),
        ("bytes per point", format!("{:.3}", s.bytes_per_point())),
    ];
    let mut out = std::io::stdout().lock();
    for (k, v) in rows {
        writeln!(out, "{k:<16}{v}").map_err(stdout_error)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(path: &std::path::Path) -> Result<ExitCode, Error> {
    let report = Db::verify(path)?;
    let mut out = std::io::stdout().lock();
    if report.is_clean() {
        writeln!(
            out,
            "ok: {} segments, {} points, {} bytes checked",
            report.segments, report.points, report.bytes
        )
        .map_err(stdout_error)?;
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &report.problems {
            writeln!(out, "{p}").map_err(stdout_error)?;
        }
        writeln!(out, "{} problems found", report.problems.len()).map_err(stdout_error)?;
        Ok(ExitCode::from(1))
    }
}

fn compact(db: &Db) -> Result<ExitCode, Error> {
    let s = db.compact()?;
    writeln!(
        std::io::stdout().lock(),
        "compacted {} segments ({} bytes) into {} ({} bytes), {} points",
        s.segments_before,
        s.bytes_before,
        s.segments_after,
        s.bytes_after,
        s.points_after
    )
    .map_err(stdout_error)?;
    Ok(ExitCode::SUCCESS)
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}
