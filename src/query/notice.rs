//! Notices: what a query answers besides its rows when it names a metric or
//! an account the database does not hold (docs/query-language.md, rules
//! Q50–Q52). They are found after the query has run, from its plan and the
//! snapshot it ran on, and never change the rows.

use std::fmt;

use serde::Serialize;

use super::plan::{MatchOp, Plan};
use super::suggest::{closest, closest_with_distance};
use crate::db::snapshot::Snapshot;

/// At most this many metrics are listed when none is close to an unknown
/// one (rule Q51).
const LISTED_METRICS: usize = 10;

/// What a [`Notice`] is about; serialised as `unknown_metric` or
/// `unknown_account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoticeKind {
    /// A selector names a metric the database does not hold (rule Q51).
    UnknownMetric,
    /// An `account="NAME"` matcher names an account the database does not
    /// hold (rule Q52).
    UnknownAccount,
}

/// A sentence about a query and the database it ran on that does not
/// change the query's rows (docs/query-language.md, rule Q50), such as
/// "no metric `folowers`; did you mean `followers`?". It serialises (serde)
/// as `{"kind": "unknown_metric", "name": "folowers", "suggestion":
/// "followers", "message": "no metric …"}`.
///
/// ```
/// # fn main() -> tally::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = tally::Db::open(dir.path())?;
/// let mut w = db.writer()?;
/// w.append("adela_mae", "followers", 1_550_052_000_000, 10_234)?;
/// w.commit()?;
/// let table = db.query("drop(folowers, 5%, 1h)")?;
/// assert!(table.is_empty());
/// let notice = &table.notices()[0];
/// assert_eq!(notice.name(), "folowers");
/// assert_eq!(notice.suggestion(), Some("followers"));
/// assert_eq!(notice.to_string(), "no metric `folowers`; did you mean `followers`?");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Notice {
    kind: NoticeKind,
    name: String,
    suggestion: Option<String>,
    message: String,
}

impl Notice {
    /// What the notice is about.
    pub fn kind(&self) -> NoticeKind {
        self.kind
    }

    /// The name as the query wrote it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The closest name the database holds, when one is close.
    pub fn suggestion(&self) -> Option<&str> {
        self.suggestion.as_deref()
    }

    /// The whole sentence, with names quoted (control characters escaped).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `name` between backticks, with control characters written as escapes
/// so that a hostile name cannot drive a terminal (rule Q52).
fn quoted(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

/// The notices of `plan` run on `snapshot`; `selected` is how many series
/// its selector selected, so that accounts are looked up (a pass over every
/// name) only when it selected none.
pub(crate) fn find(snapshot: &Snapshot, plan: &Plan, selected: usize) -> Vec<Notice> {
    decide(plan, &facts(snapshot, plan, selected, Scope::Whole))
}

/// Whether the facts are of the whole database or of one part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One database: what is not needed for its own notices is not looked
    /// up.
    Whole,
    /// One shard of several: the metric names and the account proposals
    /// are needed whatever this shard holds, since the notices are of the
    /// union of the shards (docs/scale-out.md, [SO26]).
    Part,
}

/// What the notices of a query depend on, gathered from one database or
/// one shard; the facts of several shards combine ([`NoticeFacts::combine`])
/// into those of their union.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct NoticeFacts {
    /// True when the database holds the selector's metric.
    holds_metric: bool,
    /// Every metric name, sorted; empty for a whole database that holds the
    /// selector's metric, which needs no list.
    metrics: Vec<String>,
    /// How many series the selector selected.
    selected: u64,
    /// One fact per distinct `account="NAME"` matcher, looked up only when
    /// the selector selected nothing.
    accounts: Vec<AccountFact>,
}

/// Whether a database holds the account an `account="NAME"` matcher names,
/// and else its closest account as (distance, name).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct AccountFact {
    name: String,
    held: bool,
    closest: Option<(usize, String)>,
}

/// The facts the notices of `plan` run on `snapshot` depend on.
pub(crate) fn facts(
    snapshot: &Snapshot,
    plan: &Plan,
    selected: usize,
    scope: Scope,
) -> NoticeFacts {
    let selector = plan.selector();
    let dict = &snapshot.dict;
    let holds_metric = dict.metric_id(&selector.metric).is_some();
    let metrics = if holds_metric && scope == Scope::Whole {
        Vec::new()
    } else {
        let mut metrics: Vec<String> = dict.metrics.iter().map(|(_, m)| m.to_string()).collect();
        metrics.sort_unstable();
        metrics
    };
    let mut accounts: Vec<AccountFact> = Vec::new();
    let wanted = selected == 0 && (holds_metric || scope == Scope::Part);
    for matcher in selector.matchers.iter().filter(|_| wanted) {
        if matcher.op != MatchOp::Equal || accounts.iter().any(|a| a.name == matcher.value) {
            continue;
        }
        let name = matcher.value.as_str();
        let held = dict.account_id(name).is_some();
        let closest = if held {
            None
        } else {
            closest_with_distance(name, dict.accounts().map(|(_, a)| a))
                .map(|(distance, a)| (distance, a.to_string()))
        };
        accounts.push(AccountFact {
            name: name.to_string(),
            held,
            closest,
        });
    }
    NoticeFacts {
        holds_metric,
        metrics,
        selected: selected as u64,
        accounts,
    }
}

impl NoticeFacts {
    /// The facts of the union of disjoint parts (shards) from each part's
    /// facts: a metric is held when some part holds it, the metric names
    /// are the union, the selected series add up, an account is held when
    /// some part holds it, and its closest is the least (distance, name)
    /// any part proposes, which is the closest over the union with the
    /// same tie rule ([Q52]).
    pub(crate) fn combine(parts: impl IntoIterator<Item = NoticeFacts>) -> NoticeFacts {
        let mut whole = NoticeFacts::default();
        for part in parts {
            whole.holds_metric |= part.holds_metric;
            whole.metrics.extend(part.metrics);
            whole.selected = whole.selected.saturating_add(part.selected);
            for fact in part.accounts {
                match whole.accounts.iter_mut().find(|a| a.name == fact.name) {
                    Some(known) => {
                        known.held |= fact.held;
                        known.closest = match (known.closest.take(), fact.closest) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    None => whole.accounts.push(fact),
                }
            }
        }
        whole.metrics.sort_unstable();
        whole.metrics.dedup();
        whole
    }
}

/// The notices of `plan` given the facts of the database it ran on.
pub(crate) fn decide(plan: &Plan, facts: &NoticeFacts) -> Vec<Notice> {
    let selector = plan.selector();
    if !facts.holds_metric {
        return vec![unknown_metric(&facts.metrics, &selector.metric)];
    }
    if facts.selected > 0 {
        return Vec::new();
    }
    let mut notices = Vec::new();
    for matcher in &selector.matchers {
        if matcher.op != MatchOp::Equal || notices.iter().any(|n: &Notice| n.name == matcher.value)
        {
            continue;
        }
        let name = matcher.value.as_str();
        let fact = facts.accounts.iter().find(|a| a.name == name);
        if fact.is_some_and(|a| a.held) {
            continue;
        }
        let suggestion = fact
            .and_then(|a| a.closest.as_ref())
            .map(|(_, closest)| closest.clone());
        let message = match &suggestion {
            Some(s) => format!("no account {}; did you mean {}?", quoted(name), quoted(s)),
            None => format!("no account {}", quoted(name)),
        };
        notices.push(Notice {
            kind: NoticeKind::UnknownAccount,
            name: name.to_string(),
            suggestion,
            message,
        });
    }
    notices
}

/// The notice of a metric the database does not hold; `metrics` are the
/// names it holds, sorted.
fn unknown_metric(metrics: &[String], name: &str) -> Notice {
    let suggestion = closest(name, metrics.iter().map(String::as_str)).map(str::to_string);
    let message = match (&suggestion, metrics.len()) {
        (Some(s), _) => format!("no metric {}; did you mean {}?", quoted(name), quoted(s)),
        (None, 0) => format!("no metric {}; the database holds no data", quoted(name)),
        (None, n) => {
            let listed = metrics
                .iter()
                .take(LISTED_METRICS)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let more = if n > LISTED_METRICS {
                format!(" and {} more", n - LISTED_METRICS)
            } else {
                String::new()
            };
            let are = if n == 1 { "metric is" } else { "metrics are" };
            format!("no metric {}; the {are} {listed}{more}", quoted(name))
        }
    };
    Notice {
        kind: NoticeKind::UnknownMetric,
        name: name.to_string(),
        suggestion,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        // [Q52]
        assert_eq!(quoted("a\u{1b}[31mb"), "`a\\u{1b}[31mb`");
        assert_eq!(quoted("ünï"), "`ünï`");
    }

    #[test]
    fn serialises_for_the_server() {
        let notice = Notice {
            kind: NoticeKind::UnknownMetric,
            name: "folowers".to_string(),
            suggestion: Some("followers".to_string()),
            message: "no metric `folowers`; did you mean `followers`?".to_string(),
        };
        let json = serde_json::to_value(&notice).unwrap();
        assert_eq!(json["kind"], "unknown_metric");
        assert_eq!(json["suggestion"], "followers");
        assert_eq!(json["message"], notice.to_string());
    }
}
