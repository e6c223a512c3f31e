//! Column encodings (docs/format.md, "Column encodings"): varints, the
//! time column (regular step with exceptions, or delta-of-delta) and the
//! value column (delta + zigzag, patched bit-packing per block of 256).
//!
//! Encoders take a whole series and append its column to a buffer. Decoders
//! take one column (already checked against its region's CRC) and the point
//! count from the index entry, append exactly that many points, and are
//! total: any byte sequence gives `Ok` or a [`DecodeError`], never a panic,
//! and on error `out` is left as it was.

use std::fmt;

pub mod times;
pub mod values;
pub mod varint;

pub use times::{decode_times, encode_times};
pub use values::{
    Word, decode_deltas, decode_values, decode_values_within, encode_values, max_points,
};
pub use varint::{get_varint, put_varint};

/// Why a column could not be decoded, as a phrase such as "varint runs past
/// the end of the column". The segment reader adds the file and series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DecodeError {}
