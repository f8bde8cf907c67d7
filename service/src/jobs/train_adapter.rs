//! The one place the service trains (for [`super::analysis_adapter::AnalysisExecutor`]): the
//! samples `gengdi train` would read (tables, then label files over scenes, with the same
//! library calls), `train_landcover`, the new model saved into the registry (not activated),
//! and the active model evaluated on the new model's held-out split, as `gengdi eval
//! --held-out` computes it.

use gengdi_inference::inputs::open_scenes;
use gengdi_inference::labels::{label_stack, landcover_samples, LabelOptions};
use gengdi_inference::InferenceError;
use gengdi_models::features::BANDS;
use gengdi_models::samples::{load_landcover, LandCoverSamples};
use gengdi_models::training_config::EpochLog;
use gengdi_models::{
    evaluate_landcover, fine_tune_landcover, held_out_landcover, train_landcover_observed,
    DeviceChoice, ModelError, Registry, Task, TrainConfig, TrainObserver,
};
use serde_json::json;

use super::training::TrainingSpec;
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
    if spec.task != Task::LandCover {
        return Err(failed(ServiceError::Invalid(format!(
            "task {}: only landcover is trained from verdicts",
            spec.task
        ))));
    }
    progress.stage_name("samples");
    let mut samples = if spec.tables.is_empty() {
        LandCoverSamples::default()
    } else {
        load_landcover(&spec.tables).map_err(failed)?
    };
    let from_tables = samples.samples.len();
    let bands: Vec<String> = BANDS.iter().map(|b| b.to_string()).collect();
    let mut labels = Vec::new();
    let mut per_class: std::collections::BTreeMap<String, usize> = Default::default();
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
        let opts = LabelOptions::new("class");
        match landcover_samples(std::slice::from_ref(&set.labels), &opts, &stack) {
            Ok((s, report)) => {
                for (class, c) in &report.per_class {
                    *per_class.entry(class.clone()).or_default() += c.observations;
                }
                labels.push(json!({
                    "batch": set.batch,
                    "file": set.labels.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "report": report,
                }));
                samples.merge(s);
            }
            // No clear observation under any polygon: reported, the other batches go on.
            Err(InferenceError::NoLabels { report }) => labels.push(json!({
                "batch": set.batch,
                "file": set.labels.file_name().map(|n| n.to_string_lossy().into_owned()),
                "error": format!("no labelled observation: {report}"),
            })),
            Err(e) => return Err(failed(e)),
        }
    }
    let from_verdicts = samples.samples.len() - from_tables;
    if samples.samples.is_empty() {
        return Err(failed(ServiceError::Invalid(
            "no training samples: no labelled table was added and the verdicts gave no clear labelled observation".into(),
        )));
    }
    check()?;
    progress.stage_name("training");
    progress.tiles(0, spec.epochs as u64);
    let mut config = TrainConfig::new();
    config.max_epochs = spec.epochs;
    if let Some(seed) = spec.seed {
        config.seed = seed;
    }
    config.progress = false;
    let watch = Watch { progress, cancel };
    let result = if spec.fine_tune {
        let base = registry.active_dir(Task::LandCover).map_err(failed)?;
        fine_tune_landcover(&config, &samples, device, &watch, &base)
    } else {
        train_landcover_observed(&config, &samples, device, &watch)
    };
    let mut trained = match result {
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
    let held_out = held_out_landcover(&card, &samples).map_err(failed)?;
    let active_card = active.landcover.0.card();
    let active_metrics = evaluate_landcover(&active.landcover.0, &held_out).map_err(failed)?;
    progress.stage_name("done");
    Ok(json!({
        "task": Task::LandCover.name(),
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
            "id": active_card.id,
            "metrics": active_metrics,
        },
        "held_out": {
            "samples": held_out.len(),
            "test_groups_sha256": card.training.split.test_groups_sha256,
        },
        "samples": {
            "total": samples.samples.len(),
            "tables": from_tables,
            "verdicts": from_verdicts,
            "verdicts_per_class": per_class,
        },
        "labels": labels,
    }))
}
