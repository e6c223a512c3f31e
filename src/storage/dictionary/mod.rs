//! The series dictionary (docs/format.md, "series.dict"): metric names,
//! account names and the (account, metric) pairs that make series, each
//! with a dense id in order of first appearance.
//!
//! [`Dictionary`] is what every reader holds: the dictionary index the
//! manifest names, when there is one (`index`, docs/format.md "Dictionary
//! index"), and the frames after it parsed into memory. Parsed names live in
//! one string arena per kind, so parsing a million accounts costs a copy and
//! a scan, not a million allocations. [`DictionaryBuilder`] (in `builder`)
//! is the writer's side: it adds names and series and encodes them as the
//! entries of the next frame.

mod builder;
pub(crate) mod index;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub(crate) use builder::DictionaryBuilder;
use index::DictIndex;

use crate::error::Error;
use crate::storage::encoding::get_varint;
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

/// Where each account and each series entry starts in series.dict, in id
/// order: the offsets the dictionary index records ([DX1]).
#[derive(Debug, Default)]
pub(crate) struct EntryOffsets {
    pub accounts: Vec<usize>,
    pub series: Vec<usize>,
}

/// Checks a metric name against [D1].
pub(crate) fn check_metric_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "metric name {} must start with a letter or `_` and hold only letters, digits and `_`",
            quoted(name)
        ));
    }
    if name.len() > MAX_METRIC_LEN {
        return Err(format!(
            "metric name {} is longer than {MAX_METRIC_LEN} bytes",
            quoted(name)
        ));
    }
    Ok(())
}

/// Bytes of a name an error message quotes ([`quoted`]).
const QUOTED_BYTES: usize = 64;

/// A name as an error message shows it: quoted and escaped, and, past
/// [`QUOTED_BYTES`], cut at a character boundary and followed by its
/// length. A refused name can be megabytes long; quoting it whole made an
/// unreadable message, and escaping it cost more than the rest of the
/// append.
pub(crate) fn quoted(name: &str) -> String {
    if name.len() <= QUOTED_BYTES {
        return format!("{name:?}");
    }
    let mut end = QUOTED_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    // `end` is a char boundary at most `name.len()`: the slice is valid.
    let head = name.get(..end).unwrap_or_default();
    format!("{head:?}… ({} bytes)", name.len())
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

/// The committed dictionary as a reader sees it: the index's ids first, the
/// parsed frames' after them ([DX1]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Dictionary {
    /// The index the manifest names; it defines the accounts below
    /// `account_base` and the series below `series_base`.
    index: Option<Arc<DictIndex>>,
    /// Every metric, the index's included: there are few.
    pub metrics: NameTable,
    /// The accounts defined after the index, from id `account_base` on.
    accounts: NameTable,
    account_base: u32,
    /// The series defined after the index, from id `series_base` on.
    series: Vec<SeriesKey>,
    series_base: u32,
    /// The series of `series` by metric, in id order.
    by_metric: Vec<Vec<u32>>,
    /// Hash maps of the parsed accounts and series, built on the first
    /// lookup by name or key (a server answers thousands of one-account
    /// queries per snapshot) and dropped by every addition.
    parsed_lookup: OnceLock<Arc<ParsedLookup>>,
}

/// The parsed accounts by the hash of their name, and the parsed series
/// by [`series_slot`] of their key.
#[derive(Debug)]
struct ParsedLookup {
    hasher: NameHasher,
    accounts: HashMap<u64, u32, PassThroughState>,
    /// Accounts whose hash an earlier account took; checked one by one.
    collided: Vec<u32>,
    series: HashMap<u64, u32, PassThroughState>,
}

/// A series key as one well-mixed u64, for a map that hashes by identity:
/// the packed key times an odd constant, with the high half folded in. Both
/// steps are bijections, so distinct keys get distinct slots.
pub(crate) fn series_slot(key: SeriesKey) -> u64 {
    let packed = (u64::from(key.account) << 32) | u64::from(key.metric);
    let mixed = packed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed ^ (mixed >> 32)
}

impl Dictionary {
    /// Parses the committed prefix of series.dict (header included), whole.
    /// `bytes` must be exactly the committed length ([DI2]).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Dictionary, String> {
        check_header(bytes, MAGIC_DICTIONARY)?;
        let mut dict = Dictionary::default();
        dict.parse_frames(bytes, HEADER_LEN, None)?;
        Ok(dict)
    }

    /// [`Dictionary::parse`], noting where each account and series entry
    /// starts: what the dictionary index records ([DX1]), found in the
    /// same walk.
    pub(crate) fn parse_with_offsets(bytes: &[u8]) -> Result<(Dictionary, EntryOffsets), String> {
        check_header(bytes, MAGIC_DICTIONARY)?;
        let mut dict = Dictionary::default();
        let mut offsets = EntryOffsets::default();
        dict.parse_frames(bytes, HEADER_LEN, Some(&mut offsets))?;
        Ok((dict, offsets))
    }

    /// The dictionary of `index` and of the frames of the committed
    /// series.dict that follow what the index covers ([DX1]).
    pub(crate) fn with_index(index: Arc<DictIndex>) -> Result<Dictionary, String> {
        let bytes = index.committed_dictionary();
        check_header(bytes, MAGIC_DICTIONARY)?;
        // Opening the index checked that it covers at most what is committed.
        let covered = usize::try_from(index.covered()).unwrap_or(usize::MAX);
        let mut dict = Dictionary {
            account_base: index.account_count(),
            series_base: index.series_count(),
            ..Dictionary::default()
        };
        for name in index.metric_names() {
            dict.push_metric(name);
        }
        dict.parse_frames(bytes, covered, None)?;
        dict.index = Some(index);
        Ok(dict)
    }

    /// Parses the frames of `bytes` from `offset` to the end, noting where
    /// each account and series entry starts in `offsets` when given.
    fn parse_frames(
        &mut self,
        bytes: &[u8],
        mut offset: usize,
        mut offsets: Option<&mut EntryOffsets>,
    ) -> Result<(), String> {
        let mut rest = bytes.get(offset..).unwrap_or(&[]);
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
            self.apply_frame(payload, offset + 8, offsets.as_deref_mut())
                .map_err(|e| format!("frame at byte {offset}: {e}"))?;
            offset += 8 + len;
            rest = rest.get(8 + len..).unwrap_or(&[]);
        }
        Ok(())
    }

    /// Applies the entries of one frame's payload, which starts at byte
    /// `payload_at` of series.dict.
    fn apply_frame(
        &mut self,
        payload: &[u8],
        payload_at: usize,
        mut offsets: Option<&mut EntryOffsets>,
    ) -> Result<(), String> {
        let mut pos = 0;
        while let Some(&kind) = payload.get(pos) {
            let at = payload_at + pos;
            pos += 1;
            match kind {
                KIND_METRIC | KIND_ACCOUNT => {
                    let len = get_varint(payload, &mut pos).map_err(|e| e.0.to_string())?;
                    let end = usize::try_from(len)
                        .ok()
                        .and_then(|l| pos.checked_add(l))
                        .filter(|&e| e <= payload.len())
                        .ok_or("a name runs past the end of the frame")?;
                    let name = payload
                        .get(pos..end)
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .ok_or_else(|| "a name is not valid UTF-8".to_string())?;
                    pos = end;
                    if kind == KIND_METRIC {
                        check_metric_name(name)?;
                        if self.metrics.len() >= u32::MAX as usize {
                            return Err("too many metrics".to_string());
                        }
                        self.push_metric(name);
                    } else {
                        check_account_name(name)?;
                        if self.account_count() >= u32::MAX as usize {
                            return Err("too many accounts".to_string());
                        }
                        self.push_account(name);
                        if let Some(offsets) = offsets.as_deref_mut() {
                            offsets.accounts.push(at);
                        }
                    }
                }
                KIND_SERIES => {
                    let account = get_varint(payload, &mut pos).map_err(|e| e.0.to_string())?;
                    let metric = get_varint(payload, &mut pos).map_err(|e| e.0.to_string())?;
                    if account >= self.account_count() as u64 || metric >= self.metrics.len() as u64
                    {
                        return Err(format!(
                            "series refers to account {account} or metric {metric}, not yet defined"
                        ));
                    }
                    if self.series_count() >= u32::MAX as usize {
                        return Err("too many series".to_string());
                    }
                    // Both fit in u32: they are below counts that do.
                    self.push_series(SeriesKey {
                        account: account as u32,
                        metric: metric as u32,
                    });
                    if let Some(offsets) = offsets.as_deref_mut() {
                        offsets.series.push(at);
                    }
                }
                other => return Err(format!("unknown entry kind {other}")),
            }
        }
        Ok(())
    }

    /// The maps of the parsed accounts and series, built on first use.
    fn lookup(&self) -> &ParsedLookup {
        self.parsed_lookup.get_or_init(|| {
            let hasher = NameHasher::new();
            let mut accounts =
                HashMap::with_capacity_and_hasher(self.accounts.len(), PassThroughState::default());
            let mut collided = Vec::new();
            for (i, name) in self.accounts.iter() {
                let id = i + self.account_base;
                if let Some(first) = accounts.insert(hasher.hash(name.as_bytes()), id) {
                    accounts.insert(hasher.hash(name.as_bytes()), first);
                    collided.push(id);
                }
            }
            let mut series =
                HashMap::with_capacity_and_hasher(self.series.len(), PassThroughState::default());
            for (i, key) in self.series.iter().enumerate() {
                series.insert(series_slot(*key), self.series_base + i as u32);
            }
            Arc::new(ParsedLookup {
                hasher,
                accounts,
                collided,
                series,
            })
        })
    }

    fn push_metric(&mut self, name: &str) -> u32 {
        self.parsed_lookup = OnceLock::new();
        self.by_metric.push(Vec::new());
        self.metrics.push(name)
    }

    fn push_account(&mut self, name: &str) -> u32 {
        self.parsed_lookup = OnceLock::new();
        self.accounts.push(name) + self.account_base
    }

    fn push_series(&mut self, key: SeriesKey) -> u32 {
        self.parsed_lookup = OnceLock::new();
        // Callers check that the count stays below u32::MAX.
        let id = self.series_count() as u32;
        self.series.push(key);
        if let Some(list) = self.by_metric.get_mut(key.metric as usize) {
            list.push(id);
        }
        id
    }

    /// The index this dictionary reads through, if any.
    pub(crate) fn index(&self) -> Option<&Arc<DictIndex>> {
        self.index.as_ref()
    }

    /// The first damage met in the index ([DX2]): a caller about to hand
    /// out an answer, or to commit names it looked up, checks this first.
    pub(crate) fn damage(&self) -> Option<Error> {
        self.index.as_ref().and_then(|index| index.damage())
    }

    pub(crate) fn account_count(&self) -> usize {
        self.account_base as usize + self.accounts.len()
    }

    /// The name of account `id`, or "" for an id that does not exist or an
    /// index page that is damaged (recorded, see [`Dictionary::damage`]).
    pub(crate) fn account_name(&self, id: u32) -> &str {
        if id < self.account_base {
            return self
                .index
                .as_ref()
                .and_then(|index| index.account_name(id))
                .unwrap_or("");
        }
        self.accounts.get(id - self.account_base)
    }

    /// The id of the account called `name`: a binary search of the index,
    /// then the map of the accounts parsed after it.
    pub(crate) fn account_id(&self, name: &str) -> Option<u32> {
        if let Some(id) = self.index.as_ref().and_then(|i| i.find_account(name)) {
            return Some(id);
        }
        if self.accounts.len() == 0 {
            return None;
        }
        let lookup = self.lookup();
        let hash = lookup.hasher.hash(name.as_bytes());
        let owner = *lookup.accounts.get(&hash)?;
        if self.account_name(owner) == name {
            return Some(owner);
        }
        lookup
            .collided
            .iter()
            .copied()
            .find(|&id| self.account_name(id) == name)
    }

    /// Every account, in id order.
    pub(crate) fn accounts(&self) -> impl Iterator<Item = (u32, &str)> {
        (0..self.account_count() as u32).map(|id| (id, self.account_name(id)))
    }

    /// The accounts parsed from frames (all of them when there is no index).
    pub(crate) fn parsed_accounts(&self) -> &NameTable {
        &self.accounts
    }

    pub(crate) fn series_count(&self) -> usize {
        self.series_base as usize + self.series.len()
    }

    pub(crate) fn series_key(&self, id: u32) -> Option<SeriesKey> {
        if id < self.series_base {
            return self.index.as_ref().and_then(|index| index.series_key(id));
        }
        self.series.get((id - self.series_base) as usize).copied()
    }

    /// The id of a metric, by a linear search: databases have few metrics.
    pub(crate) fn metric_id(&self, name: &str) -> Option<u32> {
        self.metrics
            .iter()
            .find_map(|(id, n)| (n == name).then_some(id))
    }

    /// The series of a metric, in id order.
    pub(crate) fn series_of_metric(&self, metric: u32) -> impl Iterator<Item = u32> + '_ {
        let indexed = self
            .index
            .as_ref()
            .map(|index| index.series_of_metric(metric));
        let parsed = self
            .by_metric
            .get(metric as usize)
            .map_or(&[][..], |v| v.as_slice());
        indexed.into_iter().flatten().chain(parsed.iter().copied())
    }

    #[cfg(test)]
    /// The series of an account, with their keys: from the index, then from
    /// the series parsed after it.
    pub(crate) fn series_of_account(
        &self,
        account: u32,
    ) -> impl Iterator<Item = (u32, SeriesKey)> + '_ {
        let indexed = self
            .index
            .as_ref()
            .filter(|_| account < self.account_base)
            .map(|index| index.series_of_account(account));
        let base = self.series_base;
        let parsed = self
            .series
            .iter()
            .enumerate()
            .filter(move |(_, k)| k.account == account)
            .map(move |(i, k)| (base + i as u32, *k));
        indexed.into_iter().flatten().chain(parsed)
    }

    /// The series of (account, metric), if it exists: through the index,
    /// then the map of the series parsed after it.
    pub(crate) fn series_id(&self, account: u32, metric: u32) -> Option<u32> {
        if account < self.account_base
            && let Some(index) = self.index.as_ref()
            && let Some((id, _)) = index
                .series_of_account(account)
                .find(|(_, k)| k.metric == metric)
        {
            return Some(id);
        }
        if self.series.is_empty() {
            return None;
        }
        self.lookup()
            .series
            .get(&series_slot(SeriesKey { account, metric }))
            .copied()
    }

    /// The series parsed from frames (all of them when there is no index),
    /// from id [`Dictionary::parsed_series_base`] on.
    pub(crate) fn parsed_series(&self) -> &[SeriesKey] {
        &self.series
    }

    pub(crate) fn parsed_series_base(&self) -> u32 {
        self.series_base
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
    fn a_refused_name_is_quoted_short() {
        assert_eq!(quoted("fo llowers"), "\"fo llowers\"");
        // A megabyte name is cut at 64 bytes, and its length given.
        let long = "é".repeat(1 << 19);
        let message = check_metric_name(&long).unwrap_err();
        assert!(message.len() < 200, "{message}");
        assert!(
            message.contains(&format!("\"{}\"… (1048576 bytes)", "é".repeat(32))),
            "{message}"
        );
        // Cut at a character boundary: 63 bytes of 'a' then a 2-byte
        // character that straddles byte 64.
        let straddling = format!("{}é{}", "a".repeat(63), "b".repeat(300));
        assert_eq!(
            quoted(&straddling),
            format!("\"{}\"… (365 bytes)", "a".repeat(63))
        );
        // 64 bytes are quoted whole; 65 are cut.
        let a64 = "a".repeat(64);
        assert_eq!(quoted(&a64), format!("{a64:?}"));
        assert_eq!(quoted(&format!("{a64}b")), format!("{a64:?}… (65 bytes)"));
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
        assert_eq!(dict.account_name(uni), "ünï, \"quoted\"");
        assert_eq!(dict.series_count(), 3);
        assert_eq!(dict.series_of_metric(following).collect::<Vec<_>>(), [1, 2]);
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
