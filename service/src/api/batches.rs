//! `/api/v1/batches`: submit an analysis (scenes × a farmland layer), follow and cancel it.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::upload::{discard, JsonOrUpload, Upload};
use super::AppState;
use crate::auth::{Principal, Role};
use crate::store::{
    BatchCreated, BatchOptions, BatchRecord, CancelOutcome, JobStatus, NewBatch, Progress,
};

const ROLES: [Role; 2] = [Role::Admin, Role::Centre];

/// The header that makes a submission safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `POST /api/v1/batches`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Scene files, directories or STAC JSON, under the import root.
    pub scenes: Vec<String>,
    /// A registered farmland layer's id.
    pub farmland: i64,
    /// A registered administrative-boundary layer's id: parcels whose attributes lack unit
    /// codes get those of the units they lie in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<i64>,
    /// Scenes of an earlier (baseline) period, under the import root: classified on the
    /// season's grid, they give each patch its class before and a before / after chip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<String>,
    /// Thresholds of the season rules to override (an object of `RulesConfig` fields; the
    /// others keep their defaults). Unknown fields and invalid values are 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<serde_json::Value>,
    pub name: Option<String>,
}

/// A batch as clients see it (scene paths relative to the import root).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BatchView {
    pub id: i64,
    pub name: Option<String>,
    pub farmland: i64,
    pub scenes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<serde_json::Value>,
    pub status: JobStatus,
    pub progress: ProgressView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub patches: Option<i64>,
    pub attempts: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// Progress with the time left, estimated from the tiles done since the job started.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProgressView {
    #[serde(flatten)]
    pub progress: Progress,
    /// Seconds left at the pace so far (running jobs with a tile done; else absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_s: Option<f64>,
}

fn eta_s(b: &BatchRecord) -> Option<f64> {
    let p = &b.progress;
    if b.status != JobStatus::Running || p.tiles_done == 0 || p.tiles_total < p.tiles_done {
        return None;
    }
    let started = chrono::DateTime::parse_from_rfc3339(b.started_at.as_deref()?).ok()?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as i64;
    let elapsed = (now_ms - started.timestamp_millis()).max(0) as f64 / 1000.0;
    let left = (p.tiles_total - p.tiles_done) as f64;
    Some((elapsed * left / p.tiles_done as f64 * 10.0).round() / 10.0)
}

fn view(state: &AppState, b: BatchRecord) -> BatchView {
    let root = state.import_root();
    let eta = eta_s(&b);
    let relative = |paths: &[String]| -> Vec<String> {
        paths
            .iter()
            .map(|s| root.relative(std::path::Path::new(s)))
            .collect()
    };
    BatchView {
        id: b.id,
        name: b.name,
        farmland: b.farmland,
        scenes: relative(&b.scenes),
        admin: b.options.admin,
        baseline: relative(&b.options.baseline),
        rules: b.options.rules,
        status: b.status,
        progress: ProgressView {
            eta_s: eta,
            progress: b.progress,
        },
        error: b.error,
        cancel_requested: b.cancel_requested,
        patches: b.patches,
        attempts: b.attempts,
        created_at: b.created_at,
        started_at: b.started_at,
        finished_at: b.finished_at,
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key: 1 to 200 visible ASCII characters")
        })?;
    Ok(Some(key.to_string()))
}

/// `POST /api/v1/batches` → 202 `{id, status}`; the same `Idempotency-Key` with the same
/// request gives the same batch again, with another request 409.
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    body: Result<JsonOrUpload<BatchRequest>, ApiError>,
) -> ApiResult<axum::response::Response> {
    let body = body?;
    if let Err(e) = who.require(&ROLES) {
        if let JsonOrUpload::Upload(u) = &body {
            discard(&state, u).await;
        }
        return Err(e);
    }
    match body {
        JsonOrUpload::Json(request) => submit(&state, &who, &headers, request, None)
            .await
            .map(|(response, _)| response),
        JsonOrUpload::Upload(u) => {
            let submitted = match upload_request(&u) {
                Ok(request) => submit(&state, &who, &headers, request, Some(&u)).await,
                Err(e) => Err(e),
            };
            // The scenes stay for the batch that reads them; a refused request or a replay
            // (the first upload's files serve it) leaves nothing behind.
            if !matches!(&submitted, Ok((_, false))) {
                discard(&state, &u).await;
            }
            submitted.map(|(response, _)| response)
        }
    }
}

/// The request an upload stands for: each scene in a `scenes` file part and each baseline
/// scene in a `baseline` one; `farmland` and `admin` (ids), `rules` (a JSON object) and
/// `name` as text fields.
fn upload_request(u: &Upload) -> Result<BatchRequest, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m);
    for key in u.fields.keys() {
        if !["farmland", "admin", "rules", "name"].contains(&key.as_str()) {
            return Err(invalid(format!(
                "unknown field `{key}`, expected one of `scenes`, `baseline` (files), `farmland`, `admin`, `rules`, `name`"
            )));
        }
    }
    if let Some((other, _)) = u
        .files
        .iter()
        .find(|(f, _)| f != "scenes" && f != "baseline")
    {
        return Err(invalid(format!(
            "unknown file part `{other}`: send scenes as `scenes`, baseline scenes as `baseline`"
        )));
    }
    let id = |field: &str| -> Result<Option<i64>, ApiError> {
        u.fields
            .get(field)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|e| invalid(format!("{field}: not a layer id ({e})")))
            })
            .transpose()
    };
    let farmland = id("farmland")?.ok_or_else(|| invalid("missing field `farmland`".into()))?;
    let rules = match u.fields.get("rules") {
        Some(r) => {
            Some(serde_json::from_str(r).map_err(|e| invalid(format!("rules: not JSON ({e})")))?)
        }
        None => None,
    };
    Ok(BatchRequest {
        scenes: u.files_named("scenes"),
        farmland,
        admin: id("admin")?,
        baseline: u.files_named("baseline"),
        rules,
        name: u.fields.get("name").cloned(),
    })
}

/// The rules a batch asks for, checked as the analysis will read them: an object of
/// `RulesConfig` fields (unknown ones refused) whose values pass its validation.
fn check_rules(rules: &serde_json::Value) -> ApiResult<()> {
    let bad = |m: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_rules", m)
            .with_details(serde_json::json!({ "rules": rules }))
    };
    if !rules.is_object() {
        return Err(bad("rules: an object of rule thresholds".into()));
    }
    let config: gengdi_inference::rules::RulesConfig =
        serde_json::from_value(rules.clone()).map_err(|e| bad(format!("rules: {e}")))?;
    config.validate().map_err(|e| bad(format!("rules: {e}")))
}

/// Queue `request`; the response and whether it was a replay.
async fn submit(
    state: &AppState,
    who: &Principal,
    headers: &HeaderMap,
    request: BatchRequest,
    upload: Option<&Upload>,
) -> ApiResult<(axum::response::Response, bool)> {
    let key = idempotency_key(headers)?;
    if request.scenes.is_empty() {
        return Err(ApiError::bad_request("scenes: name at least one scene"));
    }
    if let Some(rules) = &request.rules {
        check_rules(rules)?;
    }
    let mut resolved = Vec::with_capacity(request.scenes.len() + request.baseline.len());
    let mut remote = std::collections::HashSet::new();
    for s in request.scenes.iter().chain(&request.baseline) {
        // Object storage: an `s3://` or `https://` href under an allowed prefix is kept as
        // it is (the analysis reads it through GDAL, its pixel count checked on opening).
        match gengdi_tiling::vsi::resolve_remote(s, state.remote_prefixes()) {
            Ok(Some(_)) => {
                remote.insert(resolved.len());
                resolved.push(std::path::PathBuf::from(s));
            }
            Ok(None) => resolved.push(state.import_root().resolve(s)?),
            Err(e) => {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "remote_scene_not_allowed",
                    e.to_string(),
                )
                .with_details(serde_json::json!({ "scene": s })))
            }
        }
    }
    // What the files claim (pixels, unpacked bytes) is checked before any is decoded.
    let limits = *state.limits();
    let resolved = tokio::task::spawn_blocking(move || {
        for (i, p) in resolved.iter().enumerate() {
            if !remote.contains(&i) {
                crate::limits::check_input(p, &limits)?;
            }
        }
        Ok::<_, crate::error::ServiceError>(resolved)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the scene check stopped abnormally: {e}")))??;
    let mut scenes: Vec<String> = resolved.iter().map(|p| p.display().to_string()).collect();
    let baseline = scenes.split_off(request.scenes.len());
    if let Some(admin) = request.admin {
        if state.store().admin_layer(admin).await?.is_none() {
            return Err(
                ApiError::bad_request(format!("admin: no admin layer {admin}"))
                    .with_details(serde_json::json!({ "admin": admin })),
            );
        }
    }
    if state.store().farmland(request.farmland).await?.is_none() {
        return Err(ApiError::bad_request(format!(
            "farmland: no farmland layer {}",
            request.farmland
        ))
        .with_details(serde_json::json!({"farmland": request.farmland})));
    }
    let idempotency = match key {
        // An upload is the same request when its files and fields are (its folder differs).
        Some(k) => match upload {
            Some(u) => Some((k, u.digest.clone())),
            None => {
                let canonical =
                    serde_json::to_vec(&request).map_err(|e| ApiError::internal(e.to_string()))?;
                Some((k, hex::encode(Sha256::digest(&canonical))))
            }
        },
        None => None,
    };
    let created = state
        .store()
        .create_batch(NewBatch {
            name: request.name,
            farmland: request.farmland,
            scenes,
            options: BatchOptions {
                admin: request.admin,
                baseline,
                rules: request.rules,
            },
            created_by: who.token_id,
            idempotency,
        })
        .await?;
    let (batch, replayed) = match created {
        BatchCreated::New(b) => {
            state.jobs().wake();
            (b, false)
        }
        BatchCreated::Replayed(b) => (b, true),
        BatchCreated::KeyReused => {
            return Err(ApiError::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was sent before with another request",
            ))
        }
    };
    let location = format!("/api/v1/batches/{}", batch.id);
    let response = (
        StatusCode::ACCEPTED,
        [
            (header::LOCATION, location),
            (
                header::HeaderName::from_static("idempotent-replayed"),
                replayed.to_string(),
            ),
        ],
        Json(super::Queued {
            id: batch.id,
            status: batch.status,
        }),
    )
        .into_response();
    Ok((response, replayed))
}

/// `GET /api/v1/batches` → `{items}`.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<Json<super::Items<BatchView>>> {
    who.require(&ROLES)?;
    let items: Vec<BatchView> = state
        .store()
        .list_batches()
        .await?
        .into_iter()
        .map(|b| view(&state, b))
        .collect();
    Ok(Json(items.into()))
}

/// `GET /api/v1/batches/{id}`: status and progress.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<BatchView>> {
    who.require(&ROLES)?;
    let b = state
        .store()
        .batch(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no batch {id}")))?;
    Ok(Json(view(&state, b)))
}

/// `POST /api/v1/batches/{id}/cancel`: a queued job is cancelled at once (200), a running
/// one is asked to stop (202); a finished one is 409.
pub async fn cancel(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<impl IntoResponse> {
    who.require(&ROLES)?;
    match state.store().cancel_batch(id).await? {
        CancelOutcome::Cancelled(b) => Ok((StatusCode::OK, Json(view(&state, b)))),
        CancelOutcome::Requested(b) => {
            state.jobs().cancel_running(id);
            Ok((StatusCode::ACCEPTED, Json(view(&state, b))))
        }
        CancelOutcome::AlreadyFinished(b) => Err(ApiError::conflict(
            "job_finished",
            format!("batch {id} is already {}", b.status.name()),
        )),
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("no batch {id}"))),
    }
}
