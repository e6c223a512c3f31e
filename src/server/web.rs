//! The web page at the server's root (docs/http-api.md, rules H41–H43):
//! three hand-written files built into the binary with `include_str!`, so
//! the page works offline and with no build step, served with their
//! content types and a Content-Security-Policy that forbids every load
//! from another origin. The page itself only calls the native API
//! (`/api/query`, `/api/functions`, `/api/metrics`, `/api/accounts`); it
//! draws nothing: the chart is the server's SVG.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page's files, as `(path, content type, text)`.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("web/app.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_str!("web/app.css"),
    ),
];

/// Rule H42: the page and its script and style come from this server only;
/// no inline script, no framing, no form posted anywhere. `img-src data:`
/// lets the page name an empty icon, so the browser does not ask for
/// `/favicon.ico`.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// True for the paths of the page's own files: the only ones served
/// without a token (rule H42), since they hold no data and a browser
/// cannot send a bearer header when it opens a page.
pub(crate) fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|(p, _, _)| *p == path)
}

/// The paths to route to [`asset`].
pub(crate) fn asset_paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(p, _, _)| *p)
}

/// `GET /`, `/app.js`, `/app.css`: one of the page's files with its headers.
pub(crate) async fn asset(uri: axum::http::Uri) -> Response {
    let Some((_, content_type, text)) = ASSETS.iter().find(|(p, _, _)| *p == uri.path()) else {
        // Only the paths of `ASSETS` are routed here.
        return super::errors::not_found(uri).await;
    };
    let mut response = (StatusCode::OK, *text).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rule H42: the page loads nothing from elsewhere and has no inline
    /// script or style, which the policy would block.
    #[test]
    fn the_page_names_only_its_own_files() {
        for (path, _, text) in ASSETS {
            for remote in ["http://", "https://", "//cdn", "@import"] {
                // The SVG namespace is a name, not a load.
                let loads = text
                    .replace("http://www.w3.org/2000/svg", "")
                    .contains(remote);
                assert!(!loads, "{path} names {remote}");
            }
        }
        let html = ASSETS[0].2;
        assert!(html.contains("<script src=\"app.js\""));
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("style="), "inline style");
        assert!(!html.contains("<style"), "inline style");
        let handler = regex::Regex::new(r"\son[a-z]+\s*=").unwrap();
        assert!(!handler.is_match(html), "inline event handler");
    }
}
