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
use super::extract::{ApiPath, ApiQuery};
use super::upload::{discard, JsonOrUpload, Upload};
use super::AppState;
use crate::auth::{check_region_code, Principal, Role};
use crate::store::{
    ChangeCursor, ChangeFilter, ChangeRecord, ChangeSort, NewPhoto, NewVerdict, PatchStatus,
    Verdict, VerdictRecord,
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

pub(crate) fn parse_bbox(s: &str) -> ApiResult<[f64; 4]> {
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
    /// The land-cover class the inspector found on the ground: `annual_crop`, `orchard`,
    /// `tree`, `grass`, `bare`, `water` or `built`; empty or absent: not recorded. With
    /// `confirmed` or `false_positive` only (a rectified patch is cropland again).
    #[serde(default)]
    #[schemars(
        description = "The land-cover class the inspector found on the ground (annual_crop, orchard, tree, grass, bare, water, built), with confirmed or false_positive; empty or absent: not recorded"
    )]
    pub class_found: Option<String>,
}

/// The land-cover class names `class_found` takes ([`gengdi_models::LandCoverClass`]).
pub fn class_found_names() -> Vec<&'static str> {
    gengdi_models::LandCoverClass::ALL
        .iter()
        .map(|c| c.name())
        .collect()
}

/// A verdict's `class_found` as stored: a land-cover class name (surrounding blanks
/// dropped), or empty when not recorded. Another name, or a class with `rectified`, is 400
/// `invalid_class_found`, its details naming the field, the value and what is allowed.
pub fn check_class_found(verdict: Verdict, class_found: Option<&str>) -> ApiResult<String> {
    let value = class_found.unwrap_or_default();
    let name = value.trim();
    if name.is_empty() {
        return Ok(String::new());
    }
    let allowed = class_found_names();
    let bad = |message: String, details: serde_json::Value| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_class_found", message).with_details(details)
    };
    if !allowed.contains(&name) {
        return Err(bad(
            format!(
                "class_found {value:?}: not a land-cover class; one of {} (or empty: not recorded)",
                allowed.join(", ")
            ),
            serde_json::json!({"field": "class_found", "value": value, "allowed": allowed}),
        ));
    }
    if verdict == Verdict::Rectified {
        return Err(bad(
            format!(
                "class_found {value:?} with verdict rectified: a rectified patch was restored to cropland; class_found records what a confirmed or false_positive verdict found on the ground"
            ),
            serde_json::json!({"field": "class_found", "value": value, "verdict": "rectified", "allowed_with": ["confirmed", "false_positive"]}),
        ));
    }
    Ok(name.to_string())
}

/// Largest note, in characters.
pub const MAX_NOTE: usize = 4000;

/// Most photos with one verdict.
pub const MAX_PHOTOS: usize = 10;
/// Largest photo, in bytes.
pub const MAX_PHOTO_BYTES: u64 = 25 << 20;

/// The request a multipart verdict stands for: `verdict`, `note`, `class_found`, and when and
/// where its photos were taken (`taken_at`, RFC 3339; `lon`, `lat`, WGS 84) as text fields;
/// each photo (JPEG or PNG) in a `photos` file part.
fn upload_verdict(u: &Upload) -> ApiResult<(VerdictRequest, PhotoMeta)> {
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m);
    for key in u.fields.keys() {
        if !["verdict", "note", "class_found", "taken_at", "lon", "lat"].contains(&key.as_str()) {
            return Err(invalid(format!(
                "unknown field `{key}`, expected one of `verdict`, `note`, `class_found`, `taken_at`, `lon`, `lat`, `photos` (files)"
            )));
        }
    }
    if let Some((other, _)) = u.files.iter().find(|(f, _)| f != "photos") {
        return Err(invalid(format!(
            "unknown file part `{other}`: send photos as `photos`"
        )));
    }
    let verdict: Verdict = serde_json::from_value(serde_json::Value::String(
        u.fields
            .get("verdict")
            .cloned()
            .ok_or_else(|| invalid("missing field `verdict`".into()))?,
    ))
    .map_err(|e| invalid(format!("verdict: {e}")))?;
    let number = |k: &str, range: std::ops::RangeInclusive<f64>| -> ApiResult<Option<f64>> {
        u.fields
            .get(k)
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| range.contains(x))
                    .ok_or_else(|| invalid(format!("{k} {v:?}: a number in {range:?}")))
            })
            .transpose()
    };
    let taken_at = match u.fields.get("taken_at") {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t.trim())
                .map_err(|e| invalid(format!("taken_at {t:?}: RFC 3339 ({e})")))?
                .to_rfc3339(),
        ),
        None => None,
    };
    let meta = PhotoMeta {
        taken_at,
        lon: number("lon", -180.0..=180.0)?,
        lat: number("lat", -90.0..=90.0)?,
    };
    if meta.lon.is_some() != meta.lat.is_some() {
        return Err(invalid("lon and lat go together".into()));
    }
    Ok((
        VerdictRequest {
            verdict,
            note: u.fields.get("note").cloned().unwrap_or_default(),
            class_found: u.fields.get("class_found").cloned(),
        },
        meta,
    ))
}

/// When and where a verdict's photos were taken.
#[derive(Clone, Debug, Default)]
struct PhotoMeta {
    taken_at: Option<String>,
    lon: Option<f64>,
    lat: Option<f64>,
}

/// Keep an upload's photos under `<data dir>/photos/<random>/` (each checked to be a JPEG or
/// a PNG by its first bytes, at most [`MAX_PHOTO_BYTES`]); blocking.
fn keep_photos(
    root: &std::path::Path,
    data_dir: &std::path::Path,
    files: &[String],
    meta: &PhotoMeta,
) -> ApiResult<Vec<NewPhoto>> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    if files.len() > MAX_PHOTOS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_PHOTOS} photos with one verdict ({} sent)",
            files.len()
        )));
    }
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| ApiError::internal(e.to_string()))?;
    let rel_dir = format!("photos/{}", hex::encode(random));
    let dir = data_dir.join(&rel_dir);
    let mut kept = Vec::new();
    let result = (|| {
        for (i, f) in files.iter().enumerate() {
            let src = root.join(f);
            let name = f.rsplit('/').next().unwrap_or(f).to_string();
            let len = std::fs::metadata(&src)
                .map_err(|e| ApiError::internal(format!("{name}: {e}")))?
                .len();
            if len > MAX_PHOTO_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("photo {name}: {len} bytes, over {MAX_PHOTO_BYTES}"),
                ));
            }
            let mut head = [0u8; 8];
            let n = std::fs::File::open(&src)
                .and_then(|mut file| file.read(&mut head))
                .map_err(|e| ApiError::internal(format!("{name}: {e}")))?;
            let (content_type, ext) = if n >= 3 && head[..3] == [0xFF, 0xD8, 0xFF] {
                ("image/jpeg", "jpg")
            } else if n == 8 && head == [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A] {
                ("image/png", "png")
            } else {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_photo",
                    format!("photo {name}: not a JPEG or PNG image"),
                ));
            };
            let bytes =
                std::fs::read(&src).map_err(|e| ApiError::internal(format!("{name}: {e}")))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
            let file = format!("{rel_dir}/{i}.{ext}");
            std::fs::write(data_dir.join(&file), &bytes)
                .map_err(|e| ApiError::internal(format!("{file}: {e}")))?;
            kept.push(NewPhoto {
                file,
                content_type: content_type.into(),
                bytes: i64::try_from(len).unwrap_or(i64::MAX),
                sha256: hex::encode(Sha256::digest(&bytes)),
                taken_at: meta.taken_at.clone(),
                lon: meta.lon,
                lat: meta.lat,
            });
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(kept),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// `POST /api/v1/changes/{id}/verdicts` → 201 `{patch, status, verdict}`: the verdict is
/// appended to the audit table and becomes the patch's status (and its `class_found`, what
/// the inspector found on the ground, [`check_class_found`]). JSON `{verdict, note,
/// class_found?}`, or `multipart/form-data` with field photos ([`upload_verdict`]), kept with
/// the verdict.
pub async fn verdict(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    body: Result<JsonOrUpload<VerdictRequest>, ApiError>,
) -> ApiResult<impl IntoResponse> {
    let body = body?;
    let upload = match &body {
        JsonOrUpload::Upload(u) => Some(u),
        JsonOrUpload::Json(_) => None,
    };
    let result = verdict_with(&state, &who, id, &body).await;
    // The photos were copied into the data dir (or refused): the upload is not needed.
    if let Some(u) = upload {
        discard(&state, u).await;
    }
    result
}

async fn verdict_with(
    state: &AppState,
    who: &Principal,
    id: i64,
    body: &JsonOrUpload<VerdictRequest>,
) -> ApiResult<(StatusCode, Json<VerdictRecorded>)> {
    who.require(&VERIFIERS)?;
    // The request is checked before any photo is kept.
    let checked = |req: &VerdictRequest| -> ApiResult<String> {
        if req.note.chars().count() > MAX_NOTE {
            return Err(ApiError::bad_request(format!(
                "note: at most {MAX_NOTE} characters"
            )));
        }
        check_class_found(req.verdict, req.class_found.as_deref())
    };
    let (req, class_found, photos) = match body {
        JsonOrUpload::Json(r) => (r.clone(), checked(r)?, Vec::new()),
        JsonOrUpload::Upload(u) => {
            let (req, meta) = upload_verdict(u)?;
            let class_found = checked(&req)?;
            // Not in scope: 404 before anything is kept.
            if state.store().change(&who.scope(), id).await?.is_none() {
                return Err(ApiError::not_found(format!("no change {id}")));
            }
            let (root, data_dir) = (
                state.import_root().path().to_path_buf(),
                state.data_dir().to_path_buf(),
            );
            let files = u.files_named("photos");
            let photos =
                tokio::task::spawn_blocking(move || keep_photos(&root, &data_dir, &files, &meta))
                    .await
                    .map_err(|e| {
                        ApiError::internal(format!("keeping the photos stopped: {e}"))
                    })??;
            (req, class_found, photos)
        }
    };
    let recorded = state
        .store()
        .record_verdict(
            &who.scope(),
            id,
            NewVerdict {
                verdict: req.verdict,
                note: req.note,
                class_found,
                token_id: who.token_id,
                actor: who.name.clone(),
                role: who.role,
                photos,
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

/// `GET /api/v1/changes/{id}/verdicts/{verdict}/photos/{photo}`: a field photo, as it was
/// sent (JPEG or PNG), to those who may read the patch.
pub async fn photo(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((id, verdict, photo)): ApiPath<(i64, i64, i64)>,
) -> ApiResult<Response> {
    who.require(&READERS)?;
    let missing = || {
        ApiError::not_found(format!(
            "no photo {photo} of verdict {verdict} of change {id}"
        ))
    };
    let verdicts = state.store().verdicts(&who.scope(), id).await?;
    let p = verdicts
        .into_iter()
        .find(|v| v.id == verdict)
        .and_then(|v| v.photos.into_iter().find(|p| p.id == photo))
        .ok_or_else(missing)?;
    let path = state.data_dir().join(&p.file);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        ApiError::internal(format!(
            "photo {photo}: cannot read {}: {e}",
            path.display()
        ))
    })?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, p.content_type),
            (
                axum::http::header::CACHE_CONTROL,
                "private, max-age=86400".to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}
