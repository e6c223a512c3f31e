//! Sparse blocks of the value column (docs/format.md, "Sparse block"): only
//! the non-zero deltas of a block, each as a Rice-coded gap and a
//! Rice-coded value. Here are the plan that says whether a block is
//! written sparse (only when that is at least a quarter smaller than its
//! best PFOR block), the writer and the decoder, which checks [C3].

use super::pfor::WidthHistogram;
use super::rice::{BitReader, BitWriter, best_rice, pair_from};
use super::{BLOCK_LEN, Bounds, OUTSIDE_BOUNDS, Word, prefix_sum};
use crate::storage::encoding::DecodeError;
use crate::storage::encoding::varint::{get_varint, put_varint, unzigzag, varint_len};

/// The header of a sparse block, a width no PFOR block has.
pub(super) const SPARSE: u8 = 0x7F;

/// A block written sparse: its non-zero deltas as gaps and values, and the
/// Rice parameters that make them smallest.
pub(super) struct SparsePlan {
    /// For each non-zero delta in position order: the number of zeros
    /// before it since the previous one (or the block start).
    gaps: [u64; BLOCK_LEN],
    /// For each non-zero delta: z − 1.
    values: [u64; BLOCK_LEN],
    m: usize,
    k_gap: u32,
    k_val: u32,
    /// Bits of the Rice codes, before padding.
    bits: u64,
}

impl SparsePlan {
    pub(super) const fn new() -> SparsePlan {
        SparsePlan {
            gaps: [0; BLOCK_LEN],
            values: [0; BLOCK_LEN],
            m: 0,
            k_gap: 0,
            k_val: 0,
            bits: 0,
        }
    }

    /// The sparse form of `block` if it is at least a quarter smaller than
    /// `pfor_len` bytes, the size of its best PFOR block.
    #[cfg(test)]
    pub(super) fn of(
        block: &[u64],
        widths: &WidthHistogram,
        pfor_len: usize,
    ) -> Option<SparsePlan> {
        let mut plan = SparsePlan::new();
        plan.plan(block, widths, pfor_len).then_some(plan)
    }

    /// Plans the sparse form of `block` and returns whether it is at least
    /// a quarter smaller than `pfor_len` bytes, the size of its best PFOR
    /// block (docs/format.md, "Sparse block"). Only then is the plan
    /// complete.
    pub(super) fn plan(&mut self, block: &[u64], widths: &WidthHistogram, pfor_len: usize) -> bool {
        let m = widths.len - widths.count[0] as usize;
        // Every non-zero delta takes at least two bits (a gap and a value of
        // one bit each): most blocks are ruled out before looking at them.
        if m == 0 || sparse_len(m, 2 * m as u64) >= pfor_len {
            return false;
        }
        self.m = m;
        let plan = self;
        // Without a branch on z: one hour in ten moves, at random.
        let mut j = 0;
        let mut next = 0;
        for (p, &z) in block.iter().enumerate() {
            // Every delta is stored at j, and j moves on past the non-zero
            // ones; after the last one j = m, which is 256 for a full
            // block of moves, hence the clamp (that slot is unused).
            let at = j.min(BLOCK_LEN - 1);
            plan.gaps[at] = p.wrapping_sub(next) as u64;
            plan.values[at] = z.wrapping_sub(1);
            let moved = usize::from(z != 0);
            j += moved;
            next = if z != 0 { p + 1 } else { next };
        }
        debug_assert_eq!(j, m);
        let (Some((k_gap, gap_bits)), Some((k_val, value_bits))) =
            (best_rice(&plan.gaps[..m]), best_rice(&plan.values[..m]))
        else {
            return false;
        };
        plan.k_gap = k_gap;
        plan.k_val = k_val;
        plan.bits = gap_bits + value_bits;
        // A sparse block decodes bit by bit, a packed one eight values at a
        // time: the sparse form is written only when it saves a quarter.
        // In u128: tests pass usize::MAX to ask for the sparse form.
        (plan.len() as u128) * 4 < (pfor_len as u128) * 3
    }

    /// The size in bytes of the block.
    pub(super) fn len(&self) -> usize {
        sparse_len(self.m, self.bits)
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(SPARSE);
        put_varint(out, self.m as u64);
        // Both parameters are at most 15.
        out.push((self.k_gap | (self.k_val << 4)) as u8);
        let mut bits = BitWriter {
            out,
            pending: 0,
            pending_bits: 0,
        };
        for (&gap, &value) in self.gaps[..self.m].iter().zip(&self.values[..self.m]) {
            bits.put_rice(gap, self.k_gap);
            bits.put_rice(value, self.k_val);
        }
        bits.finish();
        debug_assert_eq!(out.len() - start, self.len());
    }
}

/// The size in bytes of a sparse block of `m` non-zero deltas whose Rice
/// codes take `bits` bits.
fn sparse_len(m: usize, bits: u64) -> usize {
    // H, m, K, then the codes padded to bytes; bits <= 256·2·80.
    2 + varint_len(m as u64) + bits.div_ceil(8) as usize
}

/// Decodes the sparse block of `len` deltas whose header was just read,
/// appending the values that follow `v` to `out` (the deltas themselves
/// unless `SUMS`, [`super::decode_deltas`]); returns the last value.
///
/// Not inlined: inside [`decode_block`](super::decode_block) its loop
/// competes for registers with everything else there and spills; a call
/// per block costs less.
#[inline(never)]
pub(super) fn decode_sparse<W: Word, const SUMS: bool>(
    col: &[u8],
    pos: &mut usize,
    len: usize,
    v: u64,
    bounds: Bounds,
    out: &mut Vec<W>,
) -> Result<u64, DecodeError> {
    let m = get_varint(col, pos)?;
    if m == 0 || m > len as u64 {
        return Err(DecodeError(
            "sparse value block has no non-zero deltas or more than its deltas",
        ));
    }
    let Some(&parameters) = col.get(*pos) else {
        return Err(DecodeError("value block runs past the end of the column"));
    };
    *pos += 1;
    let k_gap = u32::from(parameters & 0x0f);
    let k_val = u32::from(parameters >> 4);
    // *pos <= col.len() after the successful read above.
    let mut bits = BitReader {
        bytes: col.get(*pos..).unwrap_or(&[]),
        bit: 0,
    };

    // As for width 0 with exceptions: scatter into zeros, then sum.
    let base = out.len();
    // len <= 256: a bounded allocation whatever the column says.
    out.resize(base + len, W::default());
    let deltas = &mut out[base..];
    let mut next = 0;
    // As for width 0 with exceptions, the values change only at the
    // non-zero deltas: the running value after each is every new value.
    let mut running = v;
    let mut outside = false;
    // `inverted` is the complement of the bits from bits.bit on, of which
    // the low `avail` are the string's (or zeros past its end). Each pair of
    // codes is taken from it in registers. The word for the next pair is
    // the one loaded at this pair's start, shifted past this pair: that load
    // waits only for this pair's position, so its latency overlaps the
    // decoding instead of adding to the chain from one position to the next.
    let mut inverted = !bits.peek();
    let mut avail = bits.avail();
    let mut put = |gap: u64, value: u64| {
        // At most 64·2^15 + 2^15 − 1: neither value + 1 nor next + gap
        // can overflow.
        let p = next + gap as usize;
        let Some(slot) = deltas.get_mut(p) else {
            return Err(DecodeError(
                "sparse value block has a position past the end of the block",
            ));
        };
        let d = unzigzag(value + 1) as u64;
        *slot = W::from_bits(d);
        running = running.wrapping_add(d);
        outside |= bounds.excludes(running);
        next = p + 1;
        Ok(())
    };
    // Two pairs per step: a small move's pair takes a few bits, so one
    // word usually holds both, and the step's load and checks serve two.
    // m <= len <= 256.
    let mut left = m;
    while left > 0 {
        let fresh = !bits.peek();
        let fresh_avail = bits.avail();
        let Some((gap, value, used)) = pair_from(inverted, avail, k_gap, k_val) else {
            // A pair longer than the word: rare, code by code.
            let (gap, value) = bits.get_pair(k_gap, k_val)?;
            put(gap, value)?;
            inverted = !bits.peek();
            avail = bits.avail();
            left -= 1;
            continue;
        };
        put(gap, value)?;
        left -= 1;
        // used <= avail <= 63: the shift is in range, nothing wraps.
        let mut taken = used;
        if left > 0
            && let Some((gap, value, used)) =
                pair_from(inverted >> taken, avail - taken, k_gap, k_val)
        {
            put(gap, value)?;
            left -= 1;
            taken += used;
        }
        // `fresh` starts where `inverted` did and holds at least as many
        // bits of the string, so taken <= avail <= fresh_avail <= 63.
        inverted = fresh >> taken;
        avail = fresh_avail - taken;
        bits.bit += taken as usize;
    }

    let used = bits.bit.div_ceil(8);
    if used > bits.bytes.len() {
        return Err(DecodeError("value block runs past the end of the column"));
    }
    // The bits of the last byte past the last code must be zero, so that
    // one column has one meaning.
    let tail_bits = bits.bit % 8;
    if tail_bits != 0
        && let Some(&last) = bits.bytes.get(used - 1)
        && last >> tail_bits != 0
    {
        return Err(DecodeError(
            "value block has padding bits that are not zero",
        ));
    }
    if outside {
        return Err(OUTSIDE_BOUNDS);
    }
    *pos += used;
    if !SUMS {
        // The deltas stay as they are ([`super::decode_deltas`]).
        return Ok(running);
    }
    Ok(prefix_sum(deltas, v))
}

#[cfg(test)]
mod tests {
    use super::super::rice::{MAX_QUOTIENT, MAX_RICE_K};
    use super::super::tests::{
        XorShift, column, decode, encode, follower_like, pfor_only_len, round_trip,
        sparse_block_strategy, sparse_values_strategy, values_of,
    };
    use super::*;
    use proptest::prelude::*;

    /// The sparse block of `block` with the given parameters, or `None` if
    /// it has no non-zero delta or one the parameters cannot code.
    fn write_sparse_with(block: &[u64], k_gap: u32, k_val: u32) -> Option<Vec<u8>> {
        let mut plan = SparsePlan::of(block, &WidthHistogram::of(block), usize::MAX)?;
        let fits = |xs: &[u64], k: u32| xs.iter().all(|&x| x >> k <= MAX_QUOTIENT);
        if !fits(&plan.gaps[..plan.m], k_gap) || !fits(&plan.values[..plan.m], k_val) {
            return None;
        }
        plan.k_gap = k_gap;
        plan.k_val = k_val;
        plan.bits = plan.gaps[..plan.m]
            .iter()
            .map(|&x| (x >> k_gap) + 1 + u64::from(k_gap))
            .chain(
                plan.values[..plan.m]
                    .iter()
                    .map(|&x| (x >> k_val) + 1 + u64::from(k_val)),
            )
            .sum();
        let mut out = Vec::new();
        plan.write(&mut out);
        Some(out)
    }

    #[test]
    fn sparse_example_of_the_format_doc() {
        // Value column, "Sparse block": one delta +1 at position 3 with
        // k_gap = 1 and k_val = 0 is 7F 01 01 0D.
        assert_eq!(
            decode(&column(&[0x7f, 1, 0x01, 0x0d]), 5),
            Ok(vec![0, 0, 0, 0, 1])
        );
        // And those are the parameters the writer picks for it.
        let block = [0, 0, 0, 2];
        let plan = SparsePlan::of(&block, &WidthHistogram::of(&block), usize::MAX).unwrap();
        let mut out = Vec::new();
        plan.write(&mut out);
        assert_eq!(out, [0x7f, 1, 0x01, 0x0d]);
    }

    #[test]
    fn sparse_extremes_round_trip() {
        let check = |block: &[u64], k_gap: u32, k_val: u32| {
            let bytes = write_sparse_with(block, k_gap, k_val).expect("codable");
            let mut col = vec![9];
            col.extend_from_slice(&bytes);
            assert_eq!(decode(&col, block.len() + 1), Ok(values_of(9, block)));
        };
        // m = len: every delta moves.
        let all: Vec<u64> = (0..256).map(|i| 1 + i % 5).collect();
        for k in [0, 1, 3, 15] {
            check(&all, k, k);
        }
        // m = 1 at the last position of a full block (a gap of 255 needs
        // k_gap >= 2 for a quotient <= 64), of a short one, of a block of one.
        let mut last = vec![0u64; 256];
        last[255] = 1;
        assert_eq!(write_sparse_with(&last, 1, 0), None);
        check(&last, 2, 0);
        check(&last, 15, 15);
        let mut short = vec![0u64; 17];
        short[16] = 2;
        check(&short, 0, 0);
        check(&[1], 0, 0);
        check(&[1], 15, 15);
        // The largest codable value, z − 1 = 64·2^15 + 2^15 − 1, both signs.
        let top = 65u64 << 15;
        check(&[0, top, 0, top - 1, 0], 0, 15);
        assert_eq!(write_sparse_with(&[0, top + 1], 0, 15), None, "too large");
        // Quotients of exactly 64 at k = 0, codes straddling peeks.
        check(&[65, 65, 0, 65, 1, 64, 2, 65], 0, 0);
        let far: Vec<u64> = [0; 200].into_iter().chain([65, 0, 65]).collect();
        check(&far, 2, 0);
        // Deltas near the top of zigzag never go sparse, and still round-trip.
        let mut huge = [0u64; 256];
        huge[100] = u64::MAX;
        huge[200] = u64::MAX - 1;
        huge[201] = 1;
        let col = round_trip(&values_of(u64::MAX, &huge));
        assert_ne!(col[varint_len(u64::MAX)], SPARSE);
        assert!(SparsePlan::of(&huge, &WidthHistogram::of(&huge), usize::MAX).is_none());
        round_trip(&[0, u64::MAX, u64::MAX, u64::MAX, 0]);
    }

    #[test]
    fn rejects_bad_sparse_blocks() {
        // [C3] With k_gap = k_val = 0 a code is q one-bits and a zero.
        assert!(decode(&column(&[0x7f, 0, 0x00]), 2).is_err(), "m = 0");
        assert!(
            decode(&column(&[0x7f, 2, 0x00, 0x12]), 2).is_err(),
            "m > len"
        );
        assert!(decode(&column(&[0x7f, 1]), 2).is_err(), "no parameter byte");
        assert!(
            decode(&column(&[0x7f, 1, 0x00]), 2).is_err(),
            "no bit string"
        );
        // Gap 1 (bits 1 0), value 1 (bits 1 0): position 1, delta +1.
        assert_eq!(
            decode(&column(&[0x7f, 1, 0x00, 0b0101]), 3),
            Ok(vec![0, 0, 1])
        );
        assert!(
            decode(&column(&[0x7f, 1, 0x00, 0b0101]), 2).is_err(),
            "position past"
        );
        // Positions 0 and 1, both +1.
        assert_eq!(
            decode(&column(&[0x7f, 2, 0x00, 0x12]), 3),
            Ok(vec![0, 1, 2])
        );
        // Padding bits after the last code must be zero.
        assert_eq!(
            decode(&column(&[0x7f, 1, 0x00, 0]), 2),
            Ok(vec![0, u64::MAX])
        );
        assert!(
            decode(&column(&[0x7f, 1, 0x00, 0b100]), 2).is_err(),
            "padding"
        );
        assert!(
            decode(&column(&[0x7f, 1, 0x00, 0x80]), 2).is_err(),
            "padding"
        );
        // Gap 0, then a quotient of 65 ones.
        let mut col = column(&[0x7f, 1, 0x00, 0xfe]);
        col.extend_from_slice(&[0xff; 7]);
        col.extend_from_slice(&[0b0011, 0]);
        assert!(decode(&col, 2).is_err(), "quotient 65");
        // Gap 0, then a quotient of 64: z − 1 = 64, z = 65, delta −33.
        let mut col = column(&[0x7f, 1, 0x00, 0xfe]);
        col.extend_from_slice(&[0xff; 7]);
        col.push(0b0001);
        assert_eq!(decode(&col, 2), Ok(vec![0, 0u64.wrapping_sub(33)]));
        // A gap quotient running into the end of the column.
        assert!(decode(&column(&[0x7f, 1, 0x00, 0xff, 0xff]), 2).is_err());
        assert!(decode(&column(&[0x7f, 1, 0x00, 0xff, 0xff]), 300).is_err());
        // 17 bits (gap 0, a value with k_val = 15) in one byte: runs past.
        assert!(
            decode(&column(&[0x7f, 1, 0xf0, 0]), 2).is_err(),
            "runs past"
        );
        assert!(
            decode(&column(&[0x7f, 1, 0xf0, 0, 0]), 2).is_err(),
            "runs past"
        );
        assert_eq!(
            decode(&column(&[0x7f, 1, 0xf0, 0, 0, 0]), 2),
            Ok(vec![0, u64::MAX])
        );
        // Trailing bytes, or a sparse block followed by another block.
        assert!(
            decode(&column(&[0x7f, 1, 0x00, 0, 0]), 2).is_err(),
            "trailing"
        );
        assert_eq!(
            decode(&column(&[0x7f, 1, 0x00, 0, 0]), 258).map(|v| v.len()),
            Ok(258)
        );
    }

    #[test]
    fn every_cut_and_bit_flip_of_sparse_columns_is_handled() {
        // [C3] Every truncation fails; every single bit flip either fails or
        // decodes to n other values; nothing panics.
        let mut rng = XorShift(0x00c0_ffee_0000_0001);
        let mut columns = 0;
        for i in 0..40 {
            let n = 2 + (i * 53) % 700;
            let values = follower_like(&mut rng, n, 0.1, 1 + i as u64 % 5);
            let col = round_trip(&values);
            if col.len() >= pfor_only_len(&values) {
                continue;
            }
            columns += 1;
            for cut in 0..col.len() {
                assert!(decode(&col[..cut], n).is_err(), "cut at {cut}");
            }
            for byte in 0..col.len() {
                for bit in 0..8 {
                    let mut flipped = col.clone();
                    flipped[byte] ^= 1 << bit;
                    if let Ok(out) = decode(&flipped, n) {
                        assert_eq!(out.len(), n);
                        assert_ne!(out, values, "flip of byte {byte} bit {bit}");
                    }
                }
            }
        }
        assert!(columns >= 20, "only {columns} sparse columns");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn sparse_size_model_matches_the_bytes_written(block in sparse_block_strategy()) {
            // The size SparsePlan computes is what write() writes, it is the
            // smallest over every allowed (k_gap, k_val), and every one of
            // those decodes to the same block.
            let widths = WidthHistogram::of(&block);
            if let Some(plan) = SparsePlan::of(&block, &widths, usize::MAX) {
                let mut out = Vec::new();
                plan.write(&mut out);
                prop_assert_eq!(out.len(), plan.len());
                for k_gap in 0..=MAX_RICE_K {
                    for k_val in 0..=MAX_RICE_K {
                        if let Some(bytes) = write_sparse_with(&block, k_gap, k_val) {
                            prop_assert!(bytes.len() >= out.len());
                            let mut col = vec![0];
                            col.extend_from_slice(&bytes);
                            prop_assert_eq!(decode(&col, block.len() + 1), Ok(values_of(0, &block)));
                        }
                    }
                }
            }
        }

        #[test]
        fn damaged_sparse_columns_never_panic(
            values in sparse_values_strategy(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let col = encode(&values);
            let n = values.len();
            prop_assert!(decode(&col[..cut.index(col.len())], n).is_err());
            let mut flipped = col.clone();
            flipped[flip.index(col.len())] ^= 1 << bit;
            if let Ok(out) = decode(&flipped, n) {
                prop_assert_eq!(out.len(), n);
            }
        }
    }
}
