//! `/api/v1/changes`: suspected-change patches, scoped to the caller's region, and their
//! field verdicts.
//!
//! The list pages by keyset: `sort` (`id`, the default, `-id`, `area_mu`, `-area_mu`,
//! `confidence`, `-confidence`; value sorts break ties by ascending id) orders it, and
//! `next_cursor` is the position of a page's last patch in that order
//! ([`crate::store::ChangeCursor::encode`]: the id in decimal for `id`; for the others the
//! sort's name, the exact value for value sorts, and the id). A cursor is only good with the
//! sort that wrote it: another, or one that does not parse, is 400 `bad_cursor`; an unknown
//! sort is 400 `bad_request`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::export;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::AppState;
use crate::auth::{check_region_code, Principal, Role};
use crate::store::{
    ChangeCursor, ChangeFilter, ChangeRecord, ChangeSort, NewVerdict, PatchStatus, Verdict,
    VerdictRecord,
};

const READERS: [Role; 4] = [Role::Admin, Role::Centre, Role::Inspector, Role::Researcher];
const VERIFIERS: [Role; 2] = [Role::Admin, Role::Inspector];

/// Largest page.
pub const MAX_LIMIT: u32 = 1000;
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;

/// `GET /api/v1/changes` query.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeQuery {
    pub batch: Option<i64>,
    pub kind: Option<String>,
    pub status: Option<String>,
    /// Administrative code prefix.
    pub region: Option<String>,
    /// `min_lon,min_lat,max_lon,max_lat` (WGS 84).
    pub bbox: Option<String>,
    pub min_mu: Option<f64>,
    /// Only patches on permanent basic farmland (`true`) or off it (`false`).
    pub pbf: Option<bool>,
    /// Patches stored (by the analysis of their batch) on or after / on or before this day,
    /// `YYYY-MM-DD`.
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<u32>,
    /// The order: `id` (default), `-id`, `area_mu`, `-area_mu`, `confidence`, `-confidence`
    /// (`-`: descending); the value sorts break ties by ascending id.
    pub sort: Option<String>,
    /// `next_cursor` of the previous page (under the same `sort`).
    pub cursor: Option<String>,
    /// `geojson`, `csv` or `gpkg`: the whole selection as a file ([`super::export`]).
    #[schemars(description = "`geojson`, `csv` or `gpkg`: the whole selection as a file")]
    pub format: Option<String>,
}

/// A page of `GET /api/v1/changes`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ChangeList {
    pub items: Vec<ChangeRecord>,
    /// Pass as `cursor` (with the same `sort`) for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Patches of the whole selection, whatever the cursor.
    pub total: i64,
}

/// `GET /api/v1/changes/{id}`: the patch, its geometry filled, and its verdicts.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ChangeDetail {
    #[serde(flatten)]
    pub change: ChangeRecord,
    /// Oldest first.
    pub verdicts: Vec<VerdictRecord>,
}

/// `POST /api/v1/changes/{id}/verdicts` (201): the patch, its new status, the verdict stored.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct VerdictRecorded {
    pub patch: i64,
    pub status: PatchStatus,
    pub verdict: VerdictRecord,
}

fn parse_bbox(s: &str) -> ApiResult<[f64; 4]> {
    let bad =
        || ApiError::bad_request("bbox: min_lon,min_lat,max_lon,max_lat (four numbers, min ≤ max)");
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    match v.as_slice() {
        &[x0, y0, x1, y1] if v.iter().all(|x| x.is_finite()) && x0 <= x1 && y0 <= y1 => {
            Ok([x0, y0, x1, y1])
        }
        _ => Err(bad()),
    }
}

fn filter(q: ChangeQuery) -> ApiResult<ChangeFilter> {
    let status = match &q.status {
        Some(s) => Some(PatchStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status {s:?}: one of open, confirmed, false_positive, rectified"
            ))
        })?),
        None => None,
    };
    if let Some(r) = &q.region {
        check_region_code(r).map_err(ApiError::from)?;
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit}: 1 to {MAX_LIMIT}"
        )));
    }
    if q.min_mu.is_some_and(|m| !m.is_finite()) {
        return Err(ApiError::bad_request("min_mu: a finite number"));
    }
    let day = |what: &str, v: &Option<String>| -> ApiResult<Option<String>> {
        match v {
            Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map(|d| Some(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| ApiError::bad_request(format!("{what} {d:?}: a day, YYYY-MM-DD"))),
            None => Ok(None),
        }
    };
    let (from, to) = (day("from", &q.from)?, day("to", &q.to)?);
    let sort = match &q.sort {
        Some(s) => ChangeSort::parse(s).ok_or_else(|| {
            let names: Vec<&str> = ChangeSort::ALL.iter().map(|v| v.name()).collect();
            ApiError::bad_request(format!("sort {s:?}: one of {}", names.join(", ")))
        })?,
        None => ChangeSort::default(),
    };
    let after = match &q.cursor {
        Some(c) => Some(ChangeCursor::parse(c, sort).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                format!(
                    "cursor: pass next_cursor of the previous page, with the same sort ({})",
                    sort.name()
                ),
            )
        })?),
        None => None,
    };
    Ok(ChangeFilter {
        batch: q.batch,
        kind: q.kind,
        status,
        region: q.region,
        bbox: q.bbox.as_deref().map(parse_bbox).transpose()?,
        min_mu: q.min_mu,
        pbf: q.pbf,
        from,
        to,
        limit,
        sort,
        after,
        geometry: false,
    })
}

/// `GET /api/v1/changes` → `{items, next_cursor, total}` (ordered by `sort`, by default by
/// ascending id; `next_cursor` is null on the last page; `total` counts the whole selection,
/// whatever the cursor); with `format`, the whole selection as a file, in `sort` order
/// ([`super::export`]).
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    query: Result<ApiQuery<ChangeQuery>, ApiError>,
) -> ApiResult<Response> {
    who.require(&READERS)?;
    let ApiQuery(mut q) = query?;
    if let Some(format) = q.format.take() {
        let format = export::Format::parse(&format)?;
        if q.limit.is_some() || q.cursor.is_some() {
            return Err(ApiError::bad_request(
                "limit and cursor page the list; an export (format) holds the whole selection",
            ));
        }
        let records = export::collect(&state, &who.scope(), filter(q)?).await?;
        return export::respond(&state, format, records).await;
    }
    let f = filter(q)?;
    let page = state.store().list_changes(&who.scope(), &f).await?;
    Ok(Json(ChangeList {
        items: page.items,
        next_cursor: page.next_after.map(|a| a.encode(f.sort)),
        total: page.total,
    })
    .into_response())
}

/// `GET /api/v1/changes/{id}`: the patch with its geometry (GeoJSON, WGS 84) and verdicts.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ChangeDetail>> {
    who.require(&READERS)?;
    let scope = who.scope();
    let change = state
        .store()
        .change(&scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no change {id}")))?;
    let verdicts = state.store().verdicts(&scope, id).await?;
    Ok(Json(ChangeDetail { change, verdicts }))
}

/// `POST /api/v1/changes/{id}/verdicts`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerdictRequest {
    pub verdict: Verdict,
    #[serde(default)]
    pub note: String,
}

/// Largest note, in characters.
pub const MAX_NOTE: usize = 4000;

/// `POST /api/v1/changes/{id}/verdicts` → 201 `{patch, status, verdict}`: the verdict is
/// appended to the audit table and becomes the patch's status.
pub async fn verdict(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    body: Result<ApiJson<VerdictRequest>, ApiError>,
) -> ApiResult<impl IntoResponse> {
    who.require(&VERIFIERS)?;
    let ApiJson(req) = body?;
    if req.note.chars().count() > MAX_NOTE {
        return Err(ApiError::bad_request(format!(
            "note: at most {MAX_NOTE} characters"
        )));
    }
    let recorded = state
        .store()
        .record_verdict(
            &who.scope(),
            id,
            NewVerdict {
                verdict: req.verdict,
                note: req.note,
                token_id: who.token_id,
                actor: who.name.clone(),
                role: who.role,
            },
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no change {id}")))?;
    let (patch, v) = recorded;
    Ok((
        StatusCode::CREATED,
        Json(VerdictRecorded {
            patch: patch.id,
            status: patch.status,
            verdict: v,
        }),
    ))
}

/// `GET /api/v1/changes/{id}/verdicts` → `{items}`, oldest first.
pub async fn verdicts(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<super::Items<VerdictRecord>>> {
    who.require(&READERS)?;
    let scope = who.scope();
    if state.store().change(&scope, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no change {id}")));
    }
    let items = state.store().verdicts(&scope, id).await?;
    Ok(Json(items.into()))
}
