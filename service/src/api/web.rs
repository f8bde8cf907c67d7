//! The inspectors' web page, served by `gengdi serve` itself: `GET /` is `index.html` and
//! `GET /web/{path}` every other file of `service/web/static/` (scripts, styles, the map
//! library and its images), all embedded in the binary at build time (see `build.rs`), so
//! the page works on a machine with no internet and nothing installed beside `gengdi`. The
//! page itself holds no data: it asks the API with the token the user signs in with.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The embedded file at `path` (relative to `web/static`).
pub fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .map(|i| ASSETS[i].1)
}

/// A file's media type, by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str, cache: &'static str) -> Response {
    match asset(path) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, cache),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        None => super::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no file {path:?} in the web page"),
        )
        .into_response(),
    }
}

/// `GET /`: the page.
pub async fn index() -> Response {
    serve("index.html", "no-cache")
}

/// `GET /web/{*path}`: one of its files.
pub async fn file(Path(path): Path<String>) -> Response {
    serve(&path, "no-cache")
}
