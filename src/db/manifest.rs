//! The manifest (docs/format.md, "MANIFEST"): the one file whose atomic
//! replacement commits a batch ([I2]).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use bytes::BufMut;

use crate::error::{Error, Result};
use crate::storage::format::{ByteReader, HEADER_LEN, MAGIC_MANIFEST, check_header, put_header};
use crate::storage::segment::SegmentMeta;

pub(crate) const MANIFEST: &str = "MANIFEST";
const SEGMENT_ENTRY_LEN: usize = 40;
const FIXED_LEN: usize = 56;

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
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + 4 + SEGMENT_ENTRY_LEN * self.segments.len());
        put_header(&mut out, MAGIC_MANIFEST);
        out.put_u64_le(self.generation);
        out.put_u64_le(self.dict_len);
        out.put_u32_le(self.metrics);
        out.put_u32_le(self.accounts);
        out.put_u32_le(self.series);
        out.put_u32_le(self.segments.len() as u32);
        out.put_u64_le(self.next_segment);
        for s in &self.segments {
            out.put_u64_le(s.number);
            out.put_u64_le(s.file_len);
            out.put_u64_le(s.points);
            out.put_i64_le(s.t_min);
            out.put_i64_le(s.t_max);
        }
        let crc = crc32fast::hash(&out);
        out.put_u32_le(crc);
        out
    }

    /// Parses and checks a manifest ([H1], [M1], [M2]); the error is a phrase.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        check_header(bytes, MAGIC_MANIFEST)?;
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
        if r.remaining() != count.saturating_mul(SEGMENT_ENTRY_LEN) {
            return Err(format!("length does not match its {count} segment entries"));
        }
        let mut segments = Vec::with_capacity(count);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..count {
            let s = SegmentMeta {
                number: r.u64()?,
                file_len: r.u64()?,
                points: r.u64()?,
                t_min: r.i64()?,
                t_max: r.i64()?,
            };
            if s.number >= next_segment || !seen.insert(s.number) {
                return Err(format!(
                    "segment number {} is repeated or too large",
                    s.number
                ));
            }
            segments.push(s);
        }
        if generation > 0 && dict_len < HEADER_LEN as u64 {
            return Err("committed dictionary length is shorter than its header".to_string());
        }
        Ok(Manifest {
            generation,
            dict_len,
            metrics,
            accounts,
            series,
            next_segment,
            segments,
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
    pub(crate) fn replace(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let path = dir.join(MANIFEST);
        let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(&self.encode())
            .map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// Makes renames and creations in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
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
                },
                SegmentMeta {
                    number: 2,
                    file_len: 300,
                    points: 4,
                    t_min: 0,
                    t_max: 1,
                },
            ],
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
