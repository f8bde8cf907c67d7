//! GeoTIFF georeferencing read straight from the tags: the GeoKey directory and the three
//! raster → model mechanisms (tie point + pixel scale, several tie points,
//! ModelTransformation), with PixelIsPoint handled the way GDAL does (the origin moves by
//! half a pixel so that the affine always maps pixel *corners*).

use super::ifd::{Ifd, TagValue};
use super::layout::tag;
use crate::geo::GeoTransform;
use std::collections::BTreeMap;

/// Whether a pixel's coordinates name its corner area or its centre point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RasterType {
    PixelIsArea,
    PixelIsPoint,
}

/// Which of the GeoTIFF mechanisms a file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GeoMechanism {
    TiePointAndScale,
    TiePoints,
    ModelTransformation,
}

/// A GeoKey's value.
#[derive(Clone, Debug, PartialEq)]
pub enum GeoKeyValue {
    Short(u16),
    Doubles(Vec<f64>),
    Ascii(String),
}

/// What the GeoTIFF tags of an image say.
#[derive(Clone, Debug, Default)]
pub struct TiffGeo {
    pub keys: BTreeMap<u16, GeoKeyValue>,
    pub tie_points: Vec<[f64; 6]>,
    pub pixel_scale: Option<[f64; 3]>,
    pub transformation: Option<[f64; 16]>,
}

pub const GT_MODEL_TYPE: u16 = 1024;
pub const GT_RASTER_TYPE: u16 = 1025;
pub const GEOGRAPHIC_TYPE: u16 = 2048;
pub const PROJECTED_CS_TYPE: u16 = 3072;

impl TiffGeo {
    pub fn from_ifd(ifd: &Ifd) -> Self {
        let doubles = ifd
            .get(tag::GEO_DOUBLE_PARAMS)
            .and_then(TagValue::as_f64s)
            .unwrap_or_default();
        let ascii = ifd
            .get(tag::GEO_ASCII_PARAMS)
            .and_then(TagValue::as_str)
            .unwrap_or("")
            .to_string();
        let mut keys = BTreeMap::new();
        if let Some(dir) = ifd.get(tag::GEO_KEY_DIRECTORY).and_then(TagValue::as_u64s) {
            let n = dir.get(3).copied().unwrap_or(0) as usize;
            for k in 0..n {
                let Some(e) = dir.get(4 + k * 4..8 + k * 4) else {
                    break;
                };
                let (id, loc, count, val) =
                    (e[0] as u16, e[1] as u16, e[2] as usize, e[3] as usize);
                let v = match loc {
                    0 => Some(GeoKeyValue::Short(val as u16)),
                    tag::GEO_DOUBLE_PARAMS => doubles
                        .get(val..val.saturating_add(count))
                        .map(|d| GeoKeyValue::Doubles(d.to_vec())),
                    tag::GEO_ASCII_PARAMS => ascii
                        .get(val..val.saturating_add(count))
                        .map(|s| GeoKeyValue::Ascii(s.trim_end_matches(['|', '\0']).to_string())),
                    _ => None,
                };
                if let Some(v) = v {
                    keys.insert(id, v);
                }
            }
        }
        let tie_points = ifd
            .get(tag::MODEL_TIEPOINT)
            .and_then(TagValue::as_f64s)
            .map(|v| {
                v.chunks_exact(6)
                    .map(|c| [c[0], c[1], c[2], c[3], c[4], c[5]])
                    .collect()
            })
            .unwrap_or_default();
        let pixel_scale = ifd
            .get(tag::MODEL_PIXEL_SCALE)
            .and_then(TagValue::as_f64s)
            .filter(|v| v.len() >= 3)
            .map(|v| [v[0], v[1], v[2]]);
        let transformation = ifd
            .get(tag::MODEL_TRANSFORMATION)
            .and_then(TagValue::as_f64s)
            .filter(|v| v.len() >= 16)
            .map(|v| {
                let mut m = [0.0; 16];
                m.copy_from_slice(&v[..16]);
                m
            });
        TiffGeo {
            keys,
            tie_points,
            pixel_scale,
            transformation,
        }
    }

    fn short(&self, key: u16) -> Option<u16> {
        match self.keys.get(&key) {
            Some(GeoKeyValue::Short(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn raster_type(&self) -> RasterType {
        if self.short(GT_RASTER_TYPE) == Some(2) {
            RasterType::PixelIsPoint
        } else {
            RasterType::PixelIsArea
        }
    }

    /// The EPSG code the keys name (projected first, then geographic), if any.
    pub fn epsg(&self) -> Option<u32> {
        [PROJECTED_CS_TYPE, GEOGRAPHIC_TYPE]
            .iter()
            .filter_map(|k| self.short(*k))
            .find(|c| (1024..32767).contains(c))
            .map(u32::from)
    }

    pub fn mechanism(&self) -> Option<GeoMechanism> {
        if self.transformation.is_some() {
            Some(GeoMechanism::ModelTransformation)
        } else if self.tie_points.len() == 1 && self.pixel_scale.is_some() {
            Some(GeoMechanism::TiePointAndScale)
        } else if self.tie_points.len() >= 3 {
            Some(GeoMechanism::TiePoints)
        } else {
            None
        }
    }

    /// The affine from pixel corners to model coordinates, PixelIsPoint already shifted.
    /// For several tie points it is the least-squares affine through them (exact when they
    /// are consistent with one); `None` without usable georeferencing.
    pub fn world_from_pixel(&self) -> Option<GeoTransform> {
        let gt = match self.mechanism()? {
            GeoMechanism::ModelTransformation => {
                let m = self.transformation?;
                [m[3], m[0], m[1], m[7], m[4], m[5]]
            }
            GeoMechanism::TiePointAndScale => {
                let t = self.tie_points[0];
                let s = self.pixel_scale?;
                [
                    t[3] - t[0] * s[0],
                    s[0],
                    0.0,
                    t[4] + t[1] * s[1],
                    0.0,
                    -s[1],
                ]
            }
            GeoMechanism::TiePoints => fit_affine(&self.tie_points)?,
        };
        let mut gt = GeoTransform(gt);
        if self.raster_type() == RasterType::PixelIsPoint {
            gt = gt.shifted_by_pixels(-0.5, -0.5);
        }
        gt.is_invertible().then_some(gt)
    }
}

/// Least-squares affine x = a0 + a1 i + a2 j (and the same for y) through tie points.
fn fit_affine(points: &[[f64; 6]]) -> Option<[f64; 6]> {
    // Normal equations of a 3-parameter linear model, solved by Cramer's rule.
    let mut ata = [[0.0f64; 3]; 3];
    let mut atx = [0.0f64; 3];
    let mut aty = [0.0f64; 3];
    for p in points {
        let row = [1.0, p[0], p[1]];
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += row[r] * row[c];
            }
            atx[r] += row[r] * p[3];
            aty[r] += row[r] * p[4];
        }
    }
    let det3 = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det3(&ata);
    if d.abs() < 1e-12 {
        return None;
    }
    let solve = |b: &[f64; 3]| {
        let mut out = [0.0; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let mut m = ata;
            for r in 0..3 {
                m[r][k] = b[r];
            }
            *o = det3(&m) / d;
        }
        out
    };
    let x = solve(&atx);
    let y = solve(&aty);
    Some([x[0], x[1], x[2], y[0], y[1], y[2]])
}
