//! The one place where a Burn device is chosen, from configuration.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Which Burn backend runs the models. Parsed from `ndarray` or `flex`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// burn-ndarray (CPU). Deprecated upstream but measured here; the default.
    #[default]
    NdArray,
    /// burn-flex, the pure-Rust CPU backend that replaces ndarray upstream.
    Flex,
}

impl DeviceChoice {
    /// All choices.
    pub const ALL: [DeviceChoice; 2] = [DeviceChoice::NdArray, DeviceChoice::Flex];

    /// The name accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::NdArray => "ndarray",
            DeviceChoice::Flex => "flex",
        }
    }

    /// The inference device.
    pub fn device(self) -> Device {
        match self {
            #[allow(deprecated)] // measured against flex on purpose, see stack.md
            DeviceChoice::NdArray => Device::ndarray(),
            DeviceChoice::Flex => Device::flex(),
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
            _ => Err(ModelError::UnknownName {
                kind: "device",
                value: s.to_string(),
                expected: "ndarray, flex".into(),
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
        assert!(matches!(
            "cuda".parse::<DeviceChoice>(),
            Err(ModelError::UnknownName { kind: "device", .. })
        ));
        assert!(DeviceChoice::Flex.training_device().is_autodiff());
        assert!(!DeviceChoice::NdArray.device().is_autodiff());
    }
}
