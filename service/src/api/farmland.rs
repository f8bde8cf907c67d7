//! `/api/v1/farmland`: register and list farmland layers.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath};
use super::AppState;
use crate::auth::{Principal, Role};
use crate::farmland::{import, FarmlandRequest};
use crate::store::FarmlandRecord;

const ROLES: [Role; 2] = [Role::Admin, Role::Centre];

/// `POST /api/v1/farmland` → 201 with the stored layer's summary.
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    body: Result<ApiJson<FarmlandRequest>, ApiError>,
) -> ApiResult<impl IntoResponse> {
    who.require(&ROLES)?;
    let ApiJson(request) = body?;
    let (root, data_dir) = (state.import_root().clone(), state.data_dir().to_path_buf());
    let limits = *state.limits();
    let new = tokio::task::spawn_blocking(move || {
        import(&root, &data_dir, &request, who.token_id, &limits)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the import stopped abnormally: {e}")))??;
    let rec = state.store().insert_farmland(new).await?;
    let location = format!("/api/v1/farmland/{}", rec.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(rec),
    ))
}

/// `GET /api/v1/farmland` → `{items}`.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<Json<serde_json::Value>> {
    who.require(&ROLES)?;
    let items = state.store().list_farmland().await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

/// `GET /api/v1/farmland/{id}`.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<FarmlandRecord>> {
    who.require(&ROLES)?;
    state
        .store()
        .farmland(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no farmland layer {id}")))
}
