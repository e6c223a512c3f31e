//! Varints and zigzag (docs/format.md, "Conventions"): the two integer
//! primitives every column and index entry is built from.
//!
//! A varint is unsigned LEB128 of a `u64`. The decoder is strict about the
//! length (at most 10 bytes, the 10th at most 1) so that no byte sequence
//! decodes to a value that does not fit in 64 bits.

use super::DecodeError;

/// The most bytes a varint of a `u64` can take: ⌈64 / 7⌉.
pub const MAX_VARINT_LEN: usize = 10;

/// Appends `v` to `out` as an unsigned LEB128 varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        // Truncation is the point: the low seven bits, with the continuation bit.
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The number of bytes [`put_varint`] writes for `v`, from 1 to 10.
#[inline]
pub fn varint_len(v: u64) -> usize {
    // `v | 1` has at least one significant bit, so zero takes one byte like one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a varint from `buf` at `*pos` and advances `*pos` past it.
///
/// Rejects a varint that runs past the end of `buf`, is longer than 10
/// bytes, or whose 10th byte is greater than 1 (it would not fit in 64
/// bits). On error `*pos` is left unchanged.
#[inline]
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    // Almost every varint in a column is a single byte; keep that path short.
    if let Some(&b) = buf.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Ok(u64::from(b));
    }
    get_varint_slow(buf, pos)
}

/// The multi-byte case of [`get_varint`], kept out of line so that the
/// one-byte case inlines into the decoding loops.
#[cold]
#[inline(never)]
fn get_varint_slow(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    let mut p = *pos;
    for i in 0..MAX_VARINT_LEN {
        let Some(&b) = buf.get(p) else {
            return Err(DecodeError("varint runs past the end of the column"));
        };
        p += 1;
        if i == MAX_VARINT_LEN - 1 && b > 1 {
            return Err(DecodeError(
                "varint is longer than 10 bytes or does not fit in 64 bits",
            ));
        }
        // `i` is at most 9, so the shift is at most 63 and cannot overflow.
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos = p;
            return Ok(v);
        }
    }
    // The 10th byte was 0 or 1 and so ended the loop with a return above;
    // this is reached only if the loop bound and the check above disagree.
    Err(DecodeError(
        "varint is longer than 10 bytes or does not fit in 64 bits",
    ))
}

/// Maps an `i64` to a `u64` so that small magnitudes of either sign are
/// small: 0, −1, 1, −2, … become 0, 1, 2, 3, …
#[inline]
pub fn zigzag(v: i64) -> u64 {
    // `<<` on i64 drops the top bit without an overflow check; that bit is
    // restored by the arithmetic shift on the right, as the format says.
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varint_known_encodings_are_leb128() {
        assert_eq!(encode(0), [0x00]);
        assert_eq!(encode(1), [0x01]);
        assert_eq!(encode(127), [0x7f]);
        assert_eq!(encode(128), [0x80, 0x01]);
        assert_eq!(encode(300), [0xac, 0x02]);
        assert_eq!(encode(3_600_000), [0x80, 0xdd, 0xdb, 0x01]);
        let max = encode(u64::MAX);
        assert_eq!(max.len(), 10);
        assert_eq!(max[9], 0x01);
    }

    #[test]
    fn varint_len_matches_put_varint_at_every_boundary() {
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1] {
                assert_eq!(varint_len(v), encode(v).len(), "v = {v}");
            }
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn varint_rejects_a_10th_byte_over_1() {
        // Conventions: "A decoder rejects a varint ... whose 10th byte is greater than 1."
        let mut bytes = vec![0xff; 9];
        bytes.push(0x02);
        let mut pos = 0;
        assert!(get_varint(&bytes, &mut pos).is_err());
        assert_eq!(pos, 0, "pos is unchanged on error");
    }

    #[test]
    fn varint_rejects_more_than_10_bytes() {
        // Conventions: "A decoder rejects a varint longer than 10 bytes".
        let mut bytes = vec![0x80; 10];
        bytes.push(0x00);
        assert!(get_varint(&bytes, &mut 0).is_err());
    }

    #[test]
    fn varint_rejects_running_past_the_end() {
        assert!(get_varint(&[], &mut 0).is_err());
        assert!(get_varint(&[0x80], &mut 0).is_err());
        assert!(get_varint(&[0x01], &mut 1).is_err());
        let mut far = usize::MAX;
        assert!(get_varint(&[0x01], &mut far).is_err());
    }

    #[test]
    fn varint_accepts_a_padded_encoding() {
        // The format does not require the shortest encoding; `80 00` is 0.
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80, 0x00], &mut pos), Ok(0));
        assert_eq!(pos, 2);
    }

    #[test]
    fn zigzag_known_values() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-2), 3);
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<u64>(), prefix in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut buf = prefix.clone();
            put_varint(&mut buf, v);
            let mut pos = prefix.len();
            prop_assert_eq!(get_varint(&buf, &mut pos), Ok(v));
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn varint_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..16), start in 0usize..20) {
            let mut pos = start;
            if let Ok(v) = get_varint(&bytes, &mut pos) {
                // What was read re-encodes to at most as many bytes as were consumed.
                prop_assert!(varint_len(v) <= pos - start);
            }
        }

        #[test]
        fn zigzag_round_trips(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
            prop_assert_eq!(zigzag(unzigzag(v as u64)), v as u64);
        }
    }
}
