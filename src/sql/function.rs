//! The table function `tally('QUERY')`: runs a query of tally's own
//! language (docs/query-language.md) on the database and returns its table,
//! with the columns and types `tally query --format arrow` gives it
//! (`crate::output::arrow`), so that SQL can join, group and filter what
//! `drop()`, `recovered_within()`, `topk()` or `summarize()` found.
//!
//! The query runs when SQL is planned (DataFusion asks a table function
//! for its table then), on tally's own evaluator and its rayon pool; the
//! table is handed to DataFusion in memory.

use std::sync::{Arc, Mutex};

use datafusion::catalog::{MemTable, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, plan_err};
use datafusion::logical_expr::Expr;

use super::points::external;
use crate::Notice;
use crate::db::snapshot::{Snapshot, TimeRange};
use crate::output::arrow::{BATCH_ROWS, record_batch, schema};
use crate::query::Query;

/// `tally(…)`, over one committed state of a database.
#[derive(Debug)]
pub(crate) struct TallyFunction {
    snapshot: Arc<Snapshot>,
    /// `--from`/`--to`, applied to every query as `tally query` applies it.
    range: TimeRange,
    /// The notices of the queries run, for the caller to print after the
    /// result (as `tally query` prints its own).
    notices: Arc<Mutex<Vec<Notice>>>,
}

impl TallyFunction {
    pub(crate) fn new(
        snapshot: Arc<Snapshot>,
        range: TimeRange,
        notices: Arc<Mutex<Vec<Notice>>>,
    ) -> TallyFunction {
        TallyFunction {
            snapshot,
            range,
            notices,
        }
    }
}

impl TableFunctionImpl for TallyFunction {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::common::Result<Arc<dyn TableProvider>> {
        let text = match args.exprs() {
            [Expr::Literal(value, _)] => value.try_as_str().flatten(),
            _ => None,
        };
        let Some(text) = text else {
            return plan_err!(
                "tally() takes one argument, a query in tally's language as a string literal, \
                 e.g. tally('drop(followers, 5%, 1h)')"
            );
        };
        // A query that does not parse or check is tally's own error, with
        // its caret under the query's text.
        let query = Query::parse(text).map_err(external)?.range(self.range);
        let table = query.run_on(&self.snapshot).map_err(external)?;
        if let Ok(mut notices) = self.notices.lock() {
            notices.extend_from_slice(table.notices());
        }
        let schema = schema(table.columns());
        let batches = table
            .rows()
            .chunks(BATCH_ROWS)
            .map(|rows| record_batch(&schema, rows))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }
}
