//! Syntax tree → typed plan: the only place where the types of the query
//! language ([Q12]) are decided.
//!
//! The checker knows every function's signature ([Q20]–[Q31]), reads each
//! argument as the kind its position wants (a threshold, a duration, a drop
//! table, …), checks value ranges, compiles regular expressions once, and
//! builds a [`Plan`] that the evaluator can run without looking at the text
//! again. Every error points at the part of the query that is wrong. The
//! plan's types live in `plan`; this module only builds them, and holds
//! nothing the evaluator needs.

use regex::Regex;

use super::ast::{self, Arg, Call, Decimal, Expr, Span};
use super::plan::{
    DropSpec, Kind, Matcher, Percent, Plan, RankColumn, Selector, SeriesExpr, Threshold,
};
use super::registry::{self, Function};
use super::suggest::edit_distance;
use crate::error::QueryError;

/// Parses and checks a query in one step.
#[cfg(test)]
pub(crate) fn compile(query: &str) -> Result<Plan, QueryError> {
    let expr = super::parse::parse(query)?;
    check(query, &expr)
}

/// Checks a parsed query; `query` is the text it was parsed from, which
/// errors quote.
pub(crate) fn check(query: &str, expr: &Expr) -> Result<Plan, QueryError> {
    Checker {
        query,
        regexes: std::cell::Cell::new(0),
    }
    .expr(expr)
}

/// The most memory a matcher's compiled pattern may take ([Q8a]): far
/// more than any list of accounts a query can spell out within its length
/// limit needs, far less than a hostile counted repetition asks for.
pub(crate) const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// The most regular-expression matchers (`=~`, `!~`) a query may hold
/// ([Q8a]), so that the memory of their compiled patterns is bounded as a
/// whole: at most this many times [`REGEX_SIZE_LIMIT`].
pub(crate) const MAX_REGEX_MATCHERS: usize = 16;

/// The cache of the lazy DFA of each matcher, per thread that runs it
/// ([Q8a]); past it the regex crate clears the cache or falls back to a
/// slower engine, still in linear time.
const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;

/// How deeply groups, repetitions and classes may nest in a pattern ([Q8a]),
/// as calls do in a query ([Q11]).
pub(crate) const REGEX_NEST_LIMIT: u32 = 64;

/// Compiles a pattern within the limits of [Q8a]. The regex crate never
/// backtracks: matching takes time linear in the account name, whatever the
/// pattern, so only the size of the compiled pattern needs a bound.
fn compile_regex(pattern: &str, nest_limit: u32) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .nest_limit(nest_limit)
        .build()
}

/// What an argument position accepts, for "expects X, found Y" messages.
const THRESHOLD: &str = "a threshold (a percentage like 5% or a count like 1000)";
const DURATION: &str = "a duration (like 1h or 30m)";
const FRACTION: &str = "a percentage (like 90%)";
const WHOLE_NUMBER: &str = "a whole number (like 10)";
const COLUMN: &str = "a column name (`lost` or `lost_pct`)";

/// 1 → "first", for messages.
fn ordinal(position: usize) -> &'static str {
    match position {
        1 => "first",
        2 => "second",
        3 => "third",
        _ => "next",
    }
}

/// How a literal argument is named when it is in the wrong place.
fn describe_literal(arg: &Arg) -> &'static str {
    match arg {
        Arg::Expr(_) => "an expression",
        Arg::Number { .. } => "a number",
        Arg::Percent { .. } => "a percentage",
        Arg::Duration { .. } => "a duration",
    }
}

struct Checker<'q> {
    query: &'q str,
    /// The regular expressions compiled so far, against
    /// [`MAX_REGEX_MATCHERS`].
    regexes: std::cell::Cell<usize>,
}

/// A call being checked, for messages about its arguments.
struct CallSite<'c> {
    call: &'c Call,
    name: &'static str,
}

impl CallSite<'_> {
    /// The argument at `index` (counted from 0); the arity check has made
    /// sure it exists when it is required.
    fn arg(&self, index: usize) -> Option<&Arg> {
        self.call.args.get(index)
    }
}

impl Checker<'_> {
    fn error(&self, span: Span, message: String, hint: Option<String>) -> QueryError {
        QueryError {
            query: self.query.to_string(),
            span: span.range(),
            message,
            hint,
        }
    }

    /// "f() expects X as its second argument, found Y" under the argument.
    fn wrong_argument(
        &self,
        site: &CallSite,
        index: usize,
        expected: &str,
        found: &str,
    ) -> QueryError {
        let span = site.arg(index).map_or(site.call.span, Arg::span);
        self.error(
            span,
            format!(
                "{}() expects {expected} as its {} argument, found {found}",
                site.name,
                ordinal(index + 1)
            ),
            None,
        )
    }

    /// Checks a table expression ([Q12]).
    fn expr(&self, expr: &Expr) -> Result<Plan, QueryError> {
        match expr {
            Expr::Selector(selector) => {
                Ok(Plan::Series(SeriesExpr::Select(self.selector(selector)?)))
            }
            Expr::Call(call) => self.call(call),
            Expr::Not(not) => match self.call(&not.call)? {
                // [Q22]: the parser puts `not` only before recovered_within().
                Plan::Recovered {
                    drops,
                    within_ms,
                    fraction,
                } => Ok(Plan::NotRecovered {
                    drops,
                    within_ms,
                    fraction,
                }),
                _ => Err(self.error(
                    not.keyword,
                    "`not` is allowed only directly before recovered_within()".to_string(),
                    None,
                )),
            },
        }
    }

    /// Checks the labels and compiles the regular expressions ([Q8], [Q14]).
    fn selector(&self, selector: &ast::Selector) -> Result<Selector, QueryError> {
        let mut matchers = Vec::with_capacity(selector.matchers.len());
        for matcher in &selector.matchers {
            if matcher.label.name != "account" {
                return Err(self.unknown_label(&matcher.label));
            }
            let regex = if matcher.op.is_regex() {
                Some(self.regex(&matcher.value)?)
            } else {
                None
            };
            matchers.push(Matcher {
                op: matcher.op,
                value: matcher.value.value.clone(),
                regex,
            });
        }
        Ok(Selector {
            metric: selector.metric.name.clone(),
            matchers,
        })
    }

    fn unknown_label(&self, label: &ast::Ident) -> QueryError {
        let hint = if matches!(label.name.as_str(), "metric" | "__name__" | "name") {
            "the metric is named before the braces, like followers{account=\"x\"}".to_string()
        } else if edit_distance(&label.name.to_ascii_lowercase(), "account") <= 2 {
            "did you mean `account`? It is the only label".to_string()
        } else {
            "the only label is `account`".to_string()
        };
        self.error(
            label.span,
            format!("unknown label `{}`", label.name),
            Some(hint),
        )
    }

    /// Compiles a matcher's pattern, fully anchored ([Q8]).
    fn regex(&self, pattern: &ast::StringLit) -> Result<Regex, QueryError> {
        let complain = |e: regex::Error| {
            let detail = match &e {
                // The syntax error's last line names the problem; the lines
                // above it redraw the pattern, which the caret already shows.
                regex::Error::Syntax(text) => text
                    .lines()
                    .rev()
                    .find_map(|line| line.strip_prefix("error: "))
                    .unwrap_or("syntax error")
                    .to_string(),
                regex::Error::CompiledTooBig(_) => format!(
                    "it compiles to more than {} KiB, the most allowed",
                    REGEX_SIZE_LIMIT / 1024
                ),
                other => other.to_string(),
            };
            self.error(
                pattern.span,
                format!("invalid regular expression: {detail}"),
                Some("the syntax is the regex crate's; the pattern must match the whole account name".to_string()),
            )
        };
        // Each pattern may take up to REGEX_SIZE_LIMIT, so their number is
        // bounded too, or a query of many short patterns could take
        // gigabytes.
        self.regexes.set(self.regexes.get() + 1);
        if self.regexes.get() > MAX_REGEX_MATCHERS {
            return Err(self.error(
                pattern.span,
                format!(
                    "the query has more than {MAX_REGEX_MATCHERS} regular expressions, the most allowed"
                ),
                Some("one pattern can match many accounts: join them with `|`".to_string()),
            ));
        }
        // Compiling the pattern alone first makes sure it is well formed on
        // its own: `a)|(b` is not, yet `^(?:a)|(b)$` is, and would no
        // longer be anchored.
        compile_regex(&pattern.value, REGEX_NEST_LIMIT).map_err(complain)?;
        // The wrapping group is one more level, which the limit does not
        // count against the pattern.
        compile_regex(&format!("^(?:{})$", pattern.value), REGEX_NEST_LIMIT + 1).map_err(complain)
    }

    /// Checks a call: the name, the number of arguments, then each argument
    /// in order ([Q13], [Q20]–[Q30]).
    fn call(&self, call: &Call) -> Result<Plan, QueryError> {
        let signature = self.signature(call)?;
        let site = CallSite {
            call,
            name: signature.name,
        };
        match signature.name {
            "drop" => Ok(Plan::Drops(self.drop_spec(&site)?)),
            "recovered_within" => {
                let drops = self.drops_argument(&site)?;
                let within_ms = self.duration(&site, 1)?;
                let fraction = match site.arg(2) {
                    Some(_) => self.fraction(&site, 2)?,
                    None => Percent::FULL,
                };
                Ok(Plan::Recovered {
                    drops,
                    within_ms,
                    fraction,
                })
            }
            "count" => {
                let input = self.table(&site, 0, "a table", |_| true)?;
                Ok(Plan::Count(Box::new(input)))
            }
            "sum" => {
                let input = self.table(&site, 0, "a series or a drop table", |kind| {
                    kind != Kind::Summary
                })?;
                Ok(Plan::Sum(Box::new(input)))
            }
            "summarize" => {
                let input = self.drop_table(&site, 0)?;
                let step_ms = match site.arg(1) {
                    Some(_) => Some(self.duration(&site, 1)?),
                    None => None,
                };
                Ok(Plan::Summarize {
                    input: Box::new(input),
                    step_ms,
                })
            }
            "topk" => {
                let k = self.whole_number(&site, 0)?;
                let input = self.drop_table(&site, 1)?;
                let by = match site.arg(2) {
                    Some(_) => self.rank_column(&site, 2)?,
                    None => RankColumn::Lost,
                };
                Ok(Plan::TopK {
                    k,
                    by,
                    input: Box::new(input),
                })
            }
            "latest" => {
                let series = self.series(&site, true)?;
                Ok(Plan::Series(SeriesExpr::Latest(Box::new(series))))
            }
            "change" => {
                let series = self.series(&site, false)?;
                let window = self.duration(&site, 1)?;
                Ok(Plan::Series(SeriesExpr::Change(Box::new(series), window)))
            }
            "min_over" | "max_over" | "resample" => {
                let series = Box::new(self.series(&site, true)?);
                let window = self.duration(&site, 1)?;
                Ok(Plan::Series(match signature.name {
                    "min_over" => SeriesExpr::MinOver(series, window),
                    "max_over" => SeriesExpr::MaxOver(series, window),
                    _ => SeriesExpr::Resample(series, window),
                }))
            }
            // Every name in the registry is handled above; keep the compiler
            // honest without panicking if one is added and forgotten.
            other => Err(self.error(
                call.function.span,
                format!("{other}() is not implemented"),
                None,
            )),
        }
    }

    /// Looks the function up and checks the number of arguments ([Q13]).
    fn signature(&self, call: &Call) -> Result<&'static Function, QueryError> {
        let name = call.function.name.as_str();
        let Some(signature) = registry::lookup(name) else {
            return Err(self.error(
                call.function.span,
                format!("unknown function `{name}`"),
                Some(suggest_function(name)),
            ));
        };
        let found = call.args.len();
        let (min_args, max_args) = (signature.min_args(), signature.max_args());
        if !(min_args..=max_args).contains(&found) {
            let expected = match (min_args, max_args) {
                (min, max) if min == max => format!("{min}"),
                (min, max) => format!("{min} or {max}"),
            };
            return Err(self.error(
                call.span,
                format!(
                    "{} takes {expected} argument{}, found {found}",
                    signature.usage,
                    if max_args == 1 { "" } else { "s" }
                ),
                None,
            ));
        }
        Ok(signature)
    }

    /// `drop(SERIES, THRESHOLD, WINDOW)` ([Q20]).
    fn drop_spec(&self, site: &CallSite) -> Result<DropSpec, QueryError> {
        let series = self.series(site, false)?;
        let threshold = self.threshold(site, 1)?;
        let window_ms = self.duration(site, 2)?;
        Ok(DropSpec {
            series,
            threshold,
            window_ms,
        })
    }

    /// The first argument of recovered_within(): a drop() call, because
    /// finding a recovery needs the series the drops came from ([Q21]).
    fn drops_argument(&self, site: &CallSite) -> Result<DropSpec, QueryError> {
        let plan = self.table(site, 0, "a drop table", |kind| kind == Kind::Drops)?;
        match plan {
            Plan::Drops(spec) => Ok(spec),
            _ => {
                let span = site.arg(0).map_or(site.call.span, Arg::span);
                Err(self.error(
                    span,
                    "recovered_within() needs a drop() call as its first argument".to_string(),
                    Some(
                        "recovery is looked for in the series that drop() read, so recovered_within() \
                         takes drop() itself; apply topk() to its result instead, like \
                         topk(10, recovered_within(drop(…), 1d))"
                            .to_string(),
                    ),
                ))
            }
        }
    }

    /// An expression argument whose kind passes `accepts`.
    fn table(
        &self,
        site: &CallSite,
        index: usize,
        expected: &str,
        accepts: impl Fn(Kind) -> bool,
    ) -> Result<Plan, QueryError> {
        let arg = site.arg(index);
        let Some(Arg::Expr(expr)) = arg else {
            let found = arg.map_or("nothing", describe_literal);
            return Err(self.wrong_argument(site, index, expected, found));
        };
        let plan = self.expr(expr)?;
        if !accepts(plan.kind()) {
            return Err(self.wrong_argument(site, index, expected, plan.kind().described()));
        }
        Ok(plan)
    }

    /// A drop or recovery table, for summarize() and topk() ([Q25], [Q26]).
    fn drop_table(&self, site: &CallSite, index: usize) -> Result<Plan, QueryError> {
        self.table(site, index, "a drop or recovery table", |kind| {
            matches!(kind, Kind::Drops | Kind::Recoveries)
        })
    }

    /// The first argument of a series function; `deltas_allowed` says
    /// whether differences from change() are accepted, or only counts.
    fn series(&self, site: &CallSite, deltas_allowed: bool) -> Result<SeriesExpr, QueryError> {
        let arg = site.arg(0);
        let Some(Arg::Expr(expr)) = arg else {
            let found = arg.map_or("nothing", describe_literal);
            return Err(self.wrong_argument(site, 0, "a series", found));
        };
        match self.expr(expr)? {
            Plan::Series(series) if deltas_allowed || series.kind() == Kind::Series => Ok(series),
            // [Q20], [Q28]: the common mistake of looking for falls in, or
            // differencing again, what change() already differenced.
            Plan::Series(_) => Err(self.error(
                expr.span(),
                format!("{}() needs counts; change() gives differences", site.name),
                Some(format!(
                    "apply {}() to the series itself, like {}",
                    site.name,
                    if site.name == "drop" {
                        "drop(followers, 5%, 1h)"
                    } else {
                        "change(followers, 1d)"
                    }
                )),
            )),
            other => Err(self.wrong_argument(site, 0, "a series", other.kind().described())),
        }
    }

    /// A duration in milliseconds, more than zero ([Q6]).
    fn duration(&self, site: &CallSite, index: usize) -> Result<i64, QueryError> {
        match site.arg(index) {
            Some(Arg::Duration { value, span }) => match value.millis() {
                Some(ms) if ms > 0 => Ok(ms),
                Some(_) => {
                    Err(self.error(*span, "a duration must be longer than 0s".to_string(), None))
                }
                // The parser keeps durations within range.
                None => Err(self.error(*span, "the duration is too long".to_string(), None)),
            },
            other => Err(self.wrong_kind(site, index, other, DURATION)),
        }
    }

    /// "expects X, found Y" for a literal or expression in the wrong place,
    /// with a hint for the confusions that are easy to make.
    fn wrong_kind(
        &self,
        site: &CallSite,
        index: usize,
        arg: Option<&Arg>,
        expected: &str,
    ) -> QueryError {
        let found = match arg {
            Some(Arg::Expr(expr)) => match self.expr(expr) {
                Ok(plan) => plan.kind().described(),
                // The argument is wrong in itself; that is the first thing
                // to fix.
                Err(e) => return e,
            },
            Some(literal) => describe_literal(literal),
            None => "nothing",
        };
        let mut error = self.wrong_argument(site, index, expected, found);
        error.hint = match (expected, arg) {
            (DURATION, Some(Arg::Number { value, .. })) => {
                Some(format!("give the number a unit, like {value}h or {value}m"))
            }
            (THRESHOLD, Some(Arg::Duration { .. })) => Some(
                "drop(SERIES, THRESHOLD, WINDOW): the threshold comes before the window"
                    .to_string(),
            ),
            (_, Some(Arg::Expr(Expr::Selector(selector)))) if selector.is_bare() => Some(format!(
                "`{}` is read as a metric name here",
                selector.metric.name
            )),
            _ => None,
        };
        error
    }

    /// A percentage in (0, 100] ([Q5]).
    fn fraction(&self, site: &CallSite, index: usize) -> Result<Percent, QueryError> {
        match site.arg(index) {
            Some(Arg::Percent { value, span }) => self.percent(*value, *span),
            other => Err(self.wrong_kind(site, index, other, FRACTION)),
        }
    }

    fn percent(&self, value: Decimal, span: Span) -> Result<Percent, QueryError> {
        let hundred = 10u64
            .checked_pow(value.scale)
            .and_then(|power| power.checked_mul(100));
        if value.mantissa == 0 || hundred.is_none_or(|hundred| value.mantissa > hundred) {
            return Err(self.error(
                span,
                format!("a percentage must be more than 0% and at most 100%, found {value}%"),
                None,
            ));
        }
        Ok(Percent {
            mantissa: value.mantissa,
            scale: value.scale,
        })
    }

    /// A percentage in (0, 100], or a whole count of at least 1 ([Q20]).
    fn threshold(&self, site: &CallSite, index: usize) -> Result<Threshold, QueryError> {
        match site.arg(index) {
            Some(Arg::Percent { value, span }) => {
                Ok(Threshold::Percent(self.percent(*value, *span)?))
            }
            Some(Arg::Number { value, span }) => match value.as_integer() {
                Some(count) if count >= 1 => Ok(Threshold::Absolute(count)),
                Some(_) => Err(self.error(
                    *span,
                    "an absolute threshold must be at least 1".to_string(),
                    None,
                )),
                None => Err(self.error(
                    *span,
                    format!("an absolute threshold is a whole number of followers, found {value}"),
                    Some(format!("for a share of the count, write {value}%")),
                )),
            },
            other => Err(self.wrong_kind(site, index, other, THRESHOLD)),
        }
    }

    /// topk()'s K: a whole number of at least 1 ([Q26]).
    fn whole_number(&self, site: &CallSite, index: usize) -> Result<u64, QueryError> {
        match site.arg(index) {
            Some(Arg::Number { value, span }) => match value.as_integer() {
                Some(k) if k >= 1 => Ok(k),
                _ => Err(self.error(
                    *span,
                    format!(
                        "{}() needs a whole number of at least 1, found {value}",
                        site.name
                    ),
                    None,
                )),
            },
            other => Err(self.wrong_kind(site, index, other, WHOLE_NUMBER)),
        }
    }

    /// topk()'s column: a bare identifier, `lost` or `lost_pct` ([Q26]).
    fn rank_column(&self, site: &CallSite, index: usize) -> Result<RankColumn, QueryError> {
        match site.arg(index) {
            Some(Arg::Expr(Expr::Selector(selector))) if selector.is_bare() => {
                match selector.metric.name.as_str() {
                    "lost" => Ok(RankColumn::Lost),
                    "lost_pct" => Ok(RankColumn::LostPct),
                    other => Err(self.error(
                        selector.span,
                        format!(
                            "{}() ranks by `lost` or `lost_pct`, found `{other}`",
                            site.name
                        ),
                        None,
                    )),
                }
            }
            other => Err(self.wrong_kind(site, index, other, COLUMN)),
        }
    }
}

/// The hint for an unknown function: the closest known name, or the list of
/// them when none is close.
fn suggest_function(name: &str) -> String {
    if let Some(known) = registry::callable().find(|f| f.name.eq_ignore_ascii_case(name)) {
        return format!("function names are lower case: `{}`", known.name);
    }
    if name == "not" {
        return "`not` is written before recovered_within() without parentheses, like \
                not recovered_within(drop(…), 1d)"
            .to_string();
    }
    let lower = name.to_ascii_lowercase();
    let closest = registry::callable()
        .map(|f| {
            // `min` for `min_over`: a prefix up to an underscore is as close
            // as a typo.
            let prefix = f
                .name
                .strip_prefix(lower.as_str())
                .is_some_and(|rest| rest.starts_with('_'));
            let distance = if prefix {
                1
            } else {
                edit_distance(&lower, f.name)
            };
            (distance, f.name)
        })
        .min_by_key(|&(distance, _)| distance);
    match closest {
        Some((distance, known)) if distance <= 1 + name.chars().count() / 3 => {
            format!("did you mean `{known}`?")
        }
        _ => {
            let names: Vec<&str> = registry::callable().map(|f| f.name).collect();
            format!("the functions are {}", names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: &str) -> Plan {
        match compile(query) {
            Ok(plan) => plan,
            Err(e) => panic!("{query:?} does not compile:\n{}", e.render()),
        }
    }

    /// Checks the message and the span of a type error, and returns it for
    /// further checks.
    fn assert_error(query: &str, span: std::ops::Range<usize>, message: &str) -> QueryError {
        let e = match compile(query) {
            Ok(plan) => panic!("{query:?} compiled to {plan:?}"),
            Err(e) => e,
        };
        assert_eq!(e.message, message, "for {query:?}");
        assert_eq!(e.span, span, "for {query:?}:\n{}", e.render());
        e
    }

    fn select(metric: &str) -> SeriesExpr {
        SeriesExpr::Select(Selector {
            metric: metric.to_string(),
            matchers: Vec::new(),
        })
    }

    fn percent(mantissa: u64, scale: u32) -> Percent {
        Percent { mantissa, scale }
    }

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    fn followers_drop() -> DropSpec {
        DropSpec {
            series: select("followers"),
            threshold: Threshold::Percent(percent(5, 0)),
            window_ms: HOUR,
        }
    }

    #[test]
    fn selectors_are_series() {
        // [Q8] [Q31]
        let p = plan("followers");
        assert_eq!(p, Plan::Series(select("followers")));
        assert_eq!(p.kind(), Kind::Series);
        assert_eq!(p.columns(), ["account", "metric", "time", "value"]);
        assert_eq!(plan("followers{}"), p);
        // A metric that does not exist is not an error.
        assert_eq!(
            plan("no_such_metric"),
            Plan::Series(select("no_such_metric"))
        );
    }

    #[test]
    fn matchers_compare_the_account() {
        // [Q8]
        let Plan::Series(SeriesExpr::Select(s)) =
            plan(r#"followers{account=~"ad.*", account!="adam", account!~"x|y",}"#)
        else {
            panic!("not a selector")
        };
        assert_eq!(s.metric, "followers");
        assert_eq!(s.matchers.len(), 3);
        assert!(s.matches("adela_mae"));
        assert!(!s.matches("adam"));
        assert!(!s.matches("bob"));
        // Anchored on both ends: `ad.*` does not match inside a name.
        assert!(!s.matches("xadela"));
        let Plan::Series(SeriesExpr::Select(s)) = plan(r#"f{account="a\"b"}"#) else {
            panic!("not a selector")
        };
        assert!(s.matches("a\"b"));
        assert!(!s.matches("ab"));
        assert_eq!(s.matchers[0].regex.as_ref().map(Regex::as_str), None);
        let Plan::Series(SeriesExpr::Select(s)) = plan(r#"f{account!~"a|b"}"#) else {
            panic!("not a selector")
        };
        assert_eq!(
            s.matchers[0].regex.as_ref().map(Regex::as_str),
            Some("^(?:a|b)$")
        );
        assert!(!s.matches("a") && !s.matches("b") && s.matches("ab"));
        // A pattern cannot escape its anchoring by closing the group.
        assert_error(
            r#"f{account=~"a)|(b"}"#,
            11..18,
            "invalid regular expression: unopened group",
        );
    }

    #[test]
    fn only_the_account_label() {
        // [Q14]
        let e = assert_error(r#"followers{acount="x"}"#, 10..16, "unknown label `acount`");
        assert_eq!(
            e.hint.as_deref(),
            Some("did you mean `account`? It is the only label")
        );
        assert_eq!(
            e.render(),
            "error: unknown label `acount`\n  followers{acount=\"x\"}\n            ^^^^^^\nhint: did you mean `account`? It is the only label\n"
        );
        let e = assert_error(
            r#"f{account="a", region="eu"}"#,
            15..21,
            "unknown label `region`",
        );
        assert_eq!(e.hint.as_deref(), Some("the only label is `account`"));
        let e = assert_error(r#"f{metric="followers"}"#, 2..8, "unknown label `metric`");
        assert!(e.hint.is_some_and(|h| h.contains("before the braces")));
    }

    #[test]
    fn bad_regex_points_at_the_string() {
        // [Q8]
        let e = assert_error(
            r#"followers{account=~"ad("}"#,
            19..24,
            "invalid regular expression: unclosed group",
        );
        assert!(
            e.render().contains("\n                     ^^^^^\n"),
            "{}",
            e.render()
        );
        assert_error(
            r#"f{account!~"*"}"#,
            11..14,
            "invalid regular expression: repetition operator missing expression",
        );
        // `=` and `!=` take the string literally.
        plan(r#"f{account="ad(", account!="*"}"#);
    }

    #[test]
    fn regex_limits_bound_the_compiled_pattern() {
        // [Q8a]
        let nested = |depth: usize| {
            format!(
                r#"followers{{account=~"{}a{}"}}"#,
                "(".repeat(depth),
                ")".repeat(depth)
            )
        };
        let string_span = |depth: usize| 19..19 + 2 * depth + 3;
        plan(&nested(20));
        let e = compile(&nested(1000)).expect_err("nested too deep");
        assert_eq!(e.span, string_span(1000));
        assert!(
            e.message
                == "invalid regular expression: exceed the maximum number of nested parentheses/brackets (64)",
            "{}",
            e.message
        );
        let e = assert_error(
            r#"f{account=~"a{1000}{1000}"}"#,
            11..26,
            "invalid regular expression: it compiles to more than 4096 KiB, the most allowed",
        );
        assert!(e.hint.is_some());
        // At most 16 patterns: the 17th is an error at its string.
        let many = |n: usize| format!("f{{{}}}", r#"account=~"a","#.repeat(n));
        plan(&many(16));
        let e = assert_error(
            &many(17),
            2 + 16 * 13 + 9..2 + 16 * 13 + 12,
            "the query has more than 16 regular expressions, the most allowed",
        );
        assert!(e.hint.is_some());
        // A long alternation of accounts, as a query within its length
        // limit can spell out, compiles.
        let accounts: Vec<String> = (0..4000).map(|i| format!("acct{i:05}")).collect();
        plan(&format!(r#"f{{account=~"{}"}}"#, accounts.join("|")));
    }

    #[test]
    fn patterns_that_explode_backtracking_run_in_linear_time() {
        // [Q8a]: on a 4096-byte name (the longest, docs/format.md [D1])
        // these take exponential time in a backtracking engine; the regex
        // crate answers at once. (No time is asserted; a backtracking
        // engine would not finish this test.)
        let long_a = "a".repeat(4095);
        for (pattern, name, expected) in [
            ("(a+)+$", format!("{long_a}!"), false),
            ("(a+)+", long_a.clone(), true),
            ("(a|aa)*b", long_a.clone(), false),
            ("(a|aa)*", long_a.clone(), true),
            ("(.*a){20}", format!("{long_a}!"), false),
        ] {
            let p = plan(&format!(r#"f{{account=~"{pattern}"}}"#));
            let Plan::Series(SeriesExpr::Select(selector)) = p else {
                panic!("not a selection: {p:?}");
            };
            assert_eq!(selector.matchers[0].matches(&name), expected, "{pattern}");
        }
    }

    #[test]
    fn drop_plan() {
        // [Q20]
        let p = plan("drop(followers, 5%, 1h)");
        assert_eq!(p, Plan::Drops(followers_drop()));
        assert_eq!(p.kind(), Kind::Drops);
        assert_eq!(
            p.columns(),
            [
                "account", "metric", "start", "end", "before", "after", "lost", "lost_pct"
            ]
        );
        let Plan::Drops(spec) = plan("drop(followers, 2.5%, 1h30m)") else {
            panic!("not a drop")
        };
        assert_eq!(spec.threshold, Threshold::Percent(percent(25, 1)));
        assert_eq!(spec.window_ms, 90 * 60_000);
        let Plan::Drops(spec) = plan("drop(followers, 1000, 2d12h)") else {
            panic!("not a drop")
        };
        assert_eq!(spec.threshold, Threshold::Absolute(1000));
        assert_eq!(spec.window_ms, 60 * HOUR);
        // Counts derived from counts are counts.
        for series in [
            "resample(followers, 1h)",
            "min_over(followers, 1h)",
            "max_over(followers, 1h)",
            "latest(followers)",
            "resample(min_over(followers, 1h), 1d)",
        ] {
            plan(&format!("drop({series}, 5%, 1h)"));
        }
        let Plan::Drops(spec) = plan("drop(resample(f, 1h), 100%, 1w)") else {
            panic!("not a drop")
        };
        assert_eq!(
            spec.series,
            SeriesExpr::Resample(Box::new(select("f")), HOUR)
        );
        assert_eq!(spec.window_ms, 7 * DAY);
        assert_eq!(spec.threshold, Threshold::Percent(percent(100, 0)));
    }

    #[test]
    fn drop_needs_counts() {
        // [Q20]
        let e = assert_error(
            "drop(change(followers, 1h), 5%, 1h)",
            5..26,
            "drop() needs counts; change() gives differences",
        );
        assert!(e.hint.is_some());
        assert_error(
            "drop(resample(change(followers, 1h), 1h), 5%, 1h)",
            5..40,
            "drop() needs counts; change() gives differences",
        );
        assert_error(
            "drop(drop(followers, 5%, 1h), 5%, 1h)",
            5..28,
            "drop() expects a series as its first argument, found a drop table",
        );
        assert_error(
            "drop(5%, 5%, 1h)",
            5..7,
            "drop() expects a series as its first argument, found a percentage",
        );
    }

    #[test]
    fn thresholds() {
        // [Q13] [Q20]
        assert_error(
            "drop(f, 0%, 1h)",
            8..10,
            "a percentage must be more than 0% and at most 100%, found 0%",
        );
        assert_error(
            "drop(f, 100.000001%, 1h)",
            8..19,
            "a percentage must be more than 0% and at most 100%, found 100.000001%",
        );
        plan("drop(f, 0.000001%, 1h)");
        assert_error(
            "drop(f, 0, 1h)",
            8..9,
            "an absolute threshold must be at least 1",
        );
        let e = assert_error(
            "drop(f, 2.5, 1h)",
            8..11,
            "an absolute threshold is a whole number of followers, found 2.5",
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("for a share of the count, write 2.5%")
        );
        let e = assert_error(
            "drop(f, 1h, 5%)",
            8..10,
            "drop() expects a threshold (a percentage like 5% or a count like 1000) as its second argument, found a duration",
        );
        assert_eq!(
            e.render(),
            "error: drop() expects a threshold (a percentage like 5% or a count like 1000) as its second argument, found a duration\n  drop(f, 1h, 5%)\n          ^^\nhint: drop(SERIES, THRESHOLD, WINDOW): the threshold comes before the window\n"
        );
        assert_error(
            "drop(f, g, 1h)",
            8..9,
            "drop() expects a threshold (a percentage like 5% or a count like 1000) as its second argument, found a series",
        );
    }

    #[test]
    fn durations() {
        // [Q6] [Q13]
        assert_error(
            "drop(f, 5%, 0s)",
            12..14,
            "a duration must be longer than 0s",
        );
        let e = assert_error(
            "drop(f, 5%, 60)",
            12..14,
            "drop() expects a duration (like 1h or 30m) as its third argument, found a number",
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("give the number a unit, like 60h or 60m")
        );
        assert_error(
            "drop(f, 5%, 5%)",
            12..14,
            "drop() expects a duration (like 1h or 30m) as its third argument, found a percentage",
        );
        let e = assert_error(
            "change(f, hour)",
            10..14,
            "change() expects a duration (like 1h or 30m) as its second argument, found a series",
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("`hour` is read as a metric name here")
        );
        // The longest duration converts to milliseconds exactly.
        let Plan::Series(SeriesExpr::Change(_, window)) = plan("change(f, 9223372036854775s)")
        else {
            panic!("not a change")
        };
        assert_eq!(window, 9_223_372_036_854_775_000);
    }

    #[test]
    fn recovered_within_plan() {
        // [Q21]
        let p = plan("recovered_within(drop(followers, 5%, 1h), 1d)");
        assert_eq!(
            p,
            Plan::Recovered {
                drops: followers_drop(),
                within_ms: DAY,
                fraction: Percent::FULL,
            }
        );
        assert_eq!(p.kind(), Kind::Recoveries);
        assert_eq!(
            p.columns(),
            [
                "account",
                "metric",
                "start",
                "end",
                "before",
                "after",
                "lost",
                "lost_pct",
                "recovered_at",
                "recovery_s"
            ]
        );
        let Plan::Recovered { fraction, .. } =
            plan("recovered_within(drop(followers, 5%, 1h), 1d, 90%)")
        else {
            panic!("not recovered_within")
        };
        assert_eq!(fraction, percent(90, 0));
        assert_error(
            "recovered_within(drop(f, 5%, 1h), 1d, 0.0%)",
            38..42,
            "a percentage must be more than 0% and at most 100%, found 0%",
        );
        assert_error(
            "recovered_within(drop(f, 5%, 1h), 1d, 90)",
            38..40,
            "recovered_within() expects a percentage (like 90%) as its third argument, found a number",
        );
    }

    #[test]
    fn recovered_within_needs_drops() {
        // [Q21]
        let e = assert_error(
            "recovered_within(followers, 1h)",
            17..26,
            "recovered_within() expects a drop table as its first argument, found a series",
        );
        assert_eq!(
            e.render(),
            "error: recovered_within() expects a drop table as its first argument, found a series\n  recovered_within(followers, 1h)\n                   ^^^^^^^^^\n"
        );
        assert_error(
            "recovered_within(recovered_within(drop(f, 5%, 1h), 1h), 1h)",
            17..54,
            "recovered_within() expects a drop table as its first argument, found a recovery table",
        );
        let e = assert_error(
            "recovered_within(topk(3, drop(f, 5%, 1h)), 1h)",
            17..41,
            "recovered_within() needs a drop() call as its first argument",
        );
        assert!(
            e.hint
                .is_some_and(|h| h.contains("topk(10, recovered_within("))
        );
        assert_error(
            "recovered_within(not recovered_within(drop(f, 5%, 1h), 1h), 1d)",
            17..58,
            "recovered_within() needs a drop() call as its first argument",
        );
    }

    #[test]
    fn not_recovered_within_plan() {
        // [Q22]
        let p = plan("not recovered_within(drop(followers, 5%, 1h), 1d, 99.5%)");
        assert_eq!(
            p,
            Plan::NotRecovered {
                drops: followers_drop(),
                within_ms: DAY,
                fraction: percent(995, 1),
            }
        );
        assert_eq!(p.kind(), Kind::Drops);
        assert_eq!(p.columns(), plan("drop(f, 5%, 1h)").columns());
        assert_error(
            "not recovered_within(followers, 1h)",
            21..30,
            "recovered_within() expects a drop table as its first argument, found a series",
        );
    }

    #[test]
    fn count_takes_any_table() {
        // [Q23]
        for input in [
            "followers",
            "change(f, 1h)",
            "drop(f, 5%, 1h)",
            "recovered_within(drop(f, 5%, 1h), 1d)",
            "count(f)",
        ] {
            let p = plan(&format!("count({input})"));
            assert_eq!(p, Plan::Count(Box::new(plan(input))));
            assert_eq!(p.kind(), Kind::Summary);
            assert_eq!(p.columns(), ["count"]);
        }
        assert_error(
            "count(5)",
            6..7,
            "count() expects a table as its first argument, found a number",
        );
    }

    #[test]
    fn sum_columns_follow_the_input() {
        // [Q24]
        assert_eq!(plan("sum(drop(f, 5%, 1h))").columns(), ["lost"]);
        assert_eq!(
            plan("sum(recovered_within(drop(f, 5%, 1h), 1d))").columns(),
            ["lost"]
        );
        assert_eq!(
            plan("sum(not recovered_within(drop(f, 5%, 1h), 1d))").columns(),
            ["lost"]
        );
        assert_eq!(plan("sum(f)").columns(), ["value"]);
        assert_eq!(plan("sum(change(f, 1h))").columns(), ["value"]);
        assert_eq!(plan("sum(f)").kind(), Kind::Summary);
        assert_error(
            "sum(count(f))",
            4..12,
            "sum() expects a series or a drop table as its first argument, found a summary",
        );
    }

    #[test]
    fn summarize_plan() {
        // [Q25]
        let p = plan("summarize(drop(followers, 5%, 1h), 1h)");
        assert_eq!(
            p,
            Plan::Summarize {
                input: Box::new(Plan::Drops(followers_drop())),
                step_ms: Some(HOUR),
            }
        );
        assert_eq!(p.kind(), Kind::Summary);
        assert_eq!(p.columns(), ["bucket", "episodes", "accounts", "lost"]);
        let p = plan("summarize(recovered_within(drop(followers, 5%, 1h), 1d))");
        assert_eq!(p.columns(), ["episodes", "accounts", "lost"]);
        plan("summarize(topk(5, drop(f, 5%, 1h)), 1d)");
        assert_error(
            "summarize(followers, 1h)",
            10..19,
            "summarize() expects a drop or recovery table as its first argument, found a series",
        );
        assert_error(
            "summarize(drop(f, 5%, 1h), 5%)",
            27..29,
            "summarize() expects a duration (like 1h or 30m) as its second argument, found a percentage",
        );
    }

    #[test]
    fn topk_plan() {
        // [Q26]
        let p = plan("topk(10, drop(followers, 5%, 1h))");
        assert_eq!(
            p,
            Plan::TopK {
                k: 10,
                by: RankColumn::Lost,
                input: Box::new(Plan::Drops(followers_drop())),
            }
        );
        assert_eq!(p.kind(), Kind::Drops);
        assert_eq!(p.columns(), plan("drop(f, 5%, 1h)").columns());
        let p = plan("topk(3, recovered_within(drop(f, 5%, 1h), 1d), lost_pct)");
        assert!(matches!(
            p,
            Plan::TopK {
                k: 3,
                by: RankColumn::LostPct,
                ..
            }
        ));
        assert_eq!(p.kind(), Kind::Recoveries);
        assert_eq!(p.columns().len(), 10);
        assert!(matches!(
            plan("topk(1, drop(f, 5%, 1h), lost)"),
            Plan::TopK {
                by: RankColumn::Lost,
                ..
            }
        ));
        // `lost{}` is the same tree as `lost`.
        plan("topk(1, drop(f, 5%, 1h), lost{})");
        assert_error(
            "topk(0, drop(f, 5%, 1h))",
            5..6,
            "topk() needs a whole number of at least 1, found 0",
        );
        assert_error(
            "topk(2.5, drop(f, 5%, 1h))",
            5..8,
            "topk() needs a whole number of at least 1, found 2.5",
        );
        assert_error(
            "topk(5%, drop(f, 5%, 1h))",
            5..7,
            "topk() expects a whole number (like 10) as its first argument, found a percentage",
        );
        assert_error(
            "topk(drop(f, 5%, 1h), 10)",
            5..20,
            "topk() expects a whole number (like 10) as its first argument, found a drop table",
        );
        assert_error(
            "topk(3, f)",
            8..9,
            "topk() expects a drop or recovery table as its second argument, found a series",
        );
        assert_error(
            "topk(3, drop(f, 5%, 1h), recovery_s)",
            25..35,
            "topk() ranks by `lost` or `lost_pct`, found `recovery_s`",
        );
        assert_error(
            "topk(3, drop(f, 5%, 1h), lost{account=\"x\"})",
            25..42,
            "topk() expects a column name (`lost` or `lost_pct`) as its third argument, found a series",
        );
        assert_error(
            "topk(3, drop(f, 5%, 1h), 5%)",
            25..27,
            "topk() expects a column name (`lost` or `lost_pct`) as its third argument, found a percentage",
        );
    }

    #[test]
    fn series_functions() {
        // [Q27] [Q28] [Q29] [Q30]
        let f = || Box::new(select("f"));
        assert_eq!(plan("latest(f)"), Plan::Series(SeriesExpr::Latest(f())));
        assert_eq!(
            plan("change(f, 1d)"),
            Plan::Series(SeriesExpr::Change(f(), DAY))
        );
        assert_eq!(
            plan("min_over(f, 6h)"),
            Plan::Series(SeriesExpr::MinOver(f(), 6 * HOUR))
        );
        assert_eq!(
            plan("max_over(f, 6h)"),
            Plan::Series(SeriesExpr::MaxOver(f(), 6 * HOUR))
        );
        assert_eq!(
            plan("resample(f, 1h)"),
            Plan::Series(SeriesExpr::Resample(f(), HOUR))
        );
        assert_eq!(plan("latest(f)").kind(), Kind::Series);
        assert_eq!(plan("change(f, 1d)").kind(), Kind::Deltas);
        assert_eq!(
            plan("change(f, 1d)").columns(),
            ["account", "metric", "time", "value"]
        );
        // Differences stay differences through the functions that accept them.
        for function in [
            "latest(D)",
            "min_over(D, 1h)",
            "max_over(D, 1h)",
            "resample(D, 1h)",
        ] {
            let query = function.replace('D', "change(f, 1h)");
            assert_eq!(plan(&query).kind(), Kind::Deltas, "for {query}");
            let query = function.replace('D', "f");
            assert_eq!(plan(&query).kind(), Kind::Series, "for {query}");
        }
        assert_error(
            "change(change(f, 1h), 1h)",
            7..20,
            "change() needs counts; change() gives differences",
        );
        assert_error(
            "latest(drop(f, 5%, 1h))",
            7..22,
            "latest() expects a series as its first argument, found a drop table",
        );
        assert_error(
            "resample(f, 1h30)",
            16..17,
            "expected a duration unit (`w`, `d`, `h`, `m` or `s`), found `)`",
        );
    }

    #[test]
    fn wrong_number_of_arguments() {
        // [Q13]
        let e = assert_error(
            "drop(followers, 5%)",
            0..19,
            "drop(SERIES, THRESHOLD, WINDOW) takes 3 arguments, found 2",
        );
        assert_eq!(
            e.render(),
            "error: drop(SERIES, THRESHOLD, WINDOW) takes 3 arguments, found 2\n  drop(followers, 5%)\n  ^^^^^^^^^^^^^^^^^^^\n"
        );
        assert_error("count()", 0..7, "count(TABLE) takes 1 argument, found 0");
        assert_error(
            "count(f, g)",
            0..11,
            "count(TABLE) takes 1 argument, found 2",
        );
        assert_error(
            "recovered_within(drop(f, 5%, 1h))",
            0..33,
            "recovered_within(DROPS, DURATION [, FRACTION]) takes 2 or 3 arguments, found 1",
        );
        assert_error(
            "topk(1)",
            0..7,
            "topk(K, DROPS [, lost|lost_pct]) takes 2 or 3 arguments, found 1",
        );
        assert_error(
            "summarize(d, 1h, 1h)",
            0..20,
            "summarize(DROPS [, STEP]) takes 1 or 2 arguments, found 3",
        );
        assert_error(
            "change(f)",
            0..9,
            "change(SERIES, WINDOW) takes 2 arguments, found 1",
        );
        // Nested calls report their own position.
        assert_error(
            "count(latest())",
            6..14,
            "latest(SERIES) takes 1 argument, found 0",
        );
    }

    #[test]
    fn unknown_functions() {
        // [Q13]
        let cases = [
            (
                "dorp(f, 5%, 1h)",
                0..4,
                "dorp",
                Some("did you mean `drop`?"),
            ),
            (
                "DROP(f, 5%, 1h)",
                0..4,
                "DROP",
                Some("function names are lower case: `drop`"),
            ),
            (
                "recover_within(d, 1h)",
                0..14,
                "recover_within",
                Some("did you mean `recovered_within`?"),
            ),
            (
                "summary(d)",
                0..7,
                "summary",
                Some("did you mean `summarize`?"),
            ),
            ("top(1, d)", 0..3, "top", Some("did you mean `topk`?")),
            ("min(f, 1h)", 0..3, "min", Some("did you mean `min_over`?")),
            ("cnt(f)", 0..3, "cnt", Some("did you mean `count`?")),
        ];
        for (query, span, name, hint) in cases {
            let e = assert_error(query, span, &format!("unknown function `{name}`"));
            assert_eq!(e.hint.as_deref(), hint, "for {query}");
        }
        let e = assert_error("frobnicate(f)", 0..10, "unknown function `frobnicate`");
        assert_eq!(
            e.hint.as_deref(),
            Some(
                "the functions are drop, recovered_within, count, sum, summarize, topk, latest, change, min_over, max_over, resample"
            )
        );
        let e = assert_error("count(not(x))", 6..9, "unknown function `not`");
        assert!(e.hint.is_some_and(|h| h.contains("without parentheses")));
        // The name is checked before the arguments.
        assert_error("dorp(5%)", 0..4, "unknown function `dorp`");
    }

    #[test]
    fn first_error_in_reading_order() {
        // [Q15]
        assert_error(
            "drop(change(f, 0s), 0%, 1h)",
            15..17,
            "a duration must be longer than 0s",
        );
        assert_error(
            "count(drop(f, 0%, 0s))",
            14..16,
            "a percentage must be more than 0% and at most 100%, found 0%",
        );
    }

    #[test]
    fn the_documented_examples_compile() {
        // Every example in docs/query-language.md.
        for query in DOCUMENTED_EXAMPLES {
            plan(query);
        }
    }

    /// The examples of docs/query-language.md, kept in step with it by hand.
    const DOCUMENTED_EXAMPLES: &[&str] = &[
        "followers",
        r#"followers{account="adela_mae"}"#,
        r#"followers{account=~"ad.*"}"#,
        r#"followers{account!="x"}"#,
        r#"followers{account!~"bot_.*|test"}"#,
        r#"followers{account=~"a.*", account!="adam",}"#,
        "drop(followers, 5%, 1h)",
        "drop(followers, 1000, 1h)",
        "recovered_within(drop(followers, 5%, 1h), 1d)",
        "recovered_within(drop(followers, 5%, 1h), 1d, 90%)",
        "not recovered_within(drop(followers, 5%, 1h), 1d)",
        "count(not recovered_within(drop(followers, 5%, 1h), 1d))",
        "sum(drop(followers, 5%, 1h))",
        "summarize(drop(followers, 5%, 1h), 1h)",
        "summarize(not recovered_within(drop(followers, 5%, 1h), 2d))",
        "topk(10, drop(followers, 5%, 1h))",
        "topk(10, recovered_within(drop(followers, 5%, 1h), 1d), lost_pct)",
        r#"latest(followers{account="adela_mae"})"#,
        "change(followers, 1d)",
        "min_over(followers, 6h)",
        "max_over(followers, 6h)",
        "resample(followers, 1h)",
        "drop(resample(followers, 1h), 5%, 1h)",
    ];
}
