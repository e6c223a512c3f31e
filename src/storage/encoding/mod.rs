//! Column encodings (docs/format.md, "Column encodings"): varints, the
//! time column (regular step with exceptions, or delta-of-delta) and the
//! value column (delta + zigzag, patched bit-packing per block of 256).

/// Why a column could not be decoded, as a phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);
