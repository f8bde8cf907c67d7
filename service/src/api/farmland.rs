//! `/api/v1/farmland`: register and list farmland layers.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::upload::{discard, JsonOrUpload, Upload};
use super::AppState;
use crate::auth::{Principal, Role};
use crate::farmland::{import, FarmlandRequest};
use crate::store::FarmlandRecord;

const ROLES: [Role; 2] = [Role::Admin, Role::Centre];

/// Import a layer a request names (JSON) or uploads (multipart, read by `from_upload`) with
/// `import` on the blocking pool, for `roles`: the part farmland and admin-layer
/// registration share. An upload is removed whatever happens (the layer is copied into the
/// data dir when accepted).
pub(crate) async fn import_layer<R, N>(
    state: &AppState,
    who: &Principal,
    body: Result<JsonOrUpload<R>, ApiError>,
    roles: &[Role],
    from_upload: fn(&Upload) -> Result<R, ApiError>,
    import: fn(
        &crate::paths::ImportRoot,
        &std::path::Path,
        &R,
        i64,
        &crate::limits::Limits,
    ) -> crate::error::Result<N>,
) -> ApiResult<N>
where
    R: Send + 'static,
    N: Send + 'static,
{
    let body = body?;
    if let Err(e) = who.require(roles) {
        if let JsonOrUpload::Upload(u) = &body {
            discard(state, u).await;
        }
        return Err(e);
    }
    let (request, upload) = match body {
        JsonOrUpload::Json(r) => (r, None),
        JsonOrUpload::Upload(u) => match from_upload(&u) {
            Ok(r) => (r, Some(u)),
            Err(e) => {
                discard(state, &u).await;
                return Err(e);
            }
        },
    };
    let (root, data_dir) = (state.import_root().clone(), state.data_dir().to_path_buf());
    let limits = *state.limits();
    let token = who.token_id;
    let imported =
        tokio::task::spawn_blocking(move || import(&root, &data_dir, &request, token, &limits))
            .await;
    if let Some(u) = &upload {
        discard(state, u).await;
    }
    Ok(imported
        .map_err(|e| ApiError::internal(format!("the import stopped abnormally: {e}")))??)
}

/// `POST /api/v1/farmland` → 201 with the stored layer's summary.
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    body: Result<JsonOrUpload<FarmlandRequest>, ApiError>,
) -> ApiResult<impl IntoResponse> {
    let (new, parcels) = import_layer(&state, &who, body, &ROLES, upload_request, import).await?;
    let rec = state.store().insert_farmland(new).await?;
    // Without them the map reads the layer again when its parcels are first asked for.
    if let Err(e) = state.store().store_parcels(rec.id, parcels).await {
        tracing::warn!(
            "farmland {}: the parcels for the map are not stored: {e}",
            rec.id
        );
    }
    let location = format!("/api/v1/farmland/{}", rec.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(rec),
    ))
}

/// The request an upload stands for: the layer in the `file` part; `layer`, `name` and
/// `mapping` (a JSON object, role → field) as text fields.
fn upload_request(u: &Upload) -> Result<FarmlandRequest, ApiError> {
    let files = u.files_named("file");
    let [path] = files.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "upload the layer as one `file` part ({} given)",
            files.len()
        )));
    };
    for key in u.fields.keys() {
        if !["layer", "name", "mapping"].contains(&key.as_str()) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!(
                    "unknown field `{key}`, expected one of `file`, `layer`, `name`, `mapping`"
                ),
            ));
        }
    }
    let mapping = match u.fields.get("mapping") {
        Some(m) => Some(serde_json::from_str(m).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("mapping: not a JSON object of role to field ({e})"),
            )
        })?),
        None => None,
    };
    let file_name = path.rsplit('/').next().unwrap_or(path).to_string();
    Ok(FarmlandRequest {
        path: path.clone(),
        layer: u.fields.get("layer").cloned(),
        mapping,
        name: Some(u.fields.get("name").cloned().unwrap_or(file_name)),
    })
}

/// `GET /api/v1/farmland` → `{items}`.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<Json<super::Items<FarmlandRecord>>> {
    who.require(&ROLES)?;
    let items = state.store().list_farmland().await?;
    Ok(Json(items.into()))
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
