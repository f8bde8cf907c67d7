//! Where labelled samples come from, for `gengdi train` and `gengdi eval`: real tables and/or
//! the user's own labelled points or polygons over scenes. Both commands read them the same
//! way, in the same order, so `eval --held-out` recomputes the split of a model trained on
//! vector labels exactly (the card's test-group digest checks it).

use std::path::PathBuf;

use anyhow::Context;
use gengdi_inference::labels::{
    label_stack, landcover_samples, parse_class_map, series_samples, LabelOptions,
};
use gengdi_models::samples::{
    load_croptype, load_landcover, load_season_cover, CropTypeSamples, LandCoverSamples,
    SeasonCoverSamples, SeriesSamples,
};
use gengdi_models::SeriesClass;
use gengdi_tiling::SceneStack;

use super::scene_args::SceneArgs;
use crate::util::expand_scene_paths;

/// The tables `--data` reads when neither `--data` nor `--labels` is given.
const DEFAULT_DATA: [&str; 2] = [
    "fixtures/data/eurosat-ms-samples",
    "fixtures/data/worldcereal-s2-timeseries",
];

#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// Labelled tables or folders holding them (EuroSAT pixel table, WorldCereal long/wide
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
}

impl SampleArgs {
    /// Tables: those given, or the shipped ones when no labels are given either.
    fn tables(&self) -> Vec<PathBuf> {
        match (&self.data, self.labels.is_empty()) {
            (Some(d), _) => d.clone(),
            (None, true) => DEFAULT_DATA.iter().map(PathBuf::from).collect(),
            (None, false) => Vec::new(),
        }
    }

    /// The label options and the scene stack the labels are read over (`None` without labels).
    fn labels(&self) -> anyhow::Result<Option<(LabelOptions, SceneStack)>> {
        if self.labels.is_empty() {
            return Ok(None);
        }
        let mut o = LabelOptions::new(self.class_field.clone().unwrap_or_default());
        if let Some(spec) = &self.class_map {
            o.class_map = parse_class_map(spec)?;
        }
        o.group_field = self.group_field.clone();
        let paths = expand_scene_paths(&self.scenes)?;
        let scenes = paths
            .iter()
            .map(|p| self.scene_args.open(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let stack =
            label_stack(scenes).context("the scenes do not supply the model bands on one grid")?;
        Ok(Some((o, stack)))
    }

    /// Land-cover samples: the tables, then the labels (their report is printed).
    pub fn landcover(&self) -> anyhow::Result<LandCoverSamples> {
        let tables = self.tables();
        let mut samples = if tables.is_empty() {
            LandCoverSamples::default()
        } else {
            load_landcover(&tables)?
        };
        let n_tables = samples.fingerprint.files.len();
        if let Some((opts, stack)) = self.labels()? {
            let (from_labels, report) = landcover_samples(&self.labels, &opts, &stack)?;
            print!("{report}");
            samples.merge(from_labels);
        }
        tracing::info!(
            "land cover: {} labelled pixels from {} tables and {} label files",
            samples.samples.len(),
            n_tables,
            self.labels.len()
        );
        Ok(samples)
    }

    /// Crop-type samples: the tables, then the labels (their report is printed).
    pub fn croptype(&self) -> anyhow::Result<CropTypeSamples> {
        self.series(load_croptype)
    }

    /// Season-cover samples: the tables, then the labels (their report is printed).
    pub fn season_cover(&self) -> anyhow::Result<SeasonCoverSamples> {
        self.series(load_season_cover)
    }

    /// Season-model samples: the tables read by `load`, then the labels.
    fn series<C: SeriesClass>(
        &self,
        load: fn(&[PathBuf]) -> gengdi_models::Result<SeriesSamples<C>>,
    ) -> anyhow::Result<SeriesSamples<C>> {
        let tables = self.tables();
        let mut samples = if tables.is_empty() {
            SeriesSamples::default()
        } else {
            load(&tables)?
        };
        let n_tables = samples.fingerprint.files.len();
        if let Some((opts, stack)) = self.labels()? {
            let (from_labels, report) = series_samples::<C>(&self.labels, &opts, &stack)?;
            print!("{report}");
            samples.merge(from_labels);
        }
        tracing::info!(
            "{}: {} labelled series from {} tables and {} label files",
            C::TASK,
            samples.samples.len(),
            n_tables,
            self.labels.len()
        );
        Ok(samples)
    }
}
