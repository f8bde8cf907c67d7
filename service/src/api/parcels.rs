//! `GET /api/v1/batches/{id}/parcels?bbox=…`: the farmland parcels of a batch's layer in a
//! box, as GeoJSON (WGS 84), for the map's parcel layer.
//!
//! - **Where from.** Parcels are stored with the layer when it is registered (the same
//!   reader as the analysis, reprojected to WGS 84; attributes TBBH, DLBM, PBF, location
//!   code; the area on an equal-area projection, in mu). A layer registered before parcels
//!   were stored is read again when the service starts (in the background) or on the first
//!   request, whichever comes first.
//! - **Which.** Those whose bounding box meets `bbox`, by their order in the layer, at
//!   most `limit` (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]); `total` says how many
//!   meet the box and `truncated` whether some were left out (zoom in).
//! - **Who.** The roles that read change lists; an inspector only for a batch holding a
//!   patch in their region, and only the parcels whose location code lies in it.

use axum::extract::State;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::changes::parse_bbox;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery};
use super::tiles::visible_batch;
use super::AppState;
use crate::auth::{Principal, Role};
use crate::store::ParcelAttributes;

const READERS: [Role; 4] = [Role::Admin, Role::Centre, Role::Inspector, Role::Researcher];
/// Parcels returned when the request does not say.
pub const DEFAULT_LIMIT: usize = 2000;
/// Most parcels one request returns.
pub const MAX_LIMIT: usize = 10_000;

/// `GET /api/v1/batches/{id}/parcels` query.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParcelQuery {
    /// `min_lon,min_lat,max_lon,max_lat` (WGS 84).
    pub bbox: String,
    /// Most parcels to return (1 to 10000; default 2000).
    pub limit: Option<usize>,
}

/// A GeoJSON FeatureCollection of parcels.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ParcelCollection {
    /// `FeatureCollection`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub features: Vec<ParcelFeature>,
    /// The farmland layer the parcels are from.
    pub farmland: i64,
    /// Parcels meeting the box.
    pub total: i64,
    /// Whether `total` is more than the features returned.
    pub truncated: bool,
}

/// A GeoJSON Feature: a parcel.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ParcelFeature {
    /// `Feature`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The parcel's row in the layer.
    pub id: i64,
    /// A MultiPolygon.
    pub geometry: serde_json::Value,
    pub properties: ParcelAttributes,
}

/// `GET /api/v1/batches/{id}/parcels`.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    query: Result<ApiQuery<ParcelQuery>, ApiError>,
) -> ApiResult<Json<ParcelCollection>> {
    who.require(&READERS)?;
    let ApiQuery(q) = query?;
    let bbox = parse_bbox(&q.bbox)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit}: 1 to {MAX_LIMIT}"
        )));
    }
    let batch = visible_batch(&state, &who, id).await?;
    let farmland = batch.farmland;
    if !state.store().parcels_stored(farmland).await? {
        let record = state.store().farmland(farmland).await?.ok_or_else(|| {
            ApiError::internal(format!("batch {id}: no farmland layer {farmland}"))
        })?;
        crate::farmland::ensure_parcels(state.store(), record).await?;
    }
    let page = state
        .store()
        .parcels_in(farmland, &who.scope(), bbox, limit)
        .await?;
    let features: Vec<ParcelFeature> = page
        .items
        .into_iter()
        .map(|p| ParcelFeature {
            kind: "Feature",
            id: p.id,
            geometry: p.geometry,
            properties: p.attributes,
        })
        .collect();
    Ok(Json(ParcelCollection {
        kind: "FeatureCollection",
        truncated: page.total > features.len() as i64,
        features,
        farmland,
        total: page.total,
    }))
}
