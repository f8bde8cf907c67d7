//! `GET /tiles/{batch}/{date}/{style}/{z}/{x}/{y}.png`: the imagery of one date of a batch
//! as Web Mercator (EPSG:3857) XYZ tiles, 256 × 256 RGBA PNG, for the web map.
//!
//! - **Scenes.** The batch's scenes and baseline scenes of `{date}` (`YYYY-MM-DD` or
//!   `YYYYMMDD`), opened as the analysis opens them; another date is 404 with the batch's
//!   `dates` and `baseline_dates`.
//! - **Styles.** `true` (true colour: B04, B03, B02), `false` (false colour: B08, B04,
//!   B03 — vegetation red) and `landcover` (the land-cover map: [`landcover_codes`], each
//!   class in its [`class_colour`]; `X-Model` names the model, the one whose id the
//!   batch's patches carry, else the active one; `GET /tiles/{batch}/landcover.json` gives
//!   the classes and colours). Bands are found by name or common name as the tiling engine
//!   reports them; a date without them is 422 `missing_bands`.
//! - **Pixels.** The tile's grid (EPSG:3857, 256 × 256, the XYZ scheme: `x` east from −180°,
//!   `y` south from 85.0511°) is filled by the tiling engine's stack reader — GDAL's warper
//!   with bilinear resampling, each band's radiometry applied (reflectance) — and each
//!   band is [`super::chips::stretch`]ed (reflectance 0–0.3 → 0–255, gamma 2.2; false
//!   colour 0–[`FALSE_COLOUR_WHITE`]). A pixel that is empty in any band (nodata, outside
//!   the scene) is transparent.
//! - **Zoom.** A tile that would cover more than [`MAX_SOURCE_PIXELS`] scene pixels along a
//!   side is 422 `zoom_out` (zoom in; the scenes carry no overviews to draw it from).
//! - **Cache.** A tile drawn once is kept under `<data dir>/tiles/{batch}/{date}/{style}/
//!   {z}/{x}/{y}.png` (land cover: `…/landcover/{model}/{z}/…`; written atomically) and
//!   served from there.
//! - **Who.** The roles that read change lists; an inspector only the batches holding a
//!   patch in their region (others are 404, as if they did not exist).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use gengdi_tiling::{AnalysisGrid, GeoTransform, Resampling, Scene, SceneOptions, SceneStack};
use std::path::{Path, PathBuf};

use super::chips::{encode_png, parse_date, stretch};
use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::error::ServiceError;
use crate::geometry::FromWgs84;
use crate::store::{BatchRecord, ChangeFilter};

const READERS: [Role; 4] = [Role::Admin, Role::Centre, Role::Inspector, Role::Researcher];

/// Tile side, in pixels.
pub const TILE: usize = 256;
/// Half the side of the Web Mercator square, in metres.
pub const HALF_WORLD: f64 = 20_037_508.342_789_244;
/// Deepest zoom served.
pub const MAX_ZOOM: u8 = 22;
/// Most scene pixels one tile may cover along a side.
pub const MAX_SOURCE_PIXELS: f64 = 2048.0;
/// Reflectance shown as full brightness in false colour (near infrared is bright).
pub const FALSE_COLOUR_WHITE: f64 = 0.5;

/// A rendering of a date's bands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// B04, B03, B02.
    True,
    /// B08, B04, B03.
    False,
    /// The land-cover map: the batch's land-cover model on every clear pixel, one colour
    /// per class ([`class_colour`]).
    LandCover,
}

impl Style {
    pub fn parse(s: &str) -> Option<Style> {
        match s {
            "true" => Some(Style::True),
            "false" => Some(Style::False),
            "landcover" => Some(Style::LandCover),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Style::True => "true",
            Style::False => "false",
            Style::LandCover => "landcover",
        }
    }

    /// (band, common name) for red, green and blue (none for the land-cover map).
    pub fn bands(self) -> Option<[(&'static str, &'static str); 3]> {
        match self {
            Style::True => Some([("B04", "red"), ("B03", "green"), ("B02", "blue")]),
            Style::False => Some([("B08", "nir"), ("B04", "red"), ("B03", "green")]),
            Style::LandCover => None,
        }
    }

    fn white(self) -> f64 {
        match self {
            Style::False => FALSE_COLOUR_WHITE,
            _ => super::chips::WHITE_REFLECTANCE,
        }
    }
}

/// The EPSG:3857 bounds `[min_x, min_y, max_x, max_y]` of tile `z/x/y`.
pub fn tile_bounds(z: u8, x: u32, y: u32) -> [f64; 4] {
    let size = 2.0 * HALF_WORLD / f64::from(1u32 << z);
    let x0 = -HALF_WORLD + f64::from(x) * size;
    let y1 = HALF_WORLD - f64::from(y) * size;
    [x0, y1 - size, x0 + size, y1]
}

/// Web Mercator metres → longitude, latitude.
fn lon_lat(x: f64, y: f64) -> (f64, f64) {
    let lon = x / HALF_WORLD * 180.0;
    let lat = (2.0 * (y / HALF_WORLD * std::f64::consts::PI).exp().atan()
        - std::f64::consts::FRAC_PI_2)
        .to_degrees();
    (lon, lat)
}

/// `GET /tiles/{batch}/{date}/{style}/{z}/{x}/{y}.png`.
pub async fn tile(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((batch, date, style, z, x, file)): ApiPath<(i64, String, String, u8, u32, String)>,
) -> ApiResult<Response> {
    who.require(&READERS)?;
    let Some(y) = file.strip_suffix(".png") else {
        return Err(ApiError::not_found(
            "tiles are PNG images: …/{z}/{x}/{y}.png",
        ));
    };
    let y: u32 = y
        .parse()
        .map_err(|_| ApiError::bad_request(format!("y {y:?}: a tile row")))?;
    let date = parse_date(&date).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_date",
            format!("date {date:?}: YYYY-MM-DD or YYYYMMDD"),
        )
    })?;
    let style = Style::parse(&style).ok_or_else(|| {
        ApiError::bad_request(format!(
            "style {style:?}: true (colour), false (colour) or landcover"
        ))
    })?;
    if z > MAX_ZOOM || u64::from(x) >= 1u64 << z || u64::from(y) >= 1u64 << z {
        return Err(ApiError::not_found(format!(
            "no tile {z}/{x}/{y}: zoom 0 to {MAX_ZOOM}, x and y below 2^zoom"
        )));
    }
    let b = visible_batch(&state, &who, batch).await?;
    let mut dir = state
        .data_dir()
        .join("tiles")
        .join(batch.to_string())
        .join(date.to_string())
        .join(style.name());
    let model = match style {
        Style::LandCover => {
            let id = batch_landcover_model(&state, batch).await?;
            dir = dir.join(&id);
            Some(id)
        }
        _ => None,
    };
    let cached = dir
        .join(z.to_string())
        .join(x.to_string())
        .join(format!("{y}.png"));
    if let Some(id) = &model {
        // Drawn by a model another server of a shared store trained: copied here first.
        if let Err(e) = state.jobs().ensure_models(std::slice::from_ref(id)).await {
            tracing::warn!("models: cannot look for {id} in the store: {e}");
        }
    }
    let jobs = std::sync::Arc::clone(state.jobs());
    let model_for_task = model.clone();
    let png = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        if let Ok(bytes) = std::fs::read(&cached) {
            return Ok(bytes);
        }
        let png = match model_for_task {
            Some(id) => {
                let models = jobs.landcover_model(Some(&id))?.ok_or_else(|| {
                    unprocessable(
                        "model_missing",
                        format!(
                            "the land-cover model {id} that analysed batch {batch} is not in the registry"
                        ),
                    )
                })?;
                render_landcover(&b, date, &models.landcover, z, x, y)?
            }
            None => render(&b, date, style, z, x, y)?,
        };
        keep(&cached, &png);
        Ok(png)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the tile task failed: {e}")))??;
    let mut response = (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response();
    if let Some(id) = model.and_then(|m| header::HeaderValue::from_str(&m).ok()) {
        response.headers_mut().insert("x-model", id);
    }
    Ok(response)
}

/// The batch `id` if `who` may see it: every batch for the roles that read change lists,
/// for an inspector only a batch holding a patch in their region (others are 404, as if
/// they did not exist).
pub(crate) async fn visible_batch(
    state: &AppState,
    who: &Principal,
    id: i64,
) -> ApiResult<BatchRecord> {
    let no_batch = || ApiError::not_found(format!("no batch {id}"));
    if let Scope::Region(_) = who.scope() {
        let mine = state
            .store()
            .list_changes(
                &who.scope(),
                &ChangeFilter {
                    batch: Some(id),
                    limit: 1,
                    ..ChangeFilter::default()
                },
            )
            .await?;
        if mine.total == 0 {
            return Err(no_batch());
        }
    }
    state.store().batch(id).await?.ok_or_else(no_batch)
}

/// The land-cover model that analysed `batch` (the model its patches name), else the
/// active one (a batch without patches).
async fn batch_landcover_model(state: &AppState, batch: i64) -> ApiResult<String> {
    let page = state
        .store()
        .list_changes(
            &Scope::All,
            &ChangeFilter {
                batch: Some(batch),
                limit: 1,
                ..ChangeFilter::default()
            },
        )
        .await?;
    if let Some(p) = page.items.first() {
        // `landcover+croptype`, or the land-cover model's id alone; it names a folder of the
        // tile cache, so only an id of plain characters is taken.
        let plain = |s: &&str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if let Some(id) = p.model_version.split('+').next().filter(plain) {
            return Ok(id.to_string());
        }
    }
    let jobs = std::sync::Arc::clone(state.jobs());
    let active = tokio::task::spawn_blocking(move || jobs.landcover_model(None))
        .await
        .map_err(|e| ApiError::internal(format!("loading the model failed: {e}")))??;
    use gengdi_inference::analysis::PixelClassifier;
    active.map(|m| m.landcover.id()).ok_or_else(|| {
        unprocessable(
            "model_missing",
            "this service has no land-cover model".into(),
        )
    })
}

/// `GET /tiles/{batch}/landcover.json`: the classes of the batch's land-cover map tiles,
/// with their colours, and the model that draws them.
pub async fn landcover_legend(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(batch): ApiPath<i64>,
) -> ApiResult<axum::Json<LandCoverLegend>> {
    who.require(&READERS)?;
    visible_batch(&state, &who, batch).await?;
    let id = batch_landcover_model(&state, batch).await?;
    let jobs = std::sync::Arc::clone(state.jobs());
    let lookup = id.clone();
    let models = tokio::task::spawn_blocking(move || jobs.landcover_model(Some(&lookup)))
        .await
        .map_err(|e| ApiError::internal(format!("loading the model failed: {e}")))??
        .ok_or_else(|| {
            unprocessable(
                "model_missing",
                format!(
                    "the land-cover model {id} that analysed batch {batch} is not in the registry"
                ),
            )
        })?;
    use gengdi_inference::analysis::PixelClassifier;
    let classes = models
        .landcover
        .class_names()
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let [r, g, b] = class_colour(&name, i);
            LegendClass {
                code: i as u8 + 1,
                colour: format!("#{r:02x}{g:02x}{b:02x}"),
                name,
            }
        })
        .collect();
    Ok(axum::Json(LandCoverLegend { model: id, classes }))
}

/// The classes of a batch's land-cover map.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct LandCoverLegend {
    /// The land-cover model that draws the map (the one that analysed the batch).
    pub model: String,
    pub classes: Vec<LegendClass>,
}

/// One class of a land-cover map.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct LegendClass {
    /// The class code (class index + 1; 0 = not clear, transparent).
    pub code: u8,
    pub name: String,
    /// `#rrggbb`.
    pub colour: String,
}

/// The colour of land-cover class `name` (index `i`): the ESA WorldCover palette's colour
/// of the same class where there is one, else one of a few distinct colours.
pub fn class_colour(name: &str, i: usize) -> [u8; 3] {
    match name {
        "annual_crop" | "cropland" | "crop" => [0xf0, 0x96, 0xff],
        "orchard" | "shrub" => [0xff, 0xbb, 0x22],
        "tree" | "forest" => [0x00, 0x64, 0x00],
        "grass" | "grassland" => [0xff, 0xff, 0x4c],
        "bare" | "bare_soil" => [0xb4, 0xb4, 0xb4],
        "water" => [0x00, 0x64, 0xc8],
        "built" | "built_up" => [0xfa, 0x00, 0x00],
        _ => {
            const OTHERS: [[u8; 3]; 6] = [
                [0x00, 0x96, 0xa0],
                [0x7f, 0x3c, 0x8d],
                [0xa5, 0x56, 0x2a],
                [0x0b, 0xe6, 0xc3],
                [0x6e, 0x6e, 0x6e],
                [0xfa, 0xe6, 0xa0],
            ];
            OTHERS[i % OTHERS.len()]
        }
    }
}

/// Write a drawn tile to the cache (a temporary file renamed into place); a failure only
/// costs drawing it again.
fn keep(path: &Path, png: &[u8]) {
    let Some(dir) = path.parent() else { return };
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, png))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!("tiles: cannot keep {}: {e}", path.display());
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The tile's box `[min_col, min_row, max_col, max_row]` in a scene's pixels (its corners
/// projected); None when the corners do not project.
fn pixel_box(scene: &Scene, bounds: [f64; 4]) -> ApiResult<Option<[f64; 4]>> {
    let (crs, gt) = scene.georeference().map_err(|e| {
        ApiError::from(ServiceError::from(gengdi_inference::InferenceError::from(
            e,
        )))
    })?;
    let corners: Vec<(f64, f64)> = [
        (bounds[0], bounds[1]),
        (bounds[2], bounds[1]),
        (bounds[2], bounds[3]),
        (bounds[0], bounds[3]),
    ]
    .iter()
    .map(|&(mx, my)| lon_lat(mx, my))
    .collect();
    let projected = FromWgs84::to(crs)?.polygons(&[vec![corners]])?;
    let px: Vec<(f64, f64)> = projected
        .iter()
        .flatten()
        .flatten()
        .filter_map(|&(wx, wy)| gt.pixel_from_world(wx, wy))
        .filter(|(c, r)| c.is_finite() && r.is_finite())
        .collect();
    if px.len() < 4 {
        return Ok(None);
    }
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for (c, r) in px {
        b = [b[0].min(c), b[1].min(r), b[2].max(c), b[3].max(r)];
    }
    Ok(Some(b))
}

fn unprocessable(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// Open the scenes `paths` names as the analysis does (`optional`: the bands to take from a
/// STAC item when it has them).
fn open(paths: &[String], optional: &[String]) -> ApiResult<Vec<Scene>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    gengdi_inference::inputs::open_scenes(&paths, &SceneOptions::default(), &[], optional)
        .map_err(|e| ApiError::from(ServiceError::from(e)))
}

/// The scenes of `date` of `batch` (season and baseline) that tile `z/x/y` covers, and the
/// tile's grid; `None` when the tile lies beside every one of them (a transparent tile).
/// 404 for a date the batch has no scene of; 422 `zoom_out` for a tile spanning more than
/// [`MAX_SOURCE_PIXELS`] scene pixels.
fn locate(
    batch: &BatchRecord,
    date: NaiveDate,
    z: u8,
    x: u32,
    y: u32,
    optional: &[String],
) -> ApiResult<Option<(Vec<Scene>, AnalysisGrid)>> {
    let season = open(&batch.scenes, optional)?;
    let baseline = open(&batch.options.baseline, optional)?;
    let dates = |s: &[Scene]| -> Vec<String> {
        super::chips::dates_of(s)
            .iter()
            .map(|d| d.to_string())
            .collect()
    };
    let of_date: Vec<Scene> = season
        .iter()
        .chain(&baseline)
        .filter(|s| s.date == Some(date))
        .cloned()
        .collect();
    if of_date.is_empty() {
        return Err(
            ApiError::not_found(format!("batch {} has no scene of {date}", batch.id)).with_details(
                serde_json::json!({
                    "dates": dates(&season),
                    "baseline_dates": dates(&baseline),
                }),
            ),
        );
    }
    let bounds = tile_bounds(z, x, y);
    let boxes = of_date
        .iter()
        .map(|s| pixel_box(s, bounds))
        .collect::<ApiResult<Vec<_>>>()?;
    // A tile beside every scene of the date is empty (transparent), not an error.
    let inside: Vec<[f64; 4]> = boxes
        .iter()
        .zip(&of_date)
        .filter_map(|(b, s)| {
            b.filter(|[c0, r0, c1, r1]| {
                *c1 > 0.0 && *r1 > 0.0 && *c0 < s.width as f64 && *r0 < s.height as f64
            })
        })
        .collect();
    if inside.is_empty() {
        return Ok(None);
    }
    // How many scene pixels the tile spans: the scenes carry no overviews to draw from.
    let span = inside
        .iter()
        .map(|[c0, r0, c1, r1]| (c1 - c0).max(r1 - r0))
        .fold(0.0, f64::max);
    if span > MAX_SOURCE_PIXELS {
        return Err(unprocessable(
            "zoom_out",
            format!(
                "tile {z}/{x}/{y} spans {span:.0} pixels of the scenes, over {MAX_SOURCE_PIXELS}: zoom in"
            ),
        ));
    }
    let grid = AnalysisGrid {
        crs: gengdi_tiling::Crs::from_spatial_ref(
            &gdal::spatial_ref::SpatialRef::from_epsg(3857)
                .map_err(|e| ApiError::internal(format!("EPSG:3857: {e}")))?,
        )
        .ok_or_else(|| ApiError::internal("EPSG:3857 has no WKT"))?,
        world_from_pixel: GeoTransform([
            bounds[0],
            (bounds[2] - bounds[0]) / TILE as f64,
            0.0,
            bounds[3],
            0.0,
            -(bounds[3] - bounds[1]) / TILE as f64,
        ]),
        width: TILE,
        height: TILE,
    };
    Ok(Some((of_date, grid)))
}

fn empty_tile() -> ApiResult<Vec<u8>> {
    encode_png(TILE, TILE, &vec![0u8; TILE * TILE * 4])
}

/// Read the one tile of `stack` (its grid is the tile's).
fn read_whole(stack: &SceneStack) -> ApiResult<gengdi_tiling::TileData> {
    let tiles = stack
        .tile_grid(TILE, 0)
        .map_err(|e| ApiError::internal(format!("tile grid: {e}")))?;
    let t = tiles
        .tile(0)
        .ok_or_else(|| ApiError::internal("the tile grid has no tile"))?;
    stack.read_tile(&t).map_err(|e| {
        ApiError::from(ServiceError::from(gengdi_inference::InferenceError::from(
            e,
        )))
    })
}

/// Draw tile `z/x/y` of `date` of `batch` in true or false colour (blocking: opens and
/// reads the scenes).
pub fn render(
    batch: &BatchRecord,
    date: NaiveDate,
    style: Style,
    z: u8,
    x: u32,
    y: u32,
) -> ApiResult<Vec<u8>> {
    let wanted = style
        .bands()
        .ok_or_else(|| ApiError::internal("the land-cover map is drawn by render_landcover"))?;
    let optional: Vec<String> = ["B02", "B03", "B04", "B08"]
        .iter()
        .map(|b| b.to_string())
        .collect();
    let Some((of_date, grid)) = locate(batch, date, z, x, y, &optional)? else {
        return empty_tile();
    };
    let available: Vec<String> = of_date
        .iter()
        .flat_map(|s| s.bands.iter().map(|b| b.name.clone()))
        .collect();
    let has = |(b, c): (&str, &str)| {
        of_date
            .iter()
            .any(|s| s.band_index(b).is_ok() || s.band_index(c).is_ok())
    };
    let missing: Vec<String> = wanted
        .iter()
        .filter(|w| !has(**w))
        .map(|(b, c)| format!("{b} ({c})"))
        .collect();
    if !missing.is_empty() {
        return Err(unprocessable(
            "missing_bands",
            format!(
                "the scenes of {date} lack {} for {} colour",
                missing.join(", "),
                style.name()
            ),
        )
        .with_details(serde_json::json!({"missing": missing, "available": available})));
    }
    let stack = SceneStack::build(
        of_date,
        &gengdi_tiling::StackOptions {
            grid: Some(grid),
            bands: Some(wanted.iter().map(|(b, _)| b.to_string()).collect()),
            continuous: Resampling::Bilinear,
            always_gdal_warp: false,
        },
    )
    .map_err(|e| {
        unprocessable(
            "unreadable_input",
            format!("the scenes of {date} cannot be put on the tile: {e}"),
        )
    })?;
    let data = read_whole(&stack)?;
    let v = data.core();
    let white = style.white();
    let mut rgba = vec![0u8; TILE * TILE * 4];
    // The stack's bands are in the order asked for; several layers (scenes of the date that
    // are tiles of one product) are merged: the first with a value wins.
    for r in 0..TILE {
        for c in 0..TILE {
            let px = &mut rgba[(r * TILE + c) * 4..][..4];
            for layer in 0..v.shape()[0] {
                let rgb = [
                    v[[layer, 0, r, c]],
                    v[[layer, 1, r, c]],
                    v[[layer, 2, r, c]],
                ];
                if rgb.iter().all(|x| x.is_finite()) {
                    for (i, x) in rgb.iter().enumerate() {
                        let refl = f64::from(*x) / gengdi_tiling::radiometry::CANONICAL_SCALE;
                        px[i] = stretch(refl * super::chips::WHITE_REFLECTANCE / white);
                    }
                    px[3] = 255;
                    break;
                }
            }
        }
    }
    encode_png(TILE, TILE, &rgba)
}

/// The land-cover codes of tile `z/x/y` of `date` of `batch`: the scenes' bands the model
/// needs and their cloud mask, put on the tile's grid by the analysis's stack (bilinear for
/// reflectance, nearest for the mask), classified by
/// [`gengdi_inference::analysis::landcover_map`] with the batch's rules; several scenes of
/// the date merged (the first with a clear pixel wins). `None`: no scene reaches the tile.
pub fn landcover_codes(
    batch: &BatchRecord,
    date: NaiveDate,
    landcover: &gengdi_inference::models_adapter::LandCoverAdapter,
    z: u8,
    x: u32,
    y: u32,
) -> ApiResult<Option<ndarray::Array2<u8>>> {
    use gengdi_inference::analysis::PixelClassifier;
    let model_bands = landcover.bands();
    let mut optional = model_bands.clone();
    optional.extend(["SCL".to_string(), "QA_PIXEL".to_string()]);
    let Some((of_date, grid)) = locate(batch, date, z, x, y, &optional)? else {
        return Ok(None);
    };
    let rules = crate::jobs::batch_rules(batch)?;
    let stack =
        gengdi_inference::inputs::build_stack(of_date, &model_bands, Some(grid)).map_err(|e| {
            unprocessable(
                "unreadable_input",
                format!("the scenes of {date} cannot be classified on the tile: {e}"),
            )
        })?;
    let data = read_whole(&stack)?;
    let v = data.core();
    let mut codes = ndarray::Array2::<u8>::zeros((TILE, TILE));
    for layer in 0..v.shape()[0] {
        let map = gengdi_inference::analysis::landcover_map(
            landcover,
            &stack,
            v.index_axis(ndarray::Axis(0), layer),
            &rules,
        )
        .map_err(|e| ApiError::from(ServiceError::from(e)))?;
        ndarray::Zip::from(&mut codes).and(&map).for_each(|c, &m| {
            if *c == 0 {
                *c = m;
            }
        });
    }
    Ok(Some(codes))
}

/// Draw the land-cover map tile `z/x/y` of `date` of `batch` ([`landcover_codes`], each
/// class in its [`class_colour`], pixels that are not clear transparent).
pub fn render_landcover(
    batch: &BatchRecord,
    date: NaiveDate,
    landcover: &gengdi_inference::models_adapter::LandCoverAdapter,
    z: u8,
    x: u32,
    y: u32,
) -> ApiResult<Vec<u8>> {
    use gengdi_inference::analysis::PixelClassifier;
    let Some(codes) = landcover_codes(batch, date, landcover, z, x, y)? else {
        return empty_tile();
    };
    let colours: Vec<[u8; 3]> = landcover
        .class_names()
        .iter()
        .enumerate()
        .map(|(i, n)| class_colour(n, i))
        .collect();
    let mut rgba = vec![0u8; TILE * TILE * 4];
    for ((r, c), &code) in codes.indexed_iter() {
        if let Some(rgb) = (code as usize).checked_sub(1).and_then(|i| colours.get(i)) {
            rgba[(r * TILE + c) * 4..][..4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
    }
    encode_png(TILE, TILE, &rgba)
}
