//! A parcel's evidence time series: per date, its land-cover class fractions and the
//! spectral indices of its mean clear reflectance.

use super::accumulate::{DateAcc, Q};
use serde::Serialize;

/// One date of a parcel's evidence (compact: one of these per parcel and date is kept).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DateEvidence {
    /// Fraction of the clear pixels in each land-cover class, in the order of
    /// [`AnalysisResult::class_names`](super::AnalysisResult::class_names).
    pub class_fractions: Vec<f32>,
    /// Indices of the parcel's mean clear reflectance (None when the land-cover model does not
    /// read the bands they need).
    pub ndvi: Option<f32>,
    pub ndwi: Option<f32>,
    pub mndwi: Option<f32>,
    pub bsi: Option<f32>,
    pub ndbi: Option<f32>,
}

/// Normalised difference, None when both are 0.
fn nd(a: f64, b: f64) -> Option<f32> {
    (a + b != 0.0).then(|| ((a - b) / (a + b)) as f32)
}

pub(super) fn date_evidence(d: &DateAcc, bands: &[String]) -> Option<DateEvidence> {
    if d.clear == 0 {
        return None;
    }
    let n = d.clear as f64;
    let mean = |names: &[&str]| {
        bands
            .iter()
            .position(|b| names.iter().any(|n| b.eq_ignore_ascii_case(n)))
            .map(|i| d.clear_band_sums[i] as f64 / Q / n)
    };
    let (blue, green, red) = (
        mean(&["B02", "blue"]),
        mean(&["B03", "green"]),
        mean(&["B04", "red"]),
    );
    let (nir, swir) = (mean(&["B08", "nir"]), mean(&["B11", "swir16"]));
    Some(DateEvidence {
        class_fractions: d
            .class_counts
            .iter()
            .skip(1)
            .map(|c| (*c as f64 / n) as f32)
            .collect(),
        ndvi: nir.zip(red).and_then(|(n, r)| nd(n, r)),
        ndwi: green.zip(nir).and_then(|(g, n)| nd(g, n)),
        mndwi: green.zip(swir).and_then(|(g, s)| nd(g, s)),
        bsi: swir
            .zip(red)
            .zip(nir.zip(blue))
            .and_then(|((s, r), (n, b))| nd(s + r, n + b)),
        ndbi: swir.zip(nir).and_then(|(s, n)| nd(s, n)),
    })
}
