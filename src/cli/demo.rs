//! `tally demo`: the first command of the README. It builds a sample
//! database replaying Instagram's winter 2018–19 (the purge of fake
//! followers in November, the glitch of 13 February) with the library
//! writer, compacts it, and prints what tally finds in it: each question in
//! a line of prose, the query as the user would type it, and the answer
//! through the printers of `tally query`. It ends by checking the answers
//! against the generator's ground truth.
//!
//! The database goes into a fresh folder under the system's temporary
//! directory, removed at the end, unless `--db PATH` names a new one to
//! keep.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::CommandFactory;
use clap::parser::ValueSource;

use super::args::{Args, DemoArgs};
use super::{printer, resolve_format};
use crate::generate::{self, Config, DAY_MS, EventKind, HOUR_MS, Truth};
use crate::output::Printer;
use crate::time::format_time;
use crate::{Db, Error, Options, Query, Table, TimeRange, Value};

/// The writer spills a segment every this many bytes of buffered points, so
/// that the demo stays small in memory and compaction has segments to
/// merge.
const MEMORY_BUDGET: usize = 64 << 20;

/// The threshold and window of every drop the demo asks for.
const DROPS: &str = "drop(followers, 5%, 1h)";

pub(super) fn run(db: &Path, args: &DemoArgs) -> Result<ExitCode, Error> {
    let place = if db_was_given() {
        Place::kept(db)?
    } else {
        Place::temporary()?
    };
    let mut out = std::io::stdout().lock();
    let result = demo(&place, args, &mut out);
    match result {
        Ok(code) => Ok(code),
        // `tally demo | head` is not a failure.
        Err(Error::Io { path, source })
            if path == Path::new(STDOUT) && source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

const STDOUT: &str = "<stdout>";

fn stdout_error(e: std::io::Error) -> Error {
    Error::io(STDOUT, e)
}

/// Whether `--db` (or `TALLY_DB`) was given: the global flag has a default,
/// so its value alone cannot tell, and the demo must not build its sample
/// into `./tally.db` unasked. The command line is parsed again for the
/// source of the value; if that fails, the demo takes the safe side and
/// uses a temporary folder.
fn db_was_given() -> bool {
    Args::command()
        .try_get_matches_from(std::env::args_os())
        .ok()
        .and_then(|m| m.value_source("db"))
        .is_some_and(|source| source != ValueSource::DefaultValue)
}

/// Where the demo's database lives, and whether it is removed at the end.
struct Place {
    path: PathBuf,
    temporary: bool,
}

impl Place {
    /// A database the user asked for: it must not exist yet (or be an empty
    /// folder), since the demo would otherwise mix its sample into real
    /// data.
    fn kept(path: &Path) -> Result<Place, Error> {
        match std::fs::read_dir(path).map(|mut entries| entries.next().is_none()) {
            Ok(true) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "{} already exists; tally demo builds a new database, so give --db a path \
                     that does not exist yet",
                    path.display()
                )));
            }
        }
        Ok(Place {
            path: path.to_path_buf(),
            temporary: false,
        })
    }

    /// A new folder under the system's temporary directory. The process id
    /// and the clock make the name unique; `create_dir` (not
    /// `create_dir_all`) fails rather than reuse a folder that exists.
    fn temporary() -> Result<Place, Error> {
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last = None;
        for attempt in 0..100u32 {
            let path = base.join(format!(
                "tally-demo-{}-{nanos:09}-{attempt}",
                std::process::id()
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    return Ok(Place {
                        path,
                        temporary: true,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(path),
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Invalid(format!(
            "could not create a temporary folder for the demo (last tried {})",
            last.unwrap_or(base).display()
        )))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.temporary {
            // Best effort: a folder left behind in the temporary directory
            // is harmless, and there is no one to report it to.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Builds the database, prints the analysis and checks it.
fn demo(place: &Place, args: &DemoArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    // The demo's data set is the generator's story, `Config::default()`;
    // tests/demo.rs regenerates it to know the right answers.
    let config = Config::default();
    let (Some(purge), Some(glitch)) = (config.purge.clone(), config.glitch.clone()) else {
        return Err(Error::Invalid(
            "the demo's data set has no purge or no glitch".into(),
        ));
    };
    let mut printer = printer(resolve_format(args.format));

    let say = |out: &mut dyn Write, text: &str| -> Result<(), Error> {
        writeln!(out, "{text}").map_err(stdout_error)
    };
    say(
        out,
        "tally demo: a sample database replaying Instagram's winter 2018-19.\n",
    )?;
    say(
        out,
        &format!(
            "Building it: {} invented accounts, their followers and following counted every\n\
             hour from {} to {} ...",
            thousands(u64::from(config.accounts)),
            day(config.start_ms),
            day(config.end_ms())
        ),
    )?;
    out.flush().map_err(stdout_error)?;

    let started = Instant::now();
    let db = Db::open_with(&place.path, Options::default().memory_budget(MEMORY_BUDGET))?;
    let filled = generate::fill_db(&db, &config)?;
    let compacted = db.compact()?;
    let stats = db.stats()?;
    let truth = &filled.truth;
    say(
        out,
        &format!(
            "{} points, written and compacted from {} segments into {} in {:.1} s;\n\
             {:.2} bytes per point on disk{}.\n",
            thousands(filled.points),
            compacted.segments_before,
            compacted.segments_after,
            started.elapsed().as_secs_f64(),
            stats.bytes_per_point(),
            if place.temporary {
                String::new()
            } else {
                format!(", in {}", place.path.display())
            }
        ),
    )?;

    // What happened, from the ground truth, so that the reader can judge the
    // answers.
    let purges: Vec<_> = truth.of(EventKind::Purge).collect();
    let glitches: Vec<_> = truth.of(EventKind::Glitch).collect();
    let purges_5 = purges.iter().filter(|e| e.reaches_percent(5)).count();
    let glitch_lost = (
        glitches.iter().map(|e| e.lost).min().unwrap_or(0),
        glitches.iter().map(|e| e.lost).max().unwrap_or(0),
    );
    let first_fall = glitches
        .iter()
        .map(|e| e.start_ms())
        .min()
        .unwrap_or(glitch.at_ms);
    let back_by = glitches
        .iter()
        .filter_map(|e| e.recovered_at_ms)
        .max()
        .unwrap_or(glitch.at_ms);
    let delays = glitches
        .iter()
        .filter_map(|e| e.recovered_at_ms.map(|r| (r - e.time_ms) / HOUR_MS));
    let (fastest, slowest) = delays.fold((i64::MAX, 0), |(lo, hi), d| (lo.min(d), hi.max(d)));
    say(out, "What happened to them (the generator's ground truth):")?;
    say(
        out,
        &format!(
            "- {}: Instagram removes fake followers.\n  \
             {} accounts lose {}-{}% of their followers, for good; {} of them 5% or more.",
            hour_span(purge.at_ms),
            purges.len(),
            purge.loss_permille.0 / 10,
            purge.loss_permille.1 / 10,
            purges_5
        ),
    )?;
    say(
        out,
        &format!(
            "- {}, from {} UTC: a bug makes follower counts fall.\n  \
             {} accounts lose {}-{}% of theirs, from {} to {} followers, and get them\n  \
             back {}-{} hours later, all by {} UTC.\n",
            long_day(glitch.at_ms),
            clock(first_fall),
            glitches.len(),
            glitch.loss_permille.0 / 10,
            glitch.loss_permille.1 / 10,
            thousands(glitch_lost.0),
            thousands(glitch_lost.1),
            fastest,
            slowest,
            clock(back_by)
        ),
    )?;
    say(out, "Now tally, from the counts alone.\n")?;

    let mut question =
        |out: &mut dyn Write, prose: &str, query: &str, range: Option<(i64, i64)>| {
            ask(&db, printer.as_mut(), out, prose, query, range)
        };
    question(
        out,
        "Every fall of at least 5% within an hour: how many, for how many accounts,\n\
         and how many followers they lost.",
        &format!("summarize({DROPS})"),
        None,
    )?;
    question(
        out,
        "When? The same falls, counted per day.",
        &format!("summarize({DROPS}, 1d)"),
        None,
    )?;
    question(
        out,
        "Which falls came back within a day? The glitch.",
        &format!("summarize(recovered_within({DROPS}, 1d))"),
        None,
    )?;
    question(
        out,
        "The five largest of them, and when they came back.",
        &format!("topk(5, recovered_within({DROPS}, 1d))"),
        None,
    )?;
    question(
        out,
        "Which falls did not come back? The purge.",
        &format!("summarize(not recovered_within({DROPS}, 1d))"),
        None,
    )?;
    question(
        out,
        "The five largest of them.",
        &format!("topk(5, not recovered_within({DROPS}, 1d))"),
        None,
    )?;
    let glitch_day = glitch.at_ms - glitch.at_ms.rem_euclid(DAY_MS);
    question(
        out,
        &format!(
            "{} hour by hour: how many accounts started to fall in each hour, and\n\
             how many followers they lost.",
            long_day(glitch.at_ms)
        ),
        &format!("summarize({DROPS}, 1h)"),
        Some((glitch_day, glitch_day + DAY_MS)),
    )?;
    if let Some(example) = example(truth, glitch.at_ms) {
        let back = example.recovered_at_ms.unwrap_or(example.time_ms);
        question(
            out,
            &format!(
                "One of them through the day: {}\n\
                 had {} followers at {}, {} at {}, and all of them back at {}.",
                example.account,
                thousands(example.before),
                clock(example.start_ms()),
                thousands(example.after()),
                clock(example.time_ms),
                clock(back)
            ),
            &format!("followers{{account=\"{}\"}}", example.account),
            Some((example.start_ms() - 2 * HOUR_MS, back + 2 * HOUR_MS)),
        )?;
    }
    question(
        out,
        "The ten accounts that lost most, in either event.",
        &format!("topk(10, {DROPS})"),
        None,
    )?;

    let code = check(&db, truth, out)?;
    if place.temporary {
        say(
            out,
            "The database was temporary. Keep one with `tally demo --db PATH`, then try these\n\
             queries, and your own, with `tally --db PATH query '...'`.",
        )?;
    } else {
        say(
            out,
            &format!(
                "The database is in {0}: try these queries, and your own, with\n\
                 `tally --db {0} query '...'`.",
                place.path.display()
            ),
        )?;
    }
    out.flush().map_err(stdout_error)?;
    Ok(code)
}

/// Prints one question: its prose, the command that asks it, and the
/// answer.
fn ask(
    db: &Db,
    printer: &mut dyn Printer,
    out: &mut dyn Write,
    prose: &str,
    query: &str,
    range: Option<(i64, i64)>,
) -> Result<Table, Error> {
    for line in prose.lines() {
        writeln!(out, "-- {line}").map_err(stdout_error)?;
    }
    let (flags, range) = match range {
        Some((from, to)) => (
            format!("--from {} --to {} ", format_time(from), format_time(to)),
            TimeRange { from, to },
        ),
        None => (String::new(), TimeRange::ALL),
    };
    writeln!(out, "$ tally query {flags}'{query}'").map_err(stdout_error)?;
    let table = Query::parse(query)?.range(range).run(db)?;
    printer.print(&table, out).map_err(stdout_error)?;
    writeln!(out).map_err(stdout_error)?;
    Ok(table)
}

/// The glitch account to follow through the day: the largest loss among
/// those that fell at the glitch's main hour and came back with the fix
/// (the last recovery), or else the largest loss of all.
fn example(truth: &Truth, glitch_at: i64) -> Option<&generate::TruthEvent> {
    let glitches: Vec<_> = truth.of(EventKind::Glitch).collect();
    let fix = glitches.iter().filter_map(|e| e.recovered_at_ms).max()?;
    glitches
        .iter()
        .filter(|e| e.time_ms == glitch_at && e.recovered_at_ms == Some(fix))
        .max_by_key(|e| e.lost)
        .or_else(|| glitches.iter().max_by_key(|e| e.lost))
        .copied()
}

/// Compares tally's answers with the ground truth and says whether they
/// agree: every glitch fall of 5% or more is found recovered within a day,
/// at the right time, and every purge fall of 5% or more not recovered.
fn check(db: &Db, truth: &Truth, out: &mut dyn Write) -> Result<ExitCode, Error> {
    type Key = (String, i64, i64, i64);
    let rows = |query: &str, with_recovery: bool| -> Result<BTreeSet<Key>, Error> {
        let table = db.query(query)?;
        let get = |row: &[Value], column: &str| table.get(row, column).and_then(Value::as_i64);
        Ok(table
            .rows()
            .iter()
            .map(|row| {
                let account = table
                    .get(row, "account")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let end = get(row, "end").unwrap_or_default();
                let lost = get(row, "lost").unwrap_or_default();
                let recovered = if with_recovery {
                    get(row, "recovered_at").unwrap_or_default()
                } else {
                    0
                };
                (account, end, lost, recovered)
            })
            .collect())
    };
    let found_glitch = rows(&format!("recovered_within({DROPS}, 1d)"), true)?;
    let found_purge = rows(&format!("not recovered_within({DROPS}, 1d)"), false)?;
    let expected = |kind: EventKind| -> BTreeSet<Key> {
        truth
            .reaching(5)
            .filter(|e| e.kind == kind)
            .map(|e| {
                (
                    e.account.clone(),
                    e.time_ms,
                    e.lost as i64,
                    e.recovered_at_ms.unwrap_or(0),
                )
            })
            .collect()
    };
    let (want_glitch, want_purge) = (expected(EventKind::Glitch), expected(EventKind::Purge));
    let text = if found_glitch == want_glitch && found_purge == want_purge {
        format!(
            "Checked against the ground truth: the {} glitch falls are exactly the recovered\n\
             ones, each back at the right hour, and the {} purge falls of 5% or more exactly\n\
             the unrecovered ones. No organic change was mistaken for either.\n",
            want_glitch.len(),
            want_purge.len()
        )
    } else {
        format!(
            "MISMATCH with the ground truth: recovered {} (expected {}), not recovered {} \
             (expected {}). This is a bug in tally.\n",
            found_glitch.len(),
            want_glitch.len(),
            found_purge.len(),
            want_purge.len()
        )
    };
    writeln!(out, "{text}").map_err(stdout_error)?;
    Ok(
        if found_glitch == want_glitch && found_purge == want_purge {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2019-02-13`.
fn day(ms: i64) -> String {
    format_time(ms).chars().take(10).collect()
}

/// `13 February 2019`.
fn long_day(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let text = format_time(ms);
    let year = text.get(0..4).unwrap_or_default();
    let month: usize = text.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = text.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let name = MONTHS.get(month.saturating_sub(1)).unwrap_or(&"");
    format!("{day} {name} {year}")
}

/// `17:00`.
fn clock(ms: i64) -> String {
    format_time(ms).chars().skip(11).take(5).collect()
}

/// `26 November 2018, 14:00-15:00 UTC`: the hour before a snapshot.
fn hour_span(ms: i64) -> String {
    format!(
        "{}, {}-{} UTC",
        long_day(ms - HOUR_MS),
        clock(ms - HOUR_MS),
        clock(ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(11_040_123), "11,040,123");
        let t = crate::generate::STORY_GLITCH_MS;
        assert_eq!(day(t), "2019-02-13");
        assert_eq!(long_day(t), "13 February 2019");
        assert_eq!(clock(t), "10:00");
        assert_eq!(hour_span(t), "13 February 2019, 09:00-10:00 UTC");
    }
}
