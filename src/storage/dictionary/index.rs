//! The dictionary index (docs/format.md, "Dictionary index"): lookups into
//! the committed prefix of series.dict without parsing it.
//!
//! The index does not copy names. It holds, for each account and each
//! series, the offset of its entry in series.dict, the accounts in name
//! order, the series of each account, and a checksum of every 4096-byte
//! page of series.dict it covers. [`DictIndex`] maps both files and reads
//! them a page at a time: opening it checks only the index's header,
//! footer, page table and metric names ([DX2]), so that opening a database
//! of a million accounts to read one costs a few pages, not a parse of
//! every name. Every other page, of either file, is hashed and compared
//! with its checksum the first time it is read.
//!
//! The lookups return plain values rather than `Result`s, because they sit
//! in the inner loops of the evaluator and the writer. A damaged page or a
//! value out of bounds is recorded as the index's *damage* (the first one
//! met) and the lookup answers as if the entry were absent; every caller
//! that hands out an answer checks [`DictIndex::damage`] first (through
//! `Dictionary::damage`), so damage fails the query or the commit instead
//! of leaving a silently shorter answer.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BufMut;
use memmap2::Mmap;

use super::{
    Dictionary, KIND_ACCOUNT, KIND_SERIES, SeriesKey, check_account_name, check_metric_name,
};
use crate::error::{Error, Result};
use crate::storage::encoding::{get_varint, put_varint};
use crate::storage::format::{
    ByteReader, HEADER_LEN, MAGIC_INDEX, MAGIC_INDEX_END, check_header, put_header,
};

/// Bytes per checksummed page, of the index and of series.dict ([DX2]).
const PAGE: usize = 4096;
/// Length of the footer.
const FOOTER_LEN: usize = 64;
/// The most bytes an entry's head takes: a kind byte and two varints of
/// at most 32 bits (five bytes each).
const ENTRY_HEAD_MAX: usize = 11;

/// The file name of the dictionary index with this number.
pub(crate) fn index_file_name(number: u64) -> String {
    crate::storage::files::NumberedFile::INDEX.name(number)
}

/// The number of an index file's name, if `name` is one.
pub(crate) fn parse_index_file_name(name: &str) -> Option<u64> {
    crate::storage::files::NumberedFile::INDEX.parse(name)
}

/// Where each section lies, in bytes from the start of the file.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Bytes per entry offset: 4 when series.dict's covered length fits in
    /// 32 bits, else 8.
    width: usize,
    metric_names: usize,
    dict_pages: usize,
    accounts: usize,
    sorted: usize,
    series: usize,
    account_starts: usize,
    by_account: usize,
    page_table: usize,
}

impl Layout {
    /// The sections' offsets, or `None` when they do not fit in memory.
    fn new(
        covered: u64,
        accounts: usize,
        series: usize,
        metric_names_len: usize,
    ) -> Option<Layout> {
        let width = if covered <= u64::from(u32::MAX) { 4 } else { 8 };
        let dict_page_count = usize::try_from(covered).ok()?.div_ceil(PAGE);
        let metric_names = HEADER_LEN;
        let dict_pages = metric_names.checked_add(metric_names_len)?;
        let accounts_at = dict_pages.checked_add(dict_page_count.checked_mul(4)?)?;
        let sorted = accounts_at.checked_add(accounts.checked_mul(width)?)?;
        let series_at = sorted.checked_add(accounts.checked_mul(4)?)?;
        let account_starts = series_at.checked_add(series.checked_mul(width)?)?;
        let by_account = account_starts.checked_add(accounts.checked_add(1)?.checked_mul(4)?)?;
        let page_table = by_account.checked_add(series.checked_mul(4)?)?;
        Some(Layout {
            width,
            metric_names,
            dict_pages,
            accounts: accounts_at,
            sorted,
            series: series_at,
            account_starts,
            by_account,
            page_table,
        })
    }

    fn pages(&self) -> usize {
        (self.page_table - HEADER_LEN).div_ceil(PAGE)
    }

    fn file_len(&self) -> Option<usize> {
        self.page_table
            .checked_add(self.pages().checked_mul(4)?)?
            .checked_add(FOOTER_LEN)
    }
}

/// Pages checked so far, one bit each.
struct PageBits(Vec<AtomicU64>);

impl PageBits {
    fn new(pages: usize) -> PageBits {
        PageBits((0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    fn is_set(&self, page: usize) -> bool {
        self.0
            .get(page / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (page % 64)) != 0)
    }

    fn set(&self, page: usize) {
        if let Some(word) = self.0.get(page / 64) {
            word.fetch_or(1 << (page % 64), Ordering::Relaxed);
        }
    }
}

/// An opened dictionary index, with the committed series.dict it indexes.
pub(crate) struct DictIndex {
    path: PathBuf,
    dict_path: PathBuf,
    map: Mmap,
    /// The committed prefix of series.dict (the index covers its first
    /// `covered` bytes; the rest is the tail).
    dict: Mmap,
    layout: Layout,
    /// Bytes of series.dict the index covers ([DX1]).
    covered: usize,
    metrics: u32,
    accounts: u32,
    series: u32,
    /// The metric names, read at open.
    metric_names: Vec<String>,
    checked: PageBits,
    dict_checked: PageBits,
    /// The first damage met after opening ([DX2]): the file and what is
    /// wrong with it.
    damage: OnceLock<(PathBuf, String)>,
}

impl std::fmt::Debug for DictIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DictIndex")
            .field("path", &self.path)
            .field("covered", &self.covered)
            .field("accounts", &self.accounts)
            .field("series", &self.series)
            .finish()
    }
}

impl DictIndex {
    /// Maps and checks the index at `path`, whose length the manifest
    /// records as `expected_len` ([M11], [DX2]), over `dict`, the mapped
    /// committed prefix of series.dict at `dict_path`.
    pub(crate) fn open(
        path: &Path,
        expected_len: u64,
        dict_path: &Path,
        dict: Mmap,
    ) -> Result<DictIndex> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len != expected_len {
            return Err(Error::corrupt(
                path,
                format!("file is {len} bytes but the manifest records {expected_len}"),
            ));
        }
        // SAFETY: index files are immutable once renamed into place ([I1]
        // holds for them as for segments), and a replaced one is unlinked,
        // never modified, so the mapping stays valid ([MG5]).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        // Lookups read a few scattered pages; without this hint the kernel
        // reads ahead around each fault. Only a hint: a kernel that refuses
        // it reads as before.
        #[cfg(unix)]
        {
            let _ = map.advise(memmap2::Advice::Random);
            let _ = dict.advise(memmap2::Advice::Random);
        }
        DictIndex::from_maps(path, dict_path, map, dict).map_err(|e| Error::corrupt(path, e))
    }

    fn from_maps(
        path: &Path,
        dict_path: &Path,
        map: Mmap,
        dict: Mmap,
    ) -> Result<DictIndex, String> {
        check_header(&map, MAGIC_INDEX)?;
        let footer_start = map
            .len()
            .checked_sub(FOOTER_LEN)
            .filter(|&s| s >= HEADER_LEN)
            .ok_or("file is too short for an index")?;
        let footer = map.get(footer_start..).ok_or("file is too short")?;
        let mut r = ByteReader::new(footer);
        let covered = r.u64()?;
        let metrics = r.u32()?;
        let accounts = r.u32()?;
        let series = r.u32()?;
        let pages = r.u32()? as usize;
        let metric_names_len = r.u64()?;
        let width = r.u32()?;
        let table_crc = r.u32()?;
        let reserved = r.u64()?;
        let magic = r.bytes(8)?;
        let reserved2 = r.u32()?;
        let crc = r.u32()?;
        if crc != crc32fast::hash(footer.get(..60).unwrap_or(&[])) {
            return Err("footer checksum mismatch".to_string());
        }
        if magic != MAGIC_INDEX_END || reserved != 0 || reserved2 != 0 {
            return Err("footer magic number or reserved fields are wrong".to_string());
        }
        let covered_len = usize::try_from(covered)
            .ok()
            .filter(|&c| c >= HEADER_LEN && c <= dict.len())
            .ok_or_else(|| {
                format!(
                    "it covers {covered} bytes of series.dict, but {} are committed",
                    dict.len()
                )
            })?;
        let layout = usize::try_from(metric_names_len)
            .ok()
            .and_then(|m| Layout::new(covered, accounts as usize, series as usize, m))
            .ok_or("the footer's lengths do not fit in memory")?;
        if layout.width as u32 != width {
            return Err(format!(
                "entry offsets are {width} bytes wide, but {} are expected",
                layout.width
            ));
        }
        if layout.pages() != pages || layout.file_len() != Some(map.len()) {
            return Err(format!(
                "file is {} bytes, which does not match the counts of its footer",
                map.len()
            ));
        }
        let table = map
            .get(layout.page_table..footer_start)
            .ok_or("the page table runs past the file")?;
        if crc32fast::hash(table) != table_crc {
            return Err("page table checksum mismatch".to_string());
        }
        let mut index = DictIndex {
            path: path.to_path_buf(),
            dict_path: dict_path.to_path_buf(),
            checked: PageBits::new(pages),
            dict_checked: PageBits::new(covered_len.div_ceil(PAGE)),
            map,
            dict,
            layout,
            covered: covered_len,
            metrics,
            accounts,
            series,
            metric_names: Vec::new(),
            damage: OnceLock::new(),
        };
        index.metric_names = index.read_metric_names()?;
        Ok(index)
    }

    fn read_metric_names(&self) -> Result<Vec<String>, String> {
        let l = self.layout;
        let bytes = self
            .bytes(l.metric_names, l.dict_pages - l.metric_names)
            .ok_or_else(|| self.damage_text("the metric names cannot be read"))?;
        let mut names = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let len = get_varint(bytes, &mut pos).map_err(|e| e.0.to_string())?;
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| pos.checked_add(len))
                .filter(|&end| end <= bytes.len())
                .ok_or("a metric name runs past its section")?;
            let name = bytes
                .get(pos..end)
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or("a metric name is not valid UTF-8")?;
            check_metric_name(name)?;
            names.push(name.to_string());
            pos = end;
        }
        if names.len() != self.metrics as usize {
            return Err(format!(
                "{} metric names for a metric count of {}",
                names.len(),
                self.metrics
            ));
        }
        Ok(names)
    }

    /// The damage recorded, as text, or else `otherwise`.
    fn damage_text(&self, otherwise: &str) -> String {
        self.damage
            .get()
            .map_or_else(|| otherwise.to_string(), |(_, what)| what.clone())
    }

    /// Records damage in the index (the first one wins) and returns `None`,
    /// for the lookups' `?`.
    fn damaged<T>(&self, what: impl FnOnce() -> String) -> Option<T> {
        let _ = self.damage.set((self.path.clone(), what()));
        None
    }

    /// The first damage met since the index was opened, as an error naming
    /// the file.
    pub(crate) fn damage(&self) -> Option<Error> {
        self.damage
            .get()
            .map(|(path, what)| Error::corrupt(path, what.clone()))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of series.dict the index covers.
    pub(crate) fn covered(&self) -> u64 {
        self.covered as u64
    }

    /// The committed prefix of series.dict, tail included, unchecked: the
    /// tail's frames carry their own checksums ([DI1]).
    pub(crate) fn committed_dictionary(&self) -> &[u8] {
        &self.dict
    }

    pub(crate) fn metric_names(&self) -> &[String] {
        &self.metric_names
    }

    pub(crate) fn account_count(&self) -> u32 {
        self.accounts
    }

    pub(crate) fn series_count(&self) -> u32 {
        self.series
    }

    /// `len` bytes of the index from `start`, after checking every page
    /// they touch.
    fn bytes(&self, start: usize, len: usize) -> Option<&[u8]> {
        let end = start.checked_add(len)?;
        if start < HEADER_LEN || end > self.layout.page_table {
            return self.damaged(|| format!("bytes {start}..{end} lie outside the sections"));
        }
        if len > 0 {
            for page in (start - HEADER_LEN) / PAGE..=(end - 1 - HEADER_LEN) / PAGE {
                self.check_page(page)?;
            }
        }
        self.map.get(start..end)
    }

    fn check_page(&self, page: usize) -> Option<()> {
        if self.checked.is_set(page) {
            return Some(());
        }
        let start = HEADER_LEN + page * PAGE;
        let end = (start + PAGE).min(self.layout.page_table);
        let data = self.map.get(start..end)?;
        let expected = self.u32_unchecked(self.layout.page_table + 4 * page)?;
        if crc32fast::hash(data) != expected {
            return self
                .damaged(|| format!("page {page} (bytes {start}..{end}): checksum mismatch"));
        }
        self.checked.set(page);
        Some(())
    }

    /// Bytes `start..end` of series.dict (clamped to what the index
    /// covers), after checking every page they touch against the index's
    /// checksums of series.dict.
    fn dict_bytes(&self, start: usize, end: usize) -> Option<&[u8]> {
        let end = end.min(self.covered);
        if start >= end {
            return self.damaged(|| format!("an entry offset {start} lies past what is covered"));
        }
        for page in start / PAGE..=(end - 1) / PAGE {
            if self.dict_checked.is_set(page) {
                continue;
            }
            let page_start = page * PAGE;
            let data = self
                .dict
                .get(page_start..(page_start + PAGE).min(self.covered))?;
            let expected = self.u32_at(self.layout.dict_pages, page)?;
            if crc32fast::hash(data) != expected {
                let _ = self.damage.set((
                    self.dict_path.clone(),
                    format!("bytes {page_start}.. do not match the dictionary index's checksum"),
                ));
                return None;
            }
            self.dict_checked.set(page);
        }
        self.dict.get(start..end)
    }

    /// A u32 of the page table or footer, which opening checked whole.
    fn u32_unchecked(&self, at: usize) -> Option<u32> {
        let bytes = self.map.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(<[u8; 4]>::try_from(bytes).ok()?))
    }

    fn u32_at(&self, section: usize, i: usize) -> Option<u32> {
        let bytes = self.bytes(section.checked_add(i.checked_mul(4)?)?, 4)?;
        Some(u32::from_le_bytes(<[u8; 4]>::try_from(bytes).ok()?))
    }

    /// An entry offset (4 or 8 bytes wide).
    fn offset_at(&self, section: usize, i: usize) -> Option<usize> {
        let w = self.layout.width;
        let bytes = self.bytes(section.checked_add(i.checked_mul(w)?)?, w)?;
        let mut word = [0u8; 8];
        word.get_mut(..w)?.copy_from_slice(bytes);
        usize::try_from(u64::from_le_bytes(word)).ok()
    }

    /// The entry of series.dict at `offset`: its kind byte must be `kind`;
    /// returns the bytes after it (up to what is covered) and their offset.
    fn entry(&self, offset: usize, kind: u8) -> Option<(&[u8], usize)> {
        let head = self.dict_bytes(offset, offset.saturating_add(ENTRY_HEAD_MAX))?;
        if head.first() != Some(&kind) {
            return self
                .damaged(|| format!("no entry of kind {kind} at byte {offset} of series.dict"));
        }
        Some((head.get(1..)?, offset + 1))
    }

    /// The name of account `id` (below the index's account count).
    pub(crate) fn account_name(&self, id: u32) -> Option<&str> {
        if id >= self.accounts {
            return None;
        }
        let offset = self.offset_at(self.layout.accounts, id as usize)?;
        let (head, at) = self.entry(offset, KIND_ACCOUNT)?;
        let mut pos = 0;
        let Ok(len) = get_varint(head, &mut pos) else {
            return self.damaged(|| format!("the entry of account {id} is damaged"));
        };
        let start = at + pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))?;
        if end > self.covered {
            return self.damaged(|| format!("the name of account {id} runs past what is covered"));
        }
        let bytes = self.dict_bytes(start, end)?;
        match std::str::from_utf8(bytes) {
            Ok(name) if bytes.len() == end - start && check_account_name(name).is_ok() => {
                Some(name)
            }
            _ => self.damaged(|| format!("the name of account {id} is not a valid account name")),
        }
    }

    /// The id of the account called `name`, by a binary search of "sorted
    /// accounts".
    pub(crate) fn find_account(&self, name: &str) -> Option<u32> {
        let (mut lo, mut hi) = (0usize, self.accounts as usize);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let id = self.sorted_account(mid)?;
            match self.account_name(id)?.as_bytes().cmp(name.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(id),
            }
        }
        None
    }

    fn sorted_account(&self, position: usize) -> Option<u32> {
        let id = self.u32_at(self.layout.sorted, position)?;
        if id >= self.accounts {
            return self.damaged(|| format!("sorted account {position} is {id}, not an account"));
        }
        Some(id)
    }

    /// Account ids in name order, from the first whose name is at least
    /// `from`.
    pub(crate) fn accounts_by_name_from(&self, from: &str) -> impl Iterator<Item = u32> + '_ {
        let (mut lo, mut hi) = (0usize, self.accounts as usize);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = self
                .sorted_account(mid)
                .and_then(|id| self.account_name(id))
                .is_some_and(|n| n.as_bytes() < from.as_bytes());
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.accounts as usize).map_while(|p| self.sorted_account(p))
    }

    /// The account and metric of series `id` (below the series count).
    pub(crate) fn series_key(&self, id: u32) -> Option<SeriesKey> {
        if id >= self.series {
            return None;
        }
        let offset = self.offset_at(self.layout.series, id as usize)?;
        let (head, _) = self.entry(offset, KIND_SERIES)?;
        let mut pos = 0;
        let account = get_varint(head, &mut pos).ok();
        let metric = get_varint(head, &mut pos).ok();
        match (account, metric) {
            (Some(a), Some(m)) if a < u64::from(self.accounts) && m < u64::from(self.metrics) => {
                // Both are below counts that are u32.
                Some(SeriesKey {
                    account: a as u32,
                    metric: m as u32,
                })
            }
            _ => self.damaged(|| format!("series {id} refers to no account or metric")),
        }
    }

    /// The series of `account`, in metric order, with their keys.
    pub(crate) fn series_of_account(
        &self,
        account: u32,
    ) -> impl Iterator<Item = (u32, SeriesKey)> + '_ {
        let range = (account < self.accounts)
            .then(|| {
                let start = self.u32_at(self.layout.account_starts, account as usize)?;
                let end = self.u32_at(self.layout.account_starts, account as usize + 1)?;
                if start > end || end > self.series {
                    return self
                        .damaged(|| format!("the series of account {account} have bad bounds"));
                }
                Some(start..end)
            })
            .flatten()
            .unwrap_or(0..0);
        range.map_while(move |p| {
            let id = self.u32_at(self.layout.by_account, p as usize)?;
            let key = self.series_key(id)?;
            if key.account != account {
                return self.damaged(|| format!("series {id} is listed under another account"));
            }
            Some((id, key))
        })
    }

    /// The series of `metric`, in increasing id: a pass over every series'
    /// entry (a query of a whole metric reads them all anyway).
    pub(crate) fn series_of_metric(&self, metric: u32) -> impl Iterator<Item = u32> + '_ {
        (0..self.series).filter(move |&id| self.series_key(id).is_some_and(|k| k.metric == metric))
    }

    /// Reads every page of the index and of the part of series.dict it
    /// covers, so that damage anywhere is found ([DX4]).
    pub(crate) fn check_every_page(&self) -> Result<()> {
        for page in 0..self.layout.pages() {
            if self.check_page(page).is_none() {
                break;
            }
        }
        if self.damage.get().is_none() && self.covered > 0 {
            let _ = self.dict_bytes(0, self.covered);
        }
        match self.damage() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Encodes the index of `bytes`, the whole committed series.dict ([DX1]).
/// The frames are parsed and checked first, so the index vouches only for
/// bytes whose frame checksums held.
pub(crate) fn encode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (dict, found) = Dictionary::parse_with_offsets(bytes)?;
    let (accounts, series) = (found.accounts.len(), found.series.len());
    if accounts != dict.account_count() || series != dict.series_count() {
        return Err("the frames define other counts than their entries".to_string());
    }
    let mut metric_names = Vec::new();
    for (_, name) in dict.metrics.iter() {
        put_varint(&mut metric_names, name.len() as u64);
        metric_names.extend_from_slice(name.as_bytes());
    }
    let covered = bytes.len() as u64;
    let layout = Layout::new(covered, accounts, series, metric_names.len())
        .ok_or("the dictionary is too large to index")?;
    let mut out = Vec::with_capacity(layout.page_table);
    put_header(&mut out, MAGIC_INDEX);
    out.extend_from_slice(&metric_names);
    for page in bytes.chunks(PAGE) {
        out.put_u32_le(crc32fast::hash(page));
    }
    let put_offset = |out: &mut Vec<u8>, offset: usize| {
        if layout.width == 4 {
            // The width is 4 only when every offset fits in 32 bits.
            out.put_u32_le(offset as u32);
        } else {
            out.put_u64_le(offset as u64);
        }
    };
    for &offset in &found.accounts {
        put_offset(&mut out, offset);
    }
    // Sorted by name: each entry carries the name's first eight bytes as a
    // big-endian number, so most comparisons are one integer comparison
    // rather than two lookups and a memcmp (a third of the time to index a
    // million accounts went here).
    let mut sorted: Vec<(u64, &str, u32)> = (0..accounts as u32)
        .map(|id| {
            let name = dict.account_name(id);
            let mut head = [0u8; 8];
            for (slot, byte) in head.iter_mut().zip(name.bytes()) {
                *slot = byte;
            }
            (u64::from_be_bytes(head), name, id)
        })
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    for (_, _, id) in sorted {
        out.put_u32_le(id);
    }
    for &offset in &found.series {
        put_offset(&mut out, offset);
    }
    // Every id below the series count has its key: the dictionary was
    // parsed whole, without an index.
    let keys: Vec<SeriesKey> = (0..series as u32)
        .filter_map(|id| dict.series_key(id))
        .collect();
    // The series by (account, metric): a counting sort by account, the
    // series of one account then ordered by metric.
    let mut account_starts = vec![0u32; accounts + 1];
    for key in &keys {
        if let Some(slot) = account_starts.get_mut(key.account as usize + 1) {
            *slot += 1;
        }
    }
    let mut running = 0;
    for slot in &mut account_starts {
        running += *slot;
        *slot = running;
    }
    for start in &account_starts {
        out.put_u32_le(*start);
    }
    let mut by_account: Vec<u32> = (0..series as u32).collect();
    by_account.sort_unstable_by_key(|&id| keys.get(id as usize).map(|k| (k.account, k.metric)));
    for id in by_account {
        out.put_u32_le(id);
    }
    if out.len() != layout.page_table {
        return Err(format!(
            "the dictionary index came out {} bytes long instead of {}",
            out.len(),
            layout.page_table
        ));
    }
    let mut table = Vec::with_capacity(layout.pages() * 4);
    for page in out.get(HEADER_LEN..).unwrap_or(&[]).chunks(PAGE) {
        table.put_u32_le(crc32fast::hash(page));
    }
    let table_crc = crc32fast::hash(&table);
    out.extend_from_slice(&table);
    let footer_start = out.len();
    out.put_u64_le(covered);
    out.put_u32_le(dict.metrics.len() as u32);
    out.put_u32_le(accounts as u32);
    out.put_u32_le(series as u32);
    out.put_u32_le(layout.pages() as u32);
    out.put_u64_le(metric_names.len() as u64);
    out.put_u32_le(layout.width as u32);
    out.put_u32_le(table_crc);
    out.put_u64_le(0);
    out.put_slice(MAGIC_INDEX_END);
    out.put_u32_le(0);
    let crc = crc32fast::hash(out.get(footer_start..).unwrap_or(&[]));
    out.put_u32_le(crc);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::dictionary::DictionaryBuilder;
    use crate::storage::format::{MAGIC_DICTIONARY, put_header};
    use std::sync::Arc;

    /// A dictionary of `accounts` accounts with two metrics, every account
    /// having "followers" and every third "posts", and its series.dict
    /// bytes.
    fn sample(accounts: u32) -> (Dictionary, Vec<u8>) {
        let mut b = DictionaryBuilder::new(Dictionary::default());
        let followers = b.metric_id("followers").unwrap();
        let posts = b.metric_id("posts").unwrap();
        for i in 0..accounts {
            // Names out of id order, of varied lengths, some non-ASCII.
            let name = format!(
                "{}_{}",
                ["zoë", "al", "mo_mo_mo"][i as usize % 3],
                i * 7919 % 1000
            );
            let a = b.account_id(&name).unwrap();
            b.series_id(a, followers).unwrap();
            if i % 3 == 0 {
                b.series_id(a, posts).unwrap();
            }
        }
        let mut bytes = Vec::new();
        put_header(&mut bytes, MAGIC_DICTIONARY);
        bytes.extend_from_slice(&b.take_frame().unwrap());
        (Dictionary::parse(&bytes).unwrap(), bytes)
    }

    /// Writes series.dict `dict` and its index to a new folder, and opens
    /// the index over `committed` (`dict` and perhaps more frames).
    fn open(dict: &[u8], committed: &[u8]) -> (tempfile::TempDir, Arc<DictIndex>) {
        let dir = tempfile::tempdir().unwrap();
        let (path, dict_path) = (
            dir.path().join(index_file_name(3)),
            dir.path().join("series.dict"),
        );
        let bytes = encode(dict).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        std::fs::write(&dict_path, committed).unwrap();
        let map = unsafe { Mmap::map(&std::fs::File::open(&dict_path).unwrap()) }.unwrap();
        let index = DictIndex::open(&path, bytes.len() as u64, &dict_path, map).unwrap();
        (dir, Arc::new(index))
    }

    #[test]
    fn an_index_answers_as_the_parsed_dictionary_does() {
        // [DX1]
        let (whole, bytes) = sample(1000);
        let (_dir, index) = open(&bytes, &bytes);
        let dict = Dictionary::with_index(Arc::clone(&index)).unwrap();
        assert_eq!(dict.account_count(), whole.account_count());
        assert_eq!(dict.series_count(), whole.series_count());
        for (id, name) in whole.accounts() {
            assert_eq!(dict.account_name(id), name);
            assert_eq!(dict.account_id(name), Some(id), "{name}");
            assert_eq!(
                dict.series_of_account(id).collect::<Vec<_>>(),
                whole.series_of_account(id).collect::<Vec<_>>()
            );
        }
        for id in 0..whole.series_count() as u32 {
            assert_eq!(dict.series_key(id), whole.series_key(id));
        }
        for m in 0..2 {
            assert!(dict.series_of_metric(m).eq(whole.series_of_metric(m)));
        }
        assert_eq!(dict.account_id("nobody"), None);
        let sorted: Vec<&str> = index
            .accounts_by_name_from("")
            .map(|id| dict.account_name(id))
            .collect();
        assert!(sorted.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sorted.len(), 1000);
        let from_mo: Vec<&str> = index
            .accounts_by_name_from("mo_")
            .map(|id| dict.account_name(id))
            .collect();
        assert!(from_mo.first().is_some_and(|n| n.starts_with("mo_")));
        assert!(dict.damage().is_none());
        index.check_every_page().unwrap();
    }

    #[test]
    fn frames_after_the_index_define_the_ids_after_it() {
        // [DX1]: the tail is parsed as before, its ids following the index's.
        let (whole, bytes) = sample(300);
        let (_dir, index) = open(&bytes, &bytes);
        let mut b = DictionaryBuilder::new(Dictionary::with_index(index).unwrap());
        let followers = b.metric_id("followers").unwrap();
        let following = b.metric_id("following").unwrap();
        let old = b.account_id("al_919").unwrap();
        assert!(old < 300);
        let new = b.account_id("newcomer").unwrap();
        assert_eq!(new, 300);
        assert_eq!(
            b.series_id(old, followers).ok(),
            whole.series_id(old, followers)
        );
        let s = b.series_id(old, following).unwrap();
        assert_eq!(s as usize, whole.series_count());
        let frame = b.take_frame().unwrap();
        let mut longer = bytes.clone();
        longer.extend_from_slice(&frame);
        let (_dir2, index) = open(&bytes, &longer);
        let dict = Dictionary::with_index(index).unwrap();
        assert_eq!(dict.account_id("newcomer"), Some(300));
        assert_eq!(dict.series_id(old, following), Some(s));
        assert_eq!(dict.metric_id("following"), Some(following));
        assert_eq!(
            Dictionary::parse(&longer).unwrap().series_count(),
            dict.series_count()
        );
    }

    #[test]
    fn damage_is_found_where_it_is_read() {
        // [DX2]: a flipped byte anywhere is either refused at open (header,
        // footer, page table, metric names) or met as damage by the read
        // that touches its page, never answered around.
        let (_, bytes) = sample(200);
        let good = encode(&bytes).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (path, dict_path) = (
            dir.path().join(index_file_name(3)),
            dir.path().join("series.dict"),
        );
        let open = |index: &[u8], dict: &[u8]| {
            std::fs::write(&path, index).unwrap();
            std::fs::write(&dict_path, dict).unwrap();
            let map = unsafe { Mmap::map(&std::fs::File::open(&dict_path).unwrap()) }.unwrap();
            DictIndex::open(&path, index.len() as u64, &dict_path, map)
        };
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            let Ok(index) = open(&bad, &bytes) else {
                continue;
            };
            assert!(
                index.check_every_page().is_err(),
                "a flip at byte {i} went unnoticed"
            );
            let message = index.damage().unwrap().to_string();
            assert!(message.contains("idx-0000000000000003.tdix"), "{message}");
        }
        // series.dict's covered bytes are checked against the index too.
        for i in (HEADER_LEN..bytes.len()).step_by(5) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let index = open(&good, &bad).unwrap();
            assert!(
                index.check_every_page().is_err(),
                "a flip at byte {i} of series.dict"
            );
            let message = index.damage().unwrap().to_string();
            assert!(message.contains("series.dict"), "{message}");
        }
        assert!(open(&good, &bytes).unwrap().check_every_page().is_ok());
        std::fs::write(&path, &good).unwrap();
        let map = unsafe { Mmap::map(&std::fs::File::open(&dict_path).unwrap()) }.unwrap();
        assert!(DictIndex::open(&path, good.len() as u64 + 1, &dict_path, map).is_err());
    }
}
