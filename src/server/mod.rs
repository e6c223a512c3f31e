//! `tally serve`: one long-lived HTTP server over one database
//! (docs/http-api.md is the normative description of what it answers).
//!
//! This module owns the server's life: the options, binding the address,
//! refusing to listen beyond loopback without a token, the router, and a
//! graceful shutdown on Ctrl-C or SIGTERM. The rest is one module per
//! concern: `native` answers tally's own endpoints, `prometheus` the
//! Prometheus-compatible read API, `guard` authentication and the limits,
//! `params` the parameters of a request, `web` the page at the root, and
//! `errors` turns every failure into an HTTP answer. Queries and imports run on tokio's blocking
//! threads (the engine is synchronous and spreads a query over rayon), so
//! the async workers only move bytes.

mod errors;
mod flights;
mod guard;
mod native;
mod params;
mod prometheus;
mod web;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::{Db, Error, Result};
use errors::ApiError;

/// The port `tally serve` listens on unless `--listen` says otherwise
/// (docs/http-api.md, rule H1). It is the default of no common time-series
/// tool (Prometheus 9090, Grafana 3000, VictoriaMetrics 8428, InfluxDB
/// 8086, the OpenTelemetry exporter 9464) and not in /etc/services.
pub(crate) const DEFAULT_PORT: u16 = 7464;

/// Where the Prometheus-compatible API lives (docs/http-api.md, rule H20):
/// a Prometheus data source or `promtool` is given
/// `http://HOST:PORT/prometheus` as its server URL.
pub(crate) const PROMETHEUS_BASE: &str = "/prometheus";

/// What `tally serve` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    /// The address to listen on, as given (`127.0.0.1:7464`, `[::1]:0`,
    /// `localhost:8080`).
    pub listen: String,
    /// The bearer token every request must carry, when set.
    pub token: Option<String>,
    /// Listen beyond loopback without a token, deliberately.
    pub no_auth: bool,
    /// Accept `POST /api/import`.
    pub allow_import: bool,
    /// The largest request body accepted, in bytes (as sent, so
    /// compressed for a gzip body).
    pub max_body: usize,
    /// How long a query may run before it is cancelled.
    pub query_timeout: Duration,
    /// How many queries may run at once; more wait for their turn, within
    /// their time limit.
    pub max_queries: usize,
    /// The one origin allowed to read answers from a browser (CORS); none
    /// by default.
    pub cors_origin: Option<String>,
    /// The Prometheus API's default lookback (5 minutes, as Prometheus's).
    pub lookback: Duration,
}

/// Everything a request handler needs, shared by all of them.
pub(crate) struct AppState {
    db: Db,
    options: ServeOptions,
    /// Queries running or waiting; see `guard::run_query`.
    queries: Arc<tokio::sync::Semaphore>,
    /// One refresh of the snapshot at a time: after a commit by another
    /// process, the first request loads the new snapshot and the others
    /// wait for it rather than each loading their own copy.
    refreshing: Mutex<()>,
    /// Identical queries being answered now (rule H44).
    flights: Arc<flights::Flights>,
}

impl AppState {
    /// Brings the database handle up to the latest commit of any process
    /// (docs/http-api.md, rule H4): every request calls this before it
    /// reads, so an import from the shell is seen by the next request.
    /// Reading the manifest is a few microseconds; the snapshot is loaded
    /// again only when the manifest changed.
    pub(crate) fn refresh(&self) -> Result<()> {
        let _one_at_a_time = match self.refreshing.lock() {
            Ok(guard) => guard,
            // The guard protects no data; a panic while holding it leaves
            // nothing half done.
            Err(poisoned) => poisoned.into_inner(),
        };
        self.db.refresh()
    }
}

/// Runs the server until Ctrl-C or SIGTERM. `ready` is called with the
/// address actually bound (a port of 0 picks a free one) before the first
/// request is accepted.
pub(crate) fn serve(
    db: Db,
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr, &ServeOptions),
) -> Result<()> {
    let listener = bind(&options)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Invalid(format!("cannot read the address bound: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tally-serve")
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the server's threads: {e}")))?;
    let state = Arc::new(AppState {
        queries: Arc::new(tokio::sync::Semaphore::new(options.max_queries.max(1))),
        db,
        options,
        refreshing: Mutex::new(()),
        flights: Arc::default(),
    });
    let app = router(Arc::clone(&state))?;
    ready(addr, &state.options);
    let outcome = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });
    // Dropping the runtime waits for the blocking tasks still running: an
    // import whose body was received finishes (commits or rolls back)
    // before the process exits (docs/http-api.md, rule H3).
    drop(runtime);
    outcome.map_err(|e| Error::Invalid(format!("the server stopped: {e}")))
}

/// Resolves and binds the listening address, refusing a non-loopback one
/// without a token unless `--no-auth` was given (docs/http-api.md, rule
/// H30).
fn bind(options: &ServeOptions) -> Result<TcpListener> {
    let addrs: Vec<SocketAddr> = options
        .listen
        .to_socket_addrs()
        .map_err(|e| {
            Error::Invalid(format!(
                "--listen {}: not an address to listen on ({e}); expected HOST:PORT, such as \
                 127.0.0.1:{DEFAULT_PORT}",
                options.listen
            ))
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::Invalid(format!(
            "--listen {}: the name resolves to no address",
            options.listen
        )));
    }
    let exposed = addrs.iter().any(|a| !a.ip().is_loopback());
    if exposed && options.token.is_none() && !options.no_auth {
        return Err(Error::Invalid(format!(
            "--listen {} reaches beyond this machine, so the server needs a bearer token: give \
             --token (or set TALLY_TOKEN), or say --no-auth to serve without one",
            options.listen
        )));
    }
    let listener = TcpListener::bind(addrs.as_slice())
        .map_err(|e| Error::Invalid(format!("cannot listen on {}: {e}", options.listen)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Invalid(format!("cannot listen on {}: {e}", options.listen)))?;
    Ok(listener)
}

/// The routes, with authentication, CORS (when asked for) and the panic
/// catcher around them.
fn router(state: Arc<AppState>) -> Result<Router> {
    layered(routes(), state)
}

/// Every endpoint of docs/http-api.md, without the layers.
fn routes() -> Router<Arc<AppState>> {
    let prom = |path: &str| format!("{PROMETHEUS_BASE}/api/v1{path}");
    let mut app = Router::new()
        .route("/api/query", get(native::query).post(native::query))
        .route("/api/import", post(native::import))
        .route("/api/metrics", get(native::metrics))
        .route("/api/accounts", get(native::accounts))
        .route("/api/stats", get(native::stats))
        .route("/api/functions", get(native::functions))
        .route(
            &prom("/query"),
            get(prometheus::query).post(prometheus::query),
        )
        .route(
            &prom("/query_range"),
            get(prometheus::query_range).post(prometheus::query_range),
        )
        .route(
            &prom("/series"),
            get(prometheus::series).post(prometheus::series),
        )
        .route(
            &prom("/labels"),
            get(prometheus::labels).post(prometheus::labels),
        )
        .route(&prom("/label/{name}/values"), get(prometheus::label_values))
        .route(&prom("/status/buildinfo"), get(prometheus::buildinfo));
    for path in web::asset_paths() {
        app = app.route(path, get(web::asset));
    }
    app
}

/// The routes `app`, with the fallbacks, authentication, CORS (when asked
/// for) and the panic catcher around them: one function, so that a test can
/// put a route of its own inside the very layers the server uses.
fn layered(app: Router<Arc<AppState>>, state: Arc<AppState>) -> Result<Router> {
    let mut app = app
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::authenticate,
        ))
        .with_state(Arc::clone(&state));
    if let Some(origin) = &state.options.cors_origin {
        let origin = HeaderValue::from_str(origin).map_err(|_| {
            Error::Invalid(format!("--cors-origin {origin:?} is not a valid origin"))
        })?;
        app = app.layer(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::CONTENT_ENCODING,
                ]),
        );
    }
    // Outermost, so that a panic anywhere inside becomes a 500 with a JSON
    // body and never a stack trace (docs/http-api.md, rule H35).
    Ok(app.layer(CatchPanicLayer::custom(errors::panic_response)))
}

/// Resolves on Ctrl-C or SIGTERM. The server then stops accepting
/// connections and waits for the requests in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a handler there is no Ctrl-C to wait for.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    eprintln!("tally: shutting down; waiting for the requests in flight");
}

/// Turns an engine error met while serving into the answer for it.
impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError::from_engine(e)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A handler that panics; its message is what a client must never see.
    async fn boom() -> &'static str {
        panic!("SECRET-PANIC-MESSAGE")
    }

    /// Rules H35 and H12: a panic while answering, inside the very layers
    /// the server puts around its routes, is answered 500 `internal` in
    /// the native format, with neither the panic's message nor a trace; the
    /// server answers the next request. No request can make tally's own
    /// handlers panic, so the test adds a route that does.
    #[test]
    fn a_panic_is_a_500_without_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let options = ServeOptions {
            listen: "127.0.0.1:0".to_string(),
            token: None,
            no_auth: false,
            allow_import: false,
            max_body: 1 << 20,
            query_timeout: Duration::from_secs(10),
            max_queries: 1,
            cors_origin: None,
            lookback: Duration::from_secs(300),
        };
        let state = Arc::new(AppState {
            db: Db::open(dir.path()).unwrap(),
            options,
            queries: Arc::new(tokio::sync::Semaphore::new(1)),
            refreshing: Mutex::new(()),
            flights: Arc::default(),
        });
        let app = layered(routes().route("/boom", get(boom)), state).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let get_text = |path: &str| {
            let mut response = agent.get(format!("http://{addr}{path}")).call().unwrap();
            let mut body = String::new();
            response
                .body_mut()
                .as_reader()
                .read_to_string(&mut body)
                .unwrap();
            (response.status().as_u16(), body)
        };
        let (status, body) = get_text("/boom");
        assert_eq!(status, 500, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "error");
        assert_eq!(json["kind"], "internal");
        assert!(!body.contains("SECRET"), "{body}");
        assert!(!body.contains("mod.rs"), "{body}");
        let (status, body) = get_text("/api/metrics");
        assert_eq!(status, 200, "{body}");
    }
}
