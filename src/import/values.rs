//! The values inside a row: counts ([IM8]) and times ([IM7]), parsed from
//! bytes without allocating, and the wording of their errors.

use crate::time::parse_time;

/// The largest count tally stores, 2^63 - 1.
pub(super) const MAX_COUNT: u64 = i64::MAX as u64;

/// Why a count was rejected. The caller words the sentence, since only it
/// knows the column or key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CountProblem {
    /// Not an optional sign followed by digits.
    NotWhole,
    /// Below zero.
    Negative,
    /// Above [`MAX_COUNT`].
    TooLarge,
}

impl CountProblem {
    /// The end of the sentence: "count X in column Y " + this.
    pub fn phrase(self) -> &'static str {
        match self {
            CountProblem::NotWhole => "is not a whole number",
            CountProblem::Negative => "is negative",
            CountProblem::TooLarge => "is larger than the largest count, 9223372036854775807",
        }
    }
}

/// Parses the text of a CSV count: an optional `+` or `-` and ASCII digits.
#[inline]
pub(super) fn parse_count(text: &[u8]) -> Result<u64, CountProblem> {
    // Almost every count is a few plain digits. Up to 18 digits cannot exceed
    // 2^63 - 1, so they need no overflow check; wrapping arithmetic keeps a
    // non-digit from overflowing before the flag rejects it.
    if !text.is_empty() && text.len() <= 18 {
        let mut value = 0u64;
        let mut all_digits = true;
        for &byte in text {
            let digit = byte.wrapping_sub(b'0');
            all_digits &= digit < 10;
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        }
        if all_digits {
            return Ok(value);
        }
    }
    parse_count_slowly(text)
}

#[cold]
fn parse_count_slowly(text: &[u8]) -> Result<u64, CountProblem> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CountProblem::NotWhole);
    }
    if negative {
        // "-0" is zero, which is a valid count.
        return if digits.iter().all(|&d| d == b'0') {
            Ok(0)
        } else {
            Err(CountProblem::Negative)
        };
    }
    let mut value: u64 = 0;
    for &digit in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .ok_or(CountProblem::TooLarge)?;
    }
    if value > MAX_COUNT {
        Err(CountProblem::TooLarge)
    } else {
        Ok(value)
    }
}

/// Shows the text of a cell inside an error message: quoted like a Rust
/// string (so that control characters and invalid UTF-8 are visible), and
/// cut if long so that one bad cell cannot flood the terminal.
pub(super) fn quote_cell(text: &[u8]) -> String {
    const SHOWN_CHARS: usize = 40;
    let text = String::from_utf8_lossy(text);
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Compares two short byte strings. The names compared per row are a few
/// dozen bytes, for which a call to `memcmp` costs more than comparing
/// eight bytes at a time inline.
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    /// The eight bytes at `at`, read as one word.
    #[inline]
    fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
        let word: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_ne_bytes(word))
    }
    let length = a.len();
    if length != b.len() {
        return false;
    }
    if length < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut at = 0;
    while at + 8 < length {
        if word_at(a, at) != word_at(b, at) {
            return false;
        }
        at += 8;
    }
    // The last eight bytes, overlapping the word before them when the
    // length is not a multiple of eight. (Copying a shorter tail into a
    // word instead makes the read wait for the copy's byte writes.)
    word_at(a, length - 8) == word_at(b, length - 8)
}

/// Parses times, remembering the last one. Snapshot files repeat the same
/// time on every row, so nearly every row costs one comparison of bytes.
#[derive(Debug, Default)]
pub(super) struct TimeCache {
    last_text: Vec<u8>,
    last_ms: i64,
    filled: bool,
}

impl TimeCache {
    /// Parses a time as [`parse_time`] does; the error is a reason.
    #[inline]
    pub fn parse(&mut self, text: &[u8]) -> Result<i64, String> {
        if self.filled && same_bytes(&self.last_text, text) {
            return Ok(self.last_ms);
        }
        self.parse_new(text)
    }

    #[cold]
    fn parse_new(&mut self, text: &[u8]) -> Result<i64, String> {
        let Ok(text_str) = std::str::from_utf8(text) else {
            return Err(format!("time {} is not valid UTF-8", quote_cell(text)));
        };
        let ms = parse_time(text_str)?;
        self.last_text.clear();
        self.last_text.extend_from_slice(text);
        self.last_ms = ms;
        self.filled = true;
        Ok(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_optionally_signed_digits_up_to_2_pow_63_minus_1() {
        assert_eq!(parse_count(b"0"), Ok(0));
        assert_eq!(parse_count(b"10234"), Ok(10234));
        assert_eq!(parse_count(b"007"), Ok(7));
        assert_eq!(parse_count(b"+5"), Ok(5));
        assert_eq!(parse_count(b"-0"), Ok(0));
        assert_eq!(
            parse_count(b"999999999999999999"),
            Ok(999_999_999_999_999_999)
        );
        assert_eq!(parse_count(b"9223372036854775807"), Ok(MAX_COUNT));
        assert_eq!(parse_count(b"0009223372036854775807"), Ok(MAX_COUNT));
        assert_eq!(
            parse_count(b"9223372036854775808"),
            Err(CountProblem::TooLarge)
        );
        assert_eq!(
            parse_count(b"99999999999999999999999"),
            Err(CountProblem::TooLarge)
        );
        assert_eq!(parse_count(b"-5"), Err(CountProblem::Negative));
        assert_eq!(
            parse_count(b"-99999999999999999999999"),
            Err(CountProblem::Negative)
        );
        for bad in [
            &b"12a"[..],
            b"1.5",
            b"1e3",
            b" 1",
            b"1 ",
            b"-",
            b"+",
            b"",
            b"0x10",
            b"\xff",
        ] {
            assert_eq!(parse_count(bad), Err(CountProblem::NotWhole), "{bad:?}");
        }
    }

    #[test]
    fn byte_comparisons_compare_any_length() {
        let text = b"2019-02-13T10:00:00Z and some more";
        for length in 0..text.len() {
            let a = &text[..length];
            assert!(same_bytes(a, &text.to_vec()[..length]));
            assert!(!same_bytes(a, &text[..length + 1]));
            for at in 0..length {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!same_bytes(a, &b), "{length} {at}");
            }
        }
    }

    #[test]
    fn cells_are_quoted_and_cut() {
        assert_eq!(quote_cell(b"12a"), "\"12a\"");
        assert_eq!(quote_cell(b"a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(quote_cell(b"\xff1"), "\"\u{fffd}1\"");
        assert_eq!(
            quote_cell("é".repeat(50).as_bytes()),
            format!("{:?}…", "é".repeat(40))
        );
    }

    #[test]
    fn the_time_cache_parses_each_new_text_once() {
        let mut cache = TimeCache::default();
        assert_eq!(cache.parse(b"2019-02-13T10:00:00Z"), Ok(1_550_052_000_000));
        assert_eq!(cache.parse(b"2019-02-13T10:00:00Z"), Ok(1_550_052_000_000));
        assert_eq!(cache.parse(b"1550052001"), Ok(1_550_052_001_000));
        assert!(cache.parse(b"yesterday").is_err());
        // A failure does not disturb the remembered time.
        assert_eq!(cache.parse(b"1550052001"), Ok(1_550_052_001_000));
        assert_eq!(
            cache.parse(b"\xff"),
            Err("time \"\u{fffd}\" is not valid UTF-8".to_string())
        );
    }
}
