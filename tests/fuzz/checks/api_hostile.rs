//! `api_hostile`: the library API driven by a [`Script`] that the
//! `arbitrary` crate decodes from the input: hostile account and metric
//! names (empty, 4096 and 4097 bytes, megabytes, control characters, not
//! ASCII), times and counts at the ends of their types, memory budgets of
//! 0, 1 and `usize::MAX`, appends, commits, merges, compactions, second
//! writers, reads and queries over any range. Checked against a model of
//! the committed points:
//!
//! - nothing panics;
//! - `append` fails exactly when docs/embedding.md and [D1] say it must
//!   (a bad metric or account name, a time outside the years 0000 to 9999,
//!   a count above 2^63 - 1), and a second writer is `Error::Locked`;
//! - reads give the committed points, the later of two at the same time
//!   winning ([I5]), and nothing of a batch dropped uncommitted;
//! - at the end the database verifies clean and reopens to the same points.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use arbitrary::{Arbitrary, Unstructured};
use tally::{Db, Error, Options, Point, TimeRange, Writer};

use crate::common;

/// A whole run: how the database is opened, and what is done to it.
#[derive(Arbitrary, Debug)]
pub struct Script {
    budget: Budget,
    auto_merge: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Budget {
    Zero,
    One,
    Small(u16),
    Huge,
    Max,
}

impl Budget {
    fn bytes(self) -> usize {
        match self {
            Budget::Zero => 0,
            Budget::One => 1,
            Budget::Small(n) => usize::from(n),
            Budget::Huge => 1 << 40,
            Budget::Max => usize::MAX,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Name {
    /// One of [`KNOWN_NAMES`].
    Known(u8),
    Empty,
    Text(String),
    /// `unit` repeated: long names, up to megabytes.
    Repeat {
        unit: char,
        times: u16,
    },
}

/// Names at the edges of [D1]: valid and not, at and past the lengths.
const KNOWN_NAMES: [&str; 12] = [
    "followers",
    "following",
    "adela_mae",
    "_",
    "Zoë",
    " ",
    "\0",
    "a\nb",
    "1abc",
    "a-b",
    "\u{FEFF}x",
    "\u{10FFFF}",
];

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Known(i) => KNOWN_NAMES[usize::from(*i) % KNOWN_NAMES.len()].to_string(),
            Name::Empty => String::new(),
            Name::Text(s) => s.clone(),
            Name::Repeat { unit, times } => {
                // 255/256 and 4096/4097 bytes come up for ASCII units.
                let times = match times % 8 {
                    0 => 255,
                    1 => 256,
                    2 => 4096,
                    3 => 4097,
                    _ => usize::from(*times),
                };
                // `repeat` copies whole runs; collecting the characters
                // one by one was a fifth of the fuzzer's time.
                unit.to_string().repeat(times)
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Time {
    Min,
    Max,
    Zero,
    /// The earliest and latest times stored, and one past each.
    Earliest,
    Latest,
    BeforeEarliest,
    AfterLatest,
    /// Hours from the sample day's start.
    Hours(i16),
    Raw(i64),
}

const EARLIEST: i64 = -62_167_219_200_000;
const LATEST: i64 = 253_402_207_200_000;

impl Time {
    fn ms(self) -> i64 {
        match self {
            Time::Min => i64::MIN,
            Time::Max => i64::MAX,
            Time::Zero => 0,
            Time::Earliest => EARLIEST,
            Time::Latest => LATEST,
            Time::BeforeEarliest => EARLIEST - 1,
            Time::AfterLatest => LATEST + 1,
            Time::Hours(h) => common::T0 + i64::from(h) * common::HOUR,
            Time::Raw(t) => t,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Count {
    Zero,
    One,
    I64Max,
    AboveI64Max,
    U64Max,
    Raw(u64),
}

impl Count {
    fn value(self) -> u64 {
        match self {
            Count::Zero => 0,
            Count::One => 1,
            Count::I64Max => i64::MAX as u64,
            Count::AboveI64Max => i64::MAX as u64 + 1,
            Count::U64Max => u64::MAX,
            Count::Raw(c) => c,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A second writer while one is open must be refused.
    OpenWriter,
    Append {
        account: Name,
        metric: Name,
        time: Time,
        count: Count,
    },
    /// `n % 2048` points from `start`, `step` apart: enough to spill a
    /// small budget's log into segments mid-batch.
    AppendRun {
        account: Name,
        metric: Name,
        start: Time,
        step: i64,
        n: u16,
        count: Count,
    },
    Commit,
    DropWriter,
    Merge,
    Compact,
    Points {
        account: Name,
        metric: Name,
        from: Time,
        to: Time,
    },
    Query {
        which: u8,
        from: Time,
        to: Time,
    },
    Reopen {
        budget: Budget,
        auto_merge: bool,
    },
    Refresh,
    Stats,
    Series {
        metric: Name,
    },
}

const QUERIES: [&str; 6] = [
    "count(followers)",
    "followers",
    "drop(followers, 5%, 1h)",
    "sum(following)",
    "topk(3, drop(followers, 1, 1d))",
    "change(resample(followers, 1h), 1d)",
];

/// Whether this process has checked that a second writer is refused.
static LOCK_CHECKED: AtomicBool = AtomicBool::new(false);

/// Points by (account, metric), then time.
type Model = BTreeMap<(String, String), BTreeMap<i64, u64>>;

/// Whether `append` must accept the point ([D1], docs/embedding.md).
fn valid(account: &str, metric: &str, time: i64, count: u64) -> bool {
    let metric_ok = metric.len() <= 255
        && metric
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && metric
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let account_ok = !account.is_empty() && account.len() <= 4096;
    metric_ok && account_ok && (EARLIEST..=LATEST).contains(&time) && count <= i64::MAX as u64
}

fn options(budget: Budget, auto_merge: bool) -> Options {
    Options::default()
        .memory_budget(budget.bytes())
        .auto_merge(auto_merge)
}

struct State {
    dir: tempfile::TempDir,
    db: Db,
    writer: Option<Writer>,
    committed: Model,
    pending: Model,
}

impl State {
    fn open(dir: tempfile::TempDir, budget: Budget, auto_merge: bool) -> State {
        let db =
            Db::open_with(dir.path(), options(budget, auto_merge)).expect("the database opens");
        State {
            dir,
            db,
            writer: None,
            committed: Model::new(),
            pending: Model::new(),
        }
    }

    fn writer(&mut self) -> &mut Writer {
        if self.writer.is_none() {
            self.writer = Some(self.db.writer().expect("the only writer opens"));
        }
        self.writer.as_mut().expect("opened above")
    }

    /// Appends a point and checks the writer took it, or refused it, as
    /// it must; returns whether it took it.
    fn append(&mut self, account: &str, metric: &str, time: i64, count: u64) -> bool {
        let appended = self.writer().append(account, metric, time, count);
        let expected = valid(account, metric, time, count);
        match appended {
            Ok(()) => {
                assert!(
                    expected,
                    "append accepted {account:?} {metric:?} {time} {count}"
                );
                self.pending
                    .entry((account.to_string(), metric.to_string()))
                    .or_default()
                    .insert(time, count);
                true
            }
            Err(Error::Invalid(_)) => {
                assert!(
                    !expected,
                    "append refused {account:?} {metric:?} {time} {count}"
                );
                false
            }
            Err(e) => panic!("append failed with an unexpected error: {e}"),
        }
    }

    fn commit(&mut self) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        if let Err(e) = writer.commit() {
            panic!("a commit failed: {e}");
        }
        for (key, points) in std::mem::take(&mut self.pending) {
            self.committed.entry(key).or_default().extend(points);
        }
    }

    fn drop_writer(&mut self) {
        self.writer = None;
        self.pending.clear();
    }

    fn expected(&self, account: &str, metric: &str, range: TimeRange) -> Vec<Point> {
        self.committed
            .get(&(account.to_string(), metric.to_string()))
            .map(|points| {
                points
                    .range(range.from..)
                    .filter(|(t, _)| **t < range.to)
                    .map(|(&time, &count)| Point { time, count })
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn check(data: &[u8]) {
    let Ok(script) = Script::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    // For triage: what a crashing input does.
    if std::env::var_os("TALLY_FUZZ_DEBUG").is_some() {
        eprintln!("{script:#?}");
    }
    let mut s = State::open(common::tempdir(), script.budget, script.auto_merge);
    for op in &script.ops {
        match op {
            // A second writer of the same process waits 200 ms for the
            // lock before it gives up (src/db/lock.rs, FORK_GRACE), so a
            // process checks that only once: the fuzzer's speed is its reach.
            Op::OpenWriter if !LOCK_CHECKED.swap(true, Ordering::Relaxed) => {
                s.writer();
                match s.db.writer() {
                    Err(Error::Locked { .. }) => {}
                    Err(e) => panic!("a second writer failed with {e}"),
                    Ok(_) => panic!("a second writer opened while the first was held"),
                }
            }
            Op::Append {
                account,
                metric,
                time,
                count,
            } => {
                s.append(&account.text(), &metric.text(), time.ms(), count.value());
            }
            Op::AppendRun {
                account,
                metric,
                start,
                step,
                n,
                count,
            } => {
                let (account, metric) = (account.text(), metric.text());
                let mut time = start.ms();
                for _ in 0..n % 2048 {
                    // The rest of a refused run would mostly be refused for
                    // the same reason; formatting megabyte names into
                    // thousands of errors would only slow the fuzzer.
                    if !s.append(&account, &metric, time, count.value()) {
                        break;
                    }
                    let Some(next) = time.checked_add(*step) else {
                        break;
                    };
                    time = next;
                }
            }
            Op::Commit => s.commit(),
            Op::DropWriter => s.drop_writer(),
            Op::Merge => {
                // A merge runs between batches only (docs/embedding.md).
                let pending = s.writer().pending_points() > 0;
                match s.writer().merge() {
                    Ok(_) if !pending => {}
                    Err(Error::Writer(_)) if pending => {}
                    outcome => panic!("a merge with pending = {pending} gave {outcome:?}"),
                }
            }
            Op::OpenWriter => {}
            Op::Compact if s.writer.is_some() && LOCK_CHECKED.swap(true, Ordering::Relaxed) => {}
            Op::Compact => match (&mut s.writer, s.db.compact()) {
                (Some(_), Err(Error::Locked { .. })) => {}
                (None, Ok(_)) => {}
                (_, outcome) => panic!("compact gave {outcome:?}"),
            },
            Op::Points {
                account,
                metric,
                from,
                to,
            } => {
                let range = TimeRange {
                    from: from.ms(),
                    to: to.ms(),
                };
                if common::SKIP_REVERSED_RANGES && range.from > range.to {
                    continue;
                }
                let (account, metric) = (account.text(), metric.text());
                match s.db.points(&account, &metric, range) {
                    Ok(points) => assert_eq!(
                        points,
                        s.expected(&account, &metric, range),
                        "{account:?} {metric:?} over {range:?}"
                    ),
                    Err(e) => panic!("points failed: {e}"),
                }
            }
            Op::Query { which, from, to } => {
                let range = TimeRange {
                    from: from.ms(),
                    to: to.ms(),
                };
                if common::SKIP_REVERSED_RANGES && range.from > range.to {
                    continue;
                }
                let text = QUERIES[usize::from(*which) % QUERIES.len()];
                let query = tally::Query::parse(text).expect("a fixed query parses");
                // An error is an answer too: `sum` of counts near 2^63
                // does not fit in 64 bits, and says so.
                match query.range(range).run(&s.db) {
                    Ok(_) | Err(Error::Invalid(_)) => {}
                    Err(e) => panic!("{text} over {range:?} failed: {e}"),
                }
            }
            Op::Reopen { budget, auto_merge } => {
                s.drop_writer();
                s.db = Db::open_with(s.dir.path(), options(*budget, *auto_merge))
                    .expect("the database reopens");
            }
            Op::Refresh => s.db.refresh().expect("refresh"),
            Op::Stats => {
                let stats = s.db.stats().expect("stats");
                let stored: usize = s.committed.values().map(BTreeMap::len).sum();
                assert!(stats.points >= stored as u64, "{stats:?}");
            }
            Op::Series { metric } => {
                let metric = metric.text();
                for series in
                    s.db.series(&metric, |_| true)
                        .expect("the series are listed")
                {
                    assert_eq!(series.metric, metric);
                }
            }
        }
    }
    s.drop_writer();
    let report = Db::verify(s.dir.path()).expect("verify runs");
    assert!(report.is_clean(), "{:?}", report.problems);
    let reopened = Db::open(s.dir.path()).expect("the database reopens");
    let dump = common::dump(&reopened).expect("the database reads");
    let expected: common::Dump = s
        .committed
        .iter()
        .filter(|(_, points)| !points.is_empty())
        .map(|(key, points)| {
            let points = points
                .iter()
                .map(|(&time, &count)| Point { time, count })
                .collect();
            (key.clone(), points)
        })
        .collect();
    let dump: common::Dump = dump.into_iter().filter(|(_, p)| !p.is_empty()).collect();
    assert!(
        dump == expected,
        "the database does not hold what was committed"
    );
}
