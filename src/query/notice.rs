//! Notices: what a query answers besides its rows when it names a metric or
//! an account the database does not hold (docs/query-language.md, rules
//! Q50–Q52). They are found after the query has run, from its plan and the
//! snapshot it ran on, and never change the rows.

use std::fmt;

use serde::Serialize;

use super::plan::{MatchOp, Plan};
use super::suggest::closest;
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
    let selector = plan.selector();
    let dict = &snapshot.dict;
    if dict.metric_id(&selector.metric).is_none() {
        return vec![unknown_metric(snapshot, &selector.metric)];
    }
    if selected > 0 {
        return Vec::new();
    }
    let mut notices = Vec::new();
    for matcher in &selector.matchers {
        if matcher.op != MatchOp::Equal || notices.iter().any(|n: &Notice| n.name == matcher.value)
        {
            continue;
        }
        let name = matcher.value.as_str();
        if dict.account_id(name).is_some() {
            continue;
        }
        let suggestion = closest(name, dict.accounts().map(|(_, a)| a)).map(str::to_string);
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

fn unknown_metric(snapshot: &Snapshot, name: &str) -> Notice {
    let mut metrics: Vec<&str> = snapshot.dict.metrics.iter().map(|(_, m)| m).collect();
    metrics.sort_unstable();
    let suggestion = closest(name, metrics.iter().copied()).map(str::to_string);
    let message = match (&suggestion, metrics.len()) {
        (Some(s), _) => format!("no metric {}; did you mean {}?", quoted(name), quoted(s)),
        (None, 0) => format!("no metric {}; the database holds no data", quoted(name)),
        (None, n) => {
            let listed = metrics[..n.min(LISTED_METRICS)].join(", ");
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
