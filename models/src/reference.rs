//! BENCHMARK REFERENCE ONLY — not a production path.
//!
//! The land-cover MLP forward written with plain `ndarray` matrix products (`.dot`), with the
//! weights copied out of the Burn network. It exists to measure Burn's overhead against the
//! simplest possible implementation and to check that both agree (tests: within 1e-4).
//! Production inference goes through [`crate::LandCoverModel`].

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::features::N_PIXEL_FEATURES;
use crate::{LandCoverModel, ModelError, Result};

/// The MLP as plain matrices: `h = relu(h · W + b)` per hidden layer, then `h · W + b`.
#[derive(Clone, Debug)]
pub struct NdarrayMlpReference {
    layers: Vec<(Array2<f32>, Array1<f32>)>,
}

fn linear_to_ndarray(linear: &burn::nn::Linear) -> Result<(Array2<f32>, Array1<f32>)> {
    let w = linear.weight.val();
    let [d_in, d_out] = w.dims();
    let wv = w
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
    let b = match &linear.bias {
        Some(b) => b
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| ModelError::Backend(format!("{e:?}")))?,
        None => vec![0.0; d_out],
    };
    let w = Array2::from_shape_vec((d_in, d_out), wv)
        .map_err(|e| ModelError::Backend(e.to_string()))?;
    Ok((w, Array1::from(b)))
}

impl NdarrayMlpReference {
    /// Copy the weights out of a loaded model.
    pub fn from_model(model: &LandCoverModel) -> Result<Self> {
        let net = model.net();
        let mut layers = Vec::new();
        for l in &net.hidden {
            layers.push(linear_to_ndarray(l)?);
        }
        layers.push(linear_to_ndarray(&net.output)?);
        Ok(Self { layers })
    }

    /// Logits of normalised features `[n, 14]`.
    pub fn logits(&self, features: ArrayView2<f32>) -> Array2<f32> {
        let mut h = features.to_owned();
        let last = self.layers.len().saturating_sub(1);
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.dot(w) + b;
            if i < last {
                h.mapv_inplace(|v| v.max(0.0));
            }
        }
        h
    }

    /// Class codes (index + 1) and max softmax probability of normalised features
    /// (`n × 14`, row-major), in parallel over chunks of `chunk_rows` rows.
    pub fn predict_features(
        &self,
        features: &[f32],
        chunk_rows: usize,
    ) -> Result<(Vec<u8>, Vec<f32>)> {
        let n = features.len() / N_PIXEL_FEATURES;
        let x = ArrayView2::from_shape((n, N_PIXEL_FEATURES), &features[..n * N_PIXEL_FEATURES])
            .map_err(|e| ModelError::Backend(e.to_string()))?;
        let chunk = chunk_rows.max(1);
        let parts: Vec<(Vec<u8>, Vec<f32>)> = (0..n.div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let rows = x.slice(s![c * chunk..((c + 1) * chunk).min(n), ..]);
                let logits = self.logits(rows);
                let mut codes = Vec::with_capacity(logits.nrows());
                let mut conf = Vec::with_capacity(logits.nrows());
                for row in logits.axis_iter(Axis(0)) {
                    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                    let arg = row.iter().position(|v| *v == max).unwrap_or(0);
                    codes.push(arg as u8 + 1);
                    conf.push(1.0 / sum);
                }
                (codes, conf)
            })
            .collect();
        let mut codes = Vec::with_capacity(n);
        let mut conf = Vec::with_capacity(n);
        for (c, p) in parts {
            codes.extend(c);
            conf.extend(p);
        }
        Ok((codes, conf))
    }
}
