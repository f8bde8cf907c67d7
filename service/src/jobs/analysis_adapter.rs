//! The one place that runs an analysis for the service: a batch becomes an
//! [`AnalysisRequest`] and goes through the library call `gengdi analyze` makes too
//! ([`pipeline::run`]), with the service's progress and cancellation (checked between
//! stages and before each tile is read). A cancelled job stores no patches.

use std::sync::Arc;

use gengdi_inference::analysis::PatchRecord;
use gengdi_inference::pipeline::{
    self, AnalysisRequest, FarmlandRequest, OutputRequest, PipelineError, SceneRequest,
};
use gengdi_inference::rules::RulesConfig;
use gengdi_models::{DeviceChoice, Registry, Task};

use super::{CancelToken, JobError, JobExecutor, JobSpec, ModelInfo, ProgressSink};
use crate::error::{Result, ServiceError};
use crate::geometry::{bbox, geojson_multipolygon, ToWgs84};
use crate::store::{AdminCodes, NewPatch};

/// The models an analysis uses, loaded once and shared by every job.
pub use gengdi_inference::pipeline::Models;

/// The active land-cover (and, with `crop_type`, crop-type) model of `registry`.
pub fn load_models(registry: &Registry, device: DeviceChoice, crop_type: bool) -> Result<Models> {
    let lc = registry.active_dir(Task::LandCover)?;
    let ct = if crop_type {
        Some(registry.active_dir(Task::CropType)?)
    } else {
        None
    };
    Models::load(&lc, ct.as_deref(), device).map_err(|e| ServiceError::Config {
        what: "models".into(),
        reason: e.to_string(),
    })
}

/// Runs batches as `gengdi analyze` would, with default rules and scene options.
#[derive(Debug)]
pub struct AnalysisExecutor {
    pub models: Arc<Models>,
    /// Tile side in pixels.
    pub tile: usize,
    /// Scenes claiming more pixels per band are refused before a pixel is read.
    pub max_scene_pixels: u64,
}

impl JobExecutor for AnalysisExecutor {
    fn models(&self) -> Vec<ModelInfo> {
        use gengdi_inference::analysis::{PixelClassifier, SeasonClassifier};
        let mut m = vec![ModelInfo {
            task: Task::LandCover.name().to_string(),
            id: self.models.landcover.id(),
        }];
        if let Some(ct) = &self.models.croptype {
            m.push(ModelInfo {
                task: Task::CropType.name().to_string(),
                id: ct.id(),
            });
        }
        m
    }

    fn model_card(&self, id: &str) -> Option<serde_json::Value> {
        let lc = self.models.landcover.0.card();
        let card = if lc.id == id {
            serde_json::to_value(lc)
        } else {
            let ct = self.models.croptype.as_ref()?.0.card();
            if ct.id != id {
                return None;
            }
            serde_json::to_value(ct)
        };
        card.ok()
    }

    fn run(
        &self,
        job: &JobSpec,
        progress: &ProgressSink,
        cancel: &CancelToken,
    ) -> std::result::Result<Vec<NewPatch>, JobError> {
        let mut req = request(job, self.tile, self.models.croptype.is_some());
        req.scene_options.max_pixels = Some(self.max_scene_pixels);
        run(&req, &self.models, progress, cancel)
    }
}

/// The analysis request of a batch: its scenes and farmland, default rules and scene
/// options, no files written (the patches go to the store).
pub fn request(job: &JobSpec, tile: usize, crop_type: bool) -> AnalysisRequest {
    AnalysisRequest {
        scenes: job.scenes.clone(),
        baseline: Vec::new(),
        farmland: FarmlandRequest {
            path: job.farmland.clone(),
            layer: Some(job.farmland_layer.clone()),
            fields: (!job.farmland_mapping.is_empty()).then(|| job.farmland_mapping.clone()),
        },
        admin: None,
        scene_options: SceneRequest::default(),
        rules: RulesConfig::default(),
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
    let to_wgs84 = ToWgs84::from(&out.grid.crs)?;
    let patches = out
        .result
        .patches
        .iter()
        .map(|p| new_patch(p, &to_wgs84))
        .collect::<Result<Vec<_>>>()?;
    Ok(patches)
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
    })
}
