//! Every failure of a request as an HTTP answer: a status that says what
//! kind of failure it is, and a JSON body in the format of the API asked
//! (docs/http-api.md, rules H10–H12 for tally's own endpoints, H27 for the
//! Prometheus API). Nothing here ever shows a stack trace or a panic's
//! message to a client.

use std::any::Any;

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::Error;
use crate::error::QueryError;

/// A failed request, before it is rendered for one API or the other.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    /// The native API's `kind`: a stable word a program can switch on.
    pub kind: &'static str,
    /// One line, as the CLI would print it after `tally: `.
    pub message: String,
    /// Boxed: a query error's detail is large, and every `Result` of the
    /// server carries an `ApiError`.
    pub detail: Box<Detail>,
    /// Seconds, for a `Retry-After` header on 503.
    pub retry_after: Option<u64>,
}

/// What an error adds to its message.
#[derive(Debug, Default)]
pub(crate) enum Detail {
    #[default]
    None,
    /// A syntax or type error in a query: its position and its caret.
    Query(QueryError),
    /// A rejected row of an imported body.
    Row { line: u64, reason: String },
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            detail: Box::new(Detail::None),
            retry_after: None,
        }
    }

    /// A parameter missing or malformed (400).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A query that ran out of time (503), or was cut off for another
    /// reason such as the client going away.
    pub(crate) fn timeout(limit: std::time::Duration) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the query ran longer than the server's limit of {} s and was cancelled \
                 (--query-timeout)",
                limit.as_secs_f64()
            ),
        )
    }

    /// Too many queries waiting (503, retry in a second).
    pub(crate) fn busy(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
        e.retry_after = Some(1);
        e
    }

    /// A bug: a panic or a task that died (500). The message says no more.
    pub(crate) fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error in tally (this is a bug; the server's log says where)",
        )
    }

    /// Maps an engine error to its status and kind (docs/http-api.md, rule
    /// H11).
    pub(crate) fn from_engine(e: Error) -> Self {
        let message = e.to_string();
        let (status, kind, detail) = match e {
            Error::Query(q) => (StatusCode::BAD_REQUEST, "bad_query", Detail::Query(q)),
            Error::Import { line, reason, .. } => (
                StatusCode::BAD_REQUEST,
                "bad_row",
                Detail::Row { line, reason },
            ),
            Error::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request", Detail::None),
            Error::Locked { .. } => (StatusCode::CONFLICT, "locked", Detail::None),
            Error::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "cancelled", Detail::None),
            Error::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "damaged", Detail::None),
            Error::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "io", Detail::None),
            Error::Writer(_) => (StatusCode::INTERNAL_SERVER_ERROR, "writer", Detail::None),
            // `Error` is non-exhaustive only to the outside; a variant added
            // later is a server error until it is mapped here.
            #[allow(unreachable_patterns)]
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal", Detail::None),
        };
        ApiError {
            status,
            kind,
            message,
            detail: Box::new(detail),
            retry_after: None,
        }
    }

    /// The answer of tally's own endpoints:
    /// `{"status":"error","kind":…,"error":…}` plus the detail's fields.
    pub(crate) fn native(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("status".into(), "error".into());
        body.insert("kind".into(), self.kind.into());
        body.insert("error".into(), self.message.clone().into());
        match self.detail.as_ref() {
            Detail::None => {}
            Detail::Query(q) => {
                body.insert("query".into(), q.query.clone().into());
                body.insert("start".into(), q.span.start.into());
                body.insert("end".into(), q.span.end.into());
                body.insert("position".into(), (q.span.start + 1).into());
                body.insert("message".into(), q.message.clone().into());
                if let Some(hint) = &q.hint {
                    body.insert("hint".into(), hint.clone().into());
                }
                body.insert("caret".into(), q.render().into());
            }
            Detail::Row { line, reason } => {
                body.insert("line".into(), (*line).into());
                body.insert("reason".into(), reason.clone().into());
            }
        }
        self.respond(serde_json::Value::Object(body))
    }

    /// The answer of the Prometheus API, in Prometheus's own format:
    /// `{"status":"error","errorType":…,"error":…}`.
    pub(crate) fn prometheus(self) -> Response {
        let error_type = match (self.status, self.kind) {
            (_, "timeout") => "timeout",
            (_, "cancelled") => "canceled",
            (StatusCode::BAD_REQUEST, _) => "bad_data",
            (StatusCode::UNPROCESSABLE_ENTITY, _) => "execution",
            (StatusCode::NOT_FOUND, _) => "not_found",
            (StatusCode::SERVICE_UNAVAILABLE, _) => "unavailable",
            (StatusCode::UNAUTHORIZED, _) => "unauthorized",
            _ => "internal",
        };
        let body = serde_json::json!({
            "status": "error",
            "errorType": error_type,
            "error": self.message,
        });
        self.respond(body)
    }

    fn respond(self, body: serde_json::Value) -> Response {
        let mut response = (self.status, json_body(&body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tally\""),
            );
        }
        response
    }
}

/// Serialises a JSON value; a `serde_json::Value` always serialises.
fn json_body(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

/// True when `path` belongs to the Prometheus API, whose errors have
/// Prometheus's format.
pub(crate) fn is_prometheus_path(path: &str) -> bool {
    path.starts_with(super::PROMETHEUS_BASE)
}

/// Renders `e` in the format of the API that `path` belongs to.
pub(crate) fn for_path(path: &str, e: ApiError) -> Response {
    if is_prometheus_path(path) {
        e.prometheus()
    } else {
        e.native()
    }
}

/// 404 for every path no route takes.
pub(crate) async fn not_found(uri: Uri) -> Response {
    for_path(
        uri.path(),
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no such endpoint: {} (docs/http-api.md lists them)",
                uri.path()
            ),
        ),
    )
}

/// 405 for a known path asked with the wrong method.
pub(crate) async fn method_not_allowed(uri: Uri) -> Response {
    for_path(
        uri.path(),
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} does not take this method", uri.path()),
        ),
    )
}

/// A panic caught by the outermost layer. The panic's message went to the
/// server's standard error through the process's panic hook; the client
/// learns only that it was an internal error.
pub(crate) fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal().native()
}

/// The type of a column as the native JSON answer names it; the columns of
/// every query are fixed by docs/query-language.md (rule Q12), so the name
/// decides the type even when there is no row to look at.
pub(crate) fn column_type(name: &str) -> &'static str {
    match crate::query::ColumnType::of(name) {
        crate::query::ColumnType::Text => "text",
        crate::query::ColumnType::Time => "time",
        crate::query::ColumnType::Percent => "percent",
        crate::query::ColumnType::Int => "int",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    /// A cell's kind, named as `column_type` names it.
    fn value_type(value: &Value) -> &'static str {
        match value {
            Value::Text(_) => "text",
            Value::Int(_) => "int",
            Value::Time(_) => "time",
            Value::Percent(_) => "percent",
        }
    }

    /// Rule H6: the type a column is announced with is the type of every
    /// value in it, for every kind of query.
    #[test]
    fn column_types_match_the_values() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path()).unwrap();
        let mut w = db.writer().unwrap();
        let hour = 3_600_000;
        for (h, v) in [100u64, 10, 100, 100, 5, 5].iter().enumerate() {
            w.append("a", "followers", h as i64 * hour, *v).unwrap();
        }
        w.commit().unwrap();
        for q in [
            "followers",
            "change(followers, 1h)",
            "drop(followers, 5%, 1h)",
            "recovered_within(drop(followers, 5%, 1h), 1d)",
            "not recovered_within(drop(followers, 5%, 1h), 1d)",
            "count(followers)",
            "sum(drop(followers, 5%, 1h))",
            "sum(followers)",
            "summarize(drop(followers, 5%, 1h))",
            "summarize(drop(followers, 5%, 1h), 1h)",
            "topk(1, drop(followers, 5%, 1h), lost_pct)",
        ] {
            let table = db.query(q).unwrap();
            assert!(!table.is_empty(), "{q}");
            for row in table.rows() {
                for (name, value) in table.columns().iter().zip(row) {
                    assert_eq!(column_type(name), value_type(value), "{q}: {name}");
                }
            }
        }
    }
}
