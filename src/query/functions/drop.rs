//! `drop(SERIES, THRESHOLD, WINDOW)`: the episodes in which a series fell
//! by at least THRESHOLD below the highest value of the preceding WINDOW.
//!
//! For point i, the window is the points j with `t_i - WINDOW <= t_j < t_i`
//! (the point itself excluded) and the peak p(i) is the window's largest
//! value, the latest of equal ones. Point i qualifies when
//! `loss_i = v_peak - v_i` is positive and reaches the threshold. An episode
//! is a maximal run of consecutive qualifying points: it starts at the peak of
//! its first point and ends at its lowest point, the earliest of equal ones.
//! [`DropFinder`] finds them in one pass with a monotonic deque, skipping
//! the stretches where the series does not fall from one point to the next
//! (no point there can qualify) with a scan instead of the deque.

use super::monotonic::{DequeMemory, Point};
use super::{Threshold, same_len, window_start_fits};

/// One fall of a series, as `drop()` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    /// The time of the peak the fall started from, in milliseconds.
    pub start: i64,
    /// The time of the lowest point of the fall, in milliseconds.
    pub end: i64,
    /// The value at `start`.
    pub before: i64,
    /// The value at `end`.
    pub after: i64,
    /// `before - after`, saturating (it cannot overflow for counts).
    pub lost: i64,
    /// `100 · lost / before` in hundredths of a percent, rounded half away
    /// from zero: 1234 means 12.34%. It is 0 when `before` is 0, which
    /// cannot happen for counts (a count cannot fall below 0); for a derived
    /// series with negative values the formula is applied as written.
    pub lost_pct_hundredths: i64,
}

impl Episode {
    /// The episode of a run that started from `peak` and bottomed out at
    /// `trough`.
    fn new(peak: Point, trough: Point) -> Episode {
        Episode {
            start: peak.time,
            end: trough.time,
            before: peak.value,
            after: trough.value,
            lost: peak.value.saturating_sub(trough.value),
            lost_pct_hundredths: lost_pct_hundredths(peak.value, trough.value),
        }
    }
}

/// `100 · (before - after) / before` in hundredths of a percent, rounded half
/// away from zero, computed exactly in i128 (the difference needs 65 bits at
/// most, times 10 000 fits easily). 0 when `before` is 0.
fn lost_pct_hundredths(before: i64, after: i64) -> i64 {
    let num = 10_000 * (i128::from(before) - i128::from(after));
    let den = i128::from(before);
    if den == 0 {
        return 0;
    }
    let (q, r) = (num / den, num % den);
    // Rust's division truncates toward zero, so rounding half away from zero
    // moves the quotient one step further from zero when the remainder is at
    // least half the divisor. The quotient's sign is that of num · den.
    let rounded = if 2 * r.abs() >= den.abs() {
        if (num < 0) == (den < 0) { q + 1 } else { q - 1 }
    } else {
        q
    };
    // Only a derived series with a tiny `before` and a huge fall can get past
    // the i64 range; report the nearest representable percentage.
    i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
}

/// The smallest loss that reaches the threshold from a peak of `peak`,
/// never less than 1 (a point qualifies only when it lost something).
///
/// For an absolute threshold T that is max(T, 1). For P% it is the smallest
/// integer loss with `100 · loss >= P · peak`, i.e. with P = mantissa /
/// 10^scale, `100 · 10^scale · loss >= mantissa · peak`: ceil(mantissa · peak /
/// (100 · 10^scale)) when peak > 0, and 1 when peak <= 0 (then any positive
/// loss reaches it, since mantissa >= 0). This is exact for every input:
/// mantissa · peak < 2^127 fits in i128, and a scale too large for i128 gives
/// a divisor of i128::MAX, which yields the same ceiling (1) as the true one.
fn min_loss(threshold: Threshold, peak: i64) -> i128 {
    match threshold {
        Threshold::Absolute(at_least) => i128::from(at_least.max(1)),
        Threshold::Percent(percent) => {
            if peak <= 0 {
                return 1;
            }
            let divisor = percent.factor();
            let dividend = i128::from(percent.mantissa) * i128::from(peak);
            // Both are positive or zero here, so the ceiling is the
            // quotient plus one when there is a remainder. A 64-bit division
            // is several times faster than a 128-bit one, and is all that
            // realistic percentages and counts need.
            let ceiling = match (u64::try_from(dividend), u64::try_from(divisor)) {
                (Ok(dividend), Ok(divisor)) => i128::from(dividend.div_ceil(divisor)),
                _ => dividend / divisor + i128::from(dividend % divisor != 0),
            };
            ceiling.max(1)
        }
    }
}

/// The qualifying bound for a peak: a point qualifies against `peak` exactly
/// when its value is below the bound, i.e. at most `peak - min_loss`. When
/// even i64::MIN is too high the bound saturates to i64::MIN, which no value
/// is below: nothing qualifies, as is exact.
///
/// Kept out of line: the finder calls it only for percentages too precise
/// for [`LossTest`]'s multiplications, and its divisions would otherwise
/// crowd the loop that calls it.
#[inline(never)]
fn bound_below(threshold: Threshold, peak: i64) -> i64 {
    let bound = i128::from(peak) - min_loss(threshold, peak) + 1;
    // min_loss >= 1, so the bound is at most `peak` and only the lower
    // saturation can apply.
    i64::try_from(bound).unwrap_or(i64::MIN)
}

/// Whether a loss reaches the threshold, decided from the peak and the
/// value below it, set up once per series.
///
/// Only the points below their peak are tested, and on follower counts
/// nearly each of them has a peak of its own (the point before), so the
/// test is a couple of multiplications rather than the division of
/// [`bound_below`], which is kept for the percentages too precise for them.
#[derive(Debug, Clone, Copy)]
enum LossTest {
    /// The loss must be at least this (at least 1).
    AtLeast(u64),
    /// `factor · loss >= mantissa · peak` (the [Q20c] test for P% =
    /// mantissa / 10^scale, with factor = 100 · 10^scale), both factors
    /// fitting in 64 bits.
    Percent { factor: u64, mantissa: u64 },
    /// A percentage whose factor needs more than 64 bits (a scale of 18 or
    /// more, which the parser never produces): through [`bound_below`].
    Exact(Threshold),
}

impl LossTest {
    fn new(threshold: Threshold) -> LossTest {
        match threshold {
            Threshold::Absolute(at_least) => LossTest::AtLeast(at_least.max(1)),
            Threshold::Percent(percent) => match u64::try_from(percent.factor()) {
                Ok(factor) => LossTest::Percent {
                    factor,
                    mantissa: percent.mantissa,
                },
                Err(_) => LossTest::Exact(threshold),
            },
        }
    }

    /// Whether the fall from `peak` to `value` (`value < peak`) reaches the
    /// threshold.
    #[inline(always)]
    fn reached(self, peak: i64, value: i64) -> bool {
        // value < peak, so the loss is in 1 ..= 2^64 - 1: exact as a u64,
        // which the wrapping subtraction gives.
        let loss = peak.wrapping_sub(value) as u64;
        match self {
            LossTest::AtLeast(at_least) => loss >= at_least,
            LossTest::Percent { factor, mantissa } => match u64::try_from(peak) {
                // Products of two 64-bit numbers fit in 128 bits: exact.
                Ok(peak) => {
                    u128::from(factor) * u128::from(loss) >= u128::from(mantissa) * u128::from(peak)
                }
                // A peak below zero: any positive loss reaches a share of it
                // (mantissa · peak <= 0 < factor · loss, as factor >= 100).
                Err(_) => true,
            },
            LossTest::Exact(threshold) => value < bound_below(threshold, peak),
        }
    }
}

/// Finds the drop episodes of series after series, reusing its scratch
/// memory: once it has seen the longest series, [`find`](Self::find)
/// allocates nothing (beyond growing the caller's output vector).
#[derive(Debug, Clone, Default)]
pub struct DropFinder {
    deque: DequeMemory,
}

impl DropFinder {
    /// A finder with no scratch memory yet.
    pub fn new() -> DropFinder {
        DropFinder::default()
    }

    /// Appends to `out` the episodes of the series (`times` strictly
    /// increasing, `values` of the same length) in time order.
    ///
    /// `window_ms` is WINDOW in milliseconds; a window of 0 or less is empty
    /// for every point, so nothing qualifies. An absolute threshold of 0 is
    /// taken as 1, since a point qualifies only when it lost something.
    pub fn find(
        &mut self,
        times: &[i64],
        values: &[i64],
        threshold: Threshold,
        window_ms: i64,
        out: &mut Vec<Episode>,
    ) {
        let (times, values) = same_len(times, values);
        if times.is_empty() || window_ms <= 0 {
            // [t - W, t) is empty for every point: nothing qualifies.
            return;
        }
        if window_start_fits(times, window_ms) {
            self.find_in(times, values, threshold, out, |time| {
                time.wrapping_sub(window_ms)
            });
        } else {
            self.find_in(times, values, threshold, out, |time| {
                time.saturating_sub(window_ms)
            });
        }
    }

    /// The loop of [`find`](Self::find); `window_start(t)` is `t - W`.
    #[inline(always)]
    fn find_in(
        &mut self,
        times: &[i64],
        values: &[i64],
        threshold: Threshold,
        out: &mut Vec<Episode>,
        window_start: impl Fn(i64) -> i64,
    ) {
        let mut deque = self.deque.deque(times.len());
        let test = LossTest::new(threshold);

        // The run of qualifying points in progress, if `in_run`: the peak of
        // its first point and its lowest point so far.
        let mut in_run = false;
        let mut run_peak = Point::default();
        let mut trough = Point::default();

        let mut i = 0;
        while let (Some(&time), Some(&value)) = (times.get(i), values.get(i)) {
            // The window is [time - W, time): drop what is older than its
            // start. The current point is not in the deque yet, which is
            // what excludes it from its own window.
            deque.expire_before(window_start(time));
            let here = Point { time, value };
            match deque.front() {
                // No loss, no qualification: most points stop at this first,
                // cheap test, before the bound is looked at.
                Some(peak) if value < peak.value => {
                    if test.reached(peak.value, value) {
                        if !in_run {
                            in_run = true;
                            run_peak = peak;
                            trough = here;
                        } else if value < trough.value {
                            // Strictly lower only: the earliest of equal lows.
                            trough = here;
                        }
                    } else if in_run {
                        push_episode(out, run_peak, trough);
                        in_run = false;
                    }
                    deque.push_max(here);
                    i += 1;
                }
                // The point is at least every value in its window (or the
                // window is empty), so it would push every point out of the
                // deque: start the deque afresh with it. On a flat or rising
                // series this is nearly every point.
                _ => {
                    if in_run {
                        push_episode(out, run_peak, trough);
                        in_run = false;
                    }
                    // Every following point up to the next fall from one
                    // point to the next takes this branch too: the deque
                    // holds only the previous point (or nothing, once that
                    // has left the window), and the point is at least as
                    // high. So none of them qualifies, and after them the
                    // deque holds only the last of them. A scan for the
                    // next fall replaces the loop over them; on follower
                    // counts, where about 4% of consecutive points fall (on
                    // the generated 35,000-account data), it skips nearly
                    // every point.
                    let next = next_fall(values, i);
                    // next > i, so next - 1 is i or a later point of the
                    // series: both lookups succeed.
                    let last = next - 1;
                    let (Some(&time), Some(&value)) = (times.get(last), values.get(last)) else {
                        break;
                    };
                    deque.reset_to(Point { time, value });
                    i = next;
                }
            }
        }
        if in_run {
            push_episode(out, run_peak, trough);
        }
    }
}

/// The first index k > i with `values[k] < values[k - 1]`, or
/// `values.len()` when the values never fall after i.
///
/// Eight pairs are compared per step with no branch between them, so the
/// long rising or flat stretches of follower counts cost one branch per
/// eight points rather than one per point.
#[inline]
fn next_fall(values: &[i64], i: usize) -> usize {
    let mut k = i;
    while let Some(w) = values.get(k..).and_then(|rest| rest.first_chunk::<9>()) {
        let mut fall = false;
        for j in 0..8 {
            fall |= w[j + 1] < w[j];
        }
        if fall {
            break;
        }
        k += 8;
    }
    // At most eight pairs in front of a fall, or the last few of the series.
    while let (Some(&a), Some(&b)) = (values.get(k), values.get(k + 1)) {
        if b < a {
            return k + 1;
        }
        k += 1;
    }
    values.len()
}

/// Appends the episode of a finished run. Kept out of line: it runs about
/// once per series, and inlined, its 128-bit division would take registers
/// from the loop around it.
#[inline(never)]
fn push_episode(out: &mut Vec<Episode>, peak: Point, trough: Point) {
    out.push(Episode::new(peak, trough));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::Percent;
    use super::*;

    proptest! {
        /// The precomputed bound answers exactly what the contract's
        /// `Percent::reached(loss, peak)` answers, wherever the loss fits in
        /// an i64 (the domain of `reached`).
        #[test]
        fn the_bound_agrees_with_percent_reached(
            peak in prop_oneof![any::<i64>(), 0i64..2_000_000_000_000, -5i64..5],
            value in any::<i64>(),
            near in -3i64..=3,
            mantissa in prop_oneof![0u64..=200, 0u64..1_000_000_000, any::<u64>()],
            scale in 0u32..=6,
        ) {
            let percent = Percent { mantissa, scale };
            let threshold = Threshold::Percent(percent);
            // The loss just reaching P% of the peak, give or take `near`:
            // the interesting values are at the boundary.
            let exact = i128::from(mantissa) * i128::from(peak) / percent.factor();
            let boundary = i64::try_from(i128::from(peak) - exact + i128::from(near)).ok();
            for value in [Some(value), boundary].into_iter().flatten() {
                if let Some(loss) = peak.checked_sub(value) {
                    prop_assert_eq!(
                        value < bound_below(threshold, peak),
                        loss > 0 && percent.reached(loss, peak),
                        "peak {} value {} percent {:?}", peak, value, percent
                    );
                }
            }
        }

        /// The finder's per-point test answers what the bound answers, for
        /// every peak and value below it, on both sides of the 64-bit factor
        /// limit and at the edges of the i64 range.
        #[test]
        fn the_loss_test_agrees_with_the_bound(
            peak in prop_oneof![any::<i64>(), 0i64..2_000_000, Just(i64::MAX), Just(0), -3i64..3],
            below in prop_oneof![1u64..1000, any::<u64>()],
            mantissa in prop_oneof![0u64..=200, any::<u64>()],
            scale in prop_oneof![0u32..=6, 16u32..=19, 0u32..=40],
            at_least in prop_oneof![0u64..10, any::<u64>()],
        ) {
            // Any value below the peak, down to i64::MIN.
            let value = peak.saturating_sub_unsigned(below);
            prop_assume!(value < peak);
            for threshold in [
                Threshold::Percent(Percent { mantissa, scale }),
                Threshold::Absolute(at_least),
            ] {
                prop_assert_eq!(
                    LossTest::new(threshold).reached(peak, value),
                    value < bound_below(threshold, peak),
                    "peak {} value {} threshold {:?}", peak, value, threshold
                );
            }
        }

        /// The same for an absolute threshold.
        #[test]
        fn the_bound_agrees_with_an_absolute_threshold(
            peak in any::<i64>(),
            loss in prop_oneof![0u64..10, any::<u64>()],
            at_least in prop_oneof![0u64..10, any::<u64>()],
        ) {
            // Wrapping makes some values higher than the peak: those are
            // checked too, and must not qualify.
            let value = peak.wrapping_sub_unsigned(loss);
            let exact_loss = i128::from(peak) - i128::from(value);
            prop_assert_eq!(
                value < bound_below(Threshold::Absolute(at_least), peak),
                exact_loss > 0 && exact_loss >= i128::from(at_least)
            );
        }
    }

    const H: i64 = 3_600_000;

    /// Runs a fresh finder over hourly points starting at time 0.
    fn hourly(values: &[i64], threshold: Threshold, window_ms: i64) -> Vec<Episode> {
        let times: Vec<i64> = (0..values.len() as i64).map(|i| i * H).collect();
        find(&times, values, threshold, window_ms)
    }

    fn find(times: &[i64], values: &[i64], threshold: Threshold, window_ms: i64) -> Vec<Episode> {
        let mut out = Vec::new();
        DropFinder::new().find(times, values, threshold, window_ms, &mut out);
        out
    }

    fn pct(mantissa: u64, scale: u32) -> Threshold {
        Threshold::Percent(Percent { mantissa, scale })
    }

    fn ep(start: i64, end: i64, before: i64, after: i64) -> Episode {
        Episode::new(
            Point {
                time: start,
                value: before,
            },
            Point {
                time: end,
                value: after,
            },
        )
    }

    #[test]
    fn empty_and_one_point_series_have_no_episodes() {
        assert_eq!(hourly(&[], Threshold::Absolute(1), 10 * H), []);
        assert_eq!(hourly(&[5], Threshold::Absolute(1), 10 * H), []);
    }

    #[test]
    fn a_simple_fall() {
        let got = hourly(&[100, 100, 90, 95], Threshold::Absolute(5), 10 * H);
        assert_eq!(got, [ep(H, 2 * H, 100, 90)]);
        assert_eq!(got[0].lost, 10);
        assert_eq!(got[0].lost_pct_hundredths, 1000);
    }

    #[test]
    fn peak_ties_go_to_the_latest() {
        // Two equal peaks at 0 and 2h: the episode starts at the later one.
        let got = hourly(&[10, 8, 10, 4], Threshold::Absolute(3), 10 * H);
        assert_eq!(got, [ep(2 * H, 3 * H, 10, 4)]);
    }

    #[test]
    fn trough_ties_go_to_the_earliest() {
        let got = hourly(&[10, 5, 7, 5, 10], Threshold::Absolute(3), 10 * H);
        assert_eq!(got, [ep(0, H, 10, 5)]);
    }

    #[test]
    fn a_fall_exactly_at_an_absolute_threshold_qualifies() {
        assert_eq!(
            hourly(&[1000, 950], Threshold::Absolute(50), H),
            [ep(0, H, 1000, 950)]
        );
        assert_eq!(hourly(&[1000, 951], Threshold::Absolute(50), H), []);
    }

    #[test]
    fn a_fall_exactly_at_a_percent_threshold_qualifies() {
        // 5% of 1000 is 50: a loss of 50 qualifies, 49 does not.
        assert_eq!(hourly(&[1000, 950], pct(5, 0), H), [ep(0, H, 1000, 950)]);
        assert_eq!(hourly(&[1000, 951], pct(5, 0), H), []);
        // 2.5% of 1000 is 25, with a fractional percentage.
        assert_eq!(hourly(&[1000, 975], pct(25, 1), H), [ep(0, H, 1000, 975)]);
        assert_eq!(hourly(&[1000, 976], pct(25, 1), H), []);
        // 0% still needs a positive loss.
        assert_eq!(hourly(&[1000, 1000], pct(0, 0), H), []);
        assert_eq!(hourly(&[1000, 999], pct(0, 0), H), [ep(0, H, 1000, 999)]);
    }

    #[test]
    fn the_window_includes_its_start_and_excludes_the_point_itself() {
        // The peak at 0 is exactly WINDOW before the point at 2h: included.
        let times = [0, H, 2 * H];
        let values = [10, 9, 5];
        assert_eq!(
            find(&times, &values, Threshold::Absolute(5), 2 * H),
            [ep(0, 2 * H, 10, 5)]
        );
        // One millisecond shorter and the peak at 0 is just outside; the
        // point at 1h (9) is the peak, a loss of 4 that does not qualify.
        assert_eq!(find(&times, &values, Threshold::Absolute(5), 2 * H - 1), []);
        // A window of 0 or less never holds a point.
        assert_eq!(find(&times, &values, Threshold::Absolute(1), 0), []);
        assert_eq!(find(&times, &values, Threshold::Absolute(1), -H), []);
    }

    #[test]
    fn irregular_sampling_uses_times_not_positions() {
        // Gaps of 1h, 30h, 1h: with a 24h window, the point after the long
        // gap has an empty window and does not qualify, however low it is,
        // and the next one only sees it (a loss of 5, below the threshold).
        let times = [0, H, 31 * H, 32 * H];
        let values = [100, 100, 10, 5];
        assert_eq!(find(&times, &values, Threshold::Absolute(6), 24 * H), []);
        // A 31h window reaches back over the gap to the 100s.
        let got = find(&times, &values, Threshold::Absolute(6), 31 * H);
        assert_eq!(got, [ep(H, 32 * H, 100, 5)]);
    }

    #[test]
    fn two_separate_episodes() {
        let got = hourly(
            &[100, 80, 100, 100, 70, 100],
            Threshold::Absolute(10),
            2 * H,
        );
        assert_eq!(got, [ep(0, H, 100, 80), ep(3 * H, 4 * H, 100, 70)]);
    }

    #[test]
    fn a_run_keeps_the_peak_of_its_first_point() {
        // W = 2h, T = 10. 1h: window {0h: 100}, loss 50, the run starts from
        // the peak at 0h. 2h: peak 100, loss 10. 3h: window {1h, 2h}, peak 90,
        // loss 20. 4h: window {2h, 3h}, peak 90, loss 30. 5h: no loss. The
        // later points' peaks differ, but the episode starts where the run's
        // first point's peak was, and ends at its lowest point.
        let got = hourly(&[100, 50, 90, 70, 60, 90], Threshold::Absolute(10), 2 * H);
        assert_eq!(got, [ep(0, H, 100, 50)]);
    }

    #[test]
    fn a_run_whose_peak_is_not_the_series_maximum() {
        // W = 1h, T = 10. The 200 at 0h is the series' maximum, but by 3h it
        // is out of the window: the run 3h..4h starts from the local peak of
        // 95 at 2h.
        let got = hourly(&[200, 90, 95, 80, 70, 95, 300], Threshold::Absolute(10), H);
        assert_eq!(got, [ep(0, H, 200, 90), ep(2 * H, 4 * H, 95, 70)]);
    }

    #[test]
    fn extreme_times_and_values_do_not_overflow() {
        let times = [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX];
        let values = [i64::MAX, i64::MIN, i64::MAX, i64::MIN];
        let got = find(&times, &values, Threshold::Absolute(u64::MAX), i64::MAX);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].lost, i64::MAX);
        let got = find(&times, &values, pct(100, 0), i64::MAX);
        assert_eq!(got.len(), 2);
        let got = find(&times, &values, Threshold::Absolute(1), i64::MIN);
        assert_eq!(got, []);
    }

    #[test]
    fn lost_pct_rounds_half_away_from_zero() {
        assert_eq!(lost_pct_hundredths(3, 2), 3333); // 33.333…%
        assert_eq!(lost_pct_hundredths(3, 1), 6667); // 66.666…%
        assert_eq!(lost_pct_hundredths(8, 7), 1250); // exactly 12.5%
        assert_eq!(lost_pct_hundredths(80_000, 79_999), 0); // 0.00125% -> 0.00%
        assert_eq!(lost_pct_hundredths(20_000, 19_999), 1); // 0.005% -> 0.01%
        assert_eq!(lost_pct_hundredths(1, 0), 10_000); // everything: 100.00%
        assert_eq!(lost_pct_hundredths(0, -5), 0);
        // Negative values only occur in derived series; the formula holds.
        assert_eq!(lost_pct_hundredths(-4, -6), -5000); // 100 · 2 / -4 = -50%
        assert_eq!(lost_pct_hundredths(-20_000, -20_001), -1); // -0.005% -> -0.01%
    }

    #[test]
    fn the_finder_reuses_its_memory_across_series() {
        let mut finder = DropFinder::new();
        let mut out = Vec::new();
        finder.find(&[0, 1, 2], &[5, 1, 5], Threshold::Absolute(1), 10, &mut out);
        finder.find(&[0, 1], &[5, 1], Threshold::Absolute(1), 10, &mut out);
        assert_eq!(out, [ep(0, 1, 5, 1), ep(0, 1, 5, 1)]);
    }
}
