//! Rice codes in a bit string numbered least significant bit first, as a
//! sparse block holds them (docs/format.md, "Sparse block"): `Rice_k(x)` is
//! q = x >> k one-bits, a zero bit, then the low k bits of x. Here are the
//! choice of k, a writer, and a reader that takes a gap and a value at
//! once.
//!
//! Of [C3], the reader checks the quotient limit (at most 64); reading past
//! the end of the string, padding, and positions are checked by `sparse`.

use super::low_mask;
use crate::storage::encoding::DecodeError;

/// The largest Rice parameter of a sparse block (a nibble).
pub(super) const MAX_RICE_K: u32 = 15;

/// The longest unary quotient of a Rice code in a sparse block.
pub(super) const MAX_QUOTIENT: u64 = 64;

/// The Rice parameter that codes `xs` in the fewest bits, the smallest on a
/// tie, and that number of bits; `None` if some x is too large for every
/// parameter (its quotient would exceed [`MAX_QUOTIENT`]).
pub(super) fn best_rice(xs: &[u64]) -> Option<(u32, u64)> {
    let largest = xs.iter().copied().max().unwrap_or(0);
    // The smallest k at which every quotient is at most 64; larger ones
    // are allowed too.
    let mut k = (0..=MAX_RICE_K).find(|&k| largest >> k <= MAX_QUOTIENT)?;
    // Every quotient is at most 64 here and there are at most 256 of them.
    let bits =
        |k: u32| xs.iter().map(|&x| x >> k).sum::<u64>() + xs.len() as u64 * u64::from(1 + k);
    // bits(k) is convex in k: bits(k + 1) − bits(k) is the number of xs
    // minus the sum of ⌈(x >> k) / 2⌉, which does not decrease as k grows.
    // So walking up while it strictly decreases finds the smallest k of
    // the fewest bits.
    let mut fewest = bits(k);
    while k < MAX_RICE_K {
        let next = bits(k + 1);
        if next >= fewest {
            break;
        }
        fewest = next;
        k += 1;
    }
    Some((k, fewest))
}

/// Writes a bit string least significant bit first, as docs/format.md
/// numbers the bits of a sparse block.
pub(super) struct BitWriter<'a> {
    pub(super) out: &'a mut Vec<u8>,
    /// Fewer than 64 bits wait here between calls, so 64 more fit.
    pub(super) pending: u128,
    pub(super) pending_bits: u32,
}

impl BitWriter<'_> {
    /// Appends the low `count` bits of `bits` (count <= 64; the rest zero).
    #[inline]
    fn put(&mut self, bits: u64, count: u32) {
        self.pending |= u128::from(bits) << self.pending_bits;
        self.pending_bits += count;
        if self.pending_bits >= 64 {
            self.out
                .extend_from_slice(&(self.pending as u64).to_le_bytes());
            self.pending >>= 64;
            self.pending_bits -= 64;
        }
    }

    /// Appends Rice_k(x): q = x >> k one-bits, a zero bit, the low k bits.
    /// The caller has checked that q <= 64.
    #[inline]
    pub(super) fn put_rice(&mut self, x: u64, k: u32) {
        let q = x >> k;
        debug_assert!(q <= MAX_QUOTIENT);
        self.put(low_mask(q as usize), q as u32);
        self.put(0, 1);
        self.put(x & low_mask(k as usize), k);
    }

    /// Writes the bits still pending, padded with zeros to a whole byte.
    pub(super) fn finish(self) {
        let bytes = self.pending_bits.div_ceil(8) as usize;
        self.out
            .extend_from_slice(&(self.pending as u64).to_le_bytes()[..bytes]);
    }
}

/// Reads the bit string of a sparse block. Bits past the end of the column
/// read as zero, which ends every unary quotient, so reading stops after a
/// bounded number of bits; the caller then checks that the bits it used
/// were all inside the column.
pub(super) struct BitReader<'a> {
    pub(super) bytes: &'a [u8],
    /// The next bit to read, counted from the first bit of `bytes`.
    pub(super) bit: usize,
}

impl BitReader<'_> {
    /// The bits from the next one on: at least 57 of them are the string's
    /// (or zeros past its end), the top ones may be zeros shifted in.
    #[inline]
    pub(super) fn peek(&self) -> u64 {
        let byte = self.bit / 8;
        let word = match self
            .bytes
            .get(byte..)
            .and_then(|rest| rest.first_chunk::<8>())
        {
            Some(word) => u64::from_le_bytes(*word),
            None => self.peek_near_end(byte),
        };
        word >> (self.bit % 8)
    }

    /// [`peek`](Self::peek)'s word within 8 bytes of the end: the bytes
    /// that are left, then zeros.
    #[cold]
    fn peek_near_end(&self, byte: usize) -> u64 {
        let mut word = [0u8; 8];
        let rest = self.bytes.get(byte..).unwrap_or(&[]);
        let n = rest.len().min(8);
        word[..n].copy_from_slice(&rest[..n]);
        u64::from_le_bytes(word)
    }

    /// How many of the low bits of [`peek`](Self::peek) are the string's
    /// (or zeros past its end): at least 56, and at most 63 so that a
    /// shift by that many is in range.
    #[inline]
    pub(super) fn avail(&self) -> u32 {
        63 - (self.bit % 8) as u32
    }

    /// Reads Rice_{k_gap}(gap) then Rice_{k_val}(value) and returns both.
    ///
    /// The two codes of a small move usually take a few bits together, so
    /// one load serves both: each load waits for the bit position the
    /// previous codes left, and is the slowest step of the chain.
    #[inline]
    pub(super) fn get_pair(&mut self, k_gap: u32, k_val: u32) -> Result<(u64, u64), DecodeError> {
        let word = self.peek();
        let q_gap = (!word).trailing_zeros();
        let gap_bits = q_gap + 1 + k_gap;
        if gap_bits <= 56 {
            let rest = word >> gap_bits;
            let q_val = (!rest).trailing_zeros();
            let val_bits = q_val + 1 + k_val;
            if gap_bits + val_bits <= 57 {
                // Both codes lie in the 57 bits peek guarantees; the zero
                // ending each quotient is a bit of the string, not one
                // shifted in.
                let gap = (u64::from(q_gap) << k_gap)
                    | ((word >> (q_gap + 1)) & low_mask(k_gap as usize));
                let value = (u64::from(q_val) << k_val)
                    | ((rest >> (q_val + 1)) & low_mask(k_val as usize));
                self.bit += (gap_bits + val_bits) as usize;
                return Ok((gap, value));
            }
        }
        let gap = self.get_rice(k_gap)?;
        let value = self.get_rice(k_val)?;
        Ok((gap, value))
    }

    /// Reads Rice_k(x) and returns x; rejects a quotient over 64.
    #[inline]
    fn get_rice(&mut self, k: u32) -> Result<u64, DecodeError> {
        let word = self.peek();
        // The number of one-bits before the first zero.
        let q = (!word).trailing_zeros();
        if q + 1 + k <= 57 {
            // The whole code lies in the 57 bits peek guarantees.
            let x = (u64::from(q) << k) | ((word >> (q + 1)) & low_mask(k as usize));
            self.bit += (q + 1 + k) as usize;
            return Ok(x);
        }
        self.get_rice_slow(k)
    }

    /// [`get_rice`](Self::get_rice) for a code longer than one peek.
    #[cold]
    #[inline(never)]
    fn get_rice_slow(&mut self, k: u32) -> Result<u64, DecodeError> {
        let mut q = 0u64;
        loop {
            // Count ones among the 56 bits that are certainly valid.
            let ones = (!self.peek()).trailing_zeros().min(56);
            q += u64::from(ones);
            self.bit += ones as usize;
            if q > MAX_QUOTIENT {
                return Err(DecodeError(
                    "sparse value block has a Rice quotient over 64",
                ));
            }
            if ones < 56 {
                break;
            }
        }
        // Past the zero bit, then the k low bits (k <= 15 < 57).
        self.bit += 1;
        let low = self.peek() & low_mask(k as usize);
        self.bit += k as usize;
        Ok((q << k) | low)
    }
}

/// Takes Rice_{k_gap}(gap) and Rice_{k_val}(value) from the low bits of
/// `inverted`, the complement of a word whose low `avail` bits (avail <=
/// 63) are bits of the string, if both codes lie within them; returns the
/// gap, the value and the bits they used.
///
/// The word is kept inverted so that a quotient's one-bits are trailing
/// zeros: the chain from one pair's position to the next is then count,
/// add, shift, count, add, with the complements needed for the low bits off
/// it. A bit at or above `avail` may read as anything; a code that would
/// end there is refused, so only bits of the string are decoded.
#[inline(always)]
pub(super) fn pair_from(
    inverted: u64,
    avail: u32,
    k_gap: u32,
    k_val: u32,
) -> Option<(u64, u64, u32)> {
    let q_gap = inverted.trailing_zeros();
    let gap_bits = q_gap + 1 + k_gap;
    if gap_bits >= avail {
        return None;
    }
    // gap_bits < avail <= 63: every shift below is in range.
    let rest = inverted >> gap_bits;
    let q_val = rest.trailing_zeros();
    let used = gap_bits + q_val + 1 + k_val;
    if used > avail {
        return None;
    }
    let gap = (u64::from(q_gap) << k_gap) | (!(inverted >> (q_gap + 1)) & low_mask(k_gap as usize));
    let value = (u64::from(q_val) << k_val) | (!(rest >> (q_val + 1)) & low_mask(k_val as usize));
    Some((gap, value, used))
}
