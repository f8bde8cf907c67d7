//! One analysis, end to end: the library call the CLI (`gengdi analyze`) and the service
//! both make.
//!
//! A [`AnalysisRequest`] says what to analyse and what to write (serde: a job is stored and
//! replayed as one); [`Models`] are loaded once and shared (`Arc<Models>`); a
//! [`ProgressSink`] hears the stages and the tiles done; a [`CancelToken`] stops the run
//! between stages and before each tile is read. [`run`] opens the scenes (files,
//! directories, products or STAC), the farmland and admin layers and the baseline, runs the
//! analysis ([`crate::analysis`]) and writes the outputs asked for.

use crate::admin::{AdminFields, AdminLayer};
use crate::analysis::{
    analyze_until, AnalysisInput, AnalysisOptions, AnalysisResult, MapSink, PixelClassifier,
    SeasonClassifier, TilePlan,
};
use crate::checkpoint::{TileCheckpoints, TileStore};
use crate::error::InferenceError;
use crate::farmland::{FarmlandLayer, FarmlandOptions, FieldMapping};
use crate::inputs::{build_stack, open_scenes};
use crate::maps::ClassMaps;
use crate::models_adapter::{LandCoverAdapter, SeriesAdapter};
use crate::output::write_patches;
use crate::rules::RulesConfig;
use chrono::NaiveDate;
use gengdi_models::{DeviceChoice, LandCoverModel, ModelError, SeriesModel, Task};
use gengdi_tiling::{
    AnalysisGrid, Radiometry, RadiometrySource, SceneOptions, SceneStack, Sensor, TilingError,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Everything one analysis needs to know, as data: store it, send it, replay it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisRequest {
    /// Scene files, directories, delivered products or STAC Item / ItemCollection JSON
    /// files (local assets): several dates of one season.
    pub scenes: Vec<PathBuf>,
    /// Scenes of an earlier (baseline) period, classified on the season's grid.
    #[serde(default)]
    pub baseline: Vec<PathBuf>,
    pub farmland: FarmlandRequest,
    /// The administrative-boundary layer that gives parcels their unit codes.
    #[serde(default)]
    pub admin: Option<AdminRequest>,
    /// How every scene (season and baseline) is read.
    #[serde(default)]
    pub scene_options: SceneRequest,
    /// The rules' thresholds (a partial object keeps the defaults of what it leaves out).
    #[serde(default)]
    pub rules: RulesConfig,
    /// Tile side in pixels.
    #[serde(default = "default_tile_size")]
    pub tile_size: usize,
    /// Run the crop-type model (non_grain_pbf flags, the tree-planting season check).
    #[serde(default = "yes")]
    pub crop_type: bool,
    #[serde(default)]
    pub outputs: OutputRequest,
    /// Keep each finished tile here, and resume from the tiles found here (see
    /// [`crate::checkpoint`]): a run stopped by a kill, a cancellation or a restart, run again
    /// with the same request, analyses only the tiles it had not finished and gives the same
    /// result. Tiles of another request or other models are discarded. Not with
    /// `outputs.maps`. The directory is left in place: [`remove_checkpoint`] it once the
    /// result is kept.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
}

/// What tells one analysis's checkpoints from another's: the request (less where it writes
/// its outputs and checkpoints), the size and modification time of every scene file it
/// names, the models' ids and gengdi's version.
pub fn checkpoint_fingerprint(req: &AnalysisRequest, models: &Models) -> String {
    use sha2::{Digest, Sha256};
    let mut what = req.clone();
    what.outputs = OutputRequest::default();
    what.checkpoint = None;
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&what).unwrap_or_default());
    for path in req.scenes.iter().chain(&req.baseline) {
        let meta = std::fs::metadata(path).ok();
        let size = meta.as_ref().map(|m| m.len());
        let modified = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        h.update(format!("\n{}:{size:?}:{modified:?}", path.display()));
    }
    h.update(format!("\nlandcover {}", models.landcover.id()));
    if let Some(ct) = &models.croptype {
        h.update(format!("\ncroptype {}", ct.id()));
    }
    if let Some(sc) = &models.season_cover {
        h.update(format!("\nseason {}", sc.id()));
    }
    h.update(format!("\ngengdi {}", env!("CARGO_PKG_VERSION")));
    hex::encode(h.finalize())
}

/// Remove the checkpoint directory of `req` (if it names one).
pub fn remove_checkpoint(req: &AnalysisRequest) -> Result<(), PipelineError> {
    match &req.checkpoint {
        Some(dir) => Ok(TileCheckpoints::at(dir).remove()?),
        None => Ok(()),
    }
}

fn default_tile_size() -> usize {
    512
}

fn yes() -> bool {
    true
}

/// The farmland layer: file, layer, attribute mapping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FarmlandRequest {
    /// GeoPackage, Shapefile (or zipped), GeoJSON, FlatGeobuf; any CRS.
    pub path: PathBuf,
    /// The layer to read, needed when the file holds several polygon layers.
    #[serde(default)]
    pub layer: Option<String>,
    /// Attribute mapping, e.g. `id=TBBH,pbf=YJJBNT,land_class=DLBM` (see
    /// [`FieldMapping::parse`]); the defaults recognise the land-survey names.
    #[serde(default)]
    pub fields: Option<String>,
}

/// The administrative-boundary layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRequest {
    pub path: PathBuf,
    /// Attribute mapping (see [`AdminFields::parse`]).
    #[serde(default)]
    pub fields: Option<String>,
}

/// How scenes are read; every field overrides what the files say.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SceneRequest {
    /// Band names in file order.
    pub band_names: Option<Vec<String>>,
    pub sensor: Option<Sensor>,
    /// Nodata value of every band.
    pub nodata: Option<f64>,
    /// Acquisition date.
    pub date: Option<NaiveDate>,
    /// Read pixels through GDAL instead of the fast reader.
    pub force_gdal: bool,
    /// Reflectance = value × scale + offset for every reflectance band.
    pub scale: Option<f64>,
    pub offset: Option<f64>,
    /// Calibration coefficients (TOML) for scenes delivered as DN (Gaofen).
    pub calibration: Option<PathBuf>,
    /// Refuse a scene whose header claims more pixels per band than this, before any pixel
    /// is read (a decompression bomb); no limit when unset.
    pub max_pixels: Option<u64>,
    /// Remote scenes (`s3://…`, `https://…`) are read only under these prefixes.
    pub remote_prefixes: Vec<String>,
}

/// Refuse scenes over `max` pixels per band.
fn check_pixels(scenes: &[gengdi_tiling::Scene], max: Option<u64>) -> Result<(), InferenceError> {
    let Some(max) = max else {
        return Ok(());
    };
    for s in scenes {
        let pixels = (s.width as u64).saturating_mul(s.height as u64);
        if pixels > max {
            return Err(InferenceError::Config {
                what: s.path.display().to_string(),
                reason: format!(
                    "the scene claims {} x {} = {pixels} pixels per band, over the limit of {max}",
                    s.width, s.height
                ),
            });
        }
    }
    Ok(())
}

impl SceneRequest {
    /// The tiling engine's options, with the calibration file loaded.
    pub fn options(&self) -> Result<SceneOptions, TilingError> {
        let radiometry = (self.scale.is_some() || self.offset.is_some()).then(|| Radiometry {
            scale: self.scale.unwrap_or(1.0),
            offset: self.offset.unwrap_or(0.0),
            source: RadiometrySource::Given,
        });
        let calibration = match &self.calibration {
            Some(p) => Some(Arc::new(gengdi_tiling::calibration::CalibrationFile::load(
                p,
            )?)),
            None => None,
        };
        Ok(SceneOptions {
            radiometry,
            band_names: self.band_names.clone(),
            sensor: self.sensor,
            nodata: self.nodata,
            date: self.date,
            force_gdal: self.force_gdal,
            calibration,
            remote_prefixes: self.remote_prefixes.clone(),
            ..SceneOptions::default()
        })
    }
}

/// What to write. Nothing asked for, nothing written: the result is returned either way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputRequest {
    /// The change list; its extension says the format: `.geojson` / `.json` (RFC 7946),
    /// `.gpkg` (farmland CRS) or `.csv`.
    pub changes: Option<PathBuf>,
    /// Class-map COGs on the analysis grid (landcover_YYYYMMDD.tif per date,
    /// season_kind.tif, baseline_landcover.tif with a baseline), in this directory.
    pub maps: Option<PathBuf>,
    /// The per-parcel status table (parcels.csv, parcels.json), in this directory.
    pub parcel_table: Option<PathBuf>,
}

/// The models an analysis runs, loaded once; share them between runs with an `Arc`.
#[derive(Debug)]
pub struct Models {
    pub landcover: LandCoverAdapter,
    /// Without it no crop-type decision is made (as with `crop_type: false`).
    pub croptype: Option<SeriesAdapter>,
    /// The season-cover model: when loaded (and `crop_type` is on), it makes the season
    /// check of tree planting instead of the crop-type model.
    pub season_cover: Option<SeriesAdapter>,
}

// Shared between the service's blocking workers.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Models>()
};

impl Models {
    /// Load the land-cover model from its directory and, when given, the crop-type and the
    /// season-cover models (the model card next to the weights says everything else).
    pub fn load(
        landcover_dir: &Path,
        croptype_dir: Option<&Path>,
        season_cover_dir: Option<&Path>,
        device: DeviceChoice,
    ) -> Result<Models, PipelineError> {
        let device = &device.device();
        let landcover =
            LandCoverModel::load(landcover_dir, device).map_err(|source| PipelineError::Model {
                task: "land-cover",
                dir: landcover_dir.to_path_buf(),
                source: Box::new(source),
            })?;
        let series = |dir: Option<&Path>, task: Task, name: &'static str| {
            dir.map(|dir| {
                SeriesModel::load(dir, device, task)
                    .map(SeriesAdapter)
                    .map_err(|source| PipelineError::Model {
                        task: name,
                        dir: dir.to_path_buf(),
                        source: Box::new(source),
                    })
            })
            .transpose()
        };
        Ok(Models {
            landcover: LandCoverAdapter(landcover),
            croptype: series(croptype_dir, Task::CropType, "crop-type")?,
            season_cover: series(season_cover_dir, Task::SeasonCover, "season-cover")?,
        })
    }
}

/// The stages of a run, in the order they happen (a stage the request does not need is
/// skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    OpeningScenes,
    ReadingFarmland,
    ReadingAdmin,
    OpeningBaseline,
    AnalysingTiles,
    WritingOutputs,
    Done,
}

/// Hears how a run progresses; called from the worker threads.
pub trait ProgressSink: Sync {
    /// A stage begins.
    fn stage(&self, stage: Stage);
    /// `done` of the `total` tiles with farmland are analysed.
    fn tiles(&self, done: usize, total: usize);
}

/// A sink that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn stage(&self, _: Stage) {}
    fn tiles(&self, _: usize, _: usize) {}
}

/// Stops a run: checked between stages and before each tile is read. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn check(&self) -> Result<(), PipelineError> {
        if self.is_cancelled() {
            Err(PipelineError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Why a run did not complete. Each variant says what failed; the cause is its source.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the analysis was cancelled")]
    Cancelled,

    /// One tile could not be read or analysed; the run stopped there.
    #[error("tile {index} (column {col}, row {row})")]
    Tile {
        index: usize,
        col: usize,
        row: usize,
        #[source]
        source: Box<InferenceError>,
    },

    /// An input could not be opened or does not fit; `what` says which.
    #[error("{what}")]
    Input {
        what: InputFailure,
        #[source]
        source: Box<InferenceError>,
    },

    #[error("cannot load the {task} model in {dir}")]
    Model {
        task: &'static str,
        dir: PathBuf,
        #[source]
        source: Box<ModelError>,
    },

    #[error("the request asks for the crop-type model but none is loaded")]
    NoCropTypeModel,

    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error(transparent)]
    Analysis(Box<InferenceError>),
}

impl From<InferenceError> for PipelineError {
    fn from(e: InferenceError) -> Self {
        PipelineError::Analysis(Box::new(e))
    }
}

/// Which input of a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFailure {
    Scenes,
    SceneBands,
    Baseline,
    BaselineGrid,
}

impl std::fmt::Display for InputFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputFailure::Scenes => "cannot open the scenes",
            InputFailure::SceneBands => {
                "the scenes do not supply the land-cover model's bands on one grid"
            }
            InputFailure::Baseline => "cannot open the baseline scenes",
            InputFailure::BaselineGrid => "the baseline scenes cannot be put on the season's grid",
        })
    }
}

impl PipelineError {
    fn input(what: InputFailure) -> impl FnOnce(InferenceError) -> PipelineError {
        move |source| PipelineError::Input {
            what,
            source: Box::new(source),
        }
    }

    /// The analysis's errors, with the tile failures and cancellation named as such.
    fn of_analysis(e: InferenceError) -> PipelineError {
        match e {
            InferenceError::Tiling(TilingError::Cancelled { .. }) => PipelineError::Cancelled,
            InferenceError::Tiling(TilingError::Tile {
                index,
                col,
                row,
                source,
                ..
            }) => PipelineError::Tile {
                index,
                col,
                row,
                source: Box::new(InferenceError::Tiling(*source)),
            },
            InferenceError::Tile {
                index,
                col,
                row,
                source,
            } => PipelineError::Tile {
                index,
                col,
                row,
                source,
            },
            e => PipelineError::Analysis(Box::new(e)),
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct AnalysisOutput {
    pub result: AnalysisResult,
    /// The analysis grid (CRS, resolution, extent) the scenes were put on.
    pub grid: AnalysisGrid,
    /// The class-map COGs written (empty without `outputs.maps`).
    pub map_paths: Vec<PathBuf>,
}

/// Run one analysis: open its inputs, analyse every tile with farmland, write the outputs
/// the request asks for and return the result.
pub fn run(
    req: &AnalysisRequest,
    models: &Models,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<AnalysisOutput, PipelineError> {
    cancel.check()?;
    if req.checkpoint.is_some() && req.outputs.maps.is_some() {
        return Err(InferenceError::Config {
            what: "checkpoint".into(),
            reason: "tile checkpoints do not hold class maps: a resumable run cannot write maps"
                .into(),
        }
        .into());
    }
    let prepared = prepare(req, models, progress, cancel)?;
    let checkpoints = match &req.checkpoint {
        Some(dir) => Some(TileCheckpoints::open(
            dir,
            &checkpoint_fingerprint(req, models),
        )?),
        None => None,
    };
    analyse_and_write(
        req,
        models,
        &prepared,
        checkpoints.as_ref().map(|c| c as &dyn TileStore),
        TilePlan::All,
        progress,
        cancel,
    )
}

/// A request's inputs, opened and read once: the season's scenes on the analysis grid, the
/// farmland (with its admin codes) and the baseline. A worker of a shared run keeps the one
/// of the batch it works on and analyses tile after tile of it.
pub struct Prepared {
    pub stack: SceneStack,
    pub farmland: FarmlandLayer,
    pub baseline: Option<SceneStack>,
    /// The parcels on the tile grid, made by the first task that needs them.
    layout: std::sync::OnceLock<crate::analysis::TileLayout>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("dates", &self.stack.layers.len())
            .field("parcels", &self.farmland.parcels.len())
            .field("baseline", &self.baseline.as_ref().map(|b| b.layers.len()))
            .finish()
    }
}

// Shared between a worker's task threads.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Prepared>()
};

/// Open `req`'s scenes, farmland, admin layer and baseline (the stages before the tiles).
pub fn prepare(
    req: &AnalysisRequest,
    models: &Models,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Prepared, PipelineError> {
    cancel.check()?;
    if req.crop_type && models.croptype.is_none() {
        return Err(PipelineError::NoCropTypeModel);
    }
    // SCL (the cloud and shadow mask) is used when every date carries one, decided from the
    // scenes' band names before the stack is built.
    let bands = models.landcover.bands();
    let optional = ["SCL".to_string()];
    progress.stage(Stage::OpeningScenes);
    let scene_opts = req.scene_options.options().map_err(InferenceError::from)?;
    let scenes = open_scenes(&req.scenes, &scene_opts, &bands, &optional)
        .and_then(|s| check_pixels(&s, req.scene_options.max_pixels).map(|()| s))
        .map_err(PipelineError::input(InputFailure::Scenes))?;
    let stack = build_stack(scenes, &bands, None)
        .map_err(PipelineError::input(InputFailure::SceneBands))?;
    cancel.check()?;
    progress.stage(Stage::ReadingFarmland);
    let mut farmland = read_farmland(req, &stack.grid)?;
    if let Some(admin) = &req.admin {
        cancel.check()?;
        progress.stage(Stage::ReadingAdmin);
        assign_admin(admin, &stack.grid, &mut farmland)?;
    }
    let baseline = if req.baseline.is_empty() {
        None
    } else {
        cancel.check()?;
        progress.stage(Stage::OpeningBaseline);
        let scenes = open_scenes(&req.baseline, &scene_opts, &bands, &optional)
            .and_then(|s| check_pixels(&s, req.scene_options.max_pixels).map(|()| s))
            .map_err(PipelineError::input(InputFailure::Baseline))?;
        Some(
            build_stack(scenes, &bands, Some(stack.grid.clone()))
                .map_err(PipelineError::input(InputFailure::BaselineGrid))?,
        )
    };
    Ok(Prepared {
        stack,
        farmland,
        baseline,
        layout: std::sync::OnceLock::new(),
    })
}

impl Prepared {
    /// What the analysis reads, for `req` with `models`.
    fn input<'a>(
        &'a self,
        req: &'a AnalysisRequest,
        models: &'a Models,
    ) -> Result<AnalysisInput<'a>, PipelineError> {
        let croptype = if req.crop_type {
            Some(
                models
                    .croptype
                    .as_ref()
                    .ok_or(PipelineError::NoCropTypeModel)?,
            )
        } else {
            None
        };
        Ok(AnalysisInput {
            stack: &self.stack,
            farmland: &self.farmland,
            landcover: &models.landcover,
            croptype: croptype.map(|c| c as &dyn SeasonClassifier),
            season_cover: croptype
                .and(models.season_cover.as_ref())
                .map(|c| c as &dyn SeasonClassifier),
            rules: &req.rules,
            tile_size: req.tile_size,
        })
    }

    /// The tiles a run of `req` analyses (those with farmland), ascending: the tasks of a
    /// shared run.
    pub fn tiles(
        &self,
        req: &AnalysisRequest,
        models: &Models,
    ) -> Result<Vec<usize>, PipelineError> {
        Ok(self.layout(req, models)?.tiles_with_farmland())
    }

    /// The parcels on `req`'s tile grid, made once and kept for the batch's next tasks (a
    /// batch is analysed at one tile size; another one is made each time, not kept).
    fn layout(
        &self,
        req: &AnalysisRequest,
        models: &Models,
    ) -> Result<std::borrow::Cow<'_, crate::analysis::TileLayout>, PipelineError> {
        use std::borrow::Cow;
        if let Some(l) = self.layout.get() {
            if l.tile_size() == req.tile_size {
                return Ok(Cow::Borrowed(l));
            }
            return Ok(Cow::Owned(crate::analysis::TileLayout::of(
                &self.input(req, models)?,
            )?));
        }
        let made = crate::analysis::TileLayout::of(&self.input(req, models)?)?;
        Ok(Cow::Borrowed(self.layout.get_or_init(|| made)))
    }

    /// Analyse tiles `tiles` of `req` (one task of a shared run) into `store`; returns how
    /// many were analysed.
    pub fn analyse_tiles(
        &self,
        req: &AnalysisRequest,
        models: &Models,
        tiles: &std::collections::BTreeSet<usize>,
        store: &dyn TileStore,
        cancel: &CancelToken,
    ) -> Result<usize, PipelineError> {
        cancel.check()?;
        let layout = self.layout(req, models)?;
        crate::analysis::analyze_tiles(
            &self.input(req, models)?,
            Some(&layout),
            self.baseline.as_ref(),
            tiles,
            store,
            Some(cancel.0.as_ref()),
        )
        .map_err(PipelineError::of_analysis)
    }

    /// Merge the tile outputs of a shared run (`store` must hold every tile with farmland)
    /// into the result, writing the outputs `req` asks for, as [`run`] does.
    pub fn merge(
        &self,
        req: &AnalysisRequest,
        models: &Models,
        store: &dyn TileStore,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<AnalysisOutput, PipelineError> {
        analyse_and_write(
            req,
            models,
            self,
            Some(store),
            TilePlan::MergeOnly,
            progress,
            cancel,
        )
    }
}

/// The analysis of prepared inputs and the outputs the request asks for.
fn analyse_and_write(
    req: &AnalysisRequest,
    models: &Models,
    prepared: &Prepared,
    checkpoints: Option<&dyn TileStore>,
    tiles: TilePlan<'_>,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<AnalysisOutput, PipelineError> {
    let (stack, farmland) = (&prepared.stack, &prepared.farmland);
    let lc = &models.landcover;
    let maps = match &req.outputs.maps {
        Some(dir) => Some(ClassMaps::create(
            dir,
            stack,
            &lc.class_names(),
            &lc.id(),
            prepared.baseline.is_some(),
        )?),
        None => None,
    };
    cancel.check()?;
    progress.stage(Stage::AnalysingTiles);
    let input = prepared.input(req, models)?;
    let opts = AnalysisOptions {
        baseline: prepared.baseline.as_ref(),
        maps: maps.as_ref().map(|m| m as &dyn MapSink),
        checkpoints,
        tiles,
    };
    let tick = |done: usize, total: usize| progress.tiles(done, total);
    let result = analyze_until(&input, &opts, Some(&tick), Some(cancel.0.as_ref()))
        .map_err(PipelineError::of_analysis)?;
    cancel.check()?;
    progress.stage(Stage::WritingOutputs);
    let map_paths = match maps {
        Some(m) => m.finish()?,
        None => Vec::new(),
    };
    if let Some(path) = &req.outputs.changes {
        write_patches(
            path,
            &result.patches,
            &stack.grid.crs,
            farmland.source_crs.as_ref(),
        )?;
    }
    if let Some(dir) = &req.outputs.parcel_table {
        write_parcel_table(dir, &result)?;
    }
    progress.stage(Stage::Done);
    Ok(AnalysisOutput {
        result,
        grid: stack.grid.clone(),
        map_paths,
    })
}

fn read_farmland(
    req: &AnalysisRequest,
    grid: &AnalysisGrid,
) -> Result<FarmlandLayer, PipelineError> {
    let options = FarmlandOptions {
        fields: match &req.farmland.fields {
            Some(s) => FieldMapping::parse(s)?,
            None => FieldMapping::default(),
        },
        layer: req.farmland.layer.clone(),
    };
    let farmland = FarmlandLayer::read_with(&req.farmland.path, &options, &grid.crs)?;
    let r = &farmland.report;
    tracing::info!(
        "farmland: layer {}, {} features: {} used ({} repaired, {} curved linearised), {} rejected; fields {}",
        r.layer,
        r.features,
        r.used,
        r.repaired,
        r.linearised,
        r.rejected.len(),
        r.fields_used
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for rej in &r.rejected {
        tracing::info!("  rejected {}: {}", rej.id, rej.reason);
    }
    Ok(farmland)
}

fn assign_admin(
    req: &AdminRequest,
    grid: &AnalysisGrid,
    farmland: &mut FarmlandLayer,
) -> Result<(), PipelineError> {
    let fields = match &req.fields {
        Some(s) => AdminFields::parse(s)?,
        None => AdminFields::default(),
    };
    let admin = AdminLayer::read(&req.path, &fields, &grid.crs)?;
    let r = &admin.report;
    let a = admin.assign(farmland);
    tracing::info!(
        "admin: {} layer(s) ({}), {} features: {} used, {} rejected; parcels given codes {}, already coded {}, outside every unit {}",
        r.layers.len(),
        r.layers.join(", "),
        r.features,
        r.used,
        r.rejected.len(),
        a.filled,
        a.kept,
        a.outside
    );
    for rej in &r.rejected {
        tracing::info!("  rejected {}:{}: {}", rej.layer, rej.feature, rej.reason);
    }
    Ok(())
}

/// parcels.json and parcels.csv in `dir` (created): every parcel's status, flags, crop type,
/// tree check and per-date evidence.
pub fn write_parcel_table(dir: &Path, result: &AnalysisResult) -> Result<(), PipelineError> {
    let write_err = |path: PathBuf| move |source| PipelineError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(write_err(dir.to_path_buf()))?;
    let json_path = dir.join("parcels.json");
    let json =
        serde_json::to_string_pretty(&result.parcels).map_err(|source| PipelineError::Json {
            path: json_path.clone(),
            source,
        })?;
    std::fs::write(&json_path, json).map_err(write_err(json_path.clone()))?;
    let mut csv = String::from("parcel_id,pbf,county_code,county_name,township_code,township_name,village_code,village_name,group_code,group_name,status,pixels,flags,crop_type,crop_type_confidence,tree_check,tree_check_confidence,clear_pixels_per_date,mean_ndvi_per_date,class_fractions_per_date\n");
    for p in &result.parcels {
        let (ct, cc) = p
            .crop_type
            .clone()
            .map(|(n, c)| (n, format!("{c:.3}")))
            .unwrap_or_default();
        let (tc, tcc) = p
            .tree_check
            .clone()
            .map(|(n, c)| (n, format!("{c:.3}")))
            .unwrap_or_default();
        let a = &p.admin;
        let cells = [
            p.parcel_id.clone(),
            u8::from(p.pbf).to_string(),
            a.county_code.clone().unwrap_or_default(),
            a.county_name.clone().unwrap_or_default(),
            a.township_code.clone().unwrap_or_default(),
            a.township_name.clone().unwrap_or_default(),
            a.village_code.clone().unwrap_or_default(),
            a.village_name.clone().unwrap_or_default(),
            a.group_code.clone().unwrap_or_default(),
            a.group_name.clone().unwrap_or_default(),
            p.status.to_string(),
            p.pixels.to_string(),
            p.flags
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(";"),
            ct,
            cc,
            tc,
            tcc,
            p.clear_pixels
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(";"),
            p.mean_ndvi
                .iter()
                .map(|v| v.map(|x| format!("{x:.3}")).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(";"),
            // Per date `class:fraction|class:fraction`, dates separated by `;`.
            p.evidence
                .iter()
                .map(|e| {
                    e.as_ref()
                        .map(|e| {
                            e.class_fractions
                                .iter()
                                .zip(&result.class_names)
                                .filter(|(v, _)| **v > 0.0)
                                .map(|(v, k)| format!("{k}:{v:.3}"))
                                .collect::<Vec<_>>()
                                .join("|")
                        })
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(";"),
        ];
        csv.push_str(
            &cells
                .iter()
                .map(|c| csv_quote(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push('\n');
    }
    let csv_path = dir.join("parcels.csv");
    std::fs::write(&csv_path, csv).map_err(write_err(csv_path.clone()))?;
    Ok(())
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
