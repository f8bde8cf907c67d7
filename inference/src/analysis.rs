//! One season analysis: a scene stack × the farmland layer → per-parcel evidence →
//! suspected-change patches.
//!
//! Tiles run in parallel and only where farmland lies; each tile rasterises its parcels
//! (pixel-centre rule, tile-exact), classifies every clear farmland pixel of every date,
//! turns each pixel's season into a kind (rules.rs) and accumulates per-parcel evidence
//! in integers (fixed point), so the result is identical whatever the tile size.

use crate::checkpoint::TileCheckpoints;
use crate::error::{InferenceError, Result};
use crate::farmland::{AdminUnits, FarmlandLayer, Parcel};
use crate::rasterize::{burn, pixel_bbox, ParcelMask, PixelPolygon};
use crate::rules::{
    kind_of, pond_dikes, ClassCodes, PatchEvidence, PixelKind, PixelSeason, RulesConfig,
    SeasonMeasures,
};
use crate::vectorize::{components, majority_smooth, outline};
use chrono::NaiveDate;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gengdi_models::ModelError;
use gengdi_tiling::{AnalysisGrid, PixelWindow, SceneStack, TileGrid};
use ndarray::{Array2, ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// 1 mu in square metres.
pub const M2_PER_MU: f64 = 2000.0 / 3.0;

/// A per-pixel land-cover classifier (the land-cover model behind a small interface, so the
/// analysis can be driven by any model version).
pub trait PixelClassifier: Sync {
    fn id(&self) -> String;
    /// Bands the model needs, by name.
    fn bands(&self) -> Vec<String>;
    /// Class names; code = index + 1, 0 = no data.
    fn class_names(&self) -> Vec<String>;
    /// `dn`: bands × rows × cols in `band_names` order; returns codes and confidence.
    fn classify(
        &self,
        band_names: &[&str],
        dn: ArrayView3<f32>,
        valid: ArrayView2<bool>,
    ) -> std::result::Result<(Array2<u8>, Array2<f32>), ModelError>;
}

/// A season classifier (the crop-type model): one series of (date, DN in `bands()` order) per
/// parcel → (code, confidence); code = class index + 1, 0 = no decision.
pub trait SeasonClassifier: Sync {
    fn id(&self) -> String;
    fn bands(&self) -> Vec<String>;
    fn class_names(&self) -> Vec<String>;
    fn classify(
        &self,
        series: &[Vec<(NaiveDate, Vec<f32>)>],
    ) -> std::result::Result<Vec<(u8, f32)>, ModelError>;
}

/// Fixed-point scale of accumulated reflectance / NDVI sums.
const Q: f64 = 16.0;
const QC: f64 = 1000.0;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct DateAcc {
    clear: u64,
    class_counts: Vec<u64>,
    /// Σ round(DN·Q) of the model bands over clear cultivated pixels, and their count.
    band_sums: Vec<i64>,
    /// Σ round(DN·Q) of the model bands over every clear pixel (the parcel's mean indices).
    clear_band_sums: Vec<i64>,
    cultivated: u64,
    ndvi_sum: i64,
    /// Σ round(DN·Q) of the model bands over clear tree-planting pixels (empty until the
    /// parcel has one), and their count: the season the crop-type model checks.
    woody_band_sums: Vec<i64>,
    woody: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ParcelAcc {
    pixels: u64,
    /// Pixels with a value (model bands not nodata) on at least one date.
    observed: u64,
    kinds: [u64; 7],
    dates: Vec<DateAcc>,
    conf_sum: i64,
    conf_n: u64,
    /// Clear baseline observations per land-cover code (empty without a baseline).
    baseline: Vec<u64>,
}

impl ParcelAcc {
    fn new(n_dates: usize, n_classes: usize, n_bands: usize) -> Self {
        ParcelAcc {
            dates: (0..n_dates)
                .map(|_| DateAcc {
                    class_counts: vec![0; n_classes + 1],
                    band_sums: vec![0; n_bands],
                    clear_band_sums: vec![0; n_bands],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn merge(&mut self, o: &ParcelAcc) {
        self.pixels += o.pixels;
        self.observed += o.observed;
        for (a, b) in self.kinds.iter_mut().zip(o.kinds) {
            *a += b;
        }
        for (a, b) in self.dates.iter_mut().zip(&o.dates) {
            a.clear += b.clear;
            a.cultivated += b.cultivated;
            a.ndvi_sum += b.ndvi_sum;
            for (x, y) in a.class_counts.iter_mut().zip(&b.class_counts) {
                *x += y;
            }
            for (x, y) in a.band_sums.iter_mut().zip(&b.band_sums) {
                *x += y;
            }
            for (x, y) in a.clear_band_sums.iter_mut().zip(&b.clear_band_sums) {
                *x += y;
            }
            a.woody += b.woody;
            if a.woody_band_sums.is_empty() {
                a.woody_band_sums = b.woody_band_sums.clone();
            } else {
                for (x, y) in a.woody_band_sums.iter_mut().zip(&b.woody_band_sums) {
                    *x += y;
                }
            }
        }
        self.conf_sum += o.conf_sum;
        self.conf_n += o.conf_n;
        if self.baseline.len() < o.baseline.len() {
            self.baseline.resize(o.baseline.len(), 0);
        }
        for (a, b) in self.baseline.iter_mut().zip(&o.baseline) {
            *a += b;
        }
    }
}

/// A pixel whose season is a violation.
#[derive(Serialize, Deserialize)]
struct Candidate {
    parcel: u32,
    /// Grid column and row (GDAL raster sizes are C ints, so i32 holds them).
    col: i32,
    row: i32,
    kind: PixelKind,
    /// Dominant land-cover code over the season's clear dates.
    class: u8,
    /// Mean confidence × 1000.
    conf: u16,
    /// Clear baseline observations per land-cover code (empty without a baseline).
    baseline: Box<[u16]>,
    /// What the rules saw.
    measures: SeasonMeasures,
}

// Candidates are held for every violating pixel until the parcels are merged (millions on a
// fully farmed 10980² tile); keep them as small as before the evidence was added.
const _: () = assert!(std::mem::size_of::<Candidate>() <= 48);

/// What one tile contributes to the result; its sums and candidates are what a checkpoint
/// keeps (the timings are not: a tile read back from a checkpoint took no time).
#[derive(Default, Serialize, Deserialize)]
struct TileOut {
    parcels: HashMap<u32, ParcelAcc>,
    candidates: Vec<Candidate>,
    #[serde(skip)]
    decode: Duration,
    #[serde(skip)]
    warp: Duration,
    #[serde(skip)]
    inference: Duration,
    #[serde(skip)]
    aggregation: Duration,
}

/// Every tile's output, merged as soon as the tile is done (integer sums and a candidate list
/// sorted afterwards: the order of merging does not change the result), so no tile's output
/// waits in memory for the others.
#[derive(Default)]
struct Merged {
    acc: BTreeMap<u32, ParcelAcc>,
    candidates: Vec<Candidate>,
    decode: Duration,
    warp: Duration,
    inference: Duration,
    aggregation: Duration,
}

impl Merged {
    fn add(&mut self, out: TileOut) {
        self.decode += out.decode;
        self.warp += out.warp;
        self.inference += out.inference;
        self.aggregation += out.aggregation;
        for (k, v) in out.parcels {
            match self.acc.entry(k) {
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&v),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(v);
                }
            }
        }
        self.candidates.extend(out.candidates);
    }
}

/// Where the time of one analysis went. The tile phases run on every worker thread at once:
/// their figures are thread-seconds summed over workers (their shares are what matters); the
/// parcel phases run after the tiles, on one thread, and are wall seconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseTimings {
    /// Reading and decoding the tiles' pixels (but for `warp_s`).
    pub decode_s: f64,
    /// Putting scenes that are not on the analysis grid onto it: interpolating 20 m / 60 m
    /// bands and other whole-multiple scenes, and the whole of each GDAL warped read
    /// (which decodes its source as well).
    pub warp_s: f64,
    /// The land-cover model on every clear farmland pixel of every date.
    pub inference_s: f64,
    /// Clear-sky masks, rasterising parcels, the season rules per pixel, per-parcel sums (and
    /// writing the class-map tiles when maps are asked for).
    pub aggregation_s: f64,
    /// Wall time of the parallel tile phase (the three above, spread over the workers).
    pub tiles_wall_s: f64,
    /// The crop-type model over the PBF parcels' season series (wall).
    pub crop_type_s: f64,
    /// Patches: connected components, outlines, equal-area areas, parcel verdicts (wall).
    pub vectorisation_s: f64,
}

impl PhaseTimings {
    /// Shares of decode / warp / inference / aggregation / vectorisation (incl. crop type)
    /// in the total, with the thread-summed tile phases scaled to the tile phase's wall time.
    pub fn shares(&self) -> [(&'static str, f64); 5] {
        let busy = self.decode_s + self.warp_s + self.inference_s + self.aggregation_s;
        let scale = if busy > 0.0 {
            self.tiles_wall_s / busy
        } else {
            0.0
        };
        let parts = [
            ("decode", self.decode_s * scale),
            ("warp", self.warp_s * scale),
            ("inference", self.inference_s * scale),
            ("aggregation", self.aggregation_s * scale),
            ("vectorisation", self.vectorisation_s + self.crop_type_s),
        ];
        let total: f64 = parts
            .iter()
            .map(|p| p.1)
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        parts.map(|(n, v)| (n, v / total))
    }
}

/// A parcel's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ParcelStatus {
    pub parcel_id: String,
    pub pbf: bool,
    /// Codes and names of the administrative units (from the parcel's attributes, else the
    /// `--admin` layer).
    #[serde(flatten)]
    pub admin: AdminUnits,
    pub status: ParcelState,
    pub pixels: u64,
    /// Pixels per season kind.
    pub kinds: BTreeMap<String, u64>,
    /// Clear pixels per date.
    pub clear_pixels: Vec<u64>,
    /// Mean NDVI of clear pixels per date (None without any).
    pub mean_ndvi: Vec<Option<f64>>,
    /// Per date: land-cover class fractions and mean spectral indices of the clear pixels
    /// (None without any) — the parcel's evidence time series.
    pub evidence: Vec<Option<DateEvidence>>,
    /// Crop type over the season (PBF and cultivated parcels), with confidence.
    pub crop_type: Option<(String, f32)>,
    /// The crop-type model's class of the mean season of the parcel's tree-planting pixels,
    /// with confidence (parcels with such pixels, when a crop-type model is loaded). An annual
    /// crop here drops the parcel's tree-planting patches (`tree_annual_crop_veto`).
    pub tree_check: Option<(String, f32)>,
    pub flags: Vec<String>,
}

/// What the analysis concluded about a parcel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParcelState {
    /// Analysed, nothing to report.
    Ok,
    /// At least one patch (see the parcel's flags).
    Flagged,
    /// Too many of its pixels lack clear observations (`max_insufficient_fraction`).
    InsufficientObservations,
    /// No pixel centre of the imagery grid lies in the parcel (outside the scenes, or
    /// smaller than a pixel), or none of its pixels has a value on any date.
    NotCovered,
}

impl ParcelState {
    /// The name in the outputs (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            ParcelState::Ok => "ok",
            ParcelState::Flagged => "flagged",
            ParcelState::InsufficientObservations => "insufficient_observations",
            ParcelState::NotCovered => "not_covered",
        }
    }
}

impl std::fmt::Display for ParcelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ParcelState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One date of a parcel's evidence (compact: one of these per parcel and date is kept).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DateEvidence {
    /// Fraction of the clear pixels in each land-cover class, in the order of
    /// [`AnalysisResult::class_names`].
    pub class_fractions: Vec<f32>,
    /// Indices of the parcel's mean clear reflectance (None when the land-cover model does not
    /// read the bands they need).
    pub ndvi: Option<f32>,
    pub ndwi: Option<f32>,
    pub mndwi: Option<f32>,
    pub bsi: Option<f32>,
    pub ndbi: Option<f32>,
}

/// Normalised difference, None when both are 0.
fn nd(a: f64, b: f64) -> Option<f32> {
    (a + b != 0.0).then(|| ((a - b) / (a + b)) as f32)
}

fn date_evidence(d: &DateAcc, bands: &[String]) -> Option<DateEvidence> {
    if d.clear == 0 {
        return None;
    }
    let n = d.clear as f64;
    let mean = |names: &[&str]| {
        bands
            .iter()
            .position(|b| names.iter().any(|n| b.eq_ignore_ascii_case(n)))
            .map(|i| d.clear_band_sums[i] as f64 / Q / n)
    };
    let (blue, green, red) = (
        mean(&["B02", "blue"]),
        mean(&["B03", "green"]),
        mean(&["B04", "red"]),
    );
    let (nir, swir) = (mean(&["B08", "nir"]), mean(&["B11", "swir16"]));
    Some(DateEvidence {
        class_fractions: d
            .class_counts
            .iter()
            .skip(1)
            .map(|c| (*c as f64 / n) as f32)
            .collect(),
        ndvi: nir.zip(red).and_then(|(n, r)| nd(n, r)),
        ndwi: green.zip(nir).and_then(|(g, n)| nd(g, n)),
        mndwi: green.zip(swir).and_then(|(g, s)| nd(g, s)),
        bsi: swir
            .zip(red)
            .zip(nir.zip(blue))
            .and_then(|((s, r), (n, b))| nd(s + r, n + b)),
        ndbi: swir.zip(nir).and_then(|(s, n)| nd(s, n)),
    })
}

/// A suspected-change patch (图斑).
#[derive(Clone, Debug, Serialize)]
pub struct PatchRecord {
    pub id: String,
    pub kind: String,
    pub parcel_id: String,
    pub pbf: bool,
    pub area_m2: f64,
    pub area_mu: f64,
    pub county_code: Option<String>,
    pub township_code: Option<String>,
    pub village_code: Option<String>,
    pub group_code: Option<String>,
    pub county_name: Option<String>,
    pub township_name: Option<String>,
    pub village_name: Option<String>,
    pub group_name: Option<String>,
    pub location_name: Option<String>,
    pub class_before: String,
    pub class_after: String,
    pub dates: Vec<NaiveDate>,
    pub confidence: f64,
    pub model_version: String,
    pub status: String,
    /// What triggered the patch, in words, with each rule's threshold.
    pub evidence: String,
    /// Polygons → rings → (x, y) in the analysis grid's CRS.
    #[serde(skip)]
    pub polygons: Vec<Vec<Vec<(f64, f64)>>>,
}

/// Everything one analysis produced.
#[derive(Clone, Debug, Serialize)]
pub struct AnalysisResult {
    pub dates: Vec<Option<NaiveDate>>,
    pub tiles_total: usize,
    pub tiles_with_farmland: usize,
    pub parcels: Vec<ParcelStatus>,
    pub patches: Vec<PatchRecord>,
    pub model_version: String,
    pub timings: PhaseTimings,
    /// The land-cover classes, in the order of [`DateEvidence::class_fractions`].
    pub class_names: Vec<String>,
    /// Dates of the baseline period (empty without one).
    pub baseline_dates: Vec<Option<NaiveDate>>,
    /// Parcels whose tree-planting pixels the crop-type model called an annual crop over the
    /// season, so their tree-planting patches were not reported (`tree_annual_crop_veto`).
    pub tree_planting_vetoed: Vec<String>,
}

/// What the analysis needs.
pub struct AnalysisInput<'a> {
    pub stack: &'a SceneStack,
    pub farmland: &'a FarmlandLayer,
    pub landcover: &'a dyn PixelClassifier,
    pub croptype: Option<&'a dyn SeasonClassifier>,
    pub rules: &'a RulesConfig,
    pub tile_size: usize,
}

/// What an analysis may do besides the season: a baseline period and class maps.
#[derive(Default)]
pub struct AnalysisOptions<'a> {
    /// Scenes of an earlier period, on the season stack's grid (build them with
    /// `StackOptions { grid: Some(season.grid.clone()), .. }`, which warps other grids onto
    /// it). A patch's `class_before` becomes the dominant land-cover class of the clear
    /// baseline observations of its pixels (the register's land class when it has none).
    pub baseline: Option<&'a SceneStack>,
    /// Receives each analysed tile's per-pixel maps (see [`MapSink`]).
    pub maps: Option<&'a dyn MapSink>,
    /// Each finished tile's output is written here, and tiles found here are merged instead
    /// of analysed again (see [`crate::checkpoint`]). Class maps are not checkpointed: a
    /// run with both refuses to start.
    pub checkpoints: Option<&'a TileCheckpoints>,
}

/// Per-pixel maps of one analysed tile (only tiles with farmland are analysed; pixels of
/// other tiles are never written). Codes: 0 = not farmland / not clear / no data.
pub struct TileMaps<'a> {
    /// The tile's pixels on the analysis grid.
    pub window: PixelWindow,
    /// Land-cover code (class index + 1) of each clear farmland pixel, one plane per date.
    pub landcover: &'a [Array2<u8>],
    /// [`PixelKind`] code of each farmland pixel (0 outside farmland).
    pub kind: &'a Array2<u8>,
    /// Dominant land-cover code of the clear baseline observations of each farmland pixel.
    pub baseline: Option<&'a Array2<u8>>,
}

/// Where per-tile maps go (e.g. COG writers); called from the worker threads.
pub trait MapSink: Sync {
    fn write_tile(&self, maps: &TileMaps<'_>) -> Result<()>;
}

/// Where the bands the analysis reads sit in a stack.
struct StackBands {
    model: Vec<usize>,
    red: usize,
    nir: usize,
    blue: Option<usize>,
    green: Option<usize>,
    swir: Option<usize>,
    mask: Option<CloudMask>,
}

/// The band that says which pixels are clear.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CloudMask {
    /// Sentinel-2 scene classification: clear unless its class is in `scl_not_clear`.
    Scl(usize),
    /// Landsat Collection 2 `QA_PIXEL`: clear unless a fill, cloud, shadow, cirrus or snow
    /// bit is set.
    QaPixel(usize),
}

impl CloudMask {
    /// Whether the mask value `v` of a pixel says it is clear.
    fn is_clear(self, v: f32, rules: &RulesConfig) -> bool {
        v.is_finite()
            && match self {
                CloudMask::Scl(_) => !rules.scl_not_clear.contains(&(v as u8)),
                CloudMask::QaPixel(_) => {
                    gengdi_tiling::product::landsat::qa_pixel_is_clear(v as u16)
                }
            }
    }

    fn band(self) -> usize {
        match self {
            CloudMask::Scl(b) | CloudMask::QaPixel(b) => b,
        }
    }
}

impl StackBands {
    fn of(stack: &SceneStack, model_bands: &[String], what: &str) -> Result<StackBands> {
        let model: Vec<usize> = model_bands
            .iter()
            .map(|b| {
                stack
                    .band_names
                    .iter()
                    .position(|s| s.eq_ignore_ascii_case(b))
                    .ok_or_else(|| InferenceError::Config {
                        what: what.into(),
                        reason: format!(
                            "the land-cover model needs band {b}; the stack has {}",
                            stack.band_names.join(", ")
                        ),
                    })
            })
            .collect::<Result<_>>()?;
        let (Some(red), Some(nir)) = (
            band_pos(stack, &["B04", "red"]),
            band_pos(stack, &["B08", "nir"]),
        ) else {
            return Err(InferenceError::Config {
                what: what.into(),
                reason: "the rules need red (B04) and near-infrared (B08) bands".into(),
            });
        };
        Ok(StackBands {
            model,
            red,
            nir,
            blue: band_pos(stack, &["B02", "blue"]),
            green: band_pos(stack, &["B03", "green"]),
            swir: band_pos(stack, &["B11", "swir16"]),
            mask: cloud_mask(stack),
        })
    }

    /// Clear farmland pixels of one date's `layer` (bands × rows × cols): farmland, model
    /// bands valid, and clear by SCL (or the spectral test without SCL).
    fn clear(
        &self,
        layer: &ArrayView3<f32>,
        labels: &Array2<u32>,
        rules: &RulesConfig,
    ) -> Array2<bool> {
        Array2::from_shape_fn(labels.dim(), |(r, c)| {
            if labels[[r, c]] == 0 {
                return false;
            }
            if self.model.iter().any(|&b| !layer[[b, r, c]].is_finite()) {
                return false;
            }
            match self.mask {
                Some(m) => m.is_clear(layer[[m.band(), r, c]], rules),
                None => spectral_clear(
                    layer, r, c, self.blue, self.green, self.nir, self.swir, rules,
                ),
            }
        })
    }
}

/// The most frequent code ≥ 1 (ties: the lowest code), or 0 when every count is 0.
fn dominant<T: Copy + Into<u64>>(counts: &[T]) -> usize {
    counts
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| (**n).into() > 0)
        .max_by_key(|(i, n)| ((**n).into(), usize::MAX - i))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// The stack band that masks clouds: the Sentinel-2 SCL, else Landsat's `QA_PIXEL`.
fn cloud_mask(stack: &SceneStack) -> Option<CloudMask> {
    let find = |name: &str| {
        stack
            .band_names
            .iter()
            .position(|b| b.eq_ignore_ascii_case(name))
    };
    find("SCL")
        .map(CloudMask::Scl)
        .or_else(|| find("QA_PIXEL").map(CloudMask::QaPixel))
}

fn band_pos(stack: &SceneStack, names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| {
        stack
            .band_names
            .iter()
            .position(|b| b.eq_ignore_ascii_case(n))
    })
}

/// Run the analysis.
pub fn analyze(
    input: &AnalysisInput<'_>,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<AnalysisResult> {
    analyze_with(input, &AnalysisOptions::default(), progress)
}

/// Run the analysis with a baseline period and / or class maps.
pub fn analyze_with(
    input: &AnalysisInput<'_>,
    opts: &AnalysisOptions<'_>,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<AnalysisResult> {
    analyze_until(input, opts, progress, None)
}

/// [`analyze_with`] that stops when `cancel` is set (checked before each tile is read:
/// `InferenceError::Tiling(TilingError::Cancelled { .. })`). A tile that cannot be read is a
/// `TilingError::Tile`; one that cannot be analysed an [`InferenceError::Tile`]; either stops
/// the run.
pub fn analyze_until(
    input: &AnalysisInput<'_>,
    opts: &AnalysisOptions<'_>,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    cancel: Option<&AtomicBool>,
) -> Result<AnalysisResult> {
    let stack = input.stack;
    let rules = input.rules;
    let grid = stack.tile_grid(input.tile_size, 0)?;
    let model_bands = input.landcover.bands();
    let sb = StackBands::of(stack, &model_bands, "scene stack")?;
    let model_idx = sb.model.clone();
    let (red, nir) = (sb.red, sb.nir);
    let baseline = match opts.baseline {
        Some(b) => {
            if !b.grid.same_as(&stack.grid) {
                return Err(InferenceError::Config {
                    what: "baseline".into(),
                    reason: format!(
                        "the baseline stack is on a {} x {} grid in {}, not on the season's {} x {} grid in {}; build it on the season's grid",
                        b.grid.width, b.grid.height, b.grid.crs.name,
                        stack.grid.width, stack.grid.height, stack.grid.crs.name
                    ),
                });
            }
            Some((b, StackBands::of(b, &model_bands, "baseline stack")?))
        }
        None => None,
    };
    let model_band_names: Vec<&str> = model_bands.iter().map(String::as_str).collect();
    let class_names = input.landcover.class_names();
    let classes = ClassCodes::from_names(&class_names);
    let n_dates = stack.layers.len();
    let n_classes = class_names.len();

    // Parcels in pixel space, bucketed by tile.
    let gt = stack.grid.world_from_pixel;
    let pixel_polys: Vec<Vec<PixelPolygon>> = input
        .farmland
        .parcels
        .iter()
        .map(|p| p.pixel_polygons(&gt))
        .collect();
    let buckets = bucket_parcels(&grid, &pixel_polys);
    let tiles_with_farmland = buckets.len();

    if opts.checkpoints.is_some() && opts.maps.is_some() {
        return Err(InferenceError::Config {
            what: "checkpoints".into(),
            reason: "tile checkpoints do not hold class maps: a resumable run cannot write maps"
                .into(),
        });
    }
    let tiles_started = Instant::now();
    let mut merged = Merged::default();
    // Tiles a stopped run of this analysis finished.
    let mut resumed = HashSet::new();
    if let Some(cp) = opts.checkpoints {
        for index in cp.finished()? {
            if !buckets.contains_key(&index) {
                continue;
            }
            if let Some(out) = cp.load::<TileOut>(index) {
                merged.add(out);
                resumed.insert(index);
            }
        }
        if !resumed.is_empty() {
            tracing::info!(
                "analysis: {} of {} tiles with farmland read back from {}",
                resumed.len(),
                tiles_with_farmland,
                cp.dir().display()
            );
        }
    }
    let n_resumed = resumed.len();
    let progress_all = |done: usize, total: usize| {
        if let Some(p) = progress {
            p(done + n_resumed, total + n_resumed);
        }
    };
    let merged = std::sync::Mutex::new(merged);
    stack.try_par_map_tiles(
        &grid,
        |t| !buckets.contains_key(&t.index) || resumed.contains(&t.index),
        |data| -> Result<()> {
            let tile = data.tile;
            let in_tile = |source: InferenceError| InferenceError::Tile {
                index: tile.index,
                col: tile.col,
                row: tile.row,
                source: Box::new(source),
            };
            let started = Instant::now();
            let mut inference = Duration::ZERO;
            let w = tile.core;
            let mut labels = Array2::<u32>::zeros((w.rows, w.cols));
            for &pi in buckets.get(&tile.index).map(Vec::as_slice).unwrap_or(&[]) {
                burn(
                    &mut labels,
                    w.col_off,
                    w.row_off,
                    &pixel_polys[pi],
                    input.farmland.parcels[pi].index,
                );
            }
            let values = data.core();
            let mut codes = Vec::with_capacity(n_dates);
            let mut confs = Vec::with_capacity(n_dates);
            let mut clear = Vec::with_capacity(n_dates);
            let mut observed = Array2::<bool>::from_elem((w.rows, w.cols), false);
            for d in 0..n_dates {
                let layer = values.index_axis(Axis(0), d);
                ndarray::Zip::indexed(&mut observed).for_each(|(r, c), o| {
                    *o = *o || model_idx.iter().all(|&b| layer[[b, r, c]].is_finite());
                });
                let dn = layer.select(Axis(0), &model_idx);
                let is_clear = sb.clear(&layer, &labels, rules);
                let t0 = Instant::now();
                let (mut code, conf) = input
                    .landcover
                    .classify(&model_band_names, dn.view(), is_clear.view())
                    .map_err(|source| {
                        in_tile(InferenceError::Model {
                            what: "land-cover model",
                            source,
                        })
                    })?;
                inference += t0.elapsed();
                ndarray::Zip::from(&mut code)
                    .and(&is_clear)
                    .for_each(|k, &ok| {
                        if !ok {
                            *k = 0;
                        }
                    });
                codes.push(code);
                confs.push(conf);
                clear.push(is_clear);
            }
            // The baseline period: land cover of every clear baseline observation.
            let mut base_codes: Vec<Array2<u8>> = Vec::new();
            let mut baseline_read = Duration::ZERO;
            let mut baseline_warp = Duration::ZERO;
            if let Some((bstack, bb)) = &baseline {
                let bdata = bstack.read_tile(&tile).map_err(|source| {
                    in_tile(InferenceError::Baseline {
                        source: Box::new(source.into()),
                    })
                })?;
                baseline_read = bdata.read_time.saturating_sub(bdata.warp_time);
                baseline_warp = bdata.warp_time;
                let bvalues = bdata.core();
                for d in 0..bstack.layers.len() {
                    let layer = bvalues.index_axis(Axis(0), d);
                    let dn = layer.select(Axis(0), &bb.model);
                    let is_clear = bb.clear(&layer, &labels, rules);
                    let t0 = Instant::now();
                    let (mut code, _) = input
                        .landcover
                        .classify(&model_band_names, dn.view(), is_clear.view())
                        .map_err(|source| {
                            in_tile(InferenceError::Baseline {
                                source: Box::new(InferenceError::Model {
                                    what: "land-cover model",
                                    source,
                                }),
                            })
                        })?;
                    inference += t0.elapsed();
                    ndarray::Zip::from(&mut code)
                        .and(&is_clear)
                        .for_each(|k, &ok| {
                            if !ok {
                                *k = 0;
                            }
                        });
                    base_codes.push(code);
                }
            }
            let mut kind_map = opts.maps.map(|_| Array2::<u8>::zeros((w.rows, w.cols)));
            let mut base_map = opts
                .maps
                .filter(|_| baseline.is_some())
                .map(|_| Array2::<u8>::zeros((w.rows, w.cols)));
            let mut bcounts = vec![0u16; if baseline.is_some() { n_classes + 1 } else { 0 }];
            let mut out = TileOut {
                decode: data.read_time.saturating_sub(data.warp_time) + baseline_read,
                warp: data.warp_time + baseline_warp,
                inference,
                ..Default::default()
            };
            let mut season = PixelSeason::default();
            for r in 0..w.rows {
                for c in 0..w.cols {
                    let label = labels[[r, c]];
                    if label == 0 {
                        continue;
                    }
                    season.codes.clear();
                    season.ndvi.clear();
                    let mut conf_q = 0i64;
                    let mut counts = vec![0u32; n_classes + 1];
                    for d in 0..n_dates {
                        if clear[d][[r, c]] {
                            let code = codes[d][[r, c]];
                            season.codes.push(code);
                            let (rv, nv) = (values[[d, red, r, c]], values[[d, nir, r, c]]);
                            season.ndvi.push(if rv + nv > 0.0 {
                                (nv - rv) / (nv + rv)
                            } else {
                                0.0
                            });
                            conf_q += (confs[d][[r, c]] as f64 * QC).round() as i64;
                            counts[code as usize] += 1;
                        }
                    }
                    let measures = SeasonMeasures::of(&season, &classes);
                    let kind = kind_of(&measures, rules);
                    if let Some(m) = kind_map.as_mut() {
                        m[[r, c]] = kind as u8;
                    }
                    bcounts.iter_mut().for_each(|n| *n = 0);
                    for bc in &base_codes {
                        let k = bc[[r, c]] as usize;
                        if k > 0 && k < bcounts.len() {
                            bcounts[k] = bcounts[k].saturating_add(1);
                        }
                    }
                    if let Some(m) = base_map.as_mut() {
                        m[[r, c]] = dominant(&bcounts) as u8;
                    }
                    let acc = out.parcels.entry(label).or_insert_with(|| {
                        let mut a = ParcelAcc::new(n_dates, n_classes, model_idx.len());
                        a.baseline = vec![0; bcounts.len()];
                        a
                    });
                    for (a, b) in acc.baseline.iter_mut().zip(&bcounts) {
                        *a += u64::from(*b);
                    }
                    acc.pixels += 1;
                    acc.observed += u64::from(observed[[r, c]]);
                    acc.kinds[kind as usize] += 1;
                    acc.conf_sum += conf_q;
                    acc.conf_n += season.codes.len() as u64;
                    let mut k = 0;
                    for d in 0..n_dates {
                        if !clear[d][[r, c]] {
                            continue;
                        }
                        let da = &mut acc.dates[d];
                        da.clear += 1;
                        da.class_counts[codes[d][[r, c]] as usize] += 1;
                        da.ndvi_sum += (season.ndvi[k] as f64 * QC).round() as i64;
                        k += 1;
                        for (s, &b) in da.clear_band_sums.iter_mut().zip(&model_idx) {
                            *s += (values[[d, b, r, c]] as f64 * Q).round() as i64;
                        }
                        if kind == PixelKind::Cultivated {
                            da.cultivated += 1;
                            for (s, &b) in da.band_sums.iter_mut().zip(&model_idx) {
                                *s += (values[[d, b, r, c]] as f64 * Q).round() as i64;
                            }
                        }
                        if kind == PixelKind::TreePlanting {
                            da.woody += 1;
                            if da.woody_band_sums.is_empty() {
                                da.woody_band_sums = vec![0; model_idx.len()];
                            }
                            for (s, &b) in da.woody_band_sums.iter_mut().zip(&model_idx) {
                                *s += (values[[d, b, r, c]] as f64 * Q).round() as i64;
                            }
                        }
                    }
                    if kind.is_violation() {
                        let n = season.codes.len().max(1) as i64;
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
            if let (Some(sink), Some(kind)) = (opts.maps, kind_map.as_ref()) {
                sink.write_tile(&TileMaps {
                    window: w,
                    landcover: &codes,
                    kind,
                    baseline: base_map.as_ref(),
                })
                .map_err(in_tile)?;
            }
            if let Some(cp) = opts.checkpoints {
                cp.save(tile.index, &out).map_err(in_tile)?;
            }
            // Merging (and checkpointing) counts as aggregation.
            out.aggregation = started.elapsed().saturating_sub(inference + baseline_read);
            merged
                .lock()
                .map_err(|_| {
                    in_tile(InferenceError::Poisoned {
                        what: "the merged tile results",
                    })
                })?
                .add(out);
            Ok(())
        },
        Some(&progress_all),
        cancel,
    )?;
    let Merged {
        acc,
        mut candidates,
        decode,
        warp,
        inference,
        aggregation,
    } = merged.into_inner().map_err(|_| InferenceError::Poisoned {
        what: "the merged tile results",
    })?;
    let mut timings = PhaseTimings {
        tiles_wall_s: tiles_started.elapsed().as_secs_f64(),
        decode_s: decode.as_secs_f64(),
        warp_s: warp.as_secs_f64(),
        inference_s: inference.as_secs_f64(),
        aggregation_s: aggregation.as_secs_f64(),
        ..Default::default()
    };
    candidates.sort_by_key(|c| (c.parcel, c.kind, c.row, c.col));

    let dates: Vec<Option<NaiveDate>> = stack.layers.iter().map(|l| l.date).collect();
    let model_version = match input.croptype {
        Some(ct) => format!("{}+{}", input.landcover.id(), ct.id()),
        None => input.landcover.id(),
    };
    let area = EqualArea::for_grid(&stack.grid)?;
    let (px_w, px_h) = gt.pixel_size();
    let pixel_area_grid = px_w * px_h;

    // Crop type for PBF parcels with a cultivated season, and the season check of the
    // parcels with tree-planting pixels.
    let crop_started = Instant::now();
    let crop = season_classes(input, &acc, stack, |p, a| {
        p.pbf.then(|| {
            a.dates
                .iter()
                .map(|d| (d.cultivated, &d.band_sums))
                .collect()
        })
    })?;
    let tree_check = season_classes(input, &acc, stack, |_, a| {
        (a.kinds[PixelKind::TreePlanting as usize] > 0).then(|| {
            a.dates
                .iter()
                .map(|d| (d.woody, &d.woody_band_sums))
                .collect()
        })
    })?;
    timings.crop_type_s = crop_started.elapsed().as_secs_f64();
    let vector_started = Instant::now();

    let mut parcels_out = Vec::new();
    let mut patches = Vec::new();
    let mut tree_planting_vetoed = Vec::new();
    for (pi, parcel) in input.farmland.parcels.iter().enumerate() {
        let Some(a) = acc.get(&parcel.index).filter(|a| a.observed > 0) else {
            // No pixel centre of the grid lies in the parcel (outside the imagery, or
            // smaller than a pixel), or none of its pixels has a value on any date (outside
            // every scene's footprint). Reported, never dropped.
            parcels_out.push(ParcelStatus {
                parcel_id: parcel.id.clone(),
                pbf: parcel.pbf,
                admin: parcel.admin.clone(),
                status: ParcelState::NotCovered,
                pixels: acc.get(&parcel.index).map_or(0, |a| a.pixels),
                kinds: BTreeMap::new(),
                clear_pixels: vec![0; n_dates],
                mean_ndvi: vec![None; n_dates],
                evidence: vec![None; n_dates],
                crop_type: None,
                tree_check: None,
                flags: Vec::new(),
            });
            continue;
        };
        let kinds: BTreeMap<String, u64> = a
            .kinds
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (PixelKind::from_code(k as u8).name().to_string(), *n))
            .collect();
        let insufficient =
            a.kinds[PixelKind::InsufficientObservations as usize] as f64 / a.pixels.max(1) as f64;
        let clear_dates: Vec<NaiveDate> = a
            .dates
            .iter()
            .zip(&dates)
            .filter(|(d, _)| d.clear > 0)
            .filter_map(|(_, date)| *date)
            .collect();
        let mut status = ParcelStatus {
            parcel_id: parcel.id.clone(),
            pbf: parcel.pbf,
            admin: parcel.admin.clone(),
            status: ParcelState::Ok,
            pixels: a.pixels,
            kinds,
            clear_pixels: a.dates.iter().map(|d| d.clear).collect(),
            mean_ndvi: a
                .dates
                .iter()
                .map(|d| (d.clear > 0).then(|| d.ndvi_sum as f64 / QC / d.clear as f64))
                .collect(),
            evidence: a
                .dates
                .iter()
                .map(|d| date_evidence(d, &model_bands))
                .collect(),
            crop_type: crop.get(&parcel.index).cloned(),
            tree_check: tree_check.get(&parcel.index).cloned(),
            flags: Vec::new(),
        };
        if insufficient > rules.max_insufficient_fraction {
            status.status = ParcelState::InsufficientObservations;
            parcels_out.push(status);
            continue;
        }
        let register_class = parcel
            .land_class_name
            .clone()
            .or_else(|| parcel.land_class.clone())
            .unwrap_or_else(|| "cropland".into());
        // With a baseline: its dominant class over the patch's pixels, else the register's.
        let before_of = |counts: &[u64]| -> String {
            match dominant(counts) {
                0 => register_class.clone(),
                k => class_names
                    .get(k - 1)
                    .cloned()
                    .unwrap_or_else(|| register_class.clone()),
            }
        };
        // Pixel-level violations: one patch per 4-connected component ≥ the mapping unit.
        let lo = candidates.partition_point(|c| c.parcel < parcel.index);
        let hi = candidates.partition_point(|c| c.parcel <= parcel.index);
        let mine = if rules.monitors(parcel.land_class.as_deref(), parcel.pbf) {
            &candidates[lo..hi]
        } else {
            &[]
        };
        // The parcel's pixels around its candidates: smoothing looks two pixels beyond them.
        let mask = (!mine.is_empty()).then(|| {
            let (c0, c1) = mine.iter().fold((i32::MAX, i32::MIN), |(a, b), c| {
                (a.min(c.col), b.max(c.col))
            });
            let (r0, r1) = mine.iter().fold((i32::MAX, i32::MIN), |(a, b), c| {
                (a.min(c.row), b.max(c.row))
            });
            let w = |v: i32, d: i64| i64::from(v) + d;
            ParcelMask::new(&pixel_polys[pi], w(c0, -2), w(r0, -2), w(c1, 2), w(r1, 2))
        });
        let (groups, dike_pixels) = kind_groups(mine, rules.fishpond_dike_px);
        for (kind, group) in groups {
            // Tree planting the season model calls an annual crop is a dense summer canopy.
            let season_check = (kind == PixelKind::TreePlanting)
                .then(|| tree_check.get(&parcel.index))
                .flatten();
            if let Some((class, conf)) = season_check {
                if rules.tree_planting_vetoed(class, *conf) {
                    tree_planting_vetoed.push(parcel.id.clone());
                    continue;
                }
            }
            let mut pixels: Vec<(i64, i64)> = group
                .iter()
                .map(|c| (i64::from(c.col), i64::from(c.row)))
                .collect();
            let Some(mask) = &mask else { break };
            if rules.smooth_patches {
                pixels = smooth_in_parcel(&pixels, mask);
            }
            let info: HashMap<(i64, i64), &Candidate> = group
                .iter()
                .map(|c| ((i64::from(c.col), i64::from(c.row)), *c))
                .collect();
            for comp in components(&pixels) {
                if (comp.len() as f64 * pixel_area_grid) / M2_PER_MU < rules.min_patch_mu {
                    continue;
                }
                let pure_mu = || {
                    let pure = comp.iter().filter(|&&(c, r)| mask.pure(c, r)).count();
                    (pure as f64 * pixel_area_grid) / M2_PER_MU
                };
                if !rules.enough_pure_pixels(kind, pure_mu) {
                    continue;
                }
                let rings = outline(&comp);
                let world: Vec<Vec<(f64, f64)>> = rings
                    .iter()
                    .map(|ring| {
                        ring.iter()
                            .map(|&(x, y)| gt.world_from_pixel(x as f64, y as f64))
                            .collect()
                    })
                    .collect();
                let area_m2 = area.area_m2(std::slice::from_ref(&world))?;
                let mut class_votes = vec![0u64; n_classes + 1];
                let mut base_votes = vec![0u64; n_classes + 1];
                let (mut conf, mut conf_n) = (0u64, 0u64);
                let mut evidence = PatchEvidence::default();
                for p in &comp {
                    if let Some(cand) = info.get(p) {
                        evidence.add(&cand.measures);
                        class_votes[cand.class as usize] += 1;
                        conf += cand.conf as u64;
                        conf_n += 1;
                        for (v, n) in base_votes.iter_mut().zip(&cand.baseline) {
                            *v += u64::from(*n);
                        }
                    }
                }
                let after = class_votes
                    .iter()
                    .enumerate()
                    .skip(1)
                    .max_by_key(|(i, n)| (**n, usize::MAX - i))
                    .and_then(|(i, _)| class_names.get(i - 1).cloned())
                    .unwrap_or_default();
                status.flags.push(kind.name().to_string());
                let mut patch = make_patch(
                    parcel,
                    kind.name(),
                    before_of(&base_votes),
                    after,
                    area_m2,
                    conf as f64 / conf_n.max(1) as f64 / QC,
                    &clear_dates,
                    &model_version,
                    vec![world],
                );
                patch.evidence = evidence.describe(kind, rules);
                if kind == PixelKind::Fishpond {
                    let dikes = comp
                        .iter()
                        .filter(|&&(c, r)| dike_pixels.contains(&(c as i32, r as i32)))
                        .count();
                    if dikes > 0 {
                        patch.evidence.push_str(&format!(
                            "; {dikes} px of it are the pond's dikes (bare or grassy rim, \
                             fishpond_dike_px)"
                        ));
                    }
                }
                if let Some((class, conf)) = season_check {
                    patch
                        .evidence
                        .push_str(&rules.describe_tree_check(class, *conf));
                }
                patches.push(patch);
            }
        }
        // Non-grain use on PBF: the whole parcel.
        if parcel.pbf {
            if let Some((name, conf)) = crop.get(&parcel.index) {
                if rules.non_grain_use(name, *conf) {
                    let area_m2 = area.area_m2(&parcel.polygons)?;
                    if area_m2 / M2_PER_MU >= rules.min_patch_mu {
                        status.flags.push("non_grain_pbf".into());
                        let mut patch = make_patch(
                            parcel,
                            "non_grain_pbf",
                            before_of(&a.baseline),
                            "non_grain".into(),
                            area_m2,
                            *conf as f64,
                            &clear_dates,
                            &model_version,
                            parcel.polygons.clone(),
                        );
                        let dates_used = a.dates.iter().filter(|d| d.cultivated > 0).count();
                        patch.evidence = format!(
                            "crop-type model: non_grain with confidence {conf:.2} (rule >= {:.2}) \
                             on the mean spectra of the parcel's cultivated pixels, {dates_used} dates",
                            rules.non_grain_min_confidence
                        );
                        patches.push(patch);
                    }
                }
            }
        }
        status.flags.sort();
        status.flags.dedup();
        if !status.flags.is_empty() {
            status.status = ParcelState::Flagged;
        }
        parcels_out.push(status);
    }
    // Stable ids: parcel, kind, then position.
    let mut per_key: HashMap<(String, String), usize> = HashMap::new();
    for p in &mut patches {
        let n = per_key
            .entry((p.parcel_id.clone(), p.kind.clone()))
            .or_insert(0);
        *n += 1;
        p.id = format!("{}:{}:{}", p.parcel_id, p.kind, n);
    }
    timings.vectorisation_s = vector_started.elapsed().as_secs_f64();
    Ok(AnalysisResult {
        dates,
        tiles_total: grid.len(),
        tiles_with_farmland,
        parcels: parcels_out,
        patches,
        model_version,
        timings,
        class_names,
        baseline_dates: baseline
            .map(|(b, _)| b.layers.iter().map(|l| l.date).collect())
            .unwrap_or_default(),
        tree_planting_vetoed,
    })
}

/// Majority-smooth one kind's pixels of a parcel, never leaving the parcel (its pixels are
/// those whose centre lies inside it, as in the tiles).
fn smooth_in_parcel(pixels: &[(i64, i64)], parcel: &ParcelMask) -> Vec<(i64, i64)> {
    majority_smooth(pixels, &|c, r| parcel.inside(c, r))
}

#[allow(clippy::too_many_arguments)]
fn make_patch(
    parcel: &Parcel,
    kind: &str,
    before: String,
    after: String,
    area_m2: f64,
    confidence: f64,
    dates: &[NaiveDate],
    model_version: &str,
    polygons: Vec<Vec<Vec<(f64, f64)>>>,
) -> PatchRecord {
    PatchRecord {
        id: String::new(),
        kind: kind.to_string(),
        parcel_id: parcel.id.clone(),
        pbf: parcel.pbf,
        area_m2: (area_m2 * 100.0).round() / 100.0,
        area_mu: (area_m2 / M2_PER_MU * 1000.0).round() / 1000.0,
        county_code: parcel.admin.county_code.clone(),
        township_code: parcel.admin.township_code.clone(),
        village_code: parcel.admin.village_code.clone(),
        group_code: parcel.admin.group_code.clone(),
        county_name: parcel.admin.county_name.clone(),
        township_name: parcel.admin.township_name.clone(),
        village_name: parcel.admin.village_name.clone(),
        group_name: parcel.admin.group_name.clone(),
        location_name: parcel.admin.location_name.clone(),
        class_before: before,
        class_after: after,
        dates: dates.to_vec(),
        confidence: (confidence * 1000.0).round() / 1000.0,
        model_version: model_version.to_string(),
        status: "pending".into(),
        evidence: String::new(),
        polygons,
    }
}

#[allow(clippy::too_many_arguments)]
fn spectral_clear(
    layer: &ndarray::ArrayView3<f32>,
    r: usize,
    c: usize,
    blue: Option<usize>,
    green: Option<usize>,
    nir: usize,
    swir: Option<usize>,
    rules: &RulesConfig,
) -> bool {
    let refl = |b: usize| layer[[b, r, c]] / 10000.0;
    if let Some(b) = blue {
        if refl(b) > rules.cloud_blue_reflectance {
            return false;
        }
    }
    if refl(nir) < rules.shadow_nir_reflectance {
        // Dark in the NIR: water is dark too; MNDWI tells them apart.
        if let (Some(g), Some(s)) = (green, swir) {
            let (gv, sv) = (refl(g), refl(s));
            if gv + sv > 0.0 && (gv - sv) / (gv + sv) > 0.0 {
                return true;
            }
        }
        return false;
    }
    true
}

/// Parcels that touch each tile (by pixel-space bounding box).
fn bucket_parcels(grid: &TileGrid, polys: &[Vec<PixelPolygon>]) -> HashMap<usize, Vec<usize>> {
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

/// A parcel's candidates by kind.
type KindGroups<'a> = BTreeMap<PixelKind, Vec<&'a Candidate>>;

/// A parcel's candidates grouped by kind, in kind order. A fishpond's dikes belong to it:
/// abandonment candidates within `dike_px` pixels (8-neighbourhood, step by step) of the
/// parcel's fishpond candidates join the fishpond group; their positions are returned too.
fn kind_groups(mine: &[Candidate], dike_px: usize) -> (KindGroups<'_>, HashSet<(i32, i32)>) {
    let of_kind = |k: PixelKind| {
        mine.iter()
            .filter(move |c| c.kind == k)
            .map(|c| (c.col, c.row))
    };
    let abandonment: Vec<(i32, i32)> = of_kind(PixelKind::Abandonment).collect();
    let dikes = pond_dikes(of_kind(PixelKind::Fishpond), &abandonment, dike_px);
    let mut groups: KindGroups<'_> = BTreeMap::new();
    for c in mine {
        let kind = if dikes.contains(&(c.col, c.row)) {
            PixelKind::Fishpond
        } else {
            c.kind
        };
        groups.entry(kind).or_default().push(c);
    }
    (groups, dikes)
}

/// Per date: how many pixels, and their Σ round(DN·Q) of the model bands.
type SeasonSums<'a> = Vec<(u64, &'a Vec<i64>)>;

/// The crop-type model's class of a season of mean spectra per parcel: `sums` picks the
/// parcels and, per date, the pixel count and band sums to average (dates without pixels are
/// left out; fewer than `min_clear_dates` dates and the parcel gets no class).
fn season_classes<'a>(
    input: &AnalysisInput<'_>,
    acc: &'a BTreeMap<u32, ParcelAcc>,
    stack: &SceneStack,
    sums: impl Fn(&Parcel, &'a ParcelAcc) -> Option<SeasonSums<'a>>,
) -> Result<HashMap<u32, (String, f32)>> {
    let Some(ct) = input.croptype else {
        return Ok(HashMap::new());
    };
    // The crop-type model's bands, found among the land-cover model's bands.
    let lc_bands = input.landcover.bands();
    let pos: Vec<usize> = ct
        .bands()
        .iter()
        .map(|b| {
            lc_bands
                .iter()
                .position(|x| x.eq_ignore_ascii_case(b))
                .ok_or_else(|| InferenceError::Config {
                    what: "crop-type model".into(),
                    reason: format!("needs band {b}, which the land-cover inputs do not carry"),
                })
        })
        .collect::<Result<_>>()?;
    let mut ids = Vec::new();
    let mut series = Vec::new();
    for p in &input.farmland.parcels {
        let Some(a) = acc.get(&p.index) else { continue };
        let Some(per_date) = sums(p, a) else { continue };
        let obs: Vec<(NaiveDate, Vec<f32>)> = per_date
            .into_iter()
            .zip(&stack.layers)
            .filter(|((n, s), _)| *n > 0 && !s.is_empty())
            .filter_map(|((n, s), layer)| {
                layer.date.map(|date| {
                    (
                        date,
                        pos.iter()
                            .map(|&k| (s[k] as f64 / Q / n as f64) as f32)
                            .collect(),
                    )
                })
            })
            .collect();
        if obs.len() >= input.rules.min_clear_dates {
            ids.push(p.index);
            series.push(obs);
        }
    }
    if series.is_empty() {
        return Ok(HashMap::new());
    }
    let names = ct.class_names();
    let out = ct
        .classify(&series)
        .map_err(|source| InferenceError::Model {
            what: "crop-type model",
            source,
        })?;
    Ok(ids
        .into_iter()
        .zip(out)
        .filter(|(_, (code, _))| *code > 0)
        .filter_map(|(id, (code, conf))| {
            names
                .get(code as usize - 1)
                .map(|n| (id, (n.clone(), conf)))
        })
        .collect())
}

/// Areas on an equal-area basis: Lambert azimuthal equal-area centred on the grid.
pub struct EqualArea {
    to_laea: CoordTransform,
}

impl EqualArea {
    pub fn for_grid(grid: &AnalysisGrid) -> Result<EqualArea> {
        let gerr = |e: gdal::errors::GdalError| InferenceError::Config {
            what: "equal-area projection".into(),
            reason: e.to_string(),
        };
        let src = grid.crs.to_spatial_ref().map_err(gerr)?;
        let mut wgs = SpatialRef::from_epsg(4326).map_err(gerr)?;
        wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let (cx, cy) = grid
            .world_from_pixel
            .world_from_pixel(grid.width as f64 / 2.0, grid.height as f64 / 2.0);
        let t = CoordTransform::new(&src, &wgs).map_err(gerr)?;
        let (mut xs, mut ys, mut zs) = ([cx], [cy], [0.0]);
        t.transform_coords(&mut xs, &mut ys, &mut zs)
            .map_err(gerr)?;
        let mut laea = SpatialRef::from_proj4(&format!(
            "+proj=laea +lat_0={} +lon_0={} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs",
            ys[0], xs[0]
        ))
        .map_err(gerr)?;
        laea.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        Ok(EqualArea {
            to_laea: CoordTransform::new(&src, &laea).map_err(gerr)?,
        })
    }

    /// Area in m² of polygons (rings in the grid CRS; first ring shell, others holes).
    pub fn area_m2(&self, polygons: &[Vec<Vec<(f64, f64)>>]) -> Result<f64> {
        let mut total = 0.0;
        for poly in polygons {
            for (i, ring) in poly.iter().enumerate() {
                let mut xs: Vec<f64> = ring.iter().map(|p| p.0).collect();
                let mut ys: Vec<f64> = ring.iter().map(|p| p.1).collect();
                let mut zs = vec![0.0; xs.len()];
                self.to_laea
                    .transform_coords(&mut xs, &mut ys, &mut zs)
                    .map_err(|e| InferenceError::Config {
                        what: "equal-area projection".into(),
                        reason: e.to_string(),
                    })?;
                let n = xs.len();
                let a = (0..n)
                    .map(|k| xs[k] * ys[(k + 1) % n] - xs[(k + 1) % n] * ys[k])
                    .sum::<f64>()
                    .abs()
                    / 2.0;
                total += if i == 0 { a } else { -a };
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cloud_mask_reads_scl_classes_and_landsat_qa_bits() {
        let rules = RulesConfig::default();
        let scl = CloudMask::Scl(9);
        assert!(scl.is_clear(4.0, &rules)); // vegetation
        assert!(scl.is_clear(6.0, &rules)); // water
        assert!(!scl.is_clear(9.0, &rules)); // cloud, high probability
        assert!(!scl.is_clear(3.0, &rules)); // cloud shadow
        assert!(!scl.is_clear(f32::NAN, &rules));
        let qa = CloudMask::QaPixel(9);
        assert!(qa.is_clear(21824.0, &rules)); // clear land
        assert!(qa.is_clear(21952.0, &rules)); // water
        assert!(!qa.is_clear(22280.0, &rules)); // cloud
        assert!(!qa.is_clear(23888.0, &rules)); // cloud shadow
        assert!(!qa.is_clear(1.0, &rules)); // fill
        assert_eq!(scl.band(), 9);
    }

    fn cand(col: i32, row: i32, kind: PixelKind) -> Candidate {
        Candidate {
            parcel: 1,
            col,
            row,
            kind,
            class: 0,
            conf: 0,
            baseline: Box::new([]),
            measures: SeasonMeasures::default(),
        }
    }

    #[test]
    fn a_pond_s_rim_of_abandonment_pixels_joins_the_pond_and_nothing_else_does() {
        // A 3 × 3 pond at (10..13, 10..13), an abandonment ring around it, one abandonment
        // pixel two steps out and a construction pixel on the ring.
        let mut mine = Vec::new();
        for r in 9..14 {
            for c in 9..14 {
                let inner = (10..13).contains(&r) && (10..13).contains(&c);
                let kind = if inner {
                    PixelKind::Fishpond
                } else if (r, c) == (9, 9) {
                    PixelKind::Construction
                } else {
                    PixelKind::Abandonment
                };
                mine.push(cand(c, r, kind));
            }
        }
        mine.push(cand(14, 11, PixelKind::Abandonment));
        let (groups, dikes) = kind_groups(&mine, 1);
        assert_eq!(groups[&PixelKind::Fishpond].len(), 9 + 15);
        assert_eq!(dikes.len(), 15);
        assert_eq!(
            groups[&PixelKind::Abandonment].len(),
            1,
            "two pixels out stays"
        );
        assert_eq!(groups[&PixelKind::Construction].len(), 1);
        // Two steps reach it; without dikes nothing moves.
        let (groups, _) = kind_groups(&mine, 2);
        assert!(!groups.contains_key(&PixelKind::Abandonment));
        let (groups, dikes) = kind_groups(&mine, 0);
        assert_eq!(groups[&PixelKind::Fishpond].len(), 9);
        assert!(dikes.is_empty());
        // No pond, no dikes.
        let no_pond: Vec<Candidate> = (0..5).map(|c| cand(c, 0, PixelKind::Abandonment)).collect();
        let (groups, dikes) = kind_groups(&no_pond, 1);
        assert_eq!(groups[&PixelKind::Abandonment].len(), 5);
        assert!(dikes.is_empty());
    }
}
