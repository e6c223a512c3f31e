//! Plan → rows. The evaluator resolves a selector to series ids, then runs
//! every selected series through its pipeline (read the points in the
//! query's range, apply the series functions, find drops and recoveries) in
//! chunks of series spread over all cores, and finally sorts and aggregates
//! the small per-series results.
//!
//! Nothing here holds more than one chunk's series in memory at a time,
//! except what the query returns: a selector alone returns every point it
//! selects.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::db::snapshot::{Scanner, Snapshot, TimeRange};
use crate::error::{Error, Result};
use crate::query::functions::SeriesBuf;
use crate::query::functions::drop::{DropFinder, Episode};
use crate::query::functions::recover::{Recovery, find_recovery};
use crate::query::functions::resample::resample;
use crate::query::functions::window::{WindowExtremes, change, latest};
use crate::query::plan::{
    DropSpec, MatchOp, Percent, Plan, RankColumn, Selector, SeriesExpr, Threshold,
};
use crate::query::table::{Table, Value};
use crate::storage::segment::Columns;

/// What a query runs with besides its plan.
pub(crate) struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub range: TimeRange,
    pub cancel: Option<&'a AtomicBool>,
    /// How many series the selectors selected, counted as they select: the
    /// notices look up account names only when it stays 0
    /// (docs/query-language.md, rule Q52).
    pub selected: AtomicUsize,
}

impl Context<'_> {
    fn check_cancel(&self) -> Result<()> {
        match self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Cancelled),
            _ => Ok(()),
        }
    }
}

/// Runs a plan.
pub(crate) fn evaluate(ctx: &Context<'_>, plan: &Plan) -> Result<Table> {
    let columns = plan.columns();
    let rows = match evaluate_rows(ctx, plan)? {
        Rows::Points(points) => points.into_rows(ctx.snapshot),
        Rows::Drops(drops) => drops
            .iter()
            .map(|d| drop_row(ctx.snapshot, d.series, &d.episode))
            .collect(),
        Rows::Recoveries(recoveries) => recoveries
            .iter()
            .map(|r| {
                let mut row = drop_row(ctx.snapshot, r.series, &r.episode);
                row.push(Value::Time(r.recovery.recovered_at));
                row.push(Value::Int(r.recovery.recovery_s));
                row
            })
            .collect(),
        Rows::Summary(rows) => rows,
    };
    check_damage(ctx.snapshot)?;
    Ok(Table::new(columns, rows))
}

/// Fails when a lookup met a damaged page of the dictionary index: such a
/// lookup answers as if the entry were absent, so an answer that used it is
/// incomplete and is not given ([DX2]).
pub(crate) fn check_damage(snapshot: &Snapshot) -> Result<()> {
    match snapshot.dict.damage() {
        Some(damage) => Err(damage),
        None => Ok(()),
    }
}

/// The value of a `count()` or `sum()` node, before it is narrowed to 64
/// bits: a part of the series (a shard) hands this on unnarrowed, since
/// with `change()` a part's sum can pass 2⁶³ while the whole's does not
/// (docs/scale-out.md, [SO23]). 0 for any other node.
pub(crate) fn total(ctx: &Context<'_>, node: &Plan) -> Result<i128> {
    Ok(match node {
        Plan::Count(input) => match input.as_ref() {
            // Counting points needs no points kept.
            Plan::Series(expr) => series_totals(ctx, expr)?.0,
            other => match evaluate_rows(ctx, other)? {
                Rows::Points(p) => p.times.len() as i128,
                Rows::Drops(d) => d.len() as i128,
                Rows::Recoveries(r) => r.len() as i128,
                Rows::Summary(s) => s.len() as i128,
            },
        },
        Plan::Sum(input) => match input.as_ref() {
            Plan::Series(expr) => series_totals(ctx, expr)?.1,
            other => match evaluate_rows(ctx, other)? {
                Rows::Points(p) => p.values.iter().map(|&v| i128::from(v)).sum(),
                Rows::Drops(d) => d.iter().map(|r| i128::from(r.episode.lost)).sum(),
                Rows::Recoveries(r) => r.iter().map(|r| i128::from(r.episode.lost)).sum(),
                // The checker rejects sum() of a summary.
                Rows::Summary(_) => 0,
            },
        },
        _ => 0,
    })
}

/// The per-bucket sums of `summarize(input, step_ms)`, before `lost` is
/// narrowed to 64 bits: what a part of the series hands on
/// (docs/scale-out.md, [SO24]).
pub(crate) fn summarize_partial(
    ctx: &Context<'_>,
    input: &Plan,
    step_ms: Option<i64>,
) -> Result<Vec<BucketSum>> {
    let keyed: Vec<(i64, u32, i64)> = match evaluate_rows(ctx, input)? {
        Rows::Drops(d) => d
            .iter()
            .map(|r| keyed_episode(ctx.snapshot, r.series, &r.episode, step_ms))
            .collect(),
        Rows::Recoveries(r) => r
            .iter()
            .map(|r| keyed_episode(ctx.snapshot, r.series, &r.episode, step_ms))
            .collect(),
        // The checker lets only drop and recovery tables in.
        Rows::Points(_) | Rows::Summary(_) => Vec::new(),
    };
    Ok(bucket_sums(keyed, step_ms.is_some()))
}

/// An episode as `summarize()` groups it: its bucket, its account's id and
/// its loss.
fn keyed_episode(
    snapshot: &Snapshot,
    series: u32,
    e: &Episode,
    step_ms: Option<i64>,
) -> (i64, u32, i64) {
    let account = snapshot
        .dict
        .series_key(series)
        .map_or(u32::MAX, |k| k.account);
    (bucket_of(e.start, step_ms), account, e.lost)
}

/// The typed rows of a plan, before they become a table.
enum Rows {
    Points(PointRows),
    Drops(Vec<DropRow>),
    Recoveries(Vec<RecoveryRow>),
    Summary(Vec<Vec<Value>>),
}

#[derive(Debug, Clone, Copy)]
struct DropRow {
    series: u32,
    episode: Episode,
}

#[derive(Debug, Clone, Copy)]
struct RecoveryRow {
    series: u32,
    episode: Episode,
    recovery: Recovery,
}

fn evaluate_rows(ctx: &Context<'_>, plan: &Plan) -> Result<Rows> {
    Ok(match plan {
        Plan::Series(expr) => Rows::Points(series_points(ctx, expr)?),
        Plan::Drops(spec) => Rows::Drops(drops(ctx, spec, RecoveryFilter::None)?.0),
        Plan::Recovered {
            drops: spec,
            within_ms,
            fraction,
        } => {
            let filter = RecoveryFilter::Recovered(*within_ms, *fraction);
            Rows::Recoveries(drops(ctx, spec, filter)?.1)
        }
        Plan::NotRecovered {
            drops: spec,
            within_ms,
            fraction,
        } => {
            let filter = RecoveryFilter::NotRecovered(*within_ms, *fraction);
            Rows::Drops(drops(ctx, spec, filter)?.0)
        }
        Plan::Count(_) | Plan::Sum(_) => {
            Rows::Summary(vec![vec![Value::Int(to_i64(total(ctx, plan)?)?)]])
        }
        Plan::Summarize { input, step_ms } => {
            let sums = summarize_partial(ctx, input, *step_ms)?;
            Rows::Summary(bucket_rows(sums, step_ms.is_some())?)
        }
        Plan::TopK { k, by, input } => {
            let rank = |e: &Episode| match by {
                RankColumn::Lost => e.lost,
                RankColumn::LostPct => e.lost_pct_hundredths,
            };
            let k = usize::try_from(*k).unwrap_or(usize::MAX);
            match evaluate_rows(ctx, input)? {
                Rows::Drops(mut d) => {
                    // Rows arrive sorted by account, metric, start, end; a
                    // stable sort on the rank alone keeps that order for ties.
                    d.sort_by_key(|r| std::cmp::Reverse(rank(&r.episode)));
                    d.truncate(k);
                    Rows::Drops(d)
                }
                Rows::Recoveries(mut r) => {
                    r.sort_by_key(|r| std::cmp::Reverse(rank(&r.episode)));
                    r.truncate(k);
                    Rows::Recoveries(r)
                }
                other => other,
            }
        }
    })
}

/// A total narrowed to 64 bits, or the error every sum past them gives.
pub(crate) fn to_i64(v: i128) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Invalid("the sum does not fit in 64 bits".into()))
}

/// The drop-table columns of one episode.
fn drop_row(snapshot: &Snapshot, series: u32, e: &Episode) -> Vec<Value> {
    let (account, metric) = series_names(snapshot, series);
    vec![
        Value::Text(account.to_string()),
        Value::Text(metric.to_string()),
        Value::Time(e.start),
        Value::Time(e.end),
        Value::Int(e.before),
        Value::Int(e.after),
        Value::Int(e.lost),
        Value::Percent(e.lost_pct_hundredths),
    ]
}

fn series_names(snapshot: &Snapshot, series: u32) -> (&str, &str) {
    let dict = &snapshot.dict;
    match dict.series_key(series) {
        Some(k) => (dict.account_name(k.account), dict.metrics.get(k.metric)),
        None => ("", ""),
    }
}

/// Orders series ids by (account, metric) in UTF-8 byte order, the order
/// of every output. The names are looked up once per series rather than
/// twice per comparison: the dictionary lookups cost more than comparing.
fn sort_series_by_name(snapshot: &Snapshot, ids: &mut [u32]) {
    ids.sort_by_cached_key(|&id| series_names(snapshot, id));
}

/// The series a selector picks, in increasing id (the order segments store
/// them in), counted in `ctx.selected`. Each account is matched once: a
/// metric has one series per account.
fn select(ctx: &Context<'_>, selector: &Selector) -> Vec<u32> {
    let dict = &ctx.snapshot.dict;
    let Some(metric) = dict.metric_id(&selector.metric) else {
        return Vec::new();
    };
    // An account named by `=` is looked up rather than every series of the
    // metric scanned: reading one account of a million reads a few pages
    // of the dictionary index.
    let named = selector
        .matchers
        .iter()
        .find(|m| m.op == MatchOp::Equal)
        .map(|m| m.value.as_str());
    let ids: Vec<u32> = match named {
        Some(account) => dict
            .account_id(account)
            .and_then(|a| dict.series_id(a, metric))
            .filter(|_| selector.matches(account))
            .into_iter()
            .collect(),
        // With no matcher every series of the metric is selected, and no
        // name needs to be read.
        None if selector.matchers.is_empty() => dict.series_of_metric(metric).collect(),
        None => dict
            .series_of_metric(metric)
            .filter(|&s| {
                dict.series_key(s)
                    .is_some_and(|k| selector.matches(dict.account_name(k.account)))
            })
            .collect(),
    };
    ctx.selected.fetch_add(ids.len(), Ordering::Relaxed);
    ids
}

/// The selector at the bottom of a series expression and the functions
/// applied to it, innermost first.
fn flatten(expr: &SeriesExpr) -> (&Selector, Vec<Step>) {
    let mut steps = Vec::new();
    let mut cur = expr;
    loop {
        match cur {
            SeriesExpr::Select(selector) => {
                steps.reverse();
                return (selector, steps);
            }
            SeriesExpr::Latest(inner) => {
                steps.push(Step::Latest);
                cur = inner;
            }
            SeriesExpr::Change(inner, w) => {
                steps.push(Step::Change(*w));
                cur = inner;
            }
            SeriesExpr::MinOver(inner, w) => {
                steps.push(Step::MinOver(*w));
                cur = inner;
            }
            SeriesExpr::MaxOver(inner, w) => {
                steps.push(Step::MaxOver(*w));
                cur = inner;
            }
            SeriesExpr::Resample(inner, s) => {
                steps.push(Step::Resample(*s));
                cur = inner;
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Latest,
    Change(i64),
    MinOver(i64),
    MaxOver(i64),
    Resample(i64),
}

/// The per-thread state of a scan: a cursor per segment, and every buffer
/// the pipeline of one series needs, reused from series to series.
struct Worker<'a> {
    /// Decodes values straight into `i64`: the segment reader checks each
    /// against its index entry's bounds, which are at most i64::MAX ([S2]),
    /// so they are the stored counts exactly.
    scanner: Scanner<'a, i64>,
    raw_times: Vec<i64>,
    raw_values: Vec<i64>,
    steps: Vec<Step>,
    bufs: Vec<SeriesBuf>,
    extremes: WindowExtremes,
    finder: DropFinder,
    episodes: Vec<Episode>,
}

impl<'a> Worker<'a> {
    fn new(snapshot: &'a Snapshot, steps: &[Step]) -> Worker<'a> {
        Worker {
            scanner: Scanner::new(snapshot, Columns::BOTH),
            raw_times: Vec::new(),
            raw_values: Vec::new(),
            steps: steps.to_vec(),
            bufs: steps.iter().map(|_| SeriesBuf::new()).collect(),
            extremes: WindowExtremes::new(),
            finder: DropFinder::new(),
            episodes: Vec::new(),
        }
    }

    /// Reads series `id` in `range` and applies the steps; returns the
    /// resulting series.
    fn series(&mut self, id: u32, range: TimeRange) -> Result<(&[i64], &[i64])> {
        self.scanner
            .read(id, range, &mut self.raw_times, &mut self.raw_values)?;
        self.apply_steps()
    }

    /// Like [`Worker::series`], for the series the last
    /// `self.scanner.locate` found.
    fn located_series(&mut self, range: TimeRange) -> Result<(&[i64], &[i64])> {
        self.scanner
            .read_located(range, &mut self.raw_times, &mut self.raw_values)?;
        self.apply_steps()
    }

    /// Applies the series functions to the points just read.
    fn apply_steps(&mut self) -> Result<(&[i64], &[i64])> {
        let mut current: Option<usize> = None;
        for k in 0..self.steps.len() {
            let (done, rest) = self.bufs.split_at_mut(k);
            let Some(out) = rest.first_mut() else { break };
            out.clear();
            let (t, v) = match current.and_then(|j| done.get(j)) {
                Some(buf) => (buf.times.as_slice(), buf.values.as_slice()),
                None => (self.raw_times.as_slice(), self.raw_values.as_slice()),
            };
            match self.steps[k] {
                Step::Latest => latest(t, v, out),
                Step::Change(w) => change(t, v, w, out),
                Step::MinOver(w) => self.extremes.min_over(t, v, w, out),
                Step::MaxOver(w) => self.extremes.max_over(t, v, w, out),
                Step::Resample(s) => resample(t, v, s, out),
            }
            current = Some(k);
        }
        Ok(match current.and_then(|j| self.bufs.get(j)) {
            Some(buf) => (&buf.times, &buf.values),
            None => (&self.raw_times, &self.raw_values),
        })
    }
}

/// Splits `ids` into chunks, runs `work` on each with its own worker on the
/// rayon pool, and returns the chunks' results in order.
fn scan<R: Send>(
    ctx: &Context<'_>,
    ids: &[u32],
    steps: &[Step],
    work: impl Fn(&mut Worker<'_>, &[u32]) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    // Enough chunks to balance two or more cores, few enough that each
    // chunk's cursors walk long runs of a segment.
    let chunks = rayon::current_num_threads().max(1) * 8;
    let size = ids.len().div_ceil(chunks).max(256);
    ids.par_chunks(size)
        .map(|chunk| {
            ctx.check_cancel()?;
            let mut worker = Worker::new(ctx.snapshot, steps);
            worker.scanner.expect(chunk);
            work(&mut worker, chunk)
        })
        .collect()
}

/// Points of many series, flat: series i owns `times[spans[i].1..spans[i].2]`.
struct PointRows {
    spans: Vec<(u32, usize, usize)>,
    times: Vec<i64>,
    values: Vec<i64>,
}

impl PointRows {
    fn into_rows(self, snapshot: &Snapshot) -> Vec<Vec<Value>> {
        let mut spans = self.spans;
        spans.sort_by(|a, b| series_names(snapshot, a.0).cmp(&series_names(snapshot, b.0)));
        let mut rows = Vec::with_capacity(self.times.len());
        for (series, lo, hi) in spans {
            let (account, metric) = series_names(snapshot, series);
            let times = self.times.get(lo..hi).unwrap_or(&[]);
            let values = self.values.get(lo..hi).unwrap_or(&[]);
            for (&t, &v) in times.iter().zip(values) {
                rows.push(vec![
                    Value::Text(account.to_string()),
                    Value::Text(metric.to_string()),
                    Value::Time(t),
                    Value::Int(v),
                ]);
            }
        }
        rows
    }
}

fn series_points(ctx: &Context<'_>, expr: &SeriesExpr) -> Result<PointRows> {
    let (selector, steps) = flatten(expr);
    let ids = select(ctx, selector);
    let parts = scan(ctx, &ids, &steps, |worker, chunk| {
        let mut part = PointRows {
            spans: Vec::new(),
            times: Vec::new(),
            values: Vec::new(),
        };
        for &id in chunk {
            ctx.check_cancel()?;
            let (t, v) = worker.series(id, ctx.range)?;
            if t.is_empty() {
                continue;
            }
            let lo = part.times.len();
            part.times.extend_from_slice(t);
            part.values.extend_from_slice(v);
            part.spans.push((id, lo, part.times.len()));
        }
        Ok(part)
    })?;
    let mut all = PointRows {
        spans: Vec::new(),
        times: Vec::new(),
        values: Vec::new(),
    };
    for part in parts {
        let base = all.times.len();
        all.spans.extend(
            part.spans
                .iter()
                .map(|&(s, lo, hi)| (s, lo + base, hi + base)),
        );
        all.times.extend_from_slice(&part.times);
        all.values.extend_from_slice(&part.values);
    }
    Ok(all)
}

/// The falls a chart shades in a line: those of `drop(LINE, threshold,
/// window)`, each marked by whether it recovered within `within_ms` by
/// `fraction` (docs/query-language.md, rule Q61).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FallSpec {
    pub threshold: Threshold,
    pub window_ms: i64,
    pub within_ms: i64,
    pub fraction: Percent,
}

/// One line of a chart: the points of a series after the series functions,
/// and its falls with whether each recovered.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChartLine {
    pub times: Vec<i64>,
    pub values: Vec<i64>,
    pub falls: Vec<(Episode, bool)>,
}

/// The lines of `expr` for the series `ids` (a chart draws a handful), in
/// the order given, with the falls of `falls` when given. Each series gets
/// a worker of its own, because a worker's cursors only move forward in id
/// order.
pub(crate) fn chart_lines(
    ctx: &Context<'_>,
    expr: &SeriesExpr,
    ids: &[u32],
    falls: Option<FallSpec>,
) -> Result<Vec<ChartLine>> {
    let (_, steps) = flatten(expr);
    let mut lines = Vec::with_capacity(ids.len());
    for &id in ids {
        ctx.check_cancel()?;
        let mut worker = Worker::new(ctx.snapshot, &steps);
        let mut finder = std::mem::take(&mut worker.finder);
        let mut episodes = Vec::new();
        let (t, v) = worker.series(id, ctx.range)?;
        let mut line = ChartLine {
            times: t.to_vec(),
            values: v.to_vec(),
            falls: Vec::new(),
        };
        if let Some(spec) = falls {
            finder.find(t, v, spec.threshold, spec.window_ms, &mut episodes);
            line.falls = episodes
                .iter()
                .map(|e| {
                    let back = find_recovery(t, v, e, spec.within_ms, spec.fraction).is_some();
                    (*e, back)
                })
                .collect();
        }
        lines.push(line);
    }
    Ok(lines)
}

/// The number of points and the sum of their values, without keeping them.
fn series_totals(ctx: &Context<'_>, expr: &SeriesExpr) -> Result<(i128, i128)> {
    let (selector, steps) = flatten(expr);
    let ids = select(ctx, selector);
    let parts = scan(ctx, &ids, &steps, |worker, chunk| {
        let (mut n, mut sum) = (0i128, 0i128);
        for &id in chunk {
            ctx.check_cancel()?;
            let (_, v) = worker.series(id, ctx.range)?;
            n += v.len() as i128;
            sum += v.iter().map(|&x| i128::from(x)).sum::<i128>();
        }
        Ok((n, sum))
    })?;
    Ok(parts
        .into_iter()
        .fold((0, 0), |acc, p| (acc.0 + p.0, acc.1 + p.1)))
}

#[derive(Debug, Clone, Copy)]
enum RecoveryFilter {
    None,
    Recovered(i64, Percent),
    NotRecovered(i64, Percent),
}

/// The drops of `spec` (filtered by recovery when asked), sorted by
/// account, metric, start, end. The recoveries are returned for
/// `RecoveryFilter::Recovered`, the drops otherwise.
fn drops(
    ctx: &Context<'_>,
    spec: &DropSpec,
    filter: RecoveryFilter,
) -> Result<(Vec<DropRow>, Vec<RecoveryRow>)> {
    let (selector, steps) = flatten(&spec.series);
    let ids = select(ctx, selector);
    let parts = scan(ctx, &ids, &steps, |worker, chunk| {
        let mut drops = Vec::new();
        let mut recoveries = Vec::new();
        let mut episodes = std::mem::take(&mut worker.episodes);
        for &id in chunk {
            ctx.check_cancel()?;
            // The index says how far apart the series' values are at most;
            // a series that cannot fall by the threshold is not decoded.
            match worker.scanner.locate(id, ctx.range)? {
                Some(bounds) if may_fall(spec.threshold, bounds.v_min, bounds.v_max) => {}
                _ => continue,
            }
            episodes.clear();
            let mut finder = std::mem::take(&mut worker.finder);
            let (t, v) = worker.located_series(ctx.range)?;
            finder.find(t, v, spec.threshold, spec.window_ms, &mut episodes);
            for e in &episodes {
                match filter {
                    RecoveryFilter::None => drops.push(DropRow {
                        series: id,
                        episode: *e,
                    }),
                    RecoveryFilter::Recovered(within, fraction) => {
                        if let Some(recovery) = find_recovery(t, v, e, within, fraction) {
                            recoveries.push(RecoveryRow {
                                series: id,
                                episode: *e,
                                recovery,
                            });
                        }
                    }
                    RecoveryFilter::NotRecovered(within, fraction) => {
                        if find_recovery(t, v, e, within, fraction).is_none() {
                            drops.push(DropRow {
                                series: id,
                                episode: *e,
                            });
                        }
                    }
                }
            }
            worker.finder = finder;
        }
        worker.episodes = episodes;
        Ok((drops, recoveries))
    })?;
    let (mut all_drops, mut all_recoveries): (Vec<DropRow>, Vec<RecoveryRow>) =
        (Vec::new(), Vec::new());
    for (d, r) in parts {
        all_drops.extend(d);
        all_recoveries.extend(r);
    }
    // Each series' rows are in time order already; ordering the series by
    // name orders the whole table. Only the series that have rows are
    // ordered: comparing names is the costly part, and usually a minority
    // of the selected series has a drop.
    let mut named: Vec<u32> = all_drops
        .iter()
        .map(|d| d.series)
        .chain(all_recoveries.iter().map(|r| r.series))
        .collect();
    named.sort_unstable();
    named.dedup();
    sort_series_by_name(ctx.snapshot, &mut named);
    let mut rank = vec![0u32; ctx.snapshot.dict.series_count()];
    for (r, &id) in named.iter().enumerate() {
        if let Some(slot) = rank.get_mut(id as usize) {
            *slot = r as u32;
        }
    }
    let rank_of = |s: u32| rank.get(s as usize).copied().unwrap_or(u32::MAX);
    all_drops.sort_by_key(|d| (rank_of(d.series), d.episode.start, d.episode.end));
    all_recoveries.sort_by_key(|d| (rank_of(d.series), d.episode.start, d.episode.end));
    Ok((all_drops, all_recoveries))
}

/// False when no point of a series whose values all lie in `[lo, hi]` can
/// qualify under [Q20c]: a loss is at most `hi − lo`, and a peak is at
/// least `lo`, so a percentage threshold needs `100 · (hi − lo) ≥ P · lo`.
/// Every series function drop() accepts (resample, min_over, max_over,
/// latest) keeps values within the raw series' bounds, so the bounds of the
/// stored points hold for them too.
fn may_fall(threshold: Threshold, lo: u64, hi: u64) -> bool {
    // Counts are at most i64::MAX ([S2]), so both casts are exact.
    let (lo, hi) = (lo as i64, hi as i64);
    if hi <= lo {
        return false;
    }
    match threshold {
        Threshold::Absolute(t) => (hi - lo) as u64 >= t,
        Threshold::Percent(p) => p.reached(hi - lo, lo),
    }
}

/// One bucket of `summarize()` ([Q25]): its episodes, distinct accounts
/// and loss, with the loss not yet narrowed to 64 bits. `bucket` is 0
/// without a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct BucketSum {
    pub bucket: i64,
    pub episodes: i64,
    pub accounts: i64,
    pub lost: i128,
}

/// The bucket of an episode that starts at `start`: `start` floored to a
/// multiple of the step from the epoch, or 0 without a step.
pub(crate) fn bucket_of(start: i64, step_ms: Option<i64>) -> i64 {
    match step_ms {
        Some(step) if step > 0 => start.div_euclid(step).saturating_mul(step),
        _ => 0,
    }
}

/// Groups episodes, given as (bucket, account, lost), into the buckets of
/// `summarize()`, in ascending order. Without a step there is exactly one
/// bucket, even with no episode (a row of zeros, [Q25]); with a step only
/// the buckets that hold an episode. The account is any key that names
/// one account: an id within one database, a name across shards.
pub(crate) fn bucket_sums<K: Ord>(mut keyed: Vec<(i64, K, i64)>, has_step: bool) -> Vec<BucketSum> {
    keyed.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut sums: Vec<BucketSum> = Vec::new();
    let mut previous: Option<(i64, &K)> = None;
    for (bucket, account, lost) in &keyed {
        let same_bucket = previous.is_some_and(|(b, _)| b == *bucket);
        if !same_bucket {
            sums.push(BucketSum {
                bucket: *bucket,
                episodes: 0,
                accounts: 0,
                lost: 0,
            });
        }
        // Sorted by bucket, then account: an account is new to its bucket
        // exactly when it differs from the row before it in that bucket.
        let new_account = !same_bucket || previous.is_some_and(|(_, a)| a != account);
        if let Some(sum) = sums.last_mut() {
            sum.episodes += 1;
            sum.accounts += i64::from(new_account);
            sum.lost += i128::from(*lost);
        }
        previous = Some((*bucket, account));
    }
    if sums.is_empty() && !has_step {
        sums.push(BucketSum {
            bucket: 0,
            episodes: 0,
            accounts: 0,
            lost: 0,
        });
    }
    sums
}

/// The rows of `summarize()` from its buckets: `bucket` first when there is
/// a step, then `episodes, accounts, lost`, each loss narrowed to 64 bits.
pub(crate) fn bucket_rows(sums: Vec<BucketSum>, has_step: bool) -> Result<Vec<Vec<Value>>> {
    sums.into_iter()
        .map(|sum| {
            let mut row = Vec::with_capacity(4);
            if has_step {
                row.push(Value::Time(sum.bucket));
            }
            row.push(Value::Int(sum.episodes));
            row.push(Value::Int(sum.accounts));
            row.push(Value::Int(to_i64(sum.lost)?));
            Ok(row)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Pruning is sound: when `may_fall` says a series within its
        /// bounds cannot fall, the finder indeed finds nothing in it.
        #[test]
        fn may_fall_never_prunes_a_series_with_a_drop(
            base in 0i64..5_000,
            offsets in prop::collection::vec(0i64..300, 1..60),
            gaps in prop::collection::vec(1i64..5, 60),
            pct in prop::option::of((1u64..10_000, 0u32..3)),
            abs in 1u64..400,
            window in 1i64..6,
        ) {
            let values: Vec<i64> = offsets.iter().map(|o| base + o).collect();
            let mut t = 0;
            let times: Vec<i64> = gaps.iter().take(values.len()).map(|g| { t += g; t }).collect();
            let threshold = match pct {
                Some((mantissa, scale)) => Threshold::Percent(Percent { mantissa, scale }),
                None => Threshold::Absolute(abs),
            };
            let lo = *values.iter().min().unwrap() as u64;
            let hi = *values.iter().max().unwrap() as u64;
            let mut episodes = Vec::new();
            DropFinder::new().find(&times, &values, threshold, window, &mut episodes);
            if !may_fall(threshold, lo, hi) {
                prop_assert!(episodes.is_empty(), "pruned a series with {episodes:?}");
            }
        }
    }

    #[test]
    fn may_fall_at_the_edges() {
        let five = Threshold::Percent(Percent {
            mantissa: 5,
            scale: 0,
        });
        assert!(!may_fall(five, 100, 100));
        assert!(may_fall(five, 100, 105)); // 105 -> 100 is a 4.76% fall, but the bound is loose
        assert!(!may_fall(five, 100, 104));
        assert!(may_fall(five, 0, 1));
        assert!(may_fall(Threshold::Absolute(50), 1000, 1050));
        assert!(!may_fall(Threshold::Absolute(51), 1000, 1050));
    }
}
