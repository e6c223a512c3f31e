//! Meta commands: the lines that start with `.` and talk to the shell
//! rather than query the data (`.help`, `.format csv`, `.range …`), and the
//! text of `.help`, including the functions of the query language with one
//! example each, from the language's one table of functions
//! ([`crate::functions`]).
//!
//! Parsing is kept apart from doing, so that every way a command line can
//! be wrong is tested here without a terminal or a database.

use super::super::args::OutputFormat;
use crate::TimeRange;
use crate::time::{format_time, parse_time};

/// A meta command, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Meta {
    Help,
    Metrics,
    /// The accounts whose whole name matches the pattern, or all of them.
    Accounts(Option<String>),
    Stats,
    /// `None` asks what the format is.
    Format(Option<OutputFormat>),
    /// `None` asks whether the timer is on.
    Timer(Option<bool>),
    /// The most rows a table shows (0: all); `None` asks.
    MaxRows(Option<usize>),
    Range(RangeCommand),
    /// Draw the last query's result into this file.
    Plot(String),
    Quit,
}

/// What `.range` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeCommand {
    Show,
    Off,
    Set(TimeRange),
}

/// One meta command as `.help` lists it and Tab completes it.
pub(super) struct MetaHelp {
    pub name: &'static str,
    pub args: &'static str,
    pub about: &'static str,
}

pub(super) const META_COMMANDS: &[MetaHelp] = &[
    MetaHelp {
        name: ".help",
        args: "",
        about: "this text",
    },
    MetaHelp {
        name: ".metrics",
        args: "",
        about: "the metrics in the database",
    },
    MetaHelp {
        name: ".accounts",
        args: "[PATTERN]",
        about: "the accounts, or those PATTERN matches (whole names)",
    },
    MetaHelp {
        name: ".stats",
        args: "",
        about: "what the database holds and what it costs on disk",
    },
    MetaHelp {
        name: ".format",
        args: "[table|csv|json]",
        about: "how results are printed",
    },
    MetaHelp {
        name: ".maxrows",
        args: "[N]",
        about: "rows a table shows, first and last half (0: all)",
    },
    MetaHelp {
        name: ".timer",
        args: "[on|off]",
        about: "print how long each query took",
    },
    MetaHelp {
        name: ".range",
        args: "[FROM TO | off]",
        about: "queries see only [FROM, TO); - leaves a side open",
    },
    MetaHelp {
        name: ".plot",
        args: "FILE.svg",
        about: "draw the last query's result as an SVG picture",
    },
    MetaHelp {
        name: ".quit",
        args: "",
        about: "leave (so do .exit and Ctrl-D)",
    },
    MetaHelp {
        name: ".exit",
        args: "",
        about: "leave",
    },
];

/// The arguments Tab offers after a meta command that takes a word.
pub(super) fn argument_words(command: &str) -> &'static [&'static str] {
    match command {
        ".format" => &["table", "csv", "json"],
        ".timer" => &["on", "off"],
        ".range" => &["off", "-"],
        _ => &[],
    }
}

/// The text `.help` prints.
pub(super) fn help_text() -> String {
    let usage_width = crate::functions()
        .iter()
        .map(|f| f.usage.len())
        .max()
        .unwrap_or(0);
    let mut out = String::from(
        "A query is a selector, such as followers or followers{account=~\"ad.*\"},\n\
         or a function of one (docs/query-language.md describes them in full):\n",
    );
    for f in crate::functions() {
        out.push_str(&format!(
            "  {:<usage_width$}  {}\n      e.g. {}\n",
            f.usage, f.about, f.example
        ));
    }
    out.push_str("\nMeta commands:\n");
    let command_width = META_COMMANDS
        .iter()
        .map(|m| m.name.len() + 1 + m.args.len())
        .max()
        .unwrap_or(0);
    for m in META_COMMANDS {
        let command = format!("{} {}", m.name, m.args);
        out.push_str(&format!("  {command:<command_width$}  {}\n", m.about));
    }
    out.push_str(
        "\nFROM and TO are RFC 3339 times or Unix seconds. PATTERN is a regular expression,\n\
         as in account=~\"PATTERN\". A query ends at the end of the line, or at `;`;\n\
         an open bracket continues it on the next line. Tab completes, Ctrl-R searches\n\
         the history, Ctrl-C cancels the line or a running query, Ctrl-D leaves.\n",
    );
    out
}

/// Parses a meta command line (it starts with `.`; see
/// [`super::input::Statement::Meta`]). The error is a sentence for the
/// user.
pub(super) fn parse(line: &str) -> Result<Meta, String> {
    let line = line.trim();
    let (name, rest) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(n, r)| (n, r.trim()));
    let words: Vec<&str> = rest.split_whitespace().collect();
    let no_arguments = |meta: Meta| {
        if words.is_empty() {
            Ok(meta)
        } else {
            Err(format!("{name} takes no arguments"))
        }
    };
    match name {
        ".help" => no_arguments(Meta::Help),
        ".metrics" => no_arguments(Meta::Metrics),
        ".stats" => no_arguments(Meta::Stats),
        ".quit" | ".exit" => no_arguments(Meta::Quit),
        // The pattern is the rest of the line, spaces and all.
        ".accounts" => Ok(Meta::Accounts((!rest.is_empty()).then(|| rest.to_string()))),
        ".format" => match words.as_slice() {
            [] => Ok(Meta::Format(None)),
            ["table"] => Ok(Meta::Format(Some(OutputFormat::Table))),
            ["csv"] => Ok(Meta::Format(Some(OutputFormat::Csv))),
            ["json"] => Ok(Meta::Format(Some(OutputFormat::Json))),
            _ => Err(format!("usage: .format table|csv|json (found `{rest}`)")),
        },
        ".timer" => match words.as_slice() {
            [] => Ok(Meta::Timer(None)),
            ["on"] => Ok(Meta::Timer(Some(true))),
            ["off"] => Ok(Meta::Timer(Some(false))),
            _ => Err(format!("usage: .timer on|off (found `{rest}`)")),
        },
        ".maxrows" => match words.as_slice() {
            [] => Ok(Meta::MaxRows(None)),
            [n] => n
                .parse()
                .map(|n| Meta::MaxRows(Some(n)))
                .map_err(|_| format!("usage: .maxrows N, a whole number (found `{n}`)")),
            _ => Err("usage: .maxrows N".to_string()),
        },
        ".range" => parse_range(&words).map(Meta::Range),
        // The file name is the rest of the line, spaces and all.
        ".plot" if rest.is_empty() => Err("usage: .plot FILE.svg".to_string()),
        ".plot" => Ok(Meta::Plot(rest.to_string())),
        _ => Err(unknown(name)),
    }
}

fn parse_range(words: &[&str]) -> Result<RangeCommand, String> {
    let bound = |text: &str, open: i64| {
        if text == "-" {
            Ok(open)
        } else {
            parse_time(text).map_err(|e| format!(".range: {e}"))
        }
    };
    match words {
        [] => Ok(RangeCommand::Show),
        ["off"] => Ok(RangeCommand::Off),
        [from, to] => {
            let range = TimeRange {
                from: bound(from, i64::MIN)?,
                to: bound(to, i64::MAX)?,
            };
            if range.from >= range.to {
                return Err(format!(
                    ".range: FROM must be before TO, or no point could be in the range ({from} is not before {to})"
                ));
            }
            Ok(RangeCommand::Set(range))
        }
        _ => Err(
            "usage: .range FROM TO (RFC 3339 or Unix seconds, - for open), or .range off"
                .to_string(),
        ),
    }
}

/// The error for an unknown command, naming the one meant when the name
/// is the start of exactly one.
fn unknown(name: &str) -> String {
    let mut starting = META_COMMANDS.iter().filter(|m| m.name.starts_with(name));
    match (starting.next(), starting.next()) {
        (Some(only), None) if name.len() > 1 => {
            format!("unknown command {name}; did you mean {}?", only.name)
        }
        _ => format!("unknown command {name}; .help lists the commands"),
    }
}

/// Describes a range as `.range` shows it.
pub(super) fn describe_range(range: TimeRange) -> String {
    let bound = |t: i64, open: i64| {
        if t == open {
            "-".to_string()
        } else {
            format_time(t)
        }
    };
    if range == TimeRange::ALL {
        "all time (.range FROM TO restricts it)".to_string()
    } else {
        format!(
            "from {} to {} (.range off removes it)",
            bound(range.from, i64::MIN),
            bound(range.to, i64::MAX)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_functions_and_commands() {
        let help = help_text();
        for f in crate::functions() {
            assert!(help.contains(f.example));
        }
        for m in META_COMMANDS {
            assert!(help.contains(m.name));
        }
        for line in help.lines() {
            assert!(line.chars().count() <= 80, "wider than a terminal: {line}");
        }
    }

    #[test]
    fn parses_commands_and_their_arguments() {
        assert_eq!(parse(".help"), Ok(Meta::Help));
        assert_eq!(parse("  .quit  "), Ok(Meta::Quit));
        assert_eq!(parse(".exit"), Ok(Meta::Quit));
        assert_eq!(parse(".accounts"), Ok(Meta::Accounts(None)));
        assert_eq!(
            parse(".accounts  ad.* | x "),
            Ok(Meta::Accounts(Some("ad.* | x".to_string())))
        );
        assert_eq!(
            parse(".format csv"),
            Ok(Meta::Format(Some(OutputFormat::Csv)))
        );
        assert_eq!(parse(".format"), Ok(Meta::Format(None)));
        assert_eq!(parse(".timer on"), Ok(Meta::Timer(Some(true))));
        assert_eq!(parse(".timer off"), Ok(Meta::Timer(Some(false))));
        assert_eq!(parse(".maxrows 0"), Ok(Meta::MaxRows(Some(0))));
        assert_eq!(parse(".maxrows"), Ok(Meta::MaxRows(None)));
        assert_eq!(
            parse(".plot  my chart.svg "),
            Ok(Meta::Plot("my chart.svg".to_string()))
        );
        assert!(parse(".plot").unwrap_err().starts_with("usage"));
    }

    #[test]
    fn rejects_bad_commands_with_a_reason() {
        assert_eq!(
            parse(".acc").unwrap_err(),
            "unknown command .acc; did you mean .accounts?"
        );
        assert!(parse(".bogus").unwrap_err().contains(".help lists"));
        assert!(parse(".").unwrap_err().contains(".help lists"));
        assert!(parse(".help me").unwrap_err().contains("no arguments"));
        assert!(parse(".format xml").unwrap_err().contains("table|csv|json"));
        assert!(parse(".timer yes").unwrap_err().contains("on|off"));
        assert!(parse(".maxrows -1").unwrap_err().contains("whole number"));
    }

    #[test]
    fn ranges_take_two_bounds_or_off() {
        let t0 = 1_550_052_000_000;
        assert_eq!(
            parse(".range 2019-02-13T10:00:00Z 1550055600"),
            Ok(Meta::Range(RangeCommand::Set(TimeRange {
                from: t0,
                to: t0 + 3_600_000
            })))
        );
        assert_eq!(
            parse(".range - 2019-02-13T10:00:00Z"),
            Ok(Meta::Range(RangeCommand::Set(TimeRange {
                from: i64::MIN,
                to: t0
            })))
        );
        assert_eq!(parse(".range off"), Ok(Meta::Range(RangeCommand::Off)));
        assert_eq!(parse(".range"), Ok(Meta::Range(RangeCommand::Show)));
        assert!(parse(".range 5").unwrap_err().starts_with("usage"));
        assert!(
            parse(".range yesterday -")
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(parse(".range 10 10").unwrap_err().contains("before"));
        assert_eq!(
            describe_range(TimeRange {
                from: t0,
                to: i64::MAX
            }),
            "from 2019-02-13T10:00:00Z to - (.range off removes it)"
        );
    }
}
