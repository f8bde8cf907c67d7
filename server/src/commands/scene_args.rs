//! Options every command that opens scenes shares.

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args;
use gengdi_tiling::{Radiometry, RadiometrySource, Scene, SceneOptions, Sensor};
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
    /// Reflectance = value × SCALE + OFFSET for every reflectance band, overriding what the
    /// file's metadata says or its values suggest (e.g. 0.0001 for reflectance × 10000, 1 for
    /// float reflectance 0–1).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Additive offset of the reflectance (with --scale; e.g. -0.1 for Sentinel-2 DN since
    /// processing baseline 04.00 read without its metadata).
    #[arg(long, allow_negative_numbers = true)]
    pub offset: Option<f64>,
    /// Calibration coefficients (TOML) for scenes delivered as DN (Gaofen GF-1 / GF-2 /
    /// GF-6): DN → top-of-atmosphere reflectance with the sun angle of each scene's XML.
    #[arg(long)]
    pub calibration: Option<std::path::PathBuf>,
    /// Read remote scenes (s3://bucket/key, https://…, given as scenes or in STAC items) under this prefix, through GDAL with its usual AWS_* settings (repeatable; none by default).
    #[arg(long, value_name = "PREFIX")]
    pub allow_remote: Vec<String>,
}

impl SceneArgs {
    /// The options, with the calibration file loaded (a bad file is an error).
    pub fn options_checked(&self) -> anyhow::Result<SceneOptions> {
        let mut o = self.options();
        if let Some(p) = &self.calibration {
            o.calibration = Some(std::sync::Arc::new(
                gengdi_tiling::calibration::CalibrationFile::load(p)?,
            ));
        }
        Ok(o)
    }

    /// The library's scene options as a request (the calibration file is read when the
    /// analysis runs).
    pub fn request(&self) -> gengdi_inference::pipeline::SceneRequest {
        gengdi_inference::pipeline::SceneRequest {
            band_names: self.band_names.clone(),
            sensor: self.sensor,
            nodata: self.nodata,
            date: self.date,
            force_gdal: self.gdal,
            scale: self.scale,
            offset: self.offset,
            calibration: self.calibration.clone(),
            max_pixels: None,
            remote_prefixes: self.allow_remote.clone(),
        }
    }

    pub fn options(&self) -> SceneOptions {
        let radiometry = (self.scale.is_some() || self.offset.is_some()).then(|| Radiometry {
            scale: self.scale.unwrap_or(1.0),
            offset: self.offset.unwrap_or(0.0),
            source: RadiometrySource::Given,
        });
        SceneOptions {
            radiometry,
            band_names: self.band_names.clone(),
            sensor: self.sensor,
            nodata: self.nodata,
            date: self.date,
            force_gdal: self.gdal,
            remote_prefixes: self.allow_remote.clone(),
            ..SceneOptions::default()
        }
    }

    /// `path`, or the GDAL virtual path of a remote scene (`s3://…`, `https://…`) under an
    /// `--allow-remote` prefix (another remote href is an error naming it).
    pub fn resolve(&self, path: &Path) -> anyhow::Result<std::path::PathBuf> {
        let remote = match path.to_str() {
            Some(href) => gengdi_tiling::vsi::resolve_remote(href, &self.allow_remote)?,
            None => None,
        };
        Ok(remote.unwrap_or_else(|| path.to_path_buf()))
    }

    pub fn open(&self, path: &Path) -> anyhow::Result<Scene> {
        let path = self.resolve(path)?;
        Scene::open_with(&path, &self.options()).context("cannot open scene")
    }

    /// The scenes a path stands for: a delivered product's band files, else the one file.
    pub fn open_all(&self, path: &Path) -> anyhow::Result<Vec<Scene>> {
        if let Some(s) = self.scale {
            if !(s.is_finite() && s != 0.0) {
                anyhow::bail!("--scale {s}: must be a finite number other than 0");
            }
        }
        if self.offset.is_some_and(|o| !o.is_finite()) {
            anyhow::bail!("--offset must be a finite number");
        }
        gengdi_tiling::product::open_scenes(&self.resolve(path)?, &self.options_checked()?)
            .context("cannot open scene")
    }
}
