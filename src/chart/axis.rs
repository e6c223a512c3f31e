//! The two axes: round value ticks (multiples of 1, 2 or 5 times a power
//! of ten, written `12k`, `3.5M`) and round UTC time ticks
//! (docs/query-language.md, rule Q63). All arithmetic is in `i128`, so no
//! count or time of the `i64` range overflows.

use crate::time::format_time;

/// The value axis: from `low` to `high`, ticks every `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueAxis {
    pub low: i128,
    pub high: i128,
    pub step: i128,
}

impl ValueAxis {
    /// A round axis around `[lo, hi]`: it starts at a multiple of the step
    /// at or below `lo` and ends at one at or above `hi`, with 3 to 8
    /// ticks. Equal ends are widened around the value, so a flat line is
    /// drawn across the middle (rule Q64).
    pub(crate) fn new(lo: i64, hi: i64) -> ValueAxis {
        let (mut lo, mut hi) = (i128::from(lo.min(hi)), i128::from(lo.max(hi)));
        if lo == hi {
            let pad = (lo.abs() / 10).max(1);
            lo -= pad;
            hi += pad;
        }
        let step = nice_step((hi - lo) / 5);
        // nice_step returns at least 1, so the divisions below are safe.
        let low = lo.div_euclid(step) * step;
        let mut high = -((-hi).div_euclid(step)) * step;
        // A span of a step or two (values 0 and 1) still gets three ticks.
        while (high - low) / step < 2 {
            high += step;
        }
        ValueAxis { low, high, step }
    }

    /// The ticks, lowest first.
    pub(crate) fn ticks(&self) -> Vec<i128> {
        let mut ticks = Vec::new();
        let mut v = self.low;
        while v <= self.high && ticks.len() < 20 {
            ticks.push(v);
            v += self.step;
        }
        ticks
    }

    /// Where `v` lies between the ends, 0.0 at `low` and 1.0 at `high`.
    pub(crate) fn fraction(&self, v: i128) -> f64 {
        let span = (self.high - self.low) as f64;
        if span <= 0.0 {
            0.5
        } else {
            (v - self.low) as f64 / span
        }
    }

    /// A tick's label: the number in full below 10,000, else with a suffix
    /// and as many decimals as the step needs.
    pub(crate) fn label(&self, v: i128) -> String {
        const SUFFIXES: [&str; 6] = ["k", "M", "G", "T", "P", "E"];
        let magnitude = self.low.abs().max(self.high.abs());
        // Zero has no magnitude to name: `0`, not `0k` (rule Q63).
        if magnitude < 10_000 || v == 0 {
            return v.to_string();
        }
        let mut power = 1i128;
        let mut suffix = "";
        for s in SUFFIXES {
            if magnitude >= power * 1000 {
                power *= 1000;
                suffix = s;
            }
        }
        // Decimals: enough for the step to show, at most three.
        let mut decimals = 0usize;
        let mut unit = power;
        while decimals < 3 && self.step % unit != 0 {
            unit /= 10;
            decimals += 1;
        }
        let sign = if v < 0 { "-" } else { "" };
        let abs = v.abs();
        let whole = abs / power;
        if decimals == 0 {
            return format!("{sign}{whole}{suffix}");
        }
        let scale = 10i128.pow(decimals as u32);
        let fraction = (abs % power) * scale / power;
        format!("{sign}{whole}.{fraction:0decimals$}{suffix}")
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `rough`
/// (and at least 1).
fn nice_step(rough: i128) -> i128 {
    let mut power = 1i128;
    loop {
        for m in [1, 2, 5] {
            if m * power >= rough {
                return m * power;
            }
        }
        match power.checked_mul(10) {
            Some(p) => power = p,
            None => return power,
        }
    }
}

const SECOND: i128 = 1000;
const MINUTE: i128 = 60 * SECOND;
const HOUR: i128 = 60 * MINUTE;
const DAY: i128 = 24 * HOUR;

/// The steps a time axis may take, shortest first; beyond the last, 28
/// days times a power of two.
const TIME_STEPS: [i128; 24] = [
    1,
    10,
    100,
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
];

/// The time axis: from `from` to `to` (milliseconds), ticks every `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeAxis {
    pub from: i128,
    pub to: i128,
    pub step: i128,
}

impl TimeAxis {
    /// An axis over `[from, to]` with at most `max_ticks` ticks at round
    /// UTC times; equal ends are widened by a minute each way.
    pub(crate) fn new(from: i64, to: i64, max_ticks: i128) -> TimeAxis {
        let (mut from, mut to) = (i128::from(from.min(to)), i128::from(from.max(to)));
        if from == to {
            from -= MINUTE;
            to += MINUTE;
        }
        let span = to - from;
        let max_ticks = max_ticks.max(2);
        let mut step = TIME_STEPS
            .iter()
            .copied()
            .find(|&s| span / s < max_ticks)
            .unwrap_or(28 * DAY);
        while span / step >= max_ticks {
            step *= 2;
        }
        TimeAxis { from, to, step }
    }

    /// Where `t` lies between the ends, 0.0 at `from` and 1.0 at `to`.
    pub(crate) fn fraction(&self, t: i128) -> f64 {
        (t - self.from) as f64 / (self.to - self.from) as f64
    }

    /// The ticks: every multiple of the step from the Unix epoch within the
    /// axis.
    pub(crate) fn ticks(&self) -> Vec<i128> {
        let first = -((-self.from).div_euclid(self.step)) * self.step;
        let mut ticks = Vec::new();
        let mut t = first;
        while t <= self.to && ticks.len() < 64 {
            ticks.push(t);
            t += self.step;
        }
        ticks
    }

    /// A tick's label in UTC: the time of day for steps under a day
    /// (`10:00`, `10:00:30`, `10:00:00.250`), the date otherwise; and, as a
    /// second line, the date when it differs from the previous tick's.
    pub(crate) fn label(&self, t: i128, previous: Option<i128>) -> (String, Option<String>) {
        let text = i64::try_from(t).map_or_else(|_| t.to_string(), format_time);
        // format_time writes `YYYY-MM-DDTHH:MM:SS[.mmm]Z`; a year outside
        // 0000–9999 would shift the fields, so the parts are found by the
        // `T`, not by position.
        let (date, time) = text.split_once('T').unwrap_or((text.as_str(), ""));
        let time = time.trim_end_matches('Z');
        if self.step >= DAY {
            return (date.to_string(), None);
        }
        let shown = if self.step % MINUTE == 0 {
            time.get(..5).unwrap_or(time)
        } else if self.step % SECOND == 0 {
            time.get(..8).unwrap_or(time)
        } else {
            time
        };
        let previous_date = previous
            .and_then(|p| i64::try_from(p).ok())
            .map(format_time);
        let new_day = previous_date
            .as_deref()
            .and_then(|p| p.split_once('T'))
            .is_none_or(|(d, _)| d != date);
        (shown.to_string(), new_day.then(|| date.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ticks_are_round() {
        // [Q63]
        let axis = ValueAxis::new(5_000, 10_047);
        assert_eq!(
            axis,
            ValueAxis {
                low: 4_000,
                high: 12_000,
                step: 2_000
            }
        );
        assert_eq!(axis.ticks().len(), 5);
        assert_eq!(axis.label(8_000), "8k");
        for (lo, hi) in [(0, 1), (3, 1_000_003), (999, 1_001), (0, 7_777_777_777)] {
            let axis = ValueAxis::new(lo, hi);
            let ticks = axis.ticks();
            assert!((3..=8).contains(&ticks.len()), "{lo}..{hi}: {ticks:?}");
            assert!(axis.low <= i128::from(lo) && axis.high >= i128::from(hi));
            let m = axis.step / 10i128.pow(axis.step.ilog10());
            assert!([1, 2, 5].contains(&m), "{axis:?}");
        }
        let axis = ValueAxis::new(0, 60);
        assert_eq!(axis.ticks(), vec![0, 20, 40, 60]);
        assert_eq!(axis.label(40), "40");
        let axis = ValueAxis::new(1_200_000, 1_250_000);
        assert_eq!(axis.step, 10_000);
        assert_eq!(axis.label(1_210_000), "1.21M");
        let axis = ValueAxis::new(0, 15_000);
        assert_eq!(axis.label(0), "0");
        assert_eq!(axis.label(5_000), "5k");
    }

    #[test]
    fn flat_and_huge_values() {
        // [Q64]: a flat line sits in the middle.
        let axis = ValueAxis::new(60, 60);
        assert!(axis.low < 60 && axis.high > 60);
        assert!((axis.fraction(60) - 0.5).abs() < 0.2);
        let axis = ValueAxis::new(0, 0);
        assert!(axis.low < 0 && axis.high > 0);
        // The whole i64 range: no overflow, few ticks, short labels.
        let axis = ValueAxis::new(0, i64::MAX);
        let ticks = axis.ticks();
        assert!((2..=9).contains(&ticks.len()), "{ticks:?}");
        assert!(axis.high >= i128::from(i64::MAX));
        assert_eq!(axis.label(ticks[1]), "2E");
        let axis = ValueAxis::new(i64::MIN, i64::MAX);
        assert!(axis.ticks().len() <= 20);
    }

    #[test]
    fn time_ticks_fall_on_round_utc_times() {
        let t0 = 1_550_052_000_000; // 2019-02-13T10:00:00Z
        let axis = TimeAxis::new(t0, t0 + 48 * 3_600_000, 10);
        assert_eq!(axis.step, 6 * HOUR);
        let ticks = axis.ticks();
        assert!(ticks.iter().all(|t| t % (6 * HOUR) == 0));
        assert_eq!(
            axis.label(ticks[0], None),
            ("12:00".to_string(), Some("2019-02-13".to_string()))
        );
        assert_eq!(
            axis.label(ticks[1], Some(ticks[0])),
            ("18:00".to_string(), None)
        );
        assert_eq!(
            axis.label(ticks[2], Some(ticks[1])).1,
            Some("2019-02-14".to_string())
        );
        let axis = TimeAxis::new(t0, t0 + 365 * 86_400_000, 10);
        assert_eq!(axis.label(axis.ticks()[0], None).1, None);
        // Extreme times do not overflow.
        let axis = TimeAxis::new(i64::MIN, i64::MAX, 10);
        assert!(axis.ticks().len() <= 10);
        let _ = axis.label(axis.ticks()[0], None);
        let axis = TimeAxis::new(t0, t0, 10);
        assert!(!axis.ticks().is_empty());
    }
}
