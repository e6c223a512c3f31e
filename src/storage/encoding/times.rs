//! The time column (docs/format.md, "Time column"): the times of one series
//! after the first, either as a regular step with a list of exceptions
//! (mode 0) or as deltas of deltas (mode 1).
//!
//! Snapshots are taken at a fixed step, so almost every series is mode 0
//! with no exceptions: three to six bytes however many points it has. Mode 1
//! is the fallback for irregular series. The first time is the index entry's
//! `t_min` and is not part of the column.

use std::cell::RefCell;

use super::DecodeError;
use super::varint::{get_varint, put_varint, unzigzag, varint_len, zigzag};

/// Mode byte of a regular column: `varint step`, `varint e`, `e` exceptions.
const MODE_REGULAR: u8 = 0;
/// Mode byte of a delta-of-delta column: `varint d_1`, then zigzag(d_i − d_{i−1}).
const MODE_DELTA_OF_DELTA: u8 = 1;

/// Appends the time column of `times` to `out`.
///
/// `times` holds at least one time, strictly increasing. The writer picks
/// whichever mode is smaller, mode 0 on a tie, and in mode 0 takes the most
/// frequent delta (the smallest of equally frequent ones) as the step.
pub fn encode_times(times: &[i64], out: &mut Vec<u8>) {
    debug_assert!(!times.is_empty(), "a series has at least one point");
    debug_assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "times must strictly increase"
    );
    if times.len() < 2 {
        // "A one-point series is `00 00 00`": there are no deltas, and mode 1
        // cannot be used because it starts with d_1.
        out.extend_from_slice(&[MODE_REGULAR, 0, 0]);
        return;
    }
    let d_1 = delta(times[0], times[1]);
    if times.len() >= 3 && deltas(times).all(|d| d == d_1) {
        // A regular series without gaps, the common case: mode 0 is
        // `00 step 00`, and mode 1 is no shorter, since after d_1 it has a
        // byte for each of the n − 2 ≥ 1 other deltas.
        out.push(MODE_REGULAR);
        put_varint(out, d_1);
        out.push(0);
        return;
    }
    let step = most_frequent_delta(times);
    let regular = regular_len(times, step);
    // Mode 1 takes at least its mode byte, d_1 and one byte per further
    // delta; when mode 0 is no longer than that, it wins without measuring
    // mode 1 exactly. That is the common case of a regular series.
    let delta_of_delta_at_least = 1 + varint_len(d_1) + (times.len() - 2);
    if regular <= delta_of_delta_at_least || regular <= delta_of_delta_len(times) {
        write_regular(times, step, out);
    } else {
        write_delta_of_delta(times, out);
    }
}

/// The delta from `a` to `b` as the format stores it: wrapping, as a `u64`,
/// so that even `i64::MIN` to `i64::MAX` is representable.
#[inline]
fn delta(a: i64, b: i64) -> u64 {
    b.wrapping_sub(a) as u64
}

/// The deltas d_1 … d_{n−1} of `times`.
fn deltas(times: &[i64]) -> impl Iterator<Item = u64> + '_ {
    times.windows(2).map(|w| delta(w[0], w[1]))
}

thread_local! {
    /// Scratch for sorting the deltas of an irregular series, reused so that
    /// encoding many series does not allocate for each.
    static SORT_SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The most frequent delta of `times` (at least two of them), the smallest
/// one among equally frequent deltas.
fn most_frequent_delta(times: &[i64]) -> u64 {
    // Boyer–Moore majority vote: if one delta is more than half of them (any
    // regular series with a few gaps), it is the candidate, and it is then
    // the unique most frequent one. This avoids sorting in the common case.
    let mut candidate = 0;
    let mut votes = 0usize;
    for d in deltas(times) {
        if votes == 0 {
            candidate = d;
            votes = 1;
        } else if d == candidate {
            votes += 1;
        } else {
            votes -= 1;
        }
    }
    let count = deltas(times).filter(|&d| d == candidate).count();
    if 2 * count > times.len() - 1 {
        return candidate;
    }
    // No majority: count runs of the sorted deltas. Ascending order and a
    // strict comparison keep the smallest of equally frequent deltas.
    SORT_SCRATCH.with_borrow_mut(|sorted| {
        sorted.clear();
        sorted.extend(deltas(times));
        sorted.sort_unstable();
        let (mut best, mut best_count) = (0, 0);
        for run in sorted.chunk_by(|a, b| a == b) {
            if run.len() > best_count {
                best = run[0]; // `chunk_by` never yields an empty run.
                best_count = run.len();
            }
        }
        best
    })
}

/// The length of the mode 0 column of `times` with the given step.
fn regular_len(times: &[i64], step: u64) -> usize {
    let mut len = 1 + varint_len(step);
    let mut exceptions = 0;
    let mut last_position = 0;
    for (i, d) in deltas(times).enumerate() {
        if d != step {
            let position = i + 1;
            len += varint_len((position - last_position) as u64) + varint_len(d);
            last_position = position;
            exceptions += 1;
        }
    }
    len + varint_len(exceptions)
}

/// The length of the mode 1 column of `times` (at least two of them).
fn delta_of_delta_len(times: &[i64]) -> usize {
    let mut deltas = deltas(times);
    let mut previous = deltas.next().unwrap_or(0);
    let mut len = 1 + varint_len(previous);
    for d in deltas {
        len += varint_len(zigzag(d.wrapping_sub(previous) as i64));
        previous = d;
    }
    len
}

/// Writes the mode 0 column: step, exception count, then (gap, delta) pairs.
fn write_regular(times: &[i64], step: u64, out: &mut Vec<u8>) {
    out.push(MODE_REGULAR);
    put_varint(out, step);
    put_varint(out, deltas(times).filter(|&d| d != step).count() as u64);
    let mut last_position = 0;
    for (i, d) in deltas(times).enumerate() {
        if d != step {
            let position = i + 1;
            put_varint(out, (position - last_position) as u64);
            put_varint(out, d);
            last_position = position;
        }
    }
}

/// Writes the mode 1 column: d_1, then the zigzagged deltas of deltas.
fn write_delta_of_delta(times: &[i64], out: &mut Vec<u8>) {
    out.push(MODE_DELTA_OF_DELTA);
    let mut deltas = deltas(times);
    let mut previous = deltas.next().unwrap_or(0);
    put_varint(out, previous);
    for d in deltas {
        put_varint(out, zigzag(d.wrapping_sub(previous) as i64));
        previous = d;
    }
}

/// Appends the `n` times of a series to `out`, given its time column and the
/// index entry's `t_min`.
///
/// Rejects a column that does not hold exactly `n` strictly increasing
/// times (including times that would pass `i64::MAX`), an unknown mode, and
/// trailing bytes. On error `out` is left as it was.
pub fn decode_times(
    col: &[u8],
    t_min: i64,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), DecodeError> {
    let original_len = out.len();
    let result = decode_into(col, t_min, n, out);
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

fn decode_into(col: &[u8], t_min: i64, n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    if n == 0 {
        return Err(DecodeError("a series has no points"));
    }
    match col.split_first() {
        Some((&MODE_REGULAR, body)) => decode_regular(body, t_min, n, out),
        Some((&MODE_DELTA_OF_DELTA, body)) => decode_delta_of_delta(body, t_min, n, out),
        Some(_) => Err(DecodeError("unknown time column mode")),
        None => Err(DecodeError("time column is empty")),
    }
}

/// Reads the next exception of a mode 0 column and checks its position,
/// returning (position, delta). Positions are 1 … `last`, increasing.
#[inline]
fn next_exception(
    body: &[u8],
    pos: &mut usize,
    previous_position: usize,
    last: usize,
) -> Result<(usize, u64), DecodeError> {
    let gap = get_varint(body, pos)?;
    let delta = get_varint(body, pos)?;
    // `previous_position <= last` holds on entry, so the subtraction cannot wrap.
    if gap == 0 || gap > (last - previous_position) as u64 {
        return Err(DecodeError(
            "time exception positions do not increase within the series",
        ));
    }
    // The gap is at most `last - previous_position`, a usize, so this fits.
    Ok((previous_position + gap as usize, delta))
}

/// Advances `t` by `count` steps, checking that every time in between is
/// strictly greater than the one before and none passes `i64::MAX`.
#[inline]
fn advance(t: i64, step: u64, count: usize, then: u64) -> Result<i64, DecodeError> {
    // A u64 times a usize (at most 64 bits each) plus a u64 fits in u128.
    let span = u128::from(step) * count as u128 + u128::from(then);
    if (count > 0 && step == 0) || then == 0 {
        return Err(DecodeError("time column has a delta of zero"));
    }
    // `t <= i64::MAX`, so the room is not negative.
    let room = (i128::from(i64::MAX) - i128::from(t)) as u128;
    if span > room {
        return Err(DecodeError("time column runs past the largest time"));
    }
    // `span <= room`, so the sum lies in `t ..= i64::MAX`.
    Ok((i128::from(t) + span as i128) as i64)
}

/// Appends `t + step·1`, …, `t + step·count` to `out` and returns the last
/// time appended (or `t`). The caller has checked that none overflows.
#[inline]
fn fill_regular(out: &mut Vec<i64>, t: i64, step: u64, count: usize) -> i64 {
    // Wrapping arithmetic because the step itself may exceed i64::MAX when
    // count is 1 (from near i64::MIN to near i64::MAX); the results are
    // exact since the caller checked they lie in range.
    let step = step as i64;
    // A running sum in a plain loop over zeroed slots: the compiler keeps it
    // in vector registers as an induction variable. The alternatives
    // measured slower: t + step·j needs a 64-bit vector multiply, which
    // SSE2 lacks, and a stateful iterator or extend_from_slice of a lane
    // array kept the sum in memory.
    let base = out.len();
    out.resize(base + count, 0);
    let mut next = t;
    // `out` was just resized past base.
    for slot in &mut out[base..] {
        next = next.wrapping_add(step);
        *slot = next;
    }
    next
}

fn decode_regular(
    body: &[u8],
    t_min: i64,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), DecodeError> {
    let mut pos = 0;
    let step = get_varint(body, &mut pos)?;
    let exceptions = get_varint(body, &mut pos)?;
    let last = n - 1; // n >= 1, checked by the caller.
    if exceptions > last as u64 {
        return Err(DecodeError("time column has more exceptions than deltas"));
    }
    // `exceptions <= last`, a usize.
    let exceptions = exceptions as usize;
    let first_exception = pos;

    // First pass: check every exception and that the times increase and
    // stay in range, before growing `out` by up to n (which the index entry
    // vouches for, but a damaged column must not make us allocate it).
    let mut t = t_min;
    let mut previous_position = 0;
    for _ in 0..exceptions {
        let (position, delta) = next_exception(body, &mut pos, previous_position, last)?;
        t = advance(t, step, position - previous_position - 1, delta)?;
        previous_position = position;
    }
    let tail = last - previous_position;
    if tail > 0 {
        advance(t, step, tail - 1, step)?;
    }
    if pos != body.len() {
        return Err(DecodeError("trailing bytes after the time column"));
    }

    // Second pass: fill. Every check above passed, so nothing here can fail
    // or overflow; the `?` only repeats reads that already succeeded.
    out.reserve(n);
    out.push(t_min);
    let mut t = t_min;
    let mut pos = first_exception;
    let mut previous_position = 0;
    for _ in 0..exceptions {
        let (position, delta) = next_exception(body, &mut pos, previous_position, last)?;
        t = fill_regular(out, t, step, position - previous_position - 1);
        t = t.wrapping_add(delta as i64);
        out.push(t);
        previous_position = position;
    }
    fill_regular(out, t, step, last - previous_position);
    Ok(())
}

fn decode_delta_of_delta(
    body: &[u8],
    t_min: i64,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), DecodeError> {
    if n < 2 {
        return Err(DecodeError("a one-point time column must be mode 0"));
    }
    // Each of the n − 1 varints takes at least a byte; checking this first
    // bounds what we reserve by the column's length.
    if body.len() < n - 1 {
        return Err(DecodeError("time column is shorter than its point count"));
    }
    let mut pos = 0;
    let mut d = get_varint(body, &mut pos)?;
    out.reserve(n);
    out.push(t_min);
    let mut t = t_min.wrapping_add(d as i64);
    // With d read as a u64 of at least 1, `t + d` is in range exactly when
    // the wrapped sum is greater than `t`; d = 0 gives an equal time. So one
    // comparison per point checks both order and overflow.
    let mut increasing = t > t_min;
    out.push(t);
    for _ in 2..n {
        let z = get_varint(body, &mut pos)?;
        d = d.wrapping_add(unzigzag(z) as u64);
        let next = t.wrapping_add(d as i64);
        increasing &= next > t;
        t = next;
        out.push(t);
    }
    if !increasing {
        return Err(DecodeError("times in the column do not strictly increase"));
    }
    if pos != body.len() {
        return Err(DecodeError("trailing bytes after the time column"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: i64 = 3_600_000;

    fn encode(times: &[i64]) -> Vec<u8> {
        let mut col = Vec::new();
        encode_times(times, &mut col);
        col
    }

    fn decode(col: &[u8], t_min: i64, n: usize) -> Result<Vec<i64>, DecodeError> {
        let mut out = vec![42]; // decoders append; this must survive
        decode_times(col, t_min, n, &mut out)?;
        assert_eq!(out[0], 42);
        Ok(out.split_off(1))
    }

    fn round_trip(times: &[i64]) -> Vec<u8> {
        let col = encode(times);
        assert_eq!(decode(&col, times[0], times.len()).as_deref(), Ok(times));
        col
    }

    fn regular(start: i64, step: i64, n: usize) -> Vec<i64> {
        (0..n as i64).map(|i| start + i * step).collect()
    }

    #[test]
    fn one_point_series_is_00_00_00() {
        // Time column: "A one-point series is `00 00 00`."
        for t in [0, -1, i64::MIN, i64::MAX] {
            assert_eq!(round_trip(&[t]), [0, 0, 0]);
        }
    }

    #[test]
    fn regular_series_is_mode_0_with_no_exceptions() {
        // Time column: a regular series costs three bytes plus the step.
        let col = round_trip(&regular(1_700_000_000_000, HOUR, 720));
        assert_eq!(col, [0, 0x80, 0xdd, 0xdb, 0x01, 0]);
        assert_eq!(round_trip(&regular(0, 1, 3)), [0, 1, 0]);
    }

    #[test]
    fn two_point_series_picks_mode_1_because_it_is_smaller() {
        // "A writer picks the smaller of the two": with one delta, mode 1
        // (mode, d_1) is a byte shorter than mode 0 (mode, step, e = 0).
        assert_eq!(round_trip(&[10, 15]), [1, 5]);
    }

    #[test]
    fn tie_between_modes_picks_mode_0() {
        // Three regular points: mode 0 is `00 step 00`, mode 1 is `01 d 00`.
        assert_eq!(round_trip(&[0, 7, 14]), [0, 7, 0]);
    }

    #[test]
    fn gaps_are_exceptions_at_their_positions() {
        // Mode 0: "the first exception's gap is its position, each following
        // gap is its position minus the previous position".
        let times = [0, 10, 30, 40, 50, 70, 80];
        let col = round_trip(&times);
        assert_eq!(col, [0, 10, 2, 2, 20, 3, 20]);
    }

    #[test]
    fn irregular_series_picks_mode_1() {
        let times = [0, 1, 3, 6, 10, 15, 21];
        assert_eq!(round_trip(&times), [1, 1, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn step_is_the_most_frequent_delta_smallest_on_ties() {
        // No delta is a majority; 5 and 3 are each twice: the step is 3.
        let times = [0, 5, 10, 13, 16, 116, 216];
        assert_eq!(most_frequent_delta(&times), 3);
        // 100 is also twice, but 3 is smaller.
        let times = [0, 100, 200, 203, 206];
        assert_eq!(most_frequent_delta(&times), 3);
    }

    #[test]
    fn extremes_of_i64_round_trip() {
        // Conventions: differences are wrapping, so every i64 input round-trips.
        round_trip(&[i64::MIN, i64::MAX]);
        round_trip(&[i64::MIN, 0, i64::MAX]);
        round_trip(&[i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX]);
        round_trip(&regular(i64::MAX - 100 * HOUR, HOUR, 101));
        round_trip(&regular(i64::MIN, HOUR, 101));
        let mut times = regular(i64::MIN, 1, 10);
        times.push(i64::MAX);
        round_trip(&times);
    }

    #[test]
    fn rejects_times_past_i64_max() {
        // [C1]
        // Mode 0, step 1 from i64::MAX − 1: the third time would wrap.
        assert!(decode(&[0, 1, 0], i64::MAX - 1, 3).is_err());
        assert!(decode(&[0, 1, 0], i64::MAX - 1, 2).is_ok());
        // An exception that wraps.
        assert!(decode(&[0, 1, 1, 1, 2], i64::MAX - 1, 2).is_err());
        // Mode 1, d_1 = u64::MAX from 0 wraps to −1.
        let mut col = vec![1];
        put_varint(&mut col, u64::MAX);
        assert!(decode(&col, 0, 2).is_err());
        assert_eq!(decode(&col, i64::MIN, 2), Ok(vec![i64::MIN, i64::MAX]));
    }

    #[test]
    fn rejects_deltas_of_zero() {
        // [C1]
        // "The deltas ... are all positive."
        assert!(decode(&[0, 0, 0], 5, 2).is_err());
        assert!(decode(&[0, 1, 1, 1, 0], 5, 2).is_err());
        assert!(decode(&[1, 0], 5, 2).is_err());
        assert!(decode(&[1, 2, 3], 5, 3).is_err(), "d_2 = 2 − 2 = 0");
        // A step of zero is fine when every delta is an exception.
        assert_eq!(decode(&[0, 0, 1, 1, 4], 5, 2), Ok(vec![5, 9]));
    }

    #[test]
    fn rejects_bad_exception_positions() {
        // [C1]
        // Gap 0, and a position past n − 1.
        assert!(decode(&[0, 1, 1, 0, 4], 0, 3).is_err());
        assert!(decode(&[0, 1, 1, 3, 4], 0, 3).is_err());
        // More exceptions than deltas.
        assert!(decode(&[0, 1, 3, 1, 4, 1, 4, 1, 4], 0, 3).is_err());
        assert_eq!(decode(&[0, 1, 2, 1, 4, 1, 4], 0, 3), Ok(vec![0, 4, 8]));
    }

    #[test]
    fn rejects_bad_framing() {
        // [C1]
        assert!(decode(&[], 0, 1).is_err(), "empty column");
        assert!(decode(&[2, 0, 0], 0, 1).is_err(), "unknown mode");
        assert!(decode(&[0, 0, 0, 0], 0, 1).is_err(), "trailing byte");
        assert!(decode(&[1, 5, 0], 0, 2).is_err(), "trailing byte");
        assert!(decode(&[0, 0], 0, 1).is_err(), "truncated");
        assert!(decode(&[1], 0, 1).is_err(), "mode 1 needs two points");
        assert!(decode(&[1, 5], 0, 3).is_err(), "truncated mode 1");
        assert!(decode(&[0, 0, 0], 0, 0).is_err(), "no points");
    }

    #[test]
    fn huge_point_count_on_a_short_column_fails_without_allocating() {
        // n comes from the index entry; a damaged column must not make the
        // decoder reserve n points before it knows the column is sound.
        let n = u32::MAX as usize;
        assert!(decode(&[0, 0, 0], 0, n).is_err());
        assert!(decode(&[0, 1, 0], i64::MAX - 5, n).is_err());
        assert!(decode(&[1, 1, 0, 0], 0, n).is_err());
    }

    #[test]
    fn error_leaves_out_unchanged() {
        let mut out = vec![1, 2, 3];
        // Mode 1 decodes two points before it finds the trailing byte.
        assert!(decode_times(&[1, 5, 0, 9], 0, 3, &mut out).is_err());
        assert_eq!(out, [1, 2, 3]);
    }

    /// Strictly increasing times: a start and positive deltas of mixed
    /// shapes, as i128 so that the sum can be clamped into i64.
    fn times_strategy() -> impl Strategy<Value = Vec<i64>> {
        let start = prop_oneof![
            Just(i64::MIN),
            Just(0i64),
            any::<i64>(),
            (i64::MAX - 1_000_000)..=i64::MAX,
            (i64::MIN..=i64::MIN + 1_000_000),
        ];
        let delta = prop_oneof![
            8 => Just(HOUR as u64),
            1 => 1u64..=10,
            1 => 1u64..=100 * HOUR as u64,
            1 => 1u64..=u64::MAX,
        ];
        (start, proptest::collection::vec(delta, 0..700)).prop_map(|(start, deltas)| {
            let mut times = vec![start];
            let mut t = i128::from(start);
            for d in deltas {
                t += i128::from(d);
                if t > i128::from(i64::MAX) {
                    break;
                }
                times.push(t as i64);
            }
            times
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_times_round_trip(times in times_strategy()) {
            round_trip(&times);
        }

        #[test]
        fn regular_series_with_gaps_round_trip_in_mode_0(
            start in -1_000_000 * HOUR..1_000_000 * HOUR,
            n in 3usize..2000,
            gaps in proptest::collection::vec((0usize..2000, 1i64..100), 0..5),
        ) {
            let mut times = regular(start, HOUR, n);
            for (at, skip) in gaps {
                if at < times.len() {
                    for t in &mut times[at..] {
                        *t += skip * HOUR;
                    }
                }
            }
            let col = round_trip(&times);
            // A few gaps in a long regular series: mode 0 always wins.
            prop_assert_eq!(col[0], MODE_REGULAR);
        }

        #[test]
        fn encoder_picks_the_smaller_mode(times in times_strategy()) {
            // "A writer picks the smaller of the two (mode 0 on a tie)."
            if times.len() < 2 {
                prop_assert_eq!(encode(&times), vec![0, 0, 0]);
                return Ok(());
            }
            let mut mode0 = Vec::new();
            write_regular(&times, most_frequent_delta(&times), &mut mode0);
            let mut mode1 = Vec::new();
            write_delta_of_delta(&times, &mut mode1);
            prop_assert_eq!(mode0.len(), regular_len(&times, most_frequent_delta(&times)));
            prop_assert_eq!(mode1.len(), delta_of_delta_len(&times));
            let chosen = encode(&times);
            let expected = if mode0.len() <= mode1.len() { mode0 } else { mode1 };
            prop_assert_eq!(chosen, expected);
        }

        #[test]
        fn decoder_never_panics_on_random_bytes(
            col in proptest::collection::vec(any::<u8>(), 0..64),
            t_min in any::<i64>(),
            n in 0usize..100,
        ) {
            let mut out = Vec::new();
            if decode_times(&col, t_min, n, &mut out).is_ok() {
                prop_assert_eq!(out.len(), n);
                prop_assert_eq!(out[0], t_min);
                prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
            } else {
                prop_assert!(out.is_empty());
            }
        }

        #[test]
        fn decoder_never_panics_on_damaged_columns(
            times in times_strategy(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
            n_offset in -2isize..=2,
        ) {
            let col = encode(&times);
            let n = times.len().saturating_add_signed(n_offset);
            let mut out = Vec::new();
            // Truncated.
            let _ = decode_times(&col[..cut.index(col.len())], times[0], n, &mut out);
            // One bit flipped.
            let mut flipped = col.clone();
            flipped[flip.index(col.len())] ^= 1 << bit;
            out.clear();
            if decode_times(&flipped, times[0], n, &mut out).is_ok() {
                prop_assert_eq!(out.len(), n);
                prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
