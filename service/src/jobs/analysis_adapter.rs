//! The one place that runs an analysis for the service, doing what `gengdi analyze` does
//! (open the scenes, stack them, read the farmland, `inference::analysis`), with the
//! service's progress and cancellation. It is to be replaced by the library pipeline
//! (`inference::pipeline::run(request, models, progress, cancel)`) once that exists: only
//! this file changes.
//!
//! Cancellation is checked between stages (the analysis call itself cannot be interrupted
//! yet); a cancelled job stores no patches.

use std::sync::Arc;

use gengdi_inference::analysis::{analyze, AnalysisInput, PatchRecord, PixelClassifier};
use gengdi_inference::inputs::{build_stack, open_scenes};
use gengdi_inference::models_adapter::{CropTypeAdapter, LandCoverAdapter};
use gengdi_inference::rules::RulesConfig;
use gengdi_inference::{FarmlandLayer, FarmlandOptions, FieldMapping};
use gengdi_models::{CropTypeModel, DeviceChoice, LandCoverModel, Registry, Task};
use gengdi_tiling::SceneOptions;

use super::{CancelToken, JobError, JobExecutor, JobSpec, ModelInfo, ProgressSink};
use crate::error::{Result, ServiceError};
use crate::geometry::{bbox, geojson_multipolygon, ToWgs84};
use crate::store::{AdminCodes, NewPatch};

/// The models an analysis uses, loaded once and shared by every job.
#[derive(Debug)]
pub struct Models {
    pub landcover: LandCoverAdapter,
    pub croptype: Option<CropTypeAdapter>,
}

impl Models {
    /// The active land-cover (and, with `crop_type`, crop-type) model of `registry`.
    pub fn load(registry: &Registry, device: DeviceChoice, crop_type: bool) -> Result<Models> {
        let device = device.device();
        let landcover = LandCoverAdapter(LandCoverModel::load(
            &registry.active_dir(Task::LandCover)?,
            &device,
        )?);
        let croptype = if crop_type {
            Some(CropTypeAdapter(CropTypeModel::load(
                &registry.active_dir(Task::CropType)?,
                &device,
            )?))
        } else {
            None
        };
        Ok(Models {
            landcover,
            croptype,
        })
    }
}

/// Runs batches as `gengdi analyze` would, with default rules and scene options.
#[derive(Debug)]
pub struct AnalysisExecutor {
    pub models: Arc<Models>,
    /// Tile side in pixels.
    pub tile: usize,
}

impl JobExecutor for AnalysisExecutor {
    fn models(&self) -> Vec<ModelInfo> {
        use gengdi_inference::analysis::SeasonClassifier;
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

    fn run(
        &self,
        job: &JobSpec,
        progress: &ProgressSink,
        cancel: &CancelToken,
    ) -> std::result::Result<Vec<NewPatch>, JobError> {
        run(job, &self.models, self.tile, progress, cancel)
    }
}

fn check(cancel: &CancelToken) -> std::result::Result<(), JobError> {
    if cancel.is_cancelled() {
        Err(JobError::Cancelled)
    } else {
        Ok(())
    }
}

/// Analyse one batch; the patches come back in WGS 84 with their bounding boxes.
pub fn run(
    job: &JobSpec,
    models: &Models,
    tile: usize,
    progress: &ProgressSink,
    cancel: &CancelToken,
) -> std::result::Result<Vec<NewPatch>, JobError> {
    check(cancel)?;
    progress.stage("opening_scenes");
    let lc = &models.landcover;
    let bands = lc.bands();
    let scenes = open_scenes(
        &job.scenes,
        &SceneOptions::default(),
        &bands,
        &["SCL".to_string()],
    )
    .map_err(ServiceError::from)?;
    let stack = build_stack(scenes, &bands, None).map_err(ServiceError::from)?;
    check(cancel)?;
    progress.stage("reading_farmland");
    let fields = if job.farmland_mapping.is_empty() {
        FieldMapping::default()
    } else {
        FieldMapping::parse(&job.farmland_mapping).map_err(ServiceError::from)?
    };
    let farmland = FarmlandLayer::read_with(
        &job.farmland,
        &FarmlandOptions {
            fields,
            layer: Some(job.farmland_layer.clone()),
        },
        &stack.grid.crs,
    )
    .map_err(ServiceError::from)?;
    check(cancel)?;
    let total = stack
        .tile_grid(tile, 0)
        .map_err(|e| ServiceError::Inference(e.into()))?
        .len() as u64;
    progress.tiles(0, total);
    progress.stage("analysing");
    let rules = RulesConfig::default();
    let input = AnalysisInput {
        stack: &stack,
        farmland: &farmland,
        landcover: lc,
        croptype: models
            .croptype
            .as_ref()
            .map(|c| c as &dyn gengdi_inference::analysis::SeasonClassifier),
        rules: &rules,
        tile_size: tile,
    };
    let tick = |_: usize, total: usize| progress.tile_done(total as u64);
    let result = analyze(&input, Some(&tick)).map_err(ServiceError::from)?;
    check(cancel)?;
    progress.stage("storing");
    let to_wgs84 = ToWgs84::from(&stack.grid.crs)?;
    let patches = result
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
        kind: p.kind.clone(),
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
