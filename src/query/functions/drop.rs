//! `drop(SERIES, THRESHOLD, WINDOW)`: the episodes in which a series fell
//! by at least THRESHOLD below the highest value of the preceding WINDOW.
//!
//! For point i, the window is the points j with `t_i - WINDOW <= t_j < t_i`
//! (the point itself excluded) and the peak p(i) is the window's largest
//! value, the latest of equal ones. Point i qualifies when
//! `loss_i = v_peak - v_i` is positive and reaches the threshold. An episode
//! is a maximal run of consecutive qualifying points: it starts at the peak of
//! its first point and ends at its lowest point, the earliest of equal ones.
//! [`DropFinder`] finds them in one pass with a monotonic deque.

use super::monotonic::{MonotonicDeque, Point};
use super::{Threshold, same_len};

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

/// A run of consecutive qualifying points being tracked.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// The peak of the run's first point.
    peak: Point,
    /// The run's lowest point so far, the earliest of equal ones.
    trough: Point,
}

/// Finds the drop episodes of series after series, reusing its scratch
/// memory: once it has seen the longest series, [`find`](Self::find)
/// allocates nothing (beyond growing the caller's output vector).
#[derive(Debug, Clone, Default)]
pub struct DropFinder {
    deque: MonotonicDeque,
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
        // Each threshold kind gets its own copy of the loop, so the test for
        // "qualifies" is inlined into it rather than branched on per point.
        match threshold {
            Threshold::Absolute(at_least) => {
                let at_least = at_least.max(1);
                self.find_with(times, values, window_ms, out, |peak, value| {
                    // When value < peak, peak - value is between 1 and
                    // 2^64 - 1, so the wrapping difference read as u64 is
                    // exactly the loss, with no overflow for any i64 input.
                    value < peak && peak.wrapping_sub(value) as u64 >= at_least
                });
            }
            Threshold::Percent(percent) => {
                // 100 · loss >= P · peak with P = mantissa / 10^scale, i.e.
                // 100 · 10^scale · loss >= mantissa · peak. The scale is at
                // most 6 (the parser's limit), so the left side is below
                // 2^27 · 2^64 and the right below 2^64 · 2^63: both fit in
                // i128 for every i64 input. A larger scale saturates rather
                // than panics.
                let factor = 10i128
                    .checked_pow(percent.scale)
                    .map_or(i128::MAX, |p| p.saturating_mul(100));
                let mantissa = i128::from(percent.mantissa);
                self.find_with(times, values, window_ms, out, |peak, value| {
                    value < peak
                        && factor.saturating_mul(i128::from(peak) - i128::from(value))
                            >= mantissa * i128::from(peak)
                });
            }
        }
    }

    /// The loop of [`find`](Self::find), generic over the test of whether a
    /// point with `value` qualifies against its window's `peak` value.
    #[inline(always)]
    fn find_with(
        &mut self,
        times: &[i64],
        values: &[i64],
        window_ms: i64,
        out: &mut Vec<Episode>,
        qualifies: impl Fn(i64, i64) -> bool,
    ) {
        let (times, values) = same_len(times, values);
        self.deque.reset(times.len());
        let mut run: Option<Run> = None;
        for (&time, &value) in times.iter().zip(values) {
            // The window is [time - window_ms, time): drop what is older than
            // its start. The current point is not in the deque yet, which is
            // what excludes it from its own window. Saturating is exact here:
            // a start clamped to i64::MIN or i64::MAX admits the same points
            // as the true start beyond it.
            self.deque.expire_before(time.saturating_sub(window_ms));
            let peak = match self.deque.front() {
                Some(peak) if qualifies(peak.value, value) => Some(peak),
                _ => None,
            };
            let here = Point { time, value };
            match (peak, &mut run) {
                (Some(peak), None) => {
                    run = Some(Run { peak, trough: here });
                }
                (Some(_), Some(current)) => {
                    // Strictly lower only, so the earliest of equal lows stays.
                    if value < current.trough.value {
                        current.trough = here;
                    }
                }
                (None, Some(current)) => {
                    out.push(Episode::new(current.peak, current.trough));
                    run = None;
                }
                (None, None) => {}
            }
            self.deque.push_max(here);
        }
        if let Some(current) = run {
            out.push(Episode::new(current.peak, current.trough));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Percent;
    use super::*;

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
