//! `GET /metrics`: Prometheus text format 0.0.4, without a token (like `/healthz`: a scraper
//! holds no bearer token, and the figures name no patch, place or person; keep the port
//! private, or filter `/metrics` at the proxy, where that matters).
//!
//! - `gengdi_jobs{state}` (gauge): jobs per state, from the store.
//! - `gengdi_tiles_done_total` (counter): tiles done, summed over every job's stored progress
//!   (a job queued again after a restart starts from 0, which a scraper sees as a reset).
//! - `gengdi_job_tiles_per_second{batch}` (gauge): per running job, tiles done over the
//!   seconds since it was claimed.
//! - `gengdi_http_request_duration_seconds{route, method, status}` (histogram): every request,
//!   timed by [`track`], labelled with the route *template* it matched
//!   (`/api/v1/changes/{id}`, never the raw URI; `unmatched` for no route) and the method
//!   (`other` for methods outside the standard ones).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use super::error::ApiResult;
use super::AppState;

/// The media type of `GET /metrics`: Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The histogram's upper bounds, in seconds.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Observations at or below each bound (cumulative when written).
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Request latencies by (route, method, status).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<(String, &'static str, u16), Histogram>>,
}

impl HttpMetrics {
    pub fn observe(&self, route: String, method: &'static str, status: u16, seconds: f64) {
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        let h = series.entry((route, method, status)).or_default();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.sum += seconds;
        h.count += 1;
    }

    fn write(&self, out: &mut String) {
        let series = match self.series.lock() {
            Ok(s) => s.clone(),
            Err(_) => return,
        };
        out.push_str("# HELP gengdi_http_request_duration_seconds HTTP request latency by route template, method and status.\n");
        out.push_str("# TYPE gengdi_http_request_duration_seconds histogram\n");
        for ((route, method, status), h) in &series {
            let labels = format!(
                "route=\"{}\",method=\"{method}\",status=\"{status}\"",
                escape(route)
            );
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "gengdi_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "gengdi_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "gengdi_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "gengdi_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The middleware timing every request (layered over the whole router, so the matched
/// route's template is in the request's extensions).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let started = Instant::now();
    let res = next.run(req).await;
    state.http_metrics().observe(
        route,
        method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let jobs = state.store().job_summary().await?;
    let mut out = String::new();
    out.push_str("# HELP gengdi_jobs Jobs per state.\n# TYPE gengdi_jobs gauge\n");
    for (status, n) in &jobs.counts {
        let _ = writeln!(out, "gengdi_jobs{{state=\"{}\"}} {n}", status.name());
    }
    out.push_str("# HELP gengdi_tiles_done_total Tiles done, summed over every job's progress.\n# TYPE gengdi_tiles_done_total counter\n");
    let _ = writeln!(out, "gengdi_tiles_done_total {}", jobs.tiles_done);
    out.push_str("# HELP gengdi_job_tiles_per_second Tiles per second of each running job since it started.\n# TYPE gengdi_job_tiles_per_second gauge\n");
    for j in &jobs.running {
        let rate = if j.elapsed_s > 0.0 {
            j.tiles_done as f64 / j.elapsed_s
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "gengdi_job_tiles_per_second{{batch=\"{}\"}} {rate}",
            j.batch
        );
    }
    state.http_metrics().write(&mut out);
    let mut res = (StatusCode::OK, out).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(res)
}
