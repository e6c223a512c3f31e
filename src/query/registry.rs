//! The one table of the query language's functions: name, parameters,
//! result type, a line of help and an example each, in the order of
//! docs/query-language.md, section 4.
//!
//! The checker takes the names and the numbers of arguments from here, and
//! its arity messages quote [`Function::usage`]; the parser asks it only
//! whether a name is a function, for a hint; the REPL's `.help` and Tab
//! completion list these entries; the HTTP server serialises them for the
//! web page's completion (through [`crate::functions`]). What each function
//! does with its arguments is the checker's business (`check.rs`): this
//! table describes, it does not decide types.

use serde::Serialize;

/// One function of the query language, or the `not recovered_within(…)`
/// form (rule Q22), as help and completion show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Function {
    /// The word typed: `drop`, or `not` for the negated form.
    pub name: &'static str,
    /// How the documentation writes a call: `drop(SERIES, THRESHOLD, WINDOW)`.
    pub usage: &'static str,
    /// The parameters in order; optional ones come last.
    pub params: &'static [Param],
    /// The type of the result, as docs/query-language.md rule Q12 names it
    /// (`series`, `deltas`, `drops`, `recoveries`, `summary`); for `topk`,
    /// "the type of DROPS".
    pub result: &'static str,
    /// One line of help.
    pub about: &'static str,
    /// A query using it, in canonical text (rule Q17).
    pub example: &'static str,
    /// The rule of docs/query-language.md that defines it, like `Q20`.
    pub rule: &'static str,
    /// True for `not`, a word written before a `recovered_within()` call
    /// rather than a function called with parentheses.
    pub prefix: bool,
}

/// One parameter of a [`Function`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Param {
    /// The placeholder of the usage text: `SERIES`, `THRESHOLD`, …
    pub name: &'static str,
    /// What it takes, in the words of rule Q13's table of kinds.
    pub takes: &'static str,
    /// True when it may be left out.
    pub optional: bool,
}

impl Function {
    /// The fewest arguments a call takes.
    pub(crate) fn min_args(&self) -> usize {
        self.params.iter().filter(|p| !p.optional).count()
    }

    /// The most arguments a call takes.
    pub(crate) fn max_args(&self) -> usize {
        self.params.len()
    }
}

const fn param(name: &'static str, takes: &'static str) -> Param {
    Param {
        name,
        takes,
        optional: false,
    }
}

const fn optional(name: &'static str, takes: &'static str) -> Param {
    Param {
        name,
        takes,
        optional: true,
    }
}

const SERIES: Param = param("SERIES", "a series of counts");
const SERIES_OR_DELTAS: Param = param("SERIES", "a series (counts or differences)");
const WINDOW: Param = param("WINDOW", "a duration, like 1h");
const STEP_ARG: Param = param("STEP", "a duration, like 1h");
const RECOVERY_PARAMS: [Param; 3] = [
    param("DROPS", "a drop() call"),
    param("DURATION", "a duration, like 1d"),
    optional("FRACTION", "a percentage, like 90% (default 100%)"),
];

/// Every entry, in the order of docs/query-language.md, section 4.
pub(crate) const FUNCTIONS: &[Function] = &[
    Function {
        name: "drop",
        usage: "drop(SERIES, THRESHOLD, WINDOW)",
        params: &[
            SERIES,
            param("THRESHOLD", "a percentage like 5% or a count like 1000"),
            WINDOW,
        ],
        result: "drops",
        about: "falls in the counts",
        example: "drop(followers, 5%, 1h)",
        rule: "Q20",
        prefix: false,
    },
    Function {
        name: "recovered_within",
        usage: "recovered_within(DROPS, DURATION [, FRACTION])",
        params: &RECOVERY_PARAMS,
        result: "recoveries",
        about: "falls that came back",
        example: "recovered_within(drop(followers, 5%, 1h), 1d)",
        rule: "Q21",
        prefix: false,
    },
    Function {
        name: "not",
        usage: "not recovered_within(DROPS, DURATION [, FRACTION])",
        params: &RECOVERY_PARAMS,
        result: "drops",
        about: "falls that did not",
        example: "not recovered_within(drop(followers, 5%, 1h), 1d)",
        rule: "Q22",
        prefix: true,
    },
    Function {
        name: "count",
        usage: "count(TABLE)",
        params: &[param("TABLE", "a table of any type")],
        result: "summary",
        about: "the number of rows",
        example: "count(drop(followers, 5%, 1h))",
        rule: "Q23",
        prefix: false,
    },
    Function {
        name: "sum",
        usage: "sum(TABLE)",
        params: &[param("TABLE", "a series or a drop table")],
        result: "summary",
        about: "the sum of lost or value",
        example: "sum(drop(followers, 5%, 1h))",
        rule: "Q24",
        prefix: false,
    },
    Function {
        name: "summarize",
        usage: "summarize(DROPS [, STEP])",
        params: &[
            param("DROPS", "a drop or recovery table"),
            optional("STEP", "a duration, like 1h"),
        ],
        result: "summary",
        about: "totals, per STEP",
        example: "summarize(drop(followers, 5%, 1h), 1h)",
        rule: "Q25",
        prefix: false,
    },
    Function {
        name: "topk",
        usage: "topk(K, DROPS [, lost|lost_pct])",
        params: &[
            param("K", "a whole number, like 10"),
            param("DROPS", "a drop or recovery table"),
            optional("lost|lost_pct", "the column to rank by (default lost)"),
        ],
        result: "the type of DROPS",
        about: "the K largest falls",
        example: "topk(10, drop(followers, 5%, 1h))",
        rule: "Q26",
        prefix: false,
    },
    Function {
        name: "latest",
        usage: "latest(SERIES)",
        params: &[SERIES_OR_DELTAS],
        result: "series",
        about: "the last point of each",
        example: "latest(followers{account=\"adela_mae\"})",
        rule: "Q27",
        prefix: false,
    },
    Function {
        name: "change",
        usage: "change(SERIES, WINDOW)",
        params: &[SERIES, WINDOW],
        result: "deltas",
        about: "the change over WINDOW",
        example: "change(followers, 1d)",
        rule: "Q28",
        prefix: false,
    },
    Function {
        name: "min_over",
        usage: "min_over(SERIES, WINDOW)",
        params: &[SERIES_OR_DELTAS, WINDOW],
        result: "series",
        about: "the minimum over WINDOW",
        example: "min_over(followers, 6h)",
        rule: "Q29",
        prefix: false,
    },
    Function {
        name: "max_over",
        usage: "max_over(SERIES, WINDOW)",
        params: &[SERIES_OR_DELTAS, WINDOW],
        result: "series",
        about: "the maximum over WINDOW",
        example: "max_over(followers, 6h)",
        rule: "Q29",
        prefix: false,
    },
    Function {
        name: "resample",
        usage: "resample(SERIES, STEP)",
        params: &[SERIES_OR_DELTAS, STEP_ARG],
        result: "series",
        about: "the last point per STEP",
        example: "resample(followers, 1h)",
        rule: "Q30",
        prefix: false,
    },
];

/// The function called `name` with parentheses (not the `not` form).
pub(crate) fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| !f.prefix && f.name == name)
}

/// True when `name` is one of the functions, for the parser's hint on a
/// function written without its parentheses.
pub(crate) fn is_function(name: &str) -> bool {
    lookup(name).is_some()
}

/// The functions called with parentheses, in order.
pub(crate) fn callable() -> impl Iterator<Item = &'static Function> {
    FUNCTIONS.iter().filter(|f| !f.prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The usage text is what the parameters say, so the two cannot drift.
    #[test]
    fn usage_follows_the_parameters() {
        for f in FUNCTIONS {
            let head = if f.prefix {
                "not recovered_within"
            } else {
                f.name
            };
            let mut text = format!("{head}(");
            for (i, p) in f.params.iter().enumerate() {
                match (p.optional, i) {
                    (true, 0) => text.push('['),
                    (true, _) => text.push_str(" [, "),
                    (false, 0) => {}
                    (false, _) => text.push_str(", "),
                }
                text.push_str(p.name);
                if p.optional {
                    text.push(']');
                }
            }
            text.push(')');
            assert_eq!(text, f.usage, "{}", f.name);
            // Optional parameters come last.
            if let Some(i) = f.params.iter().position(|p| p.optional) {
                assert!(f.params[i..].iter().all(|p| p.optional), "{}", f.name);
            }
        }
    }

    #[test]
    fn examples_parse_canonically_and_use_their_function() {
        for f in FUNCTIONS {
            let query =
                crate::Query::parse(f.example).unwrap_or_else(|e| panic!("{}: {e}", f.example));
            assert!(f.example.starts_with(f.name), "{}", f.example);
            assert!(f.usage.starts_with(f.name), "{}", f.usage);
            assert_eq!(query.to_string(), f.example, "examples are canonical");
        }
    }

    #[test]
    fn the_documentation_defines_every_entry() {
        let doc = include_str!("../../docs/query-language.md");
        for f in FUNCTIONS {
            let label = format!("- **[{}] `", f.rule);
            let at = doc
                .find(&label)
                .unwrap_or_else(|| panic!("docs lack {label}"));
            let paragraph = doc[at..].split("\n- **[").next().unwrap_or("");
            let head = if f.prefix {
                "not recovered_within"
            } else {
                f.name
            };
            assert!(
                paragraph.contains(&format!("`{head}(")),
                "{} in {label}",
                f.name
            );
        }
    }
}
