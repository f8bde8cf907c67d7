//! `/api/v1/training` (train a land-cover model from the shipped tables and the field
//! verdicts, [`crate::jobs::training`]) and `POST /api/v1/models/{id}/activate`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath};
use super::{AppState, Items, Queued};
use crate::auth::{Principal, Role};
use crate::jobs::training::{
    batch_labels, batches_with_verdicts, AcceptedRequest, TrainingRequest, MAX_EPOCHS,
};
use crate::jobs::ModelInfo;
use crate::store::TrainingJobRecord;

const ROLES: [Role; 2] = [Role::Admin, Role::Researcher];

/// `POST /api/v1/training` → 202 `{id, status}`. 400 for an unknown task or batch or bad
/// epochs; 422 `no_samples` when neither the tables (off, or none configured) nor a verdict
/// of the chosen batches labels anything.
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    body: Result<ApiJson<TrainingRequest>, ApiError>,
) -> ApiResult<impl IntoResponse> {
    who.require(&ROLES)?;
    let ApiJson(request) = body?;
    let task: gengdi_models::Task = request
        .task
        .parse()
        .map_err(|_| ApiError::bad_request(format!("task: unknown task {:?}", request.task)))?;
    if !matches!(
        task,
        gengdi_models::Task::LandCover | gengdi_models::Task::CropType
    ) {
        return Err(ApiError::bad_request(format!(
            "task: {task} cannot be trained from verdicts; only landcover or croptype"
        )));
    }
    let epochs = request.epochs.unwrap_or(80);
    if !(1..=MAX_EPOCHS).contains(&epochs) {
        return Err(ApiError::bad_request(format!(
            "epochs: {epochs}: must be 1 to {MAX_EPOCHS}"
        )));
    }
    let store = state.store().as_ref();
    let batches = match request.batches {
        Some(ids) => {
            for &id in &ids {
                if store.batch(id).await?.is_none() {
                    return Err(ApiError::bad_request(format!("batches: no batch {id}"))
                        .with_details(serde_json::json!({"batch": id})));
                }
            }
            ids
        }
        None => batches_with_verdicts(store).await?,
    };
    let tables = request.tables.unwrap_or(true);
    let mut labelled = 0;
    for &b in &batches {
        labelled += batch_labels(store, b, false, task)
            .await?
            .labelled
            .values()
            .sum::<usize>();
    }
    if labelled == 0 && (!tables || state.jobs().training_tables().is_empty()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_samples",
            format!(
                "nothing to train on: no confirmed or false_positive patch of batches {batches:?} labels a {} class, and {}",
                match task { gengdi_models::Task::CropType => "crop-type", _ => "land-cover" },
                if tables { "no labelled tables are configured (training_tables)" } else { "tables is false" }
            ),
        ));
    }
    let accepted = AcceptedRequest {
        task: task.name().to_string(),
        batches,
        epochs,
        seed: request.seed,
        tables,
        fine_tune: request.fine_tune.unwrap_or(false),
    };
    let value = serde_json::to_value(&accepted).map_err(|e| ApiError::internal(e.to_string()))?;
    let job = store
        .create_training_job(value, epochs as u64, who.token_id)
        .await?;
    state.jobs().wake_training();
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/training/{}", job.id))],
        Json(Queued {
            id: job.id,
            status: job.status,
        }),
    ))
}

/// `GET /api/v1/training` → `{items}`.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<Json<Items<TrainingJobRecord>>> {
    who.require(&ROLES)?;
    let items = state.store().list_training_jobs().await?;
    Ok(Json(items.into()))
}

/// `GET /api/v1/training/{id}`: status, progress, and when done the new model with both
/// models' held-out metrics.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TrainingJobRecord>> {
    who.require(&ROLES)?;
    let job = state
        .store()
        .training_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no training job {id}")))?;
    Ok(Json(job))
}

/// `POST /api/v1/training/{id}/cancel`: a queued job is cancelled at once (200), a running
/// one stops before its next epoch (202; its model is not saved); a finished one is 409.
pub async fn cancel(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<impl IntoResponse> {
    use crate::store::TrainingCancel;
    who.require(&ROLES)?;
    match state.store().cancel_training_job(id).await? {
        TrainingCancel::Cancelled(j) => Ok((StatusCode::OK, Json(j))),
        TrainingCancel::Requested(j) => {
            state.jobs().cancel_running_training(id);
            Ok((StatusCode::ACCEPTED, Json(j)))
        }
        TrainingCancel::AlreadyFinished(j) => Err(ApiError::conflict(
            "job_finished",
            format!("training job {id} is already {}", j.status.name()),
        )),
        TrainingCancel::NotFound => Err(ApiError::not_found(format!("no training job {id}"))),
    }
}

/// `POST /api/v1/models/{id}/activate`: the model activated and the models the analyses run
/// now.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Activated {
    pub activated: ModelInfo,
    pub items: Vec<ModelInfo>,
}

/// `POST /api/v1/models/{id}/activate` (exact id) → `{activated, items}`: the model becomes
/// its task's active one in the data dir's registry, and batches that start from now on run
/// it (a running batch keeps its models).
pub async fn activate(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Activated>> {
    who.require(&ROLES)?;
    let activated = state
        .jobs()
        .activate(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no model {id:?} in the registry")))?;
    Ok(Json(Activated {
        activated,
        items: state.jobs().models(),
    }))
}
