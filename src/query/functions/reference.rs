//! Plain O(n²) reference implementations of every series function, written
//! straight from the contract with no cleverness (every window is rescanned,
//! arithmetic is done in i128), and property tests that compare the real
//! functions against them on random series: small value ranges to force
//! ties, irregular gaps, times near both ends of i64, random windows.

use proptest::prelude::*;

use super::drop::Episode;
use super::recover::{Recovered, Recovery};
use super::{
    DropFinder, Percent, SeriesBuf, Threshold, WindowExtremes, change, find_recovery, latest,
    not_recovered_within, recovered_within, resample,
};

/// Clamps an exact i128 result into i64, the saturation the real functions
/// document for results that cannot be represented.
fn clamp(x: i128) -> i64 {
    i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX })
}

/// `part >= P% of whole`, exactly, for a percentage P = mantissa / 10^scale.
fn percent_reached(p: Percent, part: i128, whole: i128) -> bool {
    100 * 10i128.pow(p.scale) * part >= i128::from(p.mantissa) * whole
}

/// The peak of point i: among the points j with `t_i - W <= t_j < t_i`, the
/// one with the largest value, the latest of equal ones.
fn peak_of(times: &[i64], values: &[i64], i: usize, window: i64) -> Option<usize> {
    let lo = i128::from(times[i]) - i128::from(window);
    let mut peak: Option<usize> = None;
    for j in 0..times.len() {
        if lo <= i128::from(times[j]) && times[j] < times[i] {
            match peak {
                Some(p) if values[j] < values[p] => {}
                // Equal values replace the peak when j is later.
                Some(p) if values[j] == values[p] && times[j] < times[p] => {}
                _ => peak = Some(j),
            }
        }
    }
    peak
}

pub(super) fn drop_ref(
    times: &[i64],
    values: &[i64],
    threshold: Threshold,
    window: i64,
) -> Vec<Episode> {
    let n = times.len();
    let qualifying: Vec<Option<usize>> = (0..n)
        .map(|i| {
            let p = peak_of(times, values, i, window)?;
            let peak = i128::from(values[p]);
            let loss = peak - i128::from(values[i]);
            let reached = match threshold {
                Threshold::Absolute(t) => loss >= i128::from(t),
                Threshold::Percent(pct) => percent_reached(pct, loss, peak),
            };
            (loss > 0 && reached).then_some(p)
        })
        .collect();
    let mut episodes = Vec::new();
    let mut i = 0;
    while i < n {
        let Some(p) = qualifying[i] else {
            i += 1;
            continue;
        };
        let mut k = i;
        while k + 1 < n && qualifying[k + 1].is_some() {
            k += 1;
        }
        let mut q = i;
        for m in i..=k {
            if values[m] < values[q] {
                q = m;
            }
        }
        let before = i128::from(values[p]);
        let after = i128::from(values[q]);
        let lost = before - after;
        let lost_pct = if before == 0 {
            0
        } else {
            // Round half away from zero: |x| rounded is floor(|x| + 1/2).
            let num = 10_000 * lost;
            let magnitude = (2 * num.abs() + before.abs()) / (2 * before.abs());
            if (num < 0) != (before < 0) {
                -magnitude
            } else {
                magnitude
            }
        };
        episodes.push(Episode {
            start: times[p],
            end: times[q],
            before: values[p],
            after: values[q],
            lost: clamp(lost),
            lost_pct_hundredths: clamp(lost_pct),
        });
        i = k + 1;
    }
    episodes
}

pub(super) fn recovery_ref(
    times: &[i64],
    values: &[i64],
    episode: &Episode,
    duration: i64,
    fraction: Percent,
) -> Option<Recovery> {
    let end = i128::from(episode.end);
    // The contract tests against the episode's `lost`, which saturates.
    let lost = i128::from(episode.lost);
    let mut best: Option<usize> = None;
    for r in 0..times.len() {
        let t = i128::from(times[r]);
        let regained = i128::from(values[r]) - i128::from(episode.after);
        if end < t
            && t <= end + i128::from(duration)
            && percent_reached(fraction, regained, lost)
            && best.is_none_or(|b| times[r] < times[b])
        {
            best = Some(r);
        }
    }
    best.map(|r| Recovery {
        recovered_at: times[r],
        recovery_s: clamp((i128::from(times[r]) - end).div_euclid(1000)),
    })
}

/// The window rule shared by `change`, `min_over` and `max_over`: a negative
/// window is 0.
fn window_start(time: i64, window: i64) -> i128 {
    i128::from(time) - i128::from(window.max(0))
}

pub(super) fn change_ref(times: &[i64], values: &[i64], window: i64) -> Vec<i64> {
    (0..times.len())
        .map(|i| {
            let lo = window_start(times[i], window);
            let j = (0..times.len())
                .find(|&j| i128::from(times[j]) >= lo)
                .unwrap_or(i);
            clamp(i128::from(values[i]) - i128::from(values[j]))
        })
        .collect()
}

pub(super) fn extreme_ref(times: &[i64], values: &[i64], window: i64, max: bool) -> Vec<i64> {
    (0..times.len())
        .map(|i| {
            let lo = window_start(times[i], window);
            let in_window = (0..times.len())
                .filter(|&j| lo <= i128::from(times[j]) && times[j] <= times[i])
                .map(|j| values[j]);
            if max {
                in_window.max().unwrap_or(values[i])
            } else {
                in_window.min().unwrap_or(values[i])
            }
        })
        .collect()
}

pub(super) fn resample_ref(times: &[i64], values: &[i64], step: i64) -> (Vec<i64>, Vec<i64>) {
    let mut out: (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    if step <= 0 {
        return out;
    }
    let mut buckets: Vec<(i128, i64)> = Vec::new();
    for (&t, &v) in times.iter().zip(values) {
        let k = i128::from(t).div_euclid(i128::from(step));
        match buckets.iter_mut().find(|(bk, _)| *bk == k) {
            Some(bucket) => bucket.1 = v,
            None => buckets.push((k, v)),
        }
    }
    for (k, v) in buckets {
        out.0.push(clamp(k * i128::from(step)));
        out.1.push(v);
    }
    out
}

/// A random series: irregular gaps (mostly small, some large), anchored near
/// 0, near i64::MIN or near i64::MAX, with values from a small range (to force
/// ties), sometimes shifted to include negatives (as in derived series), or
/// large counts, or anywhere in i64, or crowded at the top of i64 (to reach
/// the saturating paths).
fn series() -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
    let gap = prop_oneof![6 => 1i64..=3, 2 => 4i64..=20, 1 => 21i64..=1000];
    (
        prop::collection::vec((gap, any::<i64>()), 0..40),
        0u8..6,
        0i64..1000,
        prop_oneof![
            3 => Just(3i64),
            3 => Just(5),
            2 => Just(20),
            2 => Just(1000),
            1 => Just(0), // values anywhere in i64
            1 => Just(-1), // values near i64::MAX
            1 => Just(-2), // big accounts: 10^12 give or take 10^6
        ],
        any::<bool>(),
    )
        .prop_map(|(points, anchor, offset, modulus, negative)| {
            let span: i64 = points.iter().map(|(g, _)| g).sum();
            let start = match anchor {
                0 => i64::MIN + offset,
                1 => i64::MAX - span - offset,
                _ => offset - 500,
            };
            let mut t = start;
            let mut times = Vec::with_capacity(points.len());
            let mut values = Vec::with_capacity(points.len());
            for (g, v) in points {
                times.push(t);
                t += g;
                values.push(match modulus {
                    0 => v,
                    -1 => i64::MAX - v.rem_euclid(5),
                    -2 => 1_000_000_000_000 + v.rem_euclid(1_000_000),
                    m if negative => v.rem_euclid(m) - m / 2,
                    m => v.rem_euclid(m),
                });
            }
            (times, values)
        })
}

/// A long series shaped like follower counts: mostly steady or rising,
/// with a fall now and then, some of them deep, and an occasional gap in the
/// hourly (here: unit) sampling. The finder skips rising and flat stretches
/// eight points at a time, which the short series of [`series`] rarely
/// exercise; these have stretches of every length around that, and falls at
/// every position within them.
fn follower_series() -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
    let step = prop_oneof![
        40 => Just(0i64),
        8 => 1i64..=3,
        2 => -3i64..=-1,
        1 => -400i64..=-20,
        1 => 50i64..=400,
    ];
    let gap = prop_oneof![30 => Just(1i64), 1 => 2i64..=5];
    (prop::collection::vec((gap, step), 0..400), 500i64..5_000).prop_map(|(points, start)| {
        let (mut t, mut v) = (0i64, start);
        let mut times = Vec::with_capacity(points.len());
        let mut values = Vec::with_capacity(points.len());
        for (gap, step) in points {
            t += gap;
            v = (v + step).max(0);
            times.push(t);
            values.push(v);
        }
        (times, values)
    })
}

fn window() -> impl Strategy<Value = i64> {
    prop_oneof![
        10 => -3i64..60,
        1 => 60i64..2000,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
    ]
}

fn percent() -> impl Strategy<Value = Percent> {
    prop_oneof![
        4 => (0u64..1500, 0u32..3),
        1 => (0u64..1_000_000_000, 0u32..=6),
        1 => (any::<u64>(), 0u32..=6),
    ]
    .prop_map(|(mantissa, scale)| Percent { mantissa, scale })
}

fn threshold() -> impl Strategy<Value = Threshold> {
    prop_oneof![
        (0u64..8).prop_map(Threshold::Absolute),
        percent().prop_map(Threshold::Percent),
        Just(Threshold::Absolute(u64::MAX)),
    ]
}

/// The episodes a finder finds in a series after it has worked on another
/// one: it must give the same answer as a fresh finder, so its scratch
/// state must be fully reset between series.
fn find_after_other(
    (times, values): (&[i64], &[i64]),
    (other_times, other_values): (&[i64], &[i64]),
    threshold: Threshold,
    window: i64,
) -> Vec<Episode> {
    let mut finder = DropFinder::new();
    let mut out = Vec::new();
    finder.find(other_times, other_values, threshold, window, &mut out);
    out.clear();
    finder.find(times, values, threshold, window, &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn drop_matches_reference(
        (times, values) in series(),
        (other_times, other_values) in series(),
        threshold in threshold(),
        window in window(),
    ) {
        let expected = drop_ref(&times, &values, threshold, window);
        let found = find_after_other((&times, &values), (&other_times, &other_values), threshold, window);
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn drop_matches_reference_on_follower_like_series(
        (times, values) in follower_series(),
        (other_times, other_values) in follower_series(),
        threshold in prop_oneof![
            (0u64..30).prop_map(Threshold::Absolute),
            (0u64..20, 0u32..2).prop_map(|(mantissa, scale)| Threshold::Percent(Percent { mantissa, scale })),
            // Factors on both sides of 2^64, which the finder tests in two
            // ways; the losses here are small enough for the reference's
            // i128 arithmetic.
            (any::<u64>(), 16u32..=19).prop_map(|(mantissa, scale)| Threshold::Percent(Percent { mantissa, scale })),
        ],
        window in prop_oneof![1i64..4, 4i64..30, Just(i64::MAX)],
    ) {
        let expected = drop_ref(&times, &values, threshold, window);
        let found = find_after_other((&times, &values), (&other_times, &other_values), threshold, window);
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn recovery_matches_reference(
        (times, values) in series(),
        threshold in threshold(),
        window in window(),
        duration in window(),
        fraction in percent(),
    ) {
        let episodes = drop_ref(&times, &values, threshold, window);
        let expected: Vec<Option<Recovery>> = episodes
            .iter()
            .map(|e| recovery_ref(&times, &values, e, duration, fraction))
            .collect();
        for (episode, want) in episodes.iter().zip(&expected) {
            prop_assert_eq!(&find_recovery(&times, &values, episode, duration, fraction), want);
        }
        let mut recovered = Vec::new();
        recovered_within(&times, &values, &episodes, duration, fraction, &mut recovered);
        let want_recovered: Vec<Recovered> = episodes
            .iter()
            .zip(&expected)
            .filter_map(|(e, r)| r.map(|recovery| Recovered { episode: *e, recovery }))
            .collect();
        prop_assert_eq!(recovered, want_recovered);
        let mut not = Vec::new();
        not_recovered_within(&times, &values, &episodes, duration, fraction, &mut not);
        let want_not: Vec<Episode> = episodes
            .iter()
            .zip(&expected)
            .filter(|(_, r)| r.is_none())
            .map(|(e, _)| *e)
            .collect();
        prop_assert_eq!(not, want_not);
    }

    #[test]
    fn recovery_of_arbitrary_episodes_matches_reference(
        (times, values) in series(),
        ends in prop::collection::vec((0usize..50, -2i64..3, 0i64..20, 0i64..20), 0..8),
        duration in window(),
        fraction in percent(),
    ) {
        // Episodes need not end on a point of the series nor come in order;
        // this exercises the binary search's reuse of earlier positions.
        let episodes: Vec<Episode> = ends
            .iter()
            .map(|&(at, shift, after, lost)| {
                let base = times.get(at).or(times.last()).copied().unwrap_or(0);
                let end = base.saturating_add(shift);
                Episode {
                    start: end.saturating_sub(1),
                    end,
                    before: after + lost,
                    after,
                    lost,
                    lost_pct_hundredths: 0,
                }
            })
            .collect();
        let mut recovered = Vec::new();
        recovered_within(&times, &values, &episodes, duration, fraction, &mut recovered);
        let mut not = Vec::new();
        not_recovered_within(&times, &values, &episodes, duration, fraction, &mut not);
        let mut want_recovered = Vec::new();
        let mut want_not = Vec::new();
        for e in &episodes {
            match recovery_ref(&times, &values, e, duration, fraction) {
                Some(recovery) => want_recovered.push(Recovered { episode: *e, recovery }),
                None => want_not.push(*e),
            }
        }
        prop_assert_eq!(recovered, want_recovered);
        prop_assert_eq!(not, want_not);
    }

    #[test]
    fn window_functions_match_reference(
        (times, values) in series(),
        window in window(),
    ) {
        let mut out = SeriesBuf::new();
        change(&times, &values, window, &mut out);
        prop_assert_eq!(&out.times, &times);
        prop_assert_eq!(&out.values, &change_ref(&times, &values, window));

        let mut extremes = WindowExtremes::new();
        out.clear();
        extremes.min_over(&times, &values, window, &mut out);
        prop_assert_eq!(&out.times, &times);
        prop_assert_eq!(&out.values, &extreme_ref(&times, &values, window, false));

        out.clear();
        extremes.max_over(&times, &values, window, &mut out);
        prop_assert_eq!(&out.times, &times);
        prop_assert_eq!(&out.values, &extreme_ref(&times, &values, window, true));

        out.clear();
        latest(&times, &values, &mut out);
        prop_assert_eq!(out.times, times.last().copied().into_iter().collect::<Vec<_>>());
        prop_assert_eq!(out.values, values.last().copied().into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn resample_matches_reference(
        (times, values) in series(),
        step in prop_oneof![8 => -2i64..40, 1 => 40i64..5000, 1 => Just(i64::MAX), 1 => Just(3)],
    ) {
        let mut out = SeriesBuf::new();
        // Output is appended: anything already in the buffer stays.
        out.push(42, 42);
        resample(&times, &values, step, &mut out);
        let (want_times, want_values) = resample_ref(&times, &values, step);
        prop_assert_eq!(&out.times[1..], want_times.as_slice());
        prop_assert_eq!(&out.values[1..], want_values.as_slice());
    }
}
