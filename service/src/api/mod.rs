//! The HTTP API: [`app`] builds the router over an [`AppState`], so tests drive it
//! in-process and `gengdi serve` binds it to a port.
//!
//! | endpoint | roles |
//! |---|---|
//! | `GET /healthz` | no token |
//! | `GET /`, `GET /web/{path}` (the inspectors' web page, embedded: [`web`]) | no token (the page asks for one) |
//! | `GET /api/v1/me` (`{name, role, region}` of the token) | every role |
//! | `GET /tiles/{batch}/{date}/{style}/{z}/{x}/{y}.png` (Web Mercator tiles of a batch's date: true or false colour, or its land-cover map; `GET /tiles/{batch}/landcover.json` its classes: [`tiles`]) | admin, centre, researcher; inspector for batches with a patch in their region |
//! | `GET /api/v1/batches/{id}/parcels?bbox=` (the farmland parcels of a box as GeoJSON: [`parcels`]) | admin, centre, researcher; inspector for batches with a patch in their region, the parcels coded in it |
//! | `GET /openapi.json` (OpenAPI 3.1 with the bodies' JSON schemas, written from the route table: [`openapi`]) | no token |
//! | `GET /metrics` (Prometheus text: jobs, tiles, request latency per route template: [`metrics`]) | no token |
//! | `POST/GET /api/v1/farmland`, `GET /api/v1/farmland/{id}` (POST: JSON naming a file, or a multipart upload: [`upload`]) | admin, centre |
//! | `POST/GET /api/v1/admin-layers`, `GET /api/v1/admin-layers/{id}` (administrative-boundary layers: [`crate::admin`]; POST: JSON naming a file, or a multipart upload) | admin, centre |
//! | `POST/GET /api/v1/batches`, `GET /api/v1/batches/{id}`, `POST /api/v1/batches/{id}/cancel` (POST: JSON `{scenes, farmland, admin?, baseline?, rules?, name?}` or a multipart upload of the scenes) | admin, centre |
//! | `GET /api/v1/changes` (`format=geojson\|csv\|gpkg`: the whole selection as a file, [`export`]), `GET /api/v1/changes/{id}`, `GET /api/v1/changes/{id}/verdicts` | admin, centre, researcher; inspector within their region |
//! | `GET /api/v1/changes/{id}/chips/{date}.png` (true-colour PNG of the patch on one date of its batch, outlined: [`chips`]) | admin, centre, researcher; inspector within their region |
//! | `POST /api/v1/changes/{id}/verdicts` | admin; inspector within their region |
//! | `GET /api/v1/models` (the models the analyses run; with the data dir's registry every model in it, `active` marking those run), `GET /api/v1/models/{id}` (one's model card) | admin, centre, researcher |
//! | `POST /api/v1/models/{id}/activate`, `POST/GET /api/v1/training`, `GET /api/v1/training/{id}`, `POST /api/v1/training/{id}/cancel` (train from tables and verdicts: [`training`], [`crate::jobs::training`]) | admin, researcher |
//! | `GET /api/v1/stats?level=&region=&batch=&from=&to=` (per unit, in/out balance, targets: [`stats`]) | admin, centre, researcher; inspector within their region (no targets) |
//!
//! An inspector sees only patches whose location code starts with their region's code: a
//! patch elsewhere is 404, as if it did not exist.

pub mod admin_layers;
pub mod batches;
pub mod changes;
pub mod chips;
pub mod error;
pub mod export;
pub mod extract;
pub mod farmland;
pub mod metrics;
pub mod openapi;
pub mod parcels;
pub mod stats;
pub mod tiles;
pub mod training;
pub mod upload;
pub mod web;

use axum::extract::DefaultBodyLimit;
use axum::{Json, Router};
use schemars::JsonSchema;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::trace::TraceLayer;

use crate::config::ServiceConfig;
use crate::error::Result;
use crate::jobs::Jobs;
use crate::paths::ImportRoot;
use crate::store::Store;
use error::ApiError;

/// A list: `{items}`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct Items<T> {
    pub items: Vec<T>,
}

impl<T> From<Vec<T>> for Items<T> {
    fn from(items: Vec<T>) -> Items<T> {
        Items { items }
    }
}

/// A job accepted (202): `{id, status}`; `Location` names where to follow it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Queued {
    pub id: i64,
    pub status: crate::store::JobStatus,
}

/// `GET /healthz`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// The service's version.
    pub version: &'static str,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    jobs: Arc<Jobs>,
    import_root: ImportRoot,
    data_dir: PathBuf,
    body_limit: usize,
    upload_limit: usize,
    limits: crate::limits::Limits,
    /// Remote scene hrefs a batch may name (the import root's equivalent for object storage).
    remote_prefixes: Vec<String>,
    rate: RateLimiter,
    timeout: std::time::Duration,
    /// (cropland, PBF) targets in mu.
    targets: (f64, f64),
    http_metrics: metrics::HttpMetrics,
}

/// Requests per token: a token bucket each, refilled at `per_s` up to `burst`.
struct RateLimiter {
    per_s: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<i64, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    /// Take one request from `token`'s bucket; `Err(seconds to wait)` when it is empty.
    fn take(&self, token: i64) -> Result<(), f64> {
        if self.per_s <= 0.0 {
            return Ok(());
        }
        let now = std::time::Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (level, at) = buckets.entry(token).or_insert((self.burst, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * self.per_s).min(self.burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *level) / self.per_s)
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("import_root", &self.0.import_root)
            .field("data_dir", &self.0.data_dir)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for `config` (the import root is created if missing).
    pub fn new(config: &ServiceConfig, store: Arc<dyn Store>, jobs: Arc<Jobs>) -> Result<AppState> {
        Ok(AppState(Arc::new(Inner {
            store,
            jobs,
            import_root: ImportRoot::new(&config.import_root)?,
            data_dir: config.data_dir.clone(),
            body_limit: config.body_limit,
            upload_limit: config.upload_limit,
            limits: config.limits(),
            remote_prefixes: config.remote_prefixes.clone(),
            rate: RateLimiter {
                per_s: config.rate_limit,
                burst: config.rate_burst,
                buckets: Default::default(),
            },
            timeout: std::time::Duration::from_secs_f64(config.request_timeout_s),
            targets: (config.cropland_target_mu, config.pbf_target_mu),
            http_metrics: metrics::HttpMetrics::default(),
        })))
    }

    /// Largest JSON request body, in bytes.
    pub fn body_limit(&self) -> usize {
        self.0.body_limit
    }

    /// Largest multipart upload (all its files), in bytes.
    pub fn upload_limit(&self) -> usize {
        self.0.upload_limit
    }

    /// The limits on files requests name.
    pub fn limits(&self) -> &crate::limits::Limits {
        &self.0.limits
    }

    /// Remote scene hrefs (`s3://…`, `https://…`) a batch may name: those under these.
    pub fn remote_prefixes(&self) -> &[String] {
        &self.0.remote_prefixes
    }

    /// Count a request of `token` against its rate; 429 when it is over.
    pub fn take_rate(&self, token: i64) -> Result<(), ApiError> {
        self.0.rate.take(token).map_err(|wait| {
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "more than {} requests per second with this token; retry in {:.2} s",
                    self.0.rate.per_s, wait
                ),
            )
            .with_details(serde_json::json!({"retry_after_s": wait}))
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    pub fn jobs(&self) -> &Arc<Jobs> {
        &self.0.jobs
    }

    pub fn import_root(&self) -> &ImportRoot {
        &self.0.import_root
    }

    pub fn data_dir(&self) -> &Path {
        &self.0.data_dir
    }

    /// Request latencies, for `/metrics`.
    pub fn http_metrics(&self) -> &metrics::HttpMetrics {
        &self.0.http_metrics
    }

    /// The (cropland, PBF) targets, in mu.
    pub fn targets(&self) -> (f64, f64) {
        self.0.targets
    }
}

/// The router: every route of [`openapi::routes`] (the table `/openapi.json` is written
/// from), JSON errors for unknown routes and methods, a body limit, request metrics and
/// request tracing.
pub fn app(state: AppState) -> Router {
    let limit = state.0.body_limit;
    let timeout = state.0.timeout;
    let mut router = Router::new();
    // Routes of one path with several methods merge into one method router.
    for r in openapi::routes() {
        router = router.route(&openapi::router_path(r.path), r.handler);
    }
    // The web page (not part of the API document).
    router = router
        .route("/", axum::routing::get(web::index))
        .route("/web/{*path}", axum::routing::get(web::file));
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(timeout, time_limit))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Answer 503 `timeout` (JSON) for a request still running after `limit`.
pub async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s (request_timeout_s)",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// Who a token is, as `GET /api/v1/me` answers.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Me {
    pub name: String,
    pub role: crate::auth::Role,
    /// The administrative code an inspector is scoped to.
    pub region: Option<String>,
}

/// `GET /api/v1/me`: who the token is (`{name, role, region}`), for a client to show and to
/// decide what to offer.
async fn me(who: crate::auth::Principal) -> Json<Me> {
    Json(Me {
        name: who.name,
        role: who.role,
        region: who.region,
    })
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /api/v1/models` → `{items: [{task, id}]}`.
async fn models(
    axum::extract::State(state): axum::extract::State<AppState>,
    who: crate::auth::Principal,
) -> Result<Json<Items<crate::jobs::ModelInfo>>, ApiError> {
    use crate::auth::Role;
    who.require(&[Role::Admin, Role::Centre, Role::Researcher])?;
    // Models trained or activated by another server of a shared store are listed too.
    state.jobs().sync_models_or_warn("listing models").await;
    Ok(Json(state.jobs().models().into()))
}

/// `GET /api/v1/models/{id}` → the model card (as the registry's `card.json`) of a model
/// the analyses run, by its exact id; any other id is 404.
async fn model(
    axum::extract::State(state): axum::extract::State<AppState>,
    who: crate::auth::Principal,
    extract::ApiPath(id): extract::ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::auth::Role;
    who.require(&[Role::Admin, Role::Centre, Role::Researcher])?;
    if let Err(e) = state.jobs().ensure_models(std::slice::from_ref(&id)).await {
        tracing::warn!("models: cannot look for {id} in the store: {e}");
    }
    state.jobs().model_card(&id).map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no model {id:?} among the models the analyses run"))
    })
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}
