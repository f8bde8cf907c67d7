//! The one place where a Burn device is chosen, from configuration.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Which Burn backend runs the models. Parsed from `ndarray` or `flex` (and `vulkan` in a
/// build with the `vulkan` feature).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// burn-ndarray (CPU). Deprecated upstream but measured here; the default.
    #[default]
    NdArray,
    /// burn-flex, the pure-Rust CPU backend that replaces ndarray upstream.
    Flex,
    /// Burn's GPU backend on Vulkan (wgpu, SPIR-V kernels) on the best GPU found; only in
    /// builds with the `vulkan` feature.
    #[cfg(feature = "vulkan")]
    Vulkan,
}

impl DeviceChoice {
    /// All choices.
    #[cfg(not(feature = "vulkan"))]
    pub const ALL: &'static [DeviceChoice] = &[DeviceChoice::NdArray, DeviceChoice::Flex];
    /// All choices.
    #[cfg(feature = "vulkan")]
    pub const ALL: &'static [DeviceChoice] = &[
        DeviceChoice::NdArray,
        DeviceChoice::Flex,
        DeviceChoice::Vulkan,
    ];

    /// The name accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::NdArray => "ndarray",
            DeviceChoice::Flex => "flex",
            #[cfg(feature = "vulkan")]
            DeviceChoice::Vulkan => "vulkan",
        }
    }

    /// The inference device.
    pub fn device(self) -> Device {
        match self {
            #[allow(deprecated)] // measured against flex on purpose, see stack.md
            DeviceChoice::NdArray => Device::ndarray(),
            DeviceChoice::Flex => Device::flex(),
            #[cfg(feature = "vulkan")]
            DeviceChoice::Vulkan => Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
        }
    }

    /// The training device: the same backend with autodiff.
    pub fn training_device(self) -> Device {
        self.device().autodiff()
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceChoice {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ndarray" | "nd-array" | "cpu-ndarray" => Ok(DeviceChoice::NdArray),
            "flex" => Ok(DeviceChoice::Flex),
            #[cfg(feature = "vulkan")]
            "vulkan" => Ok(DeviceChoice::Vulkan),
            _ => Err(ModelError::UnknownName {
                kind: "device",
                value: s.to_string(),
                expected: Self::ALL
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_unknown_names_are_typed_errors() {
        assert_eq!(
            "ndarray".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::NdArray)
        );
        assert_eq!(
            " Flex ".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Flex)
        );
        match "cuda".parse::<DeviceChoice>() {
            Err(ModelError::UnknownName { kind, expected, .. }) => {
                assert_eq!(kind, "device");
                // The error lists exactly the devices this build has, each of which parses.
                let names: Vec<&str> = expected.split(", ").collect();
                assert_eq!(names.len(), DeviceChoice::ALL.len());
                for (name, &choice) in names.iter().zip(DeviceChoice::ALL) {
                    assert_eq!(name.parse::<DeviceChoice>().ok(), Some(choice));
                }
            }
            other => panic!("cuda parsed as {other:?}"),
        }
        assert!(DeviceChoice::Flex.training_device().is_autodiff());
        assert!(!DeviceChoice::NdArray.device().is_autodiff());
    }
}
