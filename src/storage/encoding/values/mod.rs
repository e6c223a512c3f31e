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
//!
//! This module is the column's framing, v_0 then blocks of 256 deltas, and
//! the writer's choice of a block's kind; [`decode_values_within`] checks
//! that the blocks cover exactly the n − 1 deltas with no bytes after the
//! last ([C2]) and that every value lies within the index entry's bounds
//! ([S2]). Each kind of block has its module: `pfor` (bit-packed, with
//! exceptions, [C2]) and `sparse` (Rice-coded non-zero deltas, [C3]),
//! whose codes are in `rice`.

use super::DecodeError;
use super::varint::{get_varint, put_varint, zigzag};

mod pfor;
mod rice;
mod sparse;

pub use pfor::UnpackFn;
use pfor::{PACKED_SCRATCH, WidthHistogram, unpack, unpackers, write_block};
use sparse::{SPARSE, SparsePlan, decode_sparse};

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

/// The widest a block can be packed: every delta is a `u64`.
const MAX_WIDTH: usize = 64;

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

/// Appends the first value and then the `n − 1` deltas of a value column
/// to `out`, instead of the values: `out[0]` is `v_0` and `out[i]` is
/// `v_i − v_{i−1}` (wrapping), so the values are `out`'s running sums.
///
/// A head's chunk column holds running sums of differences ("Head file"),
/// so this gives the differences themselves, without summing them into
/// values only to subtract neighbours again. The column is checked exactly
/// as [`decode_values`] checks it. On error `out` is left as it was.
pub fn decode_deltas(col: &[u8], n: usize, out: &mut Vec<u64>) -> Result<(), DecodeError> {
    decode_into::<u64, false>(col, n, Bounds::EVERYTHING, out)
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
    decode_into::<W, true>(col, n, Bounds { lo, span }, out)
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
    /// Bounds that admit every value.
    const EVERYTHING: Bounds = Bounds {
        lo: 0,
        span: u64::MAX,
    };

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

/// Decodes a column into `out`: its values when `SUMS`, otherwise `v_0`
/// and its deltas ([`decode_deltas`], whose bounds admit everything). On
/// error `out` is left as it was.
fn decode_into<W: Word, const SUMS: bool>(
    col: &[u8],
    n: usize,
    bounds: Bounds,
    out: &mut Vec<W>,
) -> Result<(), DecodeError> {
    let original_len = out.len();
    let result = decode_column::<W, SUMS>(col, n, bounds, out);
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

/// [`decode_into`] without the restoring of `out` on error.
fn decode_column<W: Word, const SUMS: bool>(
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
        v = decode_block::<W, SUMS>(col, &mut pos, len, v, bounds, out, &mut scratch)?;
        left -= len;
    }
    if pos != col.len() {
        return Err(DecodeError("trailing bytes after the last value block"));
    }
    Ok(())
}

/// Decodes one block of `len` deltas at `col[*pos..]`, appending the values
/// that follow `v` to `out` (the deltas themselves unless `SUMS`); returns
/// the last value.
#[inline]
fn decode_block<W: Word, const SUMS: bool>(
    col: &[u8],
    pos: &mut usize,
    len: usize,
    v: u64,
    bounds: Bounds,
    out: &mut Vec<W>,
    scratch: &mut Option<[u8; PACKED_SCRATCH]>,
) -> Result<u64, DecodeError> {
    if col.get(*pos) == Some(&SPARSE) {
        *pos += 1;
        return decode_sparse::<W, SUMS>(col, pos, len, v, bounds, out);
    }
    pfor::decode_block::<W, SUMS>(col, pos, len, v, bounds, out, scratch)
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
    use super::super::varint::{unzigzag, varint_len};
    use super::*;
    use proptest::prelude::*;

    pub(super) fn encode(values: &[u64]) -> Vec<u8> {
        let mut col = Vec::new();
        encode_values(values, &mut col);
        col
    }

    pub(super) fn decode(col: &[u8], n: usize) -> Result<Vec<u64>, DecodeError> {
        let mut out = vec![42]; // decoders append; this must survive
        decode_values(col, n, &mut out)?;
        assert_eq!(out[0], 42);
        Ok(out.split_off(1))
    }

    pub(super) fn round_trip(values: &[u64]) -> Vec<u8> {
        let col = encode(values);
        assert_eq!(decode(&col, values.len()).as_deref(), Ok(values));
        col
    }

    /// A column of v_0 = 0 followed by the given block bytes.
    pub(super) fn column(blocks: &[u8]) -> Vec<u8> {
        let mut col = vec![0];
        col.extend_from_slice(blocks);
        col
    }

    /// The values that start at `v0` and move by the zigzagged deltas `block`.
    pub(super) fn values_of(v0: u64, block: &[u64]) -> Vec<u64> {
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
    pub(super) fn pfor_only_len(values: &[u64]) -> usize {
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

    /// A small deterministic generator for the exhaustive tests.
    pub(super) struct XorShift(pub(super) u64);

    impl XorShift {
        pub(super) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Values like an account's hourly follower counts: in each hour, with
    /// probability `moves`, the count moves by 1 ..= `spread`.
    pub(super) fn follower_like(rng: &mut XorShift, n: usize, moves: f64, spread: u64) -> Vec<u64> {
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
    fn one_point_series_is_just_v0() {
        assert_eq!(round_trip(&[0]), [0]);
        assert_eq!(round_trip(&[u64::MAX]).len(), 10);
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
    pub(super) fn block_strategy() -> impl Strategy<Value = Vec<u64>> {
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
    pub(super) fn sparse_block_strategy() -> impl Strategy<Value = Vec<u64>> {
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
    pub(super) fn sparse_values_strategy() -> impl Strategy<Value = Vec<u64>> {
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
        fn never_larger_than_pfor_alone(values in sparse_values_strategy()) {
            // Value column: a sparse block is written only when strictly
            // smaller, so no column grows.
            let col = round_trip(&values);
            prop_assert!(col.len() <= pfor_only_len(&values));
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

        /// Decoding the deltas gives `v_0` and the steps between the values
        /// decoding the values gives, and the same errors, on every block
        /// kind, sound or damaged; on error the output is as it was.
        #[test]
        fn decoding_deltas_is_decoding_values_and_differencing(
            values in prop_oneof![
                2 => follower_values_strategy(),
                1 => values_strategy(),
                1 => sparse_values_strategy(),
            ],
            flip in prop::option::of((any::<prop::sample::Index>(), 0u8..8)),
            n_offset in prop_oneof![4 => Just(0isize), 1 => -2isize..=2],
        ) {
            let mut col = encode(&values);
            if let Some((at, bit)) = flip {
                let at = at.index(col.len());
                col[at] ^= 1 << bit;
            }
            let n = values.len().saturating_add_signed(n_offset);
            let mut want = vec![7u64];
            let plain = decode_values(&col, n, &mut want);
            let mut deltas = vec![7u64];
            let got = decode_deltas(&col, n, &mut deltas);
            prop_assert_eq!(got, plain);
            if plain.is_ok() {
                let mut sums = vec![7u64];
                let mut v = 0u64;
                for &d in &deltas[1..] {
                    v = v.wrapping_add(d);
                    sums.push(v);
                }
                prop_assert_eq!(sums, want);
            } else {
                prop_assert_eq!(deltas, vec![7]);
            }
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
