//! `gengdi eval`: evaluate a saved model on labelled tables (all rows, or only the model's
//! held-out groups) and print / write the metrics.

use std::path::{Path, PathBuf};

use anyhow::Context;
use gengdi_models::card::ModelCard;
use gengdi_models::samples::{load_croptype, load_landcover};
use gengdi_models::{
    evaluate_croptype, evaluate_landcover, held_out_croptype, held_out_landcover, CropTypeModel,
    DeviceChoice, LandCoverModel, Registry, Task,
};

/// Arguments of `gengdi eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A model folder (with card.json), or a model id (or unique prefix) in the registry.
    #[arg(long)]
    pub model: String,
    /// Labelled tables or folders (see `gengdi train --data`).
    #[arg(long, num_args = 1.., default_values = ["fixtures/data/eurosat-ms-samples", "fixtures/data/worldcereal-s2-timeseries"])]
    pub data: Vec<PathBuf>,
    /// Only the model's held-out test groups (recomputed from its card; the data must be the
    /// training tables).
    #[arg(long)]
    pub held_out: bool,
    /// Write the metrics as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Registry used to resolve ids.
    #[arg(long, default_value = "models/weights")]
    pub registry: PathBuf,
    /// Burn backend: `ndarray` or `flex`.
    #[arg(long, default_value = "ndarray")]
    pub device: DeviceChoice,
}

fn model_dir(model: &str, registry: &Path) -> anyhow::Result<PathBuf> {
    let as_path = PathBuf::from(model);
    if as_path.join(gengdi_models::CARD_FILE).is_file() {
        return Ok(as_path);
    }
    Ok(Registry::new(registry).model_dir(model)?)
}

/// Run `gengdi eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let dir = model_dir(&args.model, &args.registry)?;
    let card = ModelCard::load(&dir)?;
    let device = args.device.device();
    let report = match card.task {
        Task::LandCover => {
            let model = LandCoverModel::load(&dir, &device)?;
            let samples = load_landcover(&args.data)?;
            let rows = if args.held_out {
                held_out_landcover(&card, &samples)?
            } else {
                samples.samples
            };
            evaluate_landcover(&model, &rows)?
        }
        Task::CropType => {
            let model = CropTypeModel::load(&dir, &device)?;
            let samples = load_croptype(&args.data)?;
            let rows = if args.held_out {
                held_out_croptype(&card, &samples)?
            } else {
                samples.samples
            };
            evaluate_croptype(&model, &rows)?
        }
    };
    println!(
        "model {} ({}), {}",
        card.id,
        card.task,
        if args.held_out {
            "held-out groups"
        } else {
            "all rows"
        }
    );
    println!("{report}");
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
