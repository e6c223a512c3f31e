//! Query text → syntax tree, with nom.
//!
//! The grammar is in docs/query-language.md ([Q1]–[Q11]). The parser only
//! checks the shape of the text; it accepts any function name and any number
//! of arguments, which the checker then judges. Literal values are checked
//! here as far as they must be to fit the tree (a number that overflows, a
//! duration unit out of order), and made canonical.
//!
//! Errors say "expected X, found Y" at the furthest position the parser
//! reached, or name the problem with a literal ("unknown escape `\q`").
//! Positions are byte offsets into the query, computed with [`nom::Offset`].
//! Nothing here panics on any input, and nesting is limited to
//! [`MAX_DEPTH`] calls so that deep input cannot overflow the stack.

// Nothing outside the query front-end parses yet.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1, satisfy};
use nom::combinator::{recognize, value};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Offset, Parser as _};

use super::ast::{
    Arg, Call, DURATION_UNITS, Decimal, Duration, Expr, Ident, MAX_DECIMAL_PLACES,
    MAX_DURATION_SECONDS, MatchOp, Matcher, Not, Selector, Span, StringLit,
};
use super::registry::is_function;
use crate::error::QueryError;

/// How deeply calls may nest ([Q11]). Real queries nest a handful of levels;
/// the limit only stops hostile input from exhausting the stack.
pub(crate) const MAX_DEPTH: usize = 64;

/// The longest query text, in bytes ([Q11a]). Real queries are a few
/// hundred bytes; the limit bounds the time and memory hostile text can
/// cost before anything else is looked at.
pub(crate) const MAX_QUERY_BYTES: usize = 64 * 1024;

/// Parses a whole query ([Q7]).
pub(crate) fn parse(query: &str) -> Result<Expr, QueryError> {
    if query.len() > MAX_QUERY_BYTES {
        // The caret goes under the first character past the limit.
        let mut at = MAX_QUERY_BYTES;
        while !query.is_char_boundary(at) {
            at -= 1;
        }
        return Err(QueryError {
            query: query.to_string(),
            span: at..query.len(),
            message: format!(
                "the query is {} bytes long; the longest allowed is {MAX_QUERY_BYTES}",
                query.len()
            ),
            hint: Some(
                "queries are rarely more than a few hundred bytes; to select thousands of \
                 accounts by name, a program can use the library's Db::series"
                    .to_string(),
            ),
        });
    }
    let parser = Parser { query };
    match parser.query(query) {
        Ok((_, expr)) => Ok(expr),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(parser.report(e)),
        // Only streaming parsers ask for more input, and none is used here;
        // answer as if the input had ended, which is what it means.
        Err(nom::Err::Incomplete(_)) => Err(parser.report(SyntaxError::expected(
            suffix(query, query.len()),
            "more input",
        ))),
    }
}

/// Why parsing stopped, at a position of the input.
#[derive(Debug, Clone, PartialEq)]
struct SyntaxError<'a> {
    /// The input that was left where the problem was found; its offset in
    /// the query is where the caret goes.
    at: &'a str,
    /// What is wrong.
    problem: Problem,
}

#[derive(Debug, Clone, PartialEq)]
enum Problem {
    /// One of these was expected at `at` ("`,`", "a string"); the message
    /// names what was found there instead. Empty when a nom combinator
    /// failed without saying what it wanted.
    Expected {
        /// The alternatives, each as it is printed in the message.
        what: Vec<String>,
        /// A suggestion for a common mistake.
        hint: Option<String>,
    },
    /// A problem with a token that was recognised, such as a literal out of
    /// range; the span starts at `at` and is `len` bytes long.
    Invalid {
        len: usize,
        message: String,
        hint: Option<String>,
    },
}

impl<'a> SyntaxError<'a> {
    fn expected(at: &'a str, what: &str) -> SyntaxError<'a> {
        SyntaxError {
            at,
            problem: Problem::Expected {
                what: vec![what.to_string()],
                hint: None,
            },
        }
    }

    fn invalid(at: &'a str, len: usize, message: String, hint: Option<&str>) -> SyntaxError<'a> {
        SyntaxError {
            at,
            problem: Problem::Invalid {
                len,
                message,
                hint: hint.map(str::to_string),
            },
        }
    }

    /// Adds a hint to an "expected" error (an invalid token already has the
    /// hint that fits it best).
    fn with_hint(mut self, new_hint: String) -> SyntaxError<'a> {
        if let Problem::Expected { hint, .. } = &mut self.problem {
            *hint = Some(new_hint);
        }
        self
    }

    /// As a recoverable nom error, which `alt` may try alternatives after.
    fn error<T>(self) -> Result<T, nom::Err<SyntaxError<'a>>> {
        Err(nom::Err::Error(self))
    }

    /// As a nom failure, which stops parsing: used once the text can only be
    /// one thing and that thing is wrong.
    fn failure<T>(self) -> Result<T, nom::Err<SyntaxError<'a>>> {
        Err(nom::Err::Failure(self))
    }
}

impl<'a> ParseError<&'a str> for SyntaxError<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        SyntaxError {
            at: input,
            problem: Problem::Expected {
                what: Vec::new(),
                hint: None,
            },
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn from_char(input: &'a str, c: char) -> Self {
        SyntaxError::expected(input, &format!("`{c}`"))
    }

    /// Keeps the error that got furthest, which is where the caret goes
    /// ([Q16]); when both stopped at the same place, the message lists what
    /// either would have accepted.
    fn or(self, other: Self) -> Self {
        // Less input left means further into the query.
        match self.at.len().cmp(&other.at.len()) {
            std::cmp::Ordering::Less => self,
            std::cmp::Ordering::Greater => other,
            std::cmp::Ordering::Equal => match (self.problem, other.problem) {
                (
                    Problem::Expected { mut what, hint },
                    Problem::Expected {
                        what: more,
                        hint: other_hint,
                    },
                ) => {
                    for item in more {
                        if !what.contains(&item) {
                            what.push(item);
                        }
                    }
                    SyntaxError {
                        at: self.at,
                        problem: Problem::Expected {
                            what,
                            hint: hint.or(other_hint),
                        },
                    }
                }
                (invalid @ Problem::Invalid { .. }, _) | (_, invalid @ Problem::Invalid { .. }) => {
                    SyntaxError {
                        at: self.at,
                        problem: invalid,
                    }
                }
            },
        }
    }
}

type PResult<'a, T> = IResult<&'a str, T, SyntaxError<'a>>;

/// Replaces a combinator's anonymous error with a named expectation, so the
/// message says what was wanted.
fn expecting<'a, T>(
    what: &'static str,
    mut parser: impl nom::Parser<&'a str, Output = T, Error = SyntaxError<'a>>,
) -> impl FnMut(&'a str) -> PResult<'a, T> {
    move |input| match parser.parse(input) {
        Err(nom::Err::Error(_)) => SyntaxError::expected(input, what).error(),
        other => other,
    }
}

/// Whitespace between tokens: spaces, tabs and line breaks ([Q1]).
///
/// Not nom's `multispace0`: in nom 8.0.0, on input that is all whitespace,
/// it returns an empty remainder that points at the start of the input
/// instead of its end, which would put the caret of a later error in the
/// wrong place.
fn ws(input: &str) -> PResult<'_, &str> {
    take_while(|c| matches!(c, ' ' | '\t' | '\n' | '\r')).parse(input)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `[A-Za-z_][A-Za-z0-9_]*` ([Q2]).
fn ident_text(input: &str) -> PResult<'_, &str> {
    recognize((satisfy(is_ident_start), take_while(is_ident_continue))).parse(input)
}

/// The characters a number, percentage or duration is made of, so that
/// `5x` or `1.5h` is read as one malformed token rather than as a number
/// followed by something unexpected.
fn is_number_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.'
}

/// Holds the whole query so that spans can be computed from the remaining
/// input at any point.
struct Parser<'q> {
    query: &'q str,
}

impl<'q> Parser<'q> {
    /// The byte offset of `rest` in the query.
    fn offset(&self, rest: &'q str) -> usize {
        self.query.offset(rest)
    }

    /// The span from where `from` starts to where `to` starts.
    fn span(&self, from: &'q str, to: &'q str) -> Span {
        Span::new(self.offset(from), self.offset(to))
    }

    /// `ws expr ws` and nothing else ([Q7]).
    fn query(&self, input: &'q str) -> PResult<'q, Expr> {
        let (input, _) = ws(input)?;
        let (input, expr) = self.expr(input, 0)?;
        let (input, _) = ws(input)?;
        if !input.is_empty() {
            let mut error = SyntaxError::expected(input, "end of query");
            if input.starts_with(')') {
                error = error.with_hint("this `)` has no matching `(`".to_string());
            } else if let Expr::Selector(selector) = &expr
                && selector.is_bare()
                && is_function(&selector.metric.name)
            {
                error = error.with_hint(format!(
                    "`{0}` is a function; its arguments go in parentheses: {0}(…)",
                    selector.metric.name
                ));
            } else if input.starts_with(',') {
                error = error.with_hint(
                    "a query is one expression; arguments separated by commas go inside a call"
                        .to_string(),
                );
            }
            return error.failure();
        }
        Ok((input, expr))
    }

    /// A selector, a call, or `not` before a call ([Q8], [Q9], [Q10]).
    /// `depth` counts the calls around this expression.
    fn expr(&self, input: &'q str, depth: usize) -> PResult<'q, Expr> {
        let (after_name, name) =
            expecting("a metric name or a function call", ident_text).parse(input)?;
        let function = Ident {
            name: name.to_string(),
            span: self.span(input, after_name),
        };
        let (next, _) = ws(after_name)?;
        if name == "not" && next.len() < after_name.len() && next.starts_with(is_ident_start) {
            return self.not(input, function, next, depth);
        }
        if next.starts_with('(') {
            let (rest, call) = self.call(input, function, next, depth)?;
            return Ok((rest, Expr::Call(call)));
        }
        if next.starts_with('{') {
            let (rest, matchers) = self.matchers(next)?;
            let span = self.span(input, rest);
            return Ok((
                rest,
                Expr::Selector(Selector {
                    metric: function,
                    matchers,
                    span,
                }),
            ));
        }
        // A bare identifier: the whitespace after it belongs to whatever
        // comes next, so the span ends with the name.
        let span = function.span;
        Ok((
            after_name,
            Expr::Selector(Selector {
                metric: function,
                matchers: Vec::new(),
                span,
            }),
        ))
    }

    /// `not recovered_within(…)`: `input` starts at `not`, `next` at the
    /// word after it ([Q10]).
    fn not(
        &self,
        input: &'q str,
        keyword: Ident,
        next: &'q str,
        depth: usize,
    ) -> PResult<'q, Expr> {
        let (after_name, name) = ident_text(next)?;
        if name != "recovered_within" {
            return SyntaxError::invalid(
                input,
                keyword.span.end - keyword.span.start,
                "`not` is allowed only directly before recovered_within()".to_string(),
                Some("`not recovered_within(drop(…), 1d)` keeps the drops that did not recover"),
            )
            .failure();
        }
        let function = Ident {
            name: name.to_string(),
            span: self.span(next, after_name),
        };
        let (paren, _) = ws(after_name)?;
        if !paren.starts_with('(') {
            return SyntaxError::expected(paren, "`(`").failure();
        }
        let (rest, call) = self.call(next, function, paren, depth)?;
        Ok((
            rest,
            Expr::Not(Not {
                keyword: keyword.span,
                call,
                span: self.span(input, rest),
            }),
        ))
    }

    /// `name ( [arg {, arg}] )`: `input` starts at the name, `paren` at the
    /// opening parenthesis ([Q9]).
    fn call(
        &self,
        input: &'q str,
        function: Ident,
        paren: &'q str,
        depth: usize,
    ) -> PResult<'q, Call> {
        if depth >= MAX_DEPTH {
            let len = function.span.end - function.span.start;
            return SyntaxError::invalid(
                input,
                len,
                format!("calls are nested more than {MAX_DEPTH} deep"),
                Some("no useful query nests this deeply; simplify it"),
            )
            .failure();
        }
        let (mut rest, _) = (char('('), ws).parse(paren)?;
        let mut args = Vec::new();
        if let Ok((after, _)) = char::<_, SyntaxError>(')').parse(rest) {
            let span = self.span(input, after);
            return Ok((
                after,
                Call {
                    function,
                    args,
                    span,
                },
            ));
        }
        loop {
            let (after_arg, arg) = self.arg(rest, depth + 1)?;
            args.push(arg);
            let (after_ws, _) = ws(after_arg)?;
            let closing: PResult<char> = alt((char(','), char(')'))).parse(after_ws);
            match closing {
                Ok((after, ',')) => {
                    let (next, _) = ws(after)?;
                    if next.starts_with(')') {
                        return SyntaxError::expected(next, "an argument")
                            .with_hint("a call takes no comma after its last argument".to_string())
                            .failure();
                    }
                    rest = next;
                }
                Ok((after, _)) => {
                    let span = self.span(input, after);
                    return Ok((
                        after,
                        Call {
                            function,
                            args,
                            span,
                        },
                    ));
                }
                Err(nom::Err::Error(mut e)) => {
                    if after_ws.starts_with('%') && matches!(args.last(), Some(Arg::Number { .. }))
                    {
                        let number = before(rest, after_arg);
                        e = e.with_hint(format!("write a percentage without a space: {number}%"));
                    }
                    return Err(nom::Err::Failure(e));
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// One argument: an expression, or a literal that starts with a digit
    /// ([Q4], [Q5], [Q6]).
    fn arg(&self, input: &'q str, depth: usize) -> PResult<'q, Arg> {
        if input.starts_with(|c: char| c.is_ascii_digit()) {
            return self.number_like(input);
        }
        if input.starts_with(is_ident_start) {
            let (rest, expr) = self.expr(input, depth)?;
            return Ok((rest, Arg::Expr(expr)));
        }
        let mut error = SyntaxError::expected(input, "an argument");
        if input.starts_with('"') {
            error = error.with_hint(
                "strings are written only in label matchers, like followers{account=\"x\"}"
                    .to_string(),
            );
        } else if input.starts_with('.') {
            error =
                error.with_hint("write a digit before the decimal point, like 0.5%".to_string());
        } else if input.starts_with('-') {
            error = error.with_hint("numbers and durations cannot be negative".to_string());
        }
        error.failure()
    }

    /// A number, a percentage or a duration: they all start with digits and
    /// are told apart by what follows ([Q4], [Q5], [Q6]).
    fn number_like(&self, input: &'q str) -> PResult<'q, Arg> {
        let (after_digits, digits) = digit1(input)?;
        if after_digits.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return self.duration(input);
        }
        let (after_number, fraction) = match after_digits.strip_prefix('.') {
            Some(after_point) => expecting("a digit after the decimal point", digit1)
                .parse(after_point)
                .map_err(IntoFailure::into_failure)?,
            None => (after_digits, ""),
        };
        if after_number.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let (after_unit, _) =
                take_while1(|c: char| c.is_ascii_alphabetic()).parse(after_number)?;
            return SyntaxError::invalid(
                input,
                before(input, after_unit).len(),
                "a duration is a whole number of units".to_string(),
                Some("combine units instead, like 1h30m"),
            )
            .failure();
        }
        if fraction.len() > MAX_DECIMAL_PLACES as usize {
            let extra = suffix(fraction, MAX_DECIMAL_PLACES as usize);
            return SyntaxError::invalid(
                extra,
                extra.len(),
                format!("a number has at most {MAX_DECIMAL_PLACES} digits after the decimal point"),
                None,
            )
            .failure();
        }
        let number_text = before(input, after_number);
        let value = match decimal(digits, fraction) {
            Some(value) => value,
            None => {
                return SyntaxError::invalid(
                    input,
                    number_text.len(),
                    format!("the number {number_text} is too large"),
                    None,
                )
                .failure();
            }
        };
        if let Some(after_percent) = after_number.strip_prefix('%') {
            let span = self.span(input, after_percent);
            return Ok((after_percent, Arg::Percent { value, span }));
        }
        let span = self.span(input, after_number);
        Ok((after_number, Arg::Number { value, span }))
    }

    /// `digits unit {digits unit}` with units strictly descending ([Q6]).
    fn duration(&self, input: &'q str) -> PResult<'q, Arg> {
        let mut rest = input;
        let mut total: u64 = 0;
        // The index in DURATION_UNITS of the last unit, which the next one
        // must come after.
        let mut previous_unit: Option<usize> = None;
        loop {
            let (after_digits, digits) = digit1(rest)?;
            let (after_unit, unit) =
                take_while(|c: char| c.is_ascii_alphabetic()).parse(after_digits)?;
            if unit.is_empty() {
                let mut error = SyntaxError::expected(
                    after_digits,
                    "a duration unit (`w`, `d`, `h`, `m` or `s`)",
                );
                if !after_digits.starts_with('.') {
                    error = error.with_hint(format!(
                        "every number in a duration needs a unit, like {}m",
                        before(input, after_digits)
                    ));
                }
                return error.failure();
            }
            let unit_index = DURATION_UNITS
                .iter()
                .position(|&(symbol, _)| unit.len() == 1 && unit.starts_with(symbol));
            let Some(unit_index) = unit_index else {
                return SyntaxError::invalid(
                    after_digits,
                    unit.len(),
                    format!("unknown duration unit `{unit}`"),
                    Some(
                        "the units are w (weeks), d (days), h (hours), m (minutes) and s (seconds)",
                    ),
                )
                .failure();
            };
            if previous_unit.is_some_and(|previous| unit_index <= previous) {
                return SyntaxError::invalid(
                    after_digits,
                    unit.len(),
                    format!("`{unit}` cannot come here: duration units go from largest to smallest, each at most once"),
                    Some("write a duration like 1w2d, 1h30m or 2m30s"),
                )
                .failure();
            }
            previous_unit = Some(unit_index);
            let seconds_per_unit = DURATION_UNITS
                .get(unit_index)
                .map_or(1, |&(_, length)| length);
            let part = digits
                .parse::<u64>()
                .ok()
                .and_then(|count| count.checked_mul(seconds_per_unit));
            total = match part.and_then(|part| total.checked_add(part)) {
                Some(total) if total <= MAX_DURATION_SECONDS => total,
                _ => {
                    return SyntaxError::invalid(
                        input,
                        before(input, after_unit).len(),
                        "the duration is too long (at most about 292 million years)".to_string(),
                        None,
                    )
                    .failure();
                }
            };
            rest = after_unit;
            if !rest.starts_with(|c: char| c.is_ascii_digit()) {
                break;
            }
        }
        if rest.starts_with('.') {
            return SyntaxError::invalid(
                input,
                before(input, rest).len() + 1,
                "a duration is a whole number of units".to_string(),
                Some("combine units instead, like 1h30m"),
            )
            .failure();
        }
        let span = self.span(input, rest);
        Ok((
            rest,
            Arg::Duration {
                value: Duration { seconds: total },
                span,
            },
        ))
    }

    /// `{ [matcher {, matcher} [,]] }`, `input` at the brace ([Q8]).
    fn matchers(&self, input: &'q str) -> PResult<'q, Vec<Matcher>> {
        let (mut rest, _) = (char('{'), ws).parse(input)?;
        let mut matchers = Vec::new();
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                return Ok((after, matchers));
            }
            let (after_matcher, matcher) = self.matcher(rest).map_err(|e| {
                e.map(|e| {
                    if e.at.len() == rest.len() {
                        SyntaxError::expected(rest, "a label")
                            .or(SyntaxError::expected(rest, "`}`"))
                    } else {
                        e
                    }
                })
                .into_failure()
            })?;
            matchers.push(matcher);
            let (after_ws, _) = ws(after_matcher)?;
            let (after_separator, separator) = alt((char(','), char('}')))
                .parse(after_ws)
                .map_err(|e| e.into_failure())?;
            if separator == '}' {
                return Ok((after_separator, matchers));
            }
            (rest, _) = ws(after_separator)?;
        }
    }

    /// `label op "string"` ([Q8]).
    fn matcher(&self, input: &'q str) -> PResult<'q, Matcher> {
        let (after_label, label) = ident_text(input)?;
        let label = Ident {
            name: label.to_string(),
            span: self.span(input, after_label),
        };
        let (at_op, _) = ws(after_label)?;
        let (after_op, op) = expecting(
            "`=`, `!=`, `=~` or `!~`",
            alt((
                value(MatchOp::Matches, tag("=~")),
                value(MatchOp::NotMatches, tag("!~")),
                value(MatchOp::NotEqual, tag("!=")),
                value(MatchOp::Equal, tag("=")),
            )),
        )
        .parse(at_op)
        .map_err(|e| e.into_failure())?;
        let (at_string, _) = ws(after_op)?;
        if !at_string.starts_with('"') {
            return SyntaxError::expected(at_string, "a string").failure();
        }
        let (rest, value) = self.string(at_string)?;
        let span = self.span(input, rest);
        Ok((
            rest,
            Matcher {
                label,
                op,
                value,
                span,
            },
        ))
    }

    /// `"…"` with `\"` and `\\` as the only escapes ([Q3]); `input` starts
    /// at the opening quote.
    fn string(&self, input: &'q str) -> PResult<'q, StringLit> {
        let (body, _) = char('"').parse(input)?;
        let mut text = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    let rest = suffix(body, i + 1);
                    let span = self.span(input, rest);
                    return Ok((rest, StringLit { value: text, span }));
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => text.push(escaped),
                    Some((_, other)) => {
                        return SyntaxError::invalid(
                            suffix(body, i),
                            1 + other.len_utf8(),
                            format!("unknown escape `\\{other}` in a string"),
                            Some("the only escapes are \\\" and \\\\; write any other character as it is"),
                        )
                        .failure();
                    }
                    None => break,
                },
                other => text.push(other),
            }
        }
        SyntaxError::expected(suffix(body, body.len()), "`\"`")
            .with_hint(format!(
                "the string that starts at position {} is never closed",
                self.offset(input) + 1
            ))
            .failure()
    }

    /// The [`QueryError`] for a syntax error: the message, and a span
    /// starting where parsing stopped ([Q16]).
    fn report(&self, error: SyntaxError<'q>) -> QueryError {
        let start = self.offset(error.at);
        let (len, message, hint) = match error.problem {
            Problem::Expected { what, hint } => {
                let (found, len) = describe_found(error.at);
                let message = if what.is_empty() {
                    format!("unexpected {found}")
                } else {
                    format!("expected {}, found {found}", one_of(&what))
                };
                (len, message, hint)
            }
            Problem::Invalid { len, message, hint } => (len, message, hint),
        };
        QueryError {
            query: self.query.to_string(),
            span: start..(start + len).min(self.query.len()),
            message,
            hint,
        }
    }
}

/// The part of `text` from byte `at` on; empty if `at` is past the end or
/// not a character boundary, so that slicing user text can never panic.
fn suffix(text: &str, at: usize) -> &str {
    text.get(at..)
        .unwrap_or_else(|| text.get(text.len()..).unwrap_or_default())
}

/// The first `len` bytes of `text`, or all of it when `len` is not a
/// character boundary inside it.
fn prefix(text: &str, len: usize) -> &str {
    text.get(..len).unwrap_or(text)
}

/// The text from the start of `from` to the start of `to`, where `to` is a
/// later part of the same input.
fn before<'a>(from: &'a str, to: &str) -> &'a str {
    prefix(from, from.len().saturating_sub(to.len()))
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Names the token at the start of `rest` for a message, with its length
/// in bytes for the span.
fn describe_found(rest: &str) -> (String, usize) {
    let Some(first) = rest.chars().next() else {
        return ("end of query".to_string(), 0);
    };
    let word_len = |is_part: fn(char) -> bool| {
        rest.char_indices()
            .find(|&(_, c)| !is_part(c))
            .map_or(rest.len(), |(i, _)| i)
    };
    if is_ident_start(first) {
        let len = word_len(is_ident_continue);
        return (format!("`{}`", prefix(rest, len)), len);
    }
    if first.is_ascii_digit() {
        let len = word_len(is_number_char);
        let len = if suffix(rest, len).starts_with('%') {
            len + 1
        } else {
            len
        };
        return (format!("`{}`", prefix(rest, len)), len);
    }
    let described = match first {
        '"' => "a string".to_string(),
        '\n' | '\r' => "a line break".to_string(),
        '`' => "a backtick".to_string(),
        c if c.is_whitespace() => "a space".to_string(),
        c if c.is_control() => format!("the control character {:?}", c),
        c => format!("`{c}`"),
    };
    (described, first.len_utf8())
}

/// `digits.fraction` as a canonical decimal, or `None` when it does not fit
/// in a `u64` mantissa.
fn decimal(digits: &str, fraction: &str) -> Option<Decimal> {
    let scale = u32::try_from(fraction.len()).ok()?;
    let mut mantissa: u64 = 0;
    for digit in digits.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(u64::from(digit.wrapping_sub(b'0')))?;
    }
    Some(Decimal::canonical(mantissa, scale))
}

/// Turns a recoverable error into a failure, once an alternative has been
/// committed to.
trait IntoFailure {
    fn into_failure(self) -> Self;
}

impl<E> IntoFailure for nom::Err<E> {
    fn into_failure(self) -> Self {
        match self {
            nom::Err::Error(e) => nom::Err::Failure(e),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ast::erase;
    use super::*;
    use proptest::prelude::*;

    fn parsed(query: &str) -> Expr {
        match parse(query) {
            Ok(expr) => expr,
            Err(e) => panic!("{query:?} does not parse:\n{}", e.render()),
        }
    }

    fn error(query: &str) -> QueryError {
        match parse(query) {
            Ok(expr) => panic!("{query:?} parsed as {expr:?}"),
            Err(e) => e,
        }
    }

    /// Checks the message and the byte span of a syntax error.
    fn assert_error(query: &str, span: std::ops::Range<usize>, message: &str) -> QueryError {
        let e = error(query);
        assert_eq!(e.message, message, "for {query:?}");
        assert_eq!(e.span, span, "for {query:?}:\n{}", e.render());
        assert_eq!(e.query, query);
        e
    }

    fn selector(expr: &Expr) -> &Selector {
        match expr {
            Expr::Selector(selector) => selector,
            other => panic!("not a selector: {other:?}"),
        }
    }

    fn call(expr: &Expr) -> &Call {
        match expr {
            Expr::Call(call) => call,
            other => panic!("not a call: {other:?}"),
        }
    }

    fn span(start: usize, end: usize) -> Span {
        Span::new(start, end)
    }

    #[test]
    fn bare_selector() {
        // [Q2] [Q8]
        let expr = parsed("followers");
        let s = selector(&expr);
        assert_eq!(s.metric.name, "followers");
        assert!(s.matchers.is_empty());
        assert_eq!(s.span, span(0, 9));
        assert_eq!(selector(&parsed("_Foo_9")).metric.name, "_Foo_9");
    }

    #[test]
    fn selector_with_each_operator() {
        // [Q8]
        for (text, op) in [
            ("=", MatchOp::Equal),
            ("!=", MatchOp::NotEqual),
            ("=~", MatchOp::Matches),
            ("!~", MatchOp::NotMatches),
        ] {
            let query = format!("followers{{account{text}\"ad.*\"}}");
            let expr = parsed(&query);
            let s = selector(&expr);
            assert_eq!(s.span, span(0, query.len()));
            let [m] = s.matchers.as_slice() else {
                panic!("one matcher expected in {s:?}")
            };
            assert_eq!(m.op, op);
            assert_eq!(m.label.name, "account");
            assert_eq!(m.label.span, span(10, 17));
            assert_eq!(m.value.value, "ad.*");
            assert_eq!(m.value.span, span(17 + text.len(), 23 + text.len()));
            assert_eq!(m.span, span(10, 23 + text.len()));
        }
    }

    #[test]
    fn several_matchers_trailing_comma_and_empty_braces() {
        // [Q8]
        let expr = parsed("f{account=~\"a.*\", account!=\"ab\",}");
        assert_eq!(selector(&expr).matchers.len(), 2);
        let expr = parsed("f { account = \"x\" , }");
        assert_eq!(selector(&expr).matchers.len(), 1);
        assert_eq!(selector(&expr).span, span(0, 21));
        let expr = parsed("f{}");
        assert!(selector(&expr).matchers.is_empty());
        assert_eq!(selector(&expr).span, span(0, 3));
        let expr = parsed("f{ }");
        assert!(selector(&expr).matchers.is_empty());
        // The parser takes any label; the checker accepts only `account`.
        let expr = parsed("f{acount=\"x\"}");
        assert_eq!(selector(&expr).matchers[0].label.name, "acount");
    }

    #[test]
    fn strings_and_escapes() {
        // [Q3]
        let value = |query: &str| selector(&parsed(query)).matchers[0].value.value.clone();
        assert_eq!(value(r#"f{account="a\"b"}"#), "a\"b");
        assert_eq!(value(r#"f{account="a\\b"}"#), "a\\b");
        assert_eq!(value(r#"f{account="\\\""}"#), "\\\"");
        assert_eq!(value(r#"f{account=""}"#), "");
        assert_eq!(value("f{account=\"ünï 😀\n\t\"}"), "ünï 😀\n\t");
    }

    #[test]
    fn calls_and_arguments() {
        // [Q9]
        let expr = parsed("drop(followers, 5%, 1h)");
        let c = call(&expr);
        assert_eq!(c.function.name, "drop");
        assert_eq!(c.function.span, span(0, 4));
        assert_eq!(c.span, span(0, 23));
        assert_eq!(c.args.len(), 3);
        assert_eq!(c.args[0].span(), span(5, 14));
        assert_eq!(
            c.args[1],
            Arg::Percent {
                value: Decimal {
                    mantissa: 5,
                    scale: 0
                },
                span: span(16, 18)
            }
        );
        assert_eq!(
            c.args[2],
            Arg::Duration {
                value: Duration { seconds: 3600 },
                span: span(20, 22)
            }
        );
        // The parser does not know functions: any name, any arity.
        assert!(call(&parsed("frobnicate()")).args.is_empty());
        assert_eq!(call(&parsed("f(a, b, c, d, e)")).args.len(), 5);
        // Nesting.
        let expr = parsed("count(drop(f, 1, 1s))");
        let Arg::Expr(inner) = &call(&expr).args[0] else {
            panic!("expected an expression")
        };
        assert_eq!(call(inner).span, span(6, 20));
    }

    #[test]
    fn whitespace_between_tokens() {
        // [Q1]
        let compact = parsed("drop(followers{account=\"x\"},5%,1h)");
        let spaced = parsed(" \t\ndrop \n( followers\t{ account\n=\n\"x\" , } ,\r\n 5% , 1h )\n");
        let (mut compact, mut spaced) = (compact, spaced);
        erase::expr(&mut compact);
        erase::expr(&mut spaced);
        assert_eq!(compact, spaced);
        // Spans exclude the surrounding whitespace.
        assert_eq!(parsed("  followers  ").span(), span(2, 11));
        assert_eq!(parsed("\n f ( ) ").span(), span(2, 7));
    }

    #[test]
    fn numbers() {
        // [Q4]
        let number = |text: &str| match &call(&parsed(&format!("f({text})"))).args[0] {
            Arg::Number { value, .. } => *value,
            other => panic!("not a number: {other:?}"),
        };
        assert_eq!(
            number("1000"),
            Decimal {
                mantissa: 1000,
                scale: 0
            }
        );
        assert_eq!(
            number("2.5"),
            Decimal {
                mantissa: 25,
                scale: 1
            }
        );
        assert_eq!(
            number("2.50"),
            Decimal {
                mantissa: 25,
                scale: 1
            }
        );
        assert_eq!(
            number("007.000"),
            Decimal {
                mantissa: 7,
                scale: 0
            }
        );
        assert_eq!(
            number("0.000001"),
            Decimal {
                mantissa: 1,
                scale: 6
            }
        );
        assert_eq!(
            number("0"),
            Decimal {
                mantissa: 0,
                scale: 0
            }
        );
        assert_eq!(
            number("18446744073709551615"),
            Decimal {
                mantissa: u64::MAX,
                scale: 0
            }
        );
    }

    #[test]
    fn percentages() {
        // [Q5]
        let percent = |text: &str| match &call(&parsed(&format!("f({text})"))).args[0] {
            Arg::Percent { value, span } => (*value, *span),
            other => panic!("not a percentage: {other:?}"),
        };
        assert_eq!(
            percent("5%"),
            (
                Decimal {
                    mantissa: 5,
                    scale: 0
                },
                span(2, 4)
            )
        );
        assert_eq!(
            percent("2.5%").0,
            Decimal {
                mantissa: 25,
                scale: 1
            }
        );
        assert_eq!(
            percent("99.999999%").0,
            Decimal {
                mantissa: 99_999_999,
                scale: 6
            }
        );
        // Ranges are the checker's business ([Q13]).
        assert_eq!(
            percent("0%").0,
            Decimal {
                mantissa: 0,
                scale: 0
            }
        );
        assert_eq!(
            percent("150%").0,
            Decimal {
                mantissa: 150,
                scale: 0
            }
        );
    }

    #[test]
    fn durations() {
        // [Q6]
        let seconds = |text: &str| match &call(&parsed(&format!("f({text})"))).args[0] {
            Arg::Duration { value, .. } => value.seconds,
            other => panic!("not a duration: {other:?}"),
        };
        assert_eq!(seconds("1s"), 1);
        assert_eq!(seconds("1m"), 60);
        assert_eq!(seconds("1h"), 3600);
        assert_eq!(seconds("1d"), 86_400);
        assert_eq!(seconds("1w"), 604_800);
        assert_eq!(seconds("1h30m"), 5400);
        assert_eq!(seconds("2d12h"), 216_000);
        assert_eq!(seconds("1w1d1h1m1s"), 694_861);
        assert_eq!(seconds("90m"), 5400);
        assert_eq!(seconds("0s"), 0);
        assert_eq!(seconds("9223372036854775s"), MAX_DURATION_SECONDS);
    }

    #[test]
    fn not_before_recovered_within() {
        // [Q10]
        let expr = parsed("not recovered_within(drop(f, 5%, 1h), 1d)");
        let Expr::Not(not) = &expr else {
            panic!("not a negation: {expr:?}")
        };
        assert_eq!(not.keyword, span(0, 3));
        assert_eq!(not.call.function.name, "recovered_within");
        assert_eq!(not.call.span, span(4, 41));
        assert_eq!(not.span, span(0, 41));
        assert!(matches!(
            parsed("not\n\trecovered_within (d, 1h)"),
            Expr::Not(_)
        ));
        // `not` is otherwise an ordinary name.
        assert_eq!(selector(&parsed("not")).metric.name, "not");
        assert_eq!(selector(&parsed("not{}")).metric.name, "not");
        assert_eq!(call(&parsed("not(x)")).function.name, "not");
        assert_eq!(selector(&parsed("nothing")).metric.name, "nothing");
        assert_eq!(call(&parsed("count(not)")).args.len(), 1);
    }

    // Errors: message, byte span, rendered caret ([Q16]).

    #[test]
    fn unexpected_end_names_what_was_expected() {
        // [Q16] [Q9]
        let e = assert_error(
            "drop(followers, 5%",
            18..18,
            "expected `,` or `)`, found end of query",
        );
        assert_eq!(
            e.render(),
            "error: expected `,` or `)`, found end of query\n  drop(followers, 5%\n                    ^\n"
        );
        assert_error("drop(", 5..5, "expected an argument, found end of query");
        assert_error(
            "drop(followers",
            14..14,
            "expected `,` or `)`, found end of query",
        );
        assert_error(
            "",
            0..0,
            "expected a metric name or a function call, found end of query",
        );
        // Whitespace-only remainders must keep their true position.
        assert_error(
            "   ",
            3..3,
            "expected a metric name or a function call, found end of query",
        );
        assert_error(
            "drop(f,   ",
            10..10,
            "expected an argument, found end of query",
        );
        assert_error("drop(f \n", 8..8, "expected `,` or `)`, found end of query");
        assert_error("f{", 2..2, "expected a label or `}`, found end of query");
        assert_error(
            "f{account",
            9..9,
            "expected `=`, `!=`, `=~` or `!~`, found end of query",
        );
        assert_error(
            "f{account=",
            10..10,
            "expected a string, found end of query",
        );
        assert_error(
            "f{account=\"x\"",
            13..13,
            "expected `,` or `}`, found end of query",
        );
        assert_error(
            "f{account=\"x\",",
            14..14,
            "expected a label or `}`, found end of query",
        );
    }

    #[test]
    fn unexpected_tokens() {
        // [Q16]
        assert_error(
            "5%",
            0..2,
            "expected a metric name or a function call, found `5%`",
        );
        assert_error(
            "{account=\"x\"}",
            0..1,
            "expected a metric name or a function call, found `{`",
        );
        assert_error("f{account==\"x\"}", 10..11, "expected a string, found `=`");
        assert_error("f{account=x}", 10..11, "expected a string, found `x`");
        assert_error(
            "f{account=\"x\" account=\"y\"}",
            14..21,
            "expected `,` or `}`, found `account`",
        );
        assert_error("f{1=\"x\"}", 2..3, "expected a label or `}`, found `1`");
        assert_error(
            "f{account~\"x\"}",
            9..10,
            "expected `=`, `!=`, `=~` or `!~`, found `~`",
        );
        assert_error(
            "f{account ! = \"x\"}",
            10..11,
            "expected `=`, `!=`, `=~` or `!~`, found `!`",
        );
        assert_error("drop(f 5%, 1h)", 7..9, "expected `,` or `)`, found `5%`");
        assert_error("drop(f,, 1h)", 7..8, "expected an argument, found `,`");
        let e = assert_error(
            "drop(f, \"x\", 1h)",
            8..9,
            "expected an argument, found a string",
        );
        assert!(e.hint.is_some_and(|h| h.contains("label matchers")));
        assert_error("drop(f, -5, 1h)", 8..9, "expected an argument, found `-`");
        assert_error(
            "drop(f, 5%, 1h",
            14..14,
            "expected `,` or `)`, found end of query",
        );
        assert_error("f(\n  é)", 5..7, "expected an argument, found `é`");
    }

    #[test]
    fn trailing_comma_in_call_is_an_error() {
        // [Q9]
        let e = assert_error(
            "drop(f, 5%, 1h,)",
            15..16,
            "expected an argument, found `)`",
        );
        assert!(e.hint.is_some_and(|h| h.contains("no comma")));
    }

    #[test]
    fn space_before_percent() {
        // [Q5] [Q16]
        let e = assert_error(
            "drop(followers, 5 %, 1h)",
            18..19,
            "expected `,` or `)`, found `%`",
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("write a percentage without a space: 5%")
        );
        assert_eq!(
            e.render(),
            "error: expected `,` or `)`, found `%`\n  drop(followers, 5 %, 1h)\n                    ^\nhint: write a percentage without a space: 5%\n"
        );
    }

    #[test]
    fn number_without_unit_in_a_duration() {
        // [Q6] [Q16]
        let e = assert_error(
            "drop(f, 5%, 1h30)",
            16..17,
            "expected a duration unit (`w`, `d`, `h`, `m` or `s`), found `)`",
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("every number in a duration needs a unit, like 1h30m")
        );
        assert_error(
            "drop(f, 5%, 1h30",
            16..16,
            "expected a duration unit (`w`, `d`, `h`, `m` or `s`), found end of query",
        );
    }

    #[test]
    fn malformed_durations() {
        // [Q6]
        let e = assert_error("f(5x)", 3..4, "unknown duration unit `x`");
        assert!(e.hint.is_some_and(|h| h.contains("w (weeks)")));
        assert_error("f(5ms)", 3..5, "unknown duration unit `ms`");
        assert_error("f(1h1ms)", 5..7, "unknown duration unit `ms`");
        assert_error("f(5H)", 3..4, "unknown duration unit `H`");
        assert_error(
            "f(30m1h)",
            6..7,
            "`h` cannot come here: duration units go from largest to smallest, each at most once",
        );
        assert_error(
            "f(1h1h)",
            5..6,
            "`h` cannot come here: duration units go from largest to smallest, each at most once",
        );
        let e = assert_error("f(1.5h)", 2..6, "a duration is a whole number of units");
        assert_eq!(e.hint.as_deref(), Some("combine units instead, like 1h30m"));
        assert_error("f(1h.5)", 2..5, "a duration is a whole number of units");
        assert_error(
            "f(9223372036854776s)",
            2..19,
            "the duration is too long (at most about 292 million years)",
        );
        assert_error(
            "f(99999999999999999999w)",
            2..23,
            "the duration is too long (at most about 292 million years)",
        );
        assert_error(
            "f(15250284452w3d7h12m56s)",
            2..24,
            "the duration is too long (at most about 292 million years)",
        );
    }

    #[test]
    fn malformed_numbers() {
        // [Q4]
        assert_error(
            "f(5.)",
            4..5,
            "expected a digit after the decimal point, found `)`",
        );
        assert_error(
            "f(5.%)",
            4..5,
            "expected a digit after the decimal point, found `%`",
        );
        assert_error(
            "f(1.1234567%)",
            10..11,
            "a number has at most 6 digits after the decimal point",
        );
        assert_error(
            "f(18446744073709551616)",
            2..22,
            "the number 18446744073709551616 is too large",
        );
        assert_error(
            "f(184467440737095516.16%)",
            2..23,
            "the number 184467440737095516.16 is too large",
        );
        assert_error("f(1.2.3)", 5..6, "expected `,` or `)`, found `.`");
        assert_error("f(.5%)", 2..3, "expected an argument, found `.`");
    }

    #[test]
    fn string_errors() {
        // [Q3]
        let e = assert_error(
            "f{account=\"abc",
            14..14,
            "expected `\"`, found end of query",
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("the string that starts at position 11 is never closed")
        );
        assert_error(
            "f{account=\"abc\\",
            15..15,
            "expected `\"`, found end of query",
        );
        let e = assert_error(
            r#"f{account="a\nb"}"#,
            12..14,
            "unknown escape `\\n` in a string",
        );
        assert_eq!(
            e.render(),
            "error: unknown escape `\\n` in a string\n  f{account=\"a\\nb\"}\n              ^^\nhint: the only escapes are \\\" and \\\\; write any other character as it is\n"
        );
        assert_error(
            "f{account=\"ü\\é\"}",
            13..16,
            "unknown escape `\\é` in a string",
        );
    }

    #[test]
    fn trailing_input() {
        // [Q7]
        assert_error(
            "followers foo",
            10..13,
            "expected end of query, found `foo`",
        );
        let e = assert_error(
            "drop(f, 5%, 1h))",
            15..16,
            "expected end of query, found `)`",
        );
        assert!(e.hint.is_some_and(|h| h.contains("no matching")));
        assert_error("f, g", 1..2, "expected end of query, found `,`");
        assert_error(
            "f{account=\"x\"}{}",
            14..15,
            "expected end of query, found `{`",
        );
        assert_error("followers 5%", 10..12, "expected end of query, found `5%`");
        let e = assert_error(
            "drop followers",
            5..14,
            "expected end of query, found `followers`",
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("`drop` is a function; its arguments go in parentheses: drop(…)")
        );
    }

    #[test]
    fn misplaced_not() {
        // [Q10]
        let e = assert_error(
            "not drop(f, 5%, 1h)",
            0..3,
            "`not` is allowed only directly before recovered_within()",
        );
        assert!(e.render().contains("\n  ^^^\n"));
        assert_error(
            "count(not followers)",
            6..9,
            "`not` is allowed only directly before recovered_within()",
        );
        assert_error(
            "not not recovered_within(d, 1h)",
            0..3,
            "`not` is allowed only directly before recovered_within()",
        );
        assert_error(
            "not recovered_within",
            20..20,
            "expected `(`, found end of query",
        );
    }

    #[test]
    fn nesting_is_limited() {
        // [Q11]
        let nested = |depth: usize| format!("{}f{}", "latest(".repeat(depth), ")".repeat(depth));
        parsed(&nested(MAX_DEPTH));
        let e = assert_error(
            &nested(MAX_DEPTH + 1),
            MAX_DEPTH * 7..MAX_DEPTH * 7 + 6,
            "calls are nested more than 64 deep",
        );
        assert!(e.hint.is_some());
        // Far deeper input fails the same way, without exhausting the stack
        // (as deep as the length limit of [Q11a] allows).
        let e = error(&"count(".repeat(10_000));
        assert_eq!(e.message, "calls are nested more than 64 deep");
        let e = error(&"not recovered_within(".repeat(3_000));
        assert_eq!(e.message, "calls are nested more than 64 deep");
    }

    #[test]
    fn brackets_are_not_grouping_however_many() {
        // [Q11]: 30,000 brackets (within the length limit) are an error at
        // the first one; 100,000 are an error of length ([Q11a]); neither
        // recurses.
        for depth in [1, 30_000] {
            let query = format!("{}followers{}", "(".repeat(depth), ")".repeat(depth));
            assert_error(
                &query,
                0..1,
                "expected a metric name or a function call, found `(`",
            );
        }
        let e = error(&format!(
            "{}followers{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ));
        assert_eq!(
            e.message,
            "the query is 200009 bytes long; the longest allowed is 65536"
        );
        // Brackets inside a call's arguments fail where they start.
        let query = format!(
            "count({}followers{})",
            "(".repeat(30_000),
            ")".repeat(30_000)
        );
        assert_error(&query, 6..7, "expected an argument, found `(`");
    }

    #[test]
    fn queries_are_limited_in_length() {
        // [Q11a] [Q16]
        let selector_of = |len: usize| {
            let frame = r#"followers{account=""}"#.len();
            format!(r#"followers{{account="{}"}}"#, "a".repeat(len - frame))
        };
        let at_limit = selector_of(MAX_QUERY_BYTES);
        assert_eq!(at_limit.len(), MAX_QUERY_BYTES);
        parsed(&at_limit);
        let over = selector_of(MAX_QUERY_BYTES + 1);
        let e = assert_error(
            &over,
            MAX_QUERY_BYTES..MAX_QUERY_BYTES + 1,
            "the query is 65537 bytes long; the longest allowed is 65536",
        );
        assert!(e.hint.is_some());

        // A megabyte, on one line: the error is drawn on a short line, cut
        // around the caret.
        let megabyte = selector_of(1 << 20);
        let e = assert_error(
            &megabyte,
            MAX_QUERY_BYTES..1 << 20,
            "the query is 1048576 bytes long; the longest allowed is 65536",
        );
        let rendered = e.render();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[1], format!("  …{}…", "a".repeat(160)), "{rendered}");
        assert_eq!(
            lines[2],
            format!("   {}{}", " ".repeat(60), "^".repeat(100))
        );

        // The limit is counted in bytes; the caret goes under the character
        // that crosses it.
        let wide = format!("f{{account=\"{}\"}}", "é".repeat(40_000));
        let e = error(&wide);
        assert_eq!(e.span.start, MAX_QUERY_BYTES - 1);
        assert!(wide.is_char_boundary(e.span.start));
    }

    #[test]
    fn long_lines_of_errors_are_cut_around_the_caret() {
        // [Q16]: a short line is drawn whole, a long one from 60 characters
        // before the caret, 160 characters long.
        let short = error("drop(followers, 5%");
        assert_eq!(
            short.render(),
            "error: expected `,` or `)`, found end of query\n  drop(followers, 5%\n                    ^\n"
        );
        let long = format!("count({} x)", "a".repeat(300));
        let e = error(&long);
        let rendered = e.render();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(
            lines[1],
            format!("  …{} x)", "a".repeat(60 - 1)),
            "{rendered}"
        );
        assert_eq!(lines[2], format!("   {}^", " ".repeat(60)));
    }

    #[test]
    fn multi_line_queries_render_the_line_of_the_error() {
        // [Q16]
        let e = assert_error(
            "drop(\n  followers,\n  5 %,\n  1h)",
            23..24,
            "expected `,` or `)`, found `%`",
        );
        assert!(
            e.render().contains("\n    5 %,\n      ^\n"),
            "{}",
            e.render()
        );
    }

    /// Queries that are valid or nearly so, for the mutation test.
    const SEEDS: &[&str] = &[
        "drop(followers{account=~\"ad.*\"}, 5%, 1h30m)",
        "not recovered_within(drop(f{account!=\"x\",}, 2.5%, 2d12h), 1d, 90%)",
        "topk(10, summarize(drop(followers, 1000, 1w), 1h), lost_pct)",
        "count(change(f{account=\"a\\\"b\\\\c\"}, 1h))",
    ];

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(query in any::<String>()) {
            // [Q16]
            let _ = parse(&query);
        }

        #[test]
        fn never_panics_on_text_made_of_query_characters(
            query in "[a-z_(){}=!~\"\\\\,%.0-9hmsdw \\n]{0,60}"
        ) {
            if let Err(e) = parse(&query) {
                prop_assert!(e.span.start <= e.span.end && e.span.end <= query.len());
                prop_assert!(query.is_char_boundary(e.span.start));
                let _ = e.render();
            }
        }

        #[test]
        fn never_panics_on_mutated_queries(
            seed in prop::sample::select(SEEDS),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0..3u8), 1..4),
        ) {
            let mut query = seed.to_string();
            for (index, c, action) in edits {
                let boundaries: Vec<usize> =
                    (0..=query.len()).filter(|&i| query.is_char_boundary(i)).collect();
                let at = boundaries[index.index(boundaries.len())];
                match action {
                    0 => query.insert(at, c),
                    1 => {
                        if let Some(removed) = query[at..].chars().next() {
                            query.replace_range(at..at + removed.len_utf8(), "");
                        }
                    }
                    _ => query.truncate(at),
                }
            }
            match parse(&query) {
                Ok(mut expr) => {
                    // Whatever parses also survives printing ([Q17]).
                    let mut reparsed = parsed(&expr.to_string());
                    erase::expr(&mut expr);
                    erase::expr(&mut reparsed);
                    prop_assert_eq!(reparsed, expr);
                }
                Err(e) => {
                    prop_assert!(e.span.start <= e.span.end && e.span.end <= query.len());
                    prop_assert!(query.is_char_boundary(e.span.start));
                    let _ = e.render();
                }
            }
        }
    }
}
