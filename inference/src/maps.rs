//! Class maps of an analysis, as Cloud-Optimized GeoTIFFs on the analysis grid:
//!
//! - `landcover_YYYYMMDD.tif` per date (`landcover_layerN.tif` for a dateless layer): the
//!   land-cover code of each clear farmland pixel (class index + 1; 0 = no data, not
//!   farmland, or not clear); class names in the band's `CLASS_NAMES` metadata.
//! - `season_kind.tif`: the season kind of each farmland pixel (codes of
//!   [`PixelKind`]: 0 none / not farmland, 1 cultivated, 2 insufficient_observations,
//!   3 abandonment, 4 tree_planting, 5 fishpond, 6 construction; in `CLASS_NAMES`).
//! - `baseline_landcover.tif` with a baseline period: the dominant land-cover code of each
//!   farmland pixel's clear baseline observations (0 = none).
//!
//! Tiles are written as the analysis produces them through tiling's [`CogWriter`] (a
//! staging tiled GTiff on disk, then GDAL's COG driver), so memory does not grow with the
//! scene: no date × scene plane is held. Tiles without farmland are not analysed and read
//! as 0 (nodata).

use crate::analysis::{MapSink, TileMaps};
use crate::error::{InferenceError, Result};
use crate::rules::PixelKind;
use gengdi_tiling::cog::{CogBand, CogSpec, CogWriter};
use gengdi_tiling::{DataType, SceneStack};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The names of the season-kind codes, indexed by code.
pub fn kind_names() -> Vec<String> {
    let mut names = vec![PixelKind::None.name().to_string()];
    for code in 1..=u8::MAX {
        let k = PixelKind::from_code(code);
        if k == PixelKind::None {
            break;
        }
        names.push(k.name().to_string());
    }
    names
}

/// The file name of date layer `i`.
pub fn landcover_file_name(date: Option<chrono::NaiveDate>, i: usize) -> String {
    match date {
        Some(d) => format!("landcover_{}.tif", d.format("%Y%m%d")),
        None => format!("landcover_layer{i}.tif"),
    }
}

/// COG writers for the maps of one analysis; a [`MapSink`].
pub struct ClassMaps {
    landcover: Vec<Mutex<CogWriter>>,
    kind: Mutex<CogWriter>,
    baseline: Option<Mutex<CogWriter>>,
}

fn lock_err<T>(_: T) -> InferenceError {
    InferenceError::Poisoned {
        what: "a class-map writer",
    }
}

impl ClassMaps {
    /// Start the maps of `stack` (one land-cover map per layer) in `dir` (created).
    pub fn create(
        dir: &Path,
        stack: &SceneStack,
        class_names: &[String],
        model_id: &str,
        with_baseline: bool,
    ) -> Result<ClassMaps> {
        std::fs::create_dir_all(dir).map_err(|e| InferenceError::Output {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let lc_names: Vec<String> = std::iter::once("nodata".to_string())
            .chain(class_names.iter().cloned())
            .collect();
        let spec = |band: CogBand| CogSpec {
            width: stack.grid.width,
            height: stack.grid.height,
            crs: stack.grid.crs.clone(),
            world_from_pixel: stack.grid.world_from_pixel,
            bands: vec![band],
            dtype: DataType::U8,
            nodata: Some(0.0),
        };
        let mut landcover = Vec::with_capacity(stack.layers.len());
        for (i, layer) in stack.layers.iter().enumerate() {
            let date = layer
                .date
                .map(|d| d.to_string())
                .unwrap_or_else(|| format!("layer {i}"));
            landcover.push(Mutex::new(CogWriter::create(
                dir.join(landcover_file_name(layer.date, i)),
                spec(CogBand::categorical(
                    format!(
                        "land cover {date} ({model_id}); 0 = no data, not farmland or not clear"
                    ),
                    lc_names.clone(),
                )),
            )?));
        }
        let kinds = kind_names();
        let kind = Mutex::new(CogWriter::create(
            dir.join("season_kind.tif"),
            spec(CogBand::categorical(
                format!(
                    "season kind; {}",
                    kinds
                        .iter()
                        .enumerate()
                        .map(|(i, k)| format!("{i} {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                kinds,
            )),
        )?);
        let baseline = if with_baseline {
            Some(Mutex::new(CogWriter::create(
                dir.join("baseline_landcover.tif"),
                spec(CogBand::categorical(
                    format!("dominant land cover of the baseline period ({model_id}); 0 = no clear observation or not farmland"),
                    lc_names,
                )),
            )?))
        } else {
            None
        };
        Ok(ClassMaps {
            landcover,
            kind,
            baseline,
        })
    }

    /// Turn every map into a COG; returns the paths written.
    pub fn finish(self) -> Result<Vec<PathBuf>> {
        let mut writers: Vec<Mutex<CogWriter>> = self.landcover;
        writers.push(self.kind);
        writers.extend(self.baseline);
        let mut paths = Vec::with_capacity(writers.len());
        for w in writers {
            let w = w.into_inner().map_err(lock_err)?;
            paths.push(w.path().to_path_buf());
            w.finish()?;
        }
        Ok(paths)
    }
}

impl MapSink for ClassMaps {
    fn write_tile(&self, maps: &TileMaps<'_>) -> Result<()> {
        for (w, plane) in self.landcover.iter().zip(maps.landcover) {
            w.lock()
                .map_err(lock_err)?
                .write_window::<u8>(0, &maps.window, plane.view())?;
        }
        self.kind.lock().map_err(lock_err)?.write_window::<u8>(
            0,
            &maps.window,
            maps.kind.view(),
        )?;
        if let (Some(w), Some(plane)) = (&self.baseline, maps.baseline) {
            w.lock()
                .map_err(lock_err)?
                .write_window::<u8>(0, &maps.window, plane.view())?;
        }
        Ok(())
    }
}
