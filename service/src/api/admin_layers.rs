//! `/api/v1/admin-layers`: register and list administrative-boundary layers, which batches
//! name (`admin`) to give parcels their county / township / village / group codes.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::upload::{JsonOrUpload, Upload};
use super::AppState;
use crate::admin::{import, AdminLayerRequest};
use crate::auth::{Principal, Role};
use crate::store::AdminLayerRecord;

const ROLES: [Role; 2] = [Role::Admin, Role::Centre];

/// `POST /api/v1/admin-layers` → 201 with the stored layer's summary.
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    body: Result<JsonOrUpload<AdminLayerRequest>, ApiError>,
) -> ApiResult<impl IntoResponse> {
    let new =
        super::farmland::import_layer(&state, &who, body, &ROLES, upload_request, import).await?;
    let rec = state.store().insert_admin_layer(new).await?;
    let location = format!("/api/v1/admin-layers/{}", rec.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(rec),
    ))
}

/// The request an upload stands for: the layer in the `file` part; `name` and `mapping` (a
/// JSON object, role → field) as text fields.
fn upload_request(u: &Upload) -> Result<AdminLayerRequest, ApiError> {
    let files = u.files_named("file");
    let [path] = files.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "upload the layer as one `file` part ({} given)",
            files.len()
        )));
    };
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m);
    for key in u.fields.keys() {
        if !["name", "mapping"].contains(&key.as_str()) {
            return Err(invalid(format!(
                "unknown field `{key}`, expected one of `file`, `name`, `mapping`"
            )));
        }
    }
    let mapping =
        match u.fields.get("mapping") {
            Some(m) => Some(serde_json::from_str(m).map_err(|e| {
                invalid(format!("mapping: not a JSON object of role to field ({e})"))
            })?),
            None => None,
        };
    let file_name = path.rsplit('/').next().unwrap_or(path).to_string();
    Ok(AdminLayerRequest {
        path: path.clone(),
        mapping,
        name: Some(u.fields.get("name").cloned().unwrap_or(file_name)),
    })
}

/// `GET /api/v1/admin-layers` → `{items}`.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<Json<super::Items<AdminLayerRecord>>> {
    who.require(&ROLES)?;
    let items = state.store().list_admin_layers().await?;
    Ok(Json(items.into()))
}

/// `GET /api/v1/admin-layers/{id}`.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<AdminLayerRecord>> {
    who.require(&ROLES)?;
    state
        .store()
        .admin_layer(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no admin layer {id}")))
}
