//! The parameters of a request: from the URL's query string, and for a POST
//! with a form body (`application/x-www-form-urlencoded`, which Grafana
//! sends) from the body too, as Prometheus reads them. Times and durations
//! in the forms both APIs accept.

use axum::http::{HeaderMap, header};

use super::errors::ApiError;

/// The decoded `name=value` pairs of a request, in order.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Reads the query string and, when `headers` say the body is a form,
    /// the body.
    pub(crate) fn read(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(query) = query {
            pairs.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        if is_form(headers) {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        Params { pairs }
    }

    /// The first value of `name`, as Prometheus's `FormValue` takes it.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order (`match[]` may repeat).
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, which must be there.
    pub(crate) fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::bad_request(format!("the parameter `{name}` is missing")))
    }
}

/// True when the body is a URL-encoded form.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A time as the native API takes it, like `--from`/`--to`: RFC 3339 or
/// whole Unix seconds.
pub(crate) fn native_time(name: &str, text: &str) -> Result<i64, ApiError> {
    crate::time::parse_time(text).map_err(|e| ApiError::bad_request(format!("`{name}`: {e}")))
}

/// A time as Prometheus takes it: RFC 3339, or Unix seconds with an
/// optional fraction (`1550052000.5`), in milliseconds.
pub(crate) fn prometheus_time(name: &str, text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        let ms = (seconds * 1000.0).round();
        if ms.is_finite()
            && ms >= crate::time::MIN_TIME_MS as f64
            && ms <= crate::time::MAX_TIME_MS as f64
        {
            // In range, so the conversion is exact.
            return Ok(ms as i64);
        }
        return Err(ApiError::bad_request(format!(
            "invalid parameter \"{name}\": cannot parse \"{text}\" to a valid timestamp: it is \
             outside the years 0000 to 9999"
        )));
    }
    crate::time::parse_time(text).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid parameter \"{name}\": cannot parse \"{text}\" to a valid timestamp: {e}"
        ))
    })
}

/// A duration as Prometheus takes it: seconds with an optional fraction
/// (`60`, `0.5`), or units (`1h30m`, `5m`, `250ms`, `1d`, `1w`, `1y` of 365
/// days). Returns milliseconds.
pub(crate) fn prometheus_duration(name: &str, text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    let bad = || {
        ApiError::bad_request(format!(
            "invalid parameter \"{name}\": cannot parse \"{text}\" to a valid duration"
        ))
    };
    if let Ok(seconds) = text.parse::<f64>() {
        let ms = (seconds * 1000.0).round();
        if ms.is_finite() && ms.abs() < 1e15 {
            // Bounded above, so the conversion is exact.
            return Ok(ms as i64);
        }
        return Err(bad());
    }
    crate::time::duration_ms(text)
        .and_then(|ms| i64::try_from(ms).ok())
        .ok_or_else(bad)
}

/// Reads a yes/no parameter: `true`/`1`/`yes` or `false`/`0`/`no`.
pub(crate) fn flag(name: &str, text: Option<&str>) -> Result<bool, ApiError> {
    match text.map(str::trim) {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("" | "true" | "1" | "yes") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "`{name}` must be true or false, found {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_times_take_fractions_and_rfc3339() {
        assert_eq!(
            prometheus_time("t", "1550052000").ok(),
            Some(1_550_052_000_000)
        );
        assert_eq!(
            prometheus_time("t", "1550052000.25").ok(),
            Some(1_550_052_000_250)
        );
        assert_eq!(
            prometheus_time("t", "2019-02-13T10:00:00Z").ok(),
            Some(1_550_052_000_000)
        );
        assert!(prometheus_time("t", "yesterday").is_err());
        assert!(prometheus_time("t", "1e300").is_err());
        assert!(prometheus_time("t", "NaN").is_err());
    }

    #[test]
    fn prometheus_durations_take_seconds_and_units() {
        assert_eq!(prometheus_duration("s", "60").ok(), Some(60_000));
        assert_eq!(prometheus_duration("s", "0.5").ok(), Some(500));
        assert_eq!(prometheus_duration("s", "1h30m").ok(), Some(5_400_000));
        assert_eq!(prometheus_duration("s", "250ms").ok(), Some(250));
        assert!(prometheus_duration("s", "5x").is_err());
        assert!(prometheus_duration("s", "").is_err());
        assert!(prometheus_duration("s", "h").is_err());
        assert!(prometheus_duration("s", "99999999999999999999y").is_err());
    }
}
