//! Training: group split, class weighting, Adam on the autodiff device, early stopping on the
//! validation loss, a progress bar, held-out evaluation, and the model card.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::card::{
    now_rfc3339, Architecture, ClassEntry, InputSpec, ModelCard, TrainingInfo, WeightsInfo,
    CARD_FILE, CARD_FORMAT_VERSION, WEIGHTS_FILE,
};
use crate::classes::{CropTypeClass, LandCoverClass, SeriesClass, Task};
use crate::device::DeviceChoice;
use crate::features::{
    augment_dn, pixel_feature_names, pixel_features, Normalisation, BANDS, N_BANDS,
    N_PIXEL_FEATURES, REFLECTANCE_SCALE, SENSORS,
};
use crate::metrics::EvaluationReport;
use crate::model::{evaluate_landcover, evaluate_series, LandCoverModel, SeriesModel};
use crate::nets::{CropTemporalConfig, CropTemporalNet, LandCoverMlp, LandCoverMlpConfig};
use crate::rng::SeededRng;
use crate::samples::{
    hex, rules, source_family, CropTypeSamples, LandCoverSamples, SeasonCoverSamples, SeriesSample,
    SeriesSamples,
};
use crate::season::{
    monthly_composite, series_channels, series_tensors, valid_slot_features, SeasonWindow,
    N_SERIES_CHANNELS,
};
use crate::split::{split_by_group, with_test_groups, GroupSplit};
use crate::{ModelError, Result};

pub use crate::training_config::{
    load_train_config, EpochLog, TrainConfig, TrainObserver, Unobserved,
};

/// A trained model in memory: the card (id and weights info still empty) and the network.
pub struct TrainedModel {
    /// The card; `id` and `weights` are filled by [`TrainedModel::save`].
    pub card: ModelCard,
    net: TrainedNet,
}

enum TrainedNet {
    LandCover(LandCoverMlp),
    Series(Box<CropTemporalNet>),
}

impl std::fmt::Debug for TrainedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedModel")
            .field("task", &self.card.task)
            .finish_non_exhaustive()
    }
}

impl TrainedModel {
    /// Held-out metrics.
    pub fn metrics(&self) -> &EvaluationReport {
        &self.card.metrics
    }

    /// Write `weights.bpk` and `card.json` into `dir` (created if needed). The id is the first
    /// 16 hex digits of the weights' sha256. Returns the completed card.
    pub fn save(&self, dir: &Path, command: &str) -> Result<ModelCard> {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let saved = match &self.net {
            TrainedNet::LandCover(n) => n.clone().save_file(&weights_path),
            TrainedNet::Series(n) => n.clone().save_file(&weights_path),
        };
        saved.map_err(|e| ModelError::Weights {
            path: weights_path.clone(),
            reason: e.to_string(),
        })?;
        let bytes = std::fs::read(&weights_path).map_err(|e| ModelError::io(&weights_path, e))?;
        let sha = hex(&Sha256::digest(&bytes));
        let mut card = self.card.clone();
        card.id = sha[..16].to_string();
        card.weights = WeightsInfo {
            file: WEIGHTS_FILE.into(),
            sha256: sha,
            bytes: bytes.len() as u64,
        };
        card.training.command = command.to_string();
        card.save(dir)?;
        Ok(card)
    }

    /// Save into `registry_root/<task>/<id>/` and return the card.
    pub fn save_to_registry(&self, registry_root: &Path, command: &str) -> Result<ModelCard> {
        let task_dir = registry_root.join(self.card.task.name());
        let tmp = task_dir.join(format!(".incoming-{}", std::process::id()));
        let card = self.save(&tmp, command)?;
        let final_dir = task_dir.join(&card.id);
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(|e| ModelError::io(&final_dir, e))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(|e| ModelError::io(&final_dir, e))?;
        debug_assert!(final_dir.join(CARD_FILE).exists());
        Ok(card)
    }
}

/// Something the generic loop can train: maps rows to logits.
trait TrainTask {
    type Net: Module + Clone;
    /// Logits of `rows` (indices into the task's samples), augmented when `aug` is given.
    fn logits(
        &self,
        net: &Self::Net,
        rows: &[usize],
        aug: Option<&mut SeededRng>,
        device: &Device,
    ) -> Tensor<2>;
    /// Target class index of a row.
    fn target(&self, row: usize) -> usize;
}

struct FitOutcome<N> {
    best: N,
    epochs_run: usize,
    best_epoch: usize,
    best_val_loss: f64,
    history: Vec<EpochLog>,
}

/// The card's account of a training run (the same for both tasks); takes the epoch history
/// out of `outcome`.
#[allow(clippy::too_many_arguments)]
fn training_info<N>(
    config: &TrainConfig,
    data: &crate::samples::DataFingerprint,
    task_rules: Vec<String>,
    extra_rules: &[String],
    rule_counts: &BTreeMap<String, u64>,
    train_class_counts: BTreeMap<String, u64>,
    class_weights: Vec<f32>,
    split: &GroupSplit,
    outcome: &mut FitOutcome<N>,
    device: DeviceChoice,
) -> TrainingInfo {
    TrainingInfo {
        config: config.clone(),
        data: data.clone(),
        command: String::new(),
        label_rules: task_rules
            .into_iter()
            .chain(extra_rules.iter().cloned())
            .collect(),
        rule_counts: rule_counts.clone(),
        train_class_counts,
        class_weights,
        split: split.summary(config.split_spec()),
        epochs_run: outcome.epochs_run,
        best_epoch: outcome.best_epoch,
        best_val_loss: outcome.best_val_loss,
        history: std::mem::take(&mut outcome.history),
        wall_time_s: 0.0,
        device: device.to_string(),
        verdicts: BTreeMap::new(),
    }
}

fn class_weights(targets: &[usize], n_classes: usize, power: f64) -> Vec<f32> {
    let mut counts = vec![0usize; n_classes];
    for &t in targets {
        if t < n_classes {
            counts[t] += 1;
        }
    }
    let present = counts.iter().filter(|c| **c > 0).count().max(1);
    let n = targets.len().max(1) as f64;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                1.0
            } else {
                ((n / (present as f64 * c as f64)).powf(power) as f32).clamp(0.05, 50.0)
            }
        })
        .collect()
}

fn weighted_loss_and_accuracy(
    logits: &[f32],
    n_classes: usize,
    targets: &[usize],
    weights: &[f32],
) -> (f64, f64, f64, usize) {
    let mut loss = 0f64;
    let mut wsum = 0f64;
    let mut correct = 0usize;
    for (row, &t) in logits.chunks_exact(n_classes).zip(targets) {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let lse = row
            .iter()
            .map(|v| f64::from(v - max).exp())
            .sum::<f64>()
            .ln()
            + f64::from(max);
        let w = f64::from(weights.get(t).copied().unwrap_or(1.0));
        loss += w * (lse - f64::from(row.get(t).copied().unwrap_or(0.0)));
        wsum += w;
        let arg = row
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |acc, (i, &v)| {
                if v > acc.1 {
                    (i, v)
                } else {
                    acc
                }
            })
            .0;
        if arg == t {
            correct += 1;
        }
    }
    (loss, wsum, correct as f64, targets.len())
}

fn tensor_to_vec(t: Tensor<2>) -> Result<Vec<f32>> {
    t.try_into_data()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))
}

#[allow(clippy::too_many_arguments)]
fn fit<T: TrainTask>(
    task: &T,
    mut net: T::Net,
    split: &GroupSplit,
    weights: &[f32],
    n_classes: usize,
    config: &TrainConfig,
    device_choice: DeviceChoice,
    label: &str,
    observer: &dyn TrainObserver,
) -> Result<FitOutcome<T::Net>> {
    let device = device_choice.training_device();
    let plain = device_choice.device();
    let loss_fn = CrossEntropyLossConfig::new()
        .with_weights(Some(weights.to_vec()))
        .init(&device);
    let mut optim = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay)))
        .init();
    let mut order_rng = SeededRng::stream(config.seed, "batch-order");
    let mut aug_rng = SeededRng::stream(config.seed, "augmentation");
    let bar = if config.progress {
        let bar = ProgressBar::new(config.max_epochs as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] epoch {pos}/{len} {msg} ({elapsed})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_string());
        bar
    } else {
        ProgressBar::hidden()
    };
    let val_targets: Vec<usize> = split.validation.iter().map(|&r| task.target(r)).collect();
    let mut best: Option<T::Net> = None;
    let mut best_val = f64::INFINITY;
    let mut best_epoch = 0;
    let mut since_best = 0;
    let mut history = Vec::new();
    let mut epochs_run = 0;
    for epoch in 1..=config.max_epochs {
        if observer.stop() {
            return Err(ModelError::Cancelled);
        }
        epochs_run = epoch;
        let mut order = split.train.clone();
        order_rng.shuffle(&mut order);
        let mut sum_loss = 0f64;
        let mut batches = 0usize;
        for rows in order.chunks(config.batch_size) {
            let logits = task.logits(&net, rows, config.augment.then_some(&mut aug_rng), &device);
            let targets: Vec<i64> = rows.iter().map(|&r| task.target(r) as i64).collect();
            let targets =
                Tensor::<1, Int>::from_data(TensorData::new(targets, [rows.len()]), &device);
            let loss = loss_fn.forward(logits, targets);
            let value: f32 = loss
                .clone()
                .try_into_scalar::<f32>()
                .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
            sum_loss += f64::from(value);
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(config.learning_rate, net, grads);
        }
        let train_loss = sum_loss / batches.max(1) as f64;
        // Validation: weighted cross-entropy and accuracy, computed on the plain device.
        let valid_net = net.valid();
        let (mut l, mut w, mut c, mut n) = (0f64, 0f64, 0f64, 0usize);
        for (rows, targets) in split.validation.chunks(4096).zip(val_targets.chunks(4096)) {
            let logits = tensor_to_vec(task.logits(&valid_net, rows, None, &plain))?;
            let (a, b, cc, nn) = weighted_loss_and_accuracy(&logits, n_classes, targets, weights);
            l += a;
            w += b;
            c += cc;
            n += nn;
        }
        // Without validation groups (tiny data) the training loss stands in and accuracy is 0.
        let (val_loss, val_accuracy) = if n > 0 {
            (l / w.max(1e-12), c / n as f64)
        } else {
            (train_loss, 0.0)
        };
        let log = EpochLog {
            epoch,
            train_loss,
            val_loss,
            val_accuracy,
        };
        observer.epoch(&log, config.max_epochs);
        history.push(log);
        bar.set_position(epoch as u64);
        bar.set_message(format!(
            "loss {train_loss:.4} val_loss {val_loss:.4} val_acc {val_accuracy:.3}"
        ));
        if val_loss < best_val - 1e-6 {
            best_val = val_loss;
            best_epoch = epoch;
            best = Some(valid_net);
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= config.patience {
                break;
            }
        }
    }
    bar.finish();
    let best = match best {
        Some(b) => b,
        None => net.valid(),
    };
    Ok(FitOutcome {
        best,
        epochs_run,
        best_epoch,
        best_val_loss: if best_val.is_finite() {
            best_val
        } else {
            f64::MAX
        },
        history,
    })
}

// ---------------------------------------------------------------- land cover

struct LandCoverTask<'a> {
    samples: &'a LandCoverSamples,
    norm: Normalisation,
    gain: f32,
    offset: f32,
    /// Per-band DOS1 offsets of the L1C training pixels (None: no L1C pixels or turned off).
    dark_object: Option<[f32; N_BANDS]>,
    dark_object_p: f64,
}

/// The family of sources whose pixels are top-of-atmosphere (Level-1C).
const L1C_FAMILY: &str = "eurosat";

/// DOS1 dark-object offsets per band of the L1C pixels among `rows`: the 1st percentile minus
/// 100 DN (the reflectance a dark object keeps), floored at 0.
pub fn dark_object_offsets(samples: &LandCoverSamples, rows: &[usize]) -> Option<[f32; N_BANDS]> {
    let l1c: Vec<&[f32; N_BANDS]> = rows
        .iter()
        .map(|&r| &samples.samples[r])
        .filter(|s| s.source_family() == L1C_FAMILY)
        .map(|s| &s.dn)
        .collect();
    dos1_offsets(&l1c)
}

/// Per band: the 1st percentile of `obs` minus 100 DN, floored at 0 (None with fewer than 100).
fn dos1_offsets(obs: &[&[f32; N_BANDS]]) -> Option<[f32; N_BANDS]> {
    if obs.len() < 100 {
        return None;
    }
    let mut out = [0f32; N_BANDS];
    for (b, o) in out.iter_mut().enumerate() {
        let mut v: Vec<f32> = obs.iter().map(|dn| dn[b]).collect();
        v.sort_by(f32::total_cmp);
        *o = (v[v.len() / 100] - 100.0).max(0.0);
    }
    Some(out)
}

impl TrainTask for LandCoverTask<'_> {
    type Net = LandCoverMlp;
    fn logits(
        &self,
        net: &LandCoverMlp,
        rows: &[usize],
        mut aug: Option<&mut SeededRng>,
        device: &Device,
    ) -> Tensor<2> {
        let mut x = Vec::with_capacity(rows.len() * N_PIXEL_FEATURES);
        for &r in rows {
            let sample = &self.samples.samples[r];
            let mut dn = sample.dn;
            if let Some(rng) = aug.as_deref_mut() {
                if let Some(dark) = &self.dark_object {
                    if sample.source_family() == L1C_FAMILY && rng.next_f64() < self.dark_object_p {
                        let k = rng.uniform(0.5, 1.2);
                        for (v, o) in dn.iter_mut().zip(dark) {
                            *v = (*v - k * o).max(1.0);
                        }
                    }
                }
                let gain = rng.uniform(1.0 - self.gain, 1.0 + self.gain);
                let offset = rng.uniform(-self.offset, self.offset);
                dn = augment_dn(&dn, gain, offset);
            }
            let mut f = pixel_features(&dn);
            self.norm.apply(&mut f);
            x.extend_from_slice(&f);
        }
        let x = Tensor::<2>::from_data(TensorData::new(x, [rows.len(), N_PIXEL_FEATURES]), device);
        net.forward(x)
    }
    fn target(&self, row: usize) -> usize {
        self.samples.samples[row].class.index()
    }
}

fn counts_by_name(names: &[&str], targets: impl Iterator<Item = usize>) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = names.iter().map(|n| (n.to_string(), 0)).collect();
    for t in targets {
        if let Some(n) = names.get(t) {
            *out.entry(n.to_string()).or_default() += 1;
        }
    }
    out
}

/// The split used by [`train_landcover`] for these samples and config (recomputable, e.g. to
/// re-evaluate a shipped model on its held-out groups).
pub fn landcover_split(samples: &LandCoverSamples, config: &TrainConfig) -> GroupSplit {
    let keys: Vec<(&str, &str)> = samples
        .samples
        .iter()
        .map(|s| (s.stratum.as_str(), s.group.as_str()))
        .collect();
    let sources: Vec<&str> = samples.samples.iter().map(|s| s.source.as_str()).collect();
    hold_out_sources(
        split_by_group(&keys, config.split_spec()),
        &keys,
        &sources,
        config,
    )
}

/// [`TrainConfig::test_sources`] applied to a split: the groups of rows whose source is listed
/// go to test.
fn hold_out_sources<S: AsRef<str>>(
    split: GroupSplit,
    keys: &[(S, &str)],
    sources: &[&str],
    config: &TrainConfig,
) -> GroupSplit {
    let listed = config.test_sources.as_deref().unwrap_or(&[]);
    let forced: BTreeSet<&str> = keys
        .iter()
        .zip(sources)
        .filter(|(_, src)| listed.iter().any(|l| l == *src))
        .map(|((_, g), _)| *g)
        .collect();
    let groups: Vec<&str> = keys.iter().map(|(_, g)| *g).collect();
    with_test_groups(split, &groups, &forced)
}

/// Every source named in [`TrainConfig::test_sources`] must have samples, and some samples
/// must be left to train on (other empty parts are the caller's own errors).
fn check_test_sources<'a>(
    config: &TrainConfig,
    sources: impl Iterator<Item = &'a str>,
    split: &GroupSplit,
) -> Result<()> {
    let present: BTreeSet<&str> = sources.collect();
    for s in config.test_sources.as_deref().unwrap_or(&[]) {
        if !present.contains(s.as_str()) {
            return Err(ModelError::InvalidConfig(format!(
                "test_sources: no sample comes from {s:?}; the sources are {}",
                present.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let listed = config
        .test_sources
        .as_deref()
        .is_some_and(|l| !l.is_empty());
    if listed && split.train.is_empty() {
        return Err(ModelError::InvalidConfig(
            "test_sources holds out every sample: nothing is left to train on".into(),
        ));
    }
    Ok(())
}

/// Train the land-cover MLP.
pub fn train_landcover(
    config: &TrainConfig,
    samples: &LandCoverSamples,
    device: DeviceChoice,
) -> Result<TrainedModel> {
    train_landcover_observed(config, samples, device, &Unobserved)
}

/// [`train_landcover`] watched by `observer` (epochs as they end; a stop before any epoch).
pub fn train_landcover_observed(
    config: &TrainConfig,
    samples: &LandCoverSamples,
    device: DeviceChoice,
    observer: &dyn TrainObserver,
) -> Result<TrainedModel> {
    train_landcover_from(config, samples, device, observer, None)
}

/// Fine-tune the land-cover model in `base` (a registry folder) on `samples`: training
/// starts from its weights and keeps its input normalisation and architecture (the config's
/// `hidden` is ignored); the card records the base's id (`training.config.fine_tune_from`).
/// The split is the base's (its method, seed, fractions and held-out sources, see
/// [`TrainConfig::split_seed`]), so no group the base held out is trained on; early stopping
/// and evaluation are as for [`train_landcover`]. A smaller `learning_rate` and `max_epochs`
/// than from scratch suit it.
pub fn fine_tune_landcover(
    config: &TrainConfig,
    samples: &LandCoverSamples,
    device: DeviceChoice,
    observer: &dyn TrainObserver,
    base: &std::path::Path,
) -> Result<TrainedModel> {
    let model = LandCoverModel::load(base, &device.training_device())?;
    let (card, net) = model.into_parts();
    if card.input.features != pixel_feature_names()
        || card.classes.len() != Task::LandCover.class_names().len()
    {
        return Err(ModelError::InvalidConfig(format!(
            "model {} takes other features or classes than this gengdi trains: it cannot be \
             fine-tuned here",
            card.id
        )));
    }
    let Architecture::LandCoverMlp(arch) = card.architecture.clone() else {
        return Err(ModelError::InvalidConfig(format!(
            "model {} is not a land-cover MLP",
            card.id
        )));
    };
    let mut config = config.clone().with_split_of(&card.training.config);
    config.fine_tune_from = Some(card.id.clone());
    config.hidden = arch.hidden.clone();
    train_landcover_from(
        &config,
        samples,
        device,
        observer,
        Some((card.input.normalisation, arch, net)),
    )
}

/// The base a fine-tuning starts from: normalisation, architecture, weights.
type LandCoverBase = (Normalisation, LandCoverMlpConfig, LandCoverMlp);

fn train_landcover_from(
    config: &TrainConfig,
    samples: &LandCoverSamples,
    device: DeviceChoice,
    observer: &dyn TrainObserver,
    base: Option<LandCoverBase>,
) -> Result<TrainedModel> {
    config.validate()?;
    let start = Instant::now();
    let split = landcover_split(samples, config);
    check_test_sources(
        config,
        samples.samples.iter().map(|s| s.source.as_str()),
        &split,
    )?;
    if split.train.is_empty() || split.test.is_empty() {
        return Err(ModelError::NotEnoughData(format!(
            "land cover split has {} train and {} test samples",
            split.train.len(),
            split.test.len()
        )));
    }
    let names = Task::LandCover.class_names();
    let n_classes = names.len();
    let train_targets: Vec<usize> = split
        .train
        .iter()
        .map(|&r| samples.samples[r].class.index())
        .collect();
    let weights = class_weights(&train_targets, n_classes, config.class_weight_power);
    let (norm, arch, net) = match base {
        Some(base) => base,
        None => {
            // A fine-tuning keeps its base's normalisation; a new model fits its own.
            let mut train_features = Vec::with_capacity(split.train.len() * N_PIXEL_FEATURES);
            for &r in &split.train {
                train_features.extend_from_slice(&pixel_features(&samples.samples[r].dn));
            }
            let norm = Normalisation::fit(pixel_feature_names(), &train_features, N_PIXEL_FEATURES);
            let arch = LandCoverMlpConfig::new(N_PIXEL_FEATURES, n_classes)
                .with_hidden(config.hidden.clone());
            let net = arch.init_seeded(config.seed, &device.training_device());
            (norm, arch, net)
        }
    };
    let dark_object_p = config.l1c_dark_object_p.unwrap_or(0.0);
    let dark_object = if config.augment && dark_object_p > 0.0 {
        dark_object_offsets(samples, &split.train)
    } else {
        None
    };
    let task = LandCoverTask {
        samples,
        norm: norm.clone(),
        gain: config.augment_gain,
        offset: config.augment_offset,
        dark_object,
        dark_object_p,
    };
    let mut outcome = fit(
        &task,
        net,
        &split,
        &weights,
        n_classes,
        config,
        device,
        "landcover",
        observer,
    )?;
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        id: String::new(),
        task: Task::LandCover,
        classes: LandCoverClass::ALL
            .iter()
            .map(|c| ClassEntry { code: c.code(), name: c.name().into() })
            .collect(),
        input: InputSpec {
            bands: BANDS.iter().map(|b| b.to_string()).collect(),
            sensors: SENSORS.iter().map(|s| s.to_string()).collect(),
            dn_scale: REFLECTANCE_SCALE,
            features: pixel_feature_names(),
            normalisation: norm,
            season: None,
        },
        architecture: Architecture::LandCoverMlp(arch),
        weights: WeightsInfo { file: WEIGHTS_FILE.into(), sha256: String::new(), bytes: 0 },
        training: training_info(
            config,
            &samples.fingerprint,
            rules::landcover_rule_descriptions(),
            &samples.label_rules,
            &samples.rule_counts,
            counts_by_name(&names, train_targets.iter().copied()),
            weights,
            &split,
            &mut outcome,
            device,
        ),
        metrics: EvaluationReport::from_triples(&names, &[]),
        created: now_rfc3339(),
        notes: vec![
            "bare has no real labels: its samples are real cropland/fallow pixels relabelled by the spectral rule in training.label_rules, so its metrics measure agreement with that rule, not with field truth".into(),
            "single-date, single-pixel model: orchard vs grass vs annual crop is often ambiguous on one date; use the crop-type model over a season for cropland use".into(),
            "EuroSAT is Sentinel-2 L1C (top of atmosphere), WorldCereal is L2A (surface reflectance): metrics are reported per source".into(),
            "L1C training pixels are also shown as surface reflectance (DOS1 dark-object offsets subtracted, p = training.config.l1c_dark_object_p), so built-up and water, whose labels are almost all L1C, are recognised in L2A scenes".into(),
        ],
    };
    let model = LandCoverModel::from_parts(card, outcome.best, device.device())?;
    let test: Vec<_> = split
        .test
        .iter()
        .map(|&r| samples.samples[r].clone())
        .collect();
    let metrics = evaluate_landcover(&model, &test)?;
    let (mut card, net) = model.into_parts();
    card.metrics = metrics;
    card.training.wall_time_s = start.elapsed().as_secs_f64();
    Ok(TrainedModel {
        card,
        net: TrainedNet::LandCover(net),
    })
}

// ---------------------------------------------------------------- crop type

/// A series prepared for the network: monthly composites and validity.
#[derive(Clone, Debug)]
pub(crate) struct PreparedSeries {
    pub composite: Vec<[f32; N_BANDS]>,
    pub valid: Vec<bool>,
}

pub(crate) fn prepare_series(s: &SeriesSample, window: &SeasonWindow) -> PreparedSeries {
    let (composite, valid) = monthly_composite(&s.observations, s.season_year, window);
    PreparedSeries { composite, valid }
}

struct CropTypeTask {
    series: Vec<PreparedSeries>,
    targets: Vec<usize>,
    /// Per row: its series is top-of-atmosphere (L1C).
    l1c: Vec<bool>,
    /// DOS1 dark-object offsets of the L1C training series (None: fewer than 100 L1C
    /// observations, or turned off), and the probability of using them on a series.
    haze: Option<[f32; N_BANDS]>,
    haze_p: f64,
    norm: Normalisation,
    window: SeasonWindow,
    gain: f32,
    offset: f32,
    slot_dropout: f64,
    season_window_p: f64,
}

impl TrainTask for CropTypeTask {
    type Net = CropTemporalNet;
    fn logits(
        &self,
        net: &CropTemporalNet,
        rows: &[usize],
        mut aug: Option<&mut SeededRng>,
        device: &Device,
    ) -> Tensor<2> {
        let mut inputs = Vec::with_capacity(rows.len());
        for &r in rows {
            let p = &self.series[r];
            let mut composite = p.composite.clone();
            let mut valid = p.valid.clone();
            if let Some(rng) = aug.as_deref_mut() {
                if let Some(haze) = &self.haze {
                    // L1C series shown as surface reflectance, L2A series with L1C's haze: the
                    // level of processing must not tell the classes apart (water and built
                    // come from L1C patches only).
                    if rng.next_f64() < self.haze_p {
                        let k = rng.uniform(0.5, 1.2) * if self.l1c[r] { -1.0 } else { 1.0 };
                        for (c, v) in composite.iter_mut().zip(&valid) {
                            if *v {
                                for (x, o) in c.iter_mut().zip(haze) {
                                    *x = (*x + k * o).max(1.0);
                                }
                            }
                        }
                    }
                }
                let gain = rng.uniform(1.0 - self.gain, 1.0 + self.gain);
                let offset = rng.uniform(-self.offset, self.offset);
                for (c, v) in composite.iter_mut().zip(&valid) {
                    if *v {
                        *c = augment_dn(c, gain, offset);
                    }
                }
                if self.season_window_p > 0.0 && rng.next_f64() < self.season_window_p {
                    // Months are slots 0..12 of the season year (Jan = 0).
                    let start = 2 + rng.below(4);
                    let len = 4 + rng.below(4);
                    let windowed: Vec<bool> = valid
                        .iter()
                        .enumerate()
                        .map(|(s, v)| *v && (start..start + len).contains(&s))
                        .collect();
                    if windowed.iter().filter(|v| **v).count() >= 2 {
                        valid = windowed;
                    }
                }
                let valid_slots: Vec<usize> = (0..valid.len()).filter(|&s| valid[s]).collect();
                let mut kept = valid.clone();
                for &s in &valid_slots {
                    if rng.next_f64() < self.slot_dropout {
                        kept[s] = false;
                    }
                }
                if !valid_slots.is_empty() && !kept.iter().any(|k| *k) {
                    kept[valid_slots[rng.below(valid_slots.len())]] = true;
                }
                valid = kept;
            }
            inputs.push(series_channels(
                &composite,
                &valid,
                &self.norm,
                &self.window,
            ));
        }
        let (x, m) = series_tensors(&inputs, self.window.n_slots, device);
        net.forward(x, m)
    }
    fn target(&self, row: usize) -> usize {
        self.targets[row]
    }
}

/// The split used by [`train_croptype`] and [`train_season_cover`] (grouped by sample id;
/// with the default group hash, the strata play no role).
pub fn series_split<C: SeriesClass>(
    samples: &SeriesSamples<C>,
    config: &TrainConfig,
) -> GroupSplit {
    let keys: Vec<(String, &str)> = samples
        .samples
        .iter()
        .map(|(s, c)| (format!("{}:{}", s.source, c.class_name()), s.group.as_str()))
        .collect();
    let sources: Vec<&str> = samples
        .samples
        .iter()
        .map(|(s, _)| s.source.as_str())
        .collect();
    hold_out_sources(
        split_by_group(&keys, config.split_spec()),
        &keys,
        &sources,
        config,
    )
}

/// The split used by [`train_croptype`].
pub fn croptype_split(samples: &CropTypeSamples, config: &TrainConfig) -> GroupSplit {
    series_split(samples, config)
}

/// Train the crop-type temporal network.
pub fn train_croptype(
    config: &TrainConfig,
    samples: &CropTypeSamples,
    device: DeviceChoice,
) -> Result<TrainedModel> {
    train_croptype_observed(config, samples, device, &Unobserved)
}

/// [`train_croptype`] watched by `observer` (epochs as they end; a stop before any epoch).
pub fn train_croptype_observed(
    config: &TrainConfig,
    samples: &CropTypeSamples,
    device: DeviceChoice,
    observer: &dyn TrainObserver,
) -> Result<TrainedModel> {
    train_series(
        config,
        samples,
        device,
        observer,
        rules::croptype_rule_descriptions(),
        croptype_notes(),
        None,
    )
}

fn croptype_notes() -> Vec<String> {
    vec!["fallow = WorldCereal codes 1115000000 and 1600000000 (see training.label_rules)".into()]
}

/// Fine-tune the crop-type model in `base` (a registry folder) on `samples`: training starts
/// from its weights and keeps its input normalisation, season window and architecture (the
/// config's `conv_channels`, `slot_head` and `stats_head` are ignored); the card records the
/// base's id (`training.config.fine_tune_from`). The split is the base's (see
/// [`TrainConfig::split_seed`]), so no series the base held out is trained on; early stopping
/// and evaluation are as for [`train_croptype`]. A smaller `learning_rate` and `max_epochs`
/// than from scratch suit it.
pub fn fine_tune_croptype(
    config: &TrainConfig,
    samples: &CropTypeSamples,
    device: DeviceChoice,
    observer: &dyn TrainObserver,
    base: &std::path::Path,
) -> Result<TrainedModel> {
    let model = SeriesModel::load(base, &device.training_device(), Task::CropType)?;
    let window = model.window();
    let (card, net) = model.into_parts();
    let mut expected = pixel_feature_names();
    expected.extend(SERIES_EXTRA_FEATURES.iter().map(|f| f.to_string()));
    if card.input.features != expected
        || card.classes.len() != Task::CropType.class_names().len()
        || window != SeasonWindow::default()
    {
        return Err(ModelError::InvalidConfig(format!(
            "model {} takes other features, classes or months than this gengdi trains: it \
             cannot be fine-tuned here",
            card.id
        )));
    }
    let Architecture::CropTemporal(arch) = card.architecture.clone() else {
        return Err(ModelError::InvalidConfig(format!(
            "model {} is not a crop-type temporal network",
            card.id
        )));
    };
    let mut config = config.clone().with_split_of(&card.training.config);
    config.fine_tune_from = Some(card.id.clone());
    config.conv_channels = arch.conv_channels;
    config.slot_head = arch.slot_head;
    config.stats_head = arch.stats_head;
    train_series(
        &config,
        samples,
        device,
        observer,
        rules::croptype_rule_descriptions(),
        croptype_notes(),
        Some((card.input.normalisation, arch, net)),
    )
}

/// The base a series fine-tuning starts from: normalisation, architecture, weights.
type SeriesBase = (Normalisation, CropTemporalConfig, CropTemporalNet);

/// The features of a series network's input after the pixel features.
const SERIES_EXTRA_FEATURES: [&str; 3] = ["valid_mask", "month_sin", "month_cos"];

/// Train the season-cover network: the crop-type network's architecture on the season-cover
/// classes (annual crop, perennial, grassland, fallow, water, built).
pub fn train_season_cover(
    config: &TrainConfig,
    samples: &SeasonCoverSamples,
    device: DeviceChoice,
) -> Result<TrainedModel> {
    train_series(
        config,
        samples,
        device,
        &Unobserved,
        rules::season_cover_rule_descriptions(),
        vec![
            "perennial = WorldCereal permanent crops (orchards, vineyards, olives, nuts) and trees; the class tree planting on farmland is checked against".into(),
            "water and built are learnt from EuroSAT pseudo-series (one single-date patch's pixels spread over the months, see training.label_rules): a cover that does not change, not a real season".into(),
        ],
        None,
    )
}

/// DOS1 dark-object offsets per band of the valid monthly composites of the L1C series among
/// `rows` (see [`dark_object_offsets`]); None with fewer than 100 such observations.
fn series_dark_object_offsets(
    series: &[PreparedSeries],
    l1c: &[bool],
    rows: &[usize],
) -> Option<[f32; N_BANDS]> {
    let obs: Vec<&[f32; N_BANDS]> = rows
        .iter()
        .filter(|&&r| l1c[r])
        .flat_map(|&r| {
            let p = &series[r];
            p.composite
                .iter()
                .zip(&p.valid)
                .filter(|(_, v)| **v)
                .map(|(c, _)| c)
        })
        .collect();
    dos1_offsets(&obs)
}

fn train_series<C: SeriesClass>(
    config: &TrainConfig,
    samples: &SeriesSamples<C>,
    device: DeviceChoice,
    observer: &dyn TrainObserver,
    rule_descriptions: Vec<String>,
    mut task_notes: Vec<String>,
    base: Option<SeriesBase>,
) -> Result<TrainedModel> {
    config.validate()?;
    let start = Instant::now();
    let task_name = C::TASK.name();
    let window = SeasonWindow::default();
    let split = series_split(samples, config);
    check_test_sources(
        config,
        samples.samples.iter().map(|(s, _)| s.source.as_str()),
        &split,
    )?;
    if split.train.is_empty() || split.test.is_empty() {
        return Err(ModelError::NotEnoughData(format!(
            "{task_name} split has {} train and {} test series",
            split.train.len(),
            split.test.len()
        )));
    }
    let series: Vec<PreparedSeries> = samples
        .samples
        .iter()
        .map(|(s, _)| prepare_series(s, &window))
        .collect();
    let targets: Vec<usize> = samples
        .samples
        .iter()
        .map(|(_, c)| c.class_index())
        .collect();
    let names = C::TASK.class_names();
    let n_classes = names.len();
    let train_targets: Vec<usize> = split.train.iter().map(|&r| targets[r]).collect();
    let weights = class_weights(&train_targets, n_classes, config.class_weight_power);
    let (norm, arch, net) = match base {
        Some(base) => base,
        None => {
            // A fine-tuning keeps its base's normalisation; a new model fits its own.
            let mut train_features = Vec::new();
            for &r in &split.train {
                train_features.extend(valid_slot_features(&series[r].composite, &series[r].valid));
            }
            let norm = Normalisation::fit(pixel_feature_names(), &train_features, N_PIXEL_FEATURES);
            let arch = CropTemporalConfig::new(N_SERIES_CHANNELS, window.n_slots, n_classes)
                .with_conv_channels(config.conv_channels)
                .with_slot_head(config.slot_head)
                .with_stats_head(config.stats_head);
            let net = arch.init_seeded(config.seed, &device.training_device());
            (norm, arch, net)
        }
    };
    let l1c: Vec<bool> = samples
        .samples
        .iter()
        .map(|(s, _)| source_family(&s.source) == L1C_FAMILY)
        .collect();
    let haze_p = config.l1c_dark_object_p.unwrap_or(0.0);
    let haze = if config.augment && haze_p > 0.0 {
        series_dark_object_offsets(&series, &l1c, &split.train)
    } else {
        None
    };
    if haze.is_some() {
        task_notes.push(format!("L1C training series are shown as surface reflectance and L2A series with L1C's haze (DOS1 dark-object offsets of the L1C series, times U(0.5, 1.2), p = {haze_p} = training.config.l1c_dark_object_p), so that the level of processing does not tell water and built (L1C patches only) from the rest"));
    }
    let task = CropTypeTask {
        series,
        targets,
        l1c,
        haze,
        haze_p,
        norm: norm.clone(),
        window,
        gain: config.augment_gain,
        offset: config.augment_offset,
        slot_dropout: config.slot_dropout,
        season_window_p: config.season_window_p.unwrap_or(0.0),
    };
    let mut outcome = fit(
        &task, net, &split, &weights, n_classes, config, device, task_name, observer,
    )?;
    let mut features = pixel_feature_names();
    features.extend(SERIES_EXTRA_FEATURES.iter().map(|f| f.to_string()));
    let mut notes = vec![
        "input: one season = calendar months January..December of the season year; observations in the same month are averaged, months without a clear observation are masked".into(),
        "trained on France (2022, 2023), Flanders (2021) and South Sudan (2017) WorldCereal samples only; no Chinese data".into(),
    ];
    notes.extend(task_notes);
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        id: String::new(),
        task: C::TASK,
        classes: C::all()
            .iter()
            .map(|c| ClassEntry {
                code: c.class_index() as u8 + 1,
                name: c.class_name().into(),
            })
            .collect(),
        input: InputSpec {
            bands: BANDS.iter().map(|b| b.to_string()).collect(),
            sensors: vec!["Sentinel-2 L2A (WorldCereal monthly / 10-day composites)".into()],
            dn_scale: REFLECTANCE_SCALE,
            features,
            normalisation: norm,
            season: Some(window),
        },
        architecture: Architecture::CropTemporal(arch),
        weights: WeightsInfo {
            file: WEIGHTS_FILE.into(),
            sha256: String::new(),
            bytes: 0,
        },
        training: training_info(
            config,
            &samples.fingerprint,
            rule_descriptions,
            &samples.label_rules,
            &samples.rule_counts,
            counts_by_name(&names, train_targets.iter().copied()),
            weights,
            &split,
            &mut outcome,
            device,
        ),
        metrics: EvaluationReport::from_triples(&names, &[]),
        created: now_rfc3339(),
        notes,
    };
    let model = SeriesModel::from_parts(card, outcome.best, device.device());
    let test: Vec<_> = split
        .test
        .iter()
        .map(|&r| samples.samples[r].clone())
        .collect();
    let metrics = evaluate_series(&model, &test)?;
    let (mut card, net) = model.into_parts();
    card.metrics = metrics;
    card.training.wall_time_s = start.elapsed().as_secs_f64();
    Ok(TrainedModel {
        card,
        net: TrainedNet::Series(Box::new(net)),
    })
}

// ---------------------------------------------------------------- held-out re-evaluation

fn check_split(card: &ModelCard, split: &GroupSplit) -> Result<()> {
    let expected = &card.training.split.test_groups_sha256;
    let got = split.test_groups_sha256();
    if *expected == got {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "the held-out split of model {} cannot be recomputed from this data (test groups sha256 {got}, card says {expected}); pass the tables and labels it was trained on",
            card.id
        )))
    }
}

/// The held-out (test) pixels of a land-cover model, recomputed from its card's training
/// config; errors if the data does not reproduce the card's test groups.
pub fn held_out_landcover(
    card: &ModelCard,
    samples: &LandCoverSamples,
) -> Result<Vec<crate::samples::PixelSample>> {
    card.expect_task(Task::LandCover)?;
    let split = landcover_split(samples, &card.training.config);
    check_split(card, &split)?;
    Ok(split
        .test
        .iter()
        .map(|&r| samples.samples[r].clone())
        .collect())
}

/// The held-out (test) series of a crop-type or season-cover model (see
/// [`held_out_landcover`]).
pub fn held_out_series<C: SeriesClass>(
    card: &ModelCard,
    samples: &SeriesSamples<C>,
) -> Result<Vec<(SeriesSample, C)>> {
    card.expect_task(C::TASK)?;
    let split = series_split(samples, &card.training.config);
    check_split(card, &split)?;
    Ok(split
        .test
        .iter()
        .map(|&r| samples.samples[r].clone())
        .collect())
}

/// The held-out (test) series of a crop-type model (see [`held_out_landcover`]).
pub fn held_out_croptype(
    card: &ModelCard,
    samples: &CropTypeSamples,
) -> Result<Vec<(SeriesSample, CropTypeClass)>> {
    held_out_series(card, samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_of_the_config_are_checked() {
        assert!(TrainConfig::new().validate().is_ok());
        let c = TrainConfig::new().with_season_window_p(Some(1.5));
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("season_window_p must be a probability"),
            "{err}"
        );
        let c = TrainConfig::new().with_slot_dropout(-0.1);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("slot_dropout"));
    }

    #[test]
    fn dark_object_offsets_are_the_l1c_first_percentile_minus_100_dn() {
        use crate::classes::LandCoverClass;
        use crate::samples::PixelSample;
        // 200 L1C pixels with band b = 1000 + b + 10 i (i = 0..200), and L2A pixels that
        // must not count.
        let px = |source: &str, v: f32| PixelSample {
            source: source.into(),
            group: "g".into(),
            stratum: "s".into(),
            class: LandCoverClass::Built,
            dn: std::array::from_fn(|b| v + b as f32),
        };
        let mut set = LandCoverSamples::default();
        for i in 0..200 {
            set.samples
                .push(px("eurosat:l1c", 1000.0 + 10.0 * i as f32));
            set.samples.push(px("worldcereal:x", 1.0));
        }
        let all: Vec<usize> = (0..set.samples.len()).collect();
        let off = dark_object_offsets(&set, &all).unwrap();
        // 1st percentile of 200 values = the 3rd smallest (index 2): 1020 + b; minus 100.
        for (b, o) in off.iter().enumerate() {
            assert_eq!(*o, 920.0 + b as f32);
        }
        // Fewer than 100 L1C pixels: no offsets, the augmentation is off.
        let few: Vec<usize> = (0..150).collect();
        assert_eq!(dark_object_offsets(&set, &few), None);
        // Out-of-range probabilities are refused.
        let bad = TrainConfig::new().with_l1c_dark_object_p(Some(1.5));
        assert!(bad.validate().is_err());
    }

    #[test]
    fn balanced_class_weights_are_inverse_frequency() {
        let t = [0, 0, 0, 1];
        let w = class_weights(&t, 3, 1.0);
        assert!((w[0] - 4.0 / 6.0).abs() < 1e-6);
        assert!((w[1] - 2.0).abs() < 1e-6);
        assert_eq!(w[2], 1.0);
        assert_eq!(class_weights(&t, 3, 0.0)[..2], [1.0, 1.0]);
    }

    #[test]
    fn weighted_loss_of_known_logits_is_exact() {
        // logits [0, ln 3] -> p = [0.25, 0.75]; target 1 -> loss = -ln 0.75
        let logits = [0.0, 3f32.ln()];
        let (l, w, c, n) = weighted_loss_and_accuracy(&logits, 2, &[1], &[1.0, 2.0]);
        assert!((l / w + 0.75f64.ln()).abs() < 1e-6);
        assert_eq!((w, c, n), (2.0, 1.0, 1));
    }
}
