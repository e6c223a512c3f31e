//! What the line editor asks of tally: Tab completion and whether Enter
//! ends the input.
//!
//! Completion reads the text before the cursor to find what is being typed:
//! a meta command or its argument after a leading `.`; an account name
//! inside the string of `account="…"` (or `!=`, `=~`, `!~`); the label
//! `account` just inside a selector's braces; otherwise a function, a
//! metric or, within `topk(…)`, a column. Names come from the database's
//! dictionary at the moment Tab is pressed, so accounts imported while the
//! shell runs complete too.

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::input;
use super::meta::{META_COMMANDS, argument_words};
use crate::Db;

/// The columns `topk()` ranks by (rule Q26).
const RANK_COLUMNS: [&str; 2] = ["lost", "lost_pct"];
/// The one label of a selector (rule Q14).
const LABEL: &str = "account";

pub(super) struct ReplHelper {
    db: Db,
}

impl ReplHelper {
    pub(super) fn new(db: Db) -> ReplHelper {
        ReplHelper { db }
    }

    /// The accounts starting with `prefix`, in order. The dictionary's list
    /// is sorted by bytes, so they are one run found by binary search.
    fn accounts_starting_with(&self, prefix: &str) -> Vec<String> {
        // Completion is a help, never an error: a damaged index offers
        // nothing here, and the query typed reports the damage.
        let accounts = self.db.accounts().unwrap_or_default();
        let start = accounts.partition_point(|a| a.as_str() < prefix);
        accounts[start..]
            .iter()
            .take_while(|a| a.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Candidates for what is typed before the cursor, and where the text
    /// they replace starts.
    pub(super) fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let before = &line[..pos];
        let after = &line[pos..];
        // Looking up names costs a read of the manifest; a stale list is
        // still better than none, so a failed refresh is not an error here.
        let _ = self.db.refresh();
        if before.trim_start().starts_with('.') && !before.contains('\n') {
            return self.complete_meta(before);
        }
        match Position::of(before) {
            Position::AccountString { start, exact } => {
                let prefix = unescape(&before[start..]);
                let close = exact && !after.starts_with('"');
                let names = self.accounts_starting_with(&prefix);
                let pairs = names
                    .into_iter()
                    .map(|name| Pair {
                        replacement: format!("{}{}", escape(&name), if close { "\"" } else { "" }),
                        display: name,
                    })
                    .collect();
                (start, pairs)
            }
            Position::AfterOperator { start, exact } => {
                let names = self.db.accounts().unwrap_or_default();
                let pairs = names
                    .into_iter()
                    .map(|name| Pair {
                        replacement: format!(
                            "\"{}{}",
                            escape(&name),
                            if exact { "\"" } else { "" }
                        ),
                        display: name,
                    })
                    .collect();
                (start, pairs)
            }
            Position::Label { start } => (start, words(&[LABEL], &before[start..])),
            Position::Expression { start, in_topk } => {
                let word = &before[start..];
                let mut pairs: Vec<Pair> = crate::functions()
                    .iter()
                    .filter(|f| f.name.starts_with(word))
                    .map(|f| Pair {
                        display: f.usage.to_string(),
                        // `not` is a word before a call, the rest are calls.
                        replacement: if f.prefix {
                            "not ".to_string()
                        } else {
                            format!("{}(", f.name)
                        },
                    })
                    .collect();
                pairs.extend(words(
                    &self
                        .db
                        .metrics()
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                    word,
                ));
                if in_topk {
                    pairs.extend(words(&RANK_COLUMNS, word));
                }
                (start, pairs)
            }
            Position::Nothing => (pos, Vec::new()),
        }
    }

    fn complete_meta(&self, before: &str) -> (usize, Vec<Pair>) {
        let indent = before.len() - before.trim_start().len();
        let typed = &before[indent..];
        match typed.split_once(char::is_whitespace) {
            None => {
                let pairs = META_COMMANDS
                    .iter()
                    .filter(|m| m.name.starts_with(typed))
                    .map(|m| Pair {
                        display: m.name.to_string(),
                        replacement: m.name.to_string(),
                    })
                    .collect();
                (indent, pairs)
            }
            Some((command, rest)) => {
                let word_start = before.len() - rest.len() + (rest.len() - rest.trim_start().len());
                let word = &before[word_start..];
                if word.contains(char::is_whitespace) {
                    return (before.len(), Vec::new());
                }
                if command == ".accounts" {
                    let pairs = self
                        .accounts_starting_with(word)
                        .into_iter()
                        .map(|name| Pair {
                            display: name.clone(),
                            replacement: name,
                        })
                        .collect();
                    return (word_start, pairs);
                }
                (word_start, words(argument_words(command), word))
            }
        }
    }
}

/// The `names` that start with `word`, as candidates.
fn words(names: &[&str], word: &str) -> Vec<Pair> {
    names
        .iter()
        .filter(|n| n.starts_with(word))
        .map(|n| Pair {
            display: n.to_string(),
            replacement: n.to_string(),
        })
        .collect()
}

/// Writes a name as the inside of a query string (rule Q3).
fn escape(name: &str) -> String {
    name.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Reads the inside of a query string as typed so far (rule Q3).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the cursor is in the middle of, as far as completion cares.
#[derive(Debug, PartialEq, Eq)]
enum Position {
    /// Inside the string of an `account` matcher, whose text starts at
    /// `start`. `exact` for `=` and `!=`, whose string is a whole name (so
    /// completion closes it), not a pattern.
    AccountString { start: usize, exact: bool },
    /// Right after a matcher's operator, before any quote.
    AfterOperator { start: usize, exact: bool },
    /// Where a label goes: after `{` or `,` inside braces.
    Label { start: usize },
    /// Where an expression (or an argument) goes; the word typed so far
    /// starts at `start`.
    Expression { start: usize, in_topk: bool },
    /// Inside a number, after a complete name, and so on.
    Nothing,
}

/// A token of query text, as far as [`Position::of`] needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open(char),
    Close,
    Comma,
    Operator(&'static str),
    Other,
}

impl Position {
    fn of(before: &str) -> Position {
        let mut tokens: Vec<Token> = Vec::new();
        // For each open bracket: which one, and the word before it (the
        // function of a call).
        let mut open: Vec<(char, Option<String>)> = Vec::new();
        let bytes = before.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'"' => {
                    let start = i + 1;
                    let mut j = start;
                    let mut closed = false;
                    while j < bytes.len() {
                        match bytes[j] {
                            b'\\' => j += 2,
                            b'"' => {
                                closed = true;
                                break;
                            }
                            _ => j += 1,
                        }
                    }
                    if !closed {
                        return Position::in_string(&tokens, &open, start);
                    }
                    tokens.push(Token::Other);
                    i = j + 1;
                    continue;
                }
                b'(' | b'{' => {
                    let function = match tokens.last() {
                        Some(Token::Word(w)) => Some(w.clone()),
                        _ => None,
                    };
                    open.push((c as char, function));
                    tokens.push(Token::Open(c as char));
                }
                b')' | b'}' => {
                    open.pop();
                    tokens.push(Token::Close);
                }
                b',' => tokens.push(Token::Comma),
                // Only what follows the last `;` is the query being typed.
                b';' => {
                    tokens.clear();
                    open.clear();
                }
                b'=' | b'!' => {
                    let op = match (c, bytes.get(i + 1)) {
                        (b'=', Some(b'~')) => "=~",
                        (b'=', _) => "=",
                        (b'!', Some(b'~')) => "!~",
                        (b'!', Some(b'=')) => "!=",
                        _ => {
                            tokens.push(Token::Other);
                            i += 1;
                            continue;
                        }
                    };
                    tokens.push(Token::Operator(op));
                    i += op.len();
                    continue;
                }
                c if c.is_ascii_alphanumeric() || c == b'_' => {
                    let start = i;
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
                    {
                        i += 1;
                    }
                    if i == bytes.len() {
                        // The word under the cursor.
                        return Position::at_word(&tokens, &open, start, &before[start..]);
                    }
                    tokens.push(Token::Word(before[start..i].to_string()));
                    continue;
                }
                c if c.is_ascii_whitespace() => {}
                _ => tokens.push(Token::Other),
            }
            i += 1;
        }
        match tokens.last() {
            Some(Token::Operator(op)) if matcher_label(&tokens) => Position::AfterOperator {
                start: before.len(),
                exact: matches!(*op, "=" | "!="),
            },
            _ => Position::at_word(&tokens, &open, before.len(), ""),
        }
    }

    /// The cursor is inside a string that starts at `start`.
    fn in_string(tokens: &[Token], open: &[(char, Option<String>)], start: usize) -> Position {
        let in_braces = matches!(open.last(), Some(('{', _)));
        match tokens.last() {
            Some(Token::Operator(op)) if in_braces && matcher_label(tokens) => {
                Position::AccountString {
                    start,
                    exact: matches!(*op, "=" | "!="),
                }
            }
            _ => Position::Nothing,
        }
    }

    /// The cursor ends `word` (maybe empty), which starts at `start`.
    fn at_word(
        tokens: &[Token],
        open: &[(char, Option<String>)],
        start: usize,
        word: &str,
    ) -> Position {
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            return Position::Nothing;
        }
        let innermost = open.last();
        let after_separator = matches!(tokens.last(), None | Some(Token::Open(_) | Token::Comma));
        match innermost {
            Some(('{', _)) if after_separator => Position::Label { start },
            Some(('{', _)) => Position::Nothing,
            _ if after_separator || matches!(tokens.last(), Some(Token::Word(w)) if w == "not") => {
                Position::Expression {
                    start,
                    in_topk: matches!(innermost, Some(('(', Some(f))) if f == "topk"),
                }
            }
            _ => Position::Nothing,
        }
    }
}

/// True when the tokens end with `account` and an operator: a matcher
/// waiting for its string.
fn matcher_label(tokens: &[Token]) -> bool {
    matches!(
        tokens,
        [.., Token::Word(label), Token::Operator(_)] if label == LABEL
    )
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Validator for ReplHelper {
    /// Enter inserts a line break, rather than ending the input, only in a
    /// buffer that already holds one (a multi-line query recalled from the
    /// history, or pasted) and whose query is unfinished. A query typed line
    /// by line is ended by each Enter and continued by the shell under the
    /// `  ...> ` prompt, which rustyline cannot draw inside one buffer.
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let text = ctx.input();
        Ok(if text.contains('\n') && input::needs_more(text) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> (tempfile::TempDir, ReplHelper) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut w = db.writer().unwrap();
        for account in ["adela_mae", "adam", "evada", "quo\"te"] {
            w.append(account, "followers", 0, 10).unwrap();
            w.append(account, "following", 0, 10).unwrap();
        }
        w.commit().unwrap();
        (dir, ReplHelper::new(db))
    }

    /// The replacements offered at the end of `line`, and the text the
    /// first would replace.
    fn complete(helper: &ReplHelper, line: &str) -> (String, Vec<String>) {
        let (start, pairs) = helper.candidates(line, line.len());
        (
            line[start..].to_string(),
            pairs.into_iter().map(|p| p.replacement).collect(),
        )
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn completes_metrics_and_functions() {
        let (_dir, h) = helper();
        assert_eq!(
            complete(&h, "foll"),
            ("foll".into(), strings(&["followers", "following"]))
        );
        assert_eq!(complete(&h, "dr"), ("dr".into(), strings(&["drop("])));
        assert_eq!(
            complete(&h, "drop(foll"),
            ("foll".into(), strings(&["followers", "following"]))
        );
        assert_eq!(
            complete(&h, "count(a); reco"),
            ("reco".into(), strings(&["recovered_within("]))
        );
        assert_eq!(
            complete(&h, "not reco"),
            ("reco".into(), strings(&["recovered_within("]))
        );
        assert_eq!(
            complete(&h, "topk(3, drop(followers, 5%, 1h), lo"),
            ("lo".into(), strings(&["lost", "lost_pct"]))
        );
        // Numbers and durations are not names; a complete name is done.
        assert_eq!(complete(&h, "drop(followers, 5").1, strings(&[]));
        assert_eq!(complete(&h, "followers ").1, strings(&[]));
    }

    #[test]
    fn completes_the_label_inside_braces() {
        let (_dir, h) = helper();
        assert_eq!(
            complete(&h, "followers{"),
            (String::new(), strings(&["account"]))
        );
        assert_eq!(
            complete(&h, "followers{acc"),
            ("acc".into(), strings(&["account"]))
        );
        assert_eq!(
            complete(&h, "followers{account=\"adam\", a"),
            ("a".into(), strings(&["account"]))
        );
    }

    #[test]
    fn completes_account_names_inside_matcher_strings() {
        let (_dir, h) = helper();
        assert_eq!(
            complete(&h, "followers{account=\"ad"),
            ("ad".into(), strings(&["adam\"", "adela_mae\""]))
        );
        // A pattern is left open for more of it.
        assert_eq!(
            complete(&h, "drop(followers{account=~\"ev"),
            ("ev".into(), strings(&["evada"]))
        );
        assert_eq!(
            complete(&h, "followers{account != \"q"),
            ("q".into(), strings(&["quo\\\"te\""]))
        );
        assert_eq!(
            complete(&h, "followers{account=\"quo\\\""),
            ("quo\\\"".into(), strings(&["quo\\\"te\""]))
        );
        assert_eq!(
            complete(&h, "followers{account=").1,
            strings(&["\"adam\"", "\"adela_mae\"", "\"evada\"", "\"quo\\\"te\""])
        );
        // Not inside a matcher's string: nothing to offer.
        assert_eq!(complete(&h, "followers{account=\"adam\"").1, strings(&[]));
    }

    #[test]
    fn does_not_close_a_string_that_is_already_closed() {
        let (_dir, h) = helper();
        let line = "followers{account=\"ev\"}";
        let (_, pairs) = h.candidates(line, line.len() - 2);
        assert_eq!(pairs[0].replacement, "evada");
    }

    #[test]
    fn completes_meta_commands_and_their_arguments() {
        let (_dir, h) = helper();
        assert_eq!(complete(&h, ".f"), (".f".into(), strings(&[".format"])));
        assert_eq!(complete(&h, ".").1.len(), META_COMMANDS.len());
        assert_eq!(complete(&h, ".format c"), ("c".into(), strings(&["csv"])));
        assert_eq!(
            complete(&h, ".timer "),
            (String::new(), strings(&["on", "off"]))
        );
        assert_eq!(
            complete(&h, ".accounts ad"),
            ("ad".into(), strings(&["adam", "adela_mae"]))
        );
    }
}
