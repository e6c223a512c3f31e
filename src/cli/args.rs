//! The command line as clap parses it. Nothing here does work; `cli::run`
//! resolves these flags into what each command needs.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// tally: per-account count series — find who lost followers, how many,
/// when, and whether they came back.
#[derive(Debug, Parser)]
#[command(name = "tally", version, about, long_about = None, max_term_width = 100)]
pub(crate) struct Args {
    /// The database directory.
    #[arg(
        long,
        global = true,
        env = "TALLY_DB",
        default_value = "tally.db",
        value_name = "PATH"
    )]
    pub db: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show what the database holds and what it costs on disk.
    Stats,
    /// Read every checksummed byte; exit 1 and list what is damaged.
    Verify,
    /// Merge segments into as few as possible.
    Compact,
    /// Run one query and print its rows.
    Query(QueryArgs),
    /// Start an interactive shell: queries, meta commands (.help), history
    /// and tab completion; reads queries from standard input when it is not
    /// a terminal.
    Repl,
}

#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// Output format [default: table on a terminal, csv otherwise].
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Only points at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub from: Option<i64>,
    /// Only points before this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub to: Option<i64>,
    /// The query, e.g. 'drop(followers, 5%, 1h)'.
    pub query: String,
}

/// Parses a `--from`/`--to`/`--at` time; clap turns the error into a usage
/// error (exit 2).
pub(crate) fn parse_time_arg(text: &str) -> Result<i64, String> {
    crate::time::parse_time(text)
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Csv,
    Json,
}
