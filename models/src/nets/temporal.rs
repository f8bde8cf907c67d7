//! The season networks (crop type, season cover): two 1D convolutions over monthly slots,
//! masked mean + max pooling over the valid slots, and a small MLP head. Any subset of months
//! may be valid. With `slot_head`, the head also sees every slot's masked features in place
//! (which month looked how), not only their pooled summary.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::{seeded_linear, uniform_tensor};
use crate::rng::SeededRng;

/// Architecture of [`CropTemporalNet`].
#[derive(Config, Debug, PartialEq)]
pub struct CropTemporalConfig {
    /// Input channels per slot (features + mask + month sin/cos).
    pub n_channels: usize,
    /// Number of monthly slots.
    pub n_slots: usize,
    /// Output classes.
    pub n_classes: usize,
    /// Channels of both convolutions.
    #[config(default = 32)]
    pub conv_channels: usize,
    /// Convolution kernel size (odd).
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Width of the hidden layer of the head.
    #[config(default = 32)]
    pub hidden: usize,
    /// Also feed the head every slot's masked convolution output, month by month (a linear
    /// layer from `conv_channels × n_slots` added to the pooled hidden layer). Absent in the
    /// cards of older models: off.
    #[config(default = "None")]
    pub slot_head: Option<bool>,
}

/// The crop-type network.
#[derive(Module, Debug)]
pub struct CropTemporalNet {
    /// First convolution.
    pub conv1: Conv1d,
    /// Second convolution.
    pub conv2: Conv1d,
    /// Head hidden layer.
    pub head: Linear,
    /// Output layer (logits).
    pub output: Linear,
    /// The per-slot input of the hidden layer (with `slot_head`).
    pub slots: Option<Linear>,
}

fn seeded_conv(
    rng: &mut SeededRng,
    c_in: usize,
    c_out: usize,
    k: usize,
    device: &Device,
) -> Conv1d {
    let pad = k / 2;
    let mut conv = Conv1dConfig::new(c_in, c_out, k)
        .with_padding(PaddingConfig1d::Explicit(pad, pad))
        .init(device);
    let fan_in = c_in * k;
    conv.weight = Param::from_tensor(uniform_tensor(rng, [c_out, c_in, k], fan_in, device));
    conv.bias = Some(Param::from_tensor(uniform_tensor(
        rng,
        [c_out],
        fan_in,
        device,
    )));
    conv
}

impl CropTemporalConfig {
    /// A network with weights drawn from `seed` on `device`.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> CropTemporalNet {
        let mut rng = SeededRng::stream(seed, "croptype-temporal-init");
        let k = self.kernel_size.max(1) | 1;
        CropTemporalNet {
            conv1: seeded_conv(&mut rng, self.n_channels, self.conv_channels, k, device),
            conv2: seeded_conv(&mut rng, self.conv_channels, self.conv_channels, k, device),
            head: seeded_linear(&mut rng, 2 * self.conv_channels, self.hidden, device),
            output: seeded_linear(&mut rng, self.hidden, self.n_classes, device),
            slots: self.slot_head.unwrap_or(false).then(|| {
                seeded_linear(
                    &mut rng,
                    self.conv_channels * self.n_slots,
                    self.hidden,
                    device,
                )
            }),
        }
    }
}

impl CropTemporalNet {
    /// Logits `[batch, n_classes]` of inputs `[batch, channels, slots]` with validity mask
    /// `[batch, 1, slots]` (1 = valid). Series with no valid slot get the logits of an all-zero
    /// pooled vector.
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<3>) -> Tensor<2> {
        let h = relu(self.conv1.forward(x));
        let h = relu(self.conv2.forward(h)); // [B, K, T], >= 0
        let [b, k, t] = h.dims();
        let hm = h * mask.clone(); // invalid slots -> 0
        let count = mask.sum_dim(2).clamp_min(1.0); // [B, 1, 1]
        let mean = hm.clone().sum_dim(2) / count; // [B, K, 1]
        let per_slot = self
            .slots
            .as_ref()
            .map(|slots| slots.forward(hm.clone().reshape([b, k * t])));
        let max = hm.max_dim(2); // relu output >= 0, so masked zeros never exceed a valid max
        let pooled = Tensor::cat(vec![mean, max], 1).reshape([b, 2 * k]);
        let hidden = match per_slot {
            Some(s) => self.head.forward(pooled) + s,
            None => self.head.forward(pooled),
        };
        self.output.forward(relu(hidden))
    }
}
