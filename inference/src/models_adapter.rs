//! The trained Burn models behind the analysis's classifier interfaces.

use crate::analysis::{PixelClassifier, SeasonClassifier};
use chrono::{Datelike, NaiveDate};
use gengdi_models::features::N_BANDS;
use gengdi_models::model::SeasonSeries;
use gengdi_models::samples::Observation;
use gengdi_models::{LandCoverModel, ModelError, SeriesModel};
use ndarray::{Array2, ArrayView2, ArrayView3};

/// The land-cover model as a [`PixelClassifier`].
#[derive(Debug)]
pub struct LandCoverAdapter(pub LandCoverModel);

impl PixelClassifier for LandCoverAdapter {
    fn id(&self) -> String {
        self.0.card().id.clone()
    }
    fn bands(&self) -> Vec<String> {
        self.0.card().input.bands.clone()
    }
    fn class_names(&self) -> Vec<String> {
        self.0
            .card()
            .class_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    fn classify(
        &self,
        band_names: &[&str],
        dn: ArrayView3<f32>,
        valid: ArrayView2<bool>,
    ) -> Result<(Array2<u8>, Array2<f32>), ModelError> {
        self.0
            .classify_image(band_names, dn, valid)
            .map(|m| (m.codes, m.confidence))
    }
}

/// The crop-type model as a [`SeasonClassifier`].
#[derive(Debug)]
pub struct SeriesAdapter(pub SeriesModel);

impl SeasonClassifier for SeriesAdapter {
    fn id(&self) -> String {
        self.0.card().id.clone()
    }
    fn bands(&self) -> Vec<String> {
        self.0.card().input.bands.clone()
    }
    fn class_names(&self) -> Vec<String> {
        self.0
            .card()
            .class_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    fn classify(
        &self,
        series: &[Vec<(NaiveDate, Vec<f32>)>],
    ) -> Result<Vec<(u8, f32)>, ModelError> {
        let window = self.0.window();
        let mut prepared = Vec::with_capacity(series.len());
        for obs in series {
            let mut observations = Vec::with_capacity(obs.len());
            for (date, dn) in obs {
                let dn: [f32; N_BANDS] =
                    dn.as_slice()
                        .try_into()
                        .map_err(|_| ModelError::ShapeMismatch {
                            what: "a season series observation".into(),
                            expected: format!("{N_BANDS} bands"),
                            got: format!("{} bands", dn.len()),
                        })?;
                observations.push(Observation { date: *date, dn });
            }
            // The season year: the year of the window's first month that holds the first date.
            let first = obs.first().map(|(d, _)| *d);
            let season_year = first
                .map(|d| {
                    if d.month() >= window.start_month {
                        d.year()
                    } else {
                        d.year() - 1
                    }
                })
                .unwrap_or(0);
            prepared.push(SeasonSeries {
                season_year,
                observations,
            });
        }
        let c = self.0.classify_series(&prepared)?;
        Ok(c.codes
            .iter()
            .copied()
            .zip(c.confidence.iter().copied())
            .collect())
    }
}
