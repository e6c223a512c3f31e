//! `tally serve`: opens the database and hands it to the server
//! (`crate::server`), saying where it listens.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::args::ServeArgs;
use crate::server::{PROMETHEUS_BASE, ServeOptions};
use crate::{Db, Error, Options};

pub(crate) fn run(db_path: &Path, args: &ServeArgs) -> Result<ExitCode, Error> {
    if args.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Ok(super::usage_error("--token (or TALLY_TOKEN) is empty"));
    }
    // Only a server that may import creates the database: for a read-only
    // one, a missing database is a mistyped path.
    let options = Options::default()
        .create(args.allow_import)
        .auto_merge(false);
    let db = Db::open_with(db_path, options)?;
    let serve_options = ServeOptions {
        listen: args.listen.clone(),
        token: args.token.clone(),
        no_auth: args.no_auth,
        allow_import: args.allow_import,
        max_body: args.max_body,
        query_timeout: args.query_timeout,
        max_queries: usize::from(args.max_queries),
        cors_origin: args.cors_origin.clone(),
        lookback: args.lookback,
    };
    let display = db_path.display().to_string();
    crate::server::serve(db, serve_options, |addr, options| {
        // The first line on standard output names the address, so that a
        // script (or a test) that asked for port 0 learns the port.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
        let mode = if options.allow_import {
            "imports allowed"
        } else {
            "read-only"
        };
        let auth = if options.token.is_some() {
            "bearer token required"
        } else {
            "no token"
        };
        eprintln!(
            "tally: serving {display} ({mode}, {auth}); Prometheus API at \
             http://{addr}{PROMETHEUS_BASE}; Ctrl-C stops"
        );
    })?;
    Ok(ExitCode::SUCCESS)
}
