//! The work of one tile: rasterise its parcels, classify every clear farmland pixel of every
//! date (and of the baseline period), turn each pixel's season into a kind (rules.rs) and
//! accumulate per-parcel evidence and violating pixels into a [`TileOut`].
//!
//! [`analyze_tile`] reads nothing but its inputs and returns the tile's [`TileOut`]; the
//! caller merges it. Its one side effect is writing the tile's class maps to the
//! [`MapSink`], when one is given.

use super::accumulate::{Candidate, ParcelAcc, TileOut, Q, QC};
use super::bands::StackBands;
use super::{MapSink, PixelClassifier, TileMaps};
use crate::error::{InferenceError, Result};
use crate::farmland::Parcel;
use crate::rasterize::{burn, pixel_bbox, PixelPolygon};
use crate::rules::{kind_of, ClassCodes, PixelKind, PixelSeason, RulesConfig, SeasonMeasures};
use gengdi_tiling::{PixelWindow, SceneStack, Tile, TileData, TileGrid};
use ndarray::{Array2, ArrayView4, Axis};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What every tile of one analysis needs, set up once.
pub(super) struct TileContext<'a> {
    /// The season's scenes.
    pub stack: &'a SceneStack,
    pub landcover: &'a dyn PixelClassifier,
    pub parcels: &'a [Parcel],
    pub rules: &'a RulesConfig,
    /// The season stack's bands.
    pub bands: &'a StackBands,
    /// The land-cover model's band names, in its order.
    pub model_band_names: Vec<&'a str>,
    /// The baseline period's stack and its bands.
    pub baseline: Option<(&'a SceneStack, &'a StackBands)>,
    pub classes: ClassCodes,
    pub n_dates: usize,
    pub n_classes: usize,
    /// Every parcel in pixel space, in the order of `parcels`.
    pub pixel_polys: &'a [Vec<PixelPolygon>],
    /// Parcels (indices into `parcels`) touching each tile, by tile index.
    pub buckets: &'a HashMap<usize, Vec<usize>>,
    pub maps: Option<&'a dyn MapSink>,
}

/// Parcels that touch each tile (by pixel-space bounding box).
pub(super) fn bucket_parcels(
    grid: &TileGrid,
    polys: &[Vec<PixelPolygon>],
) -> HashMap<usize, Vec<usize>> {
    let mut buckets: HashMap<usize, Vec<usize>> = HashMap::new();
    let ts = grid.tile_size as f64;
    for (i, p) in polys.iter().enumerate() {
        let b = pixel_bbox(p);
        if !b[0].is_finite() {
            continue;
        }
        let c0 = (b[0] / ts).floor().max(0.0) as usize;
        let r0 = (b[1] / ts).floor().max(0.0) as usize;
        let c1 = ((b[2] / ts).floor().max(0.0) as usize).min(grid.tiles_across().saturating_sub(1));
        let r1 = ((b[3] / ts).floor().max(0.0) as usize).min(grid.tiles_down().saturating_sub(1));
        if b[2] < 0.0 || b[3] < 0.0 || b[0] > grid.width as f64 || b[1] > grid.height as f64 {
            continue;
        }
        for r in r0..=r1 {
            for c in c0..=c1 {
                if let Some(t) = grid.tile_at(c, r) {
                    buckets.entry(t.index).or_default().push(i);
                }
            }
        }
    }
    buckets
}

/// One tile: its parcels' sums and violating pixels (errors name the tile).
pub(super) fn analyze_tile(ctx: &TileContext<'_>, data: &TileData) -> Result<TileOut> {
    let tile = data.tile;
    let in_tile = |source: InferenceError| InferenceError::Tile {
        index: tile.index,
        col: tile.col,
        row: tile.row,
        source: Box::new(source),
    };
    let started = Instant::now();
    let w = tile.core;
    let labels = rasterise_parcels(ctx, &tile);
    let values = data.core();
    let season = classify_season(ctx, &values, &labels).map_err(in_tile)?;
    let base = match ctx.baseline {
        Some((bstack, bb)) => {
            classify_baseline(ctx, bstack, bb, &tile, &labels).map_err(in_tile)?
        }
        None => BaselineClasses::default(),
    };
    let inference = season.inference + base.inference;
    let (mut out, maps) = accumulate_tile(ctx, w, &values, &labels, &season, &base.codes);
    out.decode = data.read_time.saturating_sub(data.warp_time) + base.read;
    out.warp = data.warp_time + base.warp;
    out.inference = inference;
    if let (Some(sink), Some(kind)) = (ctx.maps, maps.kind.as_ref()) {
        sink.write_tile(&TileMaps {
            window: w,
            landcover: &season.codes,
            kind,
            baseline: maps.baseline.as_ref(),
        })
        .map_err(in_tile)?;
    }
    out.aggregation = started.elapsed().saturating_sub(inference + base.read);
    Ok(out)
}

/// The tile's parcel labels ([`Parcel::index`], 0 = no parcel), pixel-centre rule.
fn rasterise_parcels(ctx: &TileContext<'_>, tile: &Tile) -> Array2<u32> {
    let w = tile.core;
    let mut labels = Array2::<u32>::zeros((w.rows, w.cols));
    for &pi in ctx
        .buckets
        .get(&tile.index)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        burn(
            &mut labels,
            w.col_off,
            w.row_off,
            &ctx.pixel_polys[pi],
            ctx.parcels[pi].index,
        );
    }
    labels
}

/// The season's dates of one tile, classified.
struct SeasonClasses {
    /// Per date: land-cover code of each clear farmland pixel (0 elsewhere) …
    codes: Vec<Array2<u8>>,
    /// … the model's confidence …
    confs: Vec<Array2<f32>>,
    /// … and whether the pixel is a clear view of farmland.
    clear: Vec<Array2<bool>>,
    /// Pixels with a value (model bands not nodata) on at least one date.
    observed: Array2<bool>,
    /// Time in the land-cover model.
    inference: Duration,
}

/// The land-cover model on every clear farmland pixel of every date of the season.
fn classify_season(
    ctx: &TileContext<'_>,
    values: &ArrayView4<f32>,
    labels: &Array2<u32>,
) -> Result<SeasonClasses> {
    let model_idx = &ctx.bands.model;
    let mut out = SeasonClasses {
        codes: Vec::with_capacity(ctx.n_dates),
        confs: Vec::with_capacity(ctx.n_dates),
        clear: Vec::with_capacity(ctx.n_dates),
        observed: Array2::<bool>::from_elem(labels.dim(), false),
        inference: Duration::ZERO,
    };
    for d in 0..ctx.n_dates {
        let layer = values.index_axis(Axis(0), d);
        ndarray::Zip::indexed(&mut out.observed).for_each(|(r, c), o| {
            *o = *o || model_idx.iter().all(|&b| layer[[b, r, c]].is_finite());
        });
        let dn = layer.select(Axis(0), model_idx);
        let is_clear = ctx.bands.clear(&layer, labels, ctx.rules);
        let t0 = Instant::now();
        let (mut code, conf) = ctx
            .landcover
            .classify(&ctx.model_band_names, dn.view(), is_clear.view())
            .map_err(|source| InferenceError::Model {
                what: "land-cover model",
                source,
            })?;
        out.inference += t0.elapsed();
        zero_where_not_clear(&mut code, &is_clear);
        out.codes.push(code);
        out.confs.push(conf);
        out.clear.push(is_clear);
    }
    Ok(out)
}

/// The baseline period of one tile, classified.
#[derive(Default)]
struct BaselineClasses {
    /// Per baseline date: land-cover code of each clear farmland pixel (0 elsewhere); empty
    /// without a baseline.
    codes: Vec<Array2<u8>>,
    /// Reading (but for warping), warping, and the land-cover model.
    read: Duration,
    warp: Duration,
    inference: Duration,
}

/// The baseline period: land cover of every clear baseline observation.
fn classify_baseline(
    ctx: &TileContext<'_>,
    bstack: &SceneStack,
    bb: &StackBands,
    tile: &Tile,
    labels: &Array2<u32>,
) -> Result<BaselineClasses> {
    let bdata = bstack
        .read_tile(tile)
        .map_err(|source| InferenceError::Baseline {
            source: Box::new(source.into()),
        })?;
    let mut out = BaselineClasses {
        read: bdata.read_time.saturating_sub(bdata.warp_time),
        warp: bdata.warp_time,
        ..Default::default()
    };
    let bvalues = bdata.core();
    for d in 0..bstack.layers.len() {
        let layer = bvalues.index_axis(Axis(0), d);
        let dn = layer.select(Axis(0), &bb.model);
        let is_clear = bb.clear(&layer, labels, ctx.rules);
        let t0 = Instant::now();
        let (mut code, _) = ctx
            .landcover
            .classify(&ctx.model_band_names, dn.view(), is_clear.view())
            .map_err(|source| InferenceError::Baseline {
                source: Box::new(InferenceError::Model {
                    what: "land-cover model",
                    source,
                }),
            })?;
        out.inference += t0.elapsed();
        zero_where_not_clear(&mut code, &is_clear);
        out.codes.push(code);
    }
    Ok(out)
}

/// The land-cover map of one date `layer` of `stack` (bands × rows × cols, as the stack
/// reads it): the code of every pixel the model sees clearly (class index + 1), 0 where a
/// model band is empty or the cloud mask (SCL, `QA_PIXEL`, else the spectral test of
/// `rules`) says the pixel is not clear. The analysis's own test of a clear pixel and its
/// own call of the model, over every pixel instead of farmland only.
pub fn landcover_map(
    landcover: &dyn PixelClassifier,
    stack: &SceneStack,
    layer: ndarray::ArrayView3<f32>,
    rules: &RulesConfig,
) -> Result<Array2<u8>> {
    let model_bands = landcover.bands();
    let bands = StackBands::of(stack, &model_bands, "land-cover map")?;
    let (_, rows, cols) = layer.dim();
    let everywhere = Array2::<u32>::ones((rows, cols));
    let is_clear = bands.clear(&layer, &everywhere, rules);
    let dn = layer.select(Axis(0), &bands.model);
    let names: Vec<&str> = model_bands.iter().map(String::as_str).collect();
    let (mut code, _) = landcover
        .classify(&names, dn.view(), is_clear.view())
        .map_err(|source| InferenceError::Model {
            what: "land-cover model",
            source,
        })?;
    zero_where_not_clear(&mut code, &is_clear);
    Ok(code)
}

fn zero_where_not_clear(code: &mut Array2<u8>, clear: &Array2<bool>) {
    ndarray::Zip::from(code).and(clear).for_each(|k, &ok| {
        if !ok {
            *k = 0;
        }
    });
}

/// The per-pixel maps of a tile, when maps are asked for.
struct KindMaps {
    /// [`PixelKind`] code of each farmland pixel.
    kind: Option<Array2<u8>>,
    /// Dominant land-cover code of the clear baseline observations of each farmland pixel.
    baseline: Option<Array2<u8>>,
}

/// The season rules on every farmland pixel of the tile, and its per-parcel sums and
/// candidates (timings left at zero).
fn accumulate_tile(
    ctx: &TileContext<'_>,
    w: PixelWindow,
    values: &ArrayView4<f32>,
    labels: &Array2<u32>,
    season: &SeasonClasses,
    base_codes: &[Array2<u8>],
) -> (TileOut, KindMaps) {
    let has_baseline = ctx.baseline.is_some();
    let mut maps = KindMaps {
        kind: ctx.maps.map(|_| Array2::<u8>::zeros((w.rows, w.cols))),
        baseline: ctx
            .maps
            .filter(|_| has_baseline)
            .map(|_| Array2::<u8>::zeros((w.rows, w.cols))),
    };
    let mut bcounts = vec![0u16; if has_baseline { ctx.n_classes + 1 } else { 0 }];
    let mut out = TileOut::default();
    let mut px = PixelSeason::default();
    let mut counts = vec![0u32; ctx.n_classes + 1];
    for r in 0..w.rows {
        for c in 0..w.cols {
            let label = labels[[r, c]];
            if label == 0 {
                continue;
            }
            let conf_q = pixel_season(ctx, values, season, r, c, &mut px, &mut counts);
            let measures = SeasonMeasures::of(&px, &ctx.classes);
            let kind = kind_of(&measures, ctx.rules);
            if let Some(m) = maps.kind.as_mut() {
                m[[r, c]] = kind as u8;
            }
            baseline_counts(base_codes, r, c, &mut bcounts);
            if let Some(m) = maps.baseline.as_mut() {
                m[[r, c]] = dominant(&bcounts) as u8;
            }
            let acc = out.parcels.entry(label).or_insert_with(|| {
                let mut a = ParcelAcc::new(ctx.n_dates, ctx.n_classes, ctx.bands.model.len());
                a.baseline = vec![0; bcounts.len()];
                a
            });
            let pixel = PixelSums {
                observed: season.observed[[r, c]],
                kind,
                conf_q,
                season: &px,
                baseline: &bcounts,
            };
            add_pixel(acc, &pixel, values, season, &ctx.bands.model, r, c);
            if kind.is_violation() {
                let n = px.codes.len().max(1) as i64;
                out.candidates.push(Candidate {
                    parcel: label,
                    col: (w.col_off + c as i64) as i32,
                    row: (w.row_off + r as i64) as i32,
                    kind,
                    class: dominant(&counts) as u8,
                    conf: (conf_q / n).clamp(0, 1000) as u16,
                    baseline: bcounts.clone().into_boxed_slice(),
                    measures,
                });
            }
        }
    }
    (out, maps)
}

/// One pixel's season: its land-cover code and NDVI on each clear date into `px`, its clear
/// observations per land-cover code into `counts`; returns Σ round(confidence·QC).
fn pixel_season(
    ctx: &TileContext<'_>,
    values: &ArrayView4<f32>,
    season: &SeasonClasses,
    r: usize,
    c: usize,
    px: &mut PixelSeason,
    counts: &mut [u32],
) -> i64 {
    let (red, nir) = (ctx.bands.red, ctx.bands.nir);
    px.codes.clear();
    px.ndvi.clear();
    counts.iter_mut().for_each(|n| *n = 0);
    let mut conf_q = 0i64;
    for d in 0..ctx.n_dates {
        if season.clear[d][[r, c]] {
            let code = season.codes[d][[r, c]];
            px.codes.push(code);
            let (rv, nv) = (values[[d, red, r, c]], values[[d, nir, r, c]]);
            px.ndvi.push(if rv + nv > 0.0 {
                (nv - rv) / (nv + rv)
            } else {
                0.0
            });
            conf_q += (season.confs[d][[r, c]] as f64 * QC).round() as i64;
            counts[code as usize] += 1;
        }
    }
    conf_q
}

/// A pixel's clear baseline observations per land-cover code into `bcounts` (empty without
/// a baseline).
fn baseline_counts(base_codes: &[Array2<u8>], r: usize, c: usize, bcounts: &mut [u16]) {
    bcounts.iter_mut().for_each(|n| *n = 0);
    for bc in base_codes {
        let k = bc[[r, c]] as usize;
        if k > 0 && k < bcounts.len() {
            bcounts[k] = bcounts[k].saturating_add(1);
        }
    }
}

/// What one pixel adds to its parcel's sums besides the per-date values.
struct PixelSums<'a> {
    observed: bool,
    kind: PixelKind,
    /// Σ round(confidence·QC) over its clear dates.
    conf_q: i64,
    season: &'a PixelSeason,
    baseline: &'a [u16],
}

/// Add one pixel (row `r`, column `c` of the tile) to its parcel's sums.
fn add_pixel(
    acc: &mut ParcelAcc,
    pixel: &PixelSums<'_>,
    values: &ArrayView4<f32>,
    season: &SeasonClasses,
    model_idx: &[usize],
    r: usize,
    c: usize,
) {
    let kind = pixel.kind;
    for (a, b) in acc.baseline.iter_mut().zip(pixel.baseline) {
        *a += u64::from(*b);
    }
    acc.pixels += 1;
    acc.observed += u64::from(pixel.observed);
    acc.kinds[kind as usize] += 1;
    acc.conf_sum += pixel.conf_q;
    acc.conf_n += pixel.season.codes.len() as u64;
    let band_sum = |s: &mut [i64], d: usize| {
        for (s, &b) in s.iter_mut().zip(model_idx) {
            *s += (values[[d, b, r, c]] as f64 * Q).round() as i64;
        }
    };
    let mut k = 0;
    for (d, da) in acc.dates.iter_mut().enumerate() {
        if !season.clear[d][[r, c]] {
            continue;
        }
        da.clear += 1;
        da.class_counts[season.codes[d][[r, c]] as usize] += 1;
        da.ndvi_sum += (pixel.season.ndvi[k] as f64 * QC).round() as i64;
        k += 1;
        band_sum(&mut da.clear_band_sums, d);
        if kind == PixelKind::Cultivated {
            da.cultivated += 1;
            band_sum(&mut da.band_sums, d);
        }
        if kind == PixelKind::TreePlanting {
            da.woody += 1;
            if da.woody_band_sums.is_empty() {
                da.woody_band_sums = vec![0; model_idx.len()];
            }
            band_sum(&mut da.woody_band_sums, d);
        }
    }
}

/// The most frequent code ≥ 1 (ties: the lowest code), or 0 when every count is 0.
pub(super) fn dominant<T: Copy + Into<u64>>(counts: &[T]) -> usize {
    counts
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| (**n).into() > 0)
        .max_by_key(|(i, n)| ((**n).into(), usize::MAX - i))
        .map(|(i, _)| i)
        .unwrap_or(0)
}
