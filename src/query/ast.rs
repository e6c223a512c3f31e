//! The untyped syntax tree of a query, as `parse` builds it and `print`
//! writes it back.
//!
//! The tree says only what was written: which function was called with which
//! arguments, which metric was selected with which matchers. It does not know
//! what a function means or what type an expression has; that is decided once,
//! in `check`. Every node carries the byte range of the query text it came
//! from, so that the checker can point at the offending part.
//!
//! Literal values are kept in a canonical form (numbers without trailing
//! fractional zeros, durations as a number of seconds), so that two ways of
//! writing the same value give equal trees and the printer has one way to
//! write each value.

// Nothing outside the query front-end builds or reads a tree yet.

use std::ops::Range;

/// A byte range of the query text: `start..end`, with `start == end` for a
/// point (such as the end of the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    /// The offset of the first byte.
    pub start: usize,
    /// The offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The span as the `Range` that [`crate::QueryError`] carries.
    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// The largest number of seconds a duration may have: its length in
/// milliseconds must fit in an `i64` ([Q6]).
pub(crate) const MAX_DURATION_SECONDS: u64 = (i64::MAX / 1000) as u64;

/// The duration units from largest to smallest, with their length in
/// seconds ([Q6]): the parser reads them, the printer writes them.
pub(crate) const DURATION_UNITS: [(char, u64); 5] = [
    ('w', 7 * 24 * 3600),
    ('d', 24 * 3600),
    ('h', 3600),
    ('m', 60),
    ('s', 1),
];

/// The most digits a number may have after its decimal point ([Q4]).
pub(crate) const MAX_DECIMAL_PLACES: u32 = 6;

/// An expression: something that evaluates to a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// `followers{account="x"}`, or a bare identifier such as `followers`
    /// or `lost` (which the checker may read as a column name).
    Selector(Selector),
    /// `drop(followers, 5%, 1h)`.
    Call(Call),
    /// `not recovered_within(…)`.
    Not(Not),
}

impl Expr {
    /// The text the expression was parsed from.
    pub fn span(&self) -> Span {
        match self {
            Expr::Selector(selector) => selector.span,
            Expr::Call(call) => call.span,
            Expr::Not(not) => not.span,
        }
    }
}

/// An identifier: a metric, label or function name ([Q2]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    /// The name as written.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A metric name with optional label matchers ([Q8]).
///
/// `followers` and `followers{}` give the same tree: both select every
/// account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector {
    /// The metric.
    pub metric: Ident,
    /// The matchers between the braces, in the order written; all must hold.
    pub matchers: Vec<Matcher>,
    /// From the metric name to the closing brace, if any.
    pub span: Span,
}

impl Selector {
    /// True when the selector is a bare identifier, which the checker may
    /// read as a column name where one is expected.
    pub fn is_bare(&self) -> bool {
        self.matchers.is_empty()
    }
}

/// How a matcher compares a label with its string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MatchOp {
    /// `=`: equal to the string.
    Equal,
    /// `!=`: not equal to the string.
    NotEqual,
    /// `=~`: the whole label matches the regular expression.
    Matches,
    /// `!~`: the whole label does not match the regular expression.
    NotMatches,
}

impl MatchOp {
    /// The operator as written in a query.
    pub fn symbol(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Matches => "=~",
            MatchOp::NotMatches => "!~",
        }
    }

    /// True for the operators whose string is a regular expression.
    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Matches | MatchOp::NotMatches)
    }
}

/// `label op "value"` inside a selector's braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matcher {
    /// The label; the checker accepts only `account` ([Q14]).
    pub label: Ident,
    /// The comparison.
    pub op: MatchOp,
    /// The string compared with.
    pub value: StringLit,
    /// From the label to the end of the string.
    pub span: Span,
}

/// A string literal ([Q3]), with its escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StringLit {
    /// The text between the quotes, unescaped.
    pub value: String,
    /// From the opening quote to the closing quote, both included.
    pub span: Span,
}

/// A function call ([Q9]). The parser accepts any name and any number of
/// arguments; the checker decides whether they make sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// The function's name, as written (names are case-sensitive).
    pub function: Ident,
    /// The arguments, in order.
    pub args: Vec<Arg>,
    /// From the name to the closing parenthesis.
    pub span: Span,
}

/// `not` before a call ([Q10]). The parser makes sure the call is to
/// `recovered_within`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Not {
    /// The keyword `not` itself.
    pub keyword: Span,
    /// The call that is negated.
    pub call: Call,
    /// From `not` to the end of the call.
    pub span: Span,
}

/// An argument of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    /// A table expression, or a bare identifier.
    Expr(Expr),
    /// A number without a unit: `1000`, `2.5` ([Q4]).
    Number {
        /// Its value.
        value: Decimal,
        /// Where it was written.
        span: Span,
    },
    /// A number followed by `%`: `5%`, `2.5%` ([Q5]).
    Percent {
        /// The number before the `%`.
        value: Decimal,
        /// Where it was written, `%` included.
        span: Span,
    },
    /// A length of time: `1h30m` ([Q6]).
    Duration {
        /// Its length.
        value: Duration,
        /// Where it was written.
        span: Span,
    },
}

impl Arg {
    /// The text the argument was parsed from.
    pub fn span(&self) -> Span {
        match self {
            Arg::Expr(expr) => expr.span(),
            Arg::Number { span, .. } | Arg::Percent { span, .. } | Arg::Duration { span, .. } => {
                *span
            }
        }
    }
}

/// A non-negative decimal number, exact: `mantissa / 10^scale`.
///
/// The parser keeps it canonical: `scale` is at most [`MAX_DECIMAL_PLACES`]
/// and, when it is not zero, the mantissa does not end in a zero digit
/// (`2.50` is stored as `2.5`, `3.0` as `3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Decimal {
    /// The digits without the decimal point.
    pub mantissa: u64,
    /// How many of those digits are after the decimal point.
    pub scale: u32,
}

impl Decimal {
    /// Makes the canonical form of `mantissa / 10^scale` by dropping
    /// trailing fractional zeros.
    pub fn canonical(mut mantissa: u64, mut scale: u32) -> Decimal {
        while scale > 0 && mantissa.is_multiple_of(10) {
            mantissa /= 10;
            scale -= 1;
        }
        Decimal { mantissa, scale }
    }

    /// The value when it is a whole number.
    pub fn as_integer(self) -> Option<u64> {
        (self.scale == 0).then_some(self.mantissa)
    }
}

/// A length of time, a whole number of seconds (the smallest unit a query
/// can write) of at most [`MAX_DURATION_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Duration {
    /// The length in seconds.
    pub seconds: u64,
}

impl Duration {
    /// The length in milliseconds, or `None` when it does not fit in an
    /// `i64` (which the parser never lets through).
    pub fn millis(self) -> Option<i64> {
        i64::try_from(self.seconds).ok()?.checked_mul(1000)
    }
}

/// Erasing spans lets tests compare trees parsed from different texts, such
/// as a query and its canonical print.
#[cfg(test)]
pub(crate) mod erase {
    use super::*;

    /// Sets every span in the tree to `0..0`.
    pub(crate) fn expr(expr: &mut Expr) {
        match expr {
            Expr::Selector(selector) => self::selector(selector),
            Expr::Call(call) => self::call(call),
            Expr::Not(not) => {
                not.keyword = Span::default();
                not.span = Span::default();
                self::call(&mut not.call);
            }
        }
    }

    fn selector(selector: &mut Selector) {
        selector.span = Span::default();
        selector.metric.span = Span::default();
        for matcher in &mut selector.matchers {
            matcher.span = Span::default();
            matcher.label.span = Span::default();
            matcher.value.span = Span::default();
        }
    }

    fn call(call: &mut Call) {
        call.span = Span::default();
        call.function.span = Span::default();
        for arg in &mut call.args {
            match arg {
                Arg::Expr(inner) => self::expr(inner),
                Arg::Number { span, .. }
                | Arg::Percent { span, .. }
                | Arg::Duration { span, .. } => {
                    *span = Span::default();
                }
            }
        }
    }
}
