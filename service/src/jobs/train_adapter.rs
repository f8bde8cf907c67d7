//! The one place the service trains (for [`super::analysis_adapter::AnalysisExecutor`]): the
//! samples `gengdi train` would read (tables, then label files over scenes, with the same
//! library calls: pixels for a land-cover model, one season per patch for a crop-type model),
//! training or fine-tuning, the new model saved into the registry (not activated), and the
//! task's active model evaluated on the new model's held-out split, as `gengdi eval
//! --held-out` computes it.

use std::collections::BTreeMap;

use gengdi_inference::inputs::open_scenes;
use gengdi_inference::labels::{
    label_stack, landcover_samples, series_samples, LabelOptions, LabelReport,
};
use gengdi_inference::InferenceError;
use gengdi_models::features::BANDS;
use gengdi_models::samples::{load_croptype, load_landcover, CropTypeSamples, LandCoverSamples};
use gengdi_models::training_config::EpochLog;
use gengdi_models::{
    evaluate_landcover, evaluate_series, fine_tune_croptype, fine_tune_landcover,
    held_out_croptype, held_out_landcover, train_croptype_observed, train_landcover_observed,
    CropTypeClass, DeviceChoice, ModelError, Registry, Task, TrainConfig, TrainObserver,
};
use gengdi_tiling::SceneStack;
use serde_json::json;

use super::training::{LabelSet, TrainingSpec};
use super::{CancelToken, JobError, ProgressSink};
use crate::error::ServiceError;
use gengdi_inference::pipeline::Models;

fn failed(e: impl Into<ServiceError>) -> JobError {
    JobError::Failed(e.into())
}

/// The job's view of the training loop: each epoch that ends is the progress
/// (`epoch` of `epochs`), and a cancellation stops it before the next epoch.
struct Watch<'a> {
    progress: &'a ProgressSink,
    cancel: &'a CancelToken,
}

impl TrainObserver for Watch<'_> {
    fn epoch(&self, log: &EpochLog, max_epochs: usize) {
        self.progress.tiles(log.epoch as u64, max_epochs as u64);
    }

    fn stop(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// Train the model of `spec` into `registry`; `active` holds the model it is compared with.
/// The progress counts epochs; `cancel` stops the job between sample sets, before each
/// epoch and before the model is saved (nothing is written to the registry then).
pub(crate) fn train(
    registry: &Registry,
    device: DeviceChoice,
    active: &Models,
    spec: &TrainingSpec,
    progress: &ProgressSink,
    cancel: &CancelToken,
) -> Result<serde_json::Value, JobError> {
    let check = || {
        if cancel.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    };
    progress.stage_name("samples");
    let watch = Watch { progress, cancel };
    let mut config = TrainConfig::new();
    config.max_epochs = spec.epochs;
    if let Some(seed) = spec.seed {
        config.seed = seed;
    }
    config.progress = false;
    let base = if spec.fine_tune {
        Some(registry.active_dir(spec.task).map_err(failed)?)
    } else {
        None
    };
    let (samples, counts) = match spec.task {
        Task::LandCover => {
            let mut samples = if spec.tables.is_empty() {
                LandCoverSamples::default()
            } else {
                load_landcover(&spec.tables).map_err(failed)?
            };
            let from_tables = samples.samples.len();
            let labels = read_label_sets(spec, &check, |set, stack| {
                let (s, report) =
                    landcover_samples(std::slice::from_ref(&set.labels), &label_options(), stack)?;
                samples.merge(s);
                Ok(report)
            })?;
            let counts = SampleCounts::new(samples.samples.len(), from_tables, labels)?;
            (Samples::LandCover(samples), counts)
        }
        Task::CropType => {
            let mut samples = if spec.tables.is_empty() {
                CropTypeSamples::default()
            } else {
                load_croptype(&spec.tables).map_err(failed)?
            };
            let from_tables = samples.samples.len();
            let labels = read_label_sets(spec, &check, |set, stack| {
                let (s, report) = series_samples::<CropTypeClass>(
                    std::slice::from_ref(&set.labels),
                    &label_options(),
                    stack,
                )?;
                samples.merge(s);
                Ok(report)
            })?;
            let counts = SampleCounts::new(samples.samples.len(), from_tables, labels)?;
            (Samples::CropType(samples), counts)
        }
        other => {
            return Err(failed(ServiceError::Invalid(format!(
                "task {other}: only landcover and croptype are trained from verdicts"
            ))))
        }
    };
    check()?;
    progress.stage_name("training");
    progress.tiles(0, spec.epochs as u64);
    let trained = match (&samples, &base) {
        (Samples::LandCover(s), Some(base)) => {
            fine_tune_landcover(&config, s, device, &watch, base)
        }
        (Samples::LandCover(s), None) => train_landcover_observed(&config, s, device, &watch),
        (Samples::CropType(s), Some(base)) => fine_tune_croptype(&config, s, device, &watch, base),
        (Samples::CropType(s), None) => train_croptype_observed(&config, s, device, &watch),
    };
    let mut trained = match trained {
        Ok(t) => t,
        Err(ModelError::Cancelled) => return Err(JobError::Cancelled),
        Err(e) => return Err(failed(e)),
    };
    for set in &spec.label_sets {
        for (k, n) in &set.verdicts {
            *trained.card.training.verdicts.entry(k.clone()).or_default() += n;
        }
    }
    check()?;
    progress.stage_name("saving");
    let card = trained
        .save_to_registry(
            registry.root(),
            &format!("gengdi serve: POST /api/v1/training (job {})", spec.job),
        )
        .map_err(failed)?;
    progress.stage_name("evaluating");
    // The active model of the task on the new model's held-out split.
    let (held_out, active_id, active_metrics) = match &samples {
        Samples::LandCover(samples) => {
            let held_out = held_out_landcover(&card, samples).map_err(failed)?;
            let model = &active.landcover.0;
            let metrics = evaluate_landcover(model, &held_out).map_err(failed)?;
            (held_out.len(), model.card().id.clone(), Some(metrics))
        }
        Samples::CropType(samples) => {
            let held_out = held_out_croptype(&card, samples).map_err(failed)?;
            match &active.croptype {
                Some(model) => {
                    let metrics = evaluate_series(&model.0, &held_out).map_err(failed)?;
                    (held_out.len(), model.0.card().id.clone(), Some(metrics))
                }
                None => (held_out.len(), String::new(), None),
            }
        }
    };
    progress.stage_name("done");
    Ok(json!({
        "task": spec.task.name(),
        "model": {
            "id": card.id,
            "created": card.created,
            "active": false,
            "epochs_run": card.training.epochs_run,
            "fine_tuned_from": card.training.config.fine_tune_from,
            "verdicts": card.training.verdicts,
            "best_epoch": card.training.best_epoch,
            "metrics": card.metrics,
        },
        "active_model": {
            "id": active_id,
            "metrics": active_metrics,
        },
        "held_out": {
            "samples": held_out,
            "test_groups_sha256": card.training.split.test_groups_sha256,
        },
        "samples": {
            "total": counts.total,
            "tables": counts.tables,
            "verdicts": counts.total - counts.tables,
            "verdicts_per_class": counts.per_class,
        },
        "labels": counts.reports,
    }))
}

/// The samples a job trained on.
enum Samples {
    LandCover(LandCoverSamples),
    CropType(CropTypeSamples),
}

/// The samples of a job: how many in all and from the tables, what the verdicts added per
/// class (land cover: labelled observations; crop type: seasons), and each batch's report.
struct SampleCounts {
    total: usize,
    tables: usize,
    per_class: BTreeMap<String, usize>,
    reports: Vec<serde_json::Value>,
}

impl SampleCounts {
    fn new(
        total: usize,
        tables: usize,
        (reports, per_class): (Vec<serde_json::Value>, BTreeMap<String, usize>),
    ) -> Result<Self, JobError> {
        if total == 0 {
            return Err(failed(ServiceError::Invalid(
                "no training samples: no labelled table was added and the verdicts gave no clear labelled observation".into(),
            )));
        }
        Ok(Self {
            total,
            tables,
            per_class,
            reports,
        })
    }
}

fn label_options() -> LabelOptions {
    LabelOptions::new("class")
}

/// Read each batch's label file over its scenes with `read` (which merges what it reads into
/// the job's samples and returns the report); a batch whose polygons hold no clear
/// observation is reported and the others go on. Returns the reports and the labelled
/// observations (land cover) or seasons (crop type) per class.
fn read_label_sets(
    spec: &TrainingSpec,
    check: &dyn Fn() -> Result<(), JobError>,
    mut read: impl FnMut(&LabelSet, &SceneStack) -> Result<LabelReport, InferenceError>,
) -> Result<(Vec<serde_json::Value>, BTreeMap<String, usize>), JobError> {
    let bands: Vec<String> = BANDS.iter().map(|b| b.to_string()).collect();
    let mut reports = Vec::new();
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    for set in &spec.label_sets {
        check()?;
        let scenes = open_scenes(
            &set.scenes,
            &gengdi_tiling::SceneOptions::default(),
            &bands,
            &["SCL".to_string()],
        )
        .map_err(failed)?;
        let stack = label_stack(scenes).map_err(failed)?;
        let file = set
            .labels
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        match read(set, &stack) {
            Ok(report) => {
                for (class, c) in &report.per_class {
                    *per_class.entry(class.clone()).or_default() += match spec.task {
                        Task::CropType => c.features,
                        _ => c.observations,
                    };
                }
                reports.push(json!({"batch": set.batch, "file": file, "report": report}));
            }
            // No clear observation under any polygon: reported, the other batches go on.
            Err(InferenceError::NoLabels { report }) => reports.push(json!({
                "batch": set.batch,
                "file": file,
                "error": format!("no labelled observation: {report}"),
            })),
            Err(e) => return Err(failed(e)),
        }
    }
    Ok((reports, per_class))
}
