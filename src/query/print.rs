//! Canonical text of a syntax tree ([Q17]).
//!
//! Every value has exactly one printed form: calls as `name(a, b)` with one
//! space after each comma, selectors as `metric{account="x", account!~"y"}`
//! (no braces when there are no matchers), numbers without trailing
//! fractional zeros, durations in strictly descending units (`90m` prints as
//! `1h30m`), and strings with `"` and `\` escaped. Parsing the printed text
//! gives back the same tree, which is what lets a REPL or a log show a query
//! in a form that can be pasted back.

// Nothing outside the query front-end prints a tree yet.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{
    Arg, Call, DURATION_UNITS, Decimal, Duration, Expr, Matcher, Not, Selector, StringLit,
};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Selector(selector) => selector.fmt(f),
            Expr::Call(call) => call.fmt(f),
            Expr::Not(not) => not.fmt(f),
        }
    }
}

impl Display for Selector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric.name)?;
        // `followers{}` means the same as `followers`; the shorter form is
        // the canonical one.
        if self.matchers.is_empty() {
            return Ok(());
        }
        f.write_char('{')?;
        for (i, matcher) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            matcher.fmt(f)?;
        }
        f.write_char('}')
    }
}

impl Display for Matcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.label.name, self.op.symbol(), self.value)
    }
}

impl Display for StringLit {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.value.chars() {
            // Only these two need escaping ([Q3]); everything else, line
            // breaks included, is written as it is.
            if c == '"' || c == '\\' {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
        f.write_char('"')
    }
}

impl Display for Call {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function.name)?;
        f.write_char('(')?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            arg.fmt(f)?;
        }
        f.write_char(')')
    }
}

impl Display for Not {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "not {}", self.call)
    }
}

impl Display for Arg {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Expr(expr) => expr.fmt(f),
            Arg::Number { value, .. } => value.fmt(f),
            Arg::Percent { value, .. } => write!(f, "{value}%"),
            Arg::Duration { value, .. } => value.fmt(f),
        }
    }
}

impl Display for Decimal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        // Pad with leading zeros so that there is at least one digit before
        // the point: mantissa 5, scale 2 is 0.05.
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{whole}.{fraction}")
    }
}

impl Display for Duration {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            // Not a valid argument, but the tree can hold it and the checker
            // reports it; print it so that the report can quote it.
            return f.write_str("0s");
        }
        let mut rest = self.seconds;
        for (unit, length) in DURATION_UNITS {
            let count = rest / length;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                rest %= length;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::ast::{self, Ident, MatchOp, Span};
    use super::super::parse::parse;
    use super::*;
    use proptest::prelude::*;

    /// Parses, erases the spans, and panics with the rendered error if the
    /// text does not parse.
    fn tree(query: &str) -> Expr {
        let mut expr = match parse(query) {
            Ok(expr) => expr,
            Err(e) => panic!("{query:?} does not parse:\n{}", e.render()),
        };
        ast::erase::expr(&mut expr);
        expr
    }

    /// Checks [Q17] on one tree: printing then parsing gives the tree back,
    /// and printing is idempotent.
    fn assert_round_trip(expr: &Expr) {
        let printed = expr.to_string();
        let reparsed = tree(&printed);
        assert_eq!(&reparsed, expr, "printed as {printed:?}");
        assert_eq!(reparsed.to_string(), printed, "printing is not idempotent");
    }

    /// Every example query used in the documentation and the tests of the
    /// other stages.
    const EXAMPLES: &[&str] = &[
        "followers",
        "followers{}",
        "followers{account=\"adela_mae\"}",
        "followers{account=~\"ad.*\"}",
        "followers{account!=\"x\"}",
        "followers{account!~\"re\"}",
        "followers{account=~\"a.*\", account!=\"ab\",}",
        "followers{account=\"say \\\"hi\\\" \\\\ bye\"}",
        "followers{account=\"ünïcödé 😀\"}",
        "drop(followers, 5%, 1h)",
        "drop(followers{account=~\"ad.*\"}, 5%, 1h30m)",
        "drop(followers, 2.5%, 2d12h)",
        "drop(followers, 1000, 1w)",
        "recovered_within(drop(followers, 5%, 1h), 1d)",
        "recovered_within(drop(followers, 5%, 1h), 1d, 90%)",
        "not recovered_within(drop(followers, 5%, 1h), 1d)",
        "count(not recovered_within(drop(followers, 5%, 1h), 1d, 99.5%))",
        "sum(drop(followers, 5%, 1h))",
        "summarize(drop(followers, 5%, 1h), 1h)",
        "summarize(recovered_within(drop(followers, 5%, 1h), 6h))",
        "topk(10, drop(followers, 5%, 1h))",
        "topk(3, drop(followers, 5%, 1h), lost_pct)",
        "latest(followers)",
        "change(followers, 1d)",
        "min_over(followers, 6h)",
        "max_over(change(followers, 1h), 6h)",
        "resample(followers, 1h)",
        "  drop ( followers { account = \"x\" , } ,\n\t5.000% ,90m )  ",
    ];

    #[test]
    fn examples_round_trip() {
        // [Q17]
        for query in EXAMPLES {
            assert_round_trip(&tree(query));
        }
    }

    #[test]
    fn prints_canonical_text() {
        // [Q17]
        let cases = [
            ("followers{}", "followers"),
            (
                "followers{ account =~ \"ad.*\" , }",
                "followers{account=~\"ad.*\"}",
            ),
            (
                "drop(followers{account=~\"ad.*\"},5%,90m)",
                "drop(followers{account=~\"ad.*\"}, 5%, 1h30m)",
            ),
            ("drop(f, 2.50%, 3600s)", "drop(f, 2.5%, 1h)"),
            ("drop(f, 05.0%, 14d)", "drop(f, 5%, 2w)"),
            (
                "drop(f, 0.000001%, 1w1d1h1m1s)",
                "drop(f, 0.000001%, 1w1d1h1m1s)",
            ),
            ("topk(010, d)", "topk(10, d)"),
            (
                "not\n recovered_within(d, 1h)",
                "not recovered_within(d, 1h)",
            ),
            ("f{account=\"a\\\\b\\\"c\"}", "f{account=\"a\\\\b\\\"c\"}"),
            ("latest( )", "latest()"),
            // The example of [Q17] in docs/query-language.md.
            (
                "drop( followers{ account =~ \"ad.*\", } , 5.0% , 90m )",
                "drop(followers{account=~\"ad.*\"}, 5%, 1h30m)",
            ),
        ];
        for (query, canonical) in cases {
            assert_eq!(tree(query).to_string(), canonical, "for {query:?}");
        }
    }

    #[test]
    fn prints_decimals_and_durations() {
        // [Q4] [Q6]
        let decimal = |mantissa, scale| Decimal { mantissa, scale }.to_string();
        assert_eq!(decimal(5, 0), "5");
        assert_eq!(decimal(25, 1), "2.5");
        assert_eq!(decimal(5, 2), "0.05");
        assert_eq!(decimal(123_456, 6), "0.123456");
        assert_eq!(decimal(u64::MAX, 6), "18446744073709.551615");
        let duration = |seconds| Duration { seconds }.to_string();
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(90 * 60), "1h30m");
        assert_eq!(duration(60 * 3600), "2d12h");
        assert_eq!(duration(8 * 86_400 + 1), "1w1d1s");
        assert_eq!(
            duration(ast::MAX_DURATION_SECONDS),
            "15250284452w3d7h12m55s"
        );
    }

    // Generators for [Q17]'s property: arbitrary trees, including ones no
    // checker would accept, since printing must not depend on meaning.

    fn ident() -> impl Strategy<Value = Ident> {
        "[A-Za-z_][A-Za-z0-9_]{0,10}".prop_map(|name| Ident {
            name,
            span: Span::default(),
        })
    }

    fn selector() -> impl Strategy<Value = Selector> {
        let op = prop_oneof![
            Just(MatchOp::Equal),
            Just(MatchOp::NotEqual),
            Just(MatchOp::Matches),
            Just(MatchOp::NotMatches),
        ];
        let matcher = (ident(), op, any::<String>()).prop_map(|(label, op, value)| Matcher {
            label,
            op,
            value: StringLit {
                value,
                span: Span::default(),
            },
            span: Span::default(),
        });
        (ident(), prop::collection::vec(matcher, 0..3)).prop_map(|(metric, matchers)| Selector {
            metric,
            matchers,
            span: Span::default(),
        })
    }

    fn literal() -> impl Strategy<Value = Arg> {
        let decimal = (any::<u64>(), 0..=ast::MAX_DECIMAL_PLACES)
            .prop_map(|(mantissa, scale)| Decimal::canonical(mantissa, scale));
        prop_oneof![
            decimal.clone().prop_map(|value| Arg::Number {
                value,
                span: Span::default()
            }),
            decimal.prop_map(|value| Arg::Percent {
                value,
                span: Span::default()
            }),
            prop_oneof![0..=100_000u64, 0..=ast::MAX_DURATION_SECONDS].prop_map(|seconds| {
                Arg::Duration {
                    value: Duration { seconds },
                    span: Span::default(),
                }
            }),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        selector()
            .prop_map(Expr::Selector)
            .prop_recursive(4, 24, 4, |inner| {
                let arg = prop_oneof![inner.prop_map(Arg::Expr), literal()];
                let args = prop::collection::vec(arg, 0..4);
                prop_oneof![
                    (ident(), args.clone()).prop_map(|(function, args)| Expr::Call(Call {
                        function,
                        args,
                        span: Span::default(),
                    })),
                    // [Q10]: the parser only builds `not` before recovered_within.
                    args.prop_map(|args| Expr::Not(Not {
                        keyword: Span::default(),
                        call: Call {
                            function: Ident {
                                name: "recovered_within".to_string(),
                                span: Span::default(),
                            },
                            args,
                            span: Span::default(),
                        },
                        span: Span::default(),
                    })),
                ]
            })
    }

    proptest! {
        #[test]
        fn generated_trees_round_trip(expr in expr()) {
            // [Q17]
            assert_round_trip(&expr);
        }
    }
}
