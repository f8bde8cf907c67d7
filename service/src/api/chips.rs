//! `GET /api/v1/changes/{id}/chips/{date}.png`: a true-colour image chip of a patch on one
//! date of its batch, with the patch's outline drawn.
//!
//! - **Scenes.** The batch's scenes and its baseline scenes are opened as the analysis opens
//!   them ([`gengdi_inference::inputs::open_scenes`]: files, directories, Sentinel-2 SAFE and
//!   Landsat products, STAC Items), and the scene(s) whose acquisition date is `{date}`
//!   (`YYYY-MM-DD` or `YYYYMMDD`) are used. A date of no scene is 404 with the batch's dates in
//!   `details.dates` (and its baseline's in `details.baseline_dates`).
//! - **Before / after.** `{date}` may also be `before`: the latest date of the batch's
//!   baseline (404 `no_baseline` for a batch without one), or `after`: the latest date of the
//!   season. Together they are the pair an inspector compares; the response names the date
//!   it drew in `X-Chip-Date`.
//! - **Bands.** Red, green and blue are `B04`, `B03`, `B02`, found by name or by common name
//!   (`red`, `green`, `blue`: Landsat's `B4`/`B3`/`B2` or `SR_B4`…, STAC `eo:bands`) as the
//!   tiling engine reports them; they may be in one file or in files of their own on one grid
//!   (a SAFE product). A date lacking one is 422 `missing_bands` naming it.
//! - **Window.** The patch's geometry is transformed into the scene's CRS and pixel space;
//!   its pixel bounding box (pixels the patch touches) is padded on each side by half its
//!   size along that axis, at least [`MIN_PAD`] pixels, and clamped to the raster. Where a
//!   date has several scenes (tiles), the one covering most of the patch is used; a patch
//!   outside every scene of the date is 422 `not_covered`.
//! - **Size.** A window longer than [`MAX_SIDE`] pixels on a side is decimated by the
//!   smallest whole factor `k` that brings it to at most [`MAX_SIDE`]: chip pixel `(i, j)` is
//!   scene pixel `(x0 + min(j·k + k/2, cols − 1), y0 + min(i·k + k/2, rows − 1))` (nearest),
//!   so the chip is `ceil(cols / k) × ceil(rows / k)`.
//! - **Colour.** Each band's value becomes reflectance with the scene's radiometry
//!   (`reflectance = value × scale + offset`, as the tiling engine reads it from the product,
//!   the file or the values), then [`stretch`]: reflectance 0–[`WHITE_REFLECTANCE`] → 0–255
//!   with a display gamma of [`GAMMA`]. A pixel that is nodata (or not finite) in any of the
//!   three bands is transparent (RGBA `0,0,0,0`). A band of unknown radiometry is 422.
//! - **Outline.** Every ring of the patch (holes too) is drawn 1 chip pixel wide in
//!   [`OUTLINE`] yellow on the pixels just inside the patch along its boundary: for a
//!   rectangle on pixel edges, exactly its first and last rows and columns.
//!
//! The response is `image/png` (8-bit RGBA), `Cache-Control: private, max-age=3600`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use gengdi_tiling::{GeoTransform, PixelWindow, RadiometrySource, Scene, SceneOptions};
use std::path::PathBuf;

use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::AppState;
use crate::auth::{Principal, Role};
use crate::error::ServiceError;
use crate::geometry::{polygons_of_geojson, FromWgs84, Polygons};
use crate::limits::Limits;
use crate::store::{BatchRecord, ChangeRecord};

const READERS: [Role; 4] = [Role::Admin, Role::Centre, Role::Inspector, Role::Researcher];

/// Longest side of a chip, in pixels.
pub const MAX_SIDE: usize = 512;
/// Padding on each side, as a fraction of the patch's size along that axis.
pub const PAD_FRACTION: f64 = 0.5;
/// Least padding on each side, in scene pixels.
pub const MIN_PAD: i64 = 16;
/// Reflectance shown as full brightness.
pub const WHITE_REFLECTANCE: f64 = 0.3;
/// Display gamma: `255 × (reflectance / WHITE_REFLECTANCE)^(1 / GAMMA)`.
pub const GAMMA: f64 = 2.2;
/// The outline's colour (RGBA).
pub const OUTLINE: [u8; 4] = [255, 255, 0, 255];
/// Red, green and blue: band name and common name.
pub const TRUE_COLOUR: [(&str, &str); 3] = [("B04", "red"), ("B03", "green"), ("B02", "blue")];

/// Reflectance → 8-bit display value: 0–[`WHITE_REFLECTANCE`] linearly to 0–1 (clamped),
/// raised to `1 / GAMMA`, times 255, rounded.
pub fn stretch(reflectance: f64) -> u8 {
    let v = (reflectance / WHITE_REFLECTANCE).clamp(0.0, 1.0);
    if v.is_nan() {
        return 0;
    }
    (255.0 * v.powf(1.0 / GAMMA)).round() as u8
}

/// `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    match s.len() {
        10 if digits(&s[..4]) && digits(&s[5..7]) && digits(&s[8..]) => {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
        }
        8 if digits(s) => NaiveDate::parse_from_str(s, "%Y%m%d").ok(),
        _ => None,
    }
}

/// `GET /api/v1/changes/{id}/chips/{date}.png`.
pub async fn chip(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((id, file)): ApiPath<(i64, String)>,
) -> ApiResult<Response> {
    who.require(&READERS)?;
    let Some(text) = file.strip_suffix(".png") else {
        return Err(ApiError::not_found(format!(
            "chips are PNG images: /api/v1/changes/{id}/chips/YYYY-MM-DD.png"
        )));
    };
    let date = match text {
        "before" => ChipDate::Before,
        "after" => ChipDate::After,
        _ => ChipDate::Day(parse_date(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_date",
                format!("date {text:?}: YYYY-MM-DD, YYYYMMDD, before or after"),
            )
        })?),
    };
    let patch = state
        .store()
        .change(&who.scope(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no change {id}")))?;
    let batch = state.store().batch(patch.batch).await?.ok_or_else(|| {
        ApiError::internal(format!("change {id}: its batch {} is gone", patch.batch))
    })?;
    let limits = *state.limits();
    let (png, drawn) = tokio::task::spawn_blocking(move || render(&batch, &patch, date, &limits))
        .await
        .map_err(|e| ApiError::internal(format!("the chip task failed: {e}")))??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png".to_string()),
            (header::CACHE_CONTROL, "private, max-age=3600".to_string()),
            (
                header::HeaderName::from_static("x-chip-date"),
                drawn.to_string(),
            ),
        ],
        png,
    )
        .into_response())
}

/// Which date a chip shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChipDate {
    Day(NaiveDate),
    /// The latest date of the baseline.
    Before,
    /// The latest date of the season.
    After,
}

fn unprocessable(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// One of the three bands: where to read it and how its values become reflectance.
struct Source<'a> {
    scene: &'a Scene,
    /// 0-based.
    band: usize,
    nodata: Option<f64>,
    scale: f64,
    offset: f64,
}

fn same_grid(a: &Scene, b: &Scene) -> bool {
    std::ptr::eq(a, b)
        || (a.width == b.width
            && a.height == b.height
            && a.world_from_pixel == b.world_from_pixel
            && match (&a.crs, &b.crs) {
                (Some(x), Some(y)) => x.same_as(y),
                _ => false,
            })
}

fn has_band(s: &Scene, name: &str, common: &str) -> Option<usize> {
    s.band_index(name).or_else(|_| s.band_index(common)).ok()
}

/// Where the chip lies in a scene: the patch's pixel bounding box and the padded, clamped
/// window, in that scene's pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChipWindow {
    /// Pixels the patch touches: `[col0, row0, col1, row1)` (may reach past the raster).
    pub patch: [i64; 4],
    pub window: PixelWindow,
    /// Patch pixels inside the raster.
    pub overlap: u128,
}

/// A value within 1e-6 pixel of a whole number is that number (coordinates that went
/// through a CRS transformation and back).
fn snap(x: f64) -> f64 {
    if (x - x.round()).abs() < 1e-6 {
        x.round()
    } else {
        x
    }
}

/// The window of a patch whose pixel-space bounding box is `[min_col, min_row, max_col,
/// max_row]` in a `width × height` raster (see the module's documentation).
pub fn chip_window(bbox: [f64; 4], width: usize, height: usize) -> ChipWindow {
    let (w, h) = (width as i64, height as i64);
    let c0 = snap(bbox[0]).floor() as i64;
    let r0 = snap(bbox[1]).floor() as i64;
    let c1 = (snap(bbox[2]).ceil() as i64).max(c0.saturating_add(1));
    let r1 = (snap(bbox[3]).ceil() as i64).max(r0.saturating_add(1));
    let pad = |size: i64| MIN_PAD.max((size as f64 * PAD_FRACTION).ceil() as i64);
    let (px, py) = (pad(c1.saturating_sub(c0)), pad(r1.saturating_sub(r0)));
    let x0 = c0.saturating_sub(px).clamp(0, w);
    let x1 = c1.saturating_add(px).clamp(0, w);
    let y0 = r0.saturating_sub(py).clamp(0, h);
    let y1 = r1.saturating_add(py).clamp(0, h);
    let span = |a: i64, b: i64, max: i64| (b.min(max) - a.max(0)).max(0) as u128;
    ChipWindow {
        patch: [c0, r0, c1, r1],
        window: PixelWindow::new(x0, y0, (x1 - x0).max(0) as usize, (y1 - y0).max(0) as usize),
        overlap: span(c0, c1, w) * span(r0, r1, h),
    }
}

/// Polygons in a scene's pixel space (col, row, pixel corners).
fn to_pixels(polygons: &Polygons, gt: &GeoTransform) -> Option<Polygons> {
    polygons
        .iter()
        .map(|poly| {
            poly.iter()
                .map(|ring| {
                    ring.iter()
                        .map(|&(x, y)| gt.pixel_from_world(x, y))
                        .collect::<Option<Vec<_>>>()
                })
                .collect()
        })
        .collect()
}

/// The acquisition dates of `scenes`, sorted, each once.
pub(crate) fn dates_of(scenes: &[Scene]) -> Vec<NaiveDate> {
    let mut dates: Vec<NaiveDate> = scenes.iter().filter_map(|s| s.date).collect();
    dates.sort();
    dates.dedup();
    dates
}

/// Render the chip of `patch` on `date` (blocking: opens and reads the batch's scenes);
/// the PNG and the date drawn.
pub fn render(
    batch: &BatchRecord,
    patch: &ChangeRecord,
    date: ChipDate,
    limits: &Limits,
) -> ApiResult<(Vec<u8>, NaiveDate)> {
    let optional: Vec<String> = TRUE_COLOUR.iter().map(|(b, _)| b.to_string()).collect();
    let open = |paths: &[String]| -> ApiResult<Vec<Scene>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        gengdi_inference::inputs::open_scenes(&paths, &SceneOptions::default(), &[], &optional)
            .map_err(|e| ApiError::from(ServiceError::from(e)))
    };
    let mut scenes = open(&batch.scenes)?;
    let baseline = open(&batch.options.baseline)?;
    let (season_dates, baseline_dates) = (dates_of(&scenes), dates_of(&baseline));
    scenes.extend(baseline);
    let listed = |d: &[NaiveDate]| -> Vec<String> { d.iter().map(|d| d.to_string()).collect() };
    let date = match date {
        ChipDate::Day(d) => d,
        ChipDate::Before => *baseline_dates.last().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_baseline",
                format!(
                    "batch {} has no baseline (with a date): no before chip",
                    batch.id
                ),
            )
        })?,
        ChipDate::After => *season_dates.last().ok_or_else(|| {
            unprocessable(
                "no_dates",
                format!("the scenes of batch {} carry no acquisition date", batch.id),
            )
        })?,
    };
    for s in &scenes {
        let pixels = (s.width as u64).saturating_mul(s.height as u64);
        if pixels > limits.max_scene_pixels {
            return Err(ApiError::from(ServiceError::TooLarge {
                path: s.path.clone(),
                reason: format!(
                    "the scene claims {} x {} = {pixels} pixels per band, over the limit of {} (max_scene_pixels)",
                    s.width, s.height, limits.max_scene_pixels
                ),
            }));
        }
    }
    if !season_dates.contains(&date) && !baseline_dates.contains(&date) {
        return Err(
            ApiError::not_found(format!("batch {} has no scene of {date}", batch.id)).with_details(
                serde_json::json!({
                    "dates": listed(&season_dates),
                    "baseline_dates": listed(&baseline_dates),
                }),
            ),
        );
    }
    let of_date: Vec<&Scene> = scenes.iter().filter(|s| s.date == Some(date)).collect();
    let missing: Vec<String> = TRUE_COLOUR
        .iter()
        .filter(|(b, c)| !of_date.iter().any(|s| has_band(s, b, c).is_some()))
        .map(|(b, c)| format!("{b} ({c})"))
        .collect();
    if !missing.is_empty() {
        let mut available: Vec<&str> = of_date
            .iter()
            .flat_map(|s| s.bands.iter().map(|b| b.name.as_str()))
            .collect();
        available.dedup();
        return Err(unprocessable(
            "missing_bands",
            format!(
                "the scenes of {date} lack {} for a true-colour chip",
                missing.join(", ")
            ),
        )
        .with_details(serde_json::json!({"missing": missing, "available": available})));
    }

    let wgs84 = patch
        .geometry
        .as_ref()
        .and_then(polygons_of_geojson)
        .filter(|p| p.iter().flatten().any(|r| !r.is_empty()))
        .unwrap_or_else(|| {
            let [x0, y0, x1, y1] = patch.bbox;
            vec![vec![vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)]]]
        });

    // The red band's scene with green and blue on its grid, covering most of the patch.
    let mut best: Option<(ChipWindow, Polygons, [Source; 3])> = None;
    for &red in &of_date {
        let Some(_) = has_band(red, TRUE_COLOUR[0].0, TRUE_COLOUR[0].1) else {
            continue;
        };
        let Ok((crs, gt)) = red.georeference() else {
            continue;
        };
        let mut sources = Vec::with_capacity(3);
        for (b, c) in TRUE_COLOUR {
            let found = std::iter::once(red)
                .chain(of_date.iter().copied())
                .filter(|s| same_grid(red, s))
                .find_map(|s| has_band(s, b, c).map(|i| (s, i)));
            let Some((scene, band)) = found else { break };
            let info = &scene.bands[band];
            let (scale, offset) = match &info.radiometry.source {
                RadiometrySource::Unknown { reason } => {
                    return Err(unprocessable(
                        "unknown_radiometry",
                        format!(
                            "{}: band {}: reflectance unknown ({reason})",
                            scene.path.display(),
                            info.name
                        ),
                    ))
                }
                // Passed on as stored by the analysis: reflectance × 10 000.
                RadiometrySource::Categorical | RadiometrySource::NotSpectral => {
                    (1.0 / gengdi_tiling::radiometry::CANONICAL_SCALE, 0.0)
                }
                _ => (info.radiometry.scale, info.radiometry.offset),
            };
            sources.push(Source {
                scene,
                band,
                nodata: info.nodata,
                scale,
                offset,
            });
        }
        let Ok(sources) = <[Source; 3]>::try_from(sources) else {
            continue;
        };
        let projected = FromWgs84::to(crs)?.polygons(&wgs84)?;
        let Some(pixels) = to_pixels(&projected, &gt) else {
            continue;
        };
        let Some(b) = crate::geometry::bbox(&pixels) else {
            continue;
        };
        let cw = chip_window(b, red.width, red.height);
        if cw.overlap > 0 && best.as_ref().is_none_or(|(w, _, _)| cw.overlap > w.overlap) {
            best = Some((cw, pixels, sources));
        }
    }
    let Some((cw, pixels, sources)) = best else {
        return Err(unprocessable(
            "not_covered",
            format!(
                "no georeferenced scene of {date} with red, green and blue on one grid covers change {}",
                patch.id
            ),
        ));
    };
    let win = cw.window;
    let k = win.cols.max(win.rows).div_ceil(MAX_SIDE).max(1);
    let (out_w, out_h) = (win.cols.div_ceil(k), win.rows.div_ceil(k));
    // RGBA, nodata (in any band) transparent.
    let mut rgba = vec![0u8; out_w * out_h * 4];
    let mut clear = vec![false; out_w * out_h];
    for (c, src) in sources.iter().enumerate() {
        let values = read_decimated(src, &win, k, out_w, out_h)?;
        for (p, v) in values.into_iter().enumerate() {
            if !v.is_finite() || src.nodata == Some(v) {
                clear[p] = true;
            } else {
                rgba[p * 4 + c] = stretch(v * src.scale + src.offset);
            }
        }
    }
    for (p, px) in rgba.chunks_exact_mut(4).enumerate() {
        if clear[p] {
            px.copy_from_slice(&[0, 0, 0, 0]);
        } else {
            px[3] = 255;
        }
    }

    // The outline, in chip pixels.
    let (x0, y0, kf) = (win.col_off as f64, win.row_off as f64, k as f64);
    for poly in &pixels {
        for (i, ring) in poly.iter().enumerate() {
            let chip_ring: Vec<(f64, f64)> = ring
                .iter()
                .map(|&(c, r)| ((snap(c) - x0) / kf, (snap(r) - y0) / kf))
                .collect();
            draw_ring(&mut rgba, out_w, out_h, &chip_ring, i > 0);
        }
    }
    Ok((encode_png(out_w, out_h, &rgba)?, date))
}

/// The values of one band at the chip's pixels (row-major, `out_w × out_h`).
fn read_decimated(
    src: &Source<'_>,
    win: &PixelWindow,
    k: usize,
    out_w: usize,
    out_h: usize,
) -> ApiResult<Vec<f64>> {
    let read = |w: &PixelWindow| {
        src.scene.read_window::<f64>(w, &[src.band]).map_err(|e| {
            ApiError::from(ServiceError::from(gengdi_inference::InferenceError::from(
                e,
            )))
        })
    };
    if k == 1 {
        return Ok(read(win)?.iter().copied().collect());
    }
    let pick = |j: usize, n: usize| (j * k + k / 2).min(n - 1);
    let mut out = Vec::with_capacity(out_w * out_h);
    for i in 0..out_h {
        let row = win.row_off + pick(i, win.rows) as i64;
        let line = read(&PixelWindow::new(win.col_off, row, win.cols, 1))?;
        let line: Vec<f64> = line.iter().copied().collect();
        out.extend((0..out_w).map(|j| line[pick(j, win.cols)]));
    }
    Ok(out)
}

/// Draw a ring 1 pixel wide on the pixels just inside the patch along it (`hole`: the
/// patch is outside the ring).
fn draw_ring(rgba: &mut [u8], w: usize, h: usize, ring: &[(f64, f64)], hole: bool) {
    let n = ring.len();
    if n < 2 {
        return;
    }
    // Signed area: which side of each edge the ring's inside is on.
    let area: f64 = (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    let mut side = if area >= 0.0 { 1.0 } else { -1.0 };
    if hole {
        side = -side;
    }
    const EPS: f64 = 1e-3;
    const STEP: f64 = 0.25;
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + 1) % n]);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = dx.hypot(dy);
        if !(len.is_finite() && len > 2.0 * EPS) {
            continue;
        }
        let (ux, uy) = (dx / len, dy / len);
        // Inward normal.
        let (nx, ny) = (-uy * side, ux * side);
        let steps = ((len - 2.0 * EPS) / STEP).ceil().min(1e6) as usize;
        for s in 0..=steps {
            let t = EPS + (len - 2.0 * EPS) * s as f64 / steps.max(1) as f64;
            let (x, y) = (a.0 + ux * t + nx * EPS, a.1 + uy * t + ny * EPS);
            let (px, py) = (x.floor(), y.floor());
            if px >= 0.0 && py >= 0.0 && px < w as f64 && py < h as f64 {
                let p = (py as usize * w + px as usize) * 4;
                rgba[p..p + 4].copy_from_slice(&OUTLINE);
            }
        }
    }
}

pub(crate) fn encode_png(w: usize, h: usize, rgba: &[u8]) -> ApiResult<Vec<u8>> {
    let err = |e: png::EncodingError| ApiError::internal(format!("encoding the chip: {e}"));
    let (w, h) = (
        u32::try_from(w).map_err(|_| ApiError::internal("chip too wide"))?,
        u32::try_from(h).map_err(|_| ApiError::internal("chip too tall"))?,
    );
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(rgba).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_both_forms_only() {
        let d = NaiveDate::from_ymd_opt(2024, 4, 20);
        assert_eq!(parse_date("2024-04-20"), d);
        assert_eq!(parse_date("20240420"), d);
        for bad in [
            "2024-4-20",
            "2024-04-31",
            "2024/04/20",
            "",
            "x",
            "+2024-4-2",
            "2024042",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn windows_pad_by_half_at_least_16_and_clamp() {
        let cw = chip_window([60.0, 50.0, 100.0, 70.0], 200, 160);
        assert_eq!(cw.patch, [60, 50, 100, 70]);
        assert_eq!(cw.window, PixelWindow::new(40, 34, 80, 52));
        assert_eq!(cw.overlap, 800);
        // Near 0 after a transformation round trip; at the raster's edge.
        let cw = chip_window([2.0 - 1e-9, 150.0, 12.0 + 1e-9, 158.0], 200, 160);
        assert_eq!(cw.window, PixelWindow::new(0, 134, 28, 26));
        let cw = chip_window([-50.0, -50.0, -10.0, -10.0], 200, 160);
        assert_eq!(cw.overlap, 0);
        let cw = chip_window([f64::MAX, 0.0, f64::INFINITY, 1.0], 200, 160);
        assert_eq!(cw.overlap, 0);
    }

    #[test]
    fn the_stretch_is_gamma_over_0_to_0_3() {
        assert_eq!(stretch(0.0), 0);
        assert_eq!(stretch(-0.1), 0);
        assert_eq!(stretch(0.3), 255);
        assert_eq!(stretch(1.0), 255);
        assert_eq!(stretch(f64::NAN), 0);
        assert_eq!(
            stretch(0.15),
            (255.0 * 0.5f64.powf(1.0 / 2.2)).round() as u8
        );
    }

    #[test]
    fn a_pixel_aligned_rectangle_outlines_its_border_pixels() {
        let (w, h) = (10, 8);
        let mut rgba = vec![0u8; w * h * 4];
        // Clockwise and counter-clockwise alike.
        let ring = [(2.0, 1.0), (7.0, 1.0), (7.0, 6.0), (2.0, 6.0)];
        draw_ring(&mut rgba, w, h, &ring, false);
        let mut rev = ring;
        rev.reverse();
        let mut rgba2 = vec![0u8; w * h * 4];
        draw_ring(&mut rgba2, w, h, &rev, false);
        assert_eq!(rgba, rgba2);
        for y in 0..h {
            for x in 0..w {
                let on = (2..7).contains(&x)
                    && (1..6).contains(&y)
                    && (x == 2 || x == 6 || y == 1 || y == 5);
                let p = (y * w + x) * 4;
                assert_eq!(rgba[p..p + 4] == OUTLINE, on, "({x}, {y})");
            }
        }
        // A hole: the pixels just outside it.
        let mut rgba = vec![0u8; w * h * 4];
        draw_ring(&mut rgba, w, h, &ring, true);
        let p = (2 * w + 3) * 4; // inside the ring, not on its border
        assert_eq!(rgba[p..p + 4], [0, 0, 0, 0]);
        let p = (w + 1) * 4; // (1, 1): left of the ring
        assert_eq!(rgba[p..p + 4], OUTLINE);
    }
}
