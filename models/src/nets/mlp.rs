//! The per-pixel land-cover MLP: features → (Linear → ReLU)* → Linear → class logits.

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::seeded_linear;
use crate::rng::SeededRng;

/// Architecture of [`LandCoverMlp`].
#[derive(Config, Debug, PartialEq)]
pub struct LandCoverMlpConfig {
    /// Input features (14: 9 bands + 5 indices).
    pub n_features: usize,
    /// Output classes.
    pub n_classes: usize,
    /// Hidden layer widths.
    #[config(default = "vec![64, 64]")]
    pub hidden: Vec<usize>,
}

/// The land-cover network.
#[derive(Module, Debug)]
pub struct LandCoverMlp {
    /// Hidden layers, each followed by ReLU.
    pub hidden: Vec<Linear>,
    /// Output layer (logits).
    pub output: Linear,
}

impl LandCoverMlpConfig {
    /// A network with weights drawn from `seed` on `device`.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> LandCoverMlp {
        let mut rng = SeededRng::stream(seed, "landcover-mlp-init");
        let mut d_in = self.n_features;
        let mut hidden = Vec::new();
        for &width in &self.hidden {
            hidden.push(seeded_linear(&mut rng, d_in, width, device));
            d_in = width;
        }
        let output = seeded_linear(&mut rng, d_in, self.n_classes, device);
        LandCoverMlp { hidden, output }
    }
}

impl LandCoverMlp {
    /// Logits `[batch, n_classes]` of normalised features `[batch, n_features]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = x;
        for layer in &self.hidden {
            h = relu(layer.forward(h));
        }
        self.output.forward(h)
    }
}
