//! Times as tally reads and prints them.
//!
//! Internally a time is an `i64` of milliseconds since the Unix epoch. Users
//! write times as RFC 3339 (`2019-02-13T10:00:00Z`, `2019-02-13T15:30:00+05:30`,
//! with an optional fraction) or as an integer of Unix seconds; tally prints
//! them as RFC 3339 in UTC, with milliseconds only when they are not zero.

/// The earliest time tally stores: `0000-01-01T00:00:00Z`.
pub const MIN_TIME_MS: i64 = -62_167_219_200_000;
/// The latest time tally stores: `9999-12-30T22:00:00Z`, the last
/// millisecond that jiff can represent.
pub const MAX_TIME_MS: i64 = 253_402_207_200_000;

/// Parses a time as the snapshot `time` field and the `--from`/`--to` flags
/// accept it. The error is a phrase suitable after "file:line: ".
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the time is empty".to_string());
    }
    let looks_numeric = text
        .strip_prefix('-')
        .unwrap_or(text)
        .bytes()
        .all(|b| b.is_ascii_digit());
    if looks_numeric {
        let seconds: i64 = text
            .parse()
            .map_err(|_| format!("time {text:?} is not a valid number of Unix seconds"))?;
        return seconds_to_ms(seconds);
    }
    let ts: jiff::Timestamp = text.parse().map_err(|_| {
        format!("time {text:?} is neither RFC 3339 (like 2019-02-13T10:00:00Z) nor Unix seconds")
    })?;
    let ms = ts.as_millisecond();
    check_range(ms).map_err(|_| format!("time {text:?} is outside the years 0000 to 9999"))
}

/// Converts Unix seconds to milliseconds, checking the supported range.
pub fn seconds_to_ms(seconds: i64) -> Result<i64, String> {
    seconds
        .checked_mul(1000)
        .ok_or(())
        .and_then(check_range)
        .map_err(|_| format!("{seconds} Unix seconds is outside the years 0000 to 9999"))
}

/// Checks that a time in milliseconds lies in the supported range.
pub fn check_range(ms: i64) -> Result<i64, ()> {
    if (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(())
    }
}

/// Milliseconds of a duration written as whole numbers with units, one or
/// several (`90s`, `1m30s`, `2h`): `ms`, `s`, `m`, `h`, `d` (24 h), `w`
/// (7 d) and `y` (365 d), the units of Prometheus's durations. `None` for
/// anything else, or a sum past `u64::MAX`. The command line's duration
/// flags and the server's parameters both read durations through it.
#[cfg(feature = "server")]
pub(crate) fn duration_ms(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number.parse().ok()?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(factor)?)?;
        rest = tail;
    }
    Some(total)
}

/// Formats milliseconds as RFC 3339 in UTC: `2019-02-13T10:00:00Z`, or
/// `2019-02-13T10:00:00.250Z` when the milliseconds are not zero.
pub fn format_time(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_time(&mut out, ms);
    out
}

/// Appends the RFC 3339 form of `ms` to `out` (see [`format_time`]).
pub fn write_time(out: &mut String, ms: i64) {
    use std::fmt::Write;
    match jiff::Timestamp::from_millisecond(ms) {
        // Writing to a String cannot fail.
        Ok(ts) if ms.rem_euclid(1000) == 0 => {
            let _ = write!(out, "{ts:.0}");
        }
        Ok(ts) => {
            let _ = write!(out, "{ts:.3}");
        }
        // Out of jiff's range: tally never stores such a time, but a derived
        // value might be; print the raw number rather than fail.
        Err(_) => {
            let _ = write!(out, "{ms}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_offsets_fractions_and_seconds() {
        assert_eq!(parse_time("2019-02-13T10:00:00Z"), Ok(1_550_052_000_000));
        assert_eq!(
            parse_time("2019-02-13T15:30:00+05:30"),
            Ok(1_550_052_000_000)
        );
        assert_eq!(parse_time("2019-02-13T10:00:00.25Z"), Ok(1_550_052_000_250));
        assert_eq!(parse_time("1550052000"), Ok(1_550_052_000_000));
        assert_eq!(parse_time("-1"), Ok(-1000));
        assert!(parse_time("").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2019-02-13").is_err());
        assert!(parse_time("99999999999999999").is_err());
    }

    #[test]
    fn formats_milliseconds_only_when_present() {
        assert_eq!(format_time(1_550_052_000_000), "2019-02-13T10:00:00Z");
        assert_eq!(format_time(1_550_052_000_250), "2019-02-13T10:00:00.250Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_time(MIN_TIME_MS), "0000-01-01T00:00:00Z");
        assert_eq!(format_time(MAX_TIME_MS), "9999-12-30T22:00:00Z");
    }
}
