//! Series functions: plain loops over one series' decoded columns. Each
//! function takes a series as two parallel slices (times strictly increasing,
//! values) and knows nothing of storage or of the query text.
//!
//! - [`drop`](mod@drop): `drop(SERIES, THRESHOLD, WINDOW)`, the falls in a series.
//! - [`recover`]: `recovered_within(DROPS, DURATION [, FRACTION])` and its
//!   negation, which tell the falls that came back from those that did not.
//! - [`window`]: the series → series functions over a sliding time window
//!   (`latest`, `change`, `min_over`, `max_over`).
//! - [`resample`](mod@resample): `resample(STEP)`, one point per epoch-aligned bucket.
//!
//! Every function is O(n) in the length of the series (recovery adds a
//! binary search per episode), never panics on any input, and takes
//! reusable buffers so that the evaluator, which calls it once per series for
//! possibly millions of series, allocates nothing in steady state.
//!
//! Nothing overflows. Window edges near `i64::MIN`/`i64::MAX` saturate,
//! which gives the same answer as exact arithmetic because no time can lie
//! beyond a saturated edge. Every yes/no on values (does a point qualify, has
//! an episode recovered) is exact for any i64 values. Where a difference of
//! values is itself the result (an episode's `lost`, `change`), it saturates
//! at the i64 range; that cannot happen for counts (values >= 0), whose
//! differences always fit.

pub mod drop;
mod monotonic;
pub mod recover;
pub mod resample;
pub mod window;

#[cfg(test)]
mod reference;

pub use drop::{DropFinder, Episode};
pub use recover::{Recovered, Recovery, find_recovery, not_recovered_within, recovered_within};
pub use resample::resample;
pub use window::{WindowExtremes, change, latest};

/// A percentage written in a query, kept exact: `2.5%` is
/// `Percent { mantissa: 25, scale: 1 }`, i.e. mantissa / 10^scale percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent {
    /// The digits of the percentage without the decimal point.
    pub mantissa: u64,
    /// How many of those digits are after the decimal point (at most 6).
    pub scale: u32,
}

impl Percent {
    /// 100%.
    pub const FULL: Percent = Percent {
        mantissa: 100,
        scale: 0,
    };

    /// True when `part >= self · whole / 100`, computed exactly in i128:
    /// `100 · 10^scale · part >= mantissa · whole`.
    pub fn reached(self, part: i64, whole: i64) -> bool {
        // The same comparison, but without a panic should a scale beyond
        // i128 (which the parser never produces) ever reach it.
        self.reached_wide(i128::from(part), whole)
    }

    /// `100 · 10^scale`, the factor that turns "part is P% of whole" into
    /// the integer comparison `factor · part >= mantissa · whole`. It
    /// saturates at `i128::MAX` for scales beyond i128 (the parser allows at
    /// most 6), which keeps every comparison exact: against a right-hand
    /// side below 2^127 in magnitude, a saturated left-hand side compares
    /// the same way as the true, larger one.
    pub fn factor(self) -> i128 {
        10i128
            .checked_pow(self.scale)
            .map_or(i128::MAX, |p| p.saturating_mul(100))
    }

    /// Like [`reached`](Self::reached) for a part that needs more than 64
    /// bits (a difference of two i64 values), exact for every `part` of at
    /// most 65 bits and every scale.
    pub fn reached_wide(self, part: i128, whole: i64) -> bool {
        // mantissa · whole is below 2^127 in magnitude, so it cannot
        // overflow; see `factor` for why saturating the left side is exact.
        self.factor().saturating_mul(part) >= i128::from(self.mantissa) * i128::from(whole)
    }
}

/// The threshold argument of `drop()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// An absolute count, at least 1: the loss must be at least this much.
    Absolute(u64),
    /// A share of the value before the fall.
    Percent(Percent),
}

/// A series built by a series → series function: parallel times and values.
///
/// The functions append to it rather than replace its contents, so that the
/// evaluator can either clear it per series (and reuse its allocation) or
/// pack many series into one buffer, remembering where each one starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesBuf {
    /// The times in milliseconds, strictly increasing within one series.
    pub times: Vec<i64>,
    /// The values, one per time.
    pub values: Vec<i64>,
}

impl SeriesBuf {
    /// An empty buffer; it allocates only when points are pushed.
    pub fn new() -> SeriesBuf {
        SeriesBuf::default()
    }

    /// Forgets the points but keeps the allocations.
    pub fn clear(&mut self) {
        self.times.clear();
        self.values.clear();
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Appends one point.
    pub fn push(&mut self, time: i64, value: i64) {
        self.times.push(time);
        self.values.push(value);
    }

    /// Appends a copy of `times` and as many zero values, and returns those
    /// new values to be overwritten: for the functions that give one output
    /// point per input point at the same time. Filling a slice in a plain
    /// loop lets the compiler keep the loop's state in registers, which
    /// pushing or extending from a closure does not.
    fn append_times(&mut self, times: &[i64]) -> &mut [i64] {
        self.times.extend_from_slice(times);
        let start = self.values.len();
        self.values.resize(start + times.len(), 0);
        // `start` is the old length and the vector is now longer, so the
        // range is in bounds.
        &mut self.values[start..]
    }
}

/// Whether `t - window` fits in an i64 for every time `t` of the series, for
/// a window of 0 or more.
///
/// Such a start can only overflow below i64::MIN, and since a series' times
/// increase, it does for some point only if it does for the first. When it
/// cannot, the hot loops compute window starts with plain (wrapping, but
/// then exact) subtraction. Otherwise they saturate, which is just as exact
/// for a window (a start clamped to i64::MIN admits the same times as the
/// true start below it), only a few instructions longer per point. Each
/// caller instantiates its loop once for each case.
fn window_start_fits(times: &[i64], window_ms: i64) -> bool {
    window_ms >= 0
        && times
            .first()
            .is_none_or(|&first| first.checked_sub(window_ms).is_some())
}

/// The two columns of a series cut to the same length.
///
/// Callers pass columns of the same length; if a bug elsewhere ever passed
/// columns of different lengths, the functions treat the series as its first
/// `min(len)` points instead of reading past the shorter column.
fn same_len<'a>(times: &'a [i64], values: &'a [i64]) -> (&'a [i64], &'a [i64]) {
    debug_assert_eq!(
        times.len(),
        values.len(),
        "a series' columns differ in length"
    );
    let n = times.len().min(values.len());
    (&times[..n], &values[..n])
}
