//! Shards: which of N independent databases holds an account, and the
//! `SHARD` marker that says which shard a database directory is
//! (docs/scale-out.md, \[SO1\]–\[SO4\]).
//!
//! This module owns the one hash that places accounts: the export
//! partitions by it too (docs/export.md, "Partitions"), so that export
//! files and shards line up (\[SO2\]).

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// The name of the marker file in a shard's database directory (\[SO3\]).
pub(crate) const MARKER_FILE: &str = "SHARD";

/// The hash a marker names: the only one there is so far.
const HASH_NAME: &str = "fnv1a64";

/// The most shards a cluster may have. A cluster starts with many more
/// shards than machines (\[SO6\]); this bound only keeps a typing mistake
/// from creating a million empty shards.
pub(crate) const MAX_SHARDS: u32 = 1 << 16;

/// The part of `parts` (at least 1; 0 is taken as 1) that an account
/// belongs to: the 64-bit FNV-1a hash of its UTF-8 bytes (offset basis
/// `0xcbf29ce484222325`, prime `0x100000001b3`), modulo `parts`. FNV-1a is
/// fixed and a few lines in any language, so anyone can tell which shard or
/// export file holds an account.
pub(crate) fn part_of(account: &[u8], parts: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in account {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The remainder is below `parts`, a u32, so it fits.
    (hash % u64::from(parts.max(1))) as u32
}

/// One shard of a cluster: shard `index` of `count` (\[SO1\]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count`. `count` is a power of two from 1 to
    /// 65,536 (\[SO6\]: a cluster only ever grows by a factor), and
    /// `index` is below it.
    pub fn new(index: u32, count: u32) -> Result<Shard> {
        if count == 0 || !count.is_power_of_two() || count > MAX_SHARDS {
            return Err(Error::Invalid(format!(
                "{count} shards: the number of shards is a power of two from 1 to {MAX_SHARDS}"
            )));
        }
        if index >= count {
            return Err(Error::Invalid(format!(
                "shard {index} of {count}: shards are numbered from 0 to {}",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// The shard's number, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards the cluster has.
    pub fn count(self) -> u32 {
        self.count
    }

    /// True when `account` belongs to this shard.
    pub fn holds(self, account: &[u8]) -> bool {
        part_of(account, self.count) == self.index
    }

    /// The marker's text for this shard, one line.
    fn marker_text(self) -> String {
        format!("shard {} of {}, {HASH_NAME}\n", self.index, self.count)
    }

    /// Reads the marker of the database directory `dir`: `None` when there
    /// is no marker file.
    pub fn read_marker(dir: &Path) -> Result<Option<Shard>> {
        let path = dir.join(MARKER_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let damaged = || Error::Corrupt {
            path: path.clone(),
            what: format!(
                "the shard marker should read `shard S of N, {HASH_NAME}`, not {:?}",
                text.trim_end()
            ),
        };
        let rest = text.trim_end().strip_prefix("shard ").ok_or_else(damaged)?;
        let (numbers, hash) = rest.split_once(", ").ok_or_else(damaged)?;
        let (index, count) = numbers.split_once(" of ").ok_or_else(damaged)?;
        if hash != HASH_NAME {
            return Err(damaged());
        }
        let index = index.parse().map_err(|_| damaged())?;
        let count = count.parse().map_err(|_| damaged())?;
        Shard::new(index, count).map(Some).map_err(|_| damaged())
    }

    /// Checks that the database directory `dir` is this shard: writes the
    /// marker when there is none, and refuses a directory marked as another
    /// shard, so that a wrong path fails loudly instead of mixing shards.
    pub fn mark(self, dir: &Path) -> Result<()> {
        match Shard::read_marker(dir)? {
            Some(marked) if marked == self => Ok(()),
            Some(marked) => Err(Error::Invalid(format!(
                "{} is {marked}, not {self}",
                dir.display()
            ))),
            None => {
                let path = dir.join(MARKER_FILE);
                std::fs::write(&path, self.marker_text()).map_err(|e| Error::io(&path, e))
            }
        }
    }

    /// Checks that `dir` carries this shard's marker, for a program that
    /// only reads shards (\[SO30\]).
    pub fn check_marker(self, dir: &Path) -> Result<()> {
        match Shard::read_marker(dir)? {
            Some(marked) if marked == self => Ok(()),
            Some(marked) => Err(Error::Invalid(format!(
                "{} is {marked}, not {self}",
                dir.display()
            ))),
            None => Err(Error::Invalid(format!(
                "{} has no {MARKER_FILE} marker, so it is not known to be {self}; \
                 `tally import --shard {}/{}` writes one",
                dir.display(),
                self.index,
                self.count
            ))),
        }
    }
}

/// `shard 3 of 4`.
impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {} of {}", self.index, self.count)
    }
}

/// Reads `S/N`, as `tally import --shard` takes it.
impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(text: &str) -> Result<Shard> {
        let wrong = || Error::Invalid(format!("{text:?} is not a shard; write it S/N, like 3/4"));
        let (index, count) = text.split_once('/').ok_or_else(wrong)?;
        let index = index.trim().parse().map_err(|_| wrong())?;
        let count = count.trim().parse().map_err(|_| wrong())?;
        Shard::new(index, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_documented_function() {
        // The offset basis alone, then one byte: the published FNV-1a 64
        // values of "" and "a".
        assert_eq!(
            part_of(b"", u32::MAX),
            (0xcbf2_9ce4_8422_2325u64 % u64::from(u32::MAX)) as u32
        );
        assert_eq!(
            part_of(b"a", 1_000_000),
            (0xaf63_dc4c_8601_ec8cu64 % 1_000_000) as u32
        );
        assert_eq!(part_of(b"kavenlo", 1), 0);
        assert_eq!(part_of(b"kavenlo", 0), 0);
    }

    #[test]
    fn shards_parse_and_refuse() {
        assert_eq!("3/4".parse::<Shard>().unwrap(), Shard::new(3, 4).unwrap());
        for bad in ["4/4", "0/3", "0/0", "x/4", "1", "1/4/2", "-1/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let shard = Shard::new(1, 2).unwrap();
        let held: Vec<bool> = ["a", "b", "c", "d"]
            .iter()
            .map(|a| shard.holds(a.as_bytes()))
            .collect();
        assert!(held.contains(&true) && held.contains(&false), "{held:?}");
    }

    #[test]
    fn the_marker_is_written_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let one = Shard::new(1, 4).unwrap();
        assert!(one.check_marker(dir.path()).is_err());
        one.mark(dir.path()).unwrap();
        one.mark(dir.path()).unwrap();
        one.check_marker(dir.path()).unwrap();
        let err = Shard::new(2, 4).unwrap().mark(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("is shard 1 of 4, not shard 2 of 4"),
            "{err}"
        );
        std::fs::write(dir.path().join(MARKER_FILE), "shard 1 of 3, fnv1a64\n").unwrap();
        assert!(matches!(
            Shard::read_marker(dir.path()),
            Err(Error::Corrupt { .. })
        ));
    }
}
