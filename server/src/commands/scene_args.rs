//! Options every command that opens scenes shares.

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args;
use gengdi_tiling::{Scene, SceneOptions, Sensor};
use std::path::Path;

#[derive(Args, Debug, Clone, Default)]
pub struct SceneArgs {
    /// Band names in file order, overriding the file's band descriptions (e.g. B02,B03,B04,B08).
    #[arg(long, value_delimiter = ',')]
    pub band_names: Option<Vec<String>>,
    /// Sensor (sentinel2, landsat8, landsat9, gaofen1, gaofen2, gaofen6), overriding the guess from the file name.
    #[arg(long)]
    pub sensor: Option<Sensor>,
    /// Nodata value of every band, overriding (or supplying) the declared one, e.g. 0 for Sentinel-2 edge tiles.
    #[arg(long, allow_negative_numbers = true)]
    pub nodata: Option<f64>,
    /// Acquisition date (YYYY-MM-DD), overriding metadata and file name.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Read pixels through GDAL instead of the fast reader.
    #[arg(long)]
    pub gdal: bool,
}

impl SceneArgs {
    pub fn options(&self) -> SceneOptions {
        SceneOptions {
            band_names: self.band_names.clone(),
            sensor: self.sensor,
            nodata: self.nodata,
            date: self.date,
            force_gdal: self.gdal,
            ..SceneOptions::default()
        }
    }

    pub fn open(&self, path: &Path) -> anyhow::Result<Scene> {
        Scene::open_with(path, &self.options()).context("cannot open scene")
    }
}
