//! The writer's side of the dictionary: finds or adds names and series, and
//! collects the new entries for the commit's frame.
//!
//! It never builds a map of every name in the database. An account is
//! first looked for where the last one found was followed (snapshots list
//! accounts in the same order file after file), then in the dictionary
//! index by a binary search, then among the accounts parsed after the index
//! through a hash map of those alone. Series are found through the index's
//! series of each account, then through a map of the series defined after
//! the index. So the memory a writer needs grows with what was added since
//! the index was written, not with the database ([DX3] bounds that).

use std::collections::HashMap;

use bytes::BufMut;

use super::{
    Dictionary, KIND_ACCOUNT, KIND_METRIC, KIND_SERIES, SeriesKey, check_account_name,
    check_metric_name, series_slot,
};
use crate::storage::encoding::put_varint;
use crate::storage::name_hash::{NameHasher, PassThroughState};

/// The writer's side of the dictionary.
pub(crate) struct DictionaryBuilder {
    dict: Dictionary,
    /// The id to try first for the next account: the one after the account
    /// found last. Snapshots list accounts in the same order file after
    /// file, and ids were given in order of first appearance, so an hourly
    /// import mostly walks the names in id order, one comparison each.
    next_guess: u32,
    /// The series id to try first for the next series: the one after the
    /// series found last. Ids were given in the order a snapshot lists its
    /// series, so the next file asks for them in that order again, and one
    /// key read replaces a walk of the account's series.
    next_series_guess: u32,
    /// The accounts parsed or added after the index, by hash; built the
    /// first time a name is not where the guess looks.
    parsed_accounts: Option<NameIndex>,
    /// The series parsed or added after the index, by [`series_slot`] of
    /// their key: looked up once per row of an import, so not through
    /// SipHash.
    parsed_series: HashMap<u64, u32, PassThroughState>,
    pending: Vec<u8>,
}

/// How many ids from the guess on an account is looked for before the
/// index is asked.
const GUESS_AHEAD: u64 = 4;

/// Account ids of the parsed accounts by the hash of their name. The names
/// stay in the dictionary's arena, so building this makes no allocation per
/// name; a lookup compares the name it finds.
struct NameIndex {
    by_hash: HashMap<u64, u32, PassThroughState>,
    /// The rare accounts whose hash another account took first.
    collided: HashMap<Box<str>, u32>,
    hasher: NameHasher,
}

impl NameIndex {
    fn new(dict: &Dictionary) -> NameIndex {
        let hasher = NameHasher::new();
        let parsed = dict.parsed_accounts();
        let mut by_hash =
            HashMap::with_capacity_and_hasher(parsed.len(), PassThroughState::default());
        let mut collided = HashMap::new();
        for (i, name) in parsed.iter() {
            let id = i + dict.account_base;
            let hash = hasher.hash(name.as_bytes());
            if let Some(first) = by_hash.insert(hash, id) {
                // Keep the first owner of the hash; this one goes aside.
                by_hash.insert(hash, first);
                collided.insert(Box::from(name), id);
            }
        }
        NameIndex {
            by_hash,
            collided,
            hasher,
        }
    }
}

impl DictionaryBuilder {
    pub(crate) fn new(dict: Dictionary) -> DictionaryBuilder {
        let base = dict.parsed_series_base();
        let parsed_series = dict
            .parsed_series()
            .iter()
            .enumerate()
            .map(|(i, key)| (series_slot(*key), base + i as u32))
            .collect();
        DictionaryBuilder {
            dict,
            next_guess: 0,
            next_series_guess: 0,
            parsed_accounts: None,
            parsed_series,
            pending: Vec::new(),
        }
    }

    pub(crate) fn dictionary(&self) -> &Dictionary {
        &self.dict
    }

    pub(crate) fn metric_id(&mut self, name: &str) -> Result<u32, String> {
        if let Some(id) = self.dict.metric_id(name) {
            return Ok(id);
        }
        check_metric_name(name)?;
        if self.dict.metrics.len() >= u32::MAX as usize - 1 {
            return Err("the database has too many metrics".to_string());
        }
        self.pending.push(KIND_METRIC);
        put_varint(&mut self.pending, name.len() as u64);
        self.pending.put_slice(name.as_bytes());
        Ok(self.dict.push_metric(name))
    }

    pub(crate) fn account_id(&mut self, name: &str) -> Result<u32, String> {
        // The guess, and a few after it: an account missing from one
        // snapshot makes the next one sit an id or two further on.
        let count = self.dict.account_count() as u64;
        for ahead in 0..GUESS_AHEAD {
            let id = u64::from(self.next_guess) + ahead;
            if id >= count {
                break;
            }
            // id < count <= u32::MAX - 1.
            let id = id as u32;
            if self.dict.account_name(id) == name {
                self.next_guess = id + 1;
                return Ok(id);
            }
        }
        if let Some(id) = self.dict.index().and_then(|i| i.find_account(name)) {
            self.next_guess = id + 1;
            return Ok(id);
        }
        let dict = &self.dict;
        let index = self
            .parsed_accounts
            .get_or_insert_with(|| NameIndex::new(dict));
        let hash = index.hasher.hash(name.as_bytes());
        let owner = index.by_hash.get(&hash).copied();
        if let Some(id) = owner
            && dict.account_name(id) == name
        {
            self.next_guess = id + 1;
            return Ok(id);
        }
        if owner.is_some()
            && let Some(&id) = index.collided.get(name)
        {
            self.next_guess = id + 1;
            return Ok(id);
        }
        check_account_name(name)?;
        if self.dict.account_count() >= u32::MAX as usize - 1 {
            return Err("the database has too many accounts".to_string());
        }
        self.pending.push(KIND_ACCOUNT);
        put_varint(&mut self.pending, name.len() as u64);
        self.pending.put_slice(name.as_bytes());
        let id = self.dict.push_account(name);
        if let Some(index) = self.parsed_accounts.as_mut() {
            if owner.is_some() {
                index.collided.insert(Box::from(name), id);
            } else {
                index.by_hash.insert(hash, id);
            }
        }
        self.next_guess = id + 1;
        Ok(id)
    }

    /// The series of (account, metric), added if new. Both ids must come
    /// from this builder.
    pub(crate) fn series_id(&mut self, account: u32, metric: u32) -> Result<u32, String> {
        let key = SeriesKey { account, metric };
        let guess = self.next_series_guess;
        if self.dict.series_key(guess) == Some(key) {
            self.next_series_guess = guess.saturating_add(1);
            return Ok(guess);
        }
        let id = self.find_or_add_series(key)?;
        self.next_series_guess = id.saturating_add(1);
        Ok(id)
    }

    /// [`DictionaryBuilder::series_id`] when the guess missed.
    fn find_or_add_series(&mut self, key: SeriesKey) -> Result<u32, String> {
        let SeriesKey { account, metric } = key;
        if !self.parsed_series.is_empty()
            && let Some(&id) = self.parsed_series.get(&series_slot(key))
        {
            return Ok(id);
        }
        if account < self.dict.account_base
            && let Some(index) = self.dict.index()
            && let Some((id, _)) = index
                .series_of_account(account)
                .find(|(_, k)| k.metric == metric)
        {
            return Ok(id);
        }
        if account as usize >= self.dict.account_count()
            || metric as usize >= self.dict.metrics.len()
        {
            return Err(format!("no account {account} or metric {metric}"));
        }
        if self.dict.series_count() >= u32::MAX as usize - 1 {
            return Err("the database has too many series".to_string());
        }
        self.pending.push(KIND_SERIES);
        put_varint(&mut self.pending, u64::from(account));
        put_varint(&mut self.pending, u64::from(metric));
        let id = self.dict.push_series(key);
        self.parsed_series.insert(series_slot(key), id);
        Ok(id)
    }

    /// True when names or series were added since the last frame was taken.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next frame (length, checksum, payload) holding every entry added
    /// since the last call, or `None` when there is none.
    pub(crate) fn take_frame(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() {
            return None;
        }
        let mut frame = Vec::with_capacity(8 + self.pending.len());
        frame.put_u32_le(self.pending.len() as u32);
        frame.put_u32_le(crc32fast::hash(&self.pending));
        frame.extend_from_slice(&self.pending);
        self.pending.clear();
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_whose_hash_is_taken_gets_its_own_id() {
        // Two names with one 64-bit hash cannot be found on purpose, so the
        // map is made to say that "x"'s hash belongs to "y".
        let mut b = DictionaryBuilder::new(Dictionary::default());
        let y = b.account_id("y").unwrap();
        b.next_guess = 7; // past every id, so the map is asked
        let index = b
            .parsed_accounts
            .get_or_insert_with(|| NameIndex::new(&Dictionary::default()));
        let hash = index.hasher.hash(b"x");
        index.by_hash.insert(hash, y);
        let x = b.account_id("x").unwrap();
        assert_ne!(x, y);
        assert_eq!(b.account_id("x").unwrap(), x);
        assert_eq!(b.account_id("y").unwrap(), y);
        // A builder over the same names finds both.
        let mut again = DictionaryBuilder::new(b.dictionary().clone());
        assert_eq!(again.account_id("x").unwrap(), x);
        assert_eq!(again.account_id("y").unwrap(), y);
        assert!(!again.has_pending());
    }
}
