//! The JSON lines snapshot format ([IM6]): one JSON object per line, with
//! the keys `time`, `account` and one key per metric.
//!
//! serde_json does the parsing, into a light value that borrows its strings
//! from the line and remembers only the kind of nested values, so that the
//! checks can name exactly what is wrong with each value.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::batch::{MetricSlots, NOT_CAPTURED, RowBatch};
use super::reader::{ReaderState, Stop};
use super::source::{Opened, READ_BUFFER};
use super::values::{CountProblem, MAX_COUNT, TimeCache};
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

/// The entries of the top-level object, in line order.
struct Entries<'a>(Vec<(Cow<'a, str>, Value<'a>)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(Key(key)) = map.next_key()? {
                    let value: Value<'de> = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(EntriesVisitor)
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

/// Parses the whole line as one object.
fn parse_object(line: &str) -> Result<Entries<'_>, String> {
    if !line.trim_start().starts_with('{') {
        return Err("the line is not a JSON object".to_string());
    }
    let mut deserializer = serde_json::Deserializer::from_str(line);
    let entries = Entries::deserialize(&mut deserializer).map_err(|e| syntax_reason(&e))?;
    deserializer.end().map_err(|e| syntax_reason(&e))?;
    Ok(entries)
}

/// The first key that appears twice, if any.
fn duplicate_key<'e>(entries: &'e [(Cow<'_, str>, Value<'_>)]) -> Option<&'e str> {
    // Lines have a handful of keys, for which comparing each with those
    // before it beats hashing.
    const LINEAR_LIMIT: usize = 16;
    if entries.len() <= LINEAR_LIMIT {
        entries.iter().enumerate().find_map(|(i, (key, _))| {
            entries
                .get(..i)
                .unwrap_or_default()
                .iter()
                .any(|(earlier, _)| earlier == key)
                .then_some(key.as_ref())
        })
    } else {
        let mut seen = HashSet::with_capacity(entries.len());
        entries
            .iter()
            .find_map(|(key, _)| (!seen.insert(key.as_ref())).then_some(key.as_ref()))
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

/// Parses one non-blank line into the batch, as a good or a bad row.
fn parse_line(
    line: &[u8],
    line_number: u64,
    at: Option<i64>,
    times: &mut TimeCache,
    metrics: &mut MetricSlots,
    batch: &mut RowBatch,
) {
    let result = (|| {
        let text =
            std::str::from_utf8(line).map_err(|_| "the line is not valid UTF-8".to_string())?;
        let Entries(entries) = parse_object(text)?;
        if let Some(key) = duplicate_key(&entries) {
            return Err(format!("key {key:?} appears twice"));
        }
        let value_of = |wanted: &str| entries.iter().find(|(k, _)| k == wanted).map(|(_, v)| v);
        let time_ms = line_time(value_of("time"), at, times)?;
        let account = match value_of("account") {
            None | Some(Value::Null) => return Err("the account is missing".to_string()),
            Some(Value::String(name)) if name.is_empty() => {
                return Err("the account is empty".to_string());
            }
            Some(Value::String(name)) => name,
            Some(other) => {
                return Err(format!("the account is {}, not a string", other.kind()));
            }
        };
        for (key, value) in &entries {
            if key == "time" || key == "account" {
                continue;
            }
            let value = count(key, value)?;
            let slot = metrics.slot(key, &mut batch.new_metrics);
            batch.push_cell(slot, value);
        }
        batch.accept(line_number, time_ms, account.as_bytes());
        Ok(())
    })();
    if let Err(reason) = result {
        batch.reject(line_number, reason);
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
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
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
        if line.iter().all(|b| b" \t\r\n".contains(b)) {
            continue;
        }
        parse_line(
            &line,
            line_number,
            state.at,
            &mut state.times,
            &mut state.metrics,
            &mut state.batch,
        );
        state.row_done()?;
    }
    state.end_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_kind_and_borrow_plain_strings() {
        let Ok(Entries(entries)) = parse_object(
            r#"{"a": null, "b": true, "c": 5, "d": -5, "e": 1.5, "f": "x", "g\n": "y\n", "h": [1, {}], "i": {"j": 1}}"#,
        ) else {
            panic!("the line is valid");
        };
        let values: Vec<_> = entries.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(
            values,
            vec![
                Value::Null,
                Value::Bool,
                Value::Unsigned(5),
                Value::Negative(-5),
                Value::Float(1.5),
                Value::String(Cow::Borrowed("x")),
                Value::String(Cow::Owned("y\n".to_string())),
                Value::Array,
                Value::Object,
            ]
        );
        assert!(matches!(entries[5].1, Value::String(Cow::Borrowed(_))));
        assert_eq!(entries[6].0, "g\n");
    }

    #[test]
    fn syntax_errors_name_the_column_once() {
        assert_eq!(
            parse_object(r#"{"a": 1,}"#).err(),
            Some("invalid JSON at column 9: trailing comma".to_string())
        );
        assert_eq!(
            parse_object(r#"{"a": 1} x"#).err(),
            Some("invalid JSON at column 10: trailing characters".to_string())
        );
        assert_eq!(
            parse_object("[1]").err(),
            Some("the line is not a JSON object".to_string())
        );
    }

    #[test]
    fn duplicate_keys_are_found_in_short_and_long_lines() {
        let short: Vec<_> = ["a", "b", "a"]
            .iter()
            .map(|k| (Cow::Borrowed(*k), Value::Null))
            .collect();
        assert_eq!(duplicate_key(&short), Some("a"));
        let mut long: Vec<_> = (0..40)
            .map(|i| (Cow::Owned(format!("k{i}")), Value::Null))
            .collect();
        assert_eq!(duplicate_key(&long), None);
        long.push((Cow::Borrowed("k7"), Value::Null));
        assert_eq!(duplicate_key(&long), Some("k7"));
    }
}
