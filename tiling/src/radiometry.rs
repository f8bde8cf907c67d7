//! Radiometry: how a band's stored values become reflectance.
//!
//! The models and the season rules work on reflectance × 10 000 (the convention of
//! Sentinel-2 products before processing baseline 04.00, called "DN" in this code base).
//! Imagery as it is delivered follows other conventions: post-2022 Sentinel-2 adds an offset
//! of −1000 to every DN, Landsat Collection 2 Level-2 stores `reflectance = DN × 0.0000275 −
//! 0.2`, exports from other tools hold float reflectance in 0–1. Each band of a
//! [`crate::Scene`] therefore carries a [`Radiometry`] — `reflectance = stored × scale +
//! offset` — with where it came from, and the stack turns every value into the canonical
//! scale as it reads it ([`Radiometry::to_canonical`]). Nothing is assumed silently: the
//! source is reported by `gengdi info`, and a scene whose values fit no known convention is
//! [`RadiometrySource::Unknown`], which the analysis refuses to classify.

use serde::Serialize;
use std::fmt;

/// Reflectance × this is the scale the models work on.
pub const CANONICAL_SCALE: f64 = 10_000.0;

/// `reflectance = stored × scale + offset`, and where that came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Radiometry {
    pub scale: f64,
    pub offset: f64,
    pub source: RadiometrySource,
}

/// Where a band's radiometry came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RadiometrySource {
    /// A categorical band (Sentinel-2 SCL): its values are class codes, never scaled.
    Categorical,
    /// Not a known spectral band (no common name such as `red`): its values are passed on as
    /// they are stored.
    NotSpectral,
    /// Stated by the user (`--scale` / `--offset`).
    Given,
    /// Read from the product's metadata (Sentinel-2 quantification value and
    /// `BOA_ADD_OFFSET` / `RADIO_ADD_OFFSET`, Landsat's MTL).
    ProductMetadata { what: String },
    /// Read from the file: GDAL band scale / offset, `scale_factor` / `add_offset` or
    /// `REFLECTANCE_SCALE` metadata items.
    FileMetadata { what: String },
    /// Floating-point values that lie in 0–1.5: reflectance as it is.
    FloatReflectance { sampled_max: f64 },
    /// Values in the range of reflectance × 10 000, the usual integer convention.
    ReflectanceTimes10000 { why: String },
    /// Values that fit no known convention; such a band is not classified.
    Unknown { reason: String },
}

impl Radiometry {
    /// Reflectance × 10 000 stored as is.
    pub fn times_10000(why: impl Into<String>) -> Radiometry {
        Radiometry {
            scale: 1.0 / CANONICAL_SCALE,
            offset: 0.0,
            source: RadiometrySource::ReflectanceTimes10000 { why: why.into() },
        }
    }

    /// Class codes (no scaling).
    pub fn categorical() -> Radiometry {
        Radiometry {
            scale: 1.0,
            offset: 0.0,
            source: RadiometrySource::Categorical,
        }
    }

    /// `(gain, bias)` such that `stored × gain + bias` is reflectance × 10 000. A band whose
    /// values are already on that scale gets exactly `(1, 0)`; a categorical band too.
    pub fn to_canonical(&self) -> (f32, f32) {
        if matches!(
            self.source,
            RadiometrySource::Categorical | RadiometrySource::NotSpectral
        ) {
            return (1.0, 0.0);
        }
        (
            (self.scale * CANONICAL_SCALE) as f32,
            (self.offset * CANONICAL_SCALE) as f32,
        )
    }

    /// Whether the band can be turned into reflectance.
    pub fn is_known(&self) -> bool {
        !matches!(self.source, RadiometrySource::Unknown { .. })
    }
}

impl fmt::Display for Radiometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let formula = |f: &mut fmt::Formatter<'_>| {
            if self.offset == 0.0 {
                write!(f, "reflectance = value × {}", self.scale)
            } else {
                write!(
                    f,
                    "reflectance = value × {} {} {}",
                    self.scale,
                    if self.offset < 0.0 { "−" } else { "+" },
                    self.offset.abs()
                )
            }
        };
        match &self.source {
            RadiometrySource::Categorical => f.write_str("class codes (not scaled)"),
            RadiometrySource::NotSpectral => {
                f.write_str("as stored (not a known spectral band, so not read as reflectance)")
            }
            RadiometrySource::Given => {
                formula(f)?;
                f.write_str(" (given)")
            }
            RadiometrySource::ProductMetadata { what }
            | RadiometrySource::FileMetadata { what } => {
                formula(f)?;
                write!(f, " (from {what})")
            }
            RadiometrySource::FloatReflectance { sampled_max } => {
                formula(f)?;
                write!(
                    f,
                    " (assumed: floating-point values up to {sampled_max:.3}, read as reflectance 0–1)"
                )
            }
            RadiometrySource::ReflectanceTimes10000 { why } => {
                formula(f)?;
                write!(f, " (assumed: {why})")
            }
            RadiometrySource::Unknown { reason } => {
                write!(f, "unknown: {reason}; state it with --scale / --offset")
            }
        }
    }
}

/// The largest floating-point value a band of reflectance in 0–1 plausibly holds (bright
/// snow, clouds and specular glint reach a little above 1).
pub const MAX_FLOAT_REFLECTANCE: f64 = 1.6;
/// The largest value reflectance × 10 000 plausibly holds (saturated pixels of Sentinel-2 are
/// 65 535 and are rare; a sample whose 98th percentile exceeds this is something else).
pub const MAX_DN_REFLECTANCE: f64 = 20_000.0;

/// The radiometry of floating-point values from a sample of them (finite, nodata removed).
pub fn from_float_sample(values: &mut [f64]) -> Radiometry {
    if values.is_empty() {
        return Radiometry {
            scale: 1.0,
            offset: 0.0,
            source: RadiometrySource::Unknown {
                reason: "floating-point values, and the sampled windows hold no valid pixel to tell reflectance 0–1 from reflectance × 10000".into(),
            },
        };
    }
    values.sort_by(f64::total_cmp);
    let max = values[values.len() - 1];
    let p98 = values[((values.len() - 1) as f64 * 0.98).round() as usize];
    if p98 <= MAX_FLOAT_REFLECTANCE && values[0] >= -0.5 {
        Radiometry {
            scale: 1.0,
            offset: 0.0,
            source: RadiometrySource::FloatReflectance { sampled_max: max },
        }
    } else if p98 <= MAX_DN_REFLECTANCE && values[0] >= -2000.0 {
        Radiometry::times_10000(format!(
            "floating-point values up to {max:.0}, in the range of reflectance × 10000"
        ))
    } else {
        Radiometry {
            scale: 1.0,
            offset: 0.0,
            source: RadiometrySource::Unknown {
                reason: format!(
                    "floating-point values from {:.4} to {max:.4} (98th percentile {p98:.4}) fit neither reflectance 0–1 nor reflectance × 10000",
                    values[0]
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_gain_and_bias_are_exact_for_the_sentinel2_conventions() {
        let pre_2022 = Radiometry::times_10000("x");
        assert_eq!(pre_2022.to_canonical(), (1.0, 0.0));
        let post_2022 = Radiometry {
            scale: 1.0 / 10_000.0,
            offset: -1000.0 / 10_000.0,
            source: RadiometrySource::Given,
        };
        assert_eq!(post_2022.to_canonical(), (1.0, -1000.0));
        let (g, b) = post_2022.to_canonical();
        assert_eq!(1234.0 * g + b, 234.0);
        let landsat = Radiometry {
            scale: 0.0000275,
            offset: -0.2,
            source: RadiometrySource::Given,
        };
        let (g, b) = landsat.to_canonical();
        // DN 10 000 → 0.075 reflectance → 750.
        assert!((10_000.0 * g + b - 750.0).abs() < 1e-3);
        assert_eq!(Radiometry::categorical().to_canonical(), (1.0, 0.0));
    }

    #[test]
    fn float_samples_are_told_apart_by_their_range() {
        let mut refl: Vec<f64> = (0..100).map(|i| i as f64 / 200.0).collect();
        assert!(matches!(
            from_float_sample(&mut refl).source,
            RadiometrySource::FloatReflectance { .. }
        ));
        let mut dn: Vec<f64> = (0..100).map(|i| 100.0 + i as f64 * 40.0).collect();
        let r = from_float_sample(&mut dn);
        assert_eq!(r.to_canonical(), (1.0, 0.0));
        let mut kelvin: Vec<f64> = (0..100).map(|i| 40_000.0 + i as f64).collect();
        assert!(!from_float_sample(&mut kelvin).is_known());
        assert!(!from_float_sample(&mut []).is_known());
    }
}
