//! The model card: a JSON file beside the weights that says what the model is, what it expects,
//! how it was trained (config, data fingerprint, command) and how well it does per source.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classes::Task;
use crate::features::Normalisation;
use crate::metrics::EvaluationReport;
use crate::nets::{CropTemporalConfig, LandCoverMlpConfig};
use crate::samples::DataFingerprint;
use crate::season::SeasonWindow;
use crate::split::SplitSummary;
use crate::training_config::{EpochLog, TrainConfig};
use crate::{ModelError, Result};

/// File name of the card in a model folder.
pub const CARD_FILE: &str = "card.json";
/// File name of the weights (Burn burnpack) in a model folder.
pub const WEIGHTS_FILE: &str = "weights.bpk";
/// Version of the card layout.
pub const CARD_FORMAT_VERSION: u32 = 1;

/// One class of the model's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassEntry {
    /// Map code (index + 1; 0 = nodata).
    pub code: u8,
    /// Name.
    pub name: String,
}

/// What the model expects as input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Band names, in the order of the network's band features.
    pub bands: Vec<String>,
    /// Sensors / processing levels seen in training.
    pub sensors: Vec<String>,
    /// DN = reflectance × this.
    pub dn_scale: f32,
    /// Per-pixel (or per-slot) feature names.
    pub features: Vec<String>,
    /// Standardisation fitted on the training split.
    pub normalisation: Normalisation,
    /// Season window (crop type only).
    pub season: Option<SeasonWindow>,
}

/// The network architecture, as the Burn config that builds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "config", rename_all = "snake_case")]
pub enum Architecture {
    /// [`crate::nets::LandCoverMlp`].
    LandCoverMlp(LandCoverMlpConfig),
    /// [`crate::nets::CropTemporalNet`].
    CropTemporal(CropTemporalConfig),
}

/// The weights file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsInfo {
    /// File name in the model folder.
    pub file: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// How the model was trained.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// The training config.
    pub config: TrainConfig,
    /// Fingerprint of the input tables.
    pub data: DataFingerprint,
    /// The command line that trained it (as given by the caller).
    pub command: String,
    /// Labelling rules applied to the data.
    pub label_rules: Vec<String>,
    /// Samples kept / relabelled / dropped by each rule.
    pub rule_counts: BTreeMap<String, u64>,
    /// Training samples per class.
    pub train_class_counts: BTreeMap<String, u64>,
    /// Loss weight per class (class order).
    pub class_weights: Vec<f32>,
    /// The group split.
    pub split: SplitSummary,
    /// Epochs run (early stopping may end before `config.max_epochs`).
    pub epochs_run: usize,
    /// Epoch whose weights were kept (lowest validation loss).
    pub best_epoch: usize,
    /// Validation loss of that epoch.
    pub best_val_loss: f64,
    /// Per-epoch log.
    pub history: Vec<EpochLog>,
    /// Training wall time in seconds.
    pub wall_time_s: f64,
    /// Device it ran on.
    pub device: String,
    /// Inspectors' verdicts that labelled training pixels (`gengdi train --verdicts`), by
    /// `kind/verdict` (e.g. `fishpond/confirmed`); absent when none did.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verdicts: BTreeMap<String, u64>,
}

/// The model card.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelCard {
    /// Layout version.
    pub format_version: u32,
    /// First 16 hex digits of the weights' sha256.
    pub id: String,
    /// Task.
    pub task: Task,
    /// Output classes, in code order.
    pub classes: Vec<ClassEntry>,
    /// Expected input.
    pub input: InputSpec,
    /// Architecture config.
    pub architecture: Architecture,
    /// Weights file.
    pub weights: WeightsInfo,
    /// Training provenance.
    pub training: TrainingInfo,
    /// Held-out (test split) metrics, overall and per source.
    pub metrics: EvaluationReport,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Caveats.
    pub notes: Vec<String>,
}

impl ModelCard {
    /// Read `dir/card.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CARD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| ModelError::json(&path, e))
    }

    /// Write `dir/card.json` (pretty JSON).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CARD_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| ModelError::json(&path, e))?;
        std::fs::write(&path, text + "\n").map_err(|e| ModelError::io(&path, e))
    }

    /// Error unless the card is for `task`.
    pub fn expect_task(&self, task: Task) -> Result<()> {
        if self.task == task {
            Ok(())
        } else {
            Err(ModelError::WrongTask {
                model_id: self.id.clone(),
                expected: task.to_string(),
                found: self.task.to_string(),
            })
        }
    }

    /// Class names in code order.
    pub fn class_names(&self) -> Vec<&str> {
        self.classes.iter().map(|c| c.name.as_str()).collect()
    }

    /// A short human summary (for `gengdi models show`).
    pub fn summary(&self) -> String {
        let m = &self.metrics.overall;
        format!(
            "model {id}  task {task}  created {created}\n  bands {bands:?}\n  classes {classes:?}\n  architecture {arch:?}\n  data sha256 {data}  trained by: {cmd}\n  held-out: n={n} OA={oa:.3} kappa={k:.3} macro-F1={f1:.3}  (epochs {ep}, best {best}, {secs:.0} s on {dev})",
            id = self.id,
            task = self.task,
            created = self.created,
            bands = self.input.bands,
            classes = self.class_names(),
            arch = self.architecture,
            data = self.training.data.sha256,
            cmd = self.training.command,
            n = m.n,
            oa = m.overall_accuracy,
            k = m.kappa,
            f1 = m.macro_f1,
            ep = self.training.epochs_run,
            best = self.training.best_epoch,
            secs = self.training.wall_time_s,
            dev = self.training.device,
        )
    }
}

/// Current time as RFC 3339 UTC (second precision).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
