//! Where the bands the analysis reads sit in a stack, and which pixels of a date are a
//! clear view of farmland.

use crate::error::{InferenceError, Result};
use crate::rules::RulesConfig;
use gengdi_tiling::SceneStack;
use ndarray::{Array2, ArrayView3};

/// Where the bands the analysis reads sit in a stack.
pub(super) struct StackBands {
    /// The land-cover model's bands, in the model's order.
    pub model: Vec<usize>,
    pub red: usize,
    pub nir: usize,
    blue: Option<usize>,
    green: Option<usize>,
    swir: Option<usize>,
    mask: Option<CloudMask>,
}

/// The band that says which pixels are clear.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CloudMask {
    /// Sentinel-2 scene classification: clear unless its class is in `scl_not_clear`.
    Scl(usize),
    /// Landsat Collection 2 `QA_PIXEL`: clear unless a fill, cloud, shadow, cirrus or snow
    /// bit is set.
    QaPixel(usize),
}

impl CloudMask {
    /// Whether the mask value `v` of a pixel says it is clear.
    fn is_clear(self, v: f32, rules: &RulesConfig) -> bool {
        v.is_finite()
            && match self {
                CloudMask::Scl(_) => rules.scl_clear(v as u8),
                CloudMask::QaPixel(_) => {
                    gengdi_tiling::product::landsat::qa_pixel_is_clear(v as u16)
                }
            }
    }

    fn band(self) -> usize {
        match self {
            CloudMask::Scl(b) | CloudMask::QaPixel(b) => b,
        }
    }
}

impl StackBands {
    pub fn of(stack: &SceneStack, model_bands: &[String], what: &str) -> Result<StackBands> {
        let model: Vec<usize> = model_bands
            .iter()
            .map(|b| {
                stack
                    .band_names
                    .iter()
                    .position(|s| s.eq_ignore_ascii_case(b))
                    .ok_or_else(|| InferenceError::Config {
                        what: what.into(),
                        reason: format!(
                            "the land-cover model needs band {b}; the stack has {}",
                            stack.band_names.join(", ")
                        ),
                    })
            })
            .collect::<Result<_>>()?;
        let (Some(red), Some(nir)) = (
            band_pos(stack, &["B04", "red"]),
            band_pos(stack, &["B08", "nir"]),
        ) else {
            return Err(InferenceError::Config {
                what: what.into(),
                reason: "the rules need red (B04) and near-infrared (B08) bands".into(),
            });
        };
        Ok(StackBands {
            model,
            red,
            nir,
            blue: band_pos(stack, &["B02", "blue"]),
            green: band_pos(stack, &["B03", "green"]),
            swir: band_pos(stack, &["B11", "swir16"]),
            mask: cloud_mask(stack),
        })
    }

    /// Clear farmland pixels of one date's `layer` (bands × rows × cols): farmland, model
    /// bands valid, and clear by SCL (or the spectral test without SCL).
    pub fn clear(
        &self,
        layer: &ArrayView3<f32>,
        labels: &Array2<u32>,
        rules: &RulesConfig,
    ) -> Array2<bool> {
        Array2::from_shape_fn(labels.dim(), |(r, c)| {
            if labels[[r, c]] == 0 {
                return false;
            }
            if self.model.iter().any(|&b| !layer[[b, r, c]].is_finite()) {
                return false;
            }
            match self.mask {
                Some(m) => m.is_clear(layer[[m.band(), r, c]], rules),
                None => {
                    let refl = |b: usize| layer[[b, r, c]] / 10000.0;
                    rules.spectral_clear(
                        self.blue.map(refl),
                        refl(self.nir),
                        self.green.zip(self.swir).map(|(g, s)| (refl(g), refl(s))),
                    )
                }
            }
        })
    }
}

/// The stack band that masks clouds: the Sentinel-2 SCL, else Landsat's `QA_PIXEL`.
fn cloud_mask(stack: &SceneStack) -> Option<CloudMask> {
    let find = |name: &str| {
        stack
            .band_names
            .iter()
            .position(|b| b.eq_ignore_ascii_case(name))
    };
    find("SCL")
        .map(CloudMask::Scl)
        .or_else(|| find("QA_PIXEL").map(CloudMask::QaPixel))
}

fn band_pos(stack: &SceneStack, names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| {
        stack
            .band_names
            .iter()
            .position(|b| b.eq_ignore_ascii_case(n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cloud_mask_reads_scl_classes_and_landsat_qa_bits() {
        let rules = RulesConfig::default();
        let scl = CloudMask::Scl(9);
        assert!(scl.is_clear(4.0, &rules)); // vegetation
        assert!(scl.is_clear(6.0, &rules)); // water
        assert!(!scl.is_clear(9.0, &rules)); // cloud, high probability
        assert!(!scl.is_clear(3.0, &rules)); // cloud shadow
        assert!(!scl.is_clear(f32::NAN, &rules));
        let qa = CloudMask::QaPixel(9);
        assert!(qa.is_clear(21824.0, &rules)); // clear land
        assert!(qa.is_clear(21952.0, &rules)); // water
        assert!(!qa.is_clear(22280.0, &rules)); // cloud
        assert!(!qa.is_clear(23888.0, &rules)); // cloud shadow
        assert!(!qa.is_clear(1.0, &rules)); // fill
        assert_eq!(scl.band(), 9);
    }
}
