//! The series → series functions over a trailing time window: `latest`,
//! `change(W)`, `min_over(W)` and `max_over(W)`. Each appends one output
//! point per input point (one in all for `latest`) at the input point's time.
//!
//! A negative window is treated as 0, so every point's window holds at least
//! the point itself: `change` gives 0 and `min_over`/`max_over` the point's
//! own value. (Taken literally, a negative window would make `min_over` and
//! `max_over` windows empty; the type checker should reject negative
//! windows, and this rule keeps the functions total if one gets through.)

use super::monotonic::{DequeMemory, Point};
use super::{SeriesBuf, same_len, window_start_fits};

/// `latest`: appends the series' last point, or nothing for an empty series.
pub fn latest(times: &[i64], values: &[i64], out: &mut SeriesBuf) {
    let (times, values) = same_len(times, values);
    if let (Some(&time), Some(&value)) = (times.last(), values.last()) {
        out.push(time, value);
    }
}

/// `change(W)`: appends, for each point i, `v_i - v_j` where j is the earliest
/// point with `t_j >= t_i - W` (j may be i itself, giving 0). The difference
/// saturates; it cannot overflow for counts.
pub fn change(times: &[i64], values: &[i64], window_ms: i64, out: &mut SeriesBuf) {
    let (times, values) = same_len(times, values);
    let window_ms = window_ms.max(0);
    if window_start_fits(times, window_ms) {
        change_in(times, values, out, |time| time.wrapping_sub(window_ms));
    } else {
        change_in(times, values, out, |time| time.saturating_sub(window_ms));
    }
}

/// The loop of [`change`]; `window_start(t)` is `t - W`, with W >= 0.
#[inline(always)]
fn change_in(
    times: &[i64],
    values: &[i64],
    out: &mut SeriesBuf,
    window_start: impl Fn(i64) -> i64,
) {
    let out_values = out.append_times(times);
    let mut j = 0;
    let points = times.iter().zip(values).enumerate();
    for (slot, (i, (&time, &value))) in out_values.iter_mut().zip(points) {
        let lo = window_start(time);
        // The window is not negative, so t_i >= lo: j never passes i, and
        // j <= i < n keeps every index below in bounds. On regularly
        // sampled series the window's start passes 0, 1 or 2 points per
        // point, which of them depending on sub-interval jitter: a branch on
        // it would be mispredicted about half the time, and stepping one
        // point at a time would chain two dependent loads per point. So the
        // next two points are tested at once, without branching (times
        // increase, so the second passes only if the first does, and a
        // point beyond i never passes); the loop catches up after a gap.
        let first = times[j] < lo;
        let second = times.get(j + 1).is_some_and(|&t| t < lo);
        j += usize::from(first) + usize::from(second);
        while times[j] < lo {
            j += 1;
        }
        debug_assert!(j <= i);
        *slot = value.saturating_sub(values[j]);
    }
}

/// Computes `min_over(W)` and `max_over(W)` series after series, reusing its
/// scratch memory: once it has seen the longest series, it allocates nothing
/// (beyond growing the caller's output buffer).
#[derive(Debug, Clone, Default)]
pub struct WindowExtremes {
    deque: DequeMemory,
}

impl WindowExtremes {
    /// A calculator with no scratch memory yet.
    pub fn new() -> WindowExtremes {
        WindowExtremes::default()
    }

    /// `min_over(W)`: appends, for each point i, the smallest `v_j` over
    /// `t_i - W <= t_j <= t_i` (the point itself included).
    pub fn min_over(&mut self, times: &[i64], values: &[i64], window_ms: i64, out: &mut SeriesBuf) {
        self.extreme::<false>(times, values, window_ms, out);
    }

    /// `max_over(W)`: appends, for each point i, the largest `v_j` over
    /// `t_i - W <= t_j <= t_i` (the point itself included).
    pub fn max_over(&mut self, times: &[i64], values: &[i64], window_ms: i64, out: &mut SeriesBuf) {
        self.extreme::<true>(times, values, window_ms, out);
    }

    /// The loop of both: the maximum when `MAX`, else the minimum.
    #[inline(always)]
    fn extreme<const MAX: bool>(
        &mut self,
        times: &[i64],
        values: &[i64],
        window_ms: i64,
        out: &mut SeriesBuf,
    ) {
        let (times, values) = same_len(times, values);
        let window_ms = window_ms.max(0);
        if window_start_fits(times, window_ms) {
            self.extreme_in::<MAX>(times, values, out, |time| time.wrapping_sub(window_ms));
        } else {
            self.extreme_in::<MAX>(times, values, out, |time| time.saturating_sub(window_ms));
        }
    }

    /// The loop of [`extreme`](Self::extreme); `window_start(t)` is `t - W`,
    /// with W >= 0.
    #[inline(always)]
    fn extreme_in<const MAX: bool>(
        &mut self,
        times: &[i64],
        values: &[i64],
        out: &mut SeriesBuf,
        window_start: impl Fn(i64) -> i64,
    ) {
        let mut deque = self.deque.deque(times.len());
        let out_values = out.append_times(times);
        let points = times.iter().zip(values);
        for (slot, (&time, &value)) in out_values.iter_mut().zip(points) {
            // Expiring before the point is pushed is the same as after: it
            // is never expired itself, since its time is at least the
            // window's start.
            deque.expire_before(window_start(time));
            let here = Point { time, value };
            *slot = match deque.front() {
                // The front stays the extreme: pushing only removes points
                // from the back, and only points less extreme than this one,
                // which the front is not.
                Some(front) if (MAX && value < front.value) || (!MAX && value > front.value) => {
                    if MAX {
                        deque.push_max(here);
                    } else {
                        deque.push_min(here);
                    }
                    front.value
                }
                // The point is at least as extreme as all the window holds,
                // so it alone remains: the common case on a flat or steadily
                // moving series, done without walking the deque.
                _ => {
                    deque.reset_to(here);
                    value
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut SeriesBuf)) -> (Vec<i64>, Vec<i64>) {
        let mut out = SeriesBuf::new();
        f(&mut out);
        (out.times, out.values)
    }

    #[test]
    fn latest_is_the_last_point() {
        assert_eq!(
            run(|o| latest(&[1, 2, 3], &[7, 8, 9], o)),
            (vec![3], vec![9])
        );
        assert_eq!(run(|o| latest(&[], &[], o)), (vec![], vec![]));
    }

    #[test]
    fn change_compares_with_the_earliest_point_in_the_window() {
        let times = [0, 10, 20, 35];
        let values = [5, 7, 4, 10];
        // W = 10: t=10 compares with t=0, exactly at the window's edge;
        // t=20 with t=10; t=35 has only itself in its window.
        assert_eq!(
            run(|o| change(&times, &values, 10, o)),
            (times.to_vec(), vec![0, 2, -3, 0])
        );
        // W = 9: the edge moves just past the earlier point.
        assert_eq!(
            run(|o| change(&times, &values, 9, o)),
            (times.to_vec(), vec![0, 0, 0, 0])
        );
        // W = 0 and negative windows compare each point with itself.
        assert_eq!(run(|o| change(&times, &values, -5, o)).1, vec![0, 0, 0, 0]);
        assert_eq!(
            run(|o| change(&times, &values, i64::MAX, o)).1,
            vec![0, 2, -1, 5]
        );
    }

    #[test]
    fn min_and_max_over_include_both_edges() {
        let times = [0, 10, 20, 30];
        let values = [5, 9, 1, 4];
        let mut w = WindowExtremes::new();
        assert_eq!(
            run(|o| w.max_over(&times, &values, 10, o)).1,
            vec![5, 9, 9, 4]
        );
        assert_eq!(
            run(|o| w.min_over(&times, &values, 10, o)).1,
            vec![5, 5, 1, 1]
        );
        assert_eq!(
            run(|o| w.max_over(&times, &values, 9, o)).1,
            values.to_vec()
        );
        assert_eq!(
            run(|o| w.min_over(&times, &values, -1, o)).1,
            values.to_vec()
        );
        assert_eq!(
            run(|o| w.max_over(&times, &values, 20, o)).1,
            vec![5, 9, 9, 9]
        );
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let times = [i64::MIN, 0, i64::MAX];
        let values = [3, 1, 2];
        let mut w = WindowExtremes::new();
        // 0 - i64::MAX is i64::MIN + 1, so the point at i64::MIN is just
        // outside the window of the point at 0.
        assert_eq!(
            run(|o| w.max_over(&times, &values, i64::MAX, o)).1,
            vec![3, 1, 2]
        );
        assert_eq!(
            run(|o| change(&times, &values, i64::MAX, o)).1,
            vec![0, 0, 1]
        );
        // Any window reaches i64::MIN from i64::MIN + 1.
        let times = [i64::MIN, i64::MIN + 1];
        assert_eq!(
            run(|o| w.min_over(&times, &[3, 4], i64::MAX, o)).1,
            vec![3, 3]
        );
        assert_eq!(run(|o| change(&times, &[3, 4], i64::MAX, o)).1, vec![0, 1]);
    }
}
