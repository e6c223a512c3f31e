//! Writing SVG text: escaping, shortening names, and numbers for
//! coordinates. Everything that goes into the picture from outside (account
//! and metric names, the query) passes through [`escape`]
//! (docs/query-language.md, rule Q65).

use std::fmt::Write;

/// Names longer than this many characters are cut, with `…` (rule Q65).
pub(crate) const MAX_NAME_CHARS: usize = 40;

/// `text` as XML character data or an attribute value: the five markup
/// characters as entities, and the characters XML 1.0 does not allow
/// (control characters other than tab, line feed and carriage return, and
/// the non-characters U+FFFE and U+FFFF) as U+FFFD, so that no name can end
/// the document, inject markup or make it unreadable to a parser.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut to `max` characters, the last of them `…`, when longer.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A coordinate with one decimal, which is finer than any screen needs
/// and keeps the files small; non-finite values (which the scales never
/// produce) become 0 rather than invalid SVG.
pub(crate) fn num(v: f64) -> String {
    if v.is_finite() {
        let rounded = (v * 10.0).round() / 10.0;
        if rounded == rounded.trunc() {
            format!("{}", rounded as i64)
        } else {
            format!("{rounded:.1}")
        }
    } else {
        "0".to_string()
    }
}

/// An SVG document being written.
pub(crate) struct Svg {
    out: String,
}

impl Svg {
    /// Starts a document `width` by `height` user units, with a white
    /// background; `title` (already plain text) becomes its `<title>`.
    pub(crate) fn new(width: f64, height: f64, title: &str) -> Svg {
        let mut out = String::with_capacity(16 * 1024);
        let (w, h) = (num(width), num(height));
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <svg xmlns=\"http://www.w3.org/2000/svg\" class=\"tally-chart\" width=\"{w}\" \
             height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <title>{}</title>\n\
             <rect class=\"background\" x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n",
            escape(title)
        );
        Svg { out }
    }

    /// Elements to be placed into a document later, with no document
    /// around them.
    pub(crate) fn fragment() -> Svg {
        Svg { out: String::new() }
    }

    /// The markup of a [`Svg::fragment`].
    pub(crate) fn into_markup(self) -> String {
        self.out
    }

    /// Appends raw markup that the caller built from escaped parts.
    pub(crate) fn raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    /// A text element; `text` is escaped here.
    pub(crate) fn text(&mut self, x: f64, y: f64, attrs: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "<text x=\"{}\" y=\"{}\" {attrs}>{}</text>",
            num(x),
            num(y),
            escape(text)
        );
    }

    /// A line segment.
    pub(crate) fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, attrs: &str) {
        let _ = writeln!(
            self.out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {attrs}/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2)
        );
    }

    /// A rectangle, with an optional tooltip (`tip` is escaped here).
    pub(crate) fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str, tip: Option<&str>) {
        let _ = write!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {attrs}",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
        match tip {
            Some(tip) => {
                let _ = writeln!(self.out, "><title>{}</title></rect>", escape(tip));
            }
            None => self.out.push_str("/>\n"),
        }
    }

    /// Ends the document and returns its text.
    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_characters_xml_forbids() {
        // [Q65]
        assert_eq!(
            escape("a<b>&\"c\"'d'"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        assert_eq!(
            escape("x\u{0}y\u{1b}z\u{FFFF}"),
            "x\u{FFFD}y\u{FFFD}z\u{FFFD}"
        );
        assert_eq!(escape("ünï\tcode"), "ünï code");
    }

    #[test]
    fn shortens_by_characters() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "ab…");
        assert_eq!(shorten("üüüü", 3), "üü…");
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(3.25), "3.3");
        assert_eq!(num(-0.04), "0");
        assert_eq!(num(f64::NAN), "0");
    }
}
