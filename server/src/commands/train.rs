//! `gengdi train`: train a land-cover or crop-type model on real labelled tables and/or the
//! user's own labelled points or polygons over scenes, and save it (weights + model card) into
//! a model registry.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use gengdi_models::train::load_train_config;
use gengdi_models::{
    fine_tune_croptype, fine_tune_landcover, train_croptype, train_landcover, train_season_cover,
    DeviceChoice, Task, TrainConfig,
};

use super::sample_args::SampleArgs;

/// Arguments of `gengdi train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// What to train: `landcover` or `croptype`.
    #[arg(long)]
    pub task: Task,
    #[command(flatten)]
    pub samples: SampleArgs,
    /// Registry folder to save into (`<out>/<task>/<id>/`; created if missing) [default: $GENGDI_REGISTRY, else a registry installed beside the executable; the models built into gengdi are read-only: `gengdi models export DIR` makes a writable copy].
    #[arg(long, alias = "registry", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Maximum epochs (early stopping may end sooner).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of the split, initialisation, batch order and augmentation (with --fine-tune,
    /// the split stays the base model's, so its held-out samples stay held out).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Burn backend: `ndarray` or `flex`.
    #[arg(long, default_value = "ndarray")]
    pub device: DeviceChoice,
    /// A full training config as JSON (`TrainConfig`); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Make the new model the active one of its task.
    #[arg(long)]
    pub activate: bool,
    /// Fine-tune a land-cover or crop-type model of the registry (an id, or `active`: the
    /// task's active model) instead of training from scratch: start from its weights, keep its
    /// input normalisation and architecture (with --verdicts, the usual way to teach the
    /// active model the area's verdicts; fewer --epochs and a smaller learning rate in
    /// --config suit it).
    #[arg(long, value_name = "MODEL")]
    pub fine_tune: Option<String>,
}

/// Run `gengdi train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    // Where the model goes is settled before minutes of training.
    let registry = crate::registry::locate(args.out.as_deref())?
        .for_writing("gengdi train")?
        .registry;
    let mut config = match &args.config {
        Some(path) => {
            load_train_config(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => TrainConfig::new(),
    };
    if let Some(e) = args.epochs {
        config.max_epochs = e;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    // The global -q / --quiet (`gengdi train … --quiet` as before) hides the progress bar.
    if crate::logging::quiet() {
        config.progress = false;
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let start = Instant::now();
    let base = match &args.fine_tune {
        None => None,
        Some(_) if args.task == Task::SeasonCover => {
            anyhow::bail!("--fine-tune: land-cover and crop-type models are fine-tuned, not season-cover models")
        }
        Some(which) if which == "active" => Some(registry.active_dir(args.task)?),
        Some(id) => Some(registry.model_dir(id)?),
    };
    let trained = match args.task {
        Task::LandCover => {
            let (samples, verdicts) = args.samples.landcover_and_verdicts()?;
            let mut trained = match &base {
                Some(base) => fine_tune_landcover(
                    &config,
                    &samples,
                    args.device,
                    &gengdi_models::Unobserved,
                    base,
                )?,
                None => train_landcover(&config, &samples, args.device)?,
            };
            trained.card.training.verdicts = verdicts;
            trained
        }
        Task::CropType => {
            let (samples, verdicts) = args.samples.croptype_and_verdicts()?;
            let mut trained = match &base {
                Some(base) => fine_tune_croptype(
                    &config,
                    &samples,
                    args.device,
                    &gengdi_models::Unobserved,
                    base,
                )?,
                None => train_croptype(&config, &samples, args.device)?,
            };
            trained.card.training.verdicts = verdicts;
            trained
        }
        Task::SeasonCover => {
            train_season_cover(&config, &args.samples.season_cover()?, args.device)?
        }
    };
    let card = trained.save_to_registry(registry.root(), &command)?;
    if args.activate {
        registry.activate(&card.id)?;
    }
    println!("{}", card.metrics);
    println!(
        "saved {} model {} to {} ({:.1} s){}",
        card.task,
        card.id,
        registry.model_dir(&card.id)?.display(),
        start.elapsed().as_secs_f64(),
        if args.activate { ", active" } else { "" }
    );
    Ok(())
}
