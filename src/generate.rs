//! A seeded generator of realistic follower counts, with a known answer.
//!
//! This module owns the sample data of `tally demo` and `tally generate`,
//! and of the tests and benchmarks that need a database whose right answer
//! is known. It invents accounts (never real handles) whose sizes follow a
//! power law, from tens to millions of followers; samples their `followers`
//! and `following` counts every hour with organic noise; and replays the
//! story of Instagram's winter 2018–19:
//!
//! - a **purge**: in late November 2018 Instagram removed fake followers, and
//!   a share of the accounts lost 1–15% at one moment, for good;
//! - a **glitch**: on 13 February 2019 a bug made follower counts fall
//!   worldwide, by a few dozen followers for some and tens of thousands for
//!   others, and the counts came back within hours (the fix landed at about
//!   17:00 UTC).
//!
//! Some accounts also have missing hours, as a scraper that failed would
//! leave. The [`Truth`] lists every purge and glitch event with the time of
//! the fall, the count before it, what was lost and when it came back, so
//! that a test can check tally's answers exactly.
//!
//! It is public (and hidden) so that the tests and benchmarks can use it;
//! it is not a stable API.
//!
//! # The guarantees the tests rely on
//!
//! - The output depends only on the [`Config`]: the arithmetic uses a
//!   private PRNG (splitmix64), IEEE basic operations and square roots, and
//!   its own `ln` and `exp` written with those, so the bytes are the same on
//!   every platform. Each account has its own random stream, so an account's
//!   name, size and organic changes do not depend on how many accounts are
//!   generated (which accounts the events hit does).
//! - Noise alone never makes a count fall by 5% or more from one hour to
//!   the next: an hour's net loss is capped at 2% of the count (so accounts
//!   under 50 followers never lose one to noise). Every point that
//!   `drop(followers, 5%, 1h)` finds is therefore the fall of a purge or
//!   glitch event, and every event whose loss reaches 5% is found.
//! - The hour of a fall has no organic change, so the fall is exactly
//!   `lost`; a missing hour never touches an event (two hours of margin on
//!   each side), since a gap is never a drop.
//! - A glitch comes back exactly at its `recovered_at`, and not before: while
//!   the count is hidden, organic changes are never negative and add up to
//!   less than the loss.
//! - A purge does not come back within [`Purge::quiet_hours`] (a week by
//!   default), even in the sense of `recovered_within(…, 50%)`: for that long
//!   the count stays below `after + lost / 2`.

use std::collections::HashSet;
use std::fmt;
use std::io::Write;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::time::{MAX_TIME_MS, MIN_TIME_MS, format_time};

/// One hour in milliseconds: the step between snapshots.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The seed of the story's data set.
pub const DEFAULT_SEED: u64 = 20_190_213;
/// Accounts in the story's data set.
pub const DEFAULT_ACCOUNTS: u32 = 2_500;
/// Hourly snapshots in the story's data set: 92 days, from 2018-11-20 to
/// 2019-02-20.
pub const DEFAULT_HOURS: u32 = 92 * 24;
/// The first snapshot of the story: 2018-11-20T00:00:00Z.
pub const DEFAULT_START_MS: i64 = 1_542_672_000_000;
/// The purge of the story: the 15:00 snapshot of 2018-11-26 is the first to
/// show it.
pub const STORY_PURGE_MS: i64 = 1_543_244_400_000;
/// The glitch of the story: most accounts first show it in the 10:00
/// snapshot of 2019-02-13.
pub const STORY_GLITCH_MS: i64 = 1_550_052_000_000;

/// The most accounts a data set may have.
pub const MAX_ACCOUNTS: u32 = 10_000_000;

/// The largest account the generator invents, in followers.
pub const MAX_FOLLOWERS: u64 = 20_000_000;

/// The metric of the follower counts.
pub const FOLLOWERS: &str = "followers";
/// The metric of the following counts.
pub const FOLLOWING: &str = "following";

/// What to generate. [`Config::default`] is the story of winter 2018–19
/// that `tally demo` replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The seed of every random choice.
    pub seed: u64,
    /// How many accounts to invent.
    pub accounts: u32,
    /// The time of the first snapshot, in milliseconds; a whole hour.
    pub start_ms: i64,
    /// How many hourly snapshots to take.
    pub hours: u32,
    /// The permanent purge, if any.
    pub purge: Option<Purge>,
    /// The glitch that recovers, if any.
    pub glitch: Option<Glitch>,
    /// Accounts, per thousand, with one to three runs of 1–12 missing hours.
    pub gap_permille: u32,
    /// Rows, per thousand, whose `following` count is missing.
    pub following_missing_permille: u32,
}

/// A permanent loss of followers at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// The first snapshot showing the loss. The previous snapshot is the
    /// `start` of the fall `drop()` reports.
    pub at_ms: i64,
    /// Accounts hit, per thousand.
    pub accounts_permille: u32,
    /// The share of its followers an account loses, per thousand, drawn
    /// uniformly from this inclusive range (rounded up to whole followers).
    pub loss_permille: (u32, u32),
    /// For this many hours after the fall, the count stays below
    /// `after + lost / 2`, so that the purge is not mistaken for a
    /// recovery by any `recovered_within` of that duration or less.
    pub quiet_hours: u32,
}

/// A loss of followers that comes back hours later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glitch {
    /// The snapshot most accounts first show the loss in. The others show it
    /// an hour earlier, or one or two hours later.
    pub at_ms: i64,
    /// Accounts hit, per thousand.
    pub accounts_permille: u32,
    /// The share of its followers an account loses, per thousand, drawn
    /// uniformly from this inclusive range (rounded up to whole followers).
    pub loss_permille: (u32, u32),
    /// The hours from the fall to the recovery, drawn uniformly from this
    /// inclusive range...
    pub recovery_hours: (u32, u32),
    /// ...but no later than this many hours after `at_ms` (the fix), unless
    /// that is sooner than the shortest recovery.
    pub fixed_after_hours: Option<u32>,
}

/// How much more often each hour of the day (UTC) people follow and
/// unfollow than on average: the audience is worldwide, with a mild peak in
/// the European and American afternoon.
const DIURNAL: [f64; 24] = [
    0.88, 0.84, 0.80, 0.78, 0.78, 0.80, 0.84, 0.90, 0.96, 1.02, 1.08, 1.12, 1.16, 1.20, 1.22, 1.22,
    1.20, 1.16, 1.12, 1.08, 1.04, 1.00, 0.96, 0.92,
];

/// Where a glitch's fall lands relative to [`Glitch::at_ms`], in hours, and
/// how many accounts in ten fall then.
const GLITCH_SPREAD: [(i64, u64); 4] = [(-1, 2), (0, 5), (1, 2), (2, 1)];

impl Default for Config {
    /// The story: 2,500 accounts sampled hourly from 2018-11-20 to
    /// 2019-02-20, a purge on 26 November hitting 10% of them, and the glitch
    /// of 13 February hitting a quarter, fixed at 17:00 UTC.
    fn default() -> Config {
        Config {
            seed: DEFAULT_SEED,
            accounts: DEFAULT_ACCOUNTS,
            start_ms: DEFAULT_START_MS,
            hours: DEFAULT_HOURS,
            purge: Some(Purge {
                at_ms: STORY_PURGE_MS,
                accounts_permille: 100,
                loss_permille: (10, 150),
                quiet_hours: 7 * 24,
            }),
            glitch: Some(Glitch {
                at_ms: STORY_GLITCH_MS,
                accounts_permille: 250,
                loss_permille: (50, 250),
                recovery_hours: (4, 10),
                fixed_after_hours: Some(7),
            }),
            gap_permille: 30,
            following_missing_permille: 2,
        }
    }
}

impl Config {
    /// The time just after the last snapshot.
    pub fn end_ms(&self) -> i64 {
        self.start_ms
            .saturating_add(i64::from(self.hours).saturating_mul(HOUR_MS))
    }

    /// Moves each event that does not fit in the generated hours to a
    /// place that does, keeping its hour of the day: the purge to about a
    /// quarter of the way through, the glitch to about three quarters. An
    /// event that cannot fit at all (too few hours) is removed. Events that
    /// already fit stay where they are, so the story's dates survive any
    /// range that holds them.
    pub fn fit_events(&mut self) {
        let (start, hours) = (self.start_ms, i64::from(self.hours));
        let fits_purge = |at: i64| {
            let idx = (at - start).div_euclid(HOUR_MS);
            at.rem_euclid(HOUR_MS) == start.rem_euclid(HOUR_MS) && idx >= 1 && idx < hours
        };
        if let Some(p) = &mut self.purge {
            match place(p.at_ms, start, hours, 1, 4, fits_purge) {
                Some(at) => p.at_ms = at,
                None => self.purge = None,
            }
        }
        if let Some(g) = &mut self.glitch {
            let longest = i64::from(g.recovery_hours.1.max(g.recovery_hours.0));
            let fits_glitch = |at: i64| {
                let idx = (at - start).div_euclid(HOUR_MS);
                at.rem_euclid(HOUR_MS) == start.rem_euclid(HOUR_MS)
                    && idx >= 2
                    && idx + 2 + longest < hours
            };
            match place(g.at_ms, start, hours, 3, 4, fits_glitch) {
                Some(at) => g.at_ms = at,
                None => self.glitch = None,
            }
        }
        // A glitch moved next to the purge would blur the story (and the
        // accounts hit by both would lose one of them): move the purge away
        // if the range allows.
        if let (Some(p), Some(g)) = (&mut self.purge, &self.glitch) {
            let far = |at: i64| fits_purge(at) && (at - g.at_ms).abs() >= 2 * DAY_MS;
            if !far(p.at_ms)
                && let Some(at) = place(p.at_ms, start, hours, 1, 4, far)
            {
                p.at_ms = at;
            }
        }
    }

    /// Checks that the configuration makes sense; the error names the
    /// problem.
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(Error::Invalid(msg));
        if self.accounts == 0 {
            return invalid("the number of accounts must be at least 1".into());
        }
        if self.accounts > MAX_ACCOUNTS {
            // The generator keeps a name and about a hundred bytes of state
            // per account: past this, a typo would exhaust the memory.
            return invalid(format!(
                "the number of accounts must be at most {MAX_ACCOUNTS}, found {}",
                self.accounts
            ));
        }
        if self.hours == 0 {
            return invalid("the number of hours must be at least 1".into());
        }
        if self.start_ms.rem_euclid(HOUR_MS) != 0 {
            return invalid(format!(
                "the start time {} is not a whole hour (like 2019-02-13T10:00:00Z)",
                format_time(self.start_ms)
            ));
        }
        let last = self.end_ms() - HOUR_MS;
        if self.start_ms < MIN_TIME_MS || last > MAX_TIME_MS {
            return invalid(format!(
                "{} hours from {} go past the year 9999",
                self.hours,
                format_time(self.start_ms)
            ));
        }
        if self.gap_permille > 1000 || self.following_missing_permille > 1000 {
            return invalid("a share per thousand must be at most 1000".into());
        }
        let check_loss = |what: &str, (lo, hi): (u32, u32)| {
            if lo == 0 || lo > hi || hi >= 1000 {
                invalid(format!(
                    "the {what}'s loss must be a range of 1 to 999 per thousand, found {lo}..{hi}"
                ))
            } else {
                Ok(())
            }
        };
        if let Some(p) = &self.purge {
            if p.accounts_permille > 1000 {
                return invalid("the purge's share of accounts is above 1000 per thousand".into());
            }
            check_loss("purge", p.loss_permille)?;
        }
        if let Some(g) = &self.glitch {
            if g.accounts_permille > 1000 {
                return invalid("the glitch's share of accounts is above 1000 per thousand".into());
            }
            check_loss("glitch", g.loss_permille)?;
            let (lo, hi) = g.recovery_hours;
            if lo == 0 || lo > hi {
                return invalid(format!(
                    "the glitch's recovery must take a range of at least 1 hour, found {lo}..{hi}"
                ));
            }
        }
        Ok(())
    }
}

/// Where an event at `at` goes in `hours` snapshots from `start`: `at`
/// itself if `fits`, else the same hour of the day near `num/den` of the way
/// through (that day, the day before or after), else that point itself.
fn place(
    at: i64,
    start: i64,
    hours: i64,
    num: i64,
    den: i64,
    fits: impl Fn(i64) -> bool,
) -> Option<i64> {
    if fits(at) {
        return Some(at);
    }
    let target = start + hours * num / den * HOUR_MS;
    let same_hour = target - target.rem_euclid(DAY_MS) + at.rem_euclid(DAY_MS);
    [same_hour, same_hour - DAY_MS, same_hour + DAY_MS, target]
        .into_iter()
        .find(|&t| fits(t))
}

/// The kind of an event of the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// A permanent loss.
    Purge,
    /// A loss that came back.
    Glitch,
}

impl EventKind {
    /// `purge` or `glitch`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Purge => "purge",
            EventKind::Glitch => "glitch",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of the ground truth: an account's fall, and its recovery for a
/// glitch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TruthEvent {
    /// The account's name.
    pub account: String,
    /// Purge or glitch.
    pub kind: EventKind,
    /// The first snapshot showing the fall. `drop()` reports it as `end`,
    /// with `start` the snapshot an hour earlier.
    pub time_ms: i64,
    /// The followers at the snapshot before the fall.
    pub before: u64,
    /// The followers lost in the fall (`before - after`).
    pub lost: u64,
    /// For a glitch, the first snapshot at or above `before` again.
    pub recovered_at_ms: Option<i64>,
}

impl TruthEvent {
    /// The time `drop()` reports as the fall's `start`.
    pub fn start_ms(&self) -> i64 {
        self.time_ms - HOUR_MS
    }

    /// The count after the fall.
    pub fn after(&self) -> u64 {
        self.before - self.lost
    }

    /// True when the loss reaches `percent` of `before`, exactly as
    /// `drop(followers, percent%, 1h)` decides it.
    pub fn reaches_percent(&self, percent: u64) -> bool {
        u128::from(self.lost) * 100 >= u128::from(percent) * u128::from(self.before)
    }

    /// `100 · lost / before` in hundredths of a percent, rounded half up,
    /// as `drop()` prints `lost_pct`.
    pub fn lost_pct_hundredths(&self) -> u64 {
        if self.before == 0 {
            return 0;
        }
        let num = u128::from(self.lost) * 10_000;
        let den = u128::from(self.before);
        ((num + den / 2) / den) as u64
    }
}

/// The ground truth of a generated data set: every purge and glitch event,
/// sorted by account and time (the order of `drop()`'s rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    /// The events.
    pub events: Vec<TruthEvent>,
}

impl Truth {
    /// The events of one kind.
    pub fn of(&self, kind: EventKind) -> impl Iterator<Item = &TruthEvent> {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    /// The events whose loss reaches `percent`: what
    /// `drop(followers, percent%, 1h)` finds, for percent 5 or more.
    pub fn reaching(&self, percent: u64) -> impl Iterator<Item = &TruthEvent> {
        self.events
            .iter()
            .filter(move |e| e.reaches_percent(percent))
    }

    /// Writes the truth as CSV with the header
    /// `account,event,time,before,lost,lost_pct,recovered_at` (an empty
    /// `recovered_at` for a purge).
    pub fn write_csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "account,event,time,before,lost,lost_pct,recovered_at")?;
        for e in &self.events {
            let pct = e.lost_pct_hundredths();
            let recovered = e.recovered_at_ms.map(format_time).unwrap_or_default();
            writeln!(
                out,
                "{},{},{},{},{},{}.{:02},{}",
                e.account,
                e.kind,
                format_time(e.time_ms),
                e.before,
                e.lost,
                pct / 100,
                pct % 100,
                recovered
            )?;
        }
        Ok(())
    }
}

/// One snapshot of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The time of the snapshot, in milliseconds.
    pub time_ms: i64,
    /// The account, as an index into [`Generator::account_names`].
    pub account: u32,
    /// The follower count.
    pub followers: u64,
    /// The following count, `None` when the snapshot missed it.
    pub following: Option<u64>,
}

/// Streams a data set hour by hour: a data set of any size is produced in
/// the memory of one hour's rows plus a few dozen bytes per account.
///
/// ```
/// # fn main() -> tally::Result<()> {
/// use tally::generate::{Config, Generator};
/// let config = Config { accounts: 10, hours: 3, ..Config::default() };
/// let mut generator = Generator::new(config)?;
/// let mut rows = Vec::new();
/// let mut n = 0;
/// while generator.next_hour(&mut rows).is_some() {
///     n += rows.len();
/// }
/// assert!(n <= 30);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Generator {
    config: Config,
    names: Vec<String>,
    accounts: Vec<Account>,
    hour: u32,
    truth: Vec<TruthEvent>,
}

/// The state of one account between hours.
#[derive(Debug)]
struct Account {
    rng: Rng,
    /// The true follower count.
    real: u64,
    /// Followers a glitch hides: the count shows `real - hidden`.
    hidden: u64,
    following: u64,
    /// Expected follows per follower per hour.
    in_rate: f64,
    /// Expected unfollows per follower per hour.
    out_rate: f64,
    /// Before this hour, `real` may not rise above `ceiling` (after a
    /// purge).
    ceiling_until: u32,
    ceiling: u64,
    /// How much more `real` may grow before a glitch's fix without the
    /// count coming back early.
    glitch_room: u64,
    /// Planned actions, by hour.
    actions: Vec<Action>,
    next_action: usize,
    /// Runs of missing hours, `[from, to)`.
    gaps: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, Copy)]
struct Action {
    hour: u32,
    what: What,
}

#[derive(Debug, Clone, Copy)]
enum What {
    PurgeFall {
        loss_permille: u32,
        top_permille: u32,
        quiet_hours: u32,
    },
    GlitchFall {
        loss_permille: u32,
        top_permille: u32,
        restore: u32,
    },
    GlitchRestore,
}

impl Generator {
    /// Invents the accounts and plans the events of `config`.
    pub fn new(config: Config) -> Result<Generator> {
        config.validate()?;
        let n = config.accounts as usize;
        let mut names = Vec::with_capacity(n);
        let mut taken = HashSet::with_capacity(n);
        let mut accounts = Vec::with_capacity(n);
        for i in 0..config.accounts {
            let mut rng = Rng::new(mix(config.seed ^ mix(u64::from(i) + 1)));
            let mut name = invent_name(&mut rng);
            if !taken.insert(name.clone()) {
                // Rare: two accounts drew the same name. No drawn name has
                // a digit right after `_`, so `name_index` cannot collide
                // with a drawn name, nor with another renamed one.
                name = format!("{name}_{i}");
                taken.insert(name.clone());
            }
            names.push(name);
            accounts.push(Account::new(rng));
        }
        let mut generator = Generator {
            config,
            names,
            accounts,
            hour: 0,
            truth: Vec::new(),
        };
        generator.plan();
        Ok(generator)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The invented account names; [`Row::account`] indexes them.
    pub fn account_names(&self) -> &[String] {
        &self.names
    }

    /// Fills `rows` (cleared first) with the next hour's snapshots, in
    /// account order, and returns the hour's time; `None` once every hour is
    /// done.
    pub fn next_hour(&mut self, rows: &mut Vec<Row>) -> Option<i64> {
        rows.clear();
        if self.hour >= self.config.hours {
            return None;
        }
        let k = self.hour;
        let time = self.config.start_ms + i64::from(k) * HOUR_MS;
        let diurnal = DIURNAL[(time.rem_euclid(DAY_MS) / HOUR_MS) as usize];
        let missing = self.config.following_missing_permille;
        for (i, account) in self.accounts.iter_mut().enumerate() {
            let before = account.real - account.hidden;
            if k > 0 {
                account.step(k, diurnal);
            }
            if let Some(event) = account.act(k, before) {
                self.truth.push(TruthEvent {
                    account: self.names[i].clone(),
                    kind: event.kind,
                    time_ms: time,
                    before,
                    lost: event.lost,
                    recovered_at_ms: event
                        .restore
                        .map(|h| self.config.start_ms + i64::from(h) * HOUR_MS),
                });
            }
            let following_missing = account.rng.chance(missing);
            if account.gaps.iter().any(|&(a, b)| (a..b).contains(&k)) {
                continue;
            }
            rows.push(Row {
                time_ms: time,
                account: i as u32,
                followers: account.real - account.hidden,
                following: (!following_missing).then_some(account.following),
            });
        }
        self.hour += 1;
        Some(time)
    }

    /// The events that have happened so far (all of them once
    /// [`next_hour`](Self::next_hour) has returned `None`), sorted by
    /// account and time.
    pub fn truth(&self) -> Truth {
        let mut events = self.truth.clone();
        events.sort();
        Truth { events }
    }

    /// Runs the generator to its end, calling `each` with every hour's rows,
    /// and returns the truth.
    pub fn run(mut self, mut each: impl FnMut(&[Row]) -> Result<()>) -> Result<Truth> {
        let mut rows = Vec::new();
        while self.next_hour(&mut rows).is_some() {
            each(&rows)?;
        }
        Ok(self.truth())
    }

    /// Chooses the event accounts, their losses and recoveries, and the
    /// missing hours, from a random stream of their own.
    fn plan(&mut self) {
        let config = &self.config;
        let mut rng = Rng::new(mix(config.seed ^ 0x5EED_0FE7_E7E7_0075));
        let n = self.accounts.len();
        let hours = i64::from(config.hours);
        let index_of = |at: i64| (at - config.start_ms).div_euclid(HOUR_MS);
        if let Some(p) = &config.purge {
            let fall = index_of(p.at_ms);
            let chosen = choose(&mut rng, n, p.accounts_permille);
            if (1..hours).contains(&fall) {
                for i in chosen {
                    let loss = rng.between(p.loss_permille.0, p.loss_permille.1);
                    self.accounts[i].actions.push(Action {
                        hour: fall as u32,
                        what: What::PurgeFall {
                            loss_permille: loss,
                            top_permille: p.loss_permille.1,
                            quiet_hours: p.quiet_hours,
                        },
                    });
                }
            }
        }
        if let Some(g) = &config.glitch {
            let at = index_of(g.at_ms);
            let chosen = choose(&mut rng, n, g.accounts_permille);
            let total: u64 = GLITCH_SPREAD.iter().map(|s| s.1).sum();
            for i in chosen {
                let mut pick = rng.below(total);
                let mut offset = 0;
                for &(o, weight) in &GLITCH_SPREAD {
                    if pick < weight {
                        offset = o;
                        break;
                    }
                    pick -= weight;
                }
                let loss = rng.between(g.loss_permille.0, g.loss_permille.1);
                let delay = i64::from(rng.between(g.recovery_hours.0, g.recovery_hours.1));
                let fall = at + offset;
                let mut restore = fall + delay;
                if let Some(fixed) = g.fixed_after_hours {
                    let fix = at + i64::from(fixed);
                    restore = restore.min(fix.max(fall + i64::from(g.recovery_hours.0)));
                }
                let account = &mut self.accounts[i];
                // The fall needs a snapshot before it, the recovery must be
                // generated, and the two events of an account must not
                // overlap (a glitch during a purge's fall would blur both).
                let clashes = account
                    .actions
                    .iter()
                    .any(|a| (fall - 2..=restore + 2).contains(&i64::from(a.hour)));
                if fall < 1 || restore >= hours || clashes {
                    continue;
                }
                account.actions.push(Action {
                    hour: fall as u32,
                    what: What::GlitchFall {
                        loss_permille: loss,
                        top_permille: g.loss_permille.1,
                        restore: restore as u32,
                    },
                });
                account.actions.push(Action {
                    hour: restore as u32,
                    what: What::GlitchRestore,
                });
            }
        }
        for account in &mut self.accounts {
            account.actions.sort_by_key(|a| a.hour);
        }
        // Missing hours keep clear of every event, from two hours before
        // the snapshot preceding the fall to two hours after the recovery,
        // so that each event is seen as it happened.
        for account in &mut self.accounts {
            if !rng.chance(config.gap_permille) {
                continue;
            }
            let spans: Vec<(i64, i64)> = account
                .actions
                .iter()
                .filter_map(|a| {
                    let h = i64::from(a.hour);
                    match a.what {
                        What::PurgeFall { .. } => Some((h - 3, h + 2)),
                        What::GlitchFall { restore, .. } => Some((h - 3, i64::from(restore) + 2)),
                        What::GlitchRestore => None,
                    }
                })
                .collect();
            let runs = rng.between(1, 3);
            for _ in 0..runs {
                let len = i64::from(rng.between(1, 12));
                let from = rng.below(config.hours.into()) as i64;
                let to = (from + len).min(hours);
                // [from, to) meets [lo, hi] unless it ends before or starts
                // after it.
                let touches_event = spans.iter().any(|&(lo, hi)| from <= hi && to > lo);
                if !touches_event {
                    account.gaps.push((from as u32, to as u32));
                }
            }
        }
    }
}

/// What an account's action did, for the ground truth.
struct Happened {
    kind: EventKind,
    lost: u64,
    restore: Option<u32>,
}

impl Account {
    /// Invents an account's size, growth and habits.
    fn new(mut rng: Rng) -> Account {
        // Pareto with a minimum of 20 and an index of 0.6: the median
        // account has about 60 followers, one in forty has more than 10,000
        // and one in seven hundred more than a million. It is cut at 20
        // million: the few larger accounts of 2019 would be one in a
        // million here, and such an account would dwarf every total.
        let followers = pareto(&mut rng, 20.0, 0.6, MAX_FOLLOWERS);
        let following = 20 + (rng.unit() * rng.unit() * 2_000.0) as u64;
        // Per day: 0.1–1% of the followers unfollow, and the net growth is
        // -0.05% to +0.5%, mostly slow.
        let churn = 0.001 + 0.009 * rng.unit();
        let u = rng.unit();
        let growth = -0.0005 + 0.0055 * u * u;
        Account {
            rng,
            real: followers,
            hidden: 0,
            following,
            in_rate: (churn + growth) / 24.0,
            out_rate: churn / 24.0,
            ceiling_until: 0,
            ceiling: 0,
            glitch_room: 0,
            actions: Vec::new(),
            next_action: 0,
            gaps: Vec::new(),
        }
    }

    /// One hour of organic follows and unfollows, and of following changes.
    fn step(&mut self, hour: u32, diurnal: f64) {
        let base = self.real as f64 * diurnal;
        let gains = poisson(&mut self.rng, base * self.in_rate) as i64;
        let losses = poisson(&mut self.rng, base * self.out_rate) as i64;
        // Noise never takes more than 2% in an hour, well clear of the 5%
        // the story's query looks for.
        let mut net = (gains - losses).max(-((self.real / 50) as i64));
        let falls_now = self
            .actions
            .get(self.next_action)
            .is_some_and(|a| a.hour == hour && !matches!(a.what, What::GlitchRestore));
        if falls_now {
            // The fall is exactly the event's loss.
            net = 0;
        }
        if self.hidden > 0 {
            // During a glitch the count must not fall further nor come back
            // before the fix.
            net = net.clamp(0, self.glitch_room as i64);
            self.glitch_room -= net as u64;
        }
        if hour < self.ceiling_until {
            net = net.min(self.ceiling.saturating_sub(self.real) as i64);
        }
        self.real = self.real.saturating_add_signed(net);
        if self.rng.chance(20) {
            let change = self.rng.between(0, 8) as i64 - 3;
            self.following = self.following.saturating_add_signed(change);
        }
    }

    /// Applies the planned action of `hour`, if any; `before` is the count
    /// the previous snapshot showed.
    fn act(&mut self, hour: u32, before: u64) -> Option<Happened> {
        let action = *self.actions.get(self.next_action)?;
        if action.hour != hour {
            return None;
        }
        self.next_action += 1;
        let shown = self.real - self.hidden;
        match action.what {
            What::PurgeFall {
                loss_permille,
                top_permille,
                quiet_hours,
            } => {
                let lost = share(shown, loss_permille, top_permille);
                if lost == 0 {
                    return None;
                }
                self.real -= lost;
                self.ceiling = self.real + (lost - 1) / 2;
                self.ceiling_until = hour.saturating_add(quiet_hours).saturating_add(1);
                debug_assert_eq!(before, shown);
                Some(Happened {
                    kind: EventKind::Purge,
                    lost,
                    restore: None,
                })
            }
            What::GlitchFall {
                loss_permille,
                top_permille,
                restore,
            } => {
                let lost = share(shown, loss_permille, top_permille);
                if lost == 0 {
                    // Nothing to hide: skip the restore too.
                    self.next_action += 1;
                    return None;
                }
                self.hidden = lost;
                self.glitch_room = lost - 1;
                Some(Happened {
                    kind: EventKind::Glitch,
                    lost,
                    restore: Some(restore),
                })
            }
            What::GlitchRestore => {
                self.hidden = 0;
                self.glitch_room = 0;
                None
            }
        }
    }
}

/// `permille` thousandths of `count`, rounded up so that the share is at
/// least `permille` (a glitch drawn at 5% loses 5% or more), but rounded
/// down to `top_permille` when rounding up would pass it (20 followers at
/// 14.9% lose 3, not 4 = 20%); at least 1, and less than `count` (a count
/// never falls to zero). Since the generator's accounts keep 20 followers or
/// more, every share of the configured ranges fits a whole number.
fn share(count: u64, permille: u32, top_permille: u32) -> u64 {
    let count_wide = u128::from(count);
    let up = (count_wide * u128::from(permille)).div_ceil(1000) as u64;
    let top = (count_wide * u128::from(top_permille) / 1000) as u64;
    up.min(top).max(1).min(count.saturating_sub(1))
}

/// `permille` thousandths of `0..n`, chosen without repetition, in random
/// order (a partial Fisher–Yates shuffle).
fn choose(rng: &mut Rng, n: usize, permille: u32) -> Vec<usize> {
    let k = (n as u64 * u64::from(permille.min(1000)) / 1000) as usize;
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + rng.below((n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(k);
    all
}

/// Syllables of the invented names: pronounceable, and chosen together
/// at random so that no name is picked from a real handle.
const SYLLABLES: [&str; 32] = [
    "ka", "lo", "mi", "ra", "ven", "tu", "sol", "bri", "ne", "zo", "pa", "li", "mar", "en", "dai",
    "ru", "fe", "xi", "qua", "bel", "or", "sa", "te", "no", "vy", "lun", "ce", "ho", "ja", "ki",
    "dro", "wen",
];

/// An invented handle: two or three syllables, sometimes a second word
/// after `_` or `.`, often some digits. Only `[a-z0-9_.]`, so it never
/// needs quoting in CSV or escaping in JSON.
fn invent_name(rng: &mut Rng) -> String {
    let mut name = String::with_capacity(16);
    let word = |rng: &mut Rng, name: &mut String| {
        for _ in 0..rng.between(2, 3) {
            name.push_str(SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize]);
        }
    };
    word(rng, &mut name);
    match rng.below(10) {
        0..=2 => {
            name.push('_');
            word(rng, &mut name);
        }
        3 => {
            name.push('.');
            word(rng, &mut name);
        }
        _ => {}
    }
    if rng.below(10) < 6 {
        let digits = rng.below(1000);
        name.push_str(&digits.to_string());
    }
    name
}

/// A small, fast, seeded pseudo-random generator (splitmix64): the same
/// seed gives the same numbers on every platform.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A number in `0..n`, without bias (Lemire's method); 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    pub fn between(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }

    /// A number in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with a chance of `permille` in a thousand.
    pub fn chance(&mut self, permille: u32) -> bool {
        self.below(1000) < u64::from(permille)
    }
}

/// The splitmix64 finaliser: a bijection of `u64` that scrambles every bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A Pareto draw of index `alpha` and minimum `min`, truncated at `cap`:
/// a draw above it is drawn again, so that no size piles up at the cap.
fn pareto(rng: &mut Rng, min: f64, alpha: f64, cap: u64) -> u64 {
    loop {
        // 1 - unit() is in (0, 1], so its logarithm is finite.
        let u = 1.0 - rng.unit();
        let x = min * exp(-ln(u) / alpha);
        // `as` saturates, and the minimum keeps x >= min.
        if x as u64 <= cap {
            return x as u64;
        }
    }
}

/// A Poisson draw of mean `lambda`: exact (Knuth's product of uniforms)
/// below 30, a rounded normal approximation above, where the normal is the
/// sum of four uniforms (bounded, so never absurd).
fn poisson(rng: &mut Rng, lambda: f64) -> u64 {
    if lambda < 1e-9 {
        return 0;
    }
    if lambda < 30.0 {
        let limit = exp(-lambda);
        let mut k = 0;
        let mut p = rng.unit();
        while p > limit {
            k += 1;
            p *= rng.unit();
        }
        return k;
    }
    const SQRT_3: f64 = 1.732_050_807_568_877_2;
    let z = (rng.unit() + rng.unit() + rng.unit() + rng.unit() - 2.0) * SQRT_3;
    (lambda + lambda.sqrt() * z).round().max(0.0) as u64
}

/// The natural logarithm of a positive normal `x`, with IEEE basic
/// operations only (std's `ln` may differ by an ulp between platforms).
fn ln(x: f64) -> f64 {
    if x <= 0.0 || !x.is_normal() {
        return f64::NEG_INFINITY;
    }
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        exponent += 1;
    }
    // ln(m) = 2 atanh(s) with |s| < 0.172: twelve terms of the series reach
    // past double precision.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    for k in 0..12 {
        sum += term / f64::from(2 * k + 1);
        term *= s2;
    }
    2.0 * sum + exponent as f64 * std::f64::consts::LN_2
}

/// `e^x` with IEEE basic operations only; 0 below -700 and infinity above
/// 700.
fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < -700.0 {
        return 0.0;
    }
    if x > 700.0 {
        return f64::INFINITY;
    }
    let k = (x / std::f64::consts::LN_2).round();
    // |r| <= ln(2)/2: eighteen terms of the series reach past double
    // precision.
    let r = x - k * std::f64::consts::LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..18 {
        term *= r / f64::from(i);
        sum += term;
    }
    // k is within -1010..=1010, so 2^k is a normal double.
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// What [`fill_db`] wrote.
#[derive(Debug, Clone)]
pub struct Filled {
    /// Points appended (followers and following).
    pub points: u64,
    /// The ground truth.
    pub truth: Truth,
}

/// Generates `config`'s data set into `db` through one writer, committing
/// it as one batch, and returns its truth.
pub fn fill_db(db: &Db, config: &Config) -> Result<Filled> {
    let generator = Generator::new(config.clone())?;
    let mut writer = db.writer()?;
    let followers = writer.metric_id(FOLLOWERS)?;
    let following = writer.metric_id(FOLLOWING)?;
    // Names are resolved to series ids once per account, not per point.
    let mut ids = Vec::with_capacity(generator.account_names().len());
    for name in generator.account_names() {
        let account = writer.account_id(name)?;
        ids.push((
            writer.series_id(account, followers)?,
            writer.series_id(account, following)?,
        ));
    }
    let mut points = 0u64;
    let truth = generator.run(|rows| {
        for row in rows {
            let (f, g) = ids[row.account as usize];
            writer.push(f, row.time_ms, row.followers)?;
            points += 1;
            if let Some(count) = row.following {
                writer.push(g, row.time_ms, count)?;
                points += 1;
            }
        }
        Ok(())
    })?;
    writer.commit()?;
    Ok(Filled { points, truth })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> Config {
        Config {
            seed,
            accounts: 400,
            hours: 24 * 12,
            start_ms: STORY_GLITCH_MS - 6 * DAY_MS - 10 * HOUR_MS,
            ..Config::default()
        }
    }

    fn all_rows(config: &Config) -> (Vec<String>, Vec<Row>, Truth) {
        let generator = Generator::new(config.clone()).unwrap();
        let names = generator.account_names().to_vec();
        let mut all = Vec::new();
        let truth = generator
            .run(|rows| {
                all.extend_from_slice(rows);
                Ok(())
            })
            .unwrap();
        (names, all, truth)
    }

    #[test]
    fn rng_is_splitmix64() {
        // The first outputs of splitmix64 seeded with 0, from the reference
        // implementation: the stream never changes.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn rng_bounds_hold() {
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 7];
        for _ in 0..70_000 {
            let x = rng.below(7);
            seen[x as usize] += 1;
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            let b = rng.between(3, 5);
            assert!((3..=5).contains(&b));
        }
        // Each of seven values about 10,000 times.
        assert!(
            seen.iter().all(|&n| (9_000..11_000).contains(&n)),
            "{seen:?}"
        );
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.between(5, 5), 5);
        assert_eq!(rng.between(6, 5), 6);
        assert!(!rng.chance(0));
        assert!(rng.chance(1000));
    }

    #[test]
    fn ln_and_exp_match_std() {
        use std::f64::consts::{FRAC_1_SQRT_2, SQRT_2};
        for &x in &[
            1e-300,
            1e-16,
            0.001,
            0.3,
            0.5,
            FRAC_1_SQRT_2,
            SQRT_2,
            1.0,
            1.5,
            2.0,
            10.0,
            1e9,
            1e300,
        ] {
            let (ours, std) = (ln(x), x.ln());
            assert!((ours - std).abs() <= 1e-13 * std.abs().max(1.0), "ln({x})");
        }
        for &x in &[-699.0, -30.0, -1.0, -1e-9, 0.0, 0.5, 1.0, 20.0, 300.0] {
            let (ours, std) = (exp(x), x.exp());
            assert!(
                (ours - std).abs() <= 1e-13 * std,
                "exp({x}): {ours} vs {std}"
            );
        }
        assert_eq!(exp(-800.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn pareto_sizes_span_tens_to_millions() {
        let mut rng = Rng::new(1);
        let sizes: Vec<u64> = (0..100_000)
            .map(|_| pareto(&mut rng, 20.0, 0.6, MAX_FOLLOWERS))
            .collect();
        assert!(sizes.iter().all(|&s| (20..=MAX_FOLLOWERS).contains(&s)));
        let share_above = |n: u64| sizes.iter().filter(|&&s| s > n).count() as f64 / 1e5;
        // P(X > x) = (20 / x)^0.6: 0.48 at 68, 0.024 at 10^4, 0.0015 at 10^6.
        assert!((0.46..0.50).contains(&share_above(68)));
        assert!((0.020..0.028).contains(&share_above(10_000)));
        assert!((0.0010..0.0021).contains(&share_above(1_000_000)));
    }

    #[test]
    fn poisson_has_its_mean_and_is_mostly_zero_when_small() {
        let mut rng = Rng::new(3);
        for &lambda in &[0.05, 2.0, 25.0, 400.0] {
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| poisson(&mut rng, lambda)).sum();
            let mean = sum as f64 / f64::from(n);
            assert!(
                (mean - lambda).abs() < 0.05 * lambda + 0.01,
                "{lambda}: {mean}"
            );
        }
        let zeros = (0..1000).filter(|_| poisson(&mut rng, 0.05) == 0).count();
        assert!(zeros > 900);
        assert_eq!(poisson(&mut rng, 0.0), 0);
    }

    #[test]
    fn names_are_unique_and_plain() {
        let generator = Generator::new(Config {
            accounts: 20_000,
            hours: 1,
            ..Config::default()
        })
        .unwrap();
        let names = generator.account_names();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        }));
    }

    #[test]
    fn same_config_same_rows_and_a_pinned_checksum() {
        let (names, rows, truth) = all_rows(&small(42));
        let (names2, rows2, truth2) = all_rows(&small(42));
        assert_eq!((&names, &rows, &truth), (&names2, &rows2, &truth2));
        let (_, other, _) = all_rows(&small(43));
        assert_ne!(rows, other);
        // FNV-1a of every row: pins the stream, so that a change of the
        // arithmetic (or a platform that computes differently) is caught.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |x: u64| {
            for b in x.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for r in &rows {
            eat(r.time_ms as u64);
            eat(u64::from(r.account));
            eat(r.followers);
            eat(r.following.unwrap_or(u64::MAX));
        }
        for n in &names {
            n.bytes().for_each(|b| eat(u64::from(b)));
        }
        assert_eq!(h, 5_590_271_747_604_351_304, "checksum of small(42)");
    }

    /// The consecutive hourly pairs of each account that fall by 5% or
    /// more are exactly the truth's falls that reach 5%.
    fn check_noise_never_falls_5_percent(config: &Config) {
        let (names, rows, truth) = all_rows(config);
        let mut last: Vec<Option<(i64, u64)>> = vec![None; names.len()];
        let mut found = Vec::new();
        for r in &rows {
            let i = r.account as usize;
            if let Some((t, v)) = last[i]
                && t + HOUR_MS == r.time_ms
                && r.followers < v
                && (v - r.followers) * 100 >= 5 * v
            {
                found.push((names[i].clone(), r.time_ms, v, v - r.followers));
            }
            last[i] = Some((r.time_ms, r.followers));
        }
        found.sort();
        let expected: Vec<_> = truth
            .reaching(5)
            .map(|e| (e.account.clone(), e.time_ms, e.before, e.lost))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn only_events_fall_5_percent_in_an_hour() {
        for seed in 0..6 {
            check_noise_never_falls_5_percent(&small(seed));
        }
        let mut story = Config {
            accounts: 300,
            ..Config::default()
        };
        story.fit_events();
        check_noise_never_falls_5_percent(&story);
    }

    #[test]
    fn events_happen_as_the_truth_says() {
        let config = small(9);
        let (names, rows, truth) = all_rows(&config);
        let glitches: Vec<_> = truth.of(EventKind::Glitch).collect();
        let purges: Vec<_> = truth.of(EventKind::Purge).collect();
        // The purge of the story is before this range; the glitch hits a
        // quarter of the accounts.
        assert!(purges.is_empty());
        assert!(glitches.len() > 80, "{}", glitches.len());
        let series = |name: &str| -> Vec<(i64, u64)> {
            let i = names.iter().position(|n| n == name).unwrap() as u32;
            rows.iter()
                .filter(|r| r.account == i)
                .map(|r| (r.time_ms, r.followers))
                .collect()
        };
        for e in glitches {
            // Within the configured 5-25%.
            assert!(e.reaches_percent(5) && e.lost * 1000 <= e.before * 250);
            let s = series(&e.account);
            let at = |t: i64| s.iter().find(|p| p.0 == t).unwrap().1;
            assert_eq!(at(e.start_ms()), e.before);
            assert_eq!(at(e.time_ms), e.after());
            let back = e.recovered_at_ms.unwrap();
            let hours = (back - e.time_ms) / HOUR_MS;
            assert!((4..=10).contains(&hours), "{hours}");
            // Fixed by 17:00 UTC.
            assert!(back <= STORY_GLITCH_MS + 7 * HOUR_MS);
            // Back exactly then, not before.
            for &(t, v) in &s {
                if t > e.time_ms && t < back {
                    assert!(v < e.before && v >= e.after());
                }
            }
            assert!(at(back) >= e.before);
        }
    }

    #[test]
    fn purges_do_not_come_back_within_a_week() {
        let config = Config {
            accounts: 500,
            hours: 24 * 20,
            ..Config::default()
        };
        let (names, rows, truth) = all_rows(&config);
        let purges: Vec<_> = truth.of(EventKind::Purge).collect();
        assert_eq!(purges.len(), 50);
        // 1-15%: some below the 5% the story's query asks for.
        assert!(purges.iter().any(|e| !e.reaches_percent(5)));
        assert!(purges.iter().any(|e| e.reaches_percent(10)));
        for e in purges {
            // Within the configured 1-15%.
            assert!(e.lost * 1000 >= e.before * 10 && e.lost * 1000 <= e.before * 150);
            let i = names.iter().position(|n| *n == e.account).unwrap() as u32;
            for r in rows.iter().filter(|r| r.account == i) {
                if r.time_ms > e.time_ms && r.time_ms <= e.time_ms + 7 * DAY_MS {
                    assert!(2 * (r.followers.saturating_sub(e.after())) < e.lost);
                }
            }
        }
    }

    #[test]
    fn gaps_exist_and_avoid_events() {
        let config = small(5);
        let (names, rows, truth) = all_rows(&config);
        let mut count = vec![0u32; names.len()];
        for r in &rows {
            count[r.account as usize] += 1;
        }
        let gappy = count.iter().filter(|&&c| c < config.hours).count();
        assert!(gappy >= 3, "{gappy}");
        let present: HashSet<(u32, i64)> = rows.iter().map(|r| (r.account, r.time_ms)).collect();
        for e in &truth.events {
            let i = names.iter().position(|n| *n == e.account).unwrap() as u32;
            let last = e.recovered_at_ms.unwrap_or(e.time_ms);
            let mut t = e.start_ms() - HOUR_MS;
            while t <= last + HOUR_MS {
                assert!(present.contains(&(i, t)));
                t += HOUR_MS;
            }
        }
        assert!(rows.iter().any(|r| r.following.is_none()));
    }

    #[test]
    fn fit_events_moves_only_what_does_not_fit() {
        let mut story = Config::default();
        story.fit_events();
        assert_eq!(story, Config::default());
        let mut short = Config {
            start_ms: STORY_GLITCH_MS - 10 * HOUR_MS - 40 * DAY_MS,
            hours: 1000,
            ..Config::default()
        };
        short.fit_events();
        let g = short.glitch.as_ref().unwrap();
        let p = short.purge.as_ref().unwrap();
        assert_eq!(g.at_ms.rem_euclid(DAY_MS), 10 * HOUR_MS);
        assert_eq!(p.at_ms.rem_euclid(DAY_MS), 15 * HOUR_MS);
        assert!(p.at_ms < g.at_ms && g.at_ms < short.end_ms());
        // A glitch moved next to the purge pushes the purge away.
        let mut near = Config {
            hours: 200,
            ..Config::default()
        };
        near.fit_events();
        let (p, g) = (near.purge.unwrap(), near.glitch.unwrap());
        assert!(g.at_ms - p.at_ms >= 2 * DAY_MS, "{}", g.at_ms - p.at_ms);
        assert_eq!(p.at_ms.rem_euclid(DAY_MS), 15 * HOUR_MS);
        let mut tiny = Config {
            hours: 5,
            ..Config::default()
        };
        tiny.fit_events();
        assert!(tiny.glitch.is_none());
        assert!(tiny.purge.is_some());
    }

    #[test]
    fn bad_configs_are_refused() {
        let bad = [
            Config {
                accounts: 0,
                ..Config::default()
            },
            Config {
                hours: 0,
                ..Config::default()
            },
            Config {
                accounts: MAX_ACCOUNTS + 1,
                ..Config::default()
            },
            Config {
                start_ms: DEFAULT_START_MS + 1,
                ..Config::default()
            },
            Config {
                start_ms: MAX_TIME_MS - HOUR_MS,
                ..Config::default()
            },
        ];
        for c in bad {
            assert!(matches!(Generator::new(c), Err(Error::Invalid(_))));
        }
    }

    #[test]
    fn shares_stay_in_their_range() {
        // Rounded up...
        assert_eq!(share(1_000_000, 50, 250), 50_000);
        assert_eq!(share(21, 50, 250), 2);
        // ...but not past the top of the range.
        assert_eq!(share(21, 149, 150), 3);
        assert_eq!(share(20, 10, 150), 1);
        // Never nothing, never everything.
        assert_eq!(share(2, 1, 1), 1);
        assert_eq!(share(1, 500, 500), 0);
        for count in 20..2_000 {
            for permille in [10, 49, 50, 51, 149, 150, 250] {
                let top = permille.max(150);
                let lost = share(count, permille, top);
                assert!(lost * 1000 <= count * u64::from(top), "{count} {permille}");
                assert!(lost * 1000 >= count * 10);
            }
            // A glitch drawn at 5% or more always reaches 5%.
            assert!(share(count, 50, 250) * 100 >= count * 5);
        }
    }

    #[test]
    fn truth_csv_has_one_line_per_event() {
        let truth = Truth {
            events: vec![TruthEvent {
                account: "kavenlo".into(),
                kind: EventKind::Glitch,
                time_ms: STORY_GLITCH_MS,
                before: 2_000,
                lost: 123,
                recovered_at_ms: Some(STORY_GLITCH_MS + 7 * HOUR_MS),
            }],
        };
        let mut out = Vec::new();
        truth.write_csv(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "account,event,time,before,lost,lost_pct,recovered_at\n\
             kavenlo,glitch,2019-02-13T10:00:00Z,2000,123,6.15,2019-02-13T17:00:00Z\n"
        );
    }
}
