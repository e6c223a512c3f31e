//! The query language, one module per stage:
//!
//! ```text
//! text ──parse──▶ syntax tree (ast) ──check──▶ plan ──eval──▶ rows (table)
//! ```
//!
//! - `parse`: text → syntax tree; knows the shape of the text only.
//! - `ast`: the untyped syntax tree, with byte spans; `print` writes it back
//!   as canonical text.
//! - `check`: syntax tree → plan; the only place types are decided.
//! - `plan`: the typed plan, which any engine can run: tally's evaluator, or
//!   one that scans the plan's selector itself and merges parts by
//!   [`plan::Merge`].
//! - `eval`: plan → rows, over one committed state.
//!
//! Each stage reads only the stages before it: `parse` → `ast`; `check` →
//! `ast`, `registry`, `plan`; `eval` → `plan`. Vocabulary that several
//! stages share lives in the lowest module that needs it: the duration
//! units and matcher operators in `ast`, the table of function names in
//! `registry` (which the parser asks for a hint, the checker for
//! signatures, the REPL and the server for help). Besides the stages,
//! `functions` holds the per-series algorithms the evaluator runs,
//! `table` the result type, `notice` what a result says besides its rows,
//! and `suggest` the closest names for hints.
//! The language is specified in docs/query-language.md.

mod ast;
mod check;
pub(crate) mod eval;
pub(crate) mod functions;
mod notice;
mod parse;
mod parts;
pub(crate) mod plan;
mod print;
mod registry;
mod suggest;
mod table;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use notice::{Notice, NoticeKind};
pub use parts::ShardPart;
pub use registry::{Function, Param};
#[cfg(any(feature = "server", feature = "arrow"))]
pub(crate) use table::ColumnType;
pub use table::{Table, Value};

use crate::db::snapshot::Snapshot;
use crate::db::{Db, TimeRange};
use crate::error::Result;

/// A parsed and checked query, ready to run against any database.
///
/// ```
/// # fn main() -> tally::Result<()> {
/// let query = tally::Query::parse("recovered_within(drop(followers, 5%, 1h), 1d)")?;
/// assert_eq!(query.columns().last(), Some(&"recovery_s"));
///
/// let err = tally::Query::parse("recovered_within(followers, 1h)").unwrap_err();
/// assert!(err.to_string().contains("expects a drop table"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Query {
    expr: ast::Expr,
    plan: plan::Plan,
    range: TimeRange,
    cancel: Option<Arc<AtomicBool>>,
}

impl Query {
    /// Parses and type-checks `text`. Errors are [`crate::Error::Query`],
    /// with the position of the problem.
    pub fn parse(text: &str) -> Result<Query> {
        let expr = parse::parse(text)?;
        let plan = check::check(text, &expr)?;
        Ok(Query {
            expr,
            plan,
            range: TimeRange::ALL,
            cancel: None,
        })
    }

    /// Restricts every point the query sees — including the points searched
    /// for a recovery — to `range` (`from` inclusive, `to` exclusive). A
    /// range with `from >= to` selects no points (docs/query-language.md, rule Q19a).
    pub fn range(mut self, range: TimeRange) -> Query {
        self.range = range;
        self
    }

    /// Makes the query stop with [`crate::Error::Cancelled`] soon after
    /// `flag` becomes true (it is checked between series).
    pub fn cancel_on(mut self, flag: Arc<AtomicBool>) -> Query {
        self.cancel = Some(flag);
        self
    }

    /// The time range the query sees ([`Query::range`]).
    #[cfg(feature = "distributed")]
    pub(crate) fn time_range(&self) -> TimeRange {
        self.range
    }

    /// The names of the columns the query returns.
    pub fn columns(&self) -> Vec<&'static str> {
        self.plan.columns()
    }

    /// Runs the query on the committed state `db` holds. The table carries
    /// the query's notices ([`Table::notices`]).
    pub fn run(&self, db: &Db) -> Result<Table> {
        self.run_on(&db.snapshot())
    }

    /// Runs the query on one committed state, notices included.
    pub(crate) fn run_on(&self, snapshot: &Snapshot) -> Result<Table> {
        let ctx = self.context(snapshot);
        let table = eval::evaluate(&ctx, &self.plan)?;
        let selected = ctx.selected.load(std::sync::atomic::Ordering::Relaxed);
        Ok(table.with_notices(notice::find(snapshot, &self.plan, selected)))
    }

    /// What the evaluator needs besides the plan, to run on `snapshot`.
    pub(crate) fn context<'a>(&'a self, snapshot: &'a Snapshot) -> eval::Context<'a> {
        eval::Context {
            snapshot,
            range: self.range,
            cancel: self.cancel.as_deref(),
            selected: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The checked plan.
    pub(crate) fn plan(&self) -> &plan::Plan {
        &self.plan
    }
}

/// Every function of the query language, with its parameters, result type,
/// a line of help and an example, in the order of docs/query-language.md,
/// section 4; the entry named `not` (`prefix` is true) is the
/// `not recovered_within(…)` form. This is the one table the checker, the REPL's help
/// and completion, and the HTTP server's completion read. It serialises
/// with serde.
///
/// ```
/// let drop = tally::functions().iter().find(|f| f.name == "drop").unwrap();
/// assert_eq!(drop.usage, "drop(SERIES, THRESHOLD, WINDOW)");
/// assert_eq!(drop.params.len(), 3);
/// assert_eq!(drop.result, "drops");
/// ```
pub fn functions() -> &'static [Function] {
    registry::FUNCTIONS
}

/// What the HTTP server's Prometheus-compatible API needs to know of a
/// query (docs/http-api.md): whether it gives series at all, and, for a bare
/// selector, which series it names.
#[cfg(feature = "server")]
impl Query {
    /// True when the query's rows are points (`account, metric, time,
    /// value`): a selector or a function of series ([Q31]).
    pub(crate) fn gives_series(&self) -> bool {
        matches!(self.plan, plan::Plan::Series(_))
    }

    /// True for a bare selector, whose rows at a time depend only on the
    /// points at that time.
    pub(crate) fn is_selector(&self) -> bool {
        matches!(self.plan, plan::Plan::Series(plan::SeriesExpr::Select(_)))
    }

    /// For a bare selector (`followers{account=~"a.*"}`), the series it
    /// selects in `db`'s current snapshot, sorted by account; `None` for
    /// any other query.
    pub(crate) fn selected_series(&self, db: &Db) -> Result<Option<Vec<crate::Series>>> {
        let plan::Plan::Series(plan::SeriesExpr::Select(selector)) = &self.plan else {
            return Ok(None);
        };
        db.series(&selector.metric, |account| selector.matches(account))
            .map(Some)
    }
}

/// The canonical text of the query (docs/query-language.md, rule Q17).
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.expr, f)
    }
}

impl Db {
    /// Parses, checks and runs `text` over all time. See [`Query`] for a
    /// time range and cancellation.
    pub fn query(&self, text: &str) -> Result<Table> {
        Query::parse(text)?.run(self)
    }
}
