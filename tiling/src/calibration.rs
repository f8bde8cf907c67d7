//! Radiometric calibration of scenes delivered as DN (Gaofen GF-1 / GF-2 / GF-6): a
//! coefficients file turns DN into top-of-atmosphere reflectance.
//!
//! The file (TOML) lists, per satellite and camera, the absolute calibration coefficients the
//! China Centre for Resources Satellite Data and Application publishes each year and the
//! band solar irradiance:
//!
//! ```toml
//! [[sensor]]
//! satellite = "GF2"        # SatelliteID of the scene's XML
//! sensor = "PMS1"          # SensorID (a camera: PMS1, PMS2, WFV1 … WFV4)
//! gain = [0.1322, 0.1363, 0.1337, 0.1283]   # radiance = gain × DN + offset (W m⁻² sr⁻¹ µm⁻¹)
//! offset = [0.0, 0.0, 0.0, 0.0]             # optional, 0 by default
//! esun = [1944.0, 1834.0, 1557.0, 1119.0]   # band solar irradiance (W m⁻² µm⁻¹)
//! ```
//!
//! With the solar zenith angle θ of the scene's XML (`SolarZenith`, else 90° −
//! `SolarElevation`) and the Earth–Sun distance d (astronomical units) of its date:
//! `reflectance = π · (gain · DN + offset) · d² / (ESUN · cos θ)` — a scale and an offset
//! per band, which become the bands' [`crate::Radiometry`].

use crate::error::{Result, TilingError};
use crate::radiometry::{Radiometry, RadiometrySource};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A coefficients file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CalibrationFile {
    #[serde(skip)]
    pub path: PathBuf,
    pub sensor: Vec<SensorCalibration>,
}

/// The coefficients of one camera.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SensorCalibration {
    pub satellite: String,
    pub sensor: String,
    pub gain: Vec<f64>,
    #[serde(default)]
    pub offset: Vec<f64>,
    pub esun: Vec<f64>,
}

impl CalibrationFile {
    pub fn load(path: &Path) -> Result<CalibrationFile> {
        let text = std::fs::read_to_string(path).map_err(|e| TilingError::io(path, e))?;
        let mut file: CalibrationFile = toml::from_str(&text)
            .map_err(|e| TilingError::malformed(path, format!("not a calibration file: {e}")))?;
        file.path = path.to_path_buf();
        for s in &file.sensor {
            let n = s.gain.len();
            let bad = |why: String| {
                TilingError::malformed(path, format!("{} {}: {why}", s.satellite, s.sensor))
            };
            if n == 0 || s.esun.len() != n || !(s.offset.is_empty() || s.offset.len() == n) {
                return Err(bad(format!(
                    "gain, offset and esun must list one value per band ({} gains, {} offsets, {} esun)",
                    n,
                    s.offset.len(),
                    s.esun.len()
                )));
            }
            if s.gain.iter().chain(&s.offset).any(|v| !v.is_finite())
                || s.esun.iter().any(|v| !(v.is_finite() && *v > 0.0))
            {
                return Err(bad(
                    "every gain and offset must be a number, every esun a positive one".into(),
                ));
            }
        }
        Ok(file)
    }

    /// The entry of a satellite and camera (case-insensitive, `GF-2` = `GF2`).
    pub fn find(&self, satellite: &str, sensor: &str) -> Option<&SensorCalibration> {
        let norm = |s: &str| s.to_ascii_uppercase().replace(['-', '_', ' '], "");
        self.sensor
            .iter()
            .find(|s| norm(&s.satellite) == norm(satellite) && norm(&s.sensor) == norm(sensor))
    }
}

/// Earth–Sun distance in astronomical units on `date`.
pub fn earth_sun_distance(date: NaiveDate) -> f64 {
    let doy = date.ordinal() as f64;
    1.0 - 0.01672 * (0.9856 * (doy - 4.0)).to_radians().cos()
}

/// What a scene's XML says that calibration needs.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneGeometry {
    pub satellite: String,
    pub sensor: String,
    pub solar_zenith_deg: f64,
}

/// The calibration facts of the XML beside `path` (`scene.xml` for `scene.tiff`), if any.
pub fn scene_geometry(path: &Path) -> Option<SceneGeometry> {
    let sidecar = path.with_extension("xml");
    let bytes = crate::vsi::read_bytes(&sidecar, 4 << 20).ok()?;
    let els = crate::product::xml::elements(&String::from_utf8_lossy(&bytes)).ok()?;
    let text = |k: &str| crate::product::xml::first_text(&els, k).map(str::to_string);
    let number = |k: &str| text(k).and_then(|v| v.parse::<f64>().ok());
    let zenith = number("SolarZenith").or_else(|| number("SolarElevation").map(|e| 90.0 - e))?;
    Some(SceneGeometry {
        satellite: text("SatelliteID")?,
        sensor: text("SensorID")?,
        solar_zenith_deg: zenith,
    })
}

/// Per band, the radiometry of a scene of `count` bands by the coefficients of `file`: an
/// `Unknown` radiometry naming what is missing where the scene cannot be calibrated.
pub fn band_radiometry(
    file: &CalibrationFile,
    path: &Path,
    date: Option<NaiveDate>,
    count: usize,
) -> Vec<Radiometry> {
    let unknown = |reason: String| {
        vec![
            Radiometry {
                scale: 1.0,
                offset: 0.0,
                source: RadiometrySource::Unknown { reason },
            };
            count
        ]
    };
    let Some(geom) = scene_geometry(path) else {
        return unknown(format!(
            "{} needs the scene's XML ({}) with SatelliteID, SensorID and SolarZenith or SolarElevation",
            file.path.display(),
            path.with_extension("xml").display()
        ));
    };
    let Some(date) = date else {
        return unknown("calibration needs the acquisition date".into());
    };
    let Some(c) = file.find(&geom.satellite, &geom.sensor) else {
        return unknown(format!(
            "{} has no coefficients for {} {}",
            file.path.display(),
            geom.satellite,
            geom.sensor
        ));
    };
    if c.gain.len() != count {
        return unknown(format!(
            "{} lists {} bands for {} {}, the scene has {count}",
            file.path.display(),
            c.gain.len(),
            geom.satellite,
            geom.sensor
        ));
    }
    let cos_z = geom.solar_zenith_deg.to_radians().cos();
    if cos_z.is_nan() || cos_z <= 0.01 {
        return unknown(format!(
            "solar zenith {}° leaves no sunlight to calibrate by",
            geom.solar_zenith_deg
        ));
    }
    let d = earth_sun_distance(date);
    (0..count)
        .map(|b| {
            let k = std::f64::consts::PI * d * d / (c.esun[b] * cos_z);
            Radiometry {
                scale: c.gain[b] * k,
                offset: c.offset.get(b).copied().unwrap_or(0.0) * k,
                source: RadiometrySource::FileMetadata {
                    what: format!(
                        "{} ({} {}, top-of-atmosphere, solar zenith {}°)",
                        file.path.display(),
                        geom.satellite,
                        geom.sensor,
                        geom.solar_zenith_deg
                    ),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earth_is_nearest_the_sun_in_january() {
        let d =
            |m, day| earth_sun_distance(NaiveDate::from_ymd_opt(2020, m, day).unwrap_or_default());
        assert!((d(1, 4) - 0.98328).abs() < 1e-4);
        assert!((d(7, 4) - 1.0167).abs() < 1e-3);
    }
}
