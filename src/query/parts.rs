//! A query across shards: the shard part that every shard runs on its own
//! accounts, and the final step that combines the shards' parts into
//! exactly the table one database holding every account would give, rows,
//! order and notices (docs/scale-out.md, \[SO20\]–\[SO26\]).
//!
//! This module owns that cut and both sides of it, and nothing of how the
//! parts travel: [`ShardPart`] serialises with serde, and whatever carries
//! it (the `distributed` feature's plan nodes, a test calling both sides in
//! one process) hands the parts to [`Query::combine`].
//!
//! The cut is [`Plan::partial`]: the plan itself when it is per series,
//! else its lowest aggregation. Shards hold disjoint accounts, and a plan
//! reads one metric, so they hold disjoint series too, which is what
//! [`Plan::merge`] asks of the parts. The operators above the cut
//! (`count(topk(…))`) run once, here, on the combined rows.

use serde::{Deserialize, Serialize};

use super::Query;
use super::eval::{self, BucketSum};
use super::notice::{self, NoticeFacts, Scope};
use super::plan::{Merge, Plan, RankColumn};
use super::table::{Table, Value};
use crate::db::snapshot::Snapshot;
use crate::error::{Error, Result};

/// What one shard returns for a query ([`Query::run_shard_part`]): its rows
/// of the query's partial step, and what the query's notices depend on. It
/// serialises with serde, to travel from a shard to the process that
/// combines the parts ([`Query::combine`]); its form is not stable across
/// versions of tally, so both sides run the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPart {
    rows: PartialRows,
    facts: NoticeFacts,
}

/// A shard's result of the partial step, in the form the final step adds up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum PartialRows {
    /// Per-series rows, or a shard's own top k rows: rows of the partial
    /// step's columns, in its order.
    Rows(Vec<Vec<Value>>),
    /// A `count()` or `sum()`, not narrowed to 64 bits (\[SO22\], \[SO23\]).
    Total(i128),
    /// The buckets of a `summarize()`, losses not narrowed (\[SO24\]).
    Buckets(Vec<BucketSum>),
}

impl Query {
    /// Runs the shard part of the query on one shard of a cluster (a
    /// database holding only the accounts of that shard,
    /// docs/scale-out.md): for a per-series query its rows, for an
    /// aggregation the shard's partial result.
    ///
    /// ```
    /// # fn main() -> tally::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let query = tally::Query::parse("count(drop(followers, 5%, 1h))")?;
    /// let mut parts = Vec::new();
    /// for (shard, account) in [(0, "ann"), (1, "bob")] {
    ///     let db = tally::Db::open(dir.path().join(format!("shard-{shard}")))?;
    ///     let mut w = db.writer()?;
    ///     w.append(account, "followers", 0, 1000)?;
    ///     w.append(account, "followers", 3_600_000, 900)?;
    ///     w.commit()?;
    ///     parts.push(query.run_shard_part(&db)?);
    /// }
    /// let table = query.combine(parts)?;
    /// assert_eq!(table.rows(), [[tally::Value::Int(2)]]);
    /// # Ok(()) }
    /// ```
    pub fn run_shard_part(&self, db: &crate::Db) -> Result<ShardPart> {
        self.run_shard_part_on(&db.snapshot())
    }

    /// [`Query::run_shard_part`] on one committed state.
    pub(crate) fn run_shard_part_on(&self, snapshot: &Snapshot) -> Result<ShardPart> {
        let ctx = self.context(snapshot);
        let partial = self.plan.partial();
        let rows = match partial {
            Plan::Count(_) | Plan::Sum(_) => PartialRows::Total(eval::total(&ctx, partial)?),
            Plan::Summarize { input, step_ms } => {
                PartialRows::Buckets(eval::summarize_partial(&ctx, input, *step_ms)?)
            }
            Plan::Series(_)
            | Plan::Drops(_)
            | Plan::Recovered { .. }
            | Plan::NotRecovered { .. }
            | Plan::TopK { .. } => PartialRows::Rows(eval::evaluate(&ctx, partial)?.into_rows()),
        };
        eval::check_damage(snapshot)?;
        let selected = ctx.selected.load(std::sync::atomic::Ordering::Relaxed);
        let facts = notice::facts(snapshot, &self.plan, selected, Scope::Part);
        Ok(ShardPart { rows, facts })
    }

    /// Combines the parts of every shard of a cluster, each shard's once,
    /// into the table one database holding every account would give: the
    /// same rows in the same order, and the same notices
    /// (docs/scale-out.md, \[SO20\]–\[SO26\]). The shards must hold disjoint
    /// accounts, as the shard hash places them.
    pub fn combine(&self, parts: Vec<ShardPart>) -> Result<Table> {
        let partial = self.plan.partial();
        let mut facts = Vec::with_capacity(parts.len());
        let mut all_rows = Vec::with_capacity(parts.len());
        for part in parts {
            facts.push(part.facts);
            all_rows.push(part.rows);
        }
        let mut rows = final_step(partial, all_rows)?;
        // The nodes above the cut, from the one just above it up to the
        // top, each on the rows of the one below.
        for node in above(&self.plan, partial).into_iter().rev() {
            rows = run_on_rows(node, rows)?;
        }
        let notices = notice::decide(&self.plan, &NoticeFacts::combine(facts));
        Ok(Table::new(self.plan.columns(), rows).with_notices(notices))
    }
}

/// The nodes from the top of `plan` down to `partial`, without it.
fn above<'a>(plan: &'a Plan, partial: &Plan) -> Vec<&'a Plan> {
    let mut nodes = Vec::new();
    let mut node = plan;
    while !std::ptr::eq(node, partial) {
        nodes.push(node);
        match node.input() {
            Some(input) => node = input,
            // `partial` is a node of `plan`, so the walk reaches it first.
            None => break,
        }
    }
    nodes
}

/// The final step of the partial node: the parts' rows combined as
/// [`Plan::merge`] says.
fn final_step(partial: &Plan, parts: Vec<PartialRows>) -> Result<Vec<Vec<Value>>> {
    let mismatch = || {
        Error::Invalid(format!(
            "a shard answered the partial step of {} with rows of another kind",
            partial.columns().join(", ")
        ))
    };
    match partial.merge() {
        Merge::Concatenate | Merge::TopK => {
            let mut rows = Vec::new();
            for part in parts {
                let PartialRows::Rows(part_rows) = part else {
                    return Err(mismatch());
                };
                rows.extend(part_rows);
            }
            // Every per-series row starts with account, metric, then time
            // or start and end, which set it apart from every other row,
            // and names compare in byte order as the evaluator sorts them.
            // Each shard's rows are sorted already; the sort finds those
            // runs and merges them.
            rows.sort();
            match partial {
                Plan::TopK { .. } => run_on_rows(partial, rows),
                _ => Ok(rows),
            }
        }
        Merge::Add => {
            let mut total: i128 = 0;
            for part in parts {
                let PartialRows::Total(value) = part else {
                    return Err(mismatch());
                };
                total = total
                    .checked_add(value)
                    .ok_or_else(|| Error::Invalid("the sum does not fit in 64 bits".to_string()))?;
            }
            Ok(vec![vec![Value::Int(eval::to_i64(total)?)]])
        }
        Merge::AddPerBucket => {
            let Plan::Summarize { step_ms, .. } = partial else {
                return Err(mismatch());
            };
            let mut buckets: std::collections::BTreeMap<i64, BucketSum> = Default::default();
            for part in parts {
                let PartialRows::Buckets(sums) = part else {
                    return Err(mismatch());
                };
                for sum in sums {
                    let whole = buckets.entry(sum.bucket).or_insert(BucketSum {
                        bucket: sum.bucket,
                        episodes: 0,
                        accounts: 0,
                        lost: 0,
                    });
                    whole.episodes = whole.episodes.saturating_add(sum.episodes);
                    // No account is in two shards ([SO24]).
                    whole.accounts = whole.accounts.saturating_add(sum.accounts);
                    whole.lost = whole.lost.saturating_add(sum.lost);
                }
            }
            let mut sums: Vec<BucketSum> = buckets.into_values().collect();
            // One database gives one row of zeros without a step, even on
            // no episode; so do shards that sent nothing.
            if sums.is_empty() && step_ms.is_none() {
                sums = eval::bucket_sums(Vec::<(i64, u8, i64)>::new(), false);
            }
            eval::bucket_rows(sums, step_ms.is_some())
        }
    }
}

/// Runs an aggregation node on the rows of its input, as the evaluator runs
/// it on a database: what the coordinator does above the cut (\[SO21\]), and
/// for `topk()`, its final step.
fn run_on_rows(node: &Plan, rows: Vec<Vec<Value>>) -> Result<Vec<Vec<Value>>> {
    let Some(input) = node.input() else {
        return Ok(rows);
    };
    let columns = input.columns();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let number = |row: &[Value], at: Option<usize>| {
        at.and_then(|i| row.get(i))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    Ok(match node {
        Plan::Count(_) => vec![vec![Value::Int(eval::to_i64(rows.len() as i128)?)]],
        Plan::Sum(_) => {
            // The checker lets only tables with `lost` or `value` into sum().
            let at = column("lost").or_else(|| column("value"));
            let total: i128 = rows.iter().map(|row| i128::from(number(row, at))).sum();
            vec![vec![Value::Int(eval::to_i64(total)?)]]
        }
        Plan::Summarize { step_ms, .. } => {
            let (start, account, lost) = (column("start"), column("account"), column("lost"));
            let keyed: Vec<(i64, &str, i64)> = rows
                .iter()
                .map(|row| {
                    let name = account.and_then(|i| row.get(i)).and_then(Value::as_str);
                    (
                        eval::bucket_of(number(row, start), *step_ms),
                        name.unwrap_or(""),
                        number(row, lost),
                    )
                })
                .collect();
            eval::bucket_rows(
                eval::bucket_sums(keyed, step_ms.is_some()),
                step_ms.is_some(),
            )?
        }
        Plan::TopK { k, by, .. } => {
            let at = match by {
                RankColumn::Lost => column("lost"),
                RankColumn::LostPct => column("lost_pct"),
            };
            let mut rows = rows;
            // The rows are in the input's order; a stable sort on the rank
            // alone keeps that order for ties, as the evaluator does.
            rows.sort_by_key(|row| std::cmp::Reverse(number(row, at)));
            rows.truncate(usize::try_from(*k).unwrap_or(usize::MAX));
            rows
        }
        Plan::Series(_) | Plan::Drops(_) | Plan::Recovered { .. } | Plan::NotRecovered { .. } => {
            rows
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::part_of;
    use crate::{Db, TimeRange};
    use proptest::prelude::*;

    const HOUR: i64 = 3_600_000;

    /// The queries every split is checked on; `{s}` is the selector.
    const QUERIES: [&str; 24] = [
        "{s}",
        "change({s}, 2h)",
        "drop({s}, 5%, 1h)",
        "drop({s}, 150, 2h)",
        "recovered_within(drop({s}, 5%, 2h), 6h)",
        "not recovered_within(drop({s}, 5%, 2h), 6h)",
        "topk(3, drop({s}, 5%, 1h))",
        "topk(4, recovered_within(drop({s}, 5%, 2h), 6h), lost_pct)",
        "topk(2, not recovered_within(drop({s}, 5%, 2h), 6h), lost_pct)",
        "summarize(drop({s}, 5%, 1h))",
        "summarize(drop({s}, 5%, 1h), 6h)",
        "summarize(recovered_within(drop({s}, 5%, 2h), 6h), 1d)",
        "count({s})",
        "count(drop({s}, 5%, 1h))",
        "sum({s})",
        "sum(drop({s}, 5%, 1h))",
        "sum(change({s}, 1h))",
        "sum(change({s}, 3h))",
        "count(topk(2, drop({s}, 5%, 1h)))",
        "count(summarize(drop({s}, 5%, 1h), 1h))",
        "summarize(topk(4, drop({s}, 5%, 1h)), 3h)",
        "topk(1, topk(3, drop({s}, 5%, 1h)))",
        "sum(topk(3, drop({s}, 5%, 1h)))",
        "max_over({s}, 3h)",
    ];

    /// Selectors the queries are run with: every account, a regular
    /// expression, a named account that may or may not exist, and metrics
    /// that may not exist (the notices).
    const SELECTORS: [&str; 6] = [
        "followers",
        r#"followers{account=~"a.*"}"#,
        r#"followers{account="ab"}"#,
        r#"followers{account="abx"}"#,
        "folowers",
        "following",
    ];

    /// One account's points: (metric is `following`, hour, value).
    type Points = Vec<(bool, i64, i64)>;

    /// Writes `accounts` (name, points) into a new database under `dir`,
    /// keeping only those `keep` accepts.
    fn database(
        dir: &std::path::Path,
        accounts: &[(String, Points)],
        keep: impl Fn(&str) -> bool,
    ) -> Db {
        let db = Db::open(dir).unwrap();
        let mut writer = db.writer().unwrap();
        for (account, points) in accounts.iter().filter(|(a, _)| keep(a)) {
            for &(following, hour, value) in points {
                let metric = if following { "following" } else { "followers" };
                writer
                    .append(account, metric, hour * HOUR, value as u64)
                    .unwrap();
            }
        }
        writer.commit().unwrap();
        db
    }

    /// Runs `query` on the single database and on the shards, and checks
    /// that the shards' parts, combined, give the single database's table.
    fn check(query: &Query, whole: &Db, shards: &[Db]) -> std::result::Result<(), TestCaseError> {
        let expected = query.run(whole);
        let parts: Result<Vec<ShardPart>> = shards
            .iter()
            .map(|shard| query.run_shard_part(shard))
            .collect();
        let combined = parts.and_then(|parts| query.combine(parts));
        match (expected, combined) {
            (Ok(expected), Ok(combined)) => prop_assert_eq!(expected, combined, "for {}", query),
            (Err(expected), Err(combined)) => {
                prop_assert_eq!(expected.to_string(), combined.to_string(), "for {}", query)
            }
            (expected, combined) => {
                prop_assert!(
                    false,
                    "for {query}: one database gave {expected:?}, the shards {combined:?}"
                )
            }
        }
        Ok(())
    }

    /// An account name from a small alphabet, so that names are close to
    /// each other and to the selectors' `ab` and `abx`.
    fn account_name() -> impl Strategy<Value = String> {
        "[abc]{1,3}"
    }

    /// An account's points: hourly values in multiples of 100 (so that
    /// falls of equal size, ties for topk(), are common), with gaps, and
    /// a second metric now and then.
    fn account_points() -> impl Strategy<Value = Points> {
        (
            1i64..30,
            prop::collection::vec((any::<bool>(), -4i64..4, 0u8..8), 1..40),
        )
            .prop_map(|(base, steps)| {
                let mut value = base * 100;
                let mut hour = 0;
                let mut points = Vec::new();
                for (following, step, gap) in steps {
                    // A gap of more than one hour now and then.
                    hour += if gap == 0 { 3 } else { 1 };
                    value = (value + step * 100).max(0);
                    points.push((following && gap == 1, hour, value));
                }
                points
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// \[SO20\]–\[SO26\]: random small databases, split by the shard hash
        /// into 2, 3 or 4 databases: the shards' parts combined are the
        /// single database's answer, rows, order and notices, for every
        /// query shape, over all time and over a range.
        #[test]
        fn shards_combined_give_the_single_database_answer(
            accounts in prop::collection::btree_map(account_name(), account_points(), 1..10),
            shard_count in 2u32..=4,
            from_hour in 0i64..10,
        ) {
            let accounts: Vec<(String, Points)> = accounts.into_iter().collect();
            let dir = tempfile::tempdir().unwrap();
            let whole = database(&dir.path().join("whole"), &accounts, |_| true);
            let shards: Vec<Db> = (0..shard_count)
                .map(|s| {
                    database(&dir.path().join(format!("shard-{s}")), &accounts, |a| {
                        part_of(a.as_bytes(), shard_count) == s
                    })
                })
                .collect();
            let range = TimeRange { from: from_hour * HOUR, to: (from_hour + 20) * HOUR };
            for template in QUERIES {
                for selector in SELECTORS {
                    let text = template.replace("{s}", selector);
                    let query = Query::parse(&text).unwrap();
                    check(&query, &whole, &shards)?;
                    check(&query.range(range), &whole, &shards)?;
                }
            }
        }
    }

    /// Account names that land in shard `shard` of `count`.
    fn names_in_shard(prefix: &str, shard: u32, count: u32, how_many: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .filter(|a| part_of(a.as_bytes(), count) == shard)
            .take(how_many)
            .collect()
    }

    /// \[SO23\]: a shard's partial sum passes 2⁶³ while the total does not,
    /// so a partial narrowed to 64 bits would fail where one database
    /// answers; ties across shards in topk() go by account name (\[SO25\]).
    #[test]
    fn a_partial_sum_past_64_bits_and_topk_ties_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let big = 4_000_000_000_000_000_000i64;
        let mut accounts: Vec<(String, Points)> = Vec::new();
        for name in names_in_shard("acct", 0, 2, 3) {
            accounts.push((name, vec![(false, 0, 0), (false, 1, big)]));
        }
        for name in names_in_shard("acct", 1, 2, 2) {
            accounts.push((name, vec![(false, 0, big), (false, 1, 0)]));
        }
        // Equal falls in both shards, for topk().
        for name in names_in_shard("x", 0, 2, 2)
            .into_iter()
            .chain(names_in_shard("x", 1, 2, 2))
        {
            accounts.push((name, vec![(false, 0, 1000), (false, 1, 900)]));
        }
        let whole = database(&dir.path().join("whole"), &accounts, |_| true);
        let shards: Vec<Db> = (0..2)
            .map(|s| {
                database(&dir.path().join(format!("s{s}")), &accounts, |a| {
                    part_of(a.as_bytes(), 2) == s
                })
            })
            .collect();
        let sum = Query::parse("sum(change(followers, 1h))").unwrap();
        let shard_zero = sum.run_shard_part(&shards[0]).unwrap();
        assert!(
            matches!(shard_zero.rows, PartialRows::Total(t) if t > i128::from(i64::MAX)),
            "{shard_zero:?}"
        );
        assert_eq!(
            sum.run(&whole).unwrap().rows(),
            [[Value::Int(big - 400)]].as_slice(),
            "the falls of 100 are -400, the rises 3 big, the falls 2 big"
        );
        check(&sum, &whole, &shards).unwrap();
        let topk = Query::parse("topk(3, drop(followers{account=~\"x.*\"}, 5%, 1h))").unwrap();
        let table = topk.run(&whole).unwrap();
        assert_eq!(table.len(), 3);
        let names: Vec<&str> = table.rows().iter().filter_map(|r| r[0].as_str()).collect();
        let mut all: Vec<String> = names_in_shard("x", 0, 2, 2);
        all.extend(names_in_shard("x", 1, 2, 2));
        all.sort_unstable();
        assert_eq!(names, all[..3].to_vec(), "ties go by account name");
        let shards_of_top: std::collections::HashSet<u32> =
            names.iter().map(|n| part_of(n.as_bytes(), 2)).collect();
        assert_eq!(
            shards_of_top.len(),
            2,
            "the tied rows come from both shards"
        );
        check(&topk, &whole, &shards).unwrap();
    }
}
