//! Series functions: plain loops over one series' decoded columns. Each
//! function takes a series as two parallel slices (times strictly increasing,
//! values) and knows nothing of storage or of the query text.

/// A percentage written in a query, kept exact: `2.5%` is
/// `Percent { mantissa: 25, scale: 1 }`, i.e. mantissa / 10^scale percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Percent {
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
        let lhs = 100i128 * 10i128.pow(self.scale) * i128::from(part);
        let rhs = i128::from(self.mantissa) * i128::from(whole);
        lhs >= rhs
    }
}

/// The threshold argument of `drop()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threshold {
    /// An absolute count, at least 1: the loss must be at least this much.
    Absolute(u64),
    /// A share of the value before the fall.
    Percent(Percent),
}
