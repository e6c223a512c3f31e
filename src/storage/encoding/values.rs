//! The value column (docs/format.md, "Value column"): the first count as a
//! varint, then the zigzagged deltas in blocks of 256, each bit-packed at
//! the width that makes it smallest, with the few deltas that do not fit
//! ("exceptions") patched in afterwards.
//!
//! Most accounts do not move most hours, so most deltas are zero: a block
//! where nothing moved is one byte, and a block where a few things moved is
//! usually width 0 with the moves as exceptions. A block where one hour in
//! ten moved by a little is smaller still as a *sparse block*: only the
//! non-zero deltas, each as a Rice-coded gap and a Rice-coded value, picked
//! when (and only when) that is at least a quarter smaller than the best
//! PFOR block.
//! Decoding is the hot path of every query, so each block shape has its own
//! path: a fill for width 0 without exceptions, a scatter into zeros for
//! width 0 with exceptions and for sparse blocks, and an unpack specialised
//! per bit width otherwise; all but the fill end in a prefix sum that runs
//! two independent chains. Queries decode straight into `i64` ([`Word`]),
//! and the check of every value against the index entry's bounds is done
//! per block as the values are made ([`decode_values_within`]), not in a
//! second pass.

use super::DecodeError;
use super::varint::{get_varint, put_varint, unzigzag, varint_len, zigzag};

/// Deltas per block; the last block of a column may be shorter.
pub const BLOCK_LEN: usize = 256;

/// The most points a value column of `len` bytes can hold ([S4]): `v_0`
/// takes at least a byte and each block of up to [`BLOCK_LEN`] deltas at
/// least its header byte, so `256·(len − 1) + 1`, and 0 for an empty
/// column. Readers check an index entry's count against this before they
/// allocate anything for it.
pub fn max_points(len: u64) -> u64 {
    match len.checked_sub(1) {
        None => 0,
        Some(blocks) => blocks.saturating_mul(BLOCK_LEN as u64).saturating_add(1),
    }
}

/// Bit 7 of a block header: the block has exceptions.
const HAS_EXCEPTIONS: u8 = 0x80;

/// The widest a block can be packed: every delta is a `u64`.
const MAX_WIDTH: usize = 64;

/// The header of a sparse block, a width no PFOR block has.
const SPARSE: u8 = 0x7F;

/// The largest Rice parameter of a sparse block (a nibble).
const MAX_RICE_K: u32 = 15;

/// The longest unary quotient of a Rice code in a sparse block.
const MAX_QUOTIENT: u64 = 64;

/// Appends the value column of `values` (at least one) to `out`.
///
/// Each block gets the bit width that makes it smallest, the smallest such
/// width on a tie; the deltas that need more bits are its exceptions. A
/// block is written sparse instead only when that is a quarter smaller.
pub fn encode_values(values: &[u64], out: &mut Vec<u8>) {
    debug_assert!(!values.is_empty(), "a series has at least one point");
    let Some((&first, rest)) = values.split_first() else {
        return;
    };
    put_varint(out, first);
    SCRATCH.with_borrow_mut(|scratch| encode_deltas(first, rest, scratch, out));
}

/// The working arrays of [`encode_values`], 6 KiB: kept per thread and
/// reused from call to call, since zeroing them anew cost more than
/// encoding a series of a few dozen points.
struct Scratch {
    z: [u64; BLOCK_LEN],
    sparse: SparsePlan,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch {
            z: [0; BLOCK_LEN],
            sparse: SparsePlan::new(),
        })
    };
}

/// Appends the blocks of the deltas of `rest`, the values after `first`.
fn encode_deltas(first: u64, rest: &[u64], scratch: &mut Scratch, out: &mut Vec<u8>) {
    let Scratch { z, sparse } = scratch;
    let mut previous = first;
    for chunk in rest.chunks(BLOCK_LEN) {
        for (slot, &v) in z.iter_mut().zip(chunk) {
            *slot = zigzag(v.wrapping_sub(previous) as i64);
            previous = v;
        }
        // `chunks` yields at most BLOCK_LEN values.
        let block = &z[..chunk.len()];
        let widths = WidthHistogram::of(block);
        let b = widths.best_width();
        if sparse.plan(block, &widths, widths.block_len(b)) {
            sparse.write(out);
        } else {
            write_block(block, b, out);
        }
    }
}

/// A block written sparse: its non-zero deltas as gaps and values, and the
/// Rice parameters that make them smallest.
struct SparsePlan {
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
    const fn new() -> SparsePlan {
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
    fn of(block: &[u64], widths: &WidthHistogram, pfor_len: usize) -> Option<SparsePlan> {
        let mut plan = SparsePlan::new();
        plan.plan(block, widths, pfor_len).then_some(plan)
    }

    /// Plans the sparse form of `block` and returns whether it is at least
    /// a quarter smaller than `pfor_len` bytes, the size of its best PFOR
    /// block (docs/format.md, "Sparse block"). Only then is the plan
    /// complete.
    fn plan(&mut self, block: &[u64], widths: &WidthHistogram, pfor_len: usize) -> bool {
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
    fn len(&self) -> usize {
        sparse_len(self.m, self.bits)
    }

    fn write(&self, out: &mut Vec<u8>) {
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

/// The Rice parameter that codes `xs` in the fewest bits, the smallest on a
/// tie, and that number of bits; `None` if some x is too large for every
/// parameter (its quotient would exceed [`MAX_QUOTIENT`]).
fn best_rice(xs: &[u64]) -> Option<(u32, u64)> {
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
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Fewer than 64 bits wait here between calls, so 64 more fit.
    pending: u128,
    pending_bits: u32,
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
    fn put_rice(&mut self, x: u64, k: u32) {
        let q = x >> k;
        debug_assert!(q <= MAX_QUOTIENT);
        self.put(low_mask(q as usize), q as u32);
        self.put(0, 1);
        self.put(x & low_mask(k as usize), k);
    }

    /// Writes the bits still pending, padded with zeros to a whole byte.
    fn finish(self) {
        let bytes = self.pending_bits.div_ceil(8) as usize;
        self.out
            .extend_from_slice(&(self.pending as u64).to_le_bytes()[..bytes]);
    }
}

/// How many deltas of a block need exactly w significant bits, for w in
/// 0 ..= 64. This is enough to know the size of the block at every width.
struct WidthHistogram {
    count: [u32; MAX_WIDTH + 1],
    len: usize,
    widest: usize,
}

impl WidthHistogram {
    fn of(block: &[u64]) -> Self {
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
    fn block_len(&self, b: usize) -> usize {
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
    fn best_width(&self) -> usize {
        // `min_by_key` keeps the first of equal minima, the smallest width.
        (0..=self.widest)
            .min_by_key(|&b| self.block_len(b))
            .unwrap_or(0)
    }
}

/// Writes one block of zigzagged deltas at width `b`.
fn write_block(block: &[u64], b: usize, out: &mut Vec<u8>) {
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

/// The mask of the low `b` bits, for b in 0 ..= 64.
#[inline]
fn low_mask(b: usize) -> u64 {
    u64::MAX.checked_shr((MAX_WIDTH - b) as u32).unwrap_or(0)
}

/// Appends the `n` values of a series to `out`, given its value column.
///
/// Rejects a column that does not hold exactly `n` values in blocks as the
/// format describes them, or has trailing bytes. On error `out` is left as
/// it was.
pub fn decode_values(col: &[u8], n: usize, out: &mut Vec<u64>) -> Result<(), DecodeError> {
    decode_values_within(col, n, 0, u64::MAX, out)
}

/// What a value column decodes into: `u64`, the counts as the storage layer
/// keeps them, or `i64`, the numbers queries compute with. The decoder only
/// moves bits and adds with wraparound, which is the same code for both;
/// decoding straight into `i64` spares a query a conversion pass over every
/// value. A count is at most 2^63 - 1 ([S2]), so as an `i64` it is the same
/// number, once [`decode_values_within`] has checked the bounds.
pub trait Word: Copy + Default + 'static {
    /// The word with these bits.
    fn from_bits(bits: u64) -> Self;
    /// The bits of the word.
    fn to_bits(self) -> u64;
    /// The unpacker for each width 1 ..= 64, at index width − 1.
    fn unpackers() -> &'static [UnpackFn<Self>; MAX_WIDTH];
}

/// Like [`decode_values`], and also rejects a column with a value outside
/// `lo ..= hi`, the bounds an index entry gives ([S2]), with
/// [`OUTSIDE_BOUNDS`]; an empty range (`lo > hi`) admits no column.
///
/// The check is part of the decoding rather than a pass over the output:
/// a block where nothing moved repeats a value already checked, and a block
/// with few moves has as few distinct values, checked as each move is
/// decoded; only bit-packed blocks are checked value by value.
pub fn decode_values_within<W: Word>(
    col: &[u8],
    n: usize,
    lo: u64,
    hi: u64,
    out: &mut Vec<W>,
) -> Result<(), DecodeError> {
    // Every series has a point, so an empty range admits no column.
    let Some(span) = hi.checked_sub(lo) else {
        return Err(OUTSIDE_BOUNDS);
    };
    let original_len = out.len();
    let result = decode_into(col, n, Bounds { lo, span }, out);
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

/// The error of [`decode_values_within`] for a value outside its bounds.
pub const OUTSIDE_BOUNDS: DecodeError = DecodeError("decoded values disagree with the index");

/// The range `lo ..= hi` decoded values must lie in.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    lo: u64,
    /// `hi - lo`: a value v is inside when `v - lo` (wrapping) is at most
    /// this, one comparison for both ends.
    span: u64,
}

impl Bounds {
    /// Whether `v` lies outside the bounds.
    #[inline(always)]
    fn excludes(self, v: u64) -> bool {
        v.wrapping_sub(self.lo) > self.span
    }

    /// Whether every u64 is inside, so that nothing needs checking.
    #[inline(always)]
    fn is_everything(self) -> bool {
        self.span == u64::MAX
    }
}

/// Room for the packed bits of a full block at width 64 (2048 bytes) plus
/// the 9 bytes the unpacker may read past the last group.
const PACKED_SCRATCH: usize = BLOCK_LEN * MAX_WIDTH / 8 + 16;

fn decode_into<W: Word>(
    col: &[u8],
    n: usize,
    bounds: Bounds,
    out: &mut Vec<W>,
) -> Result<(), DecodeError> {
    if n == 0 {
        return Err(DecodeError("a series has no points"));
    }
    let mut pos = 0;
    let mut v = get_varint(col, &mut pos)?;
    // Each block checks the values it makes; a block that makes none new
    // repeats the last one, so checking the first here covers the rest.
    if bounds.excludes(v) {
        return Err(OUTSIDE_BOUNDS);
    }
    let mut left = n - 1;
    // Every block has at least its header byte; checking that first bounds
    // what we reserve by the column's length. `pos <= col.len()` after a
    // successful read, so the subtraction cannot wrap.
    if col.len() - pos < left.div_ceil(BLOCK_LEN) {
        return Err(DecodeError("value column is shorter than its point count"));
    }
    out.reserve(n);
    out.push(W::from_bits(v));
    // The packed bits of a block are copied into this stack buffer, long
    // enough that every read of the unpacker stays in bounds without a
    // check. Created on the first packed block only: a series that never
    // moves more than a little needs none of it.
    let mut scratch = None;
    while left > 0 {
        let len = left.min(BLOCK_LEN);
        v = decode_block(col, &mut pos, len, v, bounds, out, &mut scratch)?;
        left -= len;
    }
    if pos != col.len() {
        return Err(DecodeError("trailing bytes after the last value block"));
    }
    Ok(())
}

/// Decodes one block of `len` deltas at `col[*pos..]`, appending the values
/// that follow `v` to `out`; returns the last value.
#[inline]
fn decode_block<W: Word>(
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
    if header == SPARSE {
        return decode_sparse(col, pos, len, v, bounds, out);
    }
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
        out.resize(base + len, W::from_bits(v));
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

/// Decodes the sparse block of `len` deltas whose header was just read,
/// appending the values that follow `v` to `out`; returns the last value.
///
/// Not inlined: inside [`decode_block`] its loop competes for registers
/// with everything else there and spills; a call per block costs less.
#[inline(never)]
fn decode_sparse<W: Word>(
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
    Ok(prefix_sum(deltas, v))
}

/// Reads the bit string of a sparse block. Bits past the end of the column
/// read as zero, which ends every unary quotient, so reading stops after a
/// bounded number of bits; the caller then checks that the bits it used
/// were all inside the column.
struct BitReader<'a> {
    bytes: &'a [u8],
    /// The next bit to read, counted from the first bit of `bytes`.
    bit: usize,
}

impl BitReader<'_> {
    /// The bits from the next one on: at least 57 of them are the string's
    /// (or zeros past its end), the top ones may be zeros shifted in.
    #[inline]
    fn peek(&self) -> u64 {
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
    fn avail(&self) -> u32 {
        63 - (self.bit % 8) as u32
    }

    /// Reads Rice_{k_gap}(gap) then Rice_{k_val}(value) and returns both.
    ///
    /// The two codes of a small move usually take a few bits together, so
    /// one load serves both: each load waits for the bit position the
    /// previous codes left, and is the slowest step of the chain.
    #[inline]
    fn get_pair(&mut self, k_gap: u32, k_val: u32) -> Result<(u64, u64), DecodeError> {
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
fn pair_from(inverted: u64, avail: u32, k_gap: u32, k_val: u32) -> Option<(u64, u64, u32)> {
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

/// Replaces each delta by `v` plus the sum of the deltas up to it, and
/// returns the last value (or `v` if there are none).
///
/// A running sum waits one addition per value on the previous one. Two
/// running sums, over the first and second half, are independent, so they
/// overlap; the second starts from the sum of the first half, which a
/// vectorized reduction computes quickly. (Sums of four inside one chain do
/// not help: the compiler reassociates them back into a single chain.)
#[inline]
fn prefix_sum<W: Word>(deltas: &mut [W], v: u64) -> u64 {
    // len / 2 <= len: the range is in bounds.
    let low_sum = deltas[..deltas.len() / 2]
        .iter()
        .fold(0u64, |sum, &d| sum.wrapping_add(d.to_bits()));
    prefix_sum_split(deltas, v, low_sum)
}

/// [`prefix_sum`] when the caller already knows the sum of the first half,
/// `deltas[..len / 2]`.
#[inline]
fn prefix_sum_split<W: Word>(deltas: &mut [W], v: u64, low_sum: u64) -> u64 {
    let (low, high) = deltas.split_at_mut(deltas.len() / 2);
    let mut a = v;
    let mut b = v.wrapping_add(low_sum);
    // `high` is as long as `low` or one longer; the zip covers `low`.
    let (paired, last) = high.split_at_mut(low.len());
    for (x, y) in low.iter_mut().zip(paired) {
        a = a.wrapping_add(x.to_bits());
        *x = W::from_bits(a);
        b = b.wrapping_add(y.to_bits());
        *y = W::from_bits(b);
    }
    for y in last {
        b = b.wrapping_add(y.to_bits());
        *y = W::from_bits(b);
    }
    b
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
fn unpack<const B: usize, W: Word>(packed: &[u8; PACKED_SCRATCH], deltas: &mut [W]) {
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

impl Word for u64 {
    #[inline(always)]
    fn from_bits(bits: u64) -> u64 {
        bits
    }

    #[inline(always)]
    fn to_bits(self) -> u64 {
        self
    }

    fn unpackers() -> &'static [UnpackFn<u64>; MAX_WIDTH] {
        static UNPACK: [UnpackFn<u64>; MAX_WIDTH] = unpackers!(u64);
        &UNPACK
    }
}

impl Word for i64 {
    #[inline(always)]
    fn from_bits(bits: u64) -> i64 {
        // Reinterprets the bits, as intended: see the trait.
        bits as i64
    }

    #[inline(always)]
    fn to_bits(self) -> u64 {
        self as u64
    }

    fn unpackers() -> &'static [UnpackFn<i64>; MAX_WIDTH] {
        static UNPACK: [UnpackFn<i64>; MAX_WIDTH] = unpackers!(i64);
        &UNPACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(values: &[u64]) -> Vec<u8> {
        let mut col = Vec::new();
        encode_values(values, &mut col);
        col
    }

    fn decode(col: &[u8], n: usize) -> Result<Vec<u64>, DecodeError> {
        let mut out = vec![42]; // decoders append; this must survive
        decode_values(col, n, &mut out)?;
        assert_eq!(out[0], 42);
        Ok(out.split_off(1))
    }

    fn round_trip(values: &[u64]) -> Vec<u8> {
        let col = encode(values);
        assert_eq!(decode(&col, values.len()).as_deref(), Ok(values));
        col
    }

    /// A column of v_0 = 0 followed by the given block bytes.
    fn column(blocks: &[u8]) -> Vec<u8> {
        let mut col = vec![0];
        col.extend_from_slice(blocks);
        col
    }

    /// The values that start at `v0` and move by the zigzagged deltas `block`.
    fn values_of(v0: u64, block: &[u64]) -> Vec<u64> {
        let mut values = vec![v0];
        let mut v = v0;
        for &z in block {
            v = v.wrapping_add(unzigzag(z) as u64);
            values.push(v);
        }
        values
    }

    /// The size of the value column with PFOR blocks only, as before sparse
    /// blocks existed: v_0 and each block at its best width.
    fn pfor_only_len(values: &[u64]) -> usize {
        let mut len = varint_len(values[0]);
        let zs: Vec<u64> = values
            .windows(2)
            .map(|w| zigzag(w[1].wrapping_sub(w[0]) as i64))
            .collect();
        for block in zs.chunks(BLOCK_LEN) {
            let widths = WidthHistogram::of(block);
            len += widths.block_len(widths.best_width());
        }
        len
    }

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

    /// A small deterministic generator for the exhaustive tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Values like an account's hourly follower counts: in each hour, with
    /// probability `moves`, the count moves by 1 ..= `spread`.
    fn follower_like(rng: &mut XorShift, n: usize, moves: f64, spread: u64) -> Vec<u64> {
        let mut v = 1000 + rng.next() % 1_000_000;
        let mut values = vec![v];
        for _ in 1..n {
            if (rng.next() % 1_000_000) as f64 / 1e6 < moves {
                let step = 1 + rng.next() % spread;
                v = if rng.next().is_multiple_of(3) {
                    v.wrapping_sub(step)
                } else {
                    v.wrapping_add(step)
                };
            }
            values.push(v);
        }
        values
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
    fn hourly_follower_blocks_pick_the_sparse_kind() {
        // About one hour in ten moves by a little: the benchmark's shape.
        let mut rng = XorShift(0x5eed_0000_0000_0001);
        let mut sparse = 0;
        let columns = 300;
        for i in 0..columns {
            let moves = [0.02, 0.05, 0.1, 0.15, 0.3, 0.6][i % 6];
            let n = 1 + (i * 37) % 1200;
            let values = follower_like(&mut rng, n, moves, 1 + (i as u64 % 4) * 3);
            let col = round_trip(&values);
            let pfor = pfor_only_len(&values);
            assert!(col.len() <= pfor);
            sparse += usize::from(col.len() < pfor);
        }
        assert!(
            sparse > columns / 3,
            "{sparse} of {columns} columns used a sparse block"
        );
        // A typical block: 25 moves of 1 ..= 3 either way in 256 hours.
        let mut block = [0u64; 256];
        for j in 0..25 {
            block[j * 10 + 3] = 1 + (j as u64 % 6);
        }
        let values = values_of(7, &block);
        let col = round_trip(&values);
        assert_eq!(col[1], SPARSE);
        assert!(col.len() < pfor_only_len(&values));
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

    #[test]
    fn all_zero_block_is_the_single_byte_00() {
        // Value column: "a block of all-zero deltas ... is the single byte `00`".
        assert_eq!(round_trip(&[5; 257]), [5, 0x00]);
        assert_eq!(round_trip(&[300; 700]), [0xac, 0x02, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn one_point_series_is_just_v0() {
        assert_eq!(round_trip(&[0]), [0]);
        assert_eq!(round_trip(&[u64::MAX]).len(), 10);
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
    fn extremes_round_trip() {
        // Conventions: wrapping differences, so every u64 round-trips.
        round_trip(&[0, u64::MAX, 0, u64::MAX]);
        round_trip(&[u64::MAX; 3]);
        round_trip(&[i64::MAX as u64, 0, i64::MAX as u64, i64::MAX as u64 + 1, 1]);
        round_trip(&[0, 1 << 63, 0, (1 << 63) - 1]);
        let mut values: Vec<u64> = (0..600u64)
            .map(|i| i.wrapping_mul(0x0123_4567_89ab_cdef))
            .collect();
        values[300] = u64::MAX;
        round_trip(&values);
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

    #[test]
    fn rejects_bad_framing() {
        // [C2]
        assert!(decode(&[], 1).is_err(), "empty column");
        assert!(decode(&[0], 0).is_err(), "no points");
        assert!(decode(&[0, 0], 1).is_err(), "trailing block");
        assert!(decode(&[0], 2).is_err(), "missing block");
        assert!(decode(&[0, 0, 0], 257).is_err(), "trailing block");
        assert!(decode(&[0, 0], 258).is_err(), "missing second block");
        assert!(decode(&[0, 0x08], 3).is_err(), "missing packed bytes");
        assert!(decode(&[0, 0x08, 1, 2, 3], 3).is_err(), "trailing byte");
        // Two deltas at width 3 use 6 bits; the top 2 bits must be zero.
        assert!(
            decode(&[0, 0x03, 0b0100_0000], 3).is_err(),
            "padding bits set"
        );
        assert_eq!(decode(&[0, 0x03, 0b0001_0000], 3), Ok(vec![0, 0, 1]));
    }

    #[test]
    fn max_points_is_the_most_a_column_of_that_length_holds() {
        // [S4]: v_0 and one all-zero block per 256 deltas is the shortest
        // column of n points, and it reaches the bound exactly.
        for n in [1usize, 2, 256, 257, 258, 513, 5000] {
            let col = encode(&vec![7; n]);
            assert_eq!(col.len(), 1 + (n - 1).div_ceil(BLOCK_LEN), "n = {n}");
            assert!(n as u64 <= max_points(col.len() as u64), "n = {n}");
        }
        assert_eq!(max_points(0), 0);
        assert_eq!(max_points(1), 1);
        assert_eq!(max_points(2), 257);
        assert_eq!(max_points(u64::MAX), u64::MAX);
    }

    #[test]
    fn huge_point_count_on_a_short_column_fails_without_allocating() {
        // n comes from the index entry; a damaged column must not make the
        // decoder reserve n values first.
        assert!(decode(&[0, 0, 0], u32::MAX as usize).is_err());
    }

    #[test]
    fn error_leaves_out_unchanged() {
        let mut out = vec![1, 2, 3];
        // The first block decodes before the second turns out to be missing.
        assert!(decode_values(&[0, 0, 0x41], 600, &mut out).is_err());
        assert_eq!(out, [1, 2, 3]);
    }

    /// Series of every shape the brief lists: random words, values near the
    /// top of i64 and u64, slow walks, flat runs with huge jumps both ways.
    fn values_strategy() -> impl Strategy<Value = Vec<u64>> {
        let walk = (
            prop_oneof![
                Just(0u64),
                Just(i64::MAX as u64 - 500),
                Just(u64::MAX - 500),
                any::<u64>()
            ],
            proptest::collection::vec(
                prop_oneof![
                    10 => Just(0i64),
                    4 => -3i64..=3,
                    2 => -10_000i64..=10_000,
                    1 => any::<i64>(),
                ],
                0..1200,
            ),
        )
            .prop_map(|(start, steps)| {
                let mut v = start;
                let mut values = vec![v];
                for step in steps {
                    v = v.wrapping_add(step as u64);
                    values.push(v);
                }
                values
            });
        let extremes = proptest::collection::vec(
            prop_oneof![
                Just(0u64),
                Just(1u64),
                Just(i64::MAX as u64),
                Just(i64::MAX as u64 + 1),
                Just(u64::MAX),
                Just(u64::MAX - 1),
            ],
            1..600,
        );
        let flat = (any::<u64>(), 1usize..1000).prop_map(|(v, n)| vec![v; n]);
        prop_oneof![
            4 => walk,
            1 => proptest::collection::vec(any::<u64>(), 1..600),
            1 => extremes,
            1 => flat,
        ]
    }

    /// The deltas of one random block, with width-skewed magnitudes.
    fn block_strategy() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::vec(
            prop_oneof![
                6 => Just(0u64),
                3 => 0u64..16,
                1 => (0u32..=64).prop_flat_map(|w| (0u64..=u64::MAX).prop_map(move |z| z.checked_shr(64 - w).unwrap_or(0))),
            ],
            1..=BLOCK_LEN,
        )
    }

    /// The deltas of one block with few non-zero ones, mostly small, and
    /// now and then one too large for a sparse block.
    fn sparse_block_strategy() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::vec(
            prop_oneof![
                40 => Just(0u64),
                4 => 1u64..8,
                1 => 8u64..5000,
                1 => Just(65u64 << 15),
                1 => Just((65u64 << 15) + 1),
                1 => any::<u64>(),
            ],
            1..=BLOCK_LEN,
        )
    }

    /// Follower-like series: long flat stretches with small moves.
    fn sparse_values_strategy() -> impl Strategy<Value = Vec<u64>> {
        (
            any::<u64>(),
            proptest::collection::vec(sparse_block_strategy(), 1..5),
            1usize..=BLOCK_LEN,
        )
            .prop_map(|(v0, blocks, last)| {
                let mut zs: Vec<u64> = blocks.into_iter().flatten().collect();
                zs.truncate(zs.len().min(3 * BLOCK_LEN + last));
                values_of(v0, &zs)
            })
    }

    /// Follower counts: a walk of mostly zero and small steps, which the
    /// encoder writes as sparse blocks, width-0 blocks with exceptions and
    /// narrow packed blocks, so that a series' lowest and highest values
    /// fall inside blocks of every kind.
    fn follower_values_strategy() -> impl Strategy<Value = Vec<u64>> {
        (
            0u64..1_000_000,
            proptest::collection::vec(
                prop_oneof![
                    40 => Just(0i64),
                    6 => -3i64..=3,
                    1 => -300i64..=300,
                ],
                0..1000,
            ),
        )
            .prop_map(|(start, steps)| {
                let mut v = start;
                let mut values = vec![v];
                for step in steps {
                    v = v.saturating_add_signed(step);
                    values.push(v);
                }
                values
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_values_round_trip(values in values_strategy()) {
            round_trip(&values);
        }

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

        #[test]
        fn writer_picks_the_smallest_width_smallest_on_ties(block in block_strategy()) {
            // Value column: "The writer picks the b that makes the block smallest".
            let sizes: Vec<usize> = (0..=MAX_WIDTH)
                .map(|b| {
                    let mut out = Vec::new();
                    write_block(&block, b, &mut out);
                    out.len()
                })
                .collect();
            let smallest = *sizes.iter().min().unwrap();
            let first_smallest = sizes.iter().position(|&s| s == smallest).unwrap();
            let widths = WidthHistogram::of(&block);
            prop_assert_eq!(widths.best_width(), first_smallest);
            // And the column holds exactly that block after v_0 = 0, unless
            // a sparse block is a quarter smaller.
            let col = round_trip(&values_of(0, &block));
            match SparsePlan::of(&block, &widths, smallest) {
                Some(plan) => {
                    prop_assert!(plan.len() < smallest);
                    prop_assert_eq!(col.len(), 1 + plan.len());
                    prop_assert_eq!(col[1], SPARSE);
                }
                None => {
                    prop_assert_eq!(col.len(), 1 + smallest);
                    prop_assert_eq!(usize::from(col[1] & 0x7f), first_smallest);
                }
            }
        }

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
        fn never_larger_than_pfor_alone(values in sparse_values_strategy()) {
            // Value column: a sparse block is written only when strictly
            // smaller, so no column grows.
            let col = round_trip(&values);
            prop_assert!(col.len() <= pfor_only_len(&values));
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

        #[test]
        fn decoder_never_panics_on_random_bytes(
            col in proptest::collection::vec(any::<u8>(), 0..80),
            n in 0usize..600,
        ) {
            let mut out = Vec::new();
            if decode_values(&col, n, &mut out).is_ok() {
                prop_assert_eq!(out.len(), n);
            } else {
                prop_assert!(out.is_empty());
            }
        }

        /// The bounded decoder answers exactly what the plain decoder and a
        /// range check over its output answer, on every block kind: bounds
        /// at, just inside and just outside the values' own range, and
        /// anywhere; on damaged columns too.
        #[test]
        fn bounded_decoding_is_plain_decoding_and_a_range_check(
            values in prop_oneof![
                2 => follower_values_strategy(),
                1 => values_strategy(),
                1 => sparse_values_strategy(),
            ],
            lo_shift in prop_oneof![Just(0i64), Just(1), Just(-1), -3i64..=3, any::<i64>()],
            hi_shift in prop_oneof![Just(0i64), Just(1), Just(-1), -3i64..=3, any::<i64>()],
            flip in prop::option::of((any::<prop::sample::Index>(), 0u8..8)),
        ) {
            let mut col = encode(&values);
            if let Some((at, bit)) = flip {
                let at = at.index(col.len());
                col[at] ^= 1 << bit;
            }
            let (min, max) = (values.iter().min().unwrap(), values.iter().max().unwrap());
            let lo = min.wrapping_add_signed(lo_shift);
            let hi = max.wrapping_add_signed(hi_shift);
            let plain = decode(&col, values.len());
            let want = match plain {
                Ok(decoded) if decoded.iter().all(|v| (lo..=hi).contains(v)) => Ok(decoded),
                Ok(_) => Err(OUTSIDE_BOUNDS),
                Err(e) => Err(e),
            };
            let mut out = vec![42];
            let got = decode_values_within(&col, values.len(), lo, hi, &mut out);
            match want {
                Ok(decoded) => {
                    prop_assert_eq!(got, Ok(()));
                    prop_assert_eq!(&out[1..], decoded.as_slice());
                }
                // A column both damaged and out of bounds may report
                // either; a sound column out of bounds reports the bounds.
                Err(e) => {
                    prop_assert!(got.is_err());
                    if flip.is_none() || e == OUTSIDE_BOUNDS {
                        prop_assert_eq!(got, Err(e));
                    }
                    prop_assert_eq!(out, vec![42]);
                }
            }
        }

        /// Decoding into `i64` gives the bits decoding into `u64` gives, and
        /// the same errors, on every block kind, sound or damaged, with
        /// tight or loose bounds; on error both leave the output as it was.
        #[test]
        fn decoding_into_i64_is_decoding_into_u64(
            values in prop_oneof![
                2 => follower_values_strategy(),
                1 => values_strategy(),
                1 => sparse_values_strategy(),
            ],
            tight in any::<bool>(),
            flip in prop::option::of((any::<prop::sample::Index>(), 0u8..8)),
        ) {
            let mut col = encode(&values);
            if let Some((at, bit)) = flip {
                let at = at.index(col.len());
                col[at] ^= 1 << bit;
            }
            let (lo, hi) = if tight {
                (*values.iter().min().unwrap(), *values.iter().max().unwrap())
            } else {
                (0, u64::MAX)
            };
            let mut unsigned = vec![7u64];
            let mut signed = vec![7i64];
            let got_unsigned = decode_values_within(&col, values.len(), lo, hi, &mut unsigned);
            let got_signed = decode_values_within(&col, values.len(), lo, hi, &mut signed);
            prop_assert_eq!(got_signed, got_unsigned);
            let as_bits: Vec<u64> = signed.iter().map(|&v| v as u64).collect();
            prop_assert_eq!(as_bits, unsigned);
        }

        #[test]
        fn decoder_never_panics_on_damaged_columns(
            values in values_strategy(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
            n_offset in -2isize..=2,
        ) {
            let col = encode(&values);
            let n = values.len().saturating_add_signed(n_offset);
            let mut out = Vec::new();
            let _ = decode_values(&col[..cut.index(col.len())], n, &mut out);
            let mut flipped = col.clone();
            flipped[flip.index(col.len())] ^= 1 << bit;
            out.clear();
            if decode_values(&flipped, n, &mut out).is_ok() {
                prop_assert_eq!(out.len(), n);
            }
        }
    }
}
