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
    /// Build a sample database replaying Instagram's winter 2018-19 and
    /// print what tally finds in it.
    ///
    /// The database goes into a temporary folder, removed at the end, unless
    /// --db (or TALLY_DB) names a new one to keep.
    Demo(DemoArgs),
    /// Import snapshot files (CSV or JSON lines, gzipped or not; a folder
    /// imports every snapshot file in it; - reads standard input).
    Import(ImportArgs),
    /// Run one query and print its rows.
    Query(QueryArgs),
    /// Write every point, or a query's table, as Parquet files (zstd)
    /// partitioned by account, for DuckDB, Polars, pandas or Spark
    /// (docs/export.md). Needs tally built with `--features arrow`.
    Export(ExportArgs),
    /// Run one SQL statement over the database: the table `points` and the
    /// table function tally('QUERY') (docs/sql.md). Needs tally built with
    /// `--features datafusion`.
    Sql(SqlArgs),
    /// Serve this node's shards of a cluster to `tally query --cluster`
    /// (docs/scale-out.md). Needs tally built with `--features
    /// distributed`.
    Worker(WorkerArgs),
    /// Start an interactive shell: queries, meta commands (.help), history
    /// and tab completion; reads queries from standard input when it is not
    /// a terminal.
    Repl,
    /// Show what the database holds and what it costs on disk.
    Stats,
    /// Read every checksummed byte; exit 1 and list what is damaged.
    Verify,
    /// Merge segments into as few as possible.
    Compact,
    /// Write seeded sample snapshot files, and their ground truth, for
    /// `tally import`.
    Generate(GenerateArgs),
    /// Serve the database over HTTP: queries, imports, and a
    /// Prometheus-compatible API for Grafana (docs/http-api.md).
    #[cfg(feature = "server")]
    Serve(ServeArgs),
}

#[cfg(feature = "server")]
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on. Anything but loopback needs --token (or
    /// --no-auth).
    #[arg(long, value_name = "ADDR", default_value_t = format!("127.0.0.1:{}", crate::server::DEFAULT_PORT))]
    pub listen: String,
    /// A bearer token every request must carry (`Authorization: Bearer
    /// TOKEN`).
    #[arg(
        long,
        env = "TALLY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Serve beyond loopback without a token.
    #[arg(long, conflicts_with = "token")]
    pub no_auth: bool,
    /// Accept snapshots through POST /api/import (the server is read-only
    /// without it); also creates the database if it does not exist.
    #[arg(long)]
    pub allow_import: bool,
    /// The largest request body accepted (as sent, so compressed for a
    /// gzip body).
    #[arg(long, value_parser = parse_bytes_arg, default_value = "64MiB", value_name = "SIZE")]
    pub max_body: usize,
    /// How long a query may run before it is cancelled (e.g. 30s, 2m).
    #[arg(long, value_parser = parse_duration_arg, default_value = "30s", value_name = "DURATION")]
    pub query_timeout: std::time::Duration,
    /// How many queries may run at once; more wait their turn within their
    /// time limit.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..), value_name = "N")]
    pub max_queries: u16,
    /// The Prometheus API's lookback: how far before an evaluation time a
    /// point still counts (Prometheus's default is 5m; 1h suits hourly
    /// snapshots).
    #[arg(long, value_parser = parse_duration_arg, default_value = "5m", value_name = "DURATION")]
    pub lookback: std::time::Duration,
    /// Let pages from this origin (scheme, host and port, as browsers send
    /// it in `Origin`) read answers (CORS); off by default.
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Option<String>,
}

/// Parses a duration flag: whole numbers with units (`30s`, `1m30s`, `1h`;
/// the units of `crate::time::duration_ms`), more than zero.
#[cfg(feature = "server")]
pub(crate) fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    match crate::time::duration_ms(text.trim()) {
        None => Err(format!("{text:?} is not a duration like 30s, 2m or 1h")),
        Some(0) => Err(format!(
            "{text:?} is zero; give a duration longer than that"
        )),
        Some(ms) => Ok(std::time::Duration::from_millis(ms)),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The time of every row, for files without a `time` column (RFC 3339 or
    /// Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub at: Option<i64>,
    /// The format of every input [default: from the file name].
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Skip bad rows (counting them and showing the first) instead of
    /// failing the whole import.
    #[arg(long)]
    pub skip_bad: bool,
    /// Import only the rows whose account belongs to shard S of N
    /// (docs/scale-out.md): the others are passed over, so one file feeds
    /// every shard. Marks the database as that shard, and refuses a
    /// database marked as another.
    #[arg(long, value_name = "S/N")]
    pub shard: Option<crate::Shard>,
    /// Memory for buffering points before they are spilled into a segment
    /// (e.g. 64MiB, 1GiB); a larger import is still committed atomically,
    /// and its segments are merged into one after it. Snapshots in time
    /// order need only one snapshot's worth.
    #[arg(long, value_parser = parse_bytes_arg, default_value = "256MiB", value_name = "SIZE")]
    pub memory_budget: usize,
    /// Do not merge segments after the import (docs/format.md, "Merging");
    /// the next import that merges, or `tally compact`, catches up.
    #[arg(long)]
    pub no_merge: bool,
    /// Files, folders, or - for standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::ffi::OsString>,
}

/// The formats `--format` accepts for import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ImportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// Output format [default: table on a terminal, csv otherwise]; svg
    /// draws the result (docs/query-language.md, section 8); arrow writes
    /// an Arrow IPC stream (docs/export.md).
    #[arg(long, value_enum)]
    pub format: Option<QueryFormat>,
    /// Only points at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub from: Option<i64>,
    /// Only points before this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub to: Option<i64>,
    /// Run the query over the shards of this cluster file instead of
    /// --db, on their `tally worker`s (docs/scale-out.md). Needs tally
    /// built with `--features distributed`.
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// The query, e.g. 'drop(followers, 5%, 1h)'.
    pub query: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// The cluster file: every shard, and the node and directory of each
    /// (docs/scale-out.md).
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
    /// Which node of the cluster file this is: its shards are served.
    #[arg(long, value_name = "NAME")]
    pub node: String,
    /// The address to listen on [default: 127.0.0.1 and the port of the
    /// node's url].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SqlArgs {
    /// Output format [default: table on a terminal, csv otherwise]; arrow
    /// writes an Arrow IPC stream with the answer's own column types.
    #[arg(long, value_enum)]
    pub format: Option<QueryFormat>,
    /// Only points at or after this time, in `points` and in every
    /// tally('…') (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub from: Option<i64>,
    /// Only points before this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub to: Option<i64>,
    /// The statement, e.g. 'SELECT count(*) FROM tally('drop(followers,
    /// 5%, 1h)')'.
    pub sql: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The directory to write into; created if needed, and it must be
    /// empty.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How many files: each account goes to one of them, by a hash of its
    /// name (docs/export.md).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub partitions: u32,
    /// Only points at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub from: Option<i64>,
    /// Only points before this time (RFC 3339 or Unix seconds).
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub to: Option<i64>,
    /// A query whose table to write, e.g. 'drop(followers, 5%, 1h)'
    /// [default: every point of every metric].
    pub query: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Output format of the answers [default: table on a terminal, csv
    /// otherwise].
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// The directory to write into; created if needed, and it must be
    /// empty.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How many accounts to invent.
    #[arg(long, value_name = "N", default_value_t = crate::generate::DEFAULT_ACCOUNTS)]
    pub accounts: u32,
    /// How many hourly snapshots to take.
    #[arg(long, value_name = "H", default_value_t = crate::generate::DEFAULT_HOURS)]
    pub hours: u32,
    /// The first snapshot, a whole hour (RFC 3339 or Unix seconds)
    /// [default: 2018-11-20T00:00:00Z].
    #[arg(long, value_parser = parse_time_arg, value_name = "TIME")]
    pub start: Option<i64>,
    /// The seed: the same seed and flags give the same bytes.
    #[arg(long, value_name = "S", default_value_t = crate::generate::DEFAULT_SEED)]
    pub seed: u64,
    /// The format of the snapshot files.
    #[arg(long, value_enum, default_value_t = SnapshotFormat::Csv)]
    pub format: SnapshotFormat,
    /// Compress the snapshot files with gzip.
    #[arg(long)]
    pub gzip: bool,
    /// Write one file holding every hour instead of one file per hour.
    #[arg(long)]
    pub single_file: bool,
}

/// The format of the files `tally generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SnapshotFormat {
    Csv,
    Jsonl,
}

/// Parses a size such as `512MiB`, `2GiB`, `64KiB` or a plain number of
/// bytes.
pub(crate) fn parse_bytes_arg(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 512MiB"))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}: use KiB, MiB or GiB")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
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

/// What `tally query --format` accepts: a way to print the table, or a
/// picture of the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum QueryFormat {
    Table,
    Csv,
    Json,
    /// An SVG picture of the result.
    Svg,
    /// An Arrow IPC stream (needs tally built with `--features arrow`).
    Arrow,
}
