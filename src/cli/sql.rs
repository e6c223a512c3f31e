//! `tally sql`: the flags resolved, the statement run by the library's
//! `sql` module, and its answer printed with the printers of `tally query`.
//! The module exists only with the `datafusion` feature; without it the
//! command says which feature to build with.

use std::path::Path;
use std::process::ExitCode;

use super::args::SqlArgs;
use super::usage_error;
use crate::Error;

/// What a build without the `datafusion` feature says.
#[cfg(not(feature = "datafusion"))]
const NO_DATAFUSION: &str = "tally sql needs tally built with the `datafusion` feature \
     (cargo build --release --features datafusion); this build has no SQL engine";

#[cfg(not(feature = "datafusion"))]
pub(crate) fn run(_db: &Path, _args: &SqlArgs) -> Result<ExitCode, Error> {
    Ok(usage_error(NO_DATAFUSION))
}

#[cfg(feature = "datafusion")]
pub(crate) fn run(db_path: &Path, args: &SqlArgs) -> Result<ExitCode, Error> {
    use std::io::Write;

    use super::args::{OutputFormat, QueryFormat};
    use super::{arrow_printer, printer, resolve_format, time_range, write_output};
    use crate::sql::{SqlFailure, run, table_of};

    // The flags are checked before the database is opened, as `tally
    // query` does.
    let range = match time_range(args.from, args.to) {
        Ok(range) => range,
        Err(message) => return Ok(usage_error(&message)),
    };
    let format = match args.format {
        Some(QueryFormat::Table) => Some(OutputFormat::Table),
        Some(QueryFormat::Csv) => Some(OutputFormat::Csv),
        Some(QueryFormat::Json) => Some(OutputFormat::Json),
        Some(QueryFormat::Svg) => {
            return Ok(usage_error(
                "--format svg draws tally's own results; tally sql writes table, csv, json or arrow",
            ));
        }
        // The checks of `tally query --format arrow` (not to a terminal);
        // the stream itself is written from the record batches below.
        Some(QueryFormat::Arrow) => match arrow_printer() {
            Ok(_) => None,
            Err(message) => return Ok(usage_error(&message)),
        },
        None => Some(resolve_format(None)),
    };
    let db = super::open_existing(db_path)?;
    let answer = match run(&db, &args.sql, range) {
        Ok(answer) => answer,
        Err(SqlFailure::Tally(e)) => return Err(e),
        Err(SqlFailure::Statement(message)) => return Ok(usage_error(&message)),
        Err(SqlFailure::Run(message)) => {
            return Err(Error::Invalid(format!("the SQL failed: {message}")));
        }
    };
    let mut out = std::io::stdout().lock();
    let printed = match format {
        None => {
            let plain = answer.with_plain_strings().map_err(|e| {
                Error::Invalid(format!("the SQL's answer cannot be written as Arrow: {e}"))
            })?;
            crate::output::arrow::write_stream(
                &plain.schema,
                plain.batches.into_iter().map(Ok),
                &mut out,
            )
        }
        Some(format) => {
            let table = table_of(&answer)?;
            printer(format).print(&table, &mut out)
        }
    };
    drop(out);
    let mut stderr = std::io::stderr().lock();
    for notice in &answer.notices {
        let _ = writeln!(stderr, "tally: note: {notice}");
    }
    write_output(printed)
}
