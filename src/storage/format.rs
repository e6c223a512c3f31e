//! The fixed-layout pieces of the on-disk format (docs/format.md): the
//! common file header, segment directory entries and footers, and a
//! bounds-checked reader for little-endian integers.
//!
//! Everything here works on byte slices; files and checksums of whole regions
//! are the business of the modules that own those files.

use bytes::{Buf, BufMut};

/// The format version of the dictionary and its index, which this build
/// reads and writes.
pub(crate) const FORMAT_VERSION: u16 = 1;
/// The newest manifest version this build reads; it writes version 2 only
/// for a manifest that names a dictionary index ([M11]), and version 3 only
/// for one that names a head ([M12]).
pub(crate) const MANIFEST_VERSION: u16 = 3;
/// The format version of the segment files this build writes; it reads
/// versions 1 and 2 (docs/format.md, "Version history").
pub(crate) const SEGMENT_VERSION: u16 = 2;
/// Directory entry flag (version 2): the group's series share one time
/// column ([S5]).
pub(crate) const GROUP_SHARED_TIMES: u32 = 1;

/// The newest version of the file with `magic` that this build reads and
/// writes.
fn newest_version(magic: &[u8; 8]) -> u16 {
    if magic == MAGIC_SEGMENT {
        SEGMENT_VERSION
    } else if magic == MAGIC_MANIFEST {
        MANIFEST_VERSION
    } else {
        FORMAT_VERSION
    }
}
/// Length of the common file header.
pub(crate) const HEADER_LEN: usize = 16;
/// Magic of a segment file.
pub(crate) const MAGIC_SEGMENT: &[u8; 8] = b"TALLYSEG";
/// Magic of the series dictionary.
pub(crate) const MAGIC_DICTIONARY: &[u8; 8] = b"TALLYDIC";
/// Magic of the manifest.
pub(crate) const MAGIC_MANIFEST: &[u8; 8] = b"TALLYMAN";
/// Magic of the dictionary index ([DX1]).
pub(crate) const MAGIC_INDEX: &[u8; 8] = b"TALLYDIX";
/// Magic near the end of a dictionary index's footer.
pub(crate) const MAGIC_INDEX_END: &[u8; 8] = b"TALLYDXE";
/// Magic of a head file ([HD1]).
pub(crate) const MAGIC_HEAD: &[u8; 8] = b"TALLYHED";
/// Magic near the end of a segment footer.
pub(crate) const MAGIC_FOOTER: &[u8; 8] = b"TALLYEND";
/// Length of a segment directory entry.
pub(crate) const DIRECTORY_ENTRY_LEN: usize = 72;
/// Length of a segment footer.
pub(crate) const FOOTER_LEN: usize = 72;

/// Appends the 16-byte header of docs/format.md ("Common 16-byte file header").
pub(crate) fn put_header(out: &mut Vec<u8>, magic: &[u8; 8]) {
    put_header_version(out, magic, newest_version(magic));
}

/// Appends a header of an explicit format version (tests build files of
/// older versions with it).
pub(crate) fn put_header_version(out: &mut Vec<u8>, magic: &[u8; 8], version: u16) {
    let start = out.len();
    out.put_slice(magic);
    out.put_u16_le(version);
    out.put_u16_le(0);
    let crc = crc32fast::hash(&out[start..]);
    out.put_u32_le(crc);
}

/// Checks a file's header ([H1]) and returns its format version; the error
/// is a phrase naming what is wrong.
pub(crate) fn check_header(bytes: &[u8], magic: &[u8; 8]) -> Result<u16, String> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(format!(
            "file is {} bytes, shorter than its {HEADER_LEN}-byte header",
            bytes.len()
        ));
    };
    let mut r = ByteReader::new(header);
    let found_magic = r.bytes(8)?;
    if found_magic != magic {
        return Err(format!(
            "wrong magic number (expected {:?})",
            String::from_utf8_lossy(magic)
        ));
    }
    let version = r.u16()?;
    let reserved = r.u16()?;
    let crc = r.u32()?;
    if crc != crc32fast::hash(&header[..12]) {
        return Err("header checksum mismatch".to_string());
    }
    let newest = newest_version(magic);
    if !(1..=newest).contains(&version) {
        return Err(format!(
            "format version {version} is not supported (this build reads versions 1 to {newest})"
        ));
    }
    if reserved != 0 {
        return Err("reserved header field is not zero".to_string());
    }
    Ok(version)
}

/// A cursor over a byte slice that reads little-endian integers and never
/// reads past the end: every read returns an error phrase instead.
pub(crate) struct ByteReader<'a> {
    buf: &'a [u8],
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        ByteReader { buf }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn u16(&mut self) -> Result<u16, String> {
        self.buf.try_get_u16_le().map_err(|_| truncated())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        self.buf.try_get_u32_le().map_err(|_| truncated())
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        self.buf.try_get_u64_le().map_err(|_| truncated())
    }

    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        self.buf.try_get_i64_le().map_err(|_| truncated())
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err(truncated());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
}

fn truncated() -> String {
    "a structure runs past the end of its region".to_string()
}

/// One entry of a segment's directory: where a group of series lies and the
/// checksums of its three regions (docs/format.md, "Directory entry").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupEntry {
    pub first_series: u32,
    pub last_series: u32,
    pub series_count: u32,
    pub times_len: u32,
    pub values_len: u32,
    pub index_len: u32,
    pub offset: u64,
    pub t_min: i64,
    pub t_max: i64,
    pub points: u64,
    pub times_crc: u32,
    pub values_crc: u32,
    pub index_crc: u32,
    /// Layout flags ([S5]); 0 in version 1.
    pub flags: u32,
}

impl GroupEntry {
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        out.put_u32_le(self.first_series);
        out.put_u32_le(self.last_series);
        out.put_u32_le(self.series_count);
        out.put_u32_le(self.times_len);
        out.put_u32_le(self.values_len);
        out.put_u32_le(self.index_len);
        out.put_u64_le(self.offset);
        out.put_i64_le(self.t_min);
        out.put_i64_le(self.t_max);
        out.put_u64_le(self.points);
        out.put_u32_le(self.times_crc);
        out.put_u32_le(self.values_crc);
        out.put_u32_le(self.index_crc);
        out.put_u32_le(self.flags);
    }

    pub(crate) fn read(bytes: &[u8]) -> Result<GroupEntry, String> {
        let mut r = ByteReader::new(bytes);
        let entry = GroupEntry {
            first_series: r.u32()?,
            last_series: r.u32()?,
            series_count: r.u32()?,
            times_len: r.u32()?,
            values_len: r.u32()?,
            index_len: r.u32()?,
            offset: r.u64()?,
            t_min: r.i64()?,
            t_max: r.i64()?,
            points: r.u64()?,
            times_crc: r.u32()?,
            values_crc: r.u32()?,
            index_crc: r.u32()?,
            flags: r.u32()?,
        };
        Ok(entry)
    }

    /// Total length of the group's three regions.
    pub(crate) fn len(&self) -> u64 {
        u64::from(self.times_len) + u64::from(self.values_len) + u64::from(self.index_len)
    }
}

/// The footer at the end of a segment (docs/format.md, "Footer").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub directory_offset: u64,
    pub group_count: u32,
    pub directory_crc: u32,
    pub series_count: u64,
    pub points: u64,
    pub t_min: i64,
    pub t_max: i64,
    pub first_series: u32,
    pub last_series: u32,
    /// The format version the footer states (the header's, [S3]).
    pub version: u16,
}

impl Footer {
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u64_le(self.directory_offset);
        out.put_u32_le(self.group_count);
        out.put_u32_le(self.directory_crc);
        out.put_u64_le(self.series_count);
        out.put_u64_le(self.points);
        out.put_i64_le(self.t_min);
        out.put_i64_le(self.t_max);
        out.put_u32_le(self.first_series);
        out.put_u32_le(self.last_series);
        out.put_slice(MAGIC_FOOTER);
        out.put_u16_le(self.version);
        out.put_u16_le(0);
        let crc = crc32fast::hash(&out[start..]);
        out.put_u32_le(crc);
    }

    /// Reads and checks a footer from exactly [`FOOTER_LEN`] bytes.
    pub(crate) fn read(bytes: &[u8]) -> Result<Footer, String> {
        if bytes.len() != FOOTER_LEN {
            return Err("footer is truncated".to_string());
        }
        let (body, crc_bytes) = bytes.split_at(FOOTER_LEN - 4);
        let stored = ByteReader::new(crc_bytes).u32()?;
        if stored != crc32fast::hash(body) {
            return Err("footer checksum mismatch (the file may be truncated)".to_string());
        }
        let mut r = ByteReader::new(body);
        let footer = Footer {
            directory_offset: r.u64()?,
            group_count: r.u32()?,
            directory_crc: r.u32()?,
            series_count: r.u64()?,
            points: r.u64()?,
            t_min: r.i64()?,
            t_max: r.i64()?,
            first_series: r.u32()?,
            last_series: r.u32()?,
            version: 0,
        };
        if r.bytes(8)? != MAGIC_FOOTER {
            return Err("wrong footer magic number".to_string());
        }
        let version = r.u16()?;
        if !(1..=SEGMENT_VERSION).contains(&version) {
            return Err(format!("footer format version {version} is not supported"));
        }
        let footer = Footer { version, ..footer };
        if r.u16()? != 0 {
            return Err("reserved footer field is not zero".to_string());
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        // [H1]
        let mut buf = Vec::new();
        put_header(&mut buf, MAGIC_SEGMENT);
        assert_eq!(buf.len(), HEADER_LEN);
        assert_eq!(check_header(&buf, MAGIC_SEGMENT), Ok(SEGMENT_VERSION));
        let mut manifest = Vec::new();
        put_header(&mut manifest, MAGIC_MANIFEST);
        assert_eq!(
            check_header(&manifest, MAGIC_MANIFEST),
            Ok(MANIFEST_VERSION)
        );
        assert!(check_header(&buf, MAGIC_MANIFEST).is_err());
        assert!(check_header(&buf[..10], MAGIC_SEGMENT).is_err());
        for i in 0..HEADER_LEN {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(check_header(&bad, MAGIC_SEGMENT).is_err(), "byte {i}");
        }
    }

    #[test]
    fn footer_and_directory_entry_round_trip() {
        let footer = Footer {
            directory_offset: 1234,
            group_count: 3,
            directory_crc: 0xdead_beef,
            series_count: 7,
            points: 99,
            t_min: -5,
            t_max: 1 << 40,
            first_series: 2,
            last_series: 70,
            version: SEGMENT_VERSION,
        };
        let mut buf = Vec::new();
        footer.put(&mut buf);
        assert_eq!(buf.len(), FOOTER_LEN);
        assert_eq!(Footer::read(&buf), Ok(footer));
        buf[3] ^= 1;
        assert!(Footer::read(&buf).is_err());

        let entry = GroupEntry {
            first_series: 1,
            last_series: 9,
            series_count: 4,
            times_len: 10,
            values_len: 20,
            index_len: 30,
            offset: 16,
            t_min: -1,
            t_max: 1,
            points: 44,
            times_crc: 1,
            values_crc: 2,
            index_crc: 3,
            flags: GROUP_SHARED_TIMES,
        };
        let mut buf = Vec::new();
        entry.put(&mut buf);
        assert_eq!(buf.len(), DIRECTORY_ENTRY_LEN);
        assert_eq!(GroupEntry::read(&buf), Ok(entry));
    }
}
