//! Batches of parsed rows, as the reader thread hands them to the resolving
//! thread.
//!
//! A batch keeps its rows in a few flat vectors instead of one allocation per
//! row, and is sent back to the reader once used, so that a steady import
//! allocates nothing per row.

use std::collections::HashMap;

use super::values::same_bytes;

/// How many rows a batch holds before it is sent. Large enough that the
/// channel hand-over costs nothing per row, small enough that both threads
/// start working almost at once.
const BATCH_ROWS: usize = 8192;

/// How many bytes of account names a batch holds before it is sent, so that
/// a file of very long names does not make huge batches.
const BATCH_ACCOUNT_BYTES: usize = 1 << 20;

/// The count of a cell that names a metric but captured nothing (a JSON
/// `null`). The metric name is still checked; no point is pushed. Real counts
/// are at most 2^63 - 1, so this value cannot collide with one.
pub(super) const NOT_CAPTURED: u64 = u64::MAX;

/// Marks a row that was parsed without problems.
const NO_REASON: u32 = u32::MAX;

/// One count of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cell {
    /// The metric, as a slot of [`MetricSlots`].
    pub slot: u32,
    /// The count, or [`NOT_CAPTURED`].
    pub value: u64,
}

#[derive(Debug, Clone, Copy)]
struct RowEntry {
    line: u64,
    time_ms: i64,
    /// End of this row's account in `account_bytes`; it starts where the
    /// previous row's ends.
    account_end: usize,
    /// End of this row's counts in `cells`, likewise.
    cells_end: usize,
    /// Index into `reasons` for a bad row, or [`NO_REASON`].
    reason: u32,
}

/// Rows parsed by the reader thread, waiting for ids.
#[derive(Debug, Default)]
pub(super) struct RowBatch {
    entries: Vec<RowEntry>,
    account_bytes: Vec<u8>,
    cells: Vec<Cell>,
    reasons: Vec<String>,
    /// Metric names first seen in this batch, as (slot, name), in slot order.
    pub new_metrics: Vec<(u32, String)>,
    /// Bytes read from all inputs so far, when the batch was sent.
    pub bytes_read: u64,
}

/// One row of a batch as the resolving thread sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowView<'a> {
    /// The line the row starts on.
    pub line: u64,
    /// The time of the row (meaningless for a bad row).
    pub time_ms: i64,
    /// The account name, as bytes not yet checked to be UTF-8.
    pub account: &'a [u8],
    /// The counts of the row.
    pub cells: &'a [Cell],
    /// Why the reader rejected the row, if it did.
    pub rejected: Option<&'a str>,
}

impl RowBatch {
    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.account_bytes.clear();
        self.cells.clear();
        self.reasons.clear();
        self.new_metrics.clear();
        self.bytes_read = 0;
    }

    /// True when the batch should be sent.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= BATCH_ROWS || self.account_bytes.len() >= BATCH_ACCOUNT_BYTES
    }

    /// True when the batch carries nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.new_metrics.is_empty()
    }

    /// Adds a count to the row being built. If the row turns out bad,
    /// [`RowBatch::reject`] takes the counts back.
    #[inline]
    pub fn push_cell(&mut self, slot: u32, value: u64) {
        self.cells.push(Cell { slot, value });
    }

    /// Ends the row being built as a good row.
    #[inline]
    pub fn accept(&mut self, line: u64, time_ms: i64, account: &[u8]) {
        self.account_bytes.extend_from_slice(account);
        self.entries.push(RowEntry {
            line,
            time_ms,
            account_end: self.account_bytes.len(),
            cells_end: self.cells.len(),
            reason: NO_REASON,
        });
    }

    /// Ends the row being built as a bad row, dropping the counts it had.
    #[cold]
    pub fn reject(&mut self, line: u64, reason: String) {
        let cells_start = self.entries.last().map_or(0, |e| e.cells_end);
        self.cells.truncate(cells_start);
        // A batch never holds anywhere near u32::MAX rows, so the index fits;
        // saturating keeps the marker distinct even if it did not.
        let index =
            u32::try_from(self.reasons.len()).map_or(NO_REASON - 1, |i| i.min(NO_REASON - 1));
        self.reasons.push(reason);
        self.entries.push(RowEntry {
            line,
            time_ms: 0,
            account_end: self.account_bytes.len(),
            cells_end: self.cells.len(),
            reason: index,
        });
    }

    /// The rows, in order.
    pub fn rows(&self) -> impl Iterator<Item = RowView<'_>> {
        let mut account_start = 0;
        let mut cells_start = 0;
        self.entries.iter().map(move |entry| {
            let account = self
                .account_bytes
                .get(account_start..entry.account_end)
                .unwrap_or_default();
            let cells = self
                .cells
                .get(cells_start..entry.cells_end)
                .unwrap_or_default();
            account_start = entry.account_end;
            cells_start = entry.cells_end;
            RowView {
                line: entry.line,
                time_ms: entry.time_ms,
                account,
                cells,
                rejected: if entry.reason == NO_REASON {
                    None
                } else {
                    Some(
                        self.reasons
                            .get(entry.reason as usize)
                            .map_or("the row was rejected", String::as_str),
                    )
                },
            }
        })
    }
}

/// The metric names met so far in an import, each given a dense slot. The
/// reader thread assigns slots; the resolving thread learns the names of new
/// slots from [`RowBatch::new_metrics`] and turns them into metric ids once.
#[derive(Debug, Default)]
pub(super) struct MetricSlots {
    /// Names by slot.
    names: Vec<String>,
    by_name: HashMap<String, u32>,
}

/// Up to this many metrics, a name is found by comparing it with each known
/// name, which beats hashing it; JSON lines name their metrics on every line.
const LINEAR_SLOTS: usize = 16;

impl MetricSlots {
    /// The slot of `name`, announcing it in `announce` if it is new.
    #[inline]
    pub fn slot(&mut self, name: &str, announce: &mut Vec<(u32, String)>) -> u32 {
        let found = if self.names.len() <= LINEAR_SLOTS {
            self.names
                .iter()
                .position(|known| same_bytes(known.as_bytes(), name.as_bytes()))
                .map(|slot| slot as u32)
        } else {
            self.by_name.get(name).copied()
        };
        match found {
            Some(slot) => slot,
            None => self.add(name, announce),
        }
    }

    #[cold]
    fn add(&mut self, name: &str, announce: &mut Vec<(u32, String)>) -> u32 {
        // There are never 2^32 distinct metric names in one import: each
        // needs a column or key, and the sink rejects names past the first
        // few hundred bytes. Saturating keeps this total anyway.
        let slot = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), slot);
        announce.push((slot, name.to_string()));
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_accounts_and_cells_and_rejects_drop_theirs() {
        let mut batch = RowBatch::default();
        batch.push_cell(0, 5);
        batch.accept(2, 1000, b"ann");
        batch.push_cell(0, 6);
        batch.push_cell(1, 7);
        batch.reject(3, "bad".to_string());
        batch.push_cell(1, 8);
        batch.accept(4, 2000, b"bob");
        let rows: Vec<_> = batch.rows().collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].line, rows[0].account, rows[0].cells),
            (2, &b"ann"[..], &[Cell { slot: 0, value: 5 }][..])
        );
        assert_eq!(rows[1].rejected, Some("bad"));
        assert!(rows[1].cells.is_empty() && rows[1].account.is_empty());
        assert_eq!(
            (rows[2].time_ms, rows[2].account, rows[2].cells),
            (2000, &b"bob"[..], &[Cell { slot: 1, value: 8 }][..])
        );
    }

    #[test]
    fn metric_slots_are_dense_and_announced_once() {
        let mut slots = MetricSlots::default();
        let mut announced = Vec::new();
        assert_eq!(slots.slot("followers", &mut announced), 0);
        assert_eq!(slots.slot("following", &mut announced), 1);
        assert_eq!(slots.slot("followers", &mut announced), 0);
        assert_eq!(
            announced,
            vec![(0, "followers".to_string()), (1, "following".to_string())]
        );
    }
}
