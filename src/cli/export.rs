//! `tally export`: the flags resolved into an export's configuration, and
//! its one-line summary. The work is in the library's `export` module,
//! which exists only with the `arrow` feature; without it the command
//! says which feature to build with.

use std::path::Path;
use std::process::ExitCode;

use super::args::ExportArgs;
use super::usage_error;
use crate::Error;

/// What a build without the `arrow` feature says to `{what}`.
#[cfg(not(feature = "arrow"))]
pub(crate) const NO_ARROW: &str = "{what} needs tally built with the `arrow` feature \
     (cargo build --release --features arrow); this build has no Arrow or Parquet support";

#[cfg(not(feature = "arrow"))]
pub(crate) fn run(_db: &Path, _args: &ExportArgs) -> Result<ExitCode, Error> {
    Ok(usage_error(&NO_ARROW.replace("{what}", "tally export")))
}

#[cfg(feature = "arrow")]
pub(crate) fn run(db_path: &Path, args: &ExportArgs) -> Result<ExitCode, Error> {
    use std::io::Write;

    use super::time_range;
    use crate::Query;
    use crate::export::{CHUNK_POINTS, ExportConfig, export};

    // The flags are checked before the database is opened, as `tally
    // query` does: a usage error is reported as such even when the
    // database is missing too.
    if args.partitions == 0 {
        return Ok(usage_error(
            "--partitions must be at least 1 (it is the number of files written)",
        ));
    }
    let range = match time_range(args.from, args.to) {
        Ok(range) => range,
        Err(message) => return Ok(usage_error(&message)),
    };
    let query = args.query.as_deref().map(Query::parse).transpose()?;
    let config = ExportConfig {
        out: args.out.clone(),
        partitions: args.partitions,
        query,
        range,
        chunk_points: CHUNK_POINTS,
    };
    let db = super::open_existing(db_path)?;
    let started = std::time::Instant::now();
    let summary = export(&db, &config)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut stderr = std::io::stderr().lock();
    for notice in &summary.notices {
        let _ = writeln!(stderr, "tally: note: {notice}");
    }
    drop(stderr);
    let rate = if seconds > 0.0 {
        summary.rows as f64 / seconds
    } else {
        0.0
    };
    writeln!(
        std::io::stdout().lock(),
        "exported {} {} into {} {} in {} ({:.1} MB) in {:.2} s ({:.2} M rows/s)",
        summary.rows,
        if summary.rows == 1 { "row" } else { "rows" },
        summary.files.len(),
        if summary.files.len() == 1 {
            "file"
        } else {
            "files"
        },
        config.out.display(),
        summary.bytes as f64 / 1e6,
        seconds,
        rate / 1e6
    )
    .map_err(super::stdout_error)?;
    Ok(ExitCode::SUCCESS)
}
