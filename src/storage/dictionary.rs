//! The series dictionary (docs/format.md, "series.dict"): metric names,
//! account names and the (account, metric) pairs that make series, each
//! with a dense id in order of first appearance.
//!
//! [`Dictionary`] is the in-memory form every reader holds. Names live in one
//! string arena per kind, so opening a database of a million accounts costs
//! a copy and a scan, not a million allocations. [`DictionaryBuilder`] is
//! the writer's side: it adds names and series and encodes them as the
//! entries of the next frame.

use std::collections::HashMap;

use bytes::BufMut;

use crate::storage::encoding::{get_varint, put_varint};
use crate::storage::format::{ByteReader, HEADER_LEN, MAGIC_DICTIONARY, check_header};
use crate::storage::name_hash::{NameHasher, PassThroughState};

/// Longest metric name, in bytes ([D1]).
pub(crate) const MAX_METRIC_LEN: usize = 255;
/// Longest account name, in bytes ([D1]).
pub(crate) const MAX_ACCOUNT_LEN: usize = 4096;

const KIND_METRIC: u8 = 1;
const KIND_ACCOUNT: u8 = 2;
const KIND_SERIES: u8 = 3;

/// A series as the dictionary knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SeriesKey {
    pub account: u32,
    pub metric: u32,
}

/// Names of one kind, stored end to end in one string.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameTable {
    text: String,
    /// `ends[i]` is where name i ends in `text`; it starts at `ends[i - 1]`.
    ends: Vec<usize>,
}

impl NameTable {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The name with this id, or "" for an id that does not exist (callers
    /// only pass ids they got from this dictionary).
    pub(crate) fn get(&self, id: u32) -> &str {
        let i = id as usize;
        let end = self.ends.get(i).copied().unwrap_or(0);
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(end)
        };
        self.text.get(start..end).unwrap_or("")
    }

    fn push(&mut self, name: &str) -> u32 {
        self.text.push_str(name);
        self.ends.push(self.text.len());
        // Ids are u32 by format; callers check the count before pushing.
        (self.ends.len() - 1) as u32
    }

    /// Ids and names, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        (0..self.ends.len() as u32).map(|i| (i, self.get(i)))
    }
}

/// Checks a metric name against [D1].
pub(crate) fn check_metric_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "metric name {name:?} must start with a letter or `_` and hold only letters, digits and `_`"
        ));
    }
    if name.len() > MAX_METRIC_LEN {
        return Err(format!(
            "metric name {name:?} is longer than {MAX_METRIC_LEN} bytes"
        ));
    }
    Ok(())
}

/// Checks an account name against [D1].
pub(crate) fn check_account_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the account name is empty".to_string());
    }
    if name.len() > MAX_ACCOUNT_LEN {
        return Err(format!(
            "account name is longer than {MAX_ACCOUNT_LEN} bytes"
        ));
    }
    Ok(())
}

/// The committed dictionary as a reader sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dictionary {
    pub metrics: NameTable,
    pub accounts: NameTable,
    series: Vec<SeriesKey>,
    /// Series ids of each metric, in id order; built as series are added.
    by_metric: Vec<Vec<u32>>,
}

impl Dictionary {
    /// Parses the committed prefix of series.dict (header included). `bytes`
    /// must be exactly the committed length ([DI2]).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Dictionary, String> {
        check_header(bytes, MAGIC_DICTIONARY)?;
        let mut dict = Dictionary::default();
        let mut rest = bytes.get(HEADER_LEN..).unwrap_or(&[]);
        let mut offset = HEADER_LEN;
        while !rest.is_empty() {
            let mut r = ByteReader::new(rest);
            let len = r
                .u32()
                .map_err(|_| format!("frame at byte {offset} is truncated"))?
                as usize;
            let crc = r
                .u32()
                .map_err(|_| format!("frame at byte {offset} is truncated"))?;
            let payload = r.bytes(len).map_err(|_| {
                format!("frame at byte {offset} claims {len} bytes, past the committed length")
            })?;
            if len == 0 {
                return Err(format!("frame at byte {offset} is empty"));
            }
            if crc32fast::hash(payload) != crc {
                return Err(format!("frame at byte {offset}: checksum mismatch"));
            }
            dict.apply_frame(payload)
                .map_err(|e| format!("frame at byte {offset}: {e}"))?;
            offset += 8 + len;
            rest = rest.get(8 + len..).unwrap_or(&[]);
        }
        Ok(dict)
    }

    /// Applies the entries of one frame's payload.
    fn apply_frame(&mut self, payload: &[u8]) -> Result<(), String> {
        let mut pos = 0;
        while pos < payload.len() {
            let kind = payload[pos]; // pos < len was checked by the loop.
            pos += 1;
            match kind {
                KIND_METRIC | KIND_ACCOUNT => {
                    let len = get_varint(payload, &mut pos).map_err(|e| e.0.to_string())?;
                    let end = usize::try_from(len)
                        .ok()
                        .and_then(|l| pos.checked_add(l))
                        .filter(|&e| e <= payload.len())
                        .ok_or("a name runs past the end of the frame")?;
                    let name = std::str::from_utf8(&payload[pos..end])
                        .map_err(|_| "a name is not valid UTF-8".to_string())?;
                    pos = end;
                    if kind == KIND_METRIC {
                        check_metric_name(name)?;
                        if self.metrics.len() >= u32::MAX as usize {
                            return Err("too many metrics".to_string());
                        }
                        self.metrics.push(name);
                        self.by_metric.push(Vec::new());
                    } else {
                        check_account_name(name)?;
                        if self.accounts.len() >= u32::MAX as usize {
                            return Err("too many accounts".to_string());
                        }
                        self.accounts.push(name);
                    }
                }
                KIND_SERIES => {
                    let account = get_varint(payload, &mut pos).map_err(|e| e.0.to_string())?;
                    let metric = get_varint(payload, &mut pos).map_err(|e| e.0.to_string())?;
                    if account >= self.accounts.len() as u64 || metric >= self.metrics.len() as u64
                    {
                        return Err(format!(
                            "series refers to account {account} or metric {metric}, not yet defined"
                        ));
                    }
                    if self.series.len() >= u32::MAX as usize {
                        return Err("too many series".to_string());
                    }
                    // Both fit in u32: they are below lengths that are.
                    self.push_series(SeriesKey {
                        account: account as u32,
                        metric: metric as u32,
                    });
                }
                other => return Err(format!("unknown entry kind {other}")),
            }
        }
        Ok(())
    }

    fn push_series(&mut self, key: SeriesKey) -> u32 {
        let id = self.series.len() as u32;
        self.series.push(key);
        if let Some(list) = self.by_metric.get_mut(key.metric as usize) {
            list.push(id);
        }
        id
    }

    pub(crate) fn series_count(&self) -> usize {
        self.series.len()
    }

    pub(crate) fn series_key(&self, id: u32) -> Option<SeriesKey> {
        self.series.get(id as usize).copied()
    }

    /// The id of a metric, by a linear search: databases have few metrics.
    pub(crate) fn metric_id(&self, name: &str) -> Option<u32> {
        self.metrics
            .iter()
            .find_map(|(id, n)| (n == name).then_some(id))
    }

    /// The series of a metric, in id order.
    pub(crate) fn series_of_metric(&self, metric: u32) -> &[u32] {
        self.by_metric
            .get(metric as usize)
            .map_or(&[], |v| v.as_slice())
    }

    /// Every series, in id order.
    pub(crate) fn series(&self) -> &[SeriesKey] {
        &self.series
    }
}

/// The writer's side of the dictionary: finds or adds names and series, and
/// collects the new entries for the commit's frame.
pub(crate) struct DictionaryBuilder {
    dict: Dictionary,
    /// The id to try first for the next account: the one after the account
    /// found last. Snapshots list accounts in the same order file after
    /// file, and ids were given in order of first appearance, so an hourly
    /// import mostly walks the names in id order, one comparison each,
    /// and never needs `index`.
    next_guess: u32,
    /// Built the first time a name is not where the guess looks.
    index: Option<NameIndex>,
    /// `series_ids[metric][account]` is the series id, or `u32::MAX`.
    series_ids: Vec<Vec<u32>>,
    pending: Vec<u8>,
}

const NO_SERIES: u32 = u32::MAX;

/// How many ids from the guess on an account is looked for before the
/// index is asked.
const GUESS_AHEAD: u64 = 4;

/// Account ids by the hash of their name. The names stay in the
/// dictionary's arena, so building this for a million accounts makes no
/// allocation per name; a lookup compares the name it finds.
struct NameIndex {
    by_hash: HashMap<u64, u32, PassThroughState>,
    /// The rare accounts whose hash another account took first.
    collided: HashMap<Box<str>, u32>,
    hasher: NameHasher,
}

impl NameIndex {
    fn new(dict: &Dictionary) -> NameIndex {
        let hasher = NameHasher::new();
        let mut by_hash =
            HashMap::with_capacity_and_hasher(dict.accounts.len(), PassThroughState::default());
        let mut collided = HashMap::new();
        for (id, name) in dict.accounts.iter() {
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
        let mut series_ids = vec![Vec::new(); dict.metrics.len()];
        for (id, key) in dict.series.iter().enumerate() {
            set_series(&mut series_ids, *key, id as u32);
        }
        DictionaryBuilder {
            dict,
            next_guess: 0,
            index: None,
            series_ids,
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
        let id = self.dict.metrics.push(name);
        self.dict.by_metric.push(Vec::new());
        self.series_ids.push(Vec::new());
        Ok(id)
    }

    pub(crate) fn account_id(&mut self, name: &str) -> Result<u32, String> {
        // The guess, and a few after it: an account missing from one
        // snapshot makes the next one sit an id or two further on.
        let count = self.dict.accounts.len() as u64;
        for ahead in 0..GUESS_AHEAD {
            let id = u64::from(self.next_guess) + ahead;
            if id >= count {
                break;
            }
            // id < count <= u32::MAX - 1.
            let id = id as u32;
            if self.dict.accounts.get(id) == name {
                self.next_guess = id + 1;
                return Ok(id);
            }
        }
        let dict = &self.dict;
        let index = self.index.get_or_insert_with(|| NameIndex::new(dict));
        let hash = index.hasher.hash(name.as_bytes());
        let owner = index.by_hash.get(&hash).copied();
        if let Some(id) = owner
            && dict.accounts.get(id) == name
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
        if self.dict.accounts.len() >= u32::MAX as usize - 1 {
            return Err("the database has too many accounts".to_string());
        }
        self.pending.push(KIND_ACCOUNT);
        put_varint(&mut self.pending, name.len() as u64);
        self.pending.put_slice(name.as_bytes());
        let id = self.dict.accounts.push(name);
        if let Some(index) = self.index.as_mut() {
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
        if let Some(&id) = self
            .series_ids
            .get(metric as usize)
            .and_then(|row| row.get(account as usize))
            && id != NO_SERIES
        {
            return Ok(id);
        }
        if account as usize >= self.dict.accounts.len()
            || metric as usize >= self.dict.metrics.len()
        {
            return Err(format!("no account {account} or metric {metric}"));
        }
        if self.dict.series.len() >= NO_SERIES as usize - 1 {
            return Err("the database has too many series".to_string());
        }
        self.pending.push(KIND_SERIES);
        put_varint(&mut self.pending, u64::from(account));
        put_varint(&mut self.pending, u64::from(metric));
        let id = self.dict.push_series(key);
        set_series(&mut self.series_ids, key, id);
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

fn set_series(series_ids: &mut [Vec<u32>], key: SeriesKey, id: u32) {
    if let Some(row) = series_ids.get_mut(key.metric as usize) {
        let a = key.account as usize;
        if row.len() <= a {
            row.resize(a + 1, NO_SERIES);
        }
        row[a] = id; // Just resized to hold index a.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::format::put_header;

    fn file_of(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = Vec::new();
        put_header(&mut bytes, MAGIC_DICTIONARY);
        for f in frames {
            bytes.extend_from_slice(f);
        }
        bytes
    }

    #[test]
    fn an_account_whose_hash_is_taken_gets_its_own_id() {
        // Two names with one 64-bit hash cannot be found on purpose, so the
        // map is made to say that "x"'s hash belongs to "y".
        let mut b = DictionaryBuilder::new(Dictionary::default());
        let y = b.account_id("y").unwrap();
        b.next_guess = 7; // past every id, so the index is asked
        let index = b
            .index
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

    #[test]
    fn builder_frames_parse_back_to_the_same_dictionary() {
        let mut b = DictionaryBuilder::new(Dictionary::default());
        let followers = b.metric_id("followers").unwrap();
        let ada = b.account_id("adela_mae").unwrap();
        let s0 = b.series_id(ada, followers).unwrap();
        let f1 = b.take_frame().unwrap();
        let following = b.metric_id("following").unwrap();
        let uni = b.account_id("ünï, \"quoted\"").unwrap();
        let s1 = b.series_id(uni, following).unwrap();
        let s2 = b.series_id(ada, following).unwrap();
        assert_eq!(b.series_id(ada, followers), Ok(s0));
        let f2 = b.take_frame().unwrap();
        assert!(b.take_frame().is_none());
        assert_eq!((s0, s1, s2), (0, 1, 2));

        let dict = Dictionary::parse(&file_of(&[f1, f2])).unwrap();
        assert_eq!(dict.metrics.get(following), "following");
        assert_eq!(dict.accounts.get(uni), "ünï, \"quoted\"");
        assert_eq!(dict.series_count(), 3);
        assert_eq!(dict.series_of_metric(following), &[1, 2]);
        assert_eq!(dict.metric_id("followers"), Some(0));
        assert_eq!(dict.metric_id("nope"), None);

        // A builder resumed from the parsed dictionary finds what exists.
        let mut b = DictionaryBuilder::new(dict);
        assert_eq!(b.account_id("adela_mae"), Ok(ada));
        assert_eq!(b.series_id(uni, following), Ok(s1));
        assert!(!b.has_pending());
    }

    #[test]
    fn names_are_checked() {
        // [D1]
        let mut b = DictionaryBuilder::new(Dictionary::default());
        assert!(b.metric_id("follower count").is_err());
        assert!(b.metric_id("9lives").is_err());
        assert!(b.metric_id("").is_err());
        assert!(b.metric_id(&"m".repeat(256)).is_err());
        assert!(b.account_id("").is_err());
        assert!(b.account_id(&"a".repeat(4097)).is_err());
        assert!(b.metric_id("_ok_9").is_ok());
    }

    #[test]
    fn damaged_frames_are_rejected() {
        // [I4] [DI1]
        let mut b = DictionaryBuilder::new(Dictionary::default());
        let m = b.metric_id("followers").unwrap();
        let a = b.account_id("x").unwrap();
        b.series_id(a, m).unwrap();
        let file = file_of(&[b.take_frame().unwrap()]);
        for i in HEADER_LEN..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            assert!(Dictionary::parse(&bad).is_err(), "flip at {i}");
        }
        for cut in HEADER_LEN + 1..file.len() {
            assert!(Dictionary::parse(&file[..cut]).is_err(), "cut at {cut}");
        }
    }
}
