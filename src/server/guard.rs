//! What stands between a client and the database (docs/http-api.md,
//! "Security and limits"): the bearer token, the limit on the body's size,
//! and the limits on queries, which run with a time limit, cancelled
//! through the engine's own cancellation flag (the one the REPL's Ctrl-C
//! sets), and a bounded number at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::errors::{ApiError, for_path};

/// Checks the bearer token when the server has one (docs/http-api.md,
/// rule H31): a missing or wrong token is 401, in the format of the API
/// the path belongs to. The web page's own files, which hold no data, need
/// none (rule H42): a browser opening the page cannot send one.
pub(crate) async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let public = super::web::is_asset(request.uri().path());
    if let (Some(token), false) = (&state.options.token, public) {
        let given = bearer(request.headers());
        let error = match given {
            None => Some("this server needs a bearer token: send `Authorization: Bearer TOKEN`"),
            Some(given) if !same_secret(given.as_bytes(), token.as_bytes()) => {
                Some("the bearer token is wrong")
            }
            Some(_) => None,
        };
        if let Some(message) = error {
            let path = request.uri().path().to_string();
            return for_path(
                &path,
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message),
            );
        }
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Compares two secrets in time that depends on their lengths only, so
/// that the answer's timing does not tell how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a whole request body of at most `limit` bytes (docs/http-api.md,
/// rule H32): a larger one is 413, checked against `Content-Length` before
/// anything is read, and against the bytes as they arrive.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request body is larger than the server's limit of {limit} bytes (--max-body)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // A body over the limit and a connection that failed mid-body are
        // the only ways reading can fail; only the first is the client's
        // doing in a way a status can name.
        let over = e
            .into_inner()
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some();
        if over {
            too_large()
        } else {
            ApiError::bad_request("the request body could not be read to its end")
        }
    })
}

/// Sets a query's cancellation flag when dropped: when the client goes
/// away, axum drops the request's future, and the query it started stops
/// too instead of running on for nobody.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `work` (which reads the database) on a blocking thread, within the
/// server's limits (docs/http-api.md, rules H33–H34): it waits for one of
/// `--max-queries` turns, and it is cancelled through the flag it is given
/// once the time limit (`--query-timeout`, or the request's shorter
/// `timeout`) has passed since the request arrived, waiting included. The
/// database is refreshed first, so the query sees every commit made
/// before it started.
pub(crate) async fn run_query<T: Send + 'static>(
    state: &Arc<AppState>,
    timeout: Option<Duration>,
    work: impl FnOnce(&AppState, Arc<AtomicBool>) -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    run_refreshed(state, timeout, move |state, cancel| {
        state.refresh()?;
        work(state, cancel)
    })
    .await
}

/// [`run_query`] for a request that has already brought the database up
/// to date ([`current_generation`]): the query reads the snapshot as it
/// is, without reading the manifest a second time.
pub(crate) async fn run_refreshed<T: Send + 'static>(
    state: &Arc<AppState>,
    timeout: Option<Duration>,
    work: impl FnOnce(&AppState, Arc<AtomicBool>) -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let started = Instant::now();
    let limit = timeout.map_or(state.options.query_timeout, |t| {
        t.min(state.options.query_timeout)
    });
    let permit = match tokio::time::timeout(limit, Arc::clone(&state.queries).acquire_owned()).await
    {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => return Err(ApiError::busy("the server is shutting down")),
        Err(_) => {
            return Err(ApiError::busy(format!(
                "{} queries are running and this one waited {} s for its turn (--max-queries)",
                state.options.max_queries,
                limit.as_secs_f64()
            )));
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_if_abandoned = CancelOnDrop(Arc::clone(&cancel));
    let task_state = Arc::clone(state);
    let task_cancel = Arc::clone(&cancel);
    let mut task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(&task_state, task_cancel)
    });
    let remaining = limit.saturating_sub(started.elapsed());
    let outcome = tokio::select! {
        joined = &mut task => joined,
        () = tokio::time::sleep(remaining) => {
            cancel.store(true, Ordering::Relaxed);
            // The engine checks the flag between series; wait for it to
            // notice, so the turn is given back before the answer is sent.
            let _ = task.await;
            return Err(ApiError::timeout(limit));
        }
    };
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(crate::Error::Cancelled)) => Err(ApiError::timeout(limit)),
        Ok(Err(e)) => Err(ApiError::from_engine(e)),
        Err(_) => Err(ApiError::internal()),
    }
}

/// Brings the database up to the latest commit ([H4]) and says which one
/// that is: the committed state a request saw on arrival, what tells two
/// identical questions apart (rule H44).
pub(crate) async fn current_generation(state: &Arc<AppState>) -> Result<u64, ApiError> {
    let task_state = Arc::clone(state);
    match tokio::task::spawn_blocking(move || {
        task_state.refresh()?;
        Ok(task_state.db.snapshot().manifest.generation)
    })
    .await
    {
        Ok(Ok(generation)) => Ok(generation),
        Ok(Err(e)) => Err(ApiError::from_engine(e)),
        Err(_) => Err(ApiError::internal()),
    }
}

/// Runs `work` on a blocking thread with no time limit: an import, which
/// must finish or roll back as a whole, never be cut in the middle.
pub(crate) async fn run_blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let task_state = Arc::clone(state);
    match tokio::task::spawn_blocking(move || work(&task_state)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ApiError::internal()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"", b"x"));
    }

    #[test]
    fn bearer_reads_the_scheme_without_case() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
