//! The typed plan: what a checked query means, in the form an engine runs.
//!
//! This module owns the stage between the checker and the evaluator. The
//! checker (`check`) is the only code that builds a [`Plan`]; the evaluator
//! (`eval`) runs one, and any other engine may take one too: an engine that
//! scans tally's series itself reads from [`Plan::selector`] which series to
//! scan (one metric, conditions on the account), and from [`Plan::merge`]
//! and [`Plan::partial`] how the work divides over parts of the series, such
//! as shards that each hold their own accounts (docs/scale-out.md).
//!
//! A plan holds no text and no positions: every value is in the unit the
//! evaluator works in (milliseconds, exact percentages), every regular
//! expression is compiled, and every invariant the checker enforces is
//! written on the node it concerns. The evaluator takes them as given: what
//! a plan built by hand that breaks one answers is not specified.
//!
//! The plan shares a little vocabulary with lower modules instead of
//! repeating it: the matcher operators of the syntax tree ([`MatchOp`]) and
//! the exact percentage and threshold that the series functions take
//! ([`Percent`], [`Threshold`]). It re-exports them, so that a consumer of
//! plans needs this module alone.
//!
//! Its `Display` writes the plan as an indented tree, one node a line, in
//! the manner of an `EXPLAIN`, each node with how its parts merge.

use std::fmt::{self, Display, Formatter, Write};

use regex::Regex;

pub(crate) use super::ast::MatchOp;
use super::ast::{Decimal, Duration, StringLit};
pub(crate) use super::functions::{Percent, Threshold};

/// The columns of a series expression's output ([Q31]).
const POINT_COLUMNS: [&str; 4] = ["account", "metric", "time", "value"];
/// The columns of a drop table ([Q20]).
const DROP_COLUMNS: [&str; 8] = [
    "account", "metric", "start", "end", "before", "after", "lost", "lost_pct",
];
/// The columns a recovery table adds to a drop table's ([Q21]).
const RECOVERY_EXTRA_COLUMNS: [&str; 2] = ["recovered_at", "recovery_s"];

/// The type of an expression's value ([Q12]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Counts: `account, metric, time, value`.
    Series,
    /// Differences of counts, from `change()`: the same columns, signed.
    Deltas,
    /// Falls, from `drop()` or `not recovered_within()`.
    Drops,
    /// Falls with their recovery, from `recovered_within()`.
    Recoveries,
    /// The output of an aggregation.
    Summary,
}

impl Kind {
    /// The kind with an article, as messages name it.
    pub fn described(self) -> &'static str {
        match self {
            Kind::Series => "a series",
            Kind::Deltas => "a series of differences",
            Kind::Drops => "a drop table",
            Kind::Recoveries => "a recovery table",
            Kind::Summary => "a summary",
        }
    }
}

/// What the evaluator runs: a checked query, with every value converted to
/// the unit the evaluator works in (milliseconds, exact percentages).
///
/// The first four nodes are per series: each of their rows comes from one
/// series alone, and they come sorted by account, then metric (then time,
/// or start and end). The last four aggregate the rows of their input over
/// every series. Every plan reads exactly one [`Selector`], at the bottom
/// of its one chain of nodes, since no function takes two tables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Points of a series expression ([Q31]).
    Series(SeriesExpr),
    /// `drop(…)` ([Q20]).
    Drops(DropSpec),
    /// `recovered_within(…)`: the drops that came back ([Q21]). `within_ms`
    /// is more than 0; `fraction` is more than 0% and at most 100%.
    Recovered {
        drops: DropSpec,
        within_ms: i64,
        fraction: Percent,
    },
    /// `not recovered_within(…)`: the drops that did not come back ([Q22]),
    /// with the same bounds as [`Plan::Recovered`].
    NotRecovered {
        drops: DropSpec,
        within_ms: i64,
        fraction: Percent,
    },
    /// `count(…)`: the number of rows ([Q23]); any input.
    Count(Box<Plan>),
    /// `sum(…)`: the sum of `lost` or of `value` ([Q24]); the input is not
    /// of kind [`Kind::Summary`].
    Sum(Box<Plan>),
    /// `summarize(…)`: episodes, accounts and loss, per bucket of
    /// `step_ms` when given ([Q25]). The input is of kind [`Kind::Drops`]
    /// or [`Kind::Recoveries`]; `step_ms`, when given, is more than 0.
    Summarize {
        input: Box<Plan>,
        step_ms: Option<i64>,
    },
    /// `topk(…)`: the `k` rows with the largest `by` ([Q26]), ties kept in
    /// the input's order. `k` is at least 1; the input is of kind
    /// [`Kind::Drops`] or [`Kind::Recoveries`].
    TopK {
        k: u64,
        by: RankColumn,
        input: Box<Plan>,
    },
}

/// How the results of a plan run on parts of the series combine into the
/// result of the plan run on all of them: the split between a partial step,
/// which each part (a shard, a range of series ids) runs on its own, and a
/// final step, which combines what the parts returned (docs/scale-out.md).
///
/// The parts must hold disjoint sets of series. Since a plan reads one
/// metric, each of its series is a different account, so parts that hold
/// disjoint series hold disjoint accounts too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    /// The per-series nodes: each row comes from one series alone, so the
    /// parts' rows together, sorted back into the plan's order (account,
    /// metric, then time, or start and end), are the whole's rows. No
    /// shuffle.
    Concatenate,
    /// `count()` and `sum()`: each part returns one partial count or sum;
    /// the final step adds them up.
    Add,
    /// `summarize()`: each part returns its episodes, accounts and loss per
    /// bucket; the final step adds them up bucket by bucket. The accounts
    /// add up because no account is in two parts.
    AddPerBucket,
    /// `topk()`: each part returns its own `k` best rows; the final step
    /// keeps the `k` best of them all, ranked and tied as `topk()` ranks
    /// and ties, which are the `k` best of the whole.
    TopK,
}

impl Merge {
    /// What the final step does, for the plan's `Display`.
    fn described(self) -> &'static str {
        match self {
            Merge::Concatenate => "per series",
            Merge::Add => "partial, then the final step adds the parts' values",
            Merge::AddPerBucket => "partial, then the final step adds the parts' rows per bucket",
            Merge::TopK => "partial, then the final step keeps the k best of the parts' rows",
        }
    }
}

impl Plan {
    /// The type of the plan's output.
    pub fn kind(&self) -> Kind {
        match self {
            Plan::Series(series) => series.kind(),
            Plan::Drops(_) | Plan::NotRecovered { .. } => Kind::Drops,
            Plan::Recovered { .. } => Kind::Recoveries,
            Plan::Count(_) | Plan::Sum(_) | Plan::Summarize { .. } => Kind::Summary,
            Plan::TopK { input, .. } => input.kind(),
        }
    }

    /// The names of the output columns, in order.
    pub fn columns(&self) -> Vec<&'static str> {
        match self {
            Plan::Series(_) => POINT_COLUMNS.to_vec(),
            Plan::Drops(_) | Plan::NotRecovered { .. } => DROP_COLUMNS.to_vec(),
            Plan::Recovered { .. } => {
                let mut columns = DROP_COLUMNS.to_vec();
                columns.extend(RECOVERY_EXTRA_COLUMNS);
                columns
            }
            Plan::Count(_) => vec!["count"],
            Plan::Sum(input) => match input.kind() {
                Kind::Drops | Kind::Recoveries => vec!["lost"],
                // The checker lets only series and drop tables into sum().
                Kind::Series | Kind::Deltas | Kind::Summary => vec!["value"],
            },
            Plan::Summarize { step_ms, .. } => {
                let mut columns = Vec::with_capacity(4);
                if step_ms.is_some() {
                    columns.push("bucket");
                }
                columns.extend(["episodes", "accounts", "lost"]);
                columns
            }
            Plan::TopK { input, .. } => input.columns(),
        }
    }

    /// The selector the plan reads: which metric, and which accounts of it.
    /// An engine that scans series itself pushes it, with the query's time
    /// range, into its scan.
    pub fn selector(&self) -> &Selector {
        match self {
            Plan::Series(series) => series.selector(),
            Plan::Drops(spec)
            | Plan::Recovered { drops: spec, .. }
            | Plan::NotRecovered { drops: spec, .. } => spec.series.selector(),
            Plan::Count(input)
            | Plan::Sum(input)
            | Plan::Summarize { input, .. }
            | Plan::TopK { input, .. } => input.selector(),
        }
    }

    /// The input of an aggregation node (`count`, `sum`, `summarize`,
    /// `topk`); `None` for a per-series node, whose input is a series
    /// expression rather than a plan.
    pub fn input(&self) -> Option<&Plan> {
        match self {
            Plan::Series(_)
            | Plan::Drops(_)
            | Plan::Recovered { .. }
            | Plan::NotRecovered { .. } => None,
            Plan::Count(input)
            | Plan::Sum(input)
            | Plan::Summarize { input, .. }
            | Plan::TopK { input, .. } => Some(input),
        }
    }

    /// How the results of this node, run on parts of the series, combine
    /// into its result over all of them.
    pub fn merge(&self) -> Merge {
        match self {
            Plan::Series(_)
            | Plan::Drops(_)
            | Plan::Recovered { .. }
            | Plan::NotRecovered { .. } => Merge::Concatenate,
            Plan::Count(_) | Plan::Sum(_) => Merge::Add,
            Plan::Summarize { .. } => Merge::AddPerBucket,
            Plan::TopK { .. } => Merge::TopK,
        }
    }

    /// True when every row comes from one series alone, so that the plan
    /// runs on each part of the series with no final step but putting the
    /// rows in order. Aggregations stand only above per-series nodes, so
    /// this is a property of the top node.
    pub fn is_per_series(&self) -> bool {
        self.merge() == Merge::Concatenate
    }

    /// The sub-plan each part runs on its own: the plan itself when it is
    /// per series, else its lowest aggregation, whose input is per series.
    /// The parts' results combine by that sub-plan's [`Plan::merge`]; the
    /// aggregations above it, if any (`count(topk(…))`), then run once on
    /// the combined rows, since a count of partial top-k rows is not a
    /// partial count.
    pub fn partial(&self) -> &Plan {
        let mut node = self;
        while let Some(input) = node.input() {
            if input.is_per_series() {
                break;
            }
            node = input;
        }
        node
    }

    /// Writes this node and those below it, one a line, indented by
    /// `depth`; `partial` is the node that [`Plan::partial`] names.
    fn write_tree(&self, f: &mut Formatter<'_>, depth: usize, partial: &Plan) -> fmt::Result {
        if let Plan::Series(series) = self {
            return series.write_tree(f, depth, Some(Merge::Concatenate));
        }
        indent(f, depth)?;
        match self {
            // Written above, with its own indentation.
            Plan::Series(_) => return Ok(()),
            Plan::Drops(spec) => {
                spec.write_node(f)?;
                writeln!(f, "  [{}]", Merge::Concatenate.described())?;
                return spec.series.write_tree(f, depth + 1, None);
            }
            Plan::Recovered {
                drops,
                within_ms,
                fraction,
            }
            | Plan::NotRecovered {
                drops,
                within_ms,
                fraction,
            } => {
                let name = if matches!(self, Plan::Recovered { .. }) {
                    "recovered_within"
                } else {
                    "not recovered_within"
                };
                write!(f, "{name} within={} fraction=", Millis(*within_ms))?;
                write_percent(f, *fraction)?;
                writeln!(f, "  [{}]", Merge::Concatenate.described())?;
                indent(f, depth + 1)?;
                drops.write_node(f)?;
                f.write_char('\n')?;
                return drops.series.write_tree(f, depth + 2, None);
            }
            Plan::Count(_) => f.write_str("count")?,
            Plan::Sum(_) => f.write_str("sum")?,
            Plan::Summarize { step_ms, .. } => {
                f.write_str("summarize")?;
                if let Some(step_ms) = step_ms {
                    write!(f, " step={}", Millis(*step_ms))?;
                }
            }
            Plan::TopK { k, by, .. } => {
                let by = match by {
                    RankColumn::Lost => "lost",
                    RankColumn::LostPct => "lost_pct",
                };
                write!(f, "topk k={k} by={by}")?;
            }
        }
        if std::ptr::eq(self, partial) {
            writeln!(f, "  [{}]", self.merge().described())?;
        } else {
            writeln!(f, "  [final: once, on the combined rows]")?;
        }
        match self.input() {
            Some(input) => input.write_tree(f, depth + 1, partial),
            None => Ok(()),
        }
    }
}

/// The plan as an indented tree, one node a line, from the top node down to
/// the selector, each aggregation marked with whether it is the partial
/// step (and how the parts merge) or runs once on the combined rows:
///
/// ```text
/// count  [final: once, on the combined rows]
///   topk k=10 by=lost  [partial, then the final step keeps the k best of the parts' rows]
///     recovered_within within=1d fraction=100%  [per series]
///       drop threshold=5% window=1h
///         select followers{account=~"a.*"}
/// ```
impl Display for Plan {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.write_tree(f, 0, self.partial())
    }
}

/// Two spaces per level of the plan's tree.
fn indent(f: &mut Formatter<'_>, depth: usize) -> fmt::Result {
    for _ in 0..depth {
        f.write_str("  ")?;
    }
    Ok(())
}

/// A percentage as a query writes it: `2.5%`.
fn write_percent(f: &mut Formatter<'_>, percent: Percent) -> fmt::Result {
    let value = Decimal {
        mantissa: percent.mantissa,
        scale: percent.scale,
    };
    write!(f, "{value}%")
}

/// A length of time in milliseconds, written as a query writes a duration
/// (`1h30m`) when it is a positive whole number of seconds, else in
/// milliseconds (`1500ms`), which only a plan built by hand can hold.
struct Millis(i64);

impl Display for Millis {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match u64::try_from(self.0) {
            Ok(ms) if ms > 0 && ms % 1000 == 0 => Duration { seconds: ms / 1000 }.fmt(f),
            _ => write!(f, "{}ms", self.0),
        }
    }
}

/// A series expression: selects points and transforms them one series at a
/// time. Windows and steps are in milliseconds, each more than 0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SeriesExpr {
    /// The points of the selected series.
    Select(Selector),
    /// The last point of each series ([Q27]).
    Latest(Box<SeriesExpr>),
    /// `v_i − v_j`, `j` the earliest point with `t_j >= t_i − window`
    /// ([Q28]). The inner expression is never of kind [`Kind::Deltas`].
    Change(Box<SeriesExpr>, i64),
    /// The minimum over `[t_i − window, t_i]` ([Q29]).
    MinOver(Box<SeriesExpr>, i64),
    /// The maximum over `[t_i − window, t_i]` ([Q29]).
    MaxOver(Box<SeriesExpr>, i64),
    /// The last value in each bucket of `step`, at the bucket's start
    /// ([Q30]).
    Resample(Box<SeriesExpr>, i64),
}

impl SeriesExpr {
    /// [`Kind::Deltas`] when a `change()` is inside, else [`Kind::Series`].
    pub fn kind(&self) -> Kind {
        match self {
            SeriesExpr::Select(_) => Kind::Series,
            SeriesExpr::Change(..) => Kind::Deltas,
            SeriesExpr::Latest(inner)
            | SeriesExpr::MinOver(inner, _)
            | SeriesExpr::MaxOver(inner, _)
            | SeriesExpr::Resample(inner, _) => inner.kind(),
        }
    }

    /// The selector at the bottom of the expression.
    pub fn selector(&self) -> &Selector {
        let mut expr = self;
        loop {
            match expr {
                SeriesExpr::Select(selector) => return selector,
                SeriesExpr::Latest(inner)
                | SeriesExpr::Change(inner, _)
                | SeriesExpr::MinOver(inner, _)
                | SeriesExpr::MaxOver(inner, _)
                | SeriesExpr::Resample(inner, _) => expr = inner,
            }
        }
    }

    /// Writes the expression one function a line, from the outermost down
    /// to the selector, indented by `depth`; `merge`, when given, is
    /// written after the first line.
    fn write_tree(&self, f: &mut Formatter<'_>, depth: usize, merge: Option<Merge>) -> fmt::Result {
        indent(f, depth)?;
        let (inner, name, length) = match self {
            SeriesExpr::Select(selector) => {
                write!(f, "select {selector}")?;
                (None, "", 0)
            }
            SeriesExpr::Latest(inner) => {
                f.write_str("latest")?;
                (Some(inner), "", 0)
            }
            SeriesExpr::Change(inner, window) => (Some(inner), "change window", *window),
            SeriesExpr::MinOver(inner, window) => (Some(inner), "min_over window", *window),
            SeriesExpr::MaxOver(inner, window) => (Some(inner), "max_over window", *window),
            SeriesExpr::Resample(inner, step) => (Some(inner), "resample step", *step),
        };
        if !name.is_empty() {
            write!(f, "{name}={}", Millis(length))?;
        }
        if let Some(merge) = merge {
            write!(f, "  [{}]", merge.described())?;
        }
        f.write_char('\n')?;
        match inner {
            Some(inner) => inner.write_tree(f, depth + 1, None),
            None => Ok(()),
        }
    }
}

/// The arguments of `drop()`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DropSpec {
    /// The counts to look for falls in; never of kind [`Kind::Deltas`].
    pub series: SeriesExpr,
    /// How much must be lost: a count of at least 1, or a percentage more
    /// than 0% and at most 100%.
    pub threshold: Threshold,
    /// Within how long, in milliseconds; more than 0.
    pub window_ms: i64,
}

impl DropSpec {
    /// Writes `drop threshold=… window=…`, without a line break.
    fn write_node(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("drop threshold=")?;
        match self.threshold {
            Threshold::Absolute(count) => write!(f, "{count}")?,
            Threshold::Percent(percent) => write_percent(f, percent)?,
        }
        write!(f, " window={}", Millis(self.window_ms))
    }
}

/// Which series to read: one metric, the accounts that pass every matcher.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selector {
    /// The metric; one that does not exist selects nothing.
    pub metric: String,
    /// Conditions on the account, all of which must hold.
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// True when the account passes every matcher.
    pub fn matches(&self, account: &str) -> bool {
        self.matchers.iter().all(|matcher| matcher.matches(account))
    }
}

/// The selector as a query writes it: `followers{account=~"a.*"}`.
impl Display for Selector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if self.matchers.is_empty() {
            return Ok(());
        }
        f.write_char('{')?;
        for (i, matcher) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            // The syntax tree's string literal escapes the value as the
            // query language does ([Q3]); its span is not written.
            let value = StringLit {
                value: matcher.value.clone(),
                span: Default::default(),
            };
            write!(f, "account{}{value}", matcher.op.symbol())?;
        }
        f.write_char('}')
    }
}

/// One condition on the account.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    /// How to compare.
    pub op: MatchOp,
    /// The string as written in the query (unescaped).
    pub value: String,
    /// For `=~` and `!~`: `value` compiled as `^(?:value)$` ([Q8]); the
    /// checker always sets it for those two operators, and never for the
    /// others.
    pub regex: Option<Regex>,
}

impl Matcher {
    /// True when the account passes this condition.
    pub fn matches(&self, account: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => account == self.value,
            (MatchOp::NotEqual, _) => account != self.value,
            (MatchOp::Matches, Some(regex)) => regex.is_match(account),
            (MatchOp::NotMatches, Some(regex)) => !regex.is_match(account),
            // The checker always compiles the regex of these two operators;
            // a hand-built matcher without one matches nothing.
            (MatchOp::Matches | MatchOp::NotMatches, None) => false,
        }
    }
}

/// Two matchers are equal when they were written the same: the regex is
/// compiled from `op` and `value`, and `Regex` has no equality of its own.
impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.op == other.op && self.value == other.value
    }
}

/// The column `topk()` ranks by ([Q26]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RankColumn {
    /// `lost`, the default.
    Lost,
    /// `lost_pct`.
    LostPct,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::query::check::compile;
    use crate::query::{Query, Value};

    fn plan(query: &str) -> Plan {
        match compile(query) {
            Ok(plan) => plan,
            Err(e) => panic!("{query:?} does not compile:\n{}", e.render()),
        }
    }

    #[test]
    fn the_selector_is_the_one_at_the_bottom() {
        let p = plan(
            r#"count(topk(3, recovered_within(drop(resample(followers{account="a", account!~"b.*"}, 1h), 5%, 1h), 1d)))"#,
        );
        let selector = p.selector();
        assert_eq!(selector.metric, "followers");
        assert_eq!(selector.matchers.len(), 2);
        assert!(selector.matches("a") && !selector.matches("b1"));
        assert_eq!(
            plan("max_over(change(following, 1d), 1h)")
                .selector()
                .metric,
            "following"
        );
        assert_eq!(
            plan("summarize(drop(g, 10, 1h), 1d)").selector().metric,
            "g"
        );
        assert_eq!(plan("sum(latest(h))").selector().metric, "h");
    }

    #[test]
    fn per_series_nodes_and_aggregations() {
        let cases = [
            ("followers", Merge::Concatenate),
            ("latest(change(f, 1d))", Merge::Concatenate),
            ("drop(f, 5%, 1h)", Merge::Concatenate),
            ("recovered_within(drop(f, 5%, 1h), 1d)", Merge::Concatenate),
            (
                "not recovered_within(drop(f, 5%, 1h), 1d)",
                Merge::Concatenate,
            ),
            ("count(f)", Merge::Add),
            ("sum(drop(f, 5%, 1h))", Merge::Add),
            ("summarize(drop(f, 5%, 1h), 1h)", Merge::AddPerBucket),
            ("topk(3, drop(f, 5%, 1h))", Merge::TopK),
            ("count(topk(3, drop(f, 5%, 1h)))", Merge::Add),
        ];
        for (query, merge) in cases {
            let p = plan(query);
            assert_eq!(p.merge(), merge, "for {query}");
            assert_eq!(
                p.is_per_series(),
                merge == Merge::Concatenate,
                "for {query}"
            );
            assert_eq!(p.input().is_none(), p.is_per_series(), "for {query}");
        }
        let p = plan("summarize(drop(f, 5%, 1h))");
        assert_eq!(p.input(), Some(&plan("drop(f, 5%, 1h)")));
    }

    #[test]
    fn the_partial_step_is_the_lowest_aggregation() {
        for query in ["drop(f, 5%, 1h)", "count(f)", "topk(2, drop(f, 5%, 1h))"] {
            let p = plan(query);
            assert!(std::ptr::eq(p.partial(), &p), "for {query}");
        }
        // A count of the parts' top rows is not a partial count: the parts
        // run topk(), and count() runs once on the merged rows.
        let p = plan("count(topk(2, drop(f, 5%, 1h)))");
        assert_eq!(p.partial(), &plan("topk(2, drop(f, 5%, 1h))"));
        let p = plan("count(count(summarize(drop(f, 5%, 1h))))");
        assert_eq!(p.partial(), &plan("summarize(drop(f, 5%, 1h))"));
        let p = plan("topk(1, topk(5, recovered_within(drop(f, 5%, 1h), 1d)))");
        assert_eq!(
            p.partial(),
            &plan("topk(5, recovered_within(drop(f, 5%, 1h), 1d))")
        );
    }

    #[test]
    fn display_is_a_tree_with_the_merge_of_each_node() {
        let p = plan(
            r#"count(topk(10, not recovered_within(drop(resample(followers{account=~"a.*", account!="x\"y"}, 1h), 2.5%, 90m), 1d, 90%), lost_pct))"#,
        );
        assert_eq!(
            p.to_string(),
            "count  [final: once, on the combined rows]\n\
             \x20 topk k=10 by=lost_pct  [partial, then the final step keeps the k best of the parts' rows]\n\
             \x20   not recovered_within within=1d fraction=90%  [per series]\n\
             \x20     drop threshold=2.5% window=1h30m\n\
             \x20       resample step=1h\n\
             \x20         select followers{account=~\"a.*\", account!=\"x\\\"y\"}\n"
        );
        assert_eq!(
            plan("summarize(drop(latest(f), 1000, 1h), 1w)").to_string(),
            "summarize step=1w  [partial, then the final step adds the parts' rows per bucket]\n\
             \x20 drop threshold=1000 window=1h  [per series]\n\
             \x20   latest\n\
             \x20     select f\n"
        );
        assert_eq!(
            plan("min_over(f, 1d)").to_string(),
            "min_over window=1d  [per series]\n  select f\n"
        );
        // Only a plan built by hand holds a length that is not a whole
        // number of seconds.
        let hand_built = Plan::Series(SeriesExpr::Change(
            Box::new(SeriesExpr::Select(Selector {
                metric: "f".to_string(),
                matchers: Vec::new(),
            })),
            1500,
        ));
        assert_eq!(
            hand_built.to_string(),
            "change window=1500ms  [per series]\n  select f\n"
        );
    }

    /// Combines the tables of parts as `merge` says, for a plan of
    /// `columns` whose topk() keeps `k` rows ranked by `rank`.
    fn combine(merge: Merge, parts: &[Vec<Vec<Value>>], k: usize, rank: usize) -> Vec<Vec<Value>> {
        let mut rows: Vec<Vec<Value>> = parts.iter().flatten().cloned().collect();
        match merge {
            Merge::Concatenate => {
                // Rows start with account, metric, then time or start and
                // end: the order of every per-series result.
                rows.sort();
                rows
            }
            Merge::Add => {
                let total = rows
                    .iter()
                    .map(|row| row.first().and_then(Value::as_i64).unwrap())
                    .sum();
                vec![vec![Value::Int(total)]]
            }
            Merge::AddPerBucket => {
                // With buckets the first column is the bucket's time.
                let mut buckets: BTreeMap<Vec<Value>, Vec<i64>> = BTreeMap::new();
                for row in rows {
                    let split = row.len() - 3;
                    let sums = buckets.entry(row[..split].to_vec()).or_insert(vec![0; 3]);
                    for (sum, value) in sums.iter_mut().zip(&row[split..]) {
                        *sum += value.as_i64().unwrap();
                    }
                }
                buckets
                    .into_iter()
                    .map(|(mut key, sums)| {
                        key.extend(sums.into_iter().map(Value::Int));
                        key
                    })
                    .collect()
            }
            Merge::TopK => {
                rows.sort();
                rows.sort_by_key(|row| std::cmp::Reverse(row[rank].as_i64().unwrap()));
                rows.truncate(k);
                rows
            }
        }
    }

    /// What `merge` promises holds: the plan run on two halves of the
    /// accounts, merged as it says, gives the plan's answer over all of
    /// them. Falls are of equal size in several accounts of both halves, so
    /// that topk() has ties to keep in order.
    #[test]
    fn parts_merged_as_merge_says_give_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path().join("t.db")).unwrap();
        let mut writer = db.writer().unwrap();
        const HOUR: i64 = 3_600_000;
        for i in 0..16u64 {
            let account = format!("acct{i:02}");
            let base = 1000 + 100 * (i % 4);
            let fall_at = 3 + (i as i64 * 5) % 40;
            let back_at = if i % 3 == 0 {
                i64::MAX
            } else {
                fall_at + 6 * (i as i64 % 3)
            };
            for hour in 0..72 {
                let value = if (fall_at..back_at).contains(&hour) {
                    base * (94 - 2 * (i % 3)) / 100
                } else {
                    base
                };
                writer
                    .append(&account, "followers", hour * HOUR, value)
                    .unwrap();
            }
        }
        writer.commit().unwrap();
        let queries = [
            ("{s}", 0),
            ("change({s}, 3h)", 0),
            ("drop({s}, 5%, 2h)", 0),
            ("recovered_within(drop({s}, 5%, 2h), 10h)", 0),
            ("not recovered_within(drop({s}, 5%, 2h), 10h)", 0),
            ("count({s})", 0),
            ("count(drop({s}, 5%, 2h))", 0),
            ("sum({s})", 0),
            ("sum(drop({s}, 5%, 2h))", 0),
            ("summarize(drop({s}, 5%, 2h))", 0),
            ("summarize(recovered_within(drop({s}, 5%, 2h), 10h), 6h)", 0),
            ("topk(3, drop({s}, 5%, 2h))", 6),
            (
                "topk(5, recovered_within(drop({s}, 5%, 2h), 10h), lost_pct)",
                7,
            ),
        ];
        let halves = [
            r#"followers{account=~"acct0.*"}"#,
            r#"followers{account!~"acct0.*"}"#,
        ];
        for (template, rank) in queries {
            let whole_query = Query::parse(&template.replace("{s}", "followers")).unwrap();
            let whole = whole_query.run(&db).unwrap();
            let parts: Vec<Vec<Vec<Value>>> = halves
                .iter()
                .map(|half| {
                    let query = Query::parse(&template.replace("{s}", half)).unwrap();
                    query.run(&db).unwrap().rows().to_vec()
                })
                .collect();
            assert!(
                parts.iter().all(|rows| !rows.is_empty()),
                "{template}: a half has no rows, which tests nothing"
            );
            let plan = whole_query.plan();
            let k = match plan {
                Plan::TopK { k, .. } => *k as usize,
                _ => 0,
            };
            let merged = combine(plan.merge(), &parts, k, rank);
            assert_eq!(merged, whole.rows(), "for {template}");
        }
    }
}
