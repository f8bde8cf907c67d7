//! One season analysis: a scene stack × the farmland layer → per-parcel evidence →
//! suspected-change patches.
//!
//! Tiles run in parallel and only where farmland lies; each tile rasterises its parcels
//! (pixel-centre rule, tile-exact), classifies every clear farmland pixel of every date,
//! turns each pixel's season into a kind (rules.rs) and accumulates per-parcel evidence
//! in integers (fixed point), so the result is identical whatever the tile size.
//!
//! The stages, one module each:
//! - `tile`: one tile's work, from its pixels to its `TileOut` (`bands` says
//!   which pixels are clear);
//! - `accumulate`: the per-parcel sums and violating pixels a tile produces, and their merge;
//! - `parcels`: the crop-type model over parcels' seasons, and each parcel's
//!   [`ParcelStatus`] (with `evidence`: its per-date evidence);
//! - `patches`: a parcel's violating pixels → [`PatchRecord`]s (with `area`: equal-area
//!   measurement).
//!
//! Every comparison of a measure against a threshold of the [`RulesConfig`] is in
//! [`crate::rules`]; this module only orchestrates.

mod accumulate;
mod area;
mod bands;
mod evidence;
mod parcels;
mod patches;
mod tile;

pub use crate::rules::ChangeKind;
pub use area::EqualArea;
pub use evidence::DateEvidence;
pub use parcels::{ParcelState, ParcelStatus};
pub use patches::{PatchRecord, PatchState};
pub use tile::landcover_map;

use crate::checkpoint::TileStore;
use crate::error::{InferenceError, Result};
use crate::farmland::FarmlandLayer;
use crate::rasterize::PixelPolygon;
use crate::rules::RulesConfig;
use accumulate::Merged;
use bands::StackBands;
use chrono::NaiveDate;
use gengdi_models::ModelError;
use gengdi_tiling::{PixelWindow, SceneStack, TileGrid};
use ndarray::{Array2, ArrayView2, ArrayView3};
use parcels::{ParcelVerdict, SeasonChecks};
use patches::{ParcelView, PatchContext};
use serde::Serialize;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;
use tile::TileContext;

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
    /// Parcels whose tree-planting pixels the season check did not find perennial (season
    /// cover) or found an annual crop (crop type) over the season, so their tree-planting
    /// patches were not reported (`tree_season_veto`, `tree_annual_crop_veto`).
    pub tree_planting_vetoed: Vec<String>,
}

/// What the analysis needs.
#[derive(Clone, Copy)]
pub struct AnalysisInput<'a> {
    pub stack: &'a SceneStack,
    pub farmland: &'a FarmlandLayer,
    pub landcover: &'a dyn PixelClassifier,
    pub croptype: Option<&'a dyn SeasonClassifier>,
    /// The season-cover model: when given, it makes the tree-planting season check instead
    /// of `croptype`.
    pub season_cover: Option<&'a dyn SeasonClassifier>,
    pub rules: &'a RulesConfig,
    pub tile_size: usize,
}

impl<'a> AnalysisInput<'a> {
    /// This input with `rules` instead of its own.
    fn with_rules<'b>(&self, rules: &'b RulesConfig) -> AnalysisInput<'b>
    where
        'a: 'b,
    {
        AnalysisInput { rules, ..*self }
    }

    /// The rules for this season's dates ([`RulesConfig::for_season`]).
    fn season_rules(&self) -> RulesConfig {
        self.rules.for_season(&stack_dates(self.stack))
    }
}

/// Each scene's date, in stack order (`None` where a scene has none).
fn stack_dates(stack: &SceneStack) -> Vec<Option<NaiveDate>> {
    stack.layers.iter().map(|l| l.date).collect()
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
    pub checkpoints: Option<&'a dyn TileStore>,
    /// Which tiles to analyse (default: every tile with farmland not in `checkpoints`).
    pub tiles: TilePlan<'a>,
}

/// Which tiles a run analyses: all of them (one process), or one part of a run shared by
/// several workers, whose tile outputs meet in a [`TileStore`] and are merged once.
#[derive(Clone, Copy, Debug, Default)]
pub enum TilePlan<'a> {
    /// Every tile with farmland that `checkpoints` does not already hold.
    #[default]
    All,
    /// Only these tiles (those without farmland are skipped), each saved to `checkpoints`;
    /// nothing is merged ([`analyze_tiles`]).
    Only(&'a std::collections::BTreeSet<usize>),
    /// None: every tile with farmland must already be in `checkpoints` (a shared run's merge);
    /// a missing one is an error, not analysed here.
    MergeOnly,
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
    if let TilePlan::Only(_) = opts.tiles {
        return Err(InferenceError::Config {
            what: "tiles".into(),
            reason: "a run of some tiles only merges nothing: use analyze_tiles".into(),
        });
    }
    let season_rules = input.season_rules();
    let input = &input.with_rules(&season_rules);
    let setup = Setup::of(input, opts)?;
    let ctx = setup.context(input, opts);
    let (grid, tiles_with_farmland) = (&setup.layout.grid, setup.layout.buckets.len());
    let (stack, gt) = (input.stack, input.stack.grid.world_from_pixel);
    let (pixel_polys, model_bands) = (&setup.layout.pixel_polys, &setup.model_bands);
    let class_names = setup.class_names.clone();
    let tiles_started = Instant::now();
    let merged = run_tiles(&ctx, grid, opts, progress, cancel)?;
    let mut timings = PhaseTimings {
        tiles_wall_s: tiles_started.elapsed().as_secs_f64(),
        decode_s: merged.decode.as_secs_f64(),
        warp_s: merged.warp.as_secs_f64(),
        inference_s: merged.inference.as_secs_f64(),
        aggregation_s: merged.aggregation.as_secs_f64(),
        ..Default::default()
    };

    let dates = stack_dates(stack);
    let mut model_ids = vec![input.landcover.id()];
    model_ids.extend(input.croptype.map(|m| m.id()));
    model_ids.extend(input.season_cover.map(|m| m.id()));
    let model_version = model_ids.join("+");
    let area = EqualArea::for_grid(&stack.grid)?;
    let (px_w, px_h) = gt.pixel_size();

    let crop_started = Instant::now();
    let checks = SeasonChecks::of(input, &merged.acc, stack)?;
    timings.crop_type_s = crop_started.elapsed().as_secs_f64();
    let vector_started = Instant::now();

    let pctx = PatchContext {
        rules: input.rules,
        tree_check_model: checks.tree_check_model,
        class_names: &class_names,
        model_version: &model_version,
        area: &area,
        gt,
        pixel_area_grid: px_w * px_h,
    };
    let Outcomes {
        parcels,
        mut patches,
        tree_planting_vetoed,
    } = parcel_outcomes(
        input,
        &pctx,
        &merged,
        &checks,
        pixel_polys,
        model_bands,
        &dates,
    )?;
    patches::assign_ids(&mut patches);
    timings.vectorisation_s = vector_started.elapsed().as_secs_f64();
    Ok(AnalysisResult {
        dates,
        tiles_total: grid.len(),
        tiles_with_farmland,
        parcels,
        patches,
        model_version,
        timings,
        class_names,
        baseline_dates: opts.baseline.map(stack_dates).unwrap_or_default(),
        tree_planting_vetoed,
    })
}

/// The tile grid of a run, its parcels in pixel space and which parcels touch which tile:
/// computed once per run, or once per batch by a worker of a shared run, whose tasks
/// ([`analyze_tiles`]) reuse it instead of projecting every parcel again for each tile.
#[derive(Clone, Debug)]
pub struct TileLayout {
    tile_size: usize,
    grid: TileGrid,
    pixel_polys: Vec<Vec<PixelPolygon>>,
    buckets: std::collections::HashMap<usize, Vec<usize>>,
}

impl TileLayout {
    pub fn of(input: &AnalysisInput<'_>) -> Result<TileLayout> {
        let stack = input.stack;
        let grid = stack.tile_grid(input.tile_size, 0)?;
        let gt = stack.grid.world_from_pixel;
        let pixel_polys: Vec<_> = input
            .farmland
            .parcels
            .iter()
            .map(|p| p.pixel_polygons(&gt))
            .collect();
        let buckets = tile::bucket_parcels(&grid, &pixel_polys);
        Ok(TileLayout {
            tile_size: input.tile_size,
            grid,
            pixel_polys,
            buckets,
        })
    }

    /// The tile side it was made for.
    pub fn tile_size(&self) -> usize {
        self.tile_size
    }

    /// The indices of the tiles with farmland (the ones a run analyses), ascending.
    pub fn tiles_with_farmland(&self) -> Vec<usize> {
        let mut tiles: Vec<usize> = self.buckets.keys().copied().collect();
        tiles.sort_unstable();
        tiles
    }
}

/// What every tile of a run shares: the layout, the bands and the class names.
struct Setup<'a> {
    layout: std::borrow::Cow<'a, TileLayout>,
    model_bands: Vec<String>,
    bands: StackBands,
    baseline: Option<(&'a SceneStack, StackBands)>,
    class_names: Vec<String>,
}

impl<'a> Setup<'a> {
    fn of(input: &AnalysisInput<'_>, opts: &AnalysisOptions<'a>) -> Result<Setup<'a>> {
        Setup::with(input, opts, None)
    }

    /// With `layout` (made by [`TileLayout::of`] for the same input), else one made here.
    fn with(
        input: &AnalysisInput<'_>,
        opts: &AnalysisOptions<'a>,
        layout: Option<&'a TileLayout>,
    ) -> Result<Setup<'a>> {
        let stack = input.stack;
        let layout = match layout {
            Some(l) if l.tile_size == input.tile_size => std::borrow::Cow::Borrowed(l),
            _ => std::borrow::Cow::Owned(TileLayout::of(input)?),
        };
        let model_bands = input.landcover.bands();
        let bands = StackBands::of(stack, &model_bands, "scene stack")?;
        let baseline = baseline_bands(stack, opts.baseline, &model_bands)?;
        Ok(Setup {
            layout,
            class_names: input.landcover.class_names(),
            model_bands,
            bands,
            baseline,
        })
    }

    fn context<'s>(
        &'s self,
        input: &'s AnalysisInput<'s>,
        opts: &AnalysisOptions<'s>,
    ) -> TileContext<'s> {
        TileContext {
            stack: input.stack,
            landcover: input.landcover,
            parcels: &input.farmland.parcels,
            rules: input.rules,
            bands: &self.bands,
            model_band_names: self.model_bands.iter().map(String::as_str).collect(),
            baseline: self.baseline.as_ref().map(|(s, b)| (*s, b)),
            classes: crate::rules::ClassCodes::from_names(&self.class_names),
            n_dates: input.stack.layers.len(),
            n_classes: self.class_names.len(),
            pixel_polys: &self.layout.pixel_polys,
            buckets: &self.layout.buckets,
            maps: opts.maps,
        }
    }
}

/// Analyse tiles `tiles` only (one worker's part of a shared run) and keep each one's output
/// in `store`; merging them is [`analyze_until`] with [`TilePlan::MergeOnly`] over the
/// store holding every tile. Returns how many tiles were analysed (those without farmland
/// are skipped).
pub fn analyze_tiles(
    input: &AnalysisInput<'_>,
    layout: Option<&TileLayout>,
    baseline: Option<&SceneStack>,
    tiles: &std::collections::BTreeSet<usize>,
    store: &dyn TileStore,
    cancel: Option<&AtomicBool>,
) -> Result<usize> {
    let opts = AnalysisOptions {
        baseline,
        maps: None,
        checkpoints: Some(store),
        tiles: TilePlan::Only(tiles),
    };
    let season_rules = input.season_rules();
    let input = &input.with_rules(&season_rules);
    let setup = Setup::with(input, &opts, layout)?;
    let ctx = setup.context(input, &opts);
    let before = store.finished()?.len();
    run_tiles(&ctx, &setup.layout.grid, &opts, None, cancel)?;
    Ok(store.finished()?.len().saturating_sub(before))
}

/// Every tile with farmland through [`tile::analyze_tile`], each tile's output merged as it
/// comes; the candidates sorted by parcel, kind, row and column.
fn run_tiles(
    ctx: &TileContext<'_>,
    grid: &TileGrid,
    opts: &AnalysisOptions<'_>,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    cancel: Option<&AtomicBool>,
) -> Result<Merged> {
    let checkpoints = opts.checkpoints;
    if !matches!(opts.tiles, TilePlan::All) && checkpoints.is_none() {
        return Err(InferenceError::Config {
            what: "tiles".into(),
            reason: "a shared run's tiles go through a tile store: none was given".into(),
        });
    }
    if checkpoints.is_some() && ctx.maps.is_some() {
        return Err(InferenceError::Config {
            what: "checkpoints".into(),
            reason: "tile checkpoints do not hold class maps: a resumable run cannot write maps"
                .into(),
        });
    }
    let mut merged = Merged::default();
    // Tiles a stopped run of this analysis finished.
    let mut resumed = std::collections::HashSet::new();
    match (checkpoints, opts.tiles) {
        (Some(cp), TilePlan::All | TilePlan::MergeOnly) => {
            for index in cp.finished()? {
                if !ctx.buckets.contains_key(&index) {
                    continue;
                }
                if let Some(out) = crate::checkpoint::load::<accumulate::TileOut>(cp, index) {
                    merged.add(out);
                    resumed.insert(index);
                }
            }
            if !resumed.is_empty() {
                tracing::info!(
                    "analysis: {} of {} tiles with farmland read back from {}",
                    resumed.len(),
                    ctx.buckets.len(),
                    cp.describe()
                );
            }
            if matches!(opts.tiles, TilePlan::MergeOnly) {
                let mut missing: Vec<usize> = ctx
                    .buckets
                    .keys()
                    .filter(|i| !resumed.contains(i))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    missing.sort_unstable();
                    return Err(InferenceError::Config {
                        what: "tiles".into(),
                        reason: format!(
                            "{} of {} tiles with farmland have no result in {} (first: {}): \
                             cannot merge",
                            missing.len(),
                            ctx.buckets.len(),
                            cp.describe(),
                            missing[0]
                        ),
                    });
                }
            }
        }
        // One worker's part: the other tiles are someone else's.
        (_, TilePlan::Only(only)) => {
            resumed.extend(ctx.buckets.keys().filter(|i| !only.contains(i)).copied());
        }
        (None, _) => {}
    }
    let n_resumed = resumed.len();
    let progress_all = |done: usize, total: usize| {
        if let Some(p) = progress {
            p(done + n_resumed, total + n_resumed);
        }
    };
    let merged = Mutex::new(merged);
    ctx.stack.try_par_map_tiles(
        grid,
        |t| !ctx.buckets.contains_key(&t.index) || resumed.contains(&t.index),
        |data| -> Result<()> {
            let mut out = tile::analyze_tile(ctx, &data)?;
            if let Some(cp) = checkpoints {
                let started = Instant::now();
                crate::checkpoint::save(cp, data.tile.index, &out).map_err(|source| {
                    InferenceError::Tile {
                        index: data.tile.index,
                        col: data.tile.col,
                        row: data.tile.row,
                        source: Box::new(source),
                    }
                })?;
                // Checkpointing counts as aggregation.
                out.aggregation += started.elapsed();
            }
            merged
                .lock()
                .map_err(|_| InferenceError::Tile {
                    index: data.tile.index,
                    col: data.tile.col,
                    row: data.tile.row,
                    source: Box::new(InferenceError::Poisoned {
                        what: "the merged tile results",
                    }),
                })?
                .add(out);
            Ok(())
        },
        Some(&progress_all),
        cancel,
    )?;
    let mut merged = merged.into_inner().map_err(|_| InferenceError::Poisoned {
        what: "the merged tile results",
    })?;
    merged
        .candidates
        .sort_by_key(|c| (c.parcel, c.kind, c.row, c.col));
    Ok(merged)
}

/// Every parcel's status and patches (ids not yet assigned), in the farmland layer's order.
#[derive(Default)]
struct Outcomes {
    parcels: Vec<ParcelStatus>,
    patches: Vec<PatchRecord>,
    tree_planting_vetoed: Vec<String>,
}

/// Each parcel's verdict from its merged evidence, and the patches of the analysed ones.
fn parcel_outcomes(
    input: &AnalysisInput<'_>,
    pctx: &PatchContext<'_>,
    merged: &Merged,
    checks: &SeasonChecks,
    pixel_polys: &[Vec<PixelPolygon>],
    model_bands: &[String],
    dates: &[Option<NaiveDate>],
) -> Result<Outcomes> {
    let mut out = Outcomes::default();
    let (acc, candidates) = (&merged.acc, &merged.candidates);
    let n_dates = dates.len();
    for (pi, parcel) in input.farmland.parcels.iter().enumerate() {
        let a = acc.get(&parcel.index);
        let (mut status, a) =
            match parcels::parcel_verdict(parcel, a, model_bands, checks, input.rules, n_dates) {
                ParcelVerdict::Final(status) => {
                    out.parcels.push(status);
                    continue;
                }
                ParcelVerdict::Analysed { status, acc } => (status, acc),
            };
        let clear_dates = parcels::clear_dates(a, dates);
        let view = ParcelView {
            parcel,
            pixel_polys: &pixel_polys[pi],
            acc: a,
            clear_dates: &clear_dates,
        };
        // Pixel-level violations, on the parcels the rules monitor.
        let lo = candidates.partition_point(|c| c.parcel < parcel.index);
        let hi = candidates.partition_point(|c| c.parcel <= parcel.index);
        let mine = if input
            .rules
            .monitors(parcel.land_class.as_deref(), parcel.pbf)
        {
            &candidates[lo..hi]
        } else {
            &[]
        };
        let found =
            patches::pixel_patches(pctx, &view, mine, checks.tree_check.get(&parcel.index))?;
        if found.tree_planting_vetoed {
            out.tree_planting_vetoed.push(parcel.id.clone());
        }
        let non_grain = patches::non_grain_patch(pctx, &view, checks.crop.get(&parcel.index))?;
        let has_trees = found
            .patches
            .iter()
            .any(|p| p.kind == ChangeKind::TreePlanting);
        let whole_parcel_trees = if has_trees || found.tree_planting_vetoed {
            None
        } else {
            patches::perennial_parcel_patch(pctx, &view, checks.cover.get(&parcel.index))?
        };
        for patch in found
            .patches
            .into_iter()
            .chain(whole_parcel_trees)
            .chain(non_grain)
        {
            status.flags.push(patch.kind);
            out.patches.push(patch);
        }
        status.finish();
        out.parcels.push(status);
    }
    Ok(out)
}

/// The baseline stack and its bands; it must be on the season's grid.
fn baseline_bands<'a>(
    stack: &SceneStack,
    baseline: Option<&'a SceneStack>,
    model_bands: &[String],
) -> Result<Option<(&'a SceneStack, StackBands)>> {
    let Some(b) = baseline else { return Ok(None) };
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
    Ok(Some((b, StackBands::of(b, model_bands, "baseline stack")?)))
}
