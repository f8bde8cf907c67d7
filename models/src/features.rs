//! Per-pixel features: 9 reflectance bands and 5 spectral indices (formulas in
//! `shared/design/domain.md`), their normalisation, and the brightness augmentation.

use serde::{Deserialize, Serialize};

/// The bands every model input must provide, in this order: those common to EuroSAT (L1C),
/// WorldCereal (L2A) and the Slovenia scene. B8A is absent in WorldCereal and B01/B09/B10 are
/// atmospheric bands, so they are not used.
pub const BANDS: [&str; 9] = [
    "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12",
];
/// Number of input bands.
pub const N_BANDS: usize = BANDS.len();
/// Index of each named band in [`BANDS`].
pub mod band {
    /// Blue.
    pub const B02: usize = 0;
    /// Green.
    pub const B03: usize = 1;
    /// Red.
    pub const B04: usize = 2;
    /// NIR.
    pub const B08: usize = 6;
    /// SWIR1.
    pub const B11: usize = 7;
}
/// Spectral indices appended to the bands.
pub const INDICES: [&str; 5] = ["NDVI", "NDWI", "MNDWI", "BSI", "NDBI"];
/// Number of per-pixel features (bands as reflectance, then indices).
pub const N_PIXEL_FEATURES: usize = N_BANDS + INDICES.len();
/// Digital numbers are reflectance × this.
pub const REFLECTANCE_SCALE: f32 = 10_000.0;
/// Sensors the shipped models were trained on.
pub const SENSORS: [&str; 2] = ["Sentinel-2 L1C (EuroSAT)", "Sentinel-2 L2A (WorldCereal)"];

/// Names of the per-pixel features, in order.
pub fn pixel_feature_names() -> Vec<String> {
    BANDS
        .iter()
        .map(|b| format!("{b}_reflectance"))
        .chain(INDICES.iter().map(|s| s.to_string()))
        .collect()
}

/// Normalised difference (a − b)/(a + b); 0 when a + b is 0 or not finite.
pub fn normalized_difference(a: f32, b: f32) -> f32 {
    let s = a + b;
    if s.abs() < 1e-9 || !s.is_finite() {
        0.0
    } else {
        ((a - b) / s).clamp(-1.0, 1.0)
    }
}

/// The five indices of one pixel from reflectances in [`BANDS`] order.
pub fn spectral_indices(reflectance: &[f32; N_BANDS]) -> [f32; 5] {
    let blue = reflectance[band::B02];
    let green = reflectance[band::B03];
    let red = reflectance[band::B04];
    let nir = reflectance[band::B08];
    let swir1 = reflectance[band::B11];
    [
        normalized_difference(nir, red),
        normalized_difference(green, nir),
        normalized_difference(green, swir1),
        normalized_difference(swir1 + red, nir + blue),
        normalized_difference(swir1, nir),
    ]
}

/// Index of NDVI, NDWI, MNDWI, BSI, NDBI in the array returned by [`spectral_indices`].
pub mod index {
    /// NDVI.
    pub const NDVI: usize = 0;
    /// NDWI.
    pub const NDWI: usize = 1;
    /// MNDWI.
    pub const MNDWI: usize = 2;
    /// BSI.
    pub const BSI: usize = 3;
    /// NDBI.
    pub const NDBI: usize = 4;
}

/// Reflectances (DN / 10000) of one pixel.
pub fn reflectance(dn: &[f32; N_BANDS]) -> [f32; N_BANDS] {
    dn.map(|v| v / REFLECTANCE_SCALE)
}

/// The raw (not normalised) features of one pixel from DNs in [`BANDS`] order.
pub fn pixel_features(dn: &[f32; N_BANDS]) -> [f32; N_PIXEL_FEATURES] {
    let r = reflectance(dn);
    let idx = spectral_indices(&r);
    let mut out = [0.0; N_PIXEL_FEATURES];
    out[..N_BANDS].copy_from_slice(&r);
    out[N_BANDS..].copy_from_slice(&idx);
    out
}

/// Relative size of the additive offset applied to each band by [`augment_dn`]: strongest in
/// the blue (where top-of-atmosphere and surface reflectance differ most, Rayleigh scattering),
/// weakest in the SWIR.
pub const OFFSET_PROFILE: [f32; N_BANDS] = [1.0, 0.8, 0.6, 0.5, 0.4, 0.4, 0.35, 0.2, 0.15];

/// Brightness/offset augmentation: `dn × gain + offset × 10000 × OFFSET_PROFILE[band]`, floored
/// at 1 DN. Makes a model trained on L1C and L2A robust to the difference between them.
pub fn augment_dn(dn: &[f32; N_BANDS], gain: f32, offset: f32) -> [f32; N_BANDS] {
    let mut out = [0.0; N_BANDS];
    for i in 0..N_BANDS {
        out[i] = (dn[i] * gain + offset * REFLECTANCE_SCALE * OFFSET_PROFILE[i]).max(1.0);
    }
    out
}

/// Per-feature standardisation `(x − mean) / std`, fitted on training data, stored in the card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Feature names, in order.
    pub features: Vec<String>,
    /// Means.
    pub means: Vec<f32>,
    /// Standard deviations (floored at 1e-6).
    pub stds: Vec<f32>,
}

impl Normalisation {
    /// Fit on rows of `width` features (row-major). Uses f64 accumulation.
    pub fn fit(features: Vec<String>, rows: &[f32], width: usize) -> Self {
        let n = rows.len().checked_div(width).unwrap_or(0);
        let mut sum = vec![0f64; width];
        let mut sq = vec![0f64; width];
        for row in rows.chunks_exact(width.max(1)) {
            for (j, &v) in row.iter().enumerate() {
                sum[j] += f64::from(v);
                sq[j] += f64::from(v) * f64::from(v);
            }
        }
        let nf = n.max(1) as f64;
        let means: Vec<f32> = sum.iter().map(|s| (s / nf) as f32).collect();
        let stds = sum
            .iter()
            .zip(&sq)
            .map(|(s, q)| {
                let m = s / nf;
                ((q / nf - m * m).max(0.0).sqrt() as f32).max(1e-6)
            })
            .collect();
        Self {
            features,
            means,
            stds,
        }
    }

    /// Number of features.
    pub fn width(&self) -> usize {
        self.means.len()
    }

    /// Standardise one row in place.
    pub fn apply(&self, row: &mut [f32]) {
        for ((v, m), s) in row.iter_mut().zip(&self.means).zip(&self.stds) {
            *v = (*v - m) / s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn indices_of_a_known_pixel_match_hand_computed_values() {
        // blue .05, green .08, red .04, NIR .40, SWIR1 .20 (red edge and SWIR2 do not enter).
        let dn = [
            500.0, 800.0, 400.0, 900.0, 2000.0, 3000.0, 4000.0, 2000.0, 1000.0,
        ];
        let f = pixel_features(&dn);
        assert!(close(f[0], 0.05) && close(f[6], 0.40) && close(f[8], 0.10));
        // NDVI = (0.40 − 0.04)/(0.44) = 0.818181..
        assert!(close(f[N_BANDS + index::NDVI], 0.36 / 0.44));
        // NDWI = (0.08 − 0.40)/0.48 = −0.6666..
        assert!(close(f[N_BANDS + index::NDWI], -0.32 / 0.48));
        // MNDWI = (0.08 − 0.20)/0.28
        assert!(close(f[N_BANDS + index::MNDWI], -0.12 / 0.28));
        // BSI = ((0.20 + 0.04) − (0.40 + 0.05)) / (0.24 + 0.45) = −0.21/0.69
        assert!(close(f[N_BANDS + index::BSI], -0.21 / 0.69));
        // NDBI = (0.20 − 0.40)/0.60
        assert!(close(f[N_BANDS + index::NDBI], -0.2 / 0.6));
    }

    #[test]
    fn zero_pixel_has_zero_indices_not_nan() {
        let f = pixel_features(&[0.0; N_BANDS]);
        assert!(f.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn normalisation_of_known_rows_has_exact_mean_and_std() {
        let rows = [1.0, 10.0, 3.0, 10.0, 5.0, 10.0];
        let n = Normalisation::fit(vec!["a".into(), "b".into()], &rows, 2);
        assert!(close(n.means[0], 3.0) && close(n.means[1], 10.0));
        assert!(close(n.stds[0], (8.0f32 / 3.0).sqrt()));
        assert!(close(n.stds[1], 1e-6));
        let mut row = [5.0, 10.0];
        n.apply(&mut row);
        assert!(close(row[0], 2.0 / (8.0f32 / 3.0).sqrt()) && close(row[1], 0.0));
    }

    #[test]
    fn augmentation_with_unit_gain_and_zero_offset_is_identity() {
        let dn = [
            500.0, 800.0, 400.0, 900.0, 2000.0, 3000.0, 4000.0, 2000.0, 1000.0,
        ];
        assert_eq!(augment_dn(&dn, 1.0, 0.0), dn);
        let a = augment_dn(&dn, 1.1, 0.01);
        assert!(close(a[0], 500.0 * 1.1 + 100.0));
        assert!(close(a[8], 1000.0 * 1.1 + 15.0));
    }
}
