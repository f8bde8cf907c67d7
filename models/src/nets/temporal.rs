//! The season networks (crop type, season cover): two 1D convolutions over monthly slots,
//! masked mean + max pooling over the valid slots, and a small MLP head. Any subset of months
//! may be valid. With `slot_head`, the head also sees every slot's masked features in place
//! (which month looked how), not only their pooled summary; with `stats_head`, each input
//! channel's mean, maximum, minimum and spread over the valid months.

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
    /// Also feed the head the statistics of every input channel over the valid slots: mean,
    /// maximum, minimum and standard deviation (the season's level, peak, trough and spread
    /// of each band and index, what a tree ensemble on season statistics sees), through a
    /// linear layer from `4 × n_channels` added to the hidden layer. Absent in the cards of
    /// older models: off.
    #[config(default = "None")]
    pub stats_head: Option<bool>,
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
    /// The channel statistics' input of the hidden layer (with `stats_head`).
    pub stats: Option<Linear>,
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
            stats: self
                .stats_head
                .unwrap_or(false)
                .then(|| seeded_linear(&mut rng, 4 * self.n_channels, self.hidden, device)),
        }
    }
}

impl CropTemporalNet {
    /// Logits `[batch, n_classes]` of inputs `[batch, channels, slots]` with validity mask
    /// `[batch, 1, slots]` (1 = valid). Series with no valid slot get the logits of an all-zero
    /// pooled vector.
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<3>) -> Tensor<2> {
        let stats = self
            .stats
            .as_ref()
            .map(|stats| stats.forward(channel_stats(x.clone(), mask.clone())));
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
        let mut hidden = self.head.forward(pooled);
        if let Some(s) = per_slot {
            hidden = hidden + s;
        }
        if let Some(s) = stats {
            hidden = hidden + s;
        }
        self.output.forward(relu(hidden))
    }
}

/// Per series and channel, over the valid slots of `mask` (`[batch, 1, slots]`): the mean,
/// maximum, minimum and standard deviation of `x` (`[batch, channels, slots]`), as
/// `[batch, 4 × channels]`. A series without a valid slot gets zeros.
pub fn channel_stats(x: Tensor<3>, mask: Tensor<3>) -> Tensor<2> {
    let [b, c, _] = x.dims();
    let count = mask.clone().sum_dim(2); // [B, 1, 1]
    let any = count.clone().clamp_max(1.0); // 1 with a valid slot, else 0
    let count = count.clamp_min(1.0);
    let xm = x.clone() * mask.clone();
    let mean = xm.clone().sum_dim(2) / count.clone();
    let var = (xm.clone() * xm).sum_dim(2) / count - mean.clone() * mean.clone();
    let std = var.clamp_min(0.0).sqrt();
    // Invalid slots pushed far below (for the maximum) or above (for the minimum) any value.
    let away = (mask.neg() + 1.0) * STATS_AWAY; // [B, 1, T]: 0 where valid
    let max = (x.clone() - away.clone()).max_dim(2) * any.clone();
    let min = (x + away).min_dim(2) * any;
    Tensor::cat(vec![mean, max, min, std], 1).reshape([b, 4 * c])
}

/// Far beyond any normalised feature: what an invalid slot is moved by before the maximum
/// and minimum.
const STATS_AWAY: f32 = 1.0e4;

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn channel_statistics_are_taken_over_the_valid_slots_only() {
        let device = crate::device::DeviceChoice::NdArray.device();
        // Two series, two channels, four slots; the second series has no valid slot.
        let x = Tensor::<3>::from_data(
            TensorData::new(
                vec![
                    1.0f32, 5.0, -2.0, 99.0, // series 0, channel 0 (slot 3 invalid)
                    0.0, 0.0, 4.0, -99.0, // series 0, channel 1
                    7.0, 7.0, 7.0, 7.0, // series 1 (no valid slot)
                    1.0, 2.0, 3.0, 4.0,
                ],
                [2, 2, 4],
            ),
            &device,
        );
        let mask = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [2, 1, 4]),
            &device,
        );
        let s: Vec<f32> = channel_stats(x, mask)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(s.len(), 2 * 8);
        // Series 0: means 4/3 and 4/3, maxima 5 and 4, minima -2 and 0, standard deviations
        // sqrt(30/3 - 16/9) and sqrt(16/3 - 16/9).
        let expect = [
            4.0 / 3.0,
            4.0 / 3.0,
            5.0,
            4.0,
            -2.0,
            0.0,
            (30.0f32 / 3.0 - 16.0 / 9.0).sqrt(),
            (16.0f32 / 3.0 - 16.0 / 9.0).sqrt(),
        ];
        for (got, want) in s[..8].iter().zip(expect) {
            assert!((got - want).abs() < 1e-5, "{s:?}");
        }
        assert_eq!(&s[8..], &[0.0; 8], "a series without a valid slot");
    }

    #[test]
    fn the_stats_head_is_off_in_older_cards_and_sized_from_the_channels_when_on() {
        let device = crate::device::DeviceChoice::NdArray.device();
        let plain = CropTemporalConfig::new(5, 4, 3);
        assert_eq!(plain.stats_head, None);
        assert!(plain.init_seeded(1, &device).stats.is_none());
        let with = plain.clone().with_stats_head(Some(true));
        let net = with.init_seeded(1, &device);
        let stats = net.stats.as_ref().unwrap();
        assert_eq!(stats.weight.dims(), [20, 32]);
        // An older card's architecture (no stats_head field) reads as off.
        let json = serde_json::to_string(&plain)
            .unwrap()
            .replace(",\"stats_head\":null", "");
        assert!(!json.contains("stats_head"));
        let old: CropTemporalConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(old.stats_head, None);
    }
}
