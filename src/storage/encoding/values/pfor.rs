//! PFOR blocks of the value column (docs/format.md, "Value column"): the
//! width histogram that picks the bit width b (the smallest block, the
//! smallest b on a tie), the writer of a block (header, exception count,
//! packed low bits, exception positions, high parts) and its decoder, with
//! one unpacker per width and [`Word`].
//!
//! The decoder checks the rules of [C2] that concern one block: the width,
//! the exception count, positions and high parts, and the padding bits.
//! Which kind a block is, and the framing around blocks, is `values`'s.

use super::{
    BLOCK_LEN, Bounds, MAX_WIDTH, OUTSIDE_BOUNDS, Word, low_mask, prefix_sum, prefix_sum_split,
};
use crate::storage::encoding::DecodeError;
use crate::storage::encoding::varint::{get_varint, put_varint, unzigzag, varint_len};

/// Bit 7 of a block header: the block has exceptions.
const HAS_EXCEPTIONS: u8 = 0x80;

/// How many deltas of a block need exactly w significant bits, for w in
/// 0 ..= 64. This is enough to know the size of the block at every width.
pub(super) struct WidthHistogram {
    pub(super) count: [u32; MAX_WIDTH + 1],
    pub(super) len: usize,
    widest: usize,
}

impl WidthHistogram {
    pub(super) fn of(block: &[u64]) -> Self {
        // Four histograms, summed at the end: most deltas fall in the same
        // bucket, and one histogram would make each increment wait for the
        // previous one's store.
        let mut partial = [[0u32; MAX_WIDTH + 1]; 4];
        let (quads, rest) = block.as_chunks::<4>();
        for quad in quads {
            for (histogram, &z) in partial.iter_mut().zip(quad) {
                // A u64 has at most 64 significant bits: the index is in 0 ..= 64.
                histogram[(u64::BITS - z.leading_zeros()) as usize] += 1;
            }
        }
        for &z in rest {
            partial[0][(u64::BITS - z.leading_zeros()) as usize] += 1;
        }
        let mut count = [0u32; MAX_WIDTH + 1];
        for histogram in &partial {
            for (total, &c) in count.iter_mut().zip(histogram) {
                *total += c;
            }
        }
        let widest = (0..=MAX_WIDTH).rev().find(|&w| count[w] > 0).unwrap_or(0);
        WidthHistogram {
            count,
            len: block.len(),
            widest,
        }
    }

    /// The size in bytes of the block written at width `b`.
    pub(super) fn block_len(&self, b: usize) -> usize {
        let packed = (self.len * b).div_ceil(8);
        let mut exceptions = 0;
        let mut high_bytes = 0;
        for w in b + 1..=self.widest {
            let count = self.count[w] as usize;
            exceptions += count;
            // The high part of a w-bit delta has exactly w − b bits.
            high_bytes += count * (w - b).div_ceil(7);
        }
        let exception_bytes = if exceptions > 0 {
            varint_len(exceptions as u64) + exceptions + high_bytes
        } else {
            0
        };
        1 + packed + exception_bytes
    }

    /// The width that makes the block smallest, the smallest on a tie.
    /// Widths above the widest delta only add packed bytes, so the search
    /// stops there.
    pub(super) fn best_width(&self) -> usize {
        // `min_by_key` keeps the first of equal minima, the smallest width.
        (0..=self.widest)
            .min_by_key(|&b| self.block_len(b))
            .unwrap_or(0)
    }
}

/// Writes one block of zigzagged deltas at width `b`.
pub(super) fn write_block(block: &[u64], b: usize, out: &mut Vec<u8>) {
    let mask = low_mask(b);
    let exceptions = block.iter().filter(|&&z| z > mask).count();
    // b <= 64 fits in the low seven bits of the header.
    let mut header = b as u8;
    if exceptions > 0 {
        header |= HAS_EXCEPTIONS;
    }
    out.push(header);
    if exceptions > 0 {
        put_varint(out, exceptions as u64);
    }

    // The low b bits of every delta, least significant bit first. At most
    // 63 bits wait in `pending` before a delta is added, so 127 fit in u128.
    if b > 0 {
        let mut pending = 0u128;
        let mut pending_bits = 0;
        for &z in block {
            pending |= u128::from(z & mask) << pending_bits;
            pending_bits += b;
            if pending_bits >= 64 {
                out.extend_from_slice(&(pending as u64).to_le_bytes());
                pending >>= 64;
                pending_bits -= 64;
            }
        }
        out.extend_from_slice(&(pending as u64).to_le_bytes()[..pending_bits.div_ceil(8)]);
    }

    if exceptions > 0 {
        for (position, &z) in block.iter().enumerate() {
            if z > mask {
                // A block has at most 256 deltas, so the position fits a byte.
                out.push(position as u8);
            }
        }
        for &z in block {
            if z > mask {
                // z > mask means b < 64, so the shift is in range.
                put_varint(out, z >> b);
            }
        }
    }
}

/// Room for the packed bits of a full block at width 64 (2048 bytes) plus
/// the 9 bytes the unpacker may read past the last group.
pub(super) const PACKED_SCRATCH: usize = BLOCK_LEN * MAX_WIDTH / 8 + 16;

/// Decodes one PFOR block of `len` deltas at `col[*pos..]`, from its header
/// on, appending the values that follow `v` to `out` (the deltas themselves
/// unless `SUMS`, [`super::decode_deltas`]); returns the last value. A
/// sparse block's header reads here as a width over 64.
#[inline]
pub(super) fn decode_block<W: Word, const SUMS: bool>(
    col: &[u8],
    pos: &mut usize,
    len: usize,
    v: u64,
    bounds: Bounds,
    out: &mut Vec<W>,
    scratch: &mut Option<[u8; PACKED_SCRATCH]>,
) -> Result<u64, DecodeError> {
    let Some(&header) = col.get(*pos) else {
        return Err(DecodeError("value block runs past the end of the column"));
    };
    *pos += 1;
    let b = usize::from(header & !HAS_EXCEPTIONS);
    if b > MAX_WIDTH {
        return Err(DecodeError("value block is wider than 64 bits"));
    }
    let exceptions = if header & HAS_EXCEPTIONS != 0 {
        if b == MAX_WIDTH {
            return Err(DecodeError("a value block of width 64 has exceptions"));
        }
        let e = get_varint(col, pos)?;
        if e == 0 || e > len as u64 {
            return Err(DecodeError(
                "value block has no exceptions or more than its deltas",
            ));
        }
        // e <= len <= 256.
        e as usize
    } else {
        0
    };

    // At most 2048 bytes, so the sums below cannot overflow a usize
    // holding a position inside a slice.
    let packed_len = (len * b).div_ceil(8);
    let Some(packed) = col.get(*pos..).and_then(|rest| rest.get(..packed_len)) else {
        return Err(DecodeError("value block runs past the end of the column"));
    };
    *pos += packed_len;
    let Some(positions) = col.get(*pos..).and_then(|rest| rest.get(..exceptions)) else {
        return Err(DecodeError("value block runs past the end of the column"));
    };
    *pos += exceptions;
    // The bits of the last packed byte past the last delta must be zero, so
    // that one column has one meaning.
    let tail_bits = (len * b) % 8;
    if tail_bits != 0
        && let Some(&last) = packed.last()
        && last >> tail_bits != 0
    {
        return Err(DecodeError(
            "value block has padding bits that are not zero",
        ));
    }

    let base = out.len();
    if b == 0 && exceptions == 0 {
        // Nothing moved: the block is one byte and decodes to a fill.
        out.resize(base + len, W::from_bits(if SUMS { v } else { 0 }));
        return Ok(v);
    }

    if b == 0 {
        // A few things moved. Filling run by run would branch on each run's
        // length, which is unpredictable; scattering the deltas into zeros
        // and summing costs the same whatever the runs look like.
        out.resize(base + len, W::default());
        // `out` was just resized to base + len.
        let deltas = &mut out[base..];
        // The prefix sum needs the sum of the first half; with so few
        // deltas it is cheaper to add it up here than to read half the block.
        let half = len / 2;
        let mut low_sum = 0u64;
        // The block's values change only at the exceptions: the running
        // value after each is every new value the block makes.
        let mut running = v;
        let mut outside = false;
        let mut next_allowed = 0;
        for &p in positions {
            let p = usize::from(p);
            let z = get_varint(col, pos)?;
            if p < next_allowed || p >= len {
                return Err(DecodeError(
                    "value block exception positions do not increase within the block",
                ));
            }
            if z == 0 {
                return Err(DecodeError("value block exception has a high part of zero"));
            }
            let d = unzigzag(z) as u64;
            // p < len, the length of `deltas`, checked just above.
            deltas[p] = W::from_bits(d);
            // Without a branch: whether p is in the first half is a coin
            // toss the branch predictor would lose.
            let in_low_half = u64::from(p < half).wrapping_neg();
            low_sum = low_sum.wrapping_add(d & in_low_half);
            running = running.wrapping_add(d);
            outside |= bounds.excludes(running);
            next_allowed = p + 1;
        }
        if outside {
            return Err(OUTSIDE_BOUNDS);
        }
        if !SUMS {
            return Ok(running);
        }
        return Ok(prefix_sum_split(deltas, v, low_sum));
    }

    let packed_scratch = scratch.get_or_insert_with(|| [0; PACKED_SCRATCH]);
    // packed_len <= 2048 < PACKED_SCRATCH, so the range is in bounds.
    packed_scratch[..packed_len].copy_from_slice(packed);
    // b is in 1 ..= 64 here, so the table lookup always succeeds.
    let Some(unpack) = W::unpackers().get(b - 1) else {
        return Err(DecodeError("value block is wider than 64 bits"));
    };
    // The unpacker writes whole groups of eight; the extra deltas of a
    // short last block are cut off below.
    out.resize(base + len.next_multiple_of(8), W::default());
    // `out` was just resized past base.
    let deltas = &mut out[base..];
    unpack(packed_scratch, deltas);

    let mut next_allowed = 0;
    for &p in positions {
        let p = usize::from(p);
        let high = get_varint(col, pos)?;
        if p < next_allowed || p >= len {
            return Err(DecodeError(
                "value block exception positions do not increase within the block",
            ));
        }
        // b is in 1 ..= 63 when there are exceptions, so both shifts are in range.
        if high == 0 || high >> (MAX_WIDTH - b) != 0 {
            return Err(DecodeError(
                "value block exception has a high part of zero or one that does not fit",
            ));
        }
        // The unpacker has already undone zigzag on the low bits, and
        // unzigzag(low + high·2^b) = unzigzag(low) ± high·2^(b−1), minus
        // when low is odd, which is when unzigzag(low) is negative.
        let correction = high << (b - 1);
        // p < len <= the length of `deltas`, checked just above.
        let d = &mut deltas[p];
        let bits = d.to_bits();
        *d = W::from_bits(if (bits as i64) < 0 {
            bits.wrapping_sub(correction)
        } else {
            bits.wrapping_add(correction)
        });
        next_allowed = p + 1;
    }
    // len <= the length of `deltas`.
    let values = &mut deltas[..len];
    if !SUMS {
        let v = values
            .iter()
            .fold(v, |sum, &d| sum.wrapping_add(d.to_bits()));
        out.truncate(base + len);
        return Ok(v);
    }
    let v = prefix_sum(values, v);
    // Any value may be new in a packed block: check them all, with a fold
    // that has no branch per value.
    if !bounds.is_everything()
        && values
            .iter()
            .fold(false, |outside, &x| outside | bounds.excludes(x.to_bits()))
    {
        return Err(OUTSIDE_BOUNDS);
    }
    out.truncate(base + len);
    Ok(v)
}

/// Unpacks deltas from the packed bytes into `deltas`, whose length is a
/// multiple of 8 and at most 256, and undoes zigzag on them. Deltas past
/// the block's own length come from leftover bytes in the scratch; the
/// caller drops them.
pub type UnpackFn<W> = fn(&[u8; PACKED_SCRATCH], &mut [W]);

/// The unpacker for width B, eight deltas per step. Eight deltas of B bits
/// are exactly B bytes, so each group starts on a byte, and with B a
/// constant every shift and offset below is a constant too: the compiler
/// unrolls the inner loop into plain loads, shifts and masks.
pub(super) fn unpack<const B: usize, W: Word>(packed: &[u8; PACKED_SCRATCH], deltas: &mut [W]) {
    let mask = low_mask(B);
    let (groups, _) = deltas.as_chunks_mut::<8>();
    // At most 32 groups of 8 in a block of 256.
    for (g, group) in groups.iter_mut().take(BLOCK_LEN / 8).enumerate() {
        for (i, delta) in group.iter_mut().enumerate() {
            let bit = i * B;
            let offset = g * B + bit / 8;
            let shift = bit % 8;
            // offset + 9 <= 31·64 + 7·64/8 + 9 = 2049 <= PACKED_SCRATCH
            // because g < 32 and i < 8: the indexes cannot fail.
            let mut word = [0u8; 8];
            word.copy_from_slice(&packed[offset..offset + 8]);
            let mut z = u64::from_le_bytes(word) >> shift;
            if shift + B > 64 {
                // Widths over 56 may straddle a ninth byte; shift >= 1 here.
                z |= u64::from(packed[offset + 8]) << (64 - shift);
            }
            *delta = W::from_bits(unzigzag(z & mask) as u64);
        }
    }
}

/// The table of [`Word::unpackers`] for a word type: the unpacker for each
/// width 1 ..= 64, at index width − 1.
macro_rules! unpackers {
    ($w:ty) => {
        unpackers!($w;
            1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
            33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64)
    };
    ($w:ty; $($b:literal)*) => { [$(unpack::<$b, $w> as UnpackFn<$w>),*] };
}
// For the tables of the `Word` impls, in `values`.
pub(super) use unpackers;

#[cfg(test)]
mod tests {
    use super::super::tests::{block_strategy, column, decode, round_trip};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn all_zero_block_is_the_single_byte_00() {
        // Value column: "a block of all-zero deltas ... is the single byte `00`".
        assert_eq!(round_trip(&[5; 257]), [5, 0x00]);
        assert_eq!(round_trip(&[300; 700]), [0xac, 0x02, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn a_few_moves_in_a_block_are_width_0_exceptions() {
        // Header 0x80 (width 0, exceptions), e = 2, no packed bytes, the
        // positions, then the high parts (the whole zigzagged delta at b = 0).
        let mut values = vec![100u64; 257];
        for v in &mut values[11..] {
            *v += 1; // delta +1 at position 10: zigzag 2
        }
        for v in &mut values[201..] {
            *v -= 3; // delta −3 at position 200: zigzag 5
        }
        assert_eq!(round_trip(&values), [100, 0x80, 2, 10, 200, 2, 5]);
    }

    #[test]
    fn packed_bits_are_least_significant_first() {
        // Deltas +1, −1, +1, 0 → zigzag 2, 1, 2, 0 at width 2:
        // 10 | 01 << 2 | 10 << 4 | 00 << 6 = 0b0010_0110.
        assert_eq!(round_trip(&[7, 8, 7, 8, 8]), [7, 0x02, 0b0010_0110]);
    }

    #[test]
    fn width_64_blocks_round_trip() {
        // Deltas of ±3·2^60 zigzag to 3·2^61 and 3·2^61 − 1: 63 bits.
        let values: Vec<u64> = (0..300)
            .map(|i| if i % 2 == 0 { 0 } else { 3 << 60 })
            .collect();
        let col = round_trip(&values);
        assert_eq!(col[1], 63);
        // Random words need all 64 bits.
        let values: Vec<u64> = (0..300u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let col = round_trip(&values);
        assert_eq!(col[1], 64);
    }

    #[test]
    fn every_width_round_trips_at_every_block_shape() {
        // Each unpacker (one per width) on full blocks, short last blocks and
        // lengths that are not a multiple of 8, with no exceptions (all
        // deltas exactly b bits wide) and with one (a wider delta).
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for b in 1..=MAX_WIDTH {
            for len in [1, 7, 8, 9, 100, 255, 256, 257, 300] {
                let top = 1u64 << (b - 1);
                let block: Vec<u64> = (0..len).map(|_| top | (next() & low_mask(b))).collect();
                let mut values = vec![next()];
                for &z in &block {
                    let v = *values.last().unwrap();
                    values.push(v.wrapping_add(unzigzag(z) as u64));
                }
                let col = round_trip(&values);
                if len <= BLOCK_LEN {
                    assert_eq!(
                        usize::from(col[varint_len(values[0])]),
                        b,
                        "b = {b}, len = {len}"
                    );
                }
                if b < MAX_WIDTH - 8 {
                    // One delta 8 bits wider than the rest: an exception.
                    let at = len / 2;
                    values[at + 1] = values[at].wrapping_add(unzigzag(top << 8) as u64);
                    for i in at + 2..values.len() {
                        values[i] = values[i - 1].wrapping_add(unzigzag(block[i - 1]) as u64);
                    }
                    round_trip(&values);
                }
            }
        }
    }

    #[test]
    fn rejects_bad_headers() {
        // [C2]
        assert!(decode(&column(&[65]), 2).is_err(), "width over 64");
        // 0x7f is a sparse block ([C3]), here without its m.
        assert!(
            decode(&column(&[0x7f]), 2).is_err(),
            "sparse block cut short"
        );
        assert!(
            decode(&column(&[0x80 | 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), 2).is_err(),
            "width 64 with exceptions"
        );
        assert!(decode(&column(&[0x80, 0]), 2).is_err(), "zero exceptions");
        assert!(
            decode(&column(&[0x80, 2, 0, 1, 1, 1]), 2).is_err(),
            "more exceptions than deltas"
        );
        assert_eq!(decode(&column(&[0x80, 1, 0, 2]), 2), Ok(vec![0, 1]));
    }

    #[test]
    fn rejects_bad_exceptions() {
        // [C2]
        // Positions must strictly increase and lie in the block.
        assert!(
            decode(&column(&[0x80, 2, 1, 1, 2, 2]), 3).is_err(),
            "repeated position"
        );
        assert!(
            decode(&column(&[0x80, 2, 1, 0, 2, 2]), 3).is_err(),
            "decreasing position"
        );
        assert!(
            decode(&column(&[0x80, 1, 2, 2]), 3).is_err(),
            "position past the block"
        );
        assert_eq!(
            decode(&column(&[0x80, 2, 0, 1, 2, 2]), 3),
            Ok(vec![0, 1, 2])
        );
        // A high part of zero is not an exception.
        assert!(decode(&column(&[0x80, 1, 0, 0]), 2).is_err());
        assert!(decode(&column(&[0x81, 1, 0, 0, 0]), 2).is_err());
        // At width 60 a high part must fit in 4 bits.
        let mut col = column(&[0x80 | 60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        col.push(0x10);
        assert!(decode(&col, 2).is_err());
        *col.last_mut().unwrap() = 0x0f;
        assert_eq!(decode(&col, 2), Ok(vec![0, 0xf << 59]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn block_size_model_matches_the_bytes_written(block in block_strategy()) {
            // The histogram's size for each width is what write_block writes.
            let widths = WidthHistogram::of(&block);
            for b in 0..=MAX_WIDTH {
                let mut out = Vec::new();
                write_block(&block, b, &mut out);
                prop_assert_eq!(out.len(), widths.block_len(b), "width {}", b);
            }
        }
    }
}
