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
use gengdi_models::{SeriesClass, Task};
use gengdi_service::jobs::training::verdict_file_labels_for;
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
    /// Inspectors' verdicts: an exported change list (`GET
    /// /api/v1/changes?…&format=geojson|gpkg`) or any vector file with the fields `kind`,
    /// `status` (or `verdict`), `class_before` and `class_after` (and optionally
    /// `class_found`), read over --scenes (the batch's). Land cover: a confirmed patch labels
    /// its pixels with the violation's class (fishpond → water, construction → built,
    /// tree_planting → tree or orchard, abandonment → bare or grass), a false positive with
    /// the class found or else the parcel's register class. Crop type: a patch labels its
    /// season (confirmed non_grain_pbf → non_grain, tree_planting → permanent_crop,
    /// abandonment → fallow; a false non_grain_pbf → grain; other false positives by the class
    /// found: grass → grassland, bare → fallow, tree or orchard → permanent_crop). Others are
    /// skipped.
    #[arg(long, num_args = 1.., requires = "scenes")]
    pub verdicts: Vec<PathBuf>,
    /// Scene files or directories the labels or verdicts are read over (several dates; any
    /// CRS; an SCL band, where present, masks clouds and shadows).
    #[arg(long, num_args = 1..)]
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

    /// The label options and the scene stack the labels are read over (`None` without labels
    /// or verdicts).
    fn labels(&self) -> anyhow::Result<Option<(LabelOptions, SceneStack)>> {
        if self.labels.is_empty() && self.verdicts.is_empty() {
            anyhow::ensure!(
                self.scenes.is_empty(),
                "--scenes are read only with --labels or --verdicts"
            );
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
        Ok(self.landcover_and_verdicts()?.0)
    }

    /// [`SampleArgs::landcover`], and the verdicts of the --verdicts files that labelled
    /// pixels, by `kind/verdict` (each file read once).
    pub fn landcover_and_verdicts(
        &self,
    ) -> anyhow::Result<(LandCoverSamples, std::collections::BTreeMap<String, u64>)> {
        let mut verdicts = std::collections::BTreeMap::new();
        let tables = self.tables();
        let mut samples = if tables.is_empty() {
            LandCoverSamples::default()
        } else {
            load_landcover(&tables)?
        };
        let n_tables = samples.fingerprint.files.len();
        if let Some((opts, stack)) = self.labels()? {
            if !self.labels.is_empty() {
                let (from_labels, report) = landcover_samples(&self.labels, &opts, &stack)?;
                print!("{report}");
                samples.merge(from_labels);
            }
            if !self.verdicts.is_empty() {
                let (_dir, files) = self.verdict_label_files(Task::LandCover, &mut verdicts)?;
                let mut o = LabelOptions::new("class");
                o.group_field = Some("patch".into());
                let (from_verdicts, report) = landcover_samples(&files, &o, &stack)?;
                print!("{report}");
                samples.merge(from_verdicts);
            }
        }
        tracing::info!(
            "land cover: {} labelled pixels from {} tables, {} label files and {} verdict files",
            samples.samples.len(),
            n_tables,
            self.labels.len(),
            self.verdicts.len()
        );
        Ok((samples, verdicts))
    }

    /// Each --verdicts file's labels for the model of `task`, written as GeoJSON (WGS 84,
    /// property `class`, grouped by `patch` in the split) into a temporary folder (kept alive
    /// by the returned handle); the verdicts that label are added to `verdicts` by
    /// `kind/verdict`, and each file's report is printed.
    fn verdict_label_files(
        &self,
        task: Task,
        verdicts: &mut std::collections::BTreeMap<String, u64>,
    ) -> anyhow::Result<(tempfile::TempDir, Vec<PathBuf>)> {
        let dir = tempfile::tempdir().context("a folder for the verdict labels")?;
        let mut files = Vec::new();
        for (i, path) in self.verdicts.iter().enumerate() {
            let labels = verdict_file_labels_for(path, task)
                .with_context(|| format!("reading the verdicts {}", path.display()))?;
            for (k, n) in &labels.verdicts {
                *verdicts.entry(k.clone()).or_default() += n;
            }
            println!(
                "verdicts {}: {} patches label {} {:?}; skipped {:?}",
                path.display(),
                labels.features.len(),
                match task {
                    Task::CropType => "seasons",
                    _ => "pixels",
                },
                labels.labelled,
                labels.skipped
            );
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "verdicts".into());
            let file = dir.path().join(format!("{i}-{name}.geojson"));
            std::fs::write(&file, labels.geojson().to_string())
                .with_context(|| format!("writing {}", file.display()))?;
            files.push(file);
        }
        Ok((dir, files))
    }

    /// Crop-type samples: the tables, then the labels (their report is printed).
    pub fn croptype(&self) -> anyhow::Result<CropTypeSamples> {
        Ok(self.croptype_and_verdicts()?.0)
    }

    /// [`SampleArgs::croptype`], then one season per --verdicts patch that labels a crop-type
    /// class (the mean of its clear pixels at each date of --scenes), and the verdicts that
    /// labelled, by `kind/verdict`.
    pub fn croptype_and_verdicts(
        &self,
    ) -> anyhow::Result<(CropTypeSamples, std::collections::BTreeMap<String, u64>)> {
        let mut verdicts = std::collections::BTreeMap::new();
        let samples = self.series(load_croptype, &mut verdicts)?;
        Ok((samples, verdicts))
    }

    /// Season-cover samples: the tables, then the labels (their report is printed).
    pub fn season_cover(&self) -> anyhow::Result<SeasonCoverSamples> {
        anyhow::ensure!(
            self.verdicts.is_empty(),
            "--verdicts label land-cover and crop-type models only (train --task landcover or croptype)"
        );
        self.series(load_season_cover, &mut Default::default())
    }

    /// Season-model samples: the tables read by `load`, then the labels, then the verdicts
    /// (one season per patch that labels, counted into `verdicts` by `kind/verdict`).
    fn series<C: SeriesClass>(
        &self,
        load: fn(&[PathBuf]) -> gengdi_models::Result<SeriesSamples<C>>,
        verdicts: &mut std::collections::BTreeMap<String, u64>,
    ) -> anyhow::Result<SeriesSamples<C>> {
        let tables = self.tables();
        let mut samples = if tables.is_empty() {
            SeriesSamples::default()
        } else {
            load(&tables)?
        };
        let n_tables = samples.fingerprint.files.len();
        if let Some((opts, stack)) = self.labels()? {
            if !self.labels.is_empty() {
                let (from_labels, report) = series_samples::<C>(&self.labels, &opts, &stack)?;
                print!("{report}");
                samples.merge(from_labels);
            }
            if !self.verdicts.is_empty() {
                let (_dir, files) = self.verdict_label_files(C::TASK, verdicts)?;
                let mut o = LabelOptions::new("class");
                o.group_field = Some("patch".into());
                let (from_verdicts, report) = series_samples::<C>(&files, &o, &stack)?;
                print!("{report}");
                samples.merge(from_verdicts);
            }
        }
        tracing::info!(
            "{}: {} labelled series from {} tables, {} label files and {} verdict files",
            C::TASK,
            samples.samples.len(),
            n_tables,
            self.labels.len(),
            self.verdicts.len()
        );
        Ok(samples)
    }
}
