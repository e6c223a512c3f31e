//! `tally generate`: writes a seeded sample data set as snapshot files in
//! the format `tally import` reads, and its ground truth.
//!
//! The layout of `--out DIR`:
//!
//! - `DIR/snapshots/`: the snapshot files, one per hour named so that name
//!   order is time order (`snapshot-2019-02-13T10.csv`), or one file
//!   (`snapshots.csv`) with `--single-file`; `.jsonl` with `--format jsonl`,
//!   and `.gz` added with `--gzip`;
//! - `DIR/truth.csv`: the purge and glitch events (see
//!   [`crate::generate::Truth::write_csv`]).
//!
//! The truth lives outside the snapshot folder because `tally import`
//! takes every `.csv` file of a folder, and the truth is not a snapshot.
//!
//! A CSV file has the header `time,account,followers,following`, a time
//! like `2019-02-13T10:00:00Z`, and an empty cell for a count the snapshot
//! missed; a JSON line has the keys `time`, `account`, `followers` and, when
//! it was not missed, `following`. An account missing from an hour has no
//! row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::args::{GenerateArgs, SnapshotFormat};
use crate::Error;
use crate::generate::{Config, DEFAULT_START_MS, Generator, Row};
use crate::time::format_time;

/// The buffer between the formatter and each file.
const WRITE_BUFFER: usize = 1 << 20;

pub(super) fn run(args: &GenerateArgs) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let mut config = Config {
        seed: args.seed,
        accounts: args.accounts,
        hours: args.hours,
        start_ms: args.start.unwrap_or(DEFAULT_START_MS),
        ..Config::default()
    };
    // Keep the purge and the glitch inside whatever range was asked for, so
    // that the truth always has something to find.
    config.fit_events();
    let generator = Generator::new(config)?;
    let snapshots = args.out.join("snapshots");
    prepare(&args.out)?;
    std::fs::create_dir(&snapshots).map_err(|e| Error::io(&snapshots, e))?;

    let ext = match (args.format, args.gzip) {
        (SnapshotFormat::Csv, false) => "csv",
        (SnapshotFormat::Csv, true) => "csv.gz",
        (SnapshotFormat::Jsonl, false) => "jsonl",
        (SnapshotFormat::Jsonl, true) => "jsonl.gz",
    };
    let names: Vec<Vec<u8>> = generator
        .account_names()
        .iter()
        .map(|n| n.as_bytes().to_vec())
        .collect();
    let mut totals = Totals::default();
    let mut single = if args.single_file {
        Some(SnapshotFile::create(
            snapshots.join(format!("snapshots.{ext}")),
            args.format,
            args.gzip,
        )?)
    } else {
        None
    };
    let mut text = Vec::with_capacity(WRITE_BUFFER);
    let truth = generator.run(|rows| {
        let Some(first) = rows.first() else {
            // An hour in which every account was missing: no file, since an
            // empty file would be a snapshot of nobody.
            return Ok(());
        };
        let time = format_time(first.time_ms);
        match &mut single {
            Some(file) => write_hour(
                file,
                &mut text,
                args.format,
                &time,
                &names,
                rows,
                &mut totals,
            ),
            None => {
                // `2019-02-13T10`: the hour, which sorts as time does.
                let hour = time.get(..13).unwrap_or(&time);
                let mut file = SnapshotFile::create(
                    snapshots.join(format!("snapshot-{hour}.{ext}")),
                    args.format,
                    args.gzip,
                )?;
                write_hour(
                    &mut file,
                    &mut text,
                    args.format,
                    &time,
                    &names,
                    rows,
                    &mut totals,
                )?;
                totals.bytes += file.finish()?;
                totals.files += 1;
                Ok(())
            }
        }
    })?;
    if let Some(file) = single {
        totals.bytes += file.finish()?;
        totals.files += 1;
    }

    let truth_path = args.out.join("truth.csv");
    let mut out = BufWriter::new(File::create(&truth_path).map_err(|e| Error::io(&truth_path, e))?);
    truth
        .write_csv(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(&truth_path, e))?;

    writeln!(
        std::io::stdout().lock(),
        "wrote {} files, {} rows, {} points, {} bytes to {} and {} events to {} in {:.1} s",
        totals.files,
        totals.rows,
        totals.points,
        totals.bytes,
        snapshots.display(),
        truth.events.len(),
        truth_path.display(),
        started.elapsed().as_secs_f64()
    )
    .map_err(|e| Error::io("<stdout>", e))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Default)]
struct Totals {
    files: u64,
    rows: u64,
    points: u64,
    bytes: u64,
}

/// Writes one hour's rows into `file`, formatting them through `text`.
fn write_hour(
    file: &mut SnapshotFile,
    text: &mut Vec<u8>,
    format: SnapshotFormat,
    time: &str,
    names: &[Vec<u8>],
    rows: &[Row],
    totals: &mut Totals,
) -> Result<(), Error> {
    text.clear();
    for row in rows {
        format_row(text, format, time, names, row);
        totals.rows += 1;
        totals.points += 1 + u64::from(row.following.is_some());
        if text.len() >= WRITE_BUFFER - 4096 {
            file.write(text)?;
            text.clear();
        }
    }
    file.write(text)
}

/// Creates `dir` if needed and refuses one that holds anything: files left
/// from another run would be imported along with the new ones.
fn prepare(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    if entries.next().is_some() {
        return Err(Error::Invalid(format!(
            "{} is not empty; tally generate writes into a new or empty directory",
            dir.display()
        )));
    }
    Ok(())
}

/// Appends one row in `format`: the names are plain (`[a-z0-9_.]`), so
/// neither format needs quoting or escaping.
fn format_row(out: &mut Vec<u8>, format: SnapshotFormat, time: &str, names: &[Vec<u8>], row: &Row) {
    let name = names.get(row.account as usize).map_or(&[][..], |n| &n[..]);
    match format {
        SnapshotFormat::Csv => {
            out.extend_from_slice(time.as_bytes());
            out.push(b',');
            out.extend_from_slice(name);
            out.push(b',');
            push_u64(out, row.followers);
            out.push(b',');
            if let Some(following) = row.following {
                push_u64(out, following);
            }
            out.push(b'\n');
        }
        SnapshotFormat::Jsonl => {
            out.extend_from_slice(b"{\"time\":\"");
            out.extend_from_slice(time.as_bytes());
            out.extend_from_slice(b"\",\"account\":\"");
            out.extend_from_slice(name);
            out.extend_from_slice(b"\",\"followers\":");
            push_u64(out, row.followers);
            if let Some(following) = row.following {
                out.extend_from_slice(b",\"following\":");
                push_u64(out, following);
            }
            out.extend_from_slice(b"}\n");
        }
    }
}

/// Appends the decimal digits of `v`: the formatting machinery of `write!`
/// costs more than the rest of a row.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// One snapshot file being written, with its header.
struct SnapshotFile {
    path: PathBuf,
    sink: Sink,
}

enum Sink {
    Plain(BufWriter<File>),
    // Boxed: the encoder's state is much larger than a BufWriter.
    Gzip(Box<GzEncoder<BufWriter<File>>>),
}

impl SnapshotFile {
    fn create(path: PathBuf, format: SnapshotFormat, gzip: bool) -> Result<SnapshotFile, Error> {
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let buffered = BufWriter::with_capacity(WRITE_BUFFER, file);
        // Level 1: these are fixtures, written more often than kept. On
        // this data it is three times as fast as the default level, for
        // files an eighth larger.
        let sink = if gzip {
            Sink::Gzip(Box::new(GzEncoder::new(buffered, Compression::fast())))
        } else {
            Sink::Plain(buffered)
        };
        let mut file = SnapshotFile { path, sink };
        if format == SnapshotFormat::Csv {
            file.write(b"time,account,followers,following\n")?;
        }
        Ok(file)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let result = match &mut self.sink {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gzip(w) => w.write_all(bytes),
        };
        result.map_err(|e| Error::io(&self.path, e))
    }

    /// Flushes and closes the file and returns its size in bytes.
    fn finish(self) -> Result<u64, Error> {
        let io = |e| Error::io(&self.path, e);
        let buffered = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(io)?,
        };
        let file = buffered.into_inner().map_err(|e| io(e.into_error()))?;
        Ok(file.metadata().map_err(io)?.len())
    }
}
