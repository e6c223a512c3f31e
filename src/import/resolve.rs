//! The resolving side of an import: turns the names of parsed rows into ids
//! and pushes their points into the sink, in input order.
//!
//! Accounts are the hot part: a snapshot import sees every account once per
//! file, and files list them in much the same order. So each account is
//! first compared with the account that followed the previous one the last
//! time that one was seen (one `memcmp`, no hashing); only when that guess
//! fails does the name reach the sink, whose dictionary gives its id, and
//! the import's entry for the account (its series ids) is found by that id.
//! Series are looked up once per account and metric. The memory this takes
//! grows with the accounts, never with the rows.

use std::collections::HashMap;

use super::SnapshotSink;
use super::batch::{NOT_CAPTURED, RowView};
use super::values::same_bytes;
use crate::Error;

/// The longest account name, in bytes ([D1] of docs/format.md).
const MAX_ACCOUNT_BYTES: usize = 4096;

/// Series ids that fit in an account entry without another allocation;
/// snapshot files rarely have more metrics than this.
const INLINE_SERIES: usize = 4;

/// Marks a series not looked up yet.
const UNKNOWN: u32 = u32::MAX;

/// What became of one row.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RowOutcome {
    /// The row was imported with this many points.
    Imported { points: u64 },
    /// The row is bad, for this reason.
    Rejected(String),
    /// The row's account belongs to another shard than the one imported.
    OtherShard,
}

/// What is known of a metric slot.
#[derive(Debug, Clone)]
enum MetricState {
    /// Named but not yet given to the sink.
    Unresolved(String),
    /// The sink's id.
    Known(u32),
    /// The sink rejected the name, for this reason.
    Invalid(String),
}

/// An account seen in this import.
#[derive(Debug)]
struct AccountEntry {
    /// Where the name is in [`AccountCache::names`].
    name_start: usize,
    /// At most [`MAX_ACCOUNT_BYTES`]: names are checked before they are
    /// kept.
    name_len: u32,
    id: u32,
    /// Series ids by metric slot, [`UNKNOWN`] until looked up.
    series: [u32; INLINE_SERIES],
    /// The entry that came right after this one the last time this one was
    /// seen, or [`NO_ENTRY`]: snapshots list accounts in the same order
    /// every time, in one long file as much as across hourly files.
    successor: u32,
}

// What the comment on `more_series` promises.
const _: () = assert!(std::mem::size_of::<AccountEntry>() == 40);

/// Entry indexes by account id, in pages of [`ID_PAGE`] ids allocated as
/// ids are met: an import of a few accounts of a large database costs a
/// few pages, one of every account 4 bytes an account. (An import of one
/// shard meets ids all over the range, so it costs about that too.)
#[derive(Debug, Default)]
struct IdMap {
    pages: Vec<Option<Box<[u32; ID_PAGE]>>>,
}

/// Account ids per page of an [`IdMap`].
const ID_PAGE: usize = 4096;

impl IdMap {
    /// The entry of `id`, if one was inserted.
    fn get(&self, id: u32) -> Option<u32> {
        let (page, slot) = (id as usize / ID_PAGE, id as usize % ID_PAGE);
        let index = *self.pages.get(page)?.as_ref()?.get(slot)?;
        (index != NO_ENTRY).then_some(index)
    }

    /// Records the entry of `id`.
    fn insert(&mut self, id: u32, index: u32) {
        let (page, slot) = (id as usize / ID_PAGE, id as usize % ID_PAGE);
        if self.pages.len() <= page {
            self.pages.resize_with(page + 1, || None);
        }
        if let Some(entry) = self
            .pages
            .get_mut(page)
            .map(|p| p.get_or_insert_with(|| Box::new([NO_ENTRY; ID_PAGE])))
            .and_then(|p| p.get_mut(slot))
        {
            *entry = index;
        }
    }
}

/// Marks no entry: an account id not met yet, or no successor.
const NO_ENTRY: u32 = u32::MAX;

/// The accounts of an import, each linked to the one that followed it last
/// time, to guess the next account from.
///
/// Names are stored once, back to back in one buffer, in order of first
/// appearance, which is also the order the next file reads them in: the
/// guess walks memory forward. When the guess fails, the sink names the
/// account's id (it looks the name up in the dictionary, which it must do
/// for an account new to the import anyway), and the entry is found by id.
/// (The entries were once found by a hash map of their names: hashing every
/// name, and growing a map of a million, was a sixth of an hourly import's
/// time, for a lookup the dictionary makes again.)
#[derive(Debug)]
struct AccountCache {
    names: Vec<u8>,
    entries: Vec<AccountEntry>,
    /// The entry of each account id seen.
    by_id: IdMap,
    /// The entry seen last, or [`NO_ENTRY`].
    last: u32,
    /// Series ids of metric slots past [`INLINE_SERIES`], by entry and
    /// slot: files with that many metrics are rare, and keeping them out
    /// of the entries keeps an entry at 40 bytes (a snapshot of a million
    /// accounts makes a million entries).
    more_series: HashMap<(u32, u32), u32>,
}

impl AccountCache {
    fn new() -> AccountCache {
        AccountCache {
            names: Vec::new(),
            entries: Vec::new(),
            by_id: IdMap::default(),
            last: NO_ENTRY,
            more_series: HashMap::new(),
        }
    }

    /// The name of an entry.
    #[inline]
    fn name(&self, entry: &AccountEntry) -> &[u8] {
        self.names
            .get(entry.name_start..entry.name_start + entry.name_len as usize)
            .unwrap_or_default()
    }

    /// The entry of the account that followed the previous one last time,
    /// if `name` is that account's.
    #[inline]
    fn guess(&self, name: &[u8]) -> Option<u32> {
        let previous = self.entries.get(self.last as usize)?;
        let entry = self.entries.get(previous.successor as usize)?;
        same_bytes(self.name(entry), name).then_some(previous.successor)
    }

    /// The entry of account `id`, added with `name` if the import has not
    /// seen it yet.
    fn entry_of(&mut self, name: &[u8], id: u32) -> u32 {
        if let Some(index) = self.by_id.get(id) {
            return index;
        }
        let index = u32::try_from(self.entries.len()).unwrap_or(NO_ENTRY);
        self.by_id.insert(id, index);
        self.entries.push(AccountEntry {
            name_start: self.names.len(),
            name_len: name.len() as u32,
            id,
            series: [UNKNOWN; INLINE_SERIES],
            successor: NO_ENTRY,
        });
        self.names.extend_from_slice(name);
        index
    }

    /// Notes that `index` came next. Nothing here grows with the rows: a
    /// file of a billion rows costs no more memory than one of a thousand.
    #[inline]
    fn note_seen(&mut self, index: u32) {
        if let Some(previous) = self.entries.get_mut(self.last as usize) {
            previous.successor = index;
        }
        self.last = index;
    }
}

/// Turns rows into points in the sink.
pub(super) struct Resolver<'s, S: SnapshotSink> {
    sink: &'s mut S,
    metrics: Vec<MetricState>,
    /// The metric id of each slot once known, [`UNKNOWN`] before: what
    /// every row reads, kept apart from `metrics` so that reading it is one
    /// load.
    metric_ids: Vec<u32>,
    accounts: AccountCache,
    /// Only this shard's accounts are imported, when given.
    shard: Option<crate::Shard>,
}

impl<'s, S: SnapshotSink> Resolver<'s, S> {
    pub fn new(sink: &'s mut S, shard: Option<crate::Shard>) -> Self {
        Resolver {
            sink,
            metrics: Vec::new(),
            metric_ids: Vec::new(),
            accounts: AccountCache::new(),
            shard,
        }
    }

    /// Learns the names of new metric slots. Slots arrive in order.
    pub fn add_metrics(&mut self, new: &[(u32, String)]) {
        for (slot, name) in new {
            debug_assert_eq!(*slot as usize, self.metrics.len());
            self.metrics.push(MetricState::Unresolved(name.clone()));
            self.metric_ids.push(UNKNOWN);
        }
    }

    /// Begins a file: learns the metric names its header brings.
    pub fn start_file(&mut self, new_metrics: Vec<(u32, String)>) {
        self.add_metrics(&new_metrics);
    }

    /// Gives every metric of a CSV header to the sink. The inner error is the
    /// reason of the first name the sink rejects; the outer one any other
    /// failure of the sink.
    pub fn resolve_header(&mut self, slots: &[u32]) -> crate::Result<Result<(), String>> {
        for &slot in slots {
            if let Err(reason) = self.metric(slot)? {
                return Ok(Err(reason));
            }
        }
        Ok(Ok(()))
    }

    /// The metric id of a slot, asking the sink the first time.
    #[cold]
    fn metric(&mut self, slot: u32) -> crate::Result<Result<u32, String>> {
        let Some(state) = self.metrics.get_mut(slot as usize) else {
            return Ok(Err(format!("metric slot {slot} was never named")));
        };
        match state {
            MetricState::Known(id) => Ok(Ok(*id)),
            MetricState::Invalid(reason) => Ok(Err(reason.clone())),
            MetricState::Unresolved(name) => match self.sink.metric_id(name) {
                Ok(id) => {
                    *state = MetricState::Known(id);
                    if let Some(known) = self.metric_ids.get_mut(slot as usize) {
                        *known = id;
                    }
                    Ok(Ok(id))
                }
                Err(Error::Invalid(reason)) => {
                    *state = MetricState::Invalid(reason.clone());
                    Ok(Err(reason))
                }
                Err(other) => Err(other),
            },
        }
    }

    /// The account entry of a name, asking the sink for its id when the
    /// guess of the next account fails. The inner error is the reason the
    /// name is rejected.
    #[inline]
    fn account(&mut self, name: &[u8]) -> crate::Result<Result<u32, String>> {
        let index = match self.accounts.guess(name) {
            Some(index) => index,
            None => {
                let Ok(text) = std::str::from_utf8(name) else {
                    return Ok(Err("the account is not valid UTF-8".to_string()));
                };
                if name.len() > MAX_ACCOUNT_BYTES {
                    return Ok(Err(format!(
                        "the account is {} bytes long; the longest allowed is {MAX_ACCOUNT_BYTES}",
                        name.len()
                    )));
                }
                let id = match self.sink.account_id(text) {
                    Ok(id) => id,
                    Err(Error::Invalid(reason)) => return Ok(Err(reason)),
                    Err(other) => return Err(other),
                };
                self.accounts.entry_of(name, id)
            }
        };
        self.accounts.note_seen(index);
        Ok(Ok(index))
    }

    /// The series of an account entry and a metric slot.
    #[inline]
    fn series(&mut self, account: u32, slot: u32, metric: u32) -> crate::Result<u32> {
        // `account` comes from the cache, so the entry exists.
        let Some(entry) = self.accounts.entries.get_mut(account as usize) else {
            return Ok(UNKNOWN);
        };
        let cached = match entry.series.get_mut(slot as usize) {
            Some(cached) => cached,
            None => self
                .accounts
                .more_series
                .entry((account, slot))
                .or_insert(UNKNOWN),
        };
        if *cached == UNKNOWN {
            *cached = self.sink.series_id(entry.id, metric)?;
        }
        Ok(*cached)
    }

    /// Imports one row: checks its names, then pushes its points. A row is
    /// checked whole before anything is pushed, so a rejected row adds no
    /// point.
    pub fn import_row(&mut self, row: &RowView<'_>) -> crate::Result<RowOutcome> {
        if let Some(reason) = row.rejected {
            return Ok(RowOutcome::Rejected(reason.to_string()));
        }
        // Another shard's row is passed over before its names are looked
        // at: that shard's import checks them. The hash is of the bytes as
        // written, which are the account's UTF-8 bytes when it is valid.
        if let Some(shard) = self.shard
            && !shard.holds(row.account)
        {
            return Ok(RowOutcome::OtherShard);
        }
        // Metrics first: a bad metric name then defines no account.
        for cell in row.cells {
            let known =
                matches!(self.metric_ids.get(cell.slot as usize), Some(&id) if id != UNKNOWN);
            if !known && let Err(reason) = self.metric(cell.slot)? {
                return Ok(RowOutcome::Rejected(reason));
            }
        }
        let account = match self.account(row.account)? {
            Ok(account) => account,
            Err(reason) => return Ok(RowOutcome::Rejected(reason)),
        };
        let mut points = 0;
        for cell in row.cells {
            if cell.value == NOT_CAPTURED {
                continue;
            }
            let metric = match self.metric_ids.get(cell.slot as usize) {
                Some(&id) if id != UNKNOWN => id,
                // A sink may hand out u32::MAX as an id, which the fast
                // path takes for unknown; the slot was resolved above, so
                // this returns its id.
                _ => match self.metric(cell.slot)? {
                    Ok(id) => id,
                    Err(reason) => return Ok(RowOutcome::Rejected(reason)),
                },
            };
            let series = self.series(account, cell.slot, metric)?;
            self.sink.push(series, row.time_ms, cell.value)?;
            points += 1;
        }
        Ok(RowOutcome::Imported { points })
    }
}
