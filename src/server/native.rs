//! tally's own endpoints (docs/http-api.md, "Native API"): a query in
//! tally's language answered as JSON or CSV, the import of one snapshot
//! per request, and what the database holds (metrics, accounts, stats).

use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::errors::{ApiError, column_type};
use super::flights::{Answer, FlightKey, Role};
use super::guard::{current_generation, read_body, run_blocking, run_query, run_refreshed};
use super::params::{Params, flag, native_time};
use crate::import::{Format, ImportOptions, Input};
use crate::output::{CsvPrinter, Printer};
use crate::{Error, Query, Table, Value};

/// How many accounts `/api/accounts` returns when `limit` is not given,
/// and the most it returns at once.
const ACCOUNTS_PAGE: usize = 100;
const ACCOUNTS_PAGE_MAX: usize = 10_000;

/// The name imported rows' errors give the body, as `tally import` gives a
/// file's path: `body:3: …`.
const BODY_NAME: &str = "body";

/// `GET|POST /api/query?q=…&from=…&to=…&format=json|csv` (rules H5–H6).
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
    let body = read_body(&headers, body, state.options.max_body).await?;
    let params = Params::read(query_string.as_deref(), &headers, &body);
    let text = params.require("q")?;
    let from = params
        .get("from")
        .map(|t| native_time("from", t))
        .transpose()?;
    let to = params.get("to").map(|t| native_time("to", t)).transpose()?;
    let range = crate::cli::time_range(from, to).map_err(ApiError::bad_request)?;
    let format = answer_format(params.get("format"), &headers)?;
    let with_chart = flag("chart", params.get("chart"))?;
    let query = Query::parse(text)?.range(range);
    let draw = match format {
        AnswerFormat::Svg => {
            // Found before the query runs, as `tally query --format svg`
            // finds it (rule H39).
            if !crate::chart::can_draw(&query) {
                return Err(ApiError::bad_request(NO_PICTURE));
            }
            true
        }
        AnswerFormat::Json => with_chart,
        AnswerFormat::Csv => false,
    };
    // The same question of the same committed state, asked while it is
    // being answered, waits for that answer (rule H44).
    let key = FlightKey {
        text: query.to_string(),
        from,
        to,
        shape: match (format, with_chart) {
            (AnswerFormat::Csv, _) => "csv",
            (AnswerFormat::Svg, _) => "svg",
            (AnswerFormat::Json, false) => "json",
            (AnswerFormat::Json, true) => "json+chart",
        },
        generation: current_generation(&state).await?,
    };
    let waited = Instant::now();
    let limit = state.options.query_timeout;
    let (leader, timeout) = match state.flights.join(key) {
        Role::Follower(follower) => match tokio::time::timeout(limit, follower.answer()).await {
            Ok(Some(answer)) => return Ok(with_type(answer.0.clone(), answer.1)),
            // The leader failed or its client went away: answer alone,
            // within what is left of this request's time (rule H33).
            Ok(None) => (None, Some(limit.saturating_sub(waited.elapsed()))),
            Err(_) => return Err(ApiError::timeout(limit)),
        },
        Role::Leader(leader) => (Some(leader), None),
    };
    // `current_generation` refreshed the database for the key above.
    let (table, svg) = run_refreshed(&state, timeout, move |state, cancel| {
        let query = query.cancel_on(cancel);
        if draw {
            // The rows and the picture from one committed state.
            crate::chart::render(&state.db, &query)
        } else {
            Ok((query.run(&state.db)?, None))
        }
    })
    .await?;
    let answer: Answer = Arc::new(match format {
        AnswerFormat::Csv => {
            let mut out = Vec::new();
            CsvPrinter
                .print(&table, &mut out)
                .map_err(|e| ApiError::from_engine(Error::io("<response>", e)))?;
            (out, "text/csv; charset=utf-8")
        }
        // `render` draws every query `can_draw` accepts, checked above, so
        // the picture is there.
        AnswerFormat::Svg => (svg.unwrap_or_default().into_bytes(), "image/svg+xml"),
        AnswerFormat::Json => {
            let chart = with_chart.then_some(svg);
            (
                query_json(&table, chart.as_ref().map(Option::as_deref)).into_bytes(),
                "application/json",
            )
        }
    });
    if let Some(leader) = leader {
        leader.finish(&answer);
    }
    Ok(with_type(answer.0.clone(), answer.1))
}

/// The error of `format=svg` for a query whose result has no picture: the
/// CLI's message for `--format svg`, naming the API's formats (rule H39).
const NO_PICTURE: &str = "format=svg draws series of counts, drop and recovery tables, and \
     summarize(…, STEP); this query's result has no picture (use json or csv)";

/// What `/api/query` answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerFormat {
    Json,
    Csv,
    Svg,
}

/// `format=json|csv|svg`, else `Accept: text/csv`; JSON by default.
fn answer_format(format: Option<&str>, headers: &HeaderMap) -> Result<AnswerFormat, ApiError> {
    match format {
        Some("csv") => Ok(AnswerFormat::Csv),
        Some("json") => Ok(AnswerFormat::Json),
        Some("svg") => Ok(AnswerFormat::Svg),
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown format {other:?}: expected json, csv or svg"
        ))),
        None => Ok(
            if headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/csv"))
            {
                AnswerFormat::Csv
            } else {
                AnswerFormat::Json
            },
        ),
    }
}

/// The JSON answer of `/api/query`: the table (rule H6) with its notices
/// (rule H40) and, when `chart` is given, the picture or `null` (rule
/// H39).
fn query_json(table: &Table, chart: Option<Option<&str>>) -> String {
    let mut out = table_json(table);
    // `table_json` ends with the closing brace of its object.
    out.pop();
    out.push_str(",\"notices\":");
    // Notices are strings and an enum, which always serialise.
    out.push_str(&serde_json::to_string(table.notices()).unwrap_or_else(|_| "[]".to_string()));
    if let Some(chart) = chart {
        out.push_str(",\"chart\":");
        match chart {
            Some(svg) => push_json_string(&mut out, svg),
            None => out.push_str("null"),
        }
    }
    out.push('}');
    out
}

/// The JSON answer of a query (rule H6): the columns with their types, and
/// the rows as arrays, each value as the CLI's `--format json` writes it
/// (names and times as strings, counts and percentages as numbers).
pub(crate) fn table_json(table: &Table) -> String {
    let mut out = String::with_capacity(64 + table.len() * 64);
    out.push_str("{\"columns\":[");
    for (i, name) in table.columns().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        push_json_string(&mut out, name);
        out.push_str(",\"type\":\"");
        out.push_str(column_type(name));
        out.push_str("\"}");
    }
    out.push_str("],\"rows\":[");
    let mut text = String::new();
    for (i, row) in table.rows().iter().enumerate() {
        out.push_str(if i > 0 { ",[" } else { "[" });
        for (j, value) in row.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            text.clear();
            value.write_plain(&mut text);
            match value {
                Value::Int(_) | Value::Percent(_) => out.push_str(&text),
                Value::Text(_) | Value::Time(_) => push_json_string(&mut out, &text),
            }
        }
        out.push(']');
    }
    out.push_str("]}");
    out
}

/// Appends `s` as a JSON string.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    // A `str` always serialises.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

/// `POST /api/import?at=…&format=…&skip_bad=…`: the body is one snapshot
/// (rules H7–H9).
pub(crate) async fn import(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query_string): RawQuery,
    body: Body,
) -> Response {
    answer(import_inner(state, headers, query_string, body).await)
}

async fn import_inner(
    state: Arc<AppState>,
    headers: HeaderMap,
    query_string: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    if !state.options.allow_import {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "this server is read-only: start it with --allow-import to accept imports",
        ));
    }
    let params = Params::read(query_string.as_deref(), &HeaderMap::new(), &[]);
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().map(str::trim))
    {
        None => false,
        Some(Ok(e)) if e.eq_ignore_ascii_case("identity") || e.is_empty() => false,
        Some(Ok(e)) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!(
                    "Content-Encoding {:?} is not supported: send the body as it is, or gzip",
                    other.unwrap_or("?")
                ),
            ));
        }
    };
    let options = ImportOptions {
        at: params.get("at").map(|t| native_time("at", t)).transpose()?,
        format: import_format(params.get("format"), &headers)?,
        skip_bad: flag("skip_bad", params.get("skip_bad"))?,
        shard: None,
    };
    let body = read_body(&headers, body, state.options.max_body).await?;
    // The importer tells gzip from its first bytes, as it does for standard
    // input; a body said to be gzip must be gzip, and one not said to be
    // must not, so that the header is never silently ignored.
    let looks_gzip = body.starts_with(&[0x1f, 0x8b]);
    if gzip != looks_gzip {
        return Err(ApiError::bad_request(if gzip {
            "Content-Encoding says gzip, but the body does not start as gzip does"
        } else {
            "the body is gzip: say so with `Content-Encoding: gzip`"
        }));
    }
    let report = run_blocking(&state, move |state| import_body(state, body, &options)).await?;
    Ok(with_type(report.into_bytes(), "application/json"))
}

/// The format from `format=`, else from `Content-Type`, else told from the
/// body's first bytes as for standard input.
fn import_format(param: Option<&str>, headers: &HeaderMap) -> Result<Option<Format>, ApiError> {
    if let Some(name) = param {
        return name.parse().map(Some).map_err(ApiError::from_engine);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    Ok(match content_type.as_deref() {
        Some("text/csv") => Some(Format::Csv),
        Some("application/x-ndjson" | "application/jsonl" | "application/jsonlines") => {
            Some(Format::Jsonl)
        }
        _ => None,
    })
}

/// Imports one body through the same path as `tally import -`: a writer,
/// the importer, one commit, then the merges (rules H8–H9). The writer is
/// taken for this request only, so `tally import` from a shell can commit
/// between two requests; while it holds the lock, this answers 409. On
/// any error before the commit the writer is dropped and nothing of the
/// body is visible.
fn import_body(
    state: &AppState,
    body: bytes::Bytes,
    options: &ImportOptions,
) -> Result<String, ApiError> {
    let mut writer = state.db.writer()?;
    let summary = crate::import::import_with_stdin(
        &mut writer,
        &[Input::Stdin],
        options,
        &mut |_| {},
        move || Box::new(Cursor::new(body)),
    )
    .map_err(|e| match e {
        Error::Import { line, reason, .. } => Error::Import {
            file: BODY_NAME.to_string(),
            line,
            reason,
        },
        other => other,
    })?;
    let committed = writer.commit()?;
    // As `tally import` does: the merge runs after the commit and its
    // failure is reported as what it is, with the import committed.
    let merged = writer.merge();
    drop(writer);
    let mut report = serde_json::json!({
        "status": "success",
        "rows": summary.rows,
        "points": summary.points,
        "new_series": committed.new_series,
        "skipped": summary.skipped,
        "skipped_examples": summary
            .skipped_examples
            .iter()
            .map(|e| e.replacen("-:", "body:", 1))
            .collect::<Vec<_>>(),
    });
    match merged {
        Ok(m) => {
            report["merged"] = serde_json::json!({
                "merges": m.merges,
                "segments_in": m.segments_in,
                "segments_out": m.segments_out,
                "bytes_written": m.bytes_written,
            });
        }
        Err(e) => {
            eprintln!("tally: an import was committed, but the merge after it failed: {e}");
            report["merge_error"] =
                format!("the import was committed, but the merge after it failed: {e}").into();
        }
    }
    Ok(report.to_string())
}

/// `GET /api/functions`: the query language's functions from the one
/// registry (rule H38), for the web page's completion.
pub(crate) async fn functions() -> Response {
    let body = serde_json::json!({ "status": "success", "functions": crate::functions() });
    with_type(body.to_string().into_bytes(), "application/json")
}

/// `GET /api/metrics`: the metrics, sorted (rule H13).
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let outcome = run_query(&state, None, |state, _| Ok(state.db.metrics())).await;
    answer(outcome.map(|metrics| {
        let body = serde_json::json!({ "status": "success", "metrics": metrics });
        with_type(body.to_string().into_bytes(), "application/json")
    }))
}

/// `GET /api/accounts?match=REGEX&metric=M&limit=N&after=NAME` (rule H14):
/// accounts sorted by their UTF-8 bytes, a page at a time; `next` is the
/// `after` of the next page, or null at the end.
pub(crate) async fn accounts(
    State(state): State<Arc<AppState>>,
    RawQuery(query_string): RawQuery,
) -> Response {
    answer(accounts_inner(state, query_string).await)
}

async fn accounts_inner(
    state: Arc<AppState>,
    query_string: Option<String>,
) -> Result<Response, ApiError> {
    let params = Params::read(query_string.as_deref(), &HeaderMap::new(), &[]);
    let pattern = match params.get("match") {
        // The pattern must be valid on its own and match the whole name,
        // as an `=~` matcher's (docs/query-language.md, rule Q8).
        Some(p) => {
            regex::Regex::new(p).map_err(|e| {
                ApiError::bad_request(format!("`match` is not a regular expression: {e}"))
            })?;
            Some(regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                ApiError::bad_request(format!("`match` is not a regular expression: {e}"))
            })?)
        }
        None => None,
    };
    let limit = match params.get("limit") {
        None => ACCOUNTS_PAGE,
        Some(n) => match n.trim().parse::<usize>() {
            Ok(n) if (1..=ACCOUNTS_PAGE_MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`limit` must be a whole number from 1 to {ACCOUNTS_PAGE_MAX}, found {n:?}"
                )));
            }
        },
    };
    let metric = params.get("metric").map(str::to_string);
    let after = params.get("after").map(str::to_string);
    let (page, next) = run_query(&state, None, move |state, _| {
        let accept = |name: &str| pattern.as_ref().is_none_or(|r| r.is_match(name));
        let names: Vec<String> = match &metric {
            Some(metric) => state
                .db
                .series(metric, accept)?
                .into_iter()
                .map(|s| s.account)
                .collect(),
            None => state
                .db
                .accounts()?
                .into_iter()
                .filter(|a| accept(a))
                .collect(),
        };
        // `accounts()` sorts by UTF-8 bytes, and so does `series()` within
        // one metric, which `str`'s order is.
        let start = after
            .as_deref()
            .map_or(0, |after| names.partition_point(|n| n.as_str() <= after));
        let mut page: Vec<String> = names.into_iter().skip(start).take(limit + 1).collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().cloned()
        } else {
            None
        };
        Ok((page, next))
    })
    .await?;
    let body = serde_json::json!({ "status": "success", "accounts": page, "next": next });
    Ok(with_type(body.to_string().into_bytes(), "application/json"))
}

/// `GET /api/stats`: what `tally stats` prints (rule H15).
pub(crate) async fn stats(State(state): State<Arc<AppState>>) -> Response {
    let outcome = run_query(&state, None, |state, _| state.db.stats()).await;
    answer(outcome.map(|s| {
        let range = s.time_range.map(|(from, to)| {
            serde_json::json!({
                "from": crate::time::format_time(from),
                "to": crate::time::format_time(to),
            })
        });
        let body = serde_json::json!({
            "status": "success",
            "series": s.series,
            "accounts": s.accounts,
            "metrics": s.metrics,
            "points": s.points,
            "time_range": range,
            "segments": s.segments,
            "bytes_on_disk": s.bytes_on_disk,
        });
        with_type(body.to_string().into_bytes(), "application/json")
    }))
}

/// A 200 answer with its content type.
pub(crate) fn with_type(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The answer, or the native error.
fn answer(outcome: Result<Response, ApiError>) -> Response {
    outcome.unwrap_or_else(ApiError::native)
}
