//! The manifest (docs/format.md, "MANIFEST"): the one file whose atomic
//! replacement commits a batch ([I2]).

use std::path::Path;

use bytes::BufMut;

use crate::error::{Error, Result};
use crate::storage::format::{
    ByteReader, HEADER_LEN, MAGIC_MANIFEST, check_header, put_header_version,
};
use crate::storage::fs::FileSystem;
use crate::storage::segment::SegmentMeta;

pub(crate) const MANIFEST: &str = "MANIFEST";
const SEGMENT_ENTRY_LEN: usize = 40;
const FIXED_LEN: usize = 56;
/// What a version-2 manifest adds before its segment entries ([M11]).
const INDEX_FIELDS_LEN: usize = 16;
/// In a version-3 manifest, this bit of an entry's number field marks a
/// head ([M12]); segment numbers are below 10^16 < 2^54 ([M8]).
const HEAD_BIT: u64 = 1 << 63;
/// The smallest a head can be ([M12]): its header, one frame header and a
/// body of at least a column end, a column checksum, an absent count and a
/// one-byte column.
pub(crate) const MIN_HEAD_LEN: u64 = 16 + 36 + 10;
/// The smallest a segment file can be ([M7]): its header, one directory
/// entry and its footer (16 + 72 + 72 bytes), and for its one series at
/// least a two-byte time column (mode 1 with d_1), a one-byte value column
/// (v_0) and an eight-byte index entry (eight varints).
pub(crate) const MIN_SEGMENT_LEN: u64 = 16 + 72 + 72 + 2 + 1 + 8;

/// Segment file names hold the number as 16 decimal digits, so every
/// segment number is below this and the next segment number at most this
/// ([M8]).
pub(crate) const SEGMENT_NUMBER_LIMIT: u64 = 10_000_000_000_000_000;

/// The committed state of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub generation: u64,
    /// Committed length of series.dict, header included.
    pub dict_len: u64,
    pub metrics: u32,
    pub accounts: u32,
    pub series: u32,
    pub next_segment: u64,
    /// Live segments in commit order ([I5]).
    pub segments: Vec<SegmentMeta>,
    /// The dictionary index, when there is one ([M11]).
    pub index: Option<IndexMeta>,
}

/// The manifest's record of the dictionary index ([M11]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexMeta {
    /// The number in the file's name (`idx-N.tdix`).
    pub number: u64,
    pub file_len: u64,
}

impl Manifest {
    /// The state of a database that has never committed.
    pub(crate) fn empty() -> Manifest {
        Manifest {
            generation: 0,
            dict_len: 0,
            metrics: 0,
            accounts: 0,
            series: 0,
            next_segment: 1,
            segments: Vec::new(),
            index: None,
        }
    }

    /// The generation the next commit writes ([M10]): one more, unless
    /// that would pass 2^64 − 1, which only damage can bring about.
    pub(crate) fn next_generation(&self, dir: &Path) -> Result<u64> {
        self.generation.checked_add(1).ok_or_else(|| {
            Error::corrupt(
                dir.join(MANIFEST),
                format!(
                    "the generation is {}, the largest there is, so no commit can follow it",
                    self.generation
                ),
            )
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            FIXED_LEN + INDEX_FIELDS_LEN + 4 + SEGMENT_ENTRY_LEN * self.segments.len(),
        );
        // Version 1 unless there is an index or a head to name, so that a
        // database without them stays readable by older releases.
        let version = if self.segments.iter().any(|s| s.head) {
            3
        } else if self.index.is_some() {
            2
        } else {
            1
        };
        put_header_version(&mut out, MAGIC_MANIFEST, version);
        out.put_u64_le(self.generation);
        out.put_u64_le(self.dict_len);
        out.put_u32_le(self.metrics);
        out.put_u32_le(self.accounts);
        out.put_u32_le(self.series);
        out.put_u32_le(self.segments.len() as u32);
        out.put_u64_le(self.next_segment);
        if version >= 2 {
            let index = self.index.unwrap_or(IndexMeta {
                number: 0,
                file_len: 0,
            });
            out.put_u64_le(index.number);
            out.put_u64_le(index.file_len);
        }
        for s in &self.segments {
            out.put_u64_le(if s.head {
                s.number | HEAD_BIT
            } else {
                s.number
            });
            out.put_u64_le(s.file_len);
            out.put_u64_le(s.points);
            out.put_i64_le(s.t_min);
            out.put_i64_le(s.t_max);
        }
        let crc = crc32fast::hash(&out);
        out.put_u32_le(crc);
        out
    }

    /// Parses and checks a manifest ([H1], [M1], [M2], [M4]–[M9]); the error
    /// is a phrase naming the field that is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        let version = check_header(bytes, MAGIC_MANIFEST)?;
        if bytes.len() < FIXED_LEN + 4 {
            return Err(format!(
                "file is {} bytes, too short for a manifest",
                bytes.len()
            ));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if ByteReader::new(crc).u32()? != crc32fast::hash(body) {
            return Err("checksum mismatch (the file may be truncated)".to_string());
        }
        let mut r = ByteReader::new(body.get(HEADER_LEN..).unwrap_or(&[]));
        let generation = r.u64()?;
        let dict_len = r.u64()?;
        let metrics = r.u32()?;
        let accounts = r.u32()?;
        let series = r.u32()?;
        let count = r.u32()? as usize;
        let next_segment = r.u64()?;
        let index = if version >= 2 {
            let number = r.u64()?;
            let file_len = r.u64()?;
            // [M11]
            if number == 0 && file_len != 0 {
                return Err("the dictionary index number is 0 but its length is not".to_string());
            }
            if number != 0 && number >= next_segment {
                return Err(format!(
                    "the dictionary index number {number} is not below the next segment \
                     number {next_segment}"
                ));
            }
            (number != 0).then_some(IndexMeta { number, file_len })
        } else {
            None
        };
        if r.remaining() != count.saturating_mul(SEGMENT_ENTRY_LEN) {
            return Err(format!("length does not match its {count} segment entries"));
        }
        // [M8]
        if next_segment > SEGMENT_NUMBER_LIMIT {
            return Err(format!(
                "the next segment number {next_segment} is above {SEGMENT_NUMBER_LIMIT}, \
                 the most the 16 digits of a segment file name allow"
            ));
        }
        // The length check above bounds `count` by the file's length, so
        // this reserves no more than the bytes just read call for.
        let mut segments = Vec::with_capacity(count);
        let mut seen = std::collections::HashSet::new();
        let (mut total_points, mut total_len) = (0u64, 0u64);
        for _ in 0..count {
            let field = r.u64()?;
            // [M12]: only a version-3 manifest names heads.
            let head = version >= 3 && field & HEAD_BIT != 0;
            let s = SegmentMeta {
                number: if head { field & !HEAD_BIT } else { field },
                file_len: r.u64()?,
                points: r.u64()?,
                t_min: r.i64()?,
                t_max: r.i64()?,
                head,
            };
            if s.number >= next_segment
                || !seen.insert(s.number)
                || index.is_some_and(|i| i.number == s.number)
            {
                return Err(format!(
                    "segment number {} is repeated, is the dictionary index's, or is not below \
                     the next segment number {}",
                    s.number, next_segment
                ));
            }
            check_segment_entry(&s)?;
            // [M9]: `stats` adds these up.
            total_points = total_points.checked_add(s.points).ok_or_else(|| {
                "the segments' point counts add up to more than 2^64 - 1".to_string()
            })?;
            total_len = total_len.checked_add(s.file_len).ok_or_else(|| {
                "the segments' file lengths add up to more than 2^64 - 1".to_string()
            })?;
            segments.push(s);
        }
        check_counts(generation, dict_len, metrics, accounts, series, count)?;
        Ok(Manifest {
            generation,
            dict_len,
            metrics,
            accounts,
            series,
            next_segment,
            segments,
            index,
        })
    }

    /// Reads the manifest of `dir`; a missing file is an empty database.
    pub(crate) fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => Manifest::decode(&bytes).map_err(|e| Error::corrupt(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::empty()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Writes the manifest to a temporary file, fsyncs it and renames it
    /// over the old one ([I2]).
    /// Once it returns `Ok`, the new manifest is the one readers see; the
    /// caller then makes the rename durable with [`sync_dir`].
    pub(crate) fn replace(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let path = dir.join(MANIFEST);
        let mut file = fs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(&self.encode())
            .map_err(|e| Error::io(&tmp, e))?;
        file.sync().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        fs.rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// Takes the segment number `*next` for a new segment and advances
/// `*next` ([M8], [M10]). Fails, naming `MANIFEST` in `dir`, when no
/// number with 16 digits is left, which only damage can bring about.
pub(crate) fn take_segment_number(dir: &Path, next: &mut u64) -> Result<u64> {
    let number = *next;
    if number >= SEGMENT_NUMBER_LIMIT {
        return Err(Error::corrupt(
            dir.join(MANIFEST),
            format!(
                "the next segment number is {number}, which needs more than the 16 digits \
                 of a segment file name, so no segment can be added"
            ),
        ));
    }
    // `number` is below SEGMENT_NUMBER_LIMIT, so this cannot overflow.
    *next = number + 1;
    Ok(number)
}

/// [M4]–[M6]: what the generation and the committed counts imply of each
/// other.
fn check_counts(
    generation: u64,
    dict_len: u64,
    metrics: u32,
    accounts: u32,
    series: u32,
    segments: usize,
) -> Result<(), String> {
    if generation == 0 {
        // [M4]: generation 0 is the state before the first commit.
        let fields = [
            ("committed dictionary length", dict_len),
            ("metric count", u64::from(metrics)),
            ("account count", u64::from(accounts)),
            ("series count", u64::from(series)),
            ("segment count", segments as u64),
        ];
        if let Some((field, value)) = fields.iter().find(|(_, v)| *v != 0) {
            return Err(format!(
                "generation is 0 (nothing committed) but the {field} is {value}"
            ));
        }
        return Ok(());
    }
    // [M5]
    if dict_len < HEADER_LEN as u64 {
        return Err(format!(
            "generation is {generation} but the committed dictionary length {dict_len} is \
             shorter than the dictionary's {HEADER_LEN}-byte header"
        ));
    }
    // [M6]
    if series > 0 && (metrics == 0 || accounts == 0) {
        return Err(format!(
            "the series count is {series} but the metric count is {metrics} and the account \
             count {accounts}"
        ));
    }
    if segments > 0 && series == 0 {
        return Err(format!(
            "the series count is 0 but {segments} segments hold points"
        ));
    }
    Ok(())
}

/// [M7]: what one segment entry must say of any segment.
fn check_segment_entry(s: &SegmentMeta) -> Result<(), String> {
    let n = s.number;
    if s.points == 0 {
        return Err(format!("segment {n}: the point count is 0"));
    }
    if s.t_min > s.t_max {
        return Err(format!(
            "segment {n}: the smallest time {} is after the largest {}",
            s.t_min, s.t_max
        ));
    }
    let (smallest, what) = if s.head {
        (MIN_HEAD_LEN, "head")
    } else {
        (MIN_SEGMENT_LEN, "segment")
    };
    if s.file_len < smallest {
        return Err(format!(
            "segment {n}: the file length {} is below the {smallest} bytes of the \
             smallest {what}",
            s.file_len
        ));
    }
    // [S4]: the segment's value columns are shorter than the file.
    if s.points > crate::storage::encoding::max_points(s.file_len) {
        return Err(format!(
            "segment {n}: the point count {} is more than a file of {} bytes can hold",
            s.points, s.file_len
        ));
    }
    Ok(())
}

/// Makes renames and creations in `dir` durable.
pub(crate) fn sync_dir(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            generation: 3,
            dict_len: 120,
            metrics: 2,
            accounts: 5,
            series: 9,
            next_segment: 8,
            segments: vec![
                SegmentMeta {
                    number: 7,
                    file_len: 500,
                    points: 40,
                    t_min: -3,
                    t_max: 90,
                    head: false,
                },
                SegmentMeta {
                    number: 2,
                    file_len: 300,
                    points: 4,
                    t_min: 0,
                    t_max: 1,
                    head: false,
                },
            ],
            index: None,
        }
    }

    #[test]
    fn round_trips_and_has_the_documented_length() {
        // [M1]
        let m = sample();
        let bytes = m.encode();
        assert_eq!(bytes.len(), 60 + 40 * 2);
        assert_eq!(Manifest::decode(&bytes), Ok(m));
    }

    #[test]
    fn a_manifest_naming_a_head_is_version_3_and_round_trips() {
        // [M1] [M12]
        let mut m = sample();
        m.segments[1].head = true;
        let bytes = m.encode();
        assert_eq!(bytes.len(), 76 + 40 * 2);
        assert_eq!(check_header(&bytes, MAGIC_MANIFEST), Ok(3));
        assert_eq!(Manifest::decode(&bytes), Ok(m.clone()));
        // A head and a segment cannot share a number.
        m.segments[1].number = 7;
        assert!(decode_error(&m).contains("is repeated"));
        // A version-2 manifest reads the bit as part of the number.
        let mut m = sample();
        m.index = Some(IndexMeta {
            number: 5,
            file_len: 4096,
        });
        let mut bytes = m.encode();
        let at = 72 + 40 + 7;
        bytes[at] |= 0x80;
        let body = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        assert!(Manifest::decode(&bytes).unwrap_err().contains("not below"));
    }

    #[test]
    fn a_manifest_naming_an_index_is_version_2_and_round_trips() {
        // [M1] [M11]
        let mut m = sample();
        m.index = Some(IndexMeta {
            number: 5,
            file_len: 4096,
        });
        let bytes = m.encode();
        assert_eq!(bytes.len(), 76 + 40 * 2);
        assert_eq!(check_header(&bytes, MAGIC_MANIFEST), Ok(2));
        assert_eq!(Manifest::decode(&bytes), Ok(m.clone()));
        m.index = Some(IndexMeta {
            number: 7,
            file_len: 4096,
        });
        assert!(decode_error(&m).contains("is the dictionary index's"));
        m.index = Some(IndexMeta {
            number: 9,
            file_len: 4096,
        });
        assert!(decode_error(&m).contains("dictionary index number 9 is not below"));
    }

    /// What a damaged field makes decoding say, and how to damage it.
    type Damage<T> = (&'static str, fn(&mut T));

    /// Encodes `m` and returns what decoding says of it.
    fn decode_error(m: &Manifest) -> String {
        Manifest::decode(&m.encode()).expect_err("the manifest was accepted")
    }

    #[test]
    fn generation_0_names_nothing() {
        // [M4]: the state before the first commit. Issue 10's manifest had
        // generation 0 with segments and names: it verified, `stats`
        // counted its points and every query returned no rows.
        let empty = Manifest::empty();
        assert_eq!(Manifest::decode(&empty.encode()), Ok(empty.clone()));
        let cases: [Damage<Manifest>; 5] = [
            ("committed dictionary length is 120", |m| m.dict_len = 120),
            ("metric count is 1", |m| m.metrics = 1),
            ("account count is 1", |m| m.accounts = 1),
            ("series count is 1", |m| m.series = 1),
            ("segment count is 2", |m| {
                m.segments = sample().segments;
                m.next_segment = 8;
            }),
        ];
        for (expected, damage) in cases {
            let mut m = Manifest::empty();
            damage(&mut m);
            let err = decode_error(&m);
            assert!(
                err.starts_with("generation is 0 (nothing committed) but the ")
                    && err.ends_with(expected),
                "{err}"
            );
        }
        // The whole of issue 10's manifest: a committed state at generation 0.
        let mut m = sample();
        m.generation = 0;
        assert!(decode_error(&m).contains("generation is 0"));
    }

    #[test]
    fn a_committed_generation_has_a_dictionary_header() {
        // [M5]
        let mut m = sample();
        m.dict_len = 15;
        assert!(
            decode_error(&m)
                .contains("generation is 3 but the committed dictionary length 15 is shorter than")
        );
        m.dict_len = 16;
        m.metrics = 0;
        m.accounts = 0;
        m.series = 0;
        m.segments.clear();
        assert!(Manifest::decode(&m.encode()).is_ok());
    }

    #[test]
    fn series_need_metrics_and_accounts_and_segments_need_series() {
        // [M6]
        let mut m = sample();
        m.metrics = 0;
        assert!(decode_error(&m).contains("the series count is 9 but the metric count is 0"));
        let mut m = sample();
        m.accounts = 0;
        assert!(decode_error(&m).contains("and the account count 0"));
        let mut m = sample();
        m.series = 0;
        assert!(decode_error(&m).contains("the series count is 0 but 2 segments hold points"));
        // Names without series are fine: a point refused after its names
        // were added leaves them in the dictionary.
        let mut m = sample();
        m.series = 0;
        m.segments.clear();
        assert!(Manifest::decode(&m.encode()).is_ok());
    }

    #[test]
    fn each_segment_entry_is_possible() {
        // [M7]
        let cases: [Damage<SegmentMeta>; 5] = [
            ("segment 2: the point count is 0", |s| s.points = 0),
            (
                "segment 2: the smallest time 2 is after the largest 1",
                |s| s.t_min = 2,
            ),
            (
                "segment 2: the file length 170 is below the 171 bytes of the smallest segment",
                |s| s.file_len = 170,
            ),
            (
                "segment 2: the point count 76801 is more than a file of 300 bytes can hold",
                |s| s.points = 256 * 300 + 1,
            ),
            (
                "segment 2: the point count 18446744073709551615 is more",
                |s| s.points = u64::MAX,
            ),
        ];
        for (expected, damage) in cases {
            let mut m = sample();
            damage(&mut m.segments[1]);
            let err = decode_error(&m);
            assert!(err.starts_with(expected), "{err}");
        }
        let mut m = sample();
        m.segments[1].file_len = MIN_SEGMENT_LEN;
        m.segments[1].points = 256 * (MIN_SEGMENT_LEN - 1) + 1;
        m.segments[1].t_min = 1;
        assert!(Manifest::decode(&m.encode()).is_ok());
    }

    #[test]
    fn segment_numbers_are_below_the_next_one() {
        // [M2]
        let mut m = sample();
        m.next_segment = 7;
        assert!(decode_error(&m).contains("or is not below the next segment number 7"));
        let mut m = sample();
        m.segments[1].number = 7;
        assert!(decode_error(&m).contains("segment number 7 is repeated"));
    }

    #[test]
    fn totals_fit_a_u64() {
        // [M9]: each entry is possible, but 2^56 segments' worth of bytes
        // and points, twice over, would wrap `stats`'s sums.
        let mut m = sample();
        for s in &mut m.segments {
            s.file_len = 1 << 63;
            s.points = 1 << 62;
        }
        assert_eq!(
            decode_error(&m),
            "the segments' file lengths add up to more than 2^64 - 1"
        );
        for s in &mut m.segments {
            s.file_len = 1 << 62;
            s.points = (1 << 63) + 1;
        }
        assert_eq!(
            decode_error(&m),
            "the segments' point counts add up to more than 2^64 - 1"
        );
    }

    #[test]
    fn every_flip_and_truncation_is_rejected() {
        // [I4] [M1] [M2]
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(Manifest::decode(&bad).is_err(), "flip at {i}");
        }
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
