//! The one error type of the crate.
//!
//! Every fallible public function returns [`Result<T>`]. Each variant carries
//! enough context (a path, a line, a position in a query) to print as one
//! sentence that tells the user where the problem is.

use std::fmt;
use std::path::PathBuf;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in tally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error on a named file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A file of the database is damaged: a checksum, a bound or a rule of
    /// docs/format.md does not hold.
    #[error("{}: damaged: {what}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong, as a phrase.
        what: String,
    },

    /// Another process holds the write lock.
    #[error("database is locked (held by {})", match pid { Some(p) => format!("pid {p}"), None => "another process".to_string() })]
    Locked {
        /// The process id written in the lock file, when it could be read.
        pid: Option<u32>,
    },

    /// A row of an imported file was rejected.
    #[error("{file}:{line}: {reason}")]
    Import {
        /// The file as the user named it (`-` for standard input).
        file: String,
        /// The line, counted from 1 in the decompressed file.
        line: u64,
        /// Why the row was rejected.
        reason: String,
    },

    /// A query failed to parse or to type-check.
    #[error("{0}")]
    Query(QueryError),

    /// An argument given through the library API or the command line is not
    /// acceptable (a metric name with spaces, a negative count, …).
    #[error("{0}")]
    Invalid(String),

    /// A running query was cancelled.
    #[error("query cancelled")]
    Cancelled,

    /// A writer cannot go on with its batch: a segment spilled in the
    /// background could not be written and the batch was discarded (the
    /// next commit starts afresh), or a commit failed after it became
    /// visible (open a new writer). Never a problem with the point at hand.
    #[error("{0}")]
    Writer(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Reports damage in a named file.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, what: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            what: what.into(),
        }
    }

    /// True for errors in the query text (syntax or type), which the CLI exits
    /// with code 2 for.
    pub fn is_query_error(&self) -> bool {
        matches!(self, Error::Query(_))
    }
}

/// A syntax or type error in a query, with the position it was found at.
///
/// `Display` prints one line; [`QueryError::render`] draws the query with a
/// caret under the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The query text.
    pub query: String,
    /// Byte offsets into `query` of the offending part (`start == end` for a
    /// point, such as an unexpected end of input).
    pub span: std::ops::Range<usize>,
    /// What went wrong, as a sentence without a final period.
    pub message: String,
    /// An optional suggestion.
    pub hint: Option<String>,
}

impl QueryError {
    /// The query on one line, a caret line under the span, the message and
    /// the hint, ready to print.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("error: ");
        out.push_str(&self.message);
        out.push('\n');
        // The query may span several lines (the REPL accepts multi-line
        // input); show the line that holds the start of the span.
        let start = self.span.start.min(self.query.len());
        let line_start = self.query[..floor_char_boundary(&self.query, start)]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line_end = self.query[line_start..]
            .find('\n')
            .map_or(self.query.len(), |i| line_start + i);
        let line = &self.query[line_start..line_end];
        let col = self.query[line_start..floor_char_boundary(&self.query, start)]
            .chars()
            .count();
        let end = self.span.end.clamp(start, line_end);
        let width = self.query
            [floor_char_boundary(&self.query, start)..floor_char_boundary(&self.query, end)]
            .chars()
            .count()
            .max(1);
        // A long line (a hostile query, or one of thousands of accounts) is
        // cut to a window around the caret (docs/query-language.md, rule Q16).
        let line_chars = line.chars().count();
        let (shown, col, width) = if line_chars <= SHOWN_LINE_CHARS {
            (line.to_string(), col, width)
        } else {
            let first = col.saturating_sub(SHOWN_BEFORE_CARET);
            let last = (first + SHOWN_LINE_CHARS).min(line_chars);
            let mut shown = String::new();
            if first > 0 {
                shown.push('…');
            }
            shown.extend(line.chars().skip(first).take(last - first));
            if last < line_chars {
                shown.push('…');
            }
            let width = width.min(last.saturating_sub(col).max(1));
            (shown, col - first + usize::from(first > 0), width)
        };
        out.push_str("  ");
        out.push_str(&shown);
        out.push('\n');
        out.push_str("  ");
        out.push_str(&" ".repeat(col));
        out.push_str(&"^".repeat(width));
        out.push('\n');
        if let Some(hint) = &self.hint {
            out.push_str("hint: ");
            out.push_str(hint);
            out.push('\n');
        }
        out
    }
}

/// The longest line of a query that [`QueryError::render`] draws whole, in
/// characters; a longer one is cut around the caret.
const SHOWN_LINE_CHARS: usize = 160;

/// How many characters before the caret a cut line keeps.
const SHOWN_BEFORE_CARET: usize = 60;

/// The largest char boundary at or below `i` (std's is unstable).
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.span.start + 1)
    }
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Error {
        Error::Query(e)
    }
}
