//! `gengdi eval`: evaluate a saved model on labelled samples (tables and/or the user's labels
//! over scenes, read as `gengdi train` reads them; all rows, or only the model's held-out
//! groups) and print / write the metrics.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Datelike;
use gengdi_models::card::ModelCard;
use gengdi_models::samples::SeriesSample;
use gengdi_models::samples::SeriesSamples;
use gengdi_models::{
    evaluate_landcover, evaluate_series, held_out_landcover, held_out_series, DeviceChoice,
    EvaluationReport, LandCoverModel, SeriesClass, SeriesModel, Task,
};

use super::sample_args::SampleArgs;

/// Arguments of `gengdi eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A model folder (with card.json), or a model id (or unique prefix) in the registry.
    #[arg(long)]
    pub model: String,
    /// The labelled samples, given as to `gengdi train` (tables and/or --labels over --scenes).
    #[command(flatten)]
    pub samples: SampleArgs,
    /// Only the model's held-out test groups, recomputed from its card: give the same tables
    /// and labels the model was trained on (the card's digest of its test groups is checked).
    #[arg(long)]
    pub held_out: bool,
    /// Season models (crop type, season cover): keep only the observations of these months
    /// of each series' season year, `FROM-TO` (e.g. `4-9`, April to September), as a batch of
    /// a few growing-season scenes shows a field to `gengdi analyze`. Series left with fewer than 3 observations are
    /// dropped (and counted).
    #[arg(long, value_parser = parse_months)]
    pub months: Option<(u32, u32)>,
    /// With --held-out: write the held-out group ids (WorldCereal sample ids, EuroSAT patch ids,
    /// label groups), one per line, sorted, here — e.g. for `gengdi-season --crop-series` /
    /// `--landcover-samples`, to render a season scene from samples the model never saw.
    #[arg(long, requires = "held_out")]
    pub write_held_out: Option<PathBuf>,
    /// Write the metrics as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Registry used to resolve ids [default: $GENGDI_REGISTRY, else a registry installed beside the executable, else the models built into gengdi].
    #[arg(long, value_name = "DIR")]
    pub registry: Option<PathBuf>,
    /// Burn backend: `ndarray` or `flex`.
    #[arg(long, default_value = "ndarray")]
    pub device: DeviceChoice,
}

fn parse_months(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected FROM-TO, e.g. 4-9"))?;
    let m = |x: &str| {
        x.trim()
            .parse::<u32>()
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| format!("{x:?} is not a month (1-12)"))
    };
    let (a, b) = (m(a)?, m(b)?);
    if a > b {
        return Err(format!("{s:?}: the first month is after the last"));
    }
    Ok((a, b))
}

/// Write the distinct group ids, sorted, one per line.
fn write_groups<'a>(
    path: Option<&Path>,
    groups: impl Iterator<Item = &'a String>,
) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let set: std::collections::BTreeSet<&String> = groups.collect();
    let mut text = String::new();
    for g in &set {
        text.push_str(g);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {} held-out group ids to {}",
        set.len(),
        path.display()
    );
    Ok(())
}

/// Keep only the observations of months `from..=to` of each series' season year; drop series
/// left with fewer than 3.
fn restrict_months<C>(rows: &mut Vec<(SeriesSample, C)>, (from, to): (u32, u32)) {
    for (s, _) in rows.iter_mut() {
        let year = s.season_year;
        s.observations
            .retain(|o| o.date.year() == year && (from..=to).contains(&o.date.month()));
    }
    rows.retain(|(s, _)| s.observations.len() >= 3);
}

fn model_dir(model: &str, registry: Option<&Path>) -> anyhow::Result<PathBuf> {
    let as_path = PathBuf::from(model);
    if as_path.join(gengdi_models::CARD_FILE).is_file() {
        return Ok(as_path);
    }
    crate::registry::locate(registry)?
        .for_reading()?
        .model_dir(model)
}

/// Evaluate a season model (crop type, season cover) on `samples`.
fn eval_series<C: SeriesClass>(
    args: &EvalArgs,
    card: &ModelCard,
    dir: &Path,
    samples: SeriesSamples<C>,
) -> anyhow::Result<EvaluationReport> {
    let model = SeriesModel::load(dir, &args.device.device(), C::TASK)?;
    let mut rows = if args.held_out {
        held_out_series(card, &samples)?
    } else {
        samples.samples
    };
    write_groups(
        args.write_held_out.as_deref(),
        rows.iter().map(|(s, _)| &s.group),
    )?;
    if let Some(months) = args.months {
        let before = rows.len();
        restrict_months(&mut rows, months);
        println!(
            "months {}-{} only: {} of {before} series keep at least 3 observations",
            months.0,
            months.1,
            rows.len()
        );
    }
    Ok(evaluate_series(&model, &rows)?)
}

/// Run `gengdi eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let dir = model_dir(&args.model, args.registry.as_deref())?;
    let card = ModelCard::load(&dir)?;
    let device = args.device.device();
    let report = match card.task {
        Task::LandCover => {
            if args.months.is_some() {
                anyhow::bail!("--months applies to season models (crop type, season cover) only");
            }
            let model = LandCoverModel::load(&dir, &device)?;
            let samples = args.samples.landcover()?;
            let rows = if args.held_out {
                held_out_landcover(&card, &samples)?
            } else {
                samples.samples
            };
            write_groups(
                args.write_held_out.as_deref(),
                rows.iter().map(|r| &r.group),
            )?;
            evaluate_landcover(&model, &rows)?
        }
        Task::CropType => eval_series(&args, &card, &dir, args.samples.croptype()?)?,
        Task::SeasonCover => eval_series(&args, &card, &dir, args.samples.season_cover()?)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use gengdi_models::samples::Observation;

    #[test]
    fn months_are_parsed_and_restrict_each_series_to_its_season_year() {
        assert_eq!(parse_months("4-9"), Ok((4, 9)));
        assert!(parse_months("9-4").is_err());
        assert!(parse_months("0-5").unwrap_err().contains("not a month"));
        assert!(parse_months("april").is_err());
        let obs = |y, m| Observation {
            date: NaiveDate::from_ymd_opt(y, m, 15).unwrap(),
            dn: [1000.0; 9],
        };
        let series = |months: &[(i32, u32)]| SeriesSample {
            source: "t".into(),
            group: "g".into(),
            ewoc_code: 1_101_060_000,
            lc10_class: "temporary_crops".into(),
            season_year: 2023,
            observations: months.iter().map(|&(y, m)| obs(y, m)).collect(),
            invalid_observations: 0,
        };
        let mut rows = vec![
            (
                series(&[
                    (2022, 5),
                    (2023, 1),
                    (2023, 4),
                    (2023, 6),
                    (2023, 9),
                    (2023, 10),
                ]),
                0,
            ),
            (series(&[(2023, 3), (2023, 5), (2023, 11)]), 1),
        ];
        restrict_months(&mut rows, (4, 9));
        assert_eq!(rows.len(), 1, "the second series keeps one observation");
        let kept: Vec<u32> = rows[0]
            .0
            .observations
            .iter()
            .map(|o| o.date.month())
            .collect();
        assert_eq!(kept, vec![4, 6, 9]);
    }
}
