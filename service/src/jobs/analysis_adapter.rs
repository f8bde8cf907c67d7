//! The one place that runs an analysis for the service: a batch becomes an
//! [`AnalysisRequest`] and goes through the library call `gengdi analyze` makes too
//! ([`pipeline::run`]), with the service's progress and cancellation (checked between
//! stages and before each tile is read). A cancelled job stores no patches.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use gengdi_inference::analysis::{ParcelStatus, PatchRecord};
use gengdi_inference::pipeline::{
    self, AdminRequest, AnalysisRequest, FarmlandRequest, OutputRequest, PipelineError,
    SceneRequest,
};
use gengdi_models::{DeviceChoice, Registry, Task};

use super::{CancelToken, JobError, JobExecutor, JobSpec, ModelInfo, ProgressSink};
use crate::error::{Result, ServiceError};
use crate::geometry::{bbox, geojson_multipolygon, ToWgs84};
use crate::store::models::StoredModel;
use crate::store::queue::BatchPlan;
use crate::store::{AdminCodes, NewPatch, PatchSeries, SeriesDate};

/// The models an analysis uses, loaded once and shared by every job.
pub use gengdi_inference::pipeline::Models;

/// The active land-cover model of `registry` and, with `crop_type`, its crop-type model and
/// its season-cover model when it has one.
pub fn load_models(registry: &Registry, device: DeviceChoice, crop_type: bool) -> Result<Models> {
    let lc = registry.active_dir(Task::LandCover)?;
    let (ct, sc) = if crop_type {
        let sc = registry.active_dir_if_any(Task::SeasonCover)?;
        (Some(registry.active_dir(Task::CropType)?), sc)
    } else {
        (None, None)
    };
    Models::load(&lc, ct.as_deref(), sc.as_deref(), device).map_err(|e| ServiceError::Config {
        what: "models".into(),
        reason: e.to_string(),
    })
}

/// The service's own registry: `<data dir>/models`. When it holds no task folder yet, the
/// registry `from` (the one `gengdi serve` located: built in, installed or given) is copied
/// into it first (hidden entries left out). Returns it, writable: activation and training
/// write here, never into `from`.
pub fn data_dir_registry(data_dir: &Path, from: &Registry) -> Result<Registry> {
    let dir = data_dir.join("models");
    let has_models = Task::ALL.iter().any(|t| dir.join(t.name()).is_dir());
    if !has_models {
        // Copied beside it, then renamed into place: servers and workers starting together
        // on one data dir never load a half-copied model; the first rename wins.
        std::fs::create_dir_all(data_dir).map_err(|source| ServiceError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let partial = data_dir.join(format!(".models-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        let n = copy_dir(from.root(), &partial)?;
        match std::fs::rename(&partial, &dir) {
            Ok(()) => tracing::info!(
                "models: copied {n} files of {} into {}",
                from.root().display(),
                dir.display()
            ),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                if !Task::ALL.iter().any(|t| dir.join(t.name()).is_dir()) {
                    return Err(ServiceError::Io {
                        path: dir,
                        source: e,
                    });
                }
                // Another process put its copy there first.
            }
        }
    }
    Ok(Registry::new(dir))
}

fn copy_dir(from: &Path, to: &Path) -> Result<usize> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServiceError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    let mut n = 0;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            n += copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io(&dst))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Runs batches as `gengdi analyze` would, with default rules and scene options; with a
/// registry (see [`AnalysisExecutor::with_registry`]) it also activates models and trains.
#[derive(Debug)]
pub struct AnalysisExecutor {
    /// The models jobs start with; activation swaps them (a running job keeps its own).
    models: RwLock<Arc<Models>>,
    /// Where models are activated and trained into.
    registry: Option<Registry>,
    device: DeviceChoice,
    /// One activation at a time.
    activating: Mutex<()>,
    /// Land-cover models other than the active one, loaded to draw the maps of batches
    /// they analysed.
    others: Mutex<std::collections::HashMap<String, Arc<Models>>>,
    /// Tile side in pixels.
    pub tile: usize,
    /// Scenes claiming more pixels per band are refused before a pixel is read.
    pub max_scene_pixels: u64,
    /// The inputs of the batch whose tiles this process analyses in a shared run.
    prepared: Mutex<PreparedBatch>,
    /// Remote scene hrefs batches may name (see [`crate::ServiceConfig::remote_prefixes`]).
    pub remote_prefixes: Vec<String>,
    /// The models of the last plan whose models are not the active ones (see
    /// [`BatchPlan::models`]), by their ids.
    planned: Mutex<Option<(Vec<String>, Arc<Models>)>>,
}

/// The ids of `models`, land cover first (as [`BatchPlan::models`] lists them).
pub fn model_ids(models: &Models) -> Vec<String> {
    use gengdi_inference::analysis::{PixelClassifier, SeasonClassifier};
    let mut ids = vec![models.landcover.id()];
    ids.extend(models.croptype.as_ref().map(|m| m.id()));
    ids.extend(models.season_cover.as_ref().map(|m| m.id()));
    ids
}

impl AnalysisExecutor {
    /// An executor running `models`, without a registry (no activation, no training).
    pub fn new(models: Models, tile: usize, max_scene_pixels: u64) -> AnalysisExecutor {
        AnalysisExecutor {
            models: RwLock::new(Arc::new(models)),
            registry: None,
            device: DeviceChoice::default(),
            activating: Mutex::new(()),
            others: Mutex::default(),
            tile,
            max_scene_pixels,
            prepared: Mutex::new(None),
            remote_prefixes: Vec::new(),
            planned: Mutex::new(None),
        }
    }

    /// Activate and train in `registry` (writable: the data dir's, [`data_dir_registry`]),
    /// loading models on `device`.
    pub fn with_registry(mut self, registry: Registry, device: DeviceChoice) -> AnalysisExecutor {
        self.registry = Some(registry);
        self.device = device;
        self
    }

    /// The models a job starting now runs.
    pub fn models_now(&self) -> Arc<Models> {
        match self.models.read() {
            Ok(m) => Arc::clone(&m),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn registry(&self) -> std::result::Result<&Registry, ServiceError> {
        self.registry
            .as_ref()
            .ok_or_else(|| ServiceError::Invalid("this service has no model registry".into()))
    }
}

impl JobExecutor for AnalysisExecutor {
    fn models(&self) -> Vec<ModelInfo> {
        use gengdi_inference::analysis::{PixelClassifier, SeasonClassifier};
        if let Some(registry) = &self.registry {
            match registry.list() {
                Ok(entries) => {
                    return entries
                        .into_iter()
                        .map(|e| ModelInfo {
                            task: e.task.name().to_string(),
                            id: e.id,
                            active: Some(e.active),
                        })
                        .collect()
                }
                Err(e) => tracing::error!("models: cannot list {}: {e}", registry.root().display()),
            }
        }
        let models = self.models_now();
        let mut m = vec![ModelInfo {
            task: Task::LandCover.name().to_string(),
            id: models.landcover.id(),
            active: None,
        }];
        if let Some(ct) = &models.croptype {
            m.push(ModelInfo {
                task: Task::CropType.name().to_string(),
                id: ct.id(),
                active: None,
            });
        }
        m
    }

    fn model_card(&self, id: &str) -> Option<serde_json::Value> {
        if let Some(registry) = &self.registry {
            let entry = registry.list().ok()?.into_iter().find(|e| e.id == id)?;
            return gengdi_models::ModelCard::load(&entry.dir)
                .ok()
                .and_then(|c| serde_json::to_value(c).ok());
        }
        let models = self.models_now();
        let lc = models.landcover.0.card();
        let card = if lc.id == id {
            serde_json::to_value(lc)
        } else {
            let ct = models.croptype.as_ref()?.0.card();
            if ct.id != id {
                return None;
            }
            serde_json::to_value(ct)
        };
        card.ok()
    }

    fn landcover_model(
        &self,
        id: Option<&str>,
    ) -> std::result::Result<Option<Arc<Models>>, ServiceError> {
        use gengdi_inference::analysis::PixelClassifier;
        let now = self.models_now();
        let Some(id) = id.filter(|id| *id != now.landcover.id()) else {
            return Ok(Some(now));
        };
        let mut others = self.others.lock().map_err(|_| ServiceError::Poisoned)?;
        if let Some(m) = others.get(id) {
            return Ok(Some(Arc::clone(m)));
        }
        let Some(registry) = &self.registry else {
            return Ok(None);
        };
        let Some(entry) = registry
            .list()?
            .into_iter()
            .find(|e| e.id == id && e.task == Task::LandCover)
        else {
            return Ok(None);
        };
        let models = Arc::new(
            Models::load(&entry.dir, None, None, self.device).map_err(|e| {
                ServiceError::Config {
                    what: format!("land-cover model {id}"),
                    reason: e.to_string(),
                }
            })?,
        );
        others.insert(id.to_string(), Arc::clone(&models));
        Ok(Some(models))
    }

    fn run(
        &self,
        job: &JobSpec,
        progress: &ProgressSink,
        cancel: &CancelToken,
    ) -> std::result::Result<Vec<NewPatch>, JobError> {
        let models = self.models_now();
        let mut req = request(job, self.tile, models.croptype.is_some());
        req.scene_options.max_pixels = Some(self.max_scene_pixels);
        req.scene_options.remote_prefixes = self.remote_prefixes.clone();
        run(&req, &models, progress, cancel)
    }

    fn runs_shared(&self) -> bool {
        true
    }

    fn plan(
        &self,
        job: &JobSpec,
        cancel: &CancelToken,
    ) -> std::result::Result<(BatchPlan, Vec<usize>), JobError> {
        let models = self.models_now();
        let mut req = request(job, self.tile, models.croptype.is_some());
        req.scene_options.max_pixels = Some(self.max_scene_pixels);
        req.scene_options.remote_prefixes = self.remote_prefixes.clone();
        req.checkpoint = None;
        let plan = BatchPlan {
            request: serde_json::to_value(&req)
                .map_err(|e| ServiceError::Invalid(format!("the analysis request: {e}")))?,
            fingerprint: pipeline::checkpoint_fingerprint(&req, &models),
            tiles: 0,
            models: model_ids(&models),
        };
        let prepared = self.prepared(job.batch, &plan, &req, &models, cancel)?;
        let tiles = prepared.tiles(&req, &models).map_err(failed)?;
        Ok((
            BatchPlan {
                tiles: tiles.len() as i64,
                ..plan
            },
            tiles,
        ))
    }

    fn run_tile(
        &self,
        batch: i64,
        plan: &BatchPlan,
        tile: usize,
        cancel: &CancelToken,
    ) -> std::result::Result<Vec<u8>, JobError> {
        let models = self.planned_models(batch, plan)?;
        let req = self.planned_request(batch, plan, &models)?;
        let prepared = self.prepared(batch, plan, &req, &models, cancel)?;
        let out = gengdi_inference::checkpoint::MemoryTiles::default();
        prepared
            .analyse_tiles(&req, &models, &[tile].into(), &out, cancel)
            .map_err(failed)?;
        out.into_inner().remove(&tile).ok_or_else(|| {
            JobError::Failed(ServiceError::Invalid(format!(
                "batch {batch}: tile {tile} has no farmland on this worker's view of the inputs"
            )))
        })
    }

    fn merge(
        &self,
        batch: i64,
        plan: &BatchPlan,
        tiles: Vec<(usize, Vec<u8>)>,
        progress: &ProgressSink,
        cancel: &CancelToken,
    ) -> std::result::Result<Vec<NewPatch>, JobError> {
        let models = self.planned_models(batch, plan)?;
        let req = self.planned_request(batch, plan, &models)?;
        let prepared = self.prepared(batch, plan, &req, &models, cancel)?;
        let store = gengdi_inference::checkpoint::MemoryTiles::with(tiles);
        let out = prepared
            .merge(&req, &models, &store, progress, cancel)
            .map_err(failed)?;
        progress.stage_name("storing");
        // The batch is done with: its inputs need not stay open.
        if let Ok(mut slot) = self.prepared.lock() {
            if slot.as_ref().is_some_and(|(b, _, _)| *b == batch) {
                *slot = None;
            }
        }
        Ok(patches_of(&out)?)
    }

    fn activate(&self, id: &str) -> std::result::Result<Option<ModelInfo>, ServiceError> {
        let registry = self.registry()?;
        let _one = self.activating.lock().map_err(|_| ServiceError::Poisoned)?;
        let Some(entry) = registry.list()?.into_iter().find(|e| e.id == id) else {
            return Ok(None);
        };
        let previous = registry.active_id(entry.task)?;
        registry.activate(&entry.id)?;
        let crop_type = self.models_now().croptype.is_some();
        match load_models(registry, self.device, crop_type) {
            Ok(models) => {
                match self.models.write() {
                    Ok(mut m) => *m = Arc::new(models),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(models),
                }
                tracing::info!("models: {} {} activated", entry.task, entry.id);
                Ok(Some(ModelInfo {
                    task: entry.task.name().to_string(),
                    id: entry.id,
                    active: Some(true),
                }))
            }
            Err(e) => {
                // The models in use stay; so does the registry's active one.
                if let Some(p) = previous {
                    if let Err(back) = registry.activate(&p) {
                        tracing::error!("models: cannot re-activate {p}: {back}");
                    }
                }
                Err(e)
            }
        }
    }

    fn export_model(&self, id: &str) -> std::result::Result<Option<StoredModel>, ServiceError> {
        let registry = self.registry()?;
        let Some(entry) = registry.list()?.into_iter().find(|e| e.id == id) else {
            return Ok(None);
        };
        let mut files = Vec::new();
        let read_dir = |e: std::io::Error| ServiceError::Io {
            path: entry.dir.clone(),
            source: e,
        };
        for f in std::fs::read_dir(&entry.dir).map_err(read_dir)? {
            let path = f.map_err(read_dir)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.is_file() && !name.starts_with('.') {
                let bytes = std::fs::read(&path).map_err(|source| ServiceError::Io {
                    path: path.clone(),
                    source,
                })?;
                files.push((name, bytes));
            }
        }
        files.sort();
        Ok(Some(StoredModel {
            id: entry.id,
            task: entry.task.name().to_string(),
            files,
        }))
    }

    fn import_model(&self, model: &StoredModel) -> std::result::Result<(), ServiceError> {
        let registry = self.registry()?;
        install_model(registry, model)
    }

    fn train(
        &self,
        spec: &super::training::TrainingSpec,
        progress: &ProgressSink,
        cancel: &CancelToken,
    ) -> std::result::Result<serde_json::Value, JobError> {
        let registry = self.registry()?;
        super::train_adapter::train(
            registry,
            self.device,
            &self.models_now(),
            spec,
            progress,
            cancel,
        )
    }
}

/// The analysis request of a batch: its scenes, baseline, farmland, admin layer and rules,
/// default scene options, no files written (the patches go to the store).
pub fn request(job: &JobSpec, tile: usize, crop_type: bool) -> AnalysisRequest {
    AnalysisRequest {
        scenes: job.scenes.clone(),
        baseline: job.baseline.clone(),
        farmland: FarmlandRequest {
            path: job.farmland.clone(),
            layer: Some(job.farmland_layer.clone()),
            fields: (!job.farmland_mapping.is_empty()).then(|| job.farmland_mapping.clone()),
        },
        admin: job.admin.as_ref().map(|(path, mapping)| AdminRequest {
            path: path.clone(),
            fields: (!mapping.is_empty()).then(|| mapping.clone()),
        }),
        scene_options: SceneRequest::default(),
        rules: job.rules.clone(),
        tile_size: tile,
        crop_type,
        outputs: OutputRequest::default(),
        checkpoint: job.checkpoint.clone(),
    }
}

/// Run a batch's analysis request; the patches come back in WGS 84 with their bounding
/// boxes.
pub fn run(
    req: &AnalysisRequest,
    models: &Models,
    progress: &ProgressSink,
    cancel: &CancelToken,
) -> std::result::Result<Vec<NewPatch>, JobError> {
    let out = match pipeline::run(req, models, progress, cancel) {
        Ok(out) => out,
        Err(PipelineError::Cancelled) => return Err(JobError::Cancelled),
        Err(e) => return Err(JobError::Failed(ServiceError::Analysis(Box::new(e)))),
    };
    progress.stage_name("storing");
    Ok(patches_of(&out)?)
}

/// An analysis's patches as the store keeps them: in WGS 84, with their bounding boxes and
/// their parcels' evidence over the season.
pub fn patches_of(out: &pipeline::AnalysisOutput) -> Result<Vec<NewPatch>> {
    let to_wgs84 = ToWgs84::from(&out.grid.crs)?;
    let parcels: std::collections::HashMap<&str, &ParcelStatus> = out
        .result
        .parcels
        .iter()
        .map(|s| (s.parcel_id.as_str(), s))
        .collect();
    let patches = out
        .result
        .patches
        .iter()
        .map(|p| {
            let mut new = new_patch(p, &to_wgs84)?;
            new.series = parcels
                .get(p.parcel_id.as_str())
                .map(|s| series(s, &out.result.dates, &out.result.class_names));
            Ok(new)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(patches)
}

/// The prepared inputs of the batch a worker works on (see [`AnalysisExecutor::run_tile`]):
/// its id, the plan's fingerprint and the inputs.
type PreparedBatch = Option<(i64, String, Arc<pipeline::Prepared>)>;

fn unusable_plan(batch: i64, e: impl std::fmt::Display) -> JobError {
    JobError::Failed(ServiceError::Invalid(format!(
        "batch {batch}: the stored plan is not an analysis request: {e}"
    )))
}

fn failed(e: PipelineError) -> JobError {
    match e {
        PipelineError::Cancelled => JobError::Cancelled,
        e => JobError::Failed(ServiceError::Analysis(Box::new(e))),
    }
}

/// Write `model` (from the shared store) into `registry` as `<task>/<id>/`, unless it is
/// there: into a hidden folder first, renamed when complete, so a process listing the
/// registry meanwhile never sees half a model. The weights are checked against the card
/// when the model is loaded.
fn install_model(registry: &Registry, model: &StoredModel) -> Result<()> {
    let bad = |why: String| ServiceError::Invalid(format!("stored model {}: {why}", model.id));
    let task: Task = model
        .task
        .parse()
        .map_err(|_| bad(format!("unknown task {:?}", model.task)))?;
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if !plain(&model.id) {
        return Err(bad("not a model id".into()));
    }
    let task_dir = registry.root().join(task.name());
    let dir = task_dir.join(&model.id);
    if dir.join("card.json").is_file() {
        return Ok(());
    }
    let tmp = task_dir.join(format!(".{}.{}.tmp", model.id, std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServiceError::Io { path, source }
    };
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for (name, bytes) in &model.files {
        if !plain(name) {
            return Err(bad(format!("file name {name:?}")));
        }
        let path = tmp.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(()),
        // Another process installed it meanwhile.
        Err(_) if dir.join("card.json").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(source) => Err(ServiceError::Io { path: dir, source }),
    }
}

impl AnalysisExecutor {
    /// The models a planned batch's tasks run: those it was planned with (loaded from the
    /// registry when they are not the active ones; the last such set is kept).
    fn planned_models(
        &self,
        batch: i64,
        plan: &BatchPlan,
    ) -> std::result::Result<Arc<Models>, JobError> {
        let now = self.models_now();
        if plan.models.is_empty() || plan.models == model_ids(&now) {
            return Ok(now);
        }
        let mut slot = self.planned.lock().map_err(|_| ServiceError::Poisoned)?;
        if let Some((ids, m)) = slot.as_ref() {
            if *ids == plan.models {
                return Ok(Arc::clone(m));
            }
        }
        let registry = self.registry()?;
        let entries = registry.list().map_err(ServiceError::from)?;
        let dir = |task: Task| {
            plan.models
                .iter()
                .find_map(|id| entries.iter().find(|e| e.id == *id && e.task == task))
                .map(|e| e.dir.clone())
        };
        let missing = plan
            .models
            .iter()
            .filter(|id| !entries.iter().any(|e| e.id == **id))
            .cloned()
            .collect::<Vec<_>>();
        if !missing.is_empty() {
            return Err(JobError::Failed(ServiceError::Invalid(format!(
                "batch {batch} was planned with models this worker's registry lacks: {}",
                missing.join(", ")
            ))));
        }
        let lc = dir(Task::LandCover).ok_or_else(|| {
            JobError::Failed(ServiceError::Invalid(format!(
                "batch {batch}: its plan names no land-cover model"
            )))
        })?;
        let models = Arc::new(
            Models::load(
                &lc,
                dir(Task::CropType).as_deref(),
                dir(Task::SeasonCover).as_deref(),
                self.device,
            )
            .map_err(|e| ServiceError::Config {
                what: format!("the models of batch {batch}"),
                reason: e.to_string(),
            })?,
        );
        *slot = Some((plan.models.clone(), Arc::clone(&models)));
        Ok(models)
    }

    /// The request of a plan, checked against this executor's models: a worker whose models
    /// (or view of the scene files) differ from the planner's refuses the batch's tasks
    /// rather than mix two analyses.
    fn planned_request(
        &self,
        batch: i64,
        plan: &BatchPlan,
        models: &Models,
    ) -> std::result::Result<AnalysisRequest, JobError> {
        let req: AnalysisRequest =
            serde_json::from_value(plan.request.clone()).map_err(|e| unusable_plan(batch, e))?;
        let mine = pipeline::checkpoint_fingerprint(&req, models);
        if mine != plan.fingerprint {
            return Err(JobError::Failed(ServiceError::Invalid(format!(
                "batch {batch} was planned with other models or other scene files than this \
                 worker sees (fingerprint {} here, {} in the plan): run every worker with the \
                 same active models and the same scene storage",
                &mine[..12],
                &plan.fingerprint[..plan.fingerprint.len().min(12)]
            ))));
        }
        Ok(req)
    }

    /// The inputs of `batch`, opened once per batch and kept for its next tasks.
    fn prepared(
        &self,
        batch: i64,
        plan: &BatchPlan,
        req: &AnalysisRequest,
        models: &Models,
        cancel: &CancelToken,
    ) -> std::result::Result<Arc<pipeline::Prepared>, JobError> {
        let mut slot = self.prepared.lock().map_err(|_| ServiceError::Poisoned)?;
        if let Some((b, fp, p)) = slot.as_ref() {
            if *b == batch && *fp == plan.fingerprint {
                return Ok(Arc::clone(p));
            }
        }
        let p = Arc::new(
            pipeline::prepare(req, models, &gengdi_inference::pipeline::NoProgress, cancel)
                .map_err(failed)?,
        );
        *slot = Some((batch, plan.fingerprint.clone(), Arc::clone(&p)));
        Ok(p)
    }
}

/// A parcel's evidence over the season (`dates`: the season's; `classes`: the land-cover
/// classes its fractions are in).
pub fn series(
    s: &ParcelStatus,
    dates: &[Option<chrono::NaiveDate>],
    classes: &[String],
) -> PatchSeries {
    PatchSeries {
        classes: classes.to_vec(),
        dates: dates
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let e = s.evidence.get(i).and_then(Option::as_ref);
                SeriesDate {
                    date: d.map(|d| d.to_string()),
                    clear_pixels: s.clear_pixels.get(i).copied().unwrap_or(0),
                    class_fractions: e
                        .map(|e| {
                            classes
                                .iter()
                                .cloned()
                                .zip(e.class_fractions.iter().copied())
                                .collect()
                        })
                        .unwrap_or_default(),
                    ndvi: e.and_then(|e| e.ndvi),
                    ndwi: e.and_then(|e| e.ndwi),
                    mndwi: e.and_then(|e| e.mndwi),
                    bsi: e.and_then(|e| e.bsi),
                    ndbi: e.and_then(|e| e.ndbi),
                }
            })
            .collect(),
        pixels: s.pixels,
        kinds: s.kinds.clone(),
        crop_type: s.crop_type.clone(),
        tree_check: s.tree_check.clone(),
    }
}

fn new_patch(p: &PatchRecord, to_wgs84: &ToWgs84) -> Result<NewPatch> {
    let polygons = to_wgs84.polygons(&p.polygons)?;
    let bbox = bbox(&polygons)
        .ok_or_else(|| ServiceError::Invalid(format!("patch {}: no geometry", p.id)))?;
    let location_code = p
        .group_code
        .clone()
        .or_else(|| p.village_code.clone())
        .or_else(|| p.township_code.clone())
        .or_else(|| p.county_code.clone());
    Ok(NewPatch {
        reference: p.id.clone(),
        kind: p.kind.to_string(),
        parcel: p.parcel_id.clone(),
        pbf: p.pbf,
        area_m2: p.area_m2,
        area_mu: p.area_mu,
        admin: AdminCodes {
            county_code: p.county_code.clone(),
            township_code: p.township_code.clone(),
            village_code: p.village_code.clone(),
            group_code: p.group_code.clone(),
            location_code,
            county_name: p.county_name.clone(),
            township_name: p.township_name.clone(),
            village_name: p.village_name.clone(),
            group_name: p.group_name.clone(),
        },
        class_before: p.class_before.clone(),
        class_after: p.class_after.clone(),
        dates: p.dates.iter().map(|d| d.to_string()).collect(),
        confidence: p.confidence,
        model_version: p.model_version.clone(),
        evidence: p.evidence.clone(),
        geometry: geojson_multipolygon(&polygons).to_string(),
        bbox,
        series: None,
    })
}
