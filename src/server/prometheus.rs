//! The Prometheus-compatible read API under `/prometheus/api/v1`
//! (docs/http-api.md, rules H20–H28), enough for Grafana's Prometheus data
//! source and `promtool query`: instant and range queries of series in
//! tally's language, with Prometheus's evaluation semantics (the value of
//! a series at a time is its latest point within the lookback before it),
//! and the series, label and build-information endpoints. Answers have
//! Prometheus's JSON format exactly.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::AppState;
use super::errors::ApiError;
use super::guard::{read_body, run_query};
use super::native::{push_json_string, with_type};
use super::params::{Params, prometheus_duration, prometheus_time};
use crate::{Query, Series, TimeRange, Value};

/// Prometheus's limit on the points of one series in a range query.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// The most samples one answer may hold, so that a query over every
/// account and a long range cannot build an answer of gigabytes (about 30
/// bytes of JSON each).
const MAX_SAMPLES: usize = 5_000_000;

/// The labels every tally series has (rule H22).
const LABELS: [&str; 2] = ["__name__", "account"];

/// `GET|POST /api/v1/query?query=…&time=…&timeout=…&lookback_delta=…`.
pub(crate) async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query_string): RawQuery,
    body: Body,
) -> Response {
    answer(query_inner(state, headers, query_string, body).await)
}

async fn query_inner(
    state: Arc<AppState>,
    headers: HeaderMap,
    query_string: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let params = read_params(&state, &headers, query_string, body).await?;
    let text = params.require("query")?.to_string();
    let time = match params.get("time") {
        Some(t) => prometheus_time("time", t)?,
        None => now_ms(),
    };
    let lookback = lookback(&state, &params)?;
    let timeout = request_timeout(&params)?;
    if let Some(value) = constant(&text) {
        // Grafana's "Save & test" asks for `1+1`.
        let mut out = String::from(
            "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[",
        );
        push_time(&mut out, time);
        out.push_str(",\"");
        let _ = write!(out, "{value}");
        out.push_str("\"]}}");
        return Ok(json(out));
    }
    let result = evaluate(&state, text, time, time, 1, lookback, timeout).await?;
    let mut out =
        String::from("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[");
    let mut first = true;
    for series in &result {
        let Some(&(t, value)) = series.samples.first() else {
            continue;
        };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str("{\"metric\":");
        push_labels(&mut out, &series.metric, &series.account);
        out.push_str(",\"value\":");
        push_sample(&mut out, t, value);
        out.push('}');
    }
    out.push_str("]}}");
    Ok(json(out))
}

/// `GET|POST /api/v1/query_range?query=…&start=…&end=…&step=…`.
pub(crate) async fn query_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query_string): RawQuery,
    body: Body,
) -> Response {
    answer(query_range_inner(state, headers, query_string, body).await)
}

async fn query_range_inner(
    state: Arc<AppState>,
    headers: HeaderMap,
    query_string: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let params = read_params(&state, &headers, query_string, body).await?;
    let text = params.require("query")?.to_string();
    let start = prometheus_time("start", params.require("start")?)?;
    let end = prometheus_time("end", params.require("end")?)?;
    if end < start {
        return Err(ApiError::bad_request(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = prometheus_duration("step", params.require("step")?)?;
    if step <= 0 {
        return Err(ApiError::bad_request(
            "invalid parameter \"step\": zero or negative query resolution step widths are not \
             accepted. Try a positive integer",
        ));
    }
    if (end - start) / step >= MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_request(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the \
             query resolution (?step=XX)",
        ));
    }
    let lookback = lookback(&state, &params)?;
    let timeout = request_timeout(&params)?;
    let mut out =
        String::from("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[");
    if let Some(value) = constant(&text) {
        out.push_str("{\"metric\":{},\"values\":[");
        let mut t = start;
        while t <= end {
            if t > start {
                out.push(',');
            }
            out.push('[');
            push_time(&mut out, t);
            let _ = write!(out, ",\"{value}\"]");
            t += step;
        }
        out.push_str("]}]}}");
        return Ok(json(out));
    }
    let result = evaluate(&state, text, start, end, step, lookback, timeout).await?;
    let mut first = true;
    for series in &result {
        if series.samples.is_empty() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str("{\"metric\":");
        push_labels(&mut out, &series.metric, &series.account);
        out.push_str(",\"values\":[");
        for (i, &(t, value)) in series.samples.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_sample(&mut out, t, value);
        }
        out.push_str("]}");
    }
    out.push_str("]}}");
    Ok(json(out))
}

/// One series' samples at the evaluation times.
struct Sampled {
    account: String,
    metric: String,
    samples: Vec<(i64, i64)>,
}

/// Runs a series query and samples every series at `start`, `start +
/// step`, … up to `end` (rules H23–H24): the value at `t` is that of the
/// series' latest point with `t − lookback < time ≤ t`, and a time with no
/// such point has no sample. A bare selector reads only the points that
/// can be sampled; a function of series sees every point up to `end`, so
/// that `change(followers, 1d)` at `start` has the day before `start`.
async fn evaluate(
    state: &Arc<AppState>,
    text: String,
    start: i64,
    end: i64,
    step: i64,
    lookback: i64,
    timeout: Option<Duration>,
) -> Result<Vec<Sampled>, ApiError> {
    let query = Query::parse(&text)?;
    if !query.gives_series() {
        return Err(ApiError::bad_request(format!(
            "the Prometheus API answers queries that give series (a selector such as \
             followers{{account=~\"a.*\"}}, or latest, change, min_over, max_over or resample \
             of one); `{query}` gives a table: ask /api/query for it"
        )));
    }
    let to = end.saturating_add(1);
    let from = if query.is_selector() {
        start.saturating_sub(lookback).saturating_add(1)
    } else {
        i64::MIN
    };
    let query = query.range(TimeRange { from, to });
    let table = run_query(state, timeout, move |state, cancel| {
        query.cancel_on(cancel).run(&state.db)
    })
    .await?;
    let steps = usize::try_from((end - start) / step + 1).unwrap_or(usize::MAX);
    let mut out: Vec<Sampled> = Vec::new();
    let mut samples_total = 0usize;
    let mut rows = table.rows().iter().peekable();
    while let Some(row) = rows.next() {
        let [
            Value::Text(account),
            Value::Text(metric),
            Value::Time(t),
            Value::Int(v),
        ] = row.as_slice()
        else {
            return Err(ApiError::internal());
        };
        // The rows are sorted by account, metric, time ([Q31]): gather this
        // series' points.
        let mut points = vec![(*t, *v)];
        while let Some(next) = rows.peek() {
            match next.as_slice() {
                [
                    Value::Text(a),
                    Value::Text(m),
                    Value::Time(t),
                    Value::Int(v),
                ] if a == account && m == metric => {
                    points.push((*t, *v));
                    rows.next();
                }
                _ => break,
            }
        }
        let samples = sample(&points, start, step, steps, lookback);
        samples_total = samples_total.saturating_add(samples.len());
        if samples_total > MAX_SAMPLES {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_samples",
                format!(
                    "the answer would hold more than {MAX_SAMPLES} samples: select fewer \
                     accounts, or ask for a shorter range or a longer step"
                ),
            ));
        }
        out.push(Sampled {
            account: account.clone(),
            metric: metric.clone(),
            samples,
        });
    }
    Ok(out)
}

/// The samples of one series (points in time order) at `steps` times from
/// `start`, `step` apart, each the latest point within the lookback.
fn sample(
    points: &[(i64, i64)],
    start: i64,
    step: i64,
    steps: usize,
    lookback: i64,
) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut next = 0usize;
    let mut t = start;
    for _ in 0..steps {
        while points.get(next).is_some_and(|&(pt, _)| pt <= t) {
            next += 1;
        }
        if let Some(&(pt, v)) = next.checked_sub(1).and_then(|i| points.get(i))
            && pt > t.saturating_sub(lookback)
        {
            out.push((t, v));
        }
        t = t.saturating_add(step);
    }
    out
}

/// `GET|POST /api/v1/series?match[]=…` (rule H25): the series every
/// selector names, from the dictionary (every series ever committed;
/// `start` and `end` are accepted and do not narrow the answer).
pub(crate) async fn series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query_string): RawQuery,
    body: Body,
) -> Response {
    answer(series_inner(state, headers, query_string, body).await)
}

async fn series_inner(
    state: Arc<AppState>,
    headers: HeaderMap,
    query_string: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let params = read_params(&state, &headers, query_string, body).await?;
    let selectors = selectors(&params)?;
    if selectors.is_empty() {
        return Err(ApiError::bad_request("no match[] parameter provided"));
    }
    let found = matching(&state, selectors).await?;
    let mut out = String::from("{\"status\":\"success\",\"data\":[");
    for (i, s) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_labels(&mut out, &s.metric, &s.account);
    }
    out.push_str("]}");
    Ok(json(out))
}

/// `GET|POST /api/v1/labels` (rule H26): `__name__` and `account`, or none
/// when nothing matches.
pub(crate) async fn labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query_string): RawQuery,
    body: Body,
) -> Response {
    answer(labels_inner(state, headers, query_string, body).await)
}

async fn labels_inner(
    state: Arc<AppState>,
    headers: HeaderMap,
    query_string: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let params = read_params(&state, &headers, query_string, body).await?;
    let selectors = selectors(&params)?;
    let any = if selectors.is_empty() {
        run_query(&state, None, |state, _| Ok(state.db.stats()?.series > 0)).await?
    } else {
        !matching(&state, selectors).await?.is_empty()
    };
    let names: &[&str] = if any { &LABELS } else { &[] };
    Ok(json(format!(
        "{{\"status\":\"success\",\"data\":{}}}",
        serde_json::json!(names)
    )))
}

/// `GET /api/v1/label/<name>/values` (rule H26): the metrics for
/// `__name__`, the accounts for `account`, nothing for any other label.
pub(crate) async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query_string): RawQuery,
) -> Response {
    answer(label_values_inner(state, name, headers, query_string).await)
}

async fn label_values_inner(
    state: Arc<AppState>,
    name: String,
    headers: HeaderMap,
    query_string: Option<String>,
) -> Result<Response, ApiError> {
    if !is_label_name(&name) {
        return Err(ApiError::bad_request(format!(
            "invalid label name: \"{name}\""
        )));
    }
    let params = Params::read(query_string.as_deref(), &headers, &[]);
    let selectors = selectors(&params)?;
    let values: Vec<String> = if !LABELS.contains(&name.as_str()) {
        Vec::new()
    } else if selectors.is_empty() {
        let metric = name == "__name__";
        run_query(&state, None, move |state, _| {
            if metric {
                Ok(state.db.metrics())
            } else {
                state.db.accounts()
            }
        })
        .await?
    } else {
        let found = matching(&state, selectors).await?;
        let mut values: Vec<String> = found
            .into_iter()
            .map(|s| {
                if name == "__name__" {
                    s.metric
                } else {
                    s.account
                }
            })
            .collect();
        values.sort();
        values.dedup();
        values
    };
    Ok(json(format!(
        "{{\"status\":\"success\",\"data\":{}}}",
        serde_json::json!(values)
    )))
}

/// `GET /api/v1/status/buildinfo` (rule H28). Grafana reads `version` as
/// a Prometheus version to decide which features it may use; tally
/// answers as the Prometheus 2.x whose API it follows and names itself in
/// `revision` and `branch`.
pub(crate) async fn buildinfo() -> Response {
    let body = serde_json::json!({
        "status": "success",
        "data": {
            "version": PROMETHEUS_VERSION,
            "revision": format!("tally {}", env!("CARGO_PKG_VERSION")),
            "branch": "tally",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
    });
    json(body.to_string())
}

/// The Prometheus version whose API this follows, as buildinfo reports it.
const PROMETHEUS_VERSION: &str = "2.53.0";

/// The parameters from the query string and a form body.
async fn read_params(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    query_string: Option<String>,
    body: Body,
) -> Result<Params, ApiError> {
    let body = read_body(headers, body, state.options.max_body).await?;
    Ok(Params::read(query_string.as_deref(), headers, &body))
}

/// Each `match[]`, parsed: each must be a bare selector.
fn selectors(params: &Params) -> Result<Vec<Query>, ApiError> {
    params
        .all("match[]")
        .map(|text| {
            let query = Query::parse(text)?;
            if query.is_selector() {
                Ok(query)
            } else {
                Err(ApiError::bad_request(format!(
                    "match[] takes a selector such as followers{{account=~\"a.*\"}}, found \
                     `{query}`"
                )))
            }
        })
        .collect()
}

/// The series any of `selectors` selects, sorted and without repeats.
async fn matching(state: &Arc<AppState>, selectors: Vec<Query>) -> Result<Vec<Series>, ApiError> {
    run_query(state, None, move |state, _| {
        let mut found: Vec<Series> = Vec::new();
        for q in &selectors {
            found.extend(q.selected_series(&state.db)?.unwrap_or_default());
        }
        found.sort_by(|a, b| (&a.metric, &a.account).cmp(&(&b.metric, &b.account)));
        found.dedup();
        Ok(found)
    })
    .await
}

/// `lookback_delta`, else the server's `--lookback`, in milliseconds.
fn lookback(state: &AppState, params: &Params) -> Result<i64, ApiError> {
    match params.get("lookback_delta") {
        Some(d) => {
            let ms = prometheus_duration("lookback_delta", d)?;
            if ms <= 0 {
                return Err(ApiError::bad_request(
                    "invalid parameter \"lookback_delta\": it must be positive",
                ));
            }
            Ok(ms)
        }
        None => Ok(i64::try_from(state.options.lookback.as_millis()).unwrap_or(i64::MAX)),
    }
}

/// The request's own `timeout`, which can only shorten the server's.
fn request_timeout(params: &Params) -> Result<Option<Duration>, ApiError> {
    params
        .get("timeout")
        .map(|t| {
            let ms = prometheus_duration("timeout", t)?;
            u64::try_from(ms)
                .map(Duration::from_millis)
                .map_err(|_| ApiError::bad_request("invalid parameter \"timeout\": it is negative"))
        })
        .transpose()
}

/// The value of a constant expression: numbers joined by `+`, such as the
/// `1+1` of Grafana's connection test (rule H21). Anything else is `None`.
fn constant(text: &str) -> Option<f64> {
    let mut sum = 0.0;
    for term in text.split('+') {
        let term = term.trim();
        if term.is_empty() || !term.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return None;
        }
        sum += term.parse::<f64>().ok()?;
    }
    Some(sum)
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `{"__name__":"followers","account":"adela_mae"}`.
fn push_labels(out: &mut String, metric: &str, account: &str) {
    out.push_str("{\"__name__\":");
    push_json_string(out, metric);
    out.push_str(",\"account\":");
    push_json_string(out, account);
    out.push('}');
}

/// `[1550052000,"10234"]`: the time in Unix seconds, the value as a string.
fn push_sample(out: &mut String, t: i64, value: i64) {
    out.push('[');
    push_time(out, t);
    let _ = write!(out, ",\"{value}\"]");
}

/// Unix seconds as Prometheus writes them: whole seconds without a point,
/// else up to three decimals without trailing zeros (`1435781451.781`).
fn push_time(out: &mut String, ms: i64) {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let (seconds, millis) = (abs / 1000, abs % 1000);
    if millis == 0 {
        let _ = write!(out, "{sign}{seconds}");
    } else {
        let fraction = format!("{millis:03}");
        let _ = write!(out, "{sign}{seconds}.{}", fraction.trim_end_matches('0'));
    }
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn json(body: String) -> Response {
    with_type(body.into_bytes(), "application/json")
}

fn answer(outcome: Result<Response, ApiError>) -> Response {
    outcome.unwrap_or_else(ApiError::prometheus)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rule H23: the value at t is the latest point in (t − lookback, t].
    #[test]
    fn sampling_takes_the_latest_point_within_the_lookback() {
        let points = [(1_000, 10), (4_000, 40), (10_000, 100)];
        // Times 0, 2000, 4000, …, 14000 with a lookback of 3000.
        let got = sample(&points, 0, 2_000, 8, 3_000);
        assert_eq!(
            got,
            vec![
                (2_000, 10),
                (4_000, 40),
                (6_000, 40),
                (10_000, 100),
                (12_000, 100)
            ]
        );
        // The left end is open: a point exactly lookback before is out.
        assert_eq!(sample(&[(1_000, 1)], 4_000, 1, 1, 3_000), vec![]);
        assert_eq!(sample(&[(1_001, 1)], 4_000, 1, 1, 3_000), vec![(4_000, 1)]);
    }

    #[test]
    fn times_print_as_prometheus_prints_them() {
        let mut out = String::new();
        push_time(&mut out, 1_435_781_451_781);
        out.push(' ');
        push_time(&mut out, 1_550_052_000_000);
        out.push(' ');
        push_time(&mut out, 1_500);
        out.push(' ');
        push_time(&mut out, -1_500);
        assert_eq!(out, "1435781451.781 1550052000 1.5 -1.5");
    }

    #[test]
    fn constants_are_sums_of_numbers_only() {
        assert_eq!(constant("1+1"), Some(2.0));
        assert_eq!(constant(" 2.5 "), Some(2.5));
        assert_eq!(constant("followers"), None);
        assert_eq!(constant("1+"), None);
        assert_eq!(constant("1-1"), None);
    }
}
