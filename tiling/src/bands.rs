//! Band names: sensor-agnostic common names (blue, red, nir …) and the sensor profiles
//! that name the bands of files that carry no band descriptions.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a band measures, whatever the sensor calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum CommonBand {
    Coastal,
    Blue,
    Green,
    Red,
    RedEdge1,
    RedEdge2,
    RedEdge3,
    Nir,
    NirNarrow,
    WaterVapour,
    Cirrus,
    Swir1,
    Swir2,
    Pan,
    Thermal,
    /// Sentinel-2 scene classification (categorical: resample with nearest neighbour).
    SceneClassification,
    /// Landsat Collection 2 `QA_PIXEL` bit flags (categorical).
    QualityPixel,
}

impl CommonBand {
    pub const ALL: [CommonBand; 17] = [
        CommonBand::Coastal,
        CommonBand::Blue,
        CommonBand::Green,
        CommonBand::Red,
        CommonBand::RedEdge1,
        CommonBand::RedEdge2,
        CommonBand::RedEdge3,
        CommonBand::Nir,
        CommonBand::NirNarrow,
        CommonBand::WaterVapour,
        CommonBand::Cirrus,
        CommonBand::Swir1,
        CommonBand::Swir2,
        CommonBand::Pan,
        CommonBand::Thermal,
        CommonBand::SceneClassification,
        CommonBand::QualityPixel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CommonBand::Coastal => "coastal",
            CommonBand::Blue => "blue",
            CommonBand::Green => "green",
            CommonBand::Red => "red",
            CommonBand::RedEdge1 => "rededge1",
            CommonBand::RedEdge2 => "rededge2",
            CommonBand::RedEdge3 => "rededge3",
            CommonBand::Nir => "nir",
            CommonBand::NirNarrow => "nir08",
            CommonBand::WaterVapour => "nir09",
            CommonBand::Cirrus => "cirrus",
            CommonBand::Swir1 => "swir16",
            CommonBand::Swir2 => "swir22",
            CommonBand::Pan => "pan",
            CommonBand::Thermal => "lwir",
            CommonBand::SceneClassification => "scl",
            CommonBand::QualityPixel => "qa_pixel",
        }
    }

    /// Categorical bands are resampled with nearest neighbour, never interpolated.
    pub fn is_categorical(self) -> bool {
        matches!(
            self,
            CommonBand::SceneClassification | CommonBand::QualityPixel
        )
    }

    /// The common name of a sensor's band name (Sentinel-2 `B04`, Landsat `SR_B4`, …) or
    /// of a common name itself (`red`, STAC's `swir16`), case-insensitively.
    pub fn from_band_name(name: &str, sensor: Option<Sensor>) -> Option<CommonBand> {
        let n = name.trim().to_ascii_uppercase();
        if let Some(c) = CommonBand::ALL
            .iter()
            .find(|c| c.name().eq_ignore_ascii_case(&n))
        {
            return Some(*c);
        }
        let alias = match n.as_str() {
            "NIR" | "NIR08" => Some(CommonBand::Nir),
            "SWIR1" => Some(CommonBand::Swir1),
            "SWIR2" => Some(CommonBand::Swir2),
            "SCL" => Some(CommonBand::SceneClassification),
            "QA_PIXEL" => Some(CommonBand::QualityPixel),
            _ => None,
        };
        if alias.is_some() {
            return alias;
        }
        let n = n.strip_prefix("SR_").unwrap_or(&n);
        // Zero-padded names (`B02`) and `B8A` / `B12` are Sentinel-2's whatever the sensor: a
        // model card names its bands that way, while Landsat / Gaofen say `B1` … `B9` (and
        // Landsat's `B10` / `B11` are its thermal bands).
        let sentinel2_style = n.len() == 3 && (n.starts_with("B0") || n == "B8A" || n == "B12");
        match sensor {
            Some(Sensor::Landsat8 | Sensor::Landsat9) if !sentinel2_style => landsat(n),
            Some(Sensor::Gaofen1 | Sensor::Gaofen2 | Sensor::Gaofen6) if !sentinel2_style => {
                gaofen(n)
            }
            _ => sentinel2(n),
        }
    }
}

fn sentinel2(n: &str) -> Option<CommonBand> {
    Some(match n {
        "B01" | "B1" => CommonBand::Coastal,
        "B02" | "B2" => CommonBand::Blue,
        "B03" | "B3" => CommonBand::Green,
        "B04" | "B4" => CommonBand::Red,
        "B05" | "B5" => CommonBand::RedEdge1,
        "B06" | "B6" => CommonBand::RedEdge2,
        "B07" | "B7" => CommonBand::RedEdge3,
        "B08" | "B8" => CommonBand::Nir,
        "B8A" | "B08A" => CommonBand::NirNarrow,
        "B09" | "B9" => CommonBand::WaterVapour,
        "B10" => CommonBand::Cirrus,
        "B11" => CommonBand::Swir1,
        "B12" => CommonBand::Swir2,
        _ => return None,
    })
}

fn landsat(n: &str) -> Option<CommonBand> {
    Some(match n {
        "B1" => CommonBand::Coastal,
        "B2" => CommonBand::Blue,
        "B3" => CommonBand::Green,
        "B4" => CommonBand::Red,
        "B5" => CommonBand::Nir,
        "B6" => CommonBand::Swir1,
        "B7" => CommonBand::Swir2,
        "B8" => CommonBand::Pan,
        "B9" => CommonBand::Cirrus,
        "B10" | "B11" | "ST_B10" => CommonBand::Thermal,
        _ => return None,
    })
}

fn gaofen(n: &str) -> Option<CommonBand> {
    Some(match n {
        "B1" => CommonBand::Blue,
        "B2" => CommonBand::Green,
        "B3" => CommonBand::Red,
        "B4" => CommonBand::Nir,
        "B5" => CommonBand::RedEdge1,
        "B6" => CommonBand::RedEdge2,
        _ => return None,
    })
}

impl fmt::Display for CommonBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sensors gengdi knows the band layout of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensor {
    Sentinel2,
    Landsat8,
    Landsat9,
    Gaofen1,
    Gaofen2,
    Gaofen6,
}

impl Sensor {
    pub fn name(self) -> &'static str {
        match self {
            Sensor::Sentinel2 => "sentinel2",
            Sensor::Landsat8 => "landsat8",
            Sensor::Landsat9 => "landsat9",
            Sensor::Gaofen1 => "gaofen1",
            Sensor::Gaofen2 => "gaofen2",
            Sensor::Gaofen6 => "gaofen6",
        }
    }

    /// Guess the sensor from a product file name (`S2A_MSIL2A_…`, `LC09_L2SP_…`, `GF2_PMS1_…`).
    pub fn from_file_name(name: &str) -> Option<Sensor> {
        let n = name.to_ascii_uppercase();
        if n.starts_with("S2A_")
            || n.starts_with("S2B_")
            || n.starts_with("S2C_")
            || n.starts_with("S2L")
        {
            Some(Sensor::Sentinel2)
        } else if n.starts_with("LC08") || n.starts_with("LO08") {
            Some(Sensor::Landsat8)
        } else if n.starts_with("LC09") || n.starts_with("LO09") {
            Some(Sensor::Landsat9)
        } else if n.starts_with("GF1") {
            Some(Sensor::Gaofen1)
        } else if n.starts_with("GF2") {
            Some(Sensor::Gaofen2)
        } else if n.starts_with("GF6") {
            Some(Sensor::Gaofen6)
        } else {
            None
        }
    }

    /// Band names of a file of this sensor with `count` bands, in file order, where the
    /// product layout is standard for that count.
    pub fn band_names(self, count: usize) -> Option<Vec<&'static str>> {
        let v: &[&str] = match (self, count) {
            (Sensor::Sentinel2, 13) => &[
                "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
                "B12",
            ],
            (Sensor::Sentinel2, 12) => &[
                "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
            ],
            (Sensor::Sentinel2, 10) => &[
                "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12",
            ],
            (Sensor::Sentinel2, 4) => &["B02", "B03", "B04", "B08"],
            (Sensor::Landsat8 | Sensor::Landsat9, 7) => &[
                "SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7",
            ],
            (Sensor::Landsat8 | Sensor::Landsat9, 11) => &[
                "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11",
            ],
            (Sensor::Gaofen1 | Sensor::Gaofen2 | Sensor::Gaofen6, 4) => &["B1", "B2", "B3", "B4"],
            (Sensor::Gaofen6, 8) => &["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"],
            _ => return None,
        };
        Some(v.to_vec())
    }
}

impl FromStr for Sensor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
            "sentinel2" | "s2" => Sensor::Sentinel2,
            "landsat8" | "l8" => Sensor::Landsat8,
            "landsat9" | "l9" => Sensor::Landsat9,
            "gaofen1" | "gf1" => Sensor::Gaofen1,
            "gaofen2" | "gf2" => Sensor::Gaofen2,
            "gaofen6" | "gf6" => Sensor::Gaofen6,
            other => {
                return Err(format!(
                    "unknown sensor {other:?} (known: sentinel2, landsat8, landsat9, gaofen1, gaofen2, gaofen6)"
                ))
            }
        })
    }
}

impl fmt::Display for Sensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_colour_has_one_common_name_across_sensors() {
        assert_eq!(
            CommonBand::from_band_name("B04", Some(Sensor::Sentinel2)),
            Some(CommonBand::Red)
        );
        assert_eq!(
            CommonBand::from_band_name("SR_B4", Some(Sensor::Landsat9)),
            Some(CommonBand::Red)
        );
        assert_eq!(
            CommonBand::from_band_name("B3", Some(Sensor::Gaofen2)),
            Some(CommonBand::Red)
        );
        assert_eq!(
            CommonBand::from_band_name("b8a", None),
            Some(CommonBand::NirNarrow)
        );
        assert_eq!(
            CommonBand::from_band_name("swir16", None),
            Some(CommonBand::Swir1)
        );
        assert_eq!(CommonBand::from_band_name("mystery", None), None);
    }

    #[test]
    fn sensor_profiles_name_every_band_once() {
        for s in [Sensor::Sentinel2, Sensor::Landsat8, Sensor::Gaofen6] {
            for n in [4, 7, 8, 10, 11, 12, 13] {
                if let Some(names) = s.band_names(n) {
                    assert_eq!(names.len(), n);
                    let mut sorted = names.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    assert_eq!(sorted.len(), n, "{s} {n}");
                }
            }
        }
        assert_eq!(
            Sensor::from_file_name("S2A_MSIL2A_20170617T113321_36_85_B02.tif"),
            Some(Sensor::Sentinel2)
        );
        assert_eq!("GF-2".parse::<Sensor>(), Ok(Sensor::Gaofen2));
    }
}
