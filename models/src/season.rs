//! One season of observations → fixed monthly slots with a validity mask, the input of the
//! crop-type network. Any number of dates is accepted: dates falling in the same month are
//! averaged, months without a clear date are masked.

use burn::tensor::{Device, Tensor, TensorData};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::features::{pixel_features, Normalisation, N_BANDS, N_PIXEL_FEATURES};
use crate::samples::Observation;

/// Channels per slot: the normalised pixel features, then the validity mask, then the slot's
/// month as sin/cos (the network pools over time, so it needs to know when a slot is).
pub const N_SERIES_CHANNELS: usize = N_PIXEL_FEATURES + 3;

/// The season window: `n_slots` calendar months starting at `start_month` of the season year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeasonWindow {
    /// First month (1 = January).
    pub start_month: u32,
    /// Number of monthly slots.
    pub n_slots: usize,
}

impl Default for SeasonWindow {
    fn default() -> Self {
        Self {
            start_month: 1,
            n_slots: 12,
        }
    }
}

impl SeasonWindow {
    /// The slot of `date` for the season `season_year`, or `None` outside the window.
    pub fn slot(&self, date: NaiveDate, season_year: i32) -> Option<usize> {
        let months =
            (date.year() - season_year) * 12 + date.month() as i32 - self.start_month as i32;
        (months >= 0 && (months as usize) < self.n_slots).then_some(months as usize)
    }

    /// Calendar month (1..=12) of a slot.
    pub fn month_of_slot(&self, slot: usize) -> u32 {
        ((self.start_month as usize - 1 + slot) % 12) as u32 + 1
    }
}

/// Monthly composites: the mean DN of the observations in each slot, and which slots have one.
pub fn monthly_composite(
    observations: &[Observation],
    season_year: i32,
    window: &SeasonWindow,
) -> (Vec<[f32; N_BANDS]>, Vec<bool>) {
    let mut sum = vec![[0f64; N_BANDS]; window.n_slots];
    let mut count = vec![0u32; window.n_slots];
    for o in observations {
        if let Some(s) = window.slot(o.date, season_year) {
            for (acc, v) in sum[s].iter_mut().zip(&o.dn) {
                *acc += f64::from(*v);
            }
            count[s] += 1;
        }
    }
    let comp = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| {
            s.map(|v| {
                if c > 0 {
                    (v / f64::from(c)) as f32
                } else {
                    0.0
                }
            })
        })
        .collect();
    (comp, count.iter().map(|&c| c > 0).collect())
}

/// Raw pixel features of every valid slot, row-major `[slot][feature]` (for fitting the
/// normalisation); invalid slots are skipped.
pub fn valid_slot_features(composite: &[[f32; N_BANDS]], valid: &[bool]) -> Vec<f32> {
    composite
        .iter()
        .zip(valid)
        .filter(|(_, v)| **v)
        .flat_map(|(dn, _)| pixel_features(dn))
        .collect()
}

/// The network input of one series, channel-major `[channel][slot]`
/// (`N_SERIES_CHANNELS × n_slots`), and the mask `[slot]` as 0/1.
pub fn series_channels(
    composite: &[[f32; N_BANDS]],
    valid: &[bool],
    norm: &Normalisation,
    window: &SeasonWindow,
) -> (Vec<f32>, Vec<f32>) {
    let t = window.n_slots;
    let mut x = vec![0f32; N_SERIES_CHANNELS * t];
    let mut mask = vec![0f32; t];
    for s in 0..t.min(composite.len()).min(valid.len()) {
        let month = window.month_of_slot(s) as f32;
        let angle = std::f32::consts::TAU * (month - 0.5) / 12.0;
        x[(N_PIXEL_FEATURES + 1) * t + s] = angle.sin();
        x[(N_PIXEL_FEATURES + 2) * t + s] = angle.cos();
        if valid[s] {
            let mut f = pixel_features(&composite[s]);
            norm.apply(&mut f);
            for (c, v) in f.iter().enumerate() {
                x[c * t + s] = *v;
            }
            x[N_PIXEL_FEATURES * t + s] = 1.0;
            mask[s] = 1.0;
        }
    }
    (x, mask)
}

/// Stack prepared inputs into the network tensors `[n, C, T]` and `[n, 1, T]`.
pub(crate) fn series_tensors(
    inputs: &[(Vec<f32>, Vec<f32>)],
    n_slots: usize,
    device: &Device,
) -> (Tensor<3>, Tensor<3>) {
    let n = inputs.len();
    let mut x = Vec::with_capacity(n * N_SERIES_CHANNELS * n_slots);
    let mut m = Vec::with_capacity(n * n_slots);
    for (xi, mi) in inputs {
        x.extend_from_slice(xi);
        m.extend_from_slice(mi);
    }
    (
        Tensor::<3>::from_data(TensorData::new(x, [n, N_SERIES_CHANNELS, n_slots]), device),
        Tensor::<3>::from_data(TensorData::new(m, [n, 1, n_slots]), device),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(y: i32, m: u32, d: u32, v: f32) -> Observation {
        Observation {
            date: NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default(),
            dn: [v; N_BANDS],
        }
    }

    #[test]
    fn dates_fall_into_calendar_month_slots_and_are_averaged() {
        let w = SeasonWindow::default();
        let o = vec![
            obs(2022, 12, 20, 1.0), // previous year: outside
            obs(2023, 1, 1, 100.0),
            obs(2023, 1, 21, 300.0),
            obs(2023, 6, 11, 50.0),
            obs(2024, 1, 1, 9.0), // next year: outside
        ];
        let (comp, valid) = monthly_composite(&o, 2023, &w);
        assert_eq!(valid.iter().filter(|v| **v).count(), 2);
        assert!(valid[0] && valid[5]);
        assert_eq!(comp[0][0], 200.0);
        assert_eq!(comp[5][3], 50.0);
        assert_eq!(
            w.slot(
                NaiveDate::from_ymd_opt(2023, 12, 31).unwrap_or_default(),
                2023
            ),
            Some(11)
        );
    }

    #[test]
    fn invalid_slots_have_zero_features_and_zero_mask() {
        let w = SeasonWindow::default();
        let (comp, valid) = monthly_composite(&[obs(2023, 3, 3, 1000.0)], 2023, &w);
        let norm = Normalisation {
            features: vec![],
            means: vec![0.0; N_PIXEL_FEATURES],
            stds: vec![1.0; N_PIXEL_FEATURES],
        };
        let (x, mask) = series_channels(&comp, &valid, &norm, &w);
        assert_eq!(mask.iter().sum::<f32>(), 1.0);
        assert_eq!(mask[2], 1.0);
        for c in 0..=N_PIXEL_FEATURES {
            for s in 0..12 {
                if s != 2 {
                    assert_eq!(x[c * 12 + s], 0.0);
                }
            }
        }
        assert!((x[2] - 0.1).abs() < 1e-6); // B02 reflectance (channel 0, slot 2)
        assert_eq!(x[N_PIXEL_FEATURES * 12 + 2], 1.0);
    }
}
