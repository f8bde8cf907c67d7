//! The Burn networks and their architecture configs (`#[derive(Config)]`, saved in the card).

pub mod mlp;
pub mod temporal;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use crate::rng::SeededRng;

pub use mlp::{LandCoverMlp, LandCoverMlpConfig};
pub use temporal::{CropTemporalConfig, CropTemporalNet};

/// Uniform(−1/√fan_in, 1/√fan_in) values from the seeded generator (Burn's default Linear
/// scheme), so initialisation does not depend on the backend's global RNG.
pub(crate) fn uniform_tensor<const D: usize>(
    rng: &mut SeededRng,
    shape: [usize; D],
    fan_in: usize,
    device: &Device,
) -> Tensor<D> {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.uniform(-bound, bound)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A Linear layer (weight `[d_in, d_out]`) initialised from the seeded generator.
pub(crate) fn seeded_linear(
    rng: &mut SeededRng,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Linear {
    Linear {
        weight: Param::from_tensor(uniform_tensor(rng, [d_in, d_out], d_in, device)),
        bias: Some(Param::from_tensor(uniform_tensor(
            rng,
            [d_out],
            d_in,
            device,
        ))),
    }
}
