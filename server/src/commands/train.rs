//! `gengdi train`: train a land-cover or crop-type model on real labelled tables and/or the
//! user's own labelled points or polygons over scenes, and save it (weights + model card) into
//! a model registry.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use gengdi_inference::labels::{
    croptype_samples, label_stack, landcover_samples, parse_class_map, LabelOptions,
};
use gengdi_models::samples::{load_croptype, load_landcover};
use gengdi_models::train::load_train_config;
use gengdi_models::{train_croptype, train_landcover, DeviceChoice, Registry, Task, TrainConfig};

use super::scene_args::SceneArgs;
use crate::util::expand_scene_paths;

/// The tables `--data` reads when neither `--data` nor `--labels` is given.
const DEFAULT_DATA: [&str; 2] = [
    "fixtures/data/eurosat-ms-samples",
    "fixtures/data/worldcereal-s2-timeseries",
];

/// Arguments of `gengdi train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// What to train: `landcover` or `croptype`.
    #[arg(long)]
    pub task: Task,
    /// Training tables or folders holding them (EuroSAT pixel table, WorldCereal long/wide
    /// tables; `.csv` or `.csv.gz`). Default without --labels: the tables shipped in
    /// `fixtures/data` (fixtures/data/eurosat-ms-samples fixtures/data/worldcereal-s2-timeseries);
    /// with --labels: none unless given.
    #[arg(long, num_args = 1..)]
    pub data: Option<Vec<PathBuf>>,
    /// Labelled points or polygons (any vector format GDAL reads, any CRS), repeatable; read
    /// over --scenes. Polygons label the pixels whose centre is inside, points their pixel.
    #[arg(long, num_args = 1.., requires_all = ["class_field", "scenes"])]
    pub labels: Vec<PathBuf>,
    /// The field of --labels holding each feature's class value.
    #[arg(long, requires = "labels")]
    pub class_field: Option<String>,
    /// Class values → model classes, e.g. `1100=annual_crop,1300=grass`; values that are class
    /// names are used as is, other values are skipped and reported.
    #[arg(long, requires = "labels")]
    pub class_map: Option<String>,
    /// A field of --labels whose value groups features in the split (default: each feature).
    #[arg(long, requires = "labels")]
    pub group_field: Option<String>,
    /// Scene files or directories the labels are read over (several dates; any CRS; an SCL
    /// band, where present, masks clouds and shadows).
    #[arg(long, num_args = 1.., requires = "labels")]
    pub scenes: Vec<PathBuf>,
    #[command(flatten)]
    pub scene_args: SceneArgs,
    /// Registry folder to save into (`<out>/<task>/<id>/`).
    #[arg(long, default_value = "models/weights")]
    pub out: PathBuf,
    /// Maximum epochs (early stopping may end sooner).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of the split, initialisation, batch order and augmentation.
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
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `gengdi train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
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
    if args.quiet {
        config.progress = false;
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let start = Instant::now();
    // Tables: those given, or the shipped ones when no labels are given either.
    let tables: Vec<PathBuf> = match (&args.data, args.labels.is_empty()) {
        (Some(d), _) => d.clone(),
        (None, true) => DEFAULT_DATA.iter().map(PathBuf::from).collect(),
        (None, false) => Vec::new(),
    };
    let label_opts = if args.labels.is_empty() {
        None
    } else {
        let mut o = LabelOptions::new(args.class_field.clone().unwrap_or_default());
        if let Some(spec) = &args.class_map {
            o.class_map = parse_class_map(spec)?;
        }
        o.group_field = args.group_field.clone();
        Some(o)
    };
    let stack = match &label_opts {
        Some(_) => {
            let paths = expand_scene_paths(&args.scenes)?;
            let scenes = paths
                .iter()
                .map(|p| args.scene_args.open(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Some(
                label_stack(scenes)
                    .context("the scenes do not supply the model bands on one grid")?,
            )
        }
        None => None,
    };
    let trained = match args.task {
        Task::LandCover => {
            let mut samples = if tables.is_empty() {
                Default::default()
            } else {
                load_landcover(&tables)?
            };
            let n_tables = samples.fingerprint.files.len();
            if let (Some(opts), Some(stack)) = (&label_opts, &stack) {
                let (from_labels, report) = landcover_samples(&args.labels, opts, stack)?;
                print!("{report}");
                samples.merge(from_labels);
            }
            eprintln!(
                "land cover: {} labelled pixels from {} tables and {} label files",
                samples.samples.len(),
                n_tables,
                args.labels.len()
            );
            train_landcover(&config, &samples, args.device)?
        }
        Task::CropType => {
            let mut samples = if tables.is_empty() {
                Default::default()
            } else {
                load_croptype(&tables)?
            };
            let n_tables = samples.fingerprint.files.len();
            if let (Some(opts), Some(stack)) = (&label_opts, &stack) {
                let (from_labels, report) = croptype_samples(&args.labels, opts, stack)?;
                print!("{report}");
                samples.merge(from_labels);
            }
            eprintln!(
                "crop type: {} labelled series from {} tables and {} label files",
                samples.samples.len(),
                n_tables,
                args.labels.len()
            );
            train_croptype(&config, &samples, args.device)?
        }
    };
    let registry = Registry::new(&args.out);
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
