//! The JSON lines snapshot format ([IM6]): one JSON object per line, with
//! the keys `time`, `account` and one key per metric.
//!
//! serde_json does the parsing, into a light value that borrows its strings
//! from the line and remembers only the kind of nested values, so that the
//! checks can name exactly what is wrong with each value.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::batch::{MetricSlots, NOT_CAPTURED, RowBatch};
use super::reader::{ReaderState, Stop};
use super::source::{Opened, READ_BUFFER};
use super::values::{CountProblem, MAX_COUNT, TimeCache};
use super::{MAX_COLUMNS, MAX_LINE_BYTES};
use crate::Error;
use crate::time::seconds_to_ms;

/// A JSON value, as much of it as the checks need.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Null,
    Bool,
    /// A non-negative integer.
    Unsigned(u64),
    /// A negative integer.
    Negative(i64),
    /// A number with a fraction or an exponent, or an integer too large for
    /// 64 bits.
    Float(f64),
    String(Cow<'a, str>),
    Array,
    Object,
}

impl Value<'_> {
    /// The kind of value with its article, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool => "a boolean",
            Value::Unsigned(_) | Value::Negative(_) | Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Array => "an array",
            Value::Object => "an object",
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool)
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
        Ok(Value::Unsigned(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(match u64::try_from(v) {
            Ok(v) => Value::Unsigned(v),
            Err(_) => Value::Negative(v),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
        Ok(Value::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Object)
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// A key of the top-level object, borrowed from the line when it has no
/// escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Makes a reason of a serde_json error: its message without the "at line 1
/// column N" it ends with, and the column put first.
fn syntax_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    if error.classify() == serde_json::error::Category::Eof {
        format!("invalid JSON at the end of the line: {message}")
    } else {
        format!("invalid JSON at column {}: {message}", error.column())
    }
}

/// The time of a line, or the reason it has none.
fn line_time(
    value: Option<&Value<'_>>,
    at: Option<i64>,
    times: &mut TimeCache,
) -> Result<i64, String> {
    let value = value.filter(|v| **v != Value::Null);
    match (value, at) {
        (None, Some(at)) => Ok(at),
        (Some(_), Some(_)) => Err("the line has a time, but --at was given".to_string()),
        (None, None) => Err("the time is missing".to_string()),
        (Some(Value::String(text)), None) => times.parse(text.as_bytes()),
        (Some(Value::Unsigned(seconds)), None) => i64::try_from(*seconds)
            .map_err(|_| format!("{seconds} Unix seconds is outside the years 0000 to 9999"))
            .and_then(seconds_to_ms),
        (Some(Value::Negative(seconds)), None) => seconds_to_ms(*seconds),
        (Some(Value::Float(seconds)), None) => Err(format!(
            "time {seconds:?} is not a whole number of Unix seconds"
        )),
        (Some(other), None) => Err(format!(
            "the time is {}, not a string or an integer",
            other.kind()
        )),
    }
}

/// The count of a metric key, `NOT_CAPTURED` for null, or the reason it is
/// rejected.
fn count(key: &str, value: &Value<'_>) -> Result<u64, String> {
    let problem = |shown: String, problem: CountProblem| {
        Err(format!(
            "count {shown} for key {key:?} {}",
            problem.phrase()
        ))
    };
    match value {
        Value::Null => Ok(NOT_CAPTURED),
        Value::Unsigned(n) if *n <= MAX_COUNT => Ok(*n),
        Value::Unsigned(n) => problem(n.to_string(), CountProblem::TooLarge),
        Value::Negative(n) => problem(n.to_string(), CountProblem::Negative),
        // A float that is whole came from an integer too large for 64 bits,
        // or was written with an exponent or a fraction of zero.
        Value::Float(f) if f.fract() == 0.0 && *f < 0.0 => {
            problem(format!("{f:?}"), CountProblem::Negative)
        }
        Value::Float(f) if f.fract() == 0.0 && *f > MAX_COUNT as f64 => {
            problem(format!("{f:?}"), CountProblem::TooLarge)
        }
        Value::Float(f) if f.fract() == 0.0 => Err(format!(
            "count {f:?} for key {key:?} is not written as an integer"
        )),
        Value::Float(f) => problem(format!("{f:?}"), CountProblem::NotWhole),
        Value::String(text) => Err(format!(
            "count {:?} for key {key:?} is a string, not a number",
            text.as_ref()
        )),
        other => Err(format!(
            "count for key {key:?} is {}, not a number",
            other.kind()
        )),
    }
}

/// The account of a line, copied into `name`, or the reason it is bad.
fn account(value: &Value<'_>, name: &mut Vec<u8>) -> Result<(), String> {
    match value {
        Value::Null => Err("the account is missing".to_string()),
        Value::String(text) if text.is_empty() => Err("the account is empty".to_string()),
        Value::String(text) => {
            name.extend_from_slice(text.as_bytes());
            Ok(())
        }
        other => Err(format!("the account is {}, not a string", other.kind())),
    }
}

/// What one line says, gathered while serde_json reads it. One is kept for
/// a whole file so that its buffers are reused from line to line.
#[derive(Debug, Default)]
struct LineScratch {
    /// Counts the lines parsed, to tell this line from the ones before.
    serial: u64,
    /// When the line has a `time` key: its time, or why it is bad.
    time: Option<Result<i64, String>>,
    /// When the line has an `account` key: whether it is good (and then in
    /// `account_name`), or why it is bad.
    account: Option<Result<(), String>>,
    account_name: Vec<u8>,
    /// The first key that appears a second time.
    duplicate: Option<String>,
    /// Why the first bad count is bad.
    count_problem: Option<String>,
    /// For each metric slot, the serial of the last line that had it.
    slot_seen_on: Vec<u64>,
    /// The keys of the line read so far.
    keys: usize,
}

impl LineScratch {
    fn start_line(&mut self) {
        self.serial += 1;
        self.time = None;
        self.account = None;
        self.account_name.clear();
        self.duplicate = None;
        self.count_problem = None;
        self.keys = 0;
    }

    /// True once the line has more keys than [`MAX_COLUMNS`] ([IM16]).
    fn too_many_keys(&self) -> bool {
        self.keys > MAX_COLUMNS
    }

    fn note_duplicate(&mut self, key: &str) {
        if self.duplicate.is_none() {
            self.duplicate = Some(key.to_string());
        }
    }

    /// Notes that the line has the metric of `slot`; false if it had it
    /// already.
    fn first_time_in_line(&mut self, slot: u32) -> bool {
        let slot = slot as usize;
        if self.slot_seen_on.len() <= slot {
            self.slot_seen_on.resize(slot + 1, 0);
        }
        match self.slot_seen_on.get_mut(slot) {
            Some(seen) if *seen == self.serial => false,
            Some(seen) => {
                *seen = self.serial;
                true
            }
            None => true,
        }
    }
}

/// Reads the top-level object of a line key by key, checking each value as
/// it comes and putting the counts straight into the batch. Problems are
/// noted in the scratch and judged once the whole line is known to be JSON,
/// so that a syntax error is reported before them and the order in which
/// they are reported does not depend on the order of the keys: a repeated
/// key, then the time, then the account, then the first bad count.
struct LineVisitor<'s> {
    scratch: &'s mut LineScratch,
    at: Option<i64>,
    times: &'s mut TimeCache,
    metrics: &'s mut MetricSlots,
    batch: &'s mut RowBatch,
}

impl<'de> Visitor<'de> for LineVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let scratch = self.scratch;
        while let Some(Key(key)) = map.next_key()? {
            scratch.keys += 1;
            if scratch.too_many_keys() {
                // The line is bad; its other keys are read only to find the
                // end of the JSON, and define no metric slot ([IM16]).
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value: Value<'de> = map.next_value()?;
            match key.as_ref() {
                "time" if scratch.time.is_some() => scratch.note_duplicate("time"),
                "time" => scratch.time = Some(line_time(Some(&value), self.at, self.times)),
                "account" if scratch.account.is_some() => scratch.note_duplicate("account"),
                "account" => scratch.account = Some(account(&value, &mut scratch.account_name)),
                name => {
                    let slot = self.metrics.slot(name, &mut self.batch.new_metrics);
                    if !scratch.first_time_in_line(slot) {
                        scratch.note_duplicate(name);
                        continue;
                    }
                    match count(name, &value) {
                        Ok(value) => self.batch.push_cell(slot, value),
                        Err(reason) => {
                            if scratch.count_problem.is_none() {
                                scratch.count_problem = Some(reason);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Parses one non-blank line into the batch, as a good or a bad row.
fn parse_line(line: &[u8], line_number: u64, state: &mut ReaderState, scratch: &mut LineScratch) {
    let at = state.at;
    let result = (|| {
        let text =
            std::str::from_utf8(line).map_err(|_| "the line is not valid UTF-8".to_string())?;
        if !text.trim_start().starts_with('{') {
            return Err("the line is not a JSON object".to_string());
        }
        scratch.start_line();
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let visitor = LineVisitor {
            scratch: &mut *scratch,
            at,
            times: &mut state.times,
            metrics: &mut state.metrics,
            batch: &mut state.batch,
        };
        deserializer
            .deserialize_map(visitor)
            .map_err(|e| syntax_reason(&e))?;
        deserializer.end().map_err(|e| syntax_reason(&e))?;
        if scratch.too_many_keys() {
            return Err(format!("the line has more than {MAX_COLUMNS} keys"));
        }
        if let Some(key) = scratch.duplicate.take() {
            return Err(format!("key {key:?} appears twice"));
        }
        let time_ms = match scratch.time.take() {
            Some(time) => time?,
            None => line_time(None, at, &mut state.times)?,
        };
        scratch
            .account
            .take()
            .unwrap_or_else(|| Err("the account is missing".to_string()))?;
        if let Some(reason) = scratch.count_problem.take() {
            return Err(reason);
        }
        state
            .batch
            .accept(line_number, time_ms, &scratch.account_name);
        Ok(())
    })();
    if let Err(reason) = result {
        state.batch.reject(line_number, reason);
    }
}

/// Reads one JSON lines file into batches. Blank lines are skipped.
pub(super) fn read_file(
    state: &mut ReaderState,
    file: usize,
    display: &str,
    mut opened: Opened,
) -> Result<(), Stop> {
    let text = std::mem::replace(&mut opened.text, Box::new(std::io::empty()));
    let mut reader = BufReader::with_capacity(READ_BUFFER, text);
    state.start_file(file, Vec::new(), None)?;
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let mut scratch = LineScratch::default();
    // One byte more than the longest line, for its `\n`: a longer line
    // is found without reading the rest of it ([IM16]).
    let most = u64::try_from(MAX_LINE_BYTES + 1).unwrap_or(u64::MAX);
    loop {
        line.clear();
        match reader.by_ref().take(most).read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => line_number += 1,
            Err(e) => {
                return Err(Stop::Failed(opened.read_error(
                    display,
                    line_number + 1,
                    &e,
                    &state.raw,
                )));
            }
        }
        if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            return Err(Stop::Failed(Error::Import {
                file: display.to_string(),
                line: line_number,
                reason: super::line_too_long(),
            }));
        }
        if line.iter().all(|b| b" \t\r\n".contains(b)) {
            continue;
        }
        parse_line(&line, line_number, state, &mut scratch);
        state.row_done()?;
    }
    state.end_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_kind_and_borrow_plain_strings() {
        let cases: &[(&str, Value<'_>)] = &[
            ("null", Value::Null),
            ("true", Value::Bool),
            ("5", Value::Unsigned(5)),
            ("-5", Value::Negative(-5)),
            // serde_json reads -0 as a float.
            ("-0", Value::Float(-0.0)),
            ("1.5", Value::Float(1.5)),
            ("18446744073709551616", Value::Float(18446744073709551616.0)),
            ("\"x\"", Value::String(Cow::Borrowed("x"))),
            ("\"y\\n\"", Value::String(Cow::Owned("y\n".to_string()))),
            ("[1, {}]", Value::Array),
            ("{\"j\": [1]}", Value::Object),
        ];
        for (text, expected) in cases {
            let value: Value<'_> = serde_json::from_str(text).expect("valid JSON");
            assert_eq!(&value, expected, "{text}");
        }
        let borrowed: Value<'_> = serde_json::from_str("\"x\"").expect("valid JSON");
        assert!(matches!(borrowed, Value::String(Cow::Borrowed(_))));
    }

    #[test]
    fn syntax_errors_name_the_column_once() {
        let reason = |text: &str| {
            let error = serde_json::from_str::<Value<'_>>(text).expect_err("invalid JSON");
            syntax_reason(&error)
        };
        assert_eq!(
            reason(r#"{"a": 1,}"#),
            "invalid JSON at column 9: trailing comma"
        );
        assert_eq!(
            reason(r#"{"a": 1} x"#),
            "invalid JSON at column 10: trailing characters"
        );
        assert_eq!(
            reason(r#"{"a": 1"#),
            "invalid JSON at the end of the line: EOF while parsing an object"
        );
    }

    #[test]
    fn keys_are_told_apart_line_by_line() {
        let mut scratch = LineScratch::default();
        scratch.start_line();
        assert!(scratch.first_time_in_line(3));
        assert!(scratch.first_time_in_line(0));
        assert!(!scratch.first_time_in_line(3));
        scratch.start_line();
        assert!(scratch.first_time_in_line(3));
    }
}
