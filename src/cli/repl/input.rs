//! Cutting what the user types into statements.
//!
//! The shell reads lines, but a query is not a line: one line may hold
//! several queries separated by `;`, and one query may span several lines
//! while its parentheses or braces are open (or a string literal is, since
//! rule Q3 lets strings hold line breaks). A line that starts with `.` when no
//! query is pending is a meta command and is taken whole, so that its
//! arguments (a regular expression, say) are never split or left waiting
//! for a bracket to close.
//!
//! The same [`Splitter`] serves the terminal, where it decides between the
//! `tally> ` and `  ...> ` prompts, and piped input, so both cut a script
//! the same way.

/// One unit of work for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Statement {
    /// A query, as typed (it may span lines), without the `;` that ended it.
    Query(String),
    /// A meta command line, such as `.format csv`, trimmed, without a
    /// trailing `;`.
    Meta(String),
}

/// Accumulates lines and hands back each statement once it is complete.
#[derive(Debug, Default)]
pub(super) struct Splitter {
    /// Text of a query that has begun but not ended.
    pending: String,
}

impl Splitter {
    /// Adds `text` (one or more lines, normally ending with a newline) and
    /// returns the statements it completed, in order.
    pub(super) fn push(&mut self, text: &str) -> Vec<Statement> {
        let mut done = Vec::new();
        for line in text.split_inclusive('\n') {
            if self.pending.trim().is_empty() && line.trim_start().starts_with('.') {
                self.pending.clear();
                done.push(Statement::Meta(meta_text(line)));
                continue;
            }
            self.pending.push_str(line);
            self.take_complete(&mut done);
        }
        done
    }

    /// True while a query has begun and waits for more lines.
    pub(super) fn is_pending(&self) -> bool {
        !self.pending.trim().is_empty()
    }

    /// Forgets the pending query (Ctrl-C at the continuation prompt).
    pub(super) fn clear(&mut self) {
        self.pending.clear();
    }

    /// Ends the input: the pending query, if any, is returned as it is so
    /// that the parser can say what is missing.
    pub(super) fn finish(&mut self) -> Option<Statement> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.trim().is_empty()).then(|| Statement::Query(rest.trim().to_string()))
    }

    /// Moves every complete query at the front of `pending` into `done`.
    fn take_complete(&mut self, done: &mut Vec<Statement>) {
        let mut scanner = Scanner::default();
        let mut start = 0;
        for (i, c) in self.pending.char_indices() {
            let ends_statement = match scanner.step(c) {
                Step::Semicolon => true,
                Step::Newline => !scanner.needs_more(),
                Step::Other => false,
            };
            if ends_statement {
                let query = self.pending[start..i].trim();
                if !query.is_empty() {
                    done.push(Statement::Query(query.to_string()));
                }
                start = i + c.len_utf8();
                scanner = Scanner::default();
            }
        }
        self.pending.drain(..start);
    }
}

/// True when `text` ends inside an open bracket or string, so that pressing
/// Enter should continue the query rather than run it.
pub(super) fn needs_more(text: &str) -> bool {
    let mut splitter = Splitter::default();
    splitter.push(text);
    let mut scanner = Scanner::default();
    for c in splitter.pending.chars() {
        scanner.step(c);
    }
    scanner.needs_more()
}

/// A meta command line without its surrounding whitespace or a trailing
/// `;`, which people used to SQL shells type out of habit.
fn meta_text(line: &str) -> String {
    line.trim().trim_end_matches(';').trim_end().to_string()
}

/// What one character meant to the [`Scanner`].
enum Step {
    /// A `;` outside a string: the end of a statement.
    Semicolon,
    /// A line break outside a string.
    Newline,
    /// Anything else.
    Other,
}

/// Follows brackets and string literals through query text, character by
/// character. It knows just enough of the lexical rules (rule Q3: `\"` and
/// `\\` inside strings) to tell a bracket or `;` that counts from one
/// inside a string.
#[derive(Debug, Default, Clone)]
struct Scanner {
    /// Parentheses and braces opened and not yet closed.
    open: usize,
    /// A closing bracket came with nothing open. More lines cannot fix
    /// that, so the query is handed to the parser to report.
    overclosed: bool,
    in_string: bool,
    /// The previous character was a backslash inside a string.
    escaped: bool,
}

impl Scanner {
    fn step(&mut self, c: char) -> Step {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.in_string = false;
            }
            return Step::Other;
        }
        match c {
            '"' => self.in_string = true,
            '(' | '{' => self.open += 1,
            ')' | '}' => match self.open.checked_sub(1) {
                Some(open) => self.open = open,
                None => self.overclosed = true,
            },
            ';' => return Step::Semicolon,
            '\n' => return Step::Newline,
            _ => {}
        }
        Step::Other
    }

    /// True when the text so far cannot be a whole query yet.
    fn needs_more(&self) -> bool {
        self.in_string || (self.open > 0 && !self.overclosed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &str) -> Statement {
        Statement::Query(s.to_string())
    }

    fn meta(s: &str) -> Statement {
        Statement::Meta(s.to_string())
    }

    #[test]
    fn one_query_per_line() {
        let mut s = Splitter::default();
        assert_eq!(s.push("followers\n"), vec![query("followers")]);
        assert_eq!(s.push("\n   \n"), vec![]);
        assert!(!s.is_pending());
    }

    #[test]
    fn semicolons_separate_queries_and_empty_ones_are_skipped() {
        let mut s = Splitter::default();
        assert_eq!(
            s.push("count(followers); latest(followers);;\n"),
            vec![query("count(followers)"), query("latest(followers)")]
        );
    }

    #[test]
    fn open_brackets_continue_over_lines() {
        let mut s = Splitter::default();
        assert_eq!(s.push("drop(\n"), vec![]);
        assert!(s.is_pending());
        assert_eq!(s.push("  followers{account=\"a\",\n"), vec![]);
        assert_eq!(
            s.push("}, 5%, 1h)\n"),
            vec![query("drop(\n  followers{account=\"a\",\n}, 5%, 1h)")]
        );
        assert!(!s.is_pending());
    }

    #[test]
    fn brackets_and_semicolons_inside_strings_do_not_count() {
        let mut s = Splitter::default();
        let text = r#"followers{account=~"(a;b\"\\"}"#;
        assert_eq!(s.push(&format!("{text}\n")), vec![query(text)]);
        // A string left open continues, as [Q3] lets strings hold line breaks.
        assert_eq!(s.push("followers{account=\"a\n"), vec![]);
        assert_eq!(s.push("b\"}\n"), vec![query("followers{account=\"a\nb\"}")]);
    }

    #[test]
    fn a_semicolon_ends_a_query_even_with_brackets_open() {
        // Otherwise one missing `)` would swallow the rest of a script.
        let mut s = Splitter::default();
        assert_eq!(
            s.push("drop(followers; count(followers)\n"),
            vec![query("drop(followers"), query("count(followers)")]
        );
    }

    #[test]
    fn an_extra_closing_bracket_ends_the_query_for_the_parser_to_report() {
        let mut s = Splitter::default();
        assert_eq!(s.push("followers)(\n"), vec![query("followers)(")]);
    }

    #[test]
    fn meta_commands_take_the_whole_line() {
        let mut s = Splitter::default();
        assert_eq!(
            s.push("  .accounts (a;b\n.format csv;\ncount(followers)\n"),
            vec![
                meta(".accounts (a;b"),
                meta(".format csv"),
                query("count(followers)")
            ]
        );
        // Inside a pending query a leading dot is just text.
        assert_eq!(s.push("drop(\n"), vec![]);
        assert_eq!(s.push(".x\n"), vec![]);
        assert!(s.is_pending());
    }

    #[test]
    fn finish_hands_back_the_unfinished_query() {
        let mut s = Splitter::default();
        s.push("drop(followers, 5%\n");
        assert_eq!(s.finish(), Some(query("drop(followers, 5%")));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn needs_more_looks_at_the_last_statement() {
        assert!(needs_more("drop("));
        assert!(needs_more("count(a); drop(\nfollowers"));
        assert!(needs_more("followers{account=\"x"));
        assert!(!needs_more("drop(followers, 5%, 1h)"));
        assert!(!needs_more("drop(followers;"));
        assert!(!needs_more(".accounts ("));
        assert!(!needs_more(""));
    }
}
