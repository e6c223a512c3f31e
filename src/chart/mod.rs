//! Pictures of query results, as SVG text: the counts over time with every
//! fall shaded, a glitch (it came back) apart from a purge (it did not),
//! and the bars of a `summarize(…, STEP)`. One renderer serves
//! `tally query --format svg`, the REPL's `.plot` and the HTTP server; the
//! rules are docs/query-language.md, section 8 (rules Q60–Q65).
//!
//! This module owns deciding what a result's picture is and gathering its
//! data from one committed state (`mod.rs`), the axes (`axis.rs`), the
//! drawing (`draw.rs`) and the SVG text with its escaping (`svg.rs`). It
//! writes the SVG itself: the pictures are small, and a plotting crate
//! would bring far more than they need.

mod axis;
mod draw;
mod svg;

use std::collections::HashSet;

use crate::Db;
use crate::db::snapshot::Snapshot;
use crate::error::Result;
use crate::query::eval::{FallSpec, chart_lines};
use crate::query::plan::{DropSpec, Kind, Percent, Plan, SeriesExpr, Threshold};
use crate::query::{Query, Table, Value};

use draw::{Bar, BarsChart, Fall, Line, LinesChart, MAX_LINES};

/// The falls shaded on a series result: `drop(SERIES, 5%, 1h)`, judged
/// over one day, as the REPL's sparkline marks them (rule Q61).
const DEFAULT_THRESHOLD: Threshold = Threshold::Percent(Percent {
    mantissa: 5,
    scale: 0,
});
const DEFAULT_WINDOW_MS: i64 = 3_600_000;
const DEFAULT_RECOVERY_MS: i64 = 86_400_000;

/// What a query's picture is, decided by its type (rule Q60).
enum Shape<'p> {
    /// Lines of `series` for the (account, metric) pairs of the result,
    /// with the falls of `falls`.
    Lines {
        series: &'p SeriesExpr,
        falls: FallSpec,
    },
    /// One bar per bucket of `step_ms`.
    Bars { step_ms: i64 },
}

fn shape(plan: &Plan) -> Option<Shape<'_>> {
    let judged = |spec: &DropSpec, within_ms, fraction| FallSpec {
        threshold: spec.threshold,
        window_ms: spec.window_ms,
        within_ms,
        fraction,
    };
    match plan {
        Plan::Series(expr) if expr.kind() == Kind::Series => Some(Shape::Lines {
            series: expr,
            falls: FallSpec {
                threshold: DEFAULT_THRESHOLD,
                window_ms: DEFAULT_WINDOW_MS,
                within_ms: DEFAULT_RECOVERY_MS,
                fraction: Percent::FULL,
            },
        }),
        Plan::Drops(spec) => Some(Shape::Lines {
            series: &spec.series,
            falls: judged(spec, DEFAULT_RECOVERY_MS, Percent::FULL),
        }),
        Plan::Recovered {
            drops,
            within_ms,
            fraction,
        }
        | Plan::NotRecovered {
            drops,
            within_ms,
            fraction,
        } => Some(Shape::Lines {
            series: &drops.series,
            falls: judged(drops, *within_ms, *fraction),
        }),
        Plan::TopK { input, .. } => shape(input),
        Plan::Summarize {
            step_ms: Some(step_ms),
            ..
        } => Some(Shape::Bars { step_ms: *step_ms }),
        Plan::Series(_) | Plan::Count(_) | Plan::Sum(_) | Plan::Summarize { .. } => None,
    }
}

/// True when the query's results have a picture: series of counts, drop
/// and recovery tables, and `summarize(…, STEP)`; false for series of
/// differences and the other summaries (docs/query-language.md, rule
/// Q60). Decided by the query alone, before it runs.
pub fn can_draw(query: &Query) -> bool {
    shape(query.plan()).is_some()
}

/// Runs `query` and draws its result: the SVG text, or `None` when the
/// result has no picture ([`can_draw`] is false). The table and the
/// picture come from one committed state.
pub fn render(db: &Db, query: &Query) -> Result<(Table, Option<String>)> {
    let snapshot = db.snapshot();
    let table = query.run_on(&snapshot)?;
    let svg = draw_result(&snapshot, query, &table)?;
    Ok((table, svg))
}

/// Draws `table`, the result of `query` on `snapshot`.
fn draw_result(snapshot: &Snapshot, query: &Query, table: &Table) -> Result<Option<String>> {
    let title = query.to_string();
    match shape(query.plan()) {
        None => Ok(None),
        Some(Shape::Bars { step_ms }) => Ok(Some(draw::bars(&BarsChart {
            title,
            step: duration_text(step_ms),
            step_ms,
            bars: bars_of(table),
        }))),
        Some(Shape::Lines { series, falls }) => {
            let (pairs, total) = pairs_of(table);
            let ids: Vec<(u32, &(String, String))> = pairs
                .iter()
                .filter_map(|pair| series_id(snapshot, &pair.0, &pair.1).map(|id| (id, pair)))
                .collect();
            let ctx = query.context(snapshot);
            let id_list: Vec<u32> = ids.iter().map(|(id, _)| *id).collect();
            let drawn = chart_lines(&ctx, series, &id_list, Some(falls))?;
            let lines = ids
                .iter()
                .zip(drawn)
                .map(|((_, (account, metric)), data)| Line {
                    account: account.clone(),
                    metric: metric.clone(),
                    points: data
                        .times
                        .iter()
                        .copied()
                        .zip(data.values.iter().copied())
                        .collect(),
                    falls: data
                        .falls
                        .iter()
                        .map(|(e, recovered)| Fall {
                            start: e.start,
                            end: e.end,
                            before: e.before,
                            after: e.after,
                            recovered: *recovered,
                        })
                        .collect(),
                })
                .collect();
            let mut recovery = duration_text(falls.within_ms);
            if falls.fraction != Percent::FULL {
                recovery.push_str(&format!(", {}", percent_text(falls.fraction)));
            }
            Ok(Some(draw::lines(&LinesChart {
                title,
                lines,
                total,
                recovery,
            })))
        }
    }
}

/// The first [`MAX_LINES`] distinct (account, metric) pairs of a result
/// whose first two columns are the account and the metric, in the
/// result's order, and how many there are in all.
fn pairs_of(table: &Table) -> (Vec<(String, String)>, usize) {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut pairs = Vec::new();
    for row in table.rows() {
        let (Some(Value::Text(account)), Some(Value::Text(metric))) = (row.first(), row.get(1))
        else {
            continue;
        };
        if seen.insert((account, metric)) && pairs.len() < MAX_LINES {
            pairs.push((account.clone(), metric.clone()));
        }
    }
    (pairs, seen.len())
}

/// The bars of a `summarize(…, STEP)` result: bucket, episodes, accounts,
/// lost.
fn bars_of(table: &Table) -> Vec<Bar> {
    table
        .rows()
        .iter()
        .filter_map(|row| match row.as_slice() {
            [
                Value::Time(bucket),
                Value::Int(episodes),
                Value::Int(accounts),
                Value::Int(lost),
            ] => Some(Bar {
                bucket: *bucket,
                episodes: *episodes,
                accounts: *accounts,
                lost: *lost,
            }),
            _ => None,
        })
        .collect()
}

/// The id of the series (account, metric), found as `Db::points` finds it.
fn series_id(snapshot: &Snapshot, account: &str, metric: &str) -> Option<u32> {
    let dict = &snapshot.dict;
    let metric_id = dict.metric_id(metric)?;
    dict.series_id(dict.account_id(account)?, metric_id)
}

/// Milliseconds as a duration of the query language: `1h30m`, `1d`.
fn duration_text(ms: i64) -> String {
    const UNITS: [(&str, i64); 6] = [
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = ms.max(0);
    let mut out = String::new();
    for (unit, length) in UNITS {
        let count = rest / length;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            rest %= length;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// A percentage as the query wrote it: `90%`, `2.5%`.
fn percent_text(p: Percent) -> String {
    let digits = p.mantissa.to_string();
    let scale = p.scale as usize;
    if scale == 0 {
        return format!("{digits}%");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{whole}.{}%", fraction.trim_end_matches('0')).replace(".%", "%")
}

#[cfg(test)]
mod tests;
