//! `resample(STEP)`: one point per bucket `[k·STEP, (k+1)·STEP)` aligned to
//! the Unix epoch, for each bucket that holds at least one point, at time
//! `k·STEP` with the value of the bucket's last point.

use super::{SeriesBuf, same_len};

/// Appends the resampled series to `out`.
///
/// Buckets are found with floor division (`div_euclid`), so a negative time
/// falls in the bucket below it: with a 1h step, -1ms is in the bucket that
/// starts at -1h. A step of 0 or less defines no buckets and appends
/// nothing; the type checker should reject such steps. A bucket whose start
/// is below `i64::MIN` (possible only for the lowest bucket, and only for
/// times far outside tally's years 0000 to 9999) is reported at `i64::MIN`.
pub fn resample(times: &[i64], values: &[i64], step_ms: i64, out: &mut SeriesBuf) {
    let (times, values) = same_len(times, values);
    if step_ms <= 0 {
        return;
    }
    // The current bucket's start and its value so far. Division is far
    // slower than comparison, so it is done only when a point leaves the
    // current bucket, which it does by passing `bucket_last`.
    let mut bucket: Option<(i64, i64)> = None;
    let mut bucket_last = i64::MIN;
    for (&time, &value) in times.iter().zip(values) {
        match &mut bucket {
            Some((_, last_value)) if time <= bucket_last => *last_value = value,
            _ => {
                if let Some((start, last_value)) = bucket {
                    out.push(start, last_value);
                }
                // 0 <= offset < step_ms, so `step_ms - 1 - offset` cannot
                // overflow, and the bucket's last millisecond saturating at
                // i64::MAX is exact: no time lies beyond it.
                let offset = time.rem_euclid(step_ms);
                bucket_last = time.saturating_add(step_ms - 1 - offset);
                bucket = Some((time.saturating_sub(offset), value));
            }
        }
    }
    if let Some((start, last_value)) = bucket {
        out.push(start, last_value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resampled(times: &[i64], values: &[i64], step: i64) -> (Vec<i64>, Vec<i64>) {
        let mut out = SeriesBuf::new();
        resample(times, values, step, &mut out);
        (out.times, out.values)
    }

    #[test]
    fn keeps_the_last_point_of_each_bucket() {
        let times = [0, 3, 9, 10, 25, 29];
        let values = [1, 2, 3, 4, 5, 6];
        assert_eq!(
            resampled(&times, &values, 10),
            (vec![0, 10, 20], vec![3, 4, 6])
        );
    }

    #[test]
    fn buckets_are_aligned_to_the_epoch_for_negative_times() {
        let times = [-11, -10, -1, 0];
        let values = [1, 2, 3, 4];
        assert_eq!(
            resampled(&times, &values, 10),
            (vec![-20, -10, 0], vec![1, 3, 4])
        );
    }

    #[test]
    fn empty_series_and_bad_steps_give_nothing() {
        assert_eq!(resampled(&[], &[], 10), (vec![], vec![]));
        assert_eq!(resampled(&[1], &[1], 0), (vec![], vec![]));
        assert_eq!(resampled(&[1], &[1], -10), (vec![], vec![]));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        // i64::MIN is -2^63 and 2^63 mod 3 is 2, so i64::MIN mod 3 is 1: its
        // bucket for a step of 3 is [i64::MIN - 1, i64::MIN + 2), reported at
        // i64::MIN. i64::MAX mod 3 is 1: the last bucket starts at
        // i64::MAX - 1 and runs past i64::MAX.
        let times = [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX];
        let values = [1, 2, 3, 4];
        assert_eq!(
            resampled(&times, &values, 3),
            (vec![i64::MIN, i64::MAX - 1], vec![2, 4])
        );
        // With a step of i64::MAX, i64::MIN is alone in a bucket that starts
        // at -2·i64::MAX; i64::MIN + 1 starts the next one, which ends at -1.
        assert_eq!(
            resampled(&times, &values, i64::MAX),
            (vec![i64::MIN, i64::MIN + 1, 0, i64::MAX], vec![1, 2, 3, 4])
        );
    }
}
