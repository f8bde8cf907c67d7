//! Imagery as it is delivered: a whole product (a Sentinel-2 `.SAFE` folder, its `.zip` or
//! its `MTD_MSI*.xml`; a Landsat Collection 2 Level-2 product) opened as the scenes of its
//! band files, each with its date, band name, nodata and radiometry taken from the
//! product's metadata — never assumed.
//!
//! [`open_scenes`] is the one entry: a path that is a product gives its band files' scenes,
//! any other path gives the one scene of that raster file.

pub mod landsat;
pub mod sentinel2;
pub(crate) mod xml;

use crate::error::Result;
use crate::scene::{Scene, SceneOptions};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a product's metadata says, as `gengdi info` reports it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProductInfo {
    /// `sentinel2_safe` or `landsat_c2`.
    pub format: &'static str,
    /// The path as the user gave it.
    pub path: PathBuf,
    /// The metadata file read.
    pub metadata_file: PathBuf,
    /// `L1C`, `L2A` (`L2Ap` for ESA's 2017 pilot products), `L2SP` / `L2SR` for Landsat.
    pub level: String,
    /// Whether the values are surface (bottom-of-atmosphere) reflectance.
    pub surface_reflectance: bool,
    /// Sentinel-2 processing baseline (`05.09`), Landsat collection number.
    pub processing_baseline: Option<String>,
    pub spacecraft: Option<String>,
    /// MGRS tile (`T34UCF`) or Landsat path/row (`129033`).
    pub tile_id: Option<String>,
    pub date: Option<NaiveDate>,
    /// Sentinel-2 quantification value (reflectance = (DN + offset) / quantification).
    pub quantification: Option<f64>,
    /// Additive offsets in DN per band (Sentinel-2 baseline 04.00 and later: −1000).
    pub offsets: BTreeMap<String, f64>,
    /// Band name → the file read for it.
    pub bands: BTreeMap<String, PathBuf>,
    /// Files the metadata lists for a band but the product lacks.
    pub missing: Vec<String>,
}

impl ProductInfo {
    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} {}{}",
            match self.format {
                "sentinel2_safe" => "Sentinel-2",
                "landsat_c2" => "Landsat Collection 2",
                other => other,
            },
            self.level,
            if self.surface_reflectance {
                " (surface reflectance)"
            } else {
                " (top-of-atmosphere)"
            }
        );
        if let Some(b) = &self.processing_baseline {
            s.push_str(&format!(", processing baseline {b}"));
        }
        if let Some(t) = &self.tile_id {
            s.push_str(&format!(", tile {t}"));
        }
        if let Some(d) = self.date {
            s.push_str(&format!(", {d}"));
        }
        if let Some(q) = self.quantification {
            s.push_str(&format!(", quantification {q}"));
        }
        let offsets: Vec<f64> = self.offsets.values().copied().collect();
        if let Some(first) = offsets.first() {
            if offsets.iter().all(|o| o == first) {
                s.push_str(&format!(", offset {first} on every band"));
            } else {
                s.push_str(", offsets per band");
            }
        } else if self.format == "sentinel2_safe" {
            s.push_str(", no offset");
        }
        s
    }
}

/// The scenes a path stands for: the band files of a product (Sentinel-2 SAFE folder, zip
/// or metadata XML; Landsat Collection 2 MTL or folder), else the one raster file.
pub fn open_scenes(path: &Path, opts: &SceneOptions) -> Result<Vec<Scene>> {
    if let Some(scenes) = sentinel2::open_if_product(path, opts)? {
        return Ok(scenes);
    }
    if let Some(scenes) = landsat::open_if_product(path, opts)? {
        return Ok(scenes);
    }
    Ok(vec![Scene::open_with(path, opts)?])
}

/// Whether `path` is a delivered product gengdi opens as a whole (so a directory holding one
/// is not expanded file by file).
pub fn is_product(path: &Path) -> bool {
    sentinel2::find_metadata(path).ok().flatten().is_some()
        || landsat::find_metadata(path).ok().flatten().is_some()
}
