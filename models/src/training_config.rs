//! What a training run is configured with and what it logs per epoch: data that the model
//! card stores next to the weights, and that `card`, `model` and `train` all read (so none of
//! them imports another for it).

use std::path::Path;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::split::{SplitMethod, SplitSpec};
use crate::{ModelError, Result};

/// Training hyper-parameters (saved in the card).
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// Seed of the split (unless `split_seed` is set), initialisation, batch order and
    /// augmentation.
    #[config(default = 42)]
    pub seed: u64,
    /// Seed of the split alone, when it is not `seed`. Fine-tuning sets it to its base's split
    /// seed, so that every group the base held out stays out of training whatever `seed` the
    /// fine-tuning uses (a group's part depends only on the split seed and its id). Absent
    /// (cards of older models): `seed`.
    #[config(default = "None")]
    pub split_seed: Option<u64>,
    /// Maximum epochs.
    #[config(default = 80)]
    pub max_epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    #[config(default = 10)]
    pub patience: usize,
    /// Mini-batch size.
    #[config(default = 256)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[config(default = 2e-3)]
    pub learning_rate: f64,
    /// Adam weight decay.
    #[config(default = 1e-4)]
    pub weight_decay: f32,
    /// How groups are split (see [`SplitMethod`]); absent in the cards of older models, which
    /// were split per stratum.
    #[config(default = "Some(SplitMethod::GroupHash)")]
    pub split: Option<SplitMethod>,
    /// Hold out whole sources: every group of a sample whose source is listed here (a name as
    /// in the card's per-source metrics, e.g. `worldcereal:month_2022_FRA`) goes to test,
    /// whatever the split says, so the model is tested on a region or campaign it never saw.
    /// The other groups are split as usual. Absent or empty: no source is held out.
    #[config(default = "None")]
    pub test_sources: Option<Vec<String>>,
    /// Fraction of groups for validation.
    #[config(default = 0.15)]
    pub val_fraction: f64,
    /// Fraction of groups held out for test metrics.
    #[config(default = 0.2)]
    pub test_fraction: f64,
    /// Class weight = (n / (k × n_class)) ^ power; 0 = unweighted, 1 = balanced.
    #[config(default = 0.5)]
    pub class_weight_power: f64,
    /// Brightness/offset augmentation (and, for crop type, random month dropout).
    #[config(default = true)]
    pub augment: bool,
    /// Gain range of the augmentation: dn × U(1 − g, 1 + g).
    #[config(default = 0.15)]
    pub augment_gain: f32,
    /// Offset range (reflectance, blue band; less in longer bands): U(−o, o).
    #[config(default = 0.02)]
    pub augment_offset: f32,
    /// Land cover: probability that a top-of-atmosphere (L1C, EuroSAT) training pixel is shown
    /// as surface reflectance instead: its per-band dark-object offsets (DOS1: the 1st
    /// percentile of the L1C training pixels minus 100 DN) are subtracted, scaled by U(0.5, 1.2)
    /// for thinner or thicker haze. Teaches the classes that only L1C data has (built-up,
    /// water) how they look in L2A scenes. 0 or absent (cards of older models) turns it off.
    #[config(default = "Some(0.5)")]
    pub l1c_dark_object_p: Option<f64>,
    /// Crop type: probability of masking each valid month during training.
    #[config(default = 0.25)]
    pub slot_dropout: f64,
    /// Crop type: probability of showing a training series only within a window of the
    /// growing season (4 to 7 consecutive months starting in March to June), as a batch of a
    /// few summer scenes shows it to `gengdi analyze`; the rest of the year is masked.
    /// 0 or absent (cards of older models) turns it off.
    #[config(default = "None")]
    pub season_window_p: Option<f64>,
    /// Land cover: hidden layer widths of the MLP.
    #[config(default = "vec![64, 64]")]
    pub hidden: Vec<usize>,
    /// The model whose weights and input normalisation training started from (fine-tuning,
    /// [`crate::train::fine_tune_landcover`]), by id; absent: from a seeded initialisation.
    #[config(default = "None")]
    pub fine_tune_from: Option<String>,
    /// Crop type: channels of the temporal convolutions.
    #[config(default = 32)]
    pub conv_channels: usize,
    /// Season networks: feed the head each month's features in place as well as their pooled
    /// summary (see `CropTemporalConfig::slot_head`). Absent (cards of older models): off.
    #[config(default = "None")]
    pub slot_head: Option<bool>,
    /// Season networks: feed the head each channel's mean, maximum, minimum and standard
    /// deviation over the valid months as well (see `CropTemporalConfig::stats_head`). Absent
    /// (cards of older models): off.
    #[config(default = "None")]
    pub stats_head: Option<bool>,
    /// Show a progress bar on stderr.
    #[config(default = true)]
    pub progress: bool,
}

impl TrainConfig {
    /// This config with the split of `base` (the config a model to fine-tune was trained
    /// with): its split method, seed, fractions and held-out sources, so that the base's
    /// validation and test groups are not trained on.
    pub(crate) fn with_split_of(mut self, base: &TrainConfig) -> Self {
        self.split = base.split;
        self.split_seed = Some(base.split_seed.unwrap_or(base.seed));
        self.val_fraction = base.val_fraction;
        self.test_fraction = base.test_fraction;
        self.test_sources = base.test_sources.clone();
        self
    }

    pub(crate) fn split_spec(&self) -> SplitSpec {
        SplitSpec {
            method: self.split.unwrap_or_default(),
            seed: self.split_seed.unwrap_or(self.seed),
            val_fraction: self.val_fraction,
            test_fraction: self.test_fraction,
        }
    }
    pub(crate) fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.max_epochs == 0 {
            return Err(ModelError::InvalidConfig(
                "batch_size and max_epochs must be > 0".into(),
            ));
        }
        if !(0.0..1.0).contains(&(self.val_fraction + self.test_fraction)) {
            return Err(ModelError::InvalidConfig(
                "val_fraction + test_fraction must be in [0, 1)".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.l1c_dark_object_p.unwrap_or(0.0)) {
            return Err(ModelError::InvalidConfig(
                "l1c_dark_object_p must be a probability in [0, 1]".into(),
            ));
        }
        for (name, p) in [
            ("season_window_p", self.season_window_p.unwrap_or(0.0)),
            ("slot_dropout", self.slot_dropout),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ModelError::InvalidConfig(format!(
                    "{name} must be a probability in [0, 1], not {p}"
                )));
            }
        }
        if self.learning_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(ModelError::InvalidConfig(
                "learning_rate must be > 0".into(),
            ));
        }
        Ok(())
    }
}

/// One epoch of training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss (class-weighted).
    pub train_loss: f64,
    /// Validation loss (class-weighted).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
}

/// Watches a training run: told of every epoch as it ends, asked before each epoch whether
/// to stop (the run then ends with [`crate::ModelError::Cancelled`]). A service shows the
/// epochs as progress and cancels through it; the CLI uses [`Unobserved`].
pub trait TrainObserver: Sync {
    /// Epoch `log.epoch` of at most `max_epochs` ended.
    fn epoch(&self, _log: &EpochLog, _max_epochs: usize) {}
    /// Whether to stop before the next epoch.
    fn stop(&self) -> bool {
        false
    }
}

/// The observer that watches nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unobserved;

impl TrainObserver for Unobserved {}

/// Read a [`TrainConfig`] from a JSON file; fields it does not set keep their defaults.
pub fn load_train_config(path: &Path) -> Result<TrainConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let given: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::json(path, e))?;
    let mut merged =
        serde_json::to_value(TrainConfig::new()).map_err(|e| ModelError::json(path, e))?;
    match (given, &mut merged) {
        (serde_json::Value::Object(given), serde_json::Value::Object(base)) => base.extend(given),
        _ => {
            return Err(ModelError::InvalidConfig(format!(
                "{}: a training config is a JSON object",
                path.display()
            )))
        }
    }
    serde_json::from_value(merged).map_err(|e| ModelError::json(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fine_tuning_keeps_its_base_s_split_whatever_its_own_seed() {
        let base = TrainConfig::new()
            .with_seed(42)
            .with_test_sources(Some(vec!["worldcereal:month_2022_FRA".into()]));
        let tuned = TrainConfig::new().with_seed(7).with_split_of(&base);
        assert_eq!(tuned.split_spec(), base.split_spec());
        assert_eq!(tuned.split_spec().seed, 42);
        assert_eq!(tuned.test_sources, base.test_sources);
        assert_eq!(
            tuned.seed, 7,
            "initialisation and augmentation keep their own seed"
        );
        // A base that was itself fine-tuned passes its split on.
        let again = TrainConfig::new().with_seed(3).with_split_of(&tuned);
        assert_eq!(again.split_spec(), base.split_spec());
        // Without it, the seed is the split's: another seed, another split.
        assert_ne!(
            TrainConfig::new().with_seed(7).split_spec(),
            base.split_spec()
        );
    }
}
