//! Every query the documentation shows must run: the `tally query '…'`
//! lines of README.md and docs/*.md, and the `Example:` queries of
//! docs/query-language.md, are run against a demo database (the generator's
//! story, smaller) and must parse, check and evaluate without error.

use std::path::Path;

use tally::generate::{Config, fill_db};
use tally::{Db, Query, TimeRange};

/// A query found in a document, with where it was found.
struct Example {
    at: String,
    query: String,
    range: TimeRange,
    /// The error line the document shows after the command, when it shows
    /// one: the query must fail with exactly that message.
    error: Option<String>,
}

fn parse_time(s: &str) -> i64 {
    if let Ok(secs) = s.parse::<i64>() {
        return secs * 1000;
    }
    s.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
        .as_millisecond()
}

/// `tally … query [--from T] [--to T] [--format F] 'QUERY'` lines of the
/// fenced code blocks, with `\` continuations joined.
fn shell_examples(name: &str, text: &str, out: &mut Vec<Example>) {
    let mut in_code = false;
    let mut pending = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.trim_start_matches("$ ");
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let full = format!("{pending}{line}");
        pending.clear();
        let Some(q) = full.find(" query ").filter(|_| full.contains("tally")) else {
            continue;
        };
        let args = &full[q + " query ".len()..];
        let Some(open) = args.find('\'') else {
            continue;
        };
        let Some(close) = args[open + 1..].find('\'').map(|c| c + open + 1) else {
            continue;
        };
        let flags: Vec<&str> = args[..open].split_whitespace().collect();
        let mut range = TimeRange::ALL;
        for pair in flags.windows(2) {
            match pair[0] {
                "--from" => range.from = parse_time(pair[1]),
                "--to" => range.to = parse_time(pair[1]),
                _ => {}
            }
        }
        let error = lines
            .get(n + 1)
            .and_then(|l| l.strip_prefix("error: "))
            .map(str::to_string);
        out.push(Example {
            at: format!("{name}:{}", n + 1),
            query: args[open + 1..close].to_string(),
            range,
            error,
        });
    }
}

/// The backticked queries of every `Example:` paragraph.
fn spec_examples(name: &str, text: &str, out: &mut Vec<Example>) {
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let Some(start) = line.find("Example:") else {
            continue;
        };
        let mut para = line[start + "Example:".len()..].to_string();
        for next in &lines[n + 1..] {
            let t = next.trim();
            if t.is_empty() || t.starts_with("- ") {
                break;
            }
            para.push(' ');
            para.push_str(t);
        }
        for (i, piece) in para.split('`').enumerate() {
            // Odd pieces are inside backticks; a trailing description after
            // " — " is prose.
            if i % 2 == 1 && (piece.contains(['(', '{']) || !piece.contains(' ')) {
                out.push(Example {
                    at: format!("{name}:{}", n + 1),
                    query: piece.to_string(),
                    range: TimeRange::ALL,
                    error: None,
                });
            }
        }
    }
}

#[test]
fn every_documented_query_runs_on_the_demo_database() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);

    let mut examples = Vec::new();
    for path in &docs {
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        shell_examples(&name, &text, &mut examples);
        if name.ends_with("query-language.md") {
            spec_examples(&name, &text, &mut examples);
        }
    }
    assert!(
        examples.len() >= 25,
        "only {} examples found",
        examples.len()
    );
    assert!(examples.iter().any(|e| e.at.starts_with("README.md")));

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let config = Config {
        accounts: 300,
        ..Config::default()
    };
    fill_db(&db, &config).unwrap();

    let mut failures = Vec::new();
    for e in &examples {
        let result = Query::parse(&e.query).and_then(|q| q.range(e.range).run(&db));
        match (result, &e.error) {
            (Ok(_), None) => {}
            (Err(err), None) => failures.push(format!("{}: {}: {err}", e.at, e.query)),
            (Ok(_), Some(expected)) => failures.push(format!(
                "{}: {}: ran, but the doc shows {expected:?}",
                e.at, e.query
            )),
            (Err(tally::Error::Query(q)), Some(expected)) if &q.message == expected => {}
            (Err(err), Some(expected)) => failures.push(format!(
                "{}: {}: failed with {err}, but the doc shows {expected:?}",
                e.at, e.query
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "documented queries that fail:\n{}",
        failures.join("\n")
    );
}
