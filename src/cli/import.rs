//! `tally import`: snapshot files into the database, atomically, with a
//! progress bar on a terminal and a one-line summary at the end.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::{ImportArgs, ImportFormat};
use crate::import::{Format, ImportOptions, Input, Progress};
use crate::{Db, Error, MergeSummary, Options};

pub(crate) fn run(db_path: &Path, args: &ImportArgs) -> Result<ExitCode, Error> {
    let options = ImportOptions {
        at: args.at,
        format: args.format.map(|f| match f {
            ImportFormat::Csv => Format::Csv,
            ImportFormat::Jsonl => Format::Jsonl,
        }),
        skip_bad: args.skip_bad,
        shard: args.shard,
    };
    let inputs: Vec<Input> = args.files.iter().map(Input::from_arg).collect();
    let started = Instant::now();
    // The merge runs below, after the summary line, so that a failed merge
    // is reported as what it is: the import itself is committed.
    let db = Db::open_with(
        db_path,
        Options::default()
            .memory_budget(args.memory_budget)
            .auto_merge(false),
    )?;
    // The marker is written before the import, so that a directory of
    // another shard is refused before any row is read.
    if let Some(shard) = args.shard {
        shard.mark(db_path)?;
    }
    let mut writer = db.writer()?;
    let bar = progress_bar();
    let result = writer.import(&inputs, &options, |p| draw(&bar, p));
    bar.finish_and_clear();
    // On error the writer is dropped uncommitted: nothing of this
    // invocation becomes visible, and its spilled segments are removed.
    let summary = result?;
    let committed = writer.commit()?;
    let merged = if args.no_merge {
        Ok(MergeSummary::default())
    } else {
        writer.merge()
    };
    drop(writer);
    let seconds = started.elapsed().as_secs_f64();

    let mut err = std::io::stderr().lock();
    if summary.skipped > 0 {
        let _ = writeln!(
            err,
            "tally: skipped {} bad {}; the first:",
            summary.skipped,
            if summary.skipped == 1 { "row" } else { "rows" }
        );
        for example in &summary.skipped_examples {
            let _ = writeln!(err, "  {example}");
        }
    }
    if let Some(shard) = args.shard {
        let _ = writeln!(
            err,
            "tally: {shard}: passed over {} {} of other shards",
            summary.other_shards,
            if summary.other_shards == 1 {
                "row"
            } else {
                "rows"
            }
        );
    }
    let rate = if seconds > 0.0 {
        summary.points as f64 / seconds
    } else {
        0.0
    };
    writeln!(
        std::io::stdout().lock(),
        "imported {} {}, {} {}, {} points, {} new series in {:.2} s ({:.2} M points/s)",
        summary.files,
        if summary.files == 1 { "file" } else { "files" },
        summary.rows,
        if summary.rows == 1 { "row" } else { "rows" },
        summary.points,
        committed.new_series,
        seconds,
        rate / 1e6
    )
    .map_err(|e| Error::io("<stdout>", e))?;
    let merged = merged.map_err(|e| {
        Error::Writer(format!(
            "the import was committed, but the merge after it failed: {e}"
        ))
    })?;
    if merged.merges > 0 {
        let _ = writeln!(
            err,
            "tally: merged {} segments into {} ({:.1} MB written)",
            merged.segments_in,
            merged.segments_out,
            merged.bytes_written as f64 / 1e6
        );
    }
    let segments = db.stats()?.segments;
    if args.no_merge && segments >= COMPACT_HINT_SEGMENTS {
        let _ = writeln!(
            err,
            "tally: the database now has {segments} segments, and every query reads them all; \
             `tally compact` merges them into one"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// From this many segments on, an import with `--no-merge` suggests `tally
/// compact`. Every
/// query reads every segment: a full-scan `drop()` over 42 segments took 3.4
/// times as long as over the same data compacted (docs/performance.md).
const COMPACT_HINT_SEGMENTS: u64 = 16;

/// A bar on a terminal, nothing otherwise: when stdout or stderr is not a
/// terminal the import is being scripted, and the bar would be noise.
fn progress_bar() -> ProgressBar {
    let interactive = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn draw(bar: &ProgressBar, p: Progress) {
    match p.total_bytes {
        Some(total) => bar.set_length(total),
        None => bar.set_length(p.bytes.max(1)),
    }
    bar.set_position(p.bytes);
    let per_second = bar.per_sec();
    let rows_per_second = if bar.position() > 0 && per_second > 0.0 {
        // Rows per second, estimated from bytes per second and the bytes
        // per row seen so far.
        p.rows as f64 * per_second / bar.position() as f64
    } else {
        0.0
    };
    bar.set_message(format!(
        "{} rows, {:.1} M rows/s",
        p.rows,
        rows_per_second / 1e6
    ));
}
