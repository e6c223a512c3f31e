//! `recovered_within(DROPS, DURATION [, FRACTION])` and
//! `not recovered_within(...)`: whether a drop episode came back.
//!
//! An episode has recovered when some point r of its series has
//! `end < t_r <= end + DURATION` and `v_r - after >= FRACTION · lost`
//! (FRACTION a [`Percent`], 100% by default). The recovery is the earliest
//! such point. Finding it costs a binary search for the first point after
//! `end` plus a scan of the points up to `end + DURATION`.

use super::drop::Episode;
use super::{Percent, same_len};

/// When and how fast an episode recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// The time of the earliest point that recovered the episode, in
    /// milliseconds.
    pub recovered_at: i64,
    /// Whole seconds from the episode's `end` to `recovered_at`, rounded
    /// down.
    pub recovery_s: i64,
}

/// An episode that recovered, with its recovery: one row of
/// `recovered_within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// The drop episode.
    pub episode: Episode,
    /// How it recovered.
    pub recovery: Recovery,
}

/// The recovery of one episode of the series `times`/`values` (the series the
/// episode was found in, restricted to the query's time range), or `None`
/// when it did not recover within `duration_ms`.
///
/// A negative duration never recovers: no point lies after `end` and at or
/// before a time earlier than `end`.
pub fn find_recovery(
    times: &[i64],
    values: &[i64],
    episode: &Episode,
    duration_ms: i64,
    fraction: Percent,
) -> Option<Recovery> {
    let (times, values) = same_len(times, values);
    let first_after = times.partition_point(|&t| t <= episode.end);
    recovery_from(times, values, first_after, episode, duration_ms, fraction)
}

/// Appends to `out` the episodes that recovered within `duration_ms`, with
/// their recoveries, keeping the episodes' order.
pub fn recovered_within(
    times: &[i64],
    values: &[i64],
    episodes: &[Episode],
    duration_ms: i64,
    fraction: Percent,
    out: &mut Vec<Recovered>,
) {
    for_each_recovery(
        times,
        values,
        episodes,
        duration_ms,
        fraction,
        |episode, recovery| {
            if let Some(recovery) = recovery {
                out.push(Recovered {
                    episode: *episode,
                    recovery,
                });
            }
        },
    );
}

/// Appends to `out` the episodes that did not recover within `duration_ms`,
/// keeping their order.
pub fn not_recovered_within(
    times: &[i64],
    values: &[i64],
    episodes: &[Episode],
    duration_ms: i64,
    fraction: Percent,
    out: &mut Vec<Episode>,
) {
    for_each_recovery(
        times,
        values,
        episodes,
        duration_ms,
        fraction,
        |episode, recovery| {
            if recovery.is_none() {
                out.push(*episode);
            }
        },
    );
}

/// Calls `each` with every episode and its recovery.
///
/// Episodes come from `drop()` in time order, so each one's first point after
/// `end` is at or after the previous one's: the binary search only looks at
/// the rest of the series. Episodes out of order (which `drop()` never
/// produces) fall back to searching the whole series, so the answer never
/// depends on the order.
fn for_each_recovery(
    times: &[i64],
    values: &[i64],
    episodes: &[Episode],
    duration_ms: i64,
    fraction: Percent,
    mut each: impl FnMut(&Episode, Option<Recovery>),
) {
    let (times, values) = same_len(times, values);
    let mut searched_from = 0;
    let mut previous_end = i64::MIN;
    for episode in episodes {
        if episode.end < previous_end {
            searched_from = 0;
        }
        previous_end = episode.end;
        // `searched_from` is at most `times.len()`: it is 0 or a previous
        // result of this line, and `partition_point` returns at most the
        // length of the slice it was given. So the slice cannot fail.
        let rest = &times[searched_from..];
        searched_from += rest.partition_point(|&t| t <= episode.end);
        let recovery = recovery_from(times, values, searched_from, episode, duration_ms, fraction);
        each(episode, recovery);
    }
}

/// Scans the points from index `first_after` (the first point after the
/// episode's `end`) up to `end + duration_ms` for the first one that
/// recovers the episode.
fn recovery_from(
    times: &[i64],
    values: &[i64],
    first_after: usize,
    episode: &Episode,
    duration_ms: i64,
    fraction: Percent,
) -> Option<Recovery> {
    // Saturating is exact: a limit clamped to i64::MAX admits every time,
    // as the true limit beyond it would.
    let limit = episode.end.saturating_add(duration_ms);
    // `first_after` comes from a binary search over `times` and is at most
    // its length (and `values` has the same length), so both slices exist;
    // should one not, there is nothing after `end` to recover with.
    let (Some(times), Some(values)) = (times.get(first_after..), values.get(first_after..)) else {
        return None;
    };
    for (&time, &value) in times.iter().zip(values) {
        if time > limit {
            break;
        }
        // `value - after` is computed in i128: it needs 65 bits when the
        // values span more than i64 (never for counts, but for a derived
        // series it might), and the test stays exact.
        let regained = i128::from(value) - i128::from(episode.after);
        if fraction.reached_wide(regained, episode.lost) {
            return Some(Recovery {
                recovered_at: time,
                recovery_s: seconds_between(episode.end, time),
            });
        }
    }
    None
}

/// Whole seconds from `from` to the later time `to`, rounded down. The
/// difference of two i64 times fits in i128, and divided by 1000 it fits back
/// in i64, so the fallback is never taken.
fn seconds_between(from: i64, to: i64) -> i64 {
    let seconds = (i128::from(to) - i128::from(from)).div_euclid(1000);
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    const H: i64 = 3600 * S;

    /// An episode from 1000 down to 900 ending at `end`.
    fn fall(end: i64) -> Episode {
        Episode {
            start: end - H,
            end,
            before: 1000,
            after: 900,
            lost: 100,
            lost_pct_hundredths: 1000,
        }
    }

    fn pct(mantissa: u64) -> Percent {
        Percent { mantissa, scale: 0 }
    }

    #[test]
    fn recovery_exactly_at_end_plus_duration_counts() {
        let times = [0, H, 2 * H];
        let values = [1000, 900, 1000];
        let got = find_recovery(&times, &values, &fall(H), H, Percent::FULL);
        assert_eq!(
            got,
            Some(Recovery {
                recovered_at: 2 * H,
                recovery_s: 3600
            })
        );
        // One millisecond less of duration and the point is outside.
        assert_eq!(
            find_recovery(&times, &values, &fall(H), H - 1, Percent::FULL),
            None
        );
    }

    #[test]
    fn recovery_one_second_late_does_not_count() {
        let times = [0, H, 2 * H + S];
        let values = [1000, 900, 1000];
        assert_eq!(
            find_recovery(&times, &values, &fall(H), H, Percent::FULL),
            None
        );
        let got = find_recovery(&times, &values, &fall(H), H + S, Percent::FULL);
        assert_eq!(got.map(|r| r.recovery_s), Some(3601));
    }

    #[test]
    fn recovery_seconds_round_down() {
        let times = [0, 1999];
        let values = [900, 1000];
        let got = find_recovery(&times, &values, &fall(0), H, Percent::FULL);
        assert_eq!(
            got,
            Some(Recovery {
                recovered_at: 1999,
                recovery_s: 1
            })
        );
    }

    #[test]
    fn a_fraction_below_full_recovers_earlier() {
        let times = [0, H, 2 * H, 3 * H, 4 * H];
        let values = [1000, 900, 949, 950, 1000];
        // 50% of a loss of 100 is 50: 949 regains 49 (no), 950 regains 50.
        let got = find_recovery(&times, &values, &fall(H), 10 * H, pct(50));
        assert_eq!(got.map(|r| r.recovered_at), Some(3 * H));
        let got = find_recovery(&times, &values, &fall(H), 10 * H, Percent::FULL);
        assert_eq!(got.map(|r| r.recovered_at), Some(4 * H));
        // 12.5% of 100 is 12.5: 13 is enough, 12 is not.
        let got = find_recovery(
            &[0, 1, 2],
            &[900, 912, 913],
            &fall(0),
            10,
            Percent {
                mantissa: 125,
                scale: 1,
            },
        );
        assert_eq!(got.map(|r| r.recovered_at), Some(2));
    }

    #[test]
    fn only_points_after_end_count() {
        // The 1000 at `end - 1` and at `end` itself are not recoveries.
        let times = [H - 1, H, H + 1];
        let values = [1000, 1000, 900];
        assert_eq!(
            find_recovery(&times, &values, &fall(H), 10 * H, Percent::FULL),
            None
        );
    }

    #[test]
    fn empty_series_and_negative_durations_never_recover() {
        assert_eq!(find_recovery(&[], &[], &fall(H), H, Percent::FULL), None);
        let times = [H, 2 * H];
        let values = [900, 1000];
        assert_eq!(
            find_recovery(&times, &values, &fall(H), -1, Percent::FULL),
            None
        );
    }

    #[test]
    fn extreme_times_saturate() {
        // end + DURATION is past i64::MAX: every later time is within it.
        let episode = Episode { end: 5, ..fall(5) };
        let got = find_recovery(
            &[5, i64::MAX],
            &[900, 1000],
            &episode,
            i64::MAX,
            Percent::FULL,
        );
        assert_eq!(
            got,
            Some(Recovery {
                recovered_at: i64::MAX,
                recovery_s: (i64::MAX - 5) / 1000
            })
        );
        // The longest possible recovery: from i64::MIN to i64::MIN + i64::MAX.
        let episode = Episode {
            start: i64::MIN,
            end: i64::MIN,
            ..fall(0)
        };
        let times = [i64::MIN, -1, 0];
        let values = [900, 1000, 1000];
        let got = find_recovery(&times, &values, &episode, i64::MAX, Percent::FULL);
        assert_eq!(
            got,
            Some(Recovery {
                recovered_at: -1,
                recovery_s: 9_223_372_036_854_775
            })
        );
        let got = find_recovery(&times[..1], &values[..1], &episode, i64::MAX, Percent::FULL);
        assert_eq!(got, None);
    }

    #[test]
    fn extreme_values_and_fractions_do_not_overflow() {
        // A derived series whose fall is larger than i64::MAX: `lost`
        // saturates, and the largest and smallest fractions still compare
        // exactly instead of overflowing.
        let episode = Episode {
            start: 0,
            end: 1,
            before: i64::MAX,
            after: i64::MIN,
            lost: i64::MAX,
            lost_pct_hundredths: 0,
        };
        let times = [1, 2, 3];
        let values = [i64::MIN, -5, i64::MAX];
        let huge = Percent {
            mantissa: u64::MAX,
            scale: 0,
        };
        assert_eq!(find_recovery(&times, &values, &episode, 10, huge), None);
        let got = find_recovery(&times, &values, &episode, 10, Percent::FULL);
        assert_eq!(got.map(|r| r.recovered_at), Some(3));
        let tiny = Percent {
            mantissa: 1,
            scale: 40,
        };
        let got = find_recovery(&times, &values, &episode, 10, tiny);
        assert_eq!(got.map(|r| r.recovered_at), Some(2));
    }

    #[test]
    fn recovered_and_not_recovered_split_the_episodes() {
        // Two falls: the first comes back at 3h, the second never does.
        let times = [0, H, 2 * H, 3 * H, 4 * H, 5 * H, 6 * H];
        let values = [1000, 900, 950, 1000, 900, 900, 950];
        let episodes = [fall(H), fall(4 * H)];
        let mut recovered = Vec::new();
        recovered_within(
            &times,
            &values,
            &episodes,
            24 * H,
            Percent::FULL,
            &mut recovered,
        );
        assert_eq!(
            recovered,
            [Recovered {
                episode: fall(H),
                recovery: Recovery {
                    recovered_at: 3 * H,
                    recovery_s: 7200
                }
            }]
        );
        let mut not = Vec::new();
        not_recovered_within(&times, &values, &episodes, 24 * H, Percent::FULL, &mut not);
        assert_eq!(not, [fall(4 * H)]);
        // Out of order, the answer is the same.
        let reversed = [fall(4 * H), fall(H)];
        let mut recovered_rev = Vec::new();
        recovered_within(
            &times,
            &values,
            &reversed,
            24 * H,
            Percent::FULL,
            &mut recovered_rev,
        );
        assert_eq!(recovered_rev, recovered);
    }
}
