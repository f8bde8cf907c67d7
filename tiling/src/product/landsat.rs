//! Landsat 8/9 Collection 2 products: the `*_MTL.json` (or `*_MTL.txt`) metadata, or the
//! folder holding it, opened as the scenes of the band files it lists (`SR_B1` … `SR_B7`,
//! `QA_PIXEL`), with the date, the spacecraft and, for Level-2 surface reflectance, the
//! scale and offset of every band from the metadata (`REFLECTANCE_MULT_BAND_n` /
//! `REFLECTANCE_ADD_BAND_n`: 0.0000275 and −0.2 in Collection 2). `QA_PIXEL` is read as a
//! categorical band (its bits flag fill, cloud, shadow, cirrus and snow: see
//! [`qa_pixel_is_clear`]).

use super::ProductInfo;
use crate::bands::Sensor;
use crate::error::{Result, TilingError};
use crate::radiometry::{Radiometry, RadiometrySource};
use crate::scene::{parse_date_prefix, DateSource, Scene, SceneOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAX_MTL_BYTES: u64 = 4 << 20;

/// Whether a `QA_PIXEL` value of Collection 2 marks a clear land or water observation: not
/// fill (bit 0), dilated cloud (1), cirrus (2), cloud (3), cloud shadow (4) or snow (5).
pub fn qa_pixel_is_clear(v: u16) -> bool {
    v & 0b11_1111 == 0
}

/// The metadata file of the Landsat product `path` names, if it names one.
pub fn find_metadata(path: &Path) -> Result<Option<PathBuf>> {
    let is_mtl = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.to_ascii_uppercase())
            .is_some_and(|n| n.ends_with("_MTL.JSON") || n.ends_with("_MTL.TXT"))
    };
    if is_mtl(path) && path.is_file() {
        return Ok(Some(path.to_path_buf()));
    }
    if path.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| TilingError::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_mtl(p))
            .collect();
        // The JSON first: it is the same metadata, easier to read.
        found.sort_by_key(|p| !p.to_string_lossy().to_ascii_uppercase().ends_with(".JSON"));
        return Ok(found.into_iter().next());
    }
    Ok(None)
}

/// `GROUP.KEY` → value of an MTL file (JSON or the `GROUP = …` text form).
pub fn read_mtl(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = crate::vsi::read_bytes(path, MAX_MTL_BYTES)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = BTreeMap::new();
    if text.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| TilingError::malformed(path, format!("not valid JSON: {e}")))?;
        fn walk(v: &serde_json::Value, group: &str, out: &mut BTreeMap<String, String>) {
            if let Some(obj) = v.as_object() {
                for (k, child) in obj {
                    match child {
                        serde_json::Value::Object(_) => walk(child, k, out),
                        serde_json::Value::String(s) => {
                            out.insert(format!("{group}.{k}"), s.clone());
                        }
                        other => {
                            out.insert(format!("{group}.{k}"), other.to_string());
                        }
                    }
                }
            }
        }
        walk(&v, "", &mut out);
    } else {
        let mut group = String::new();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            match k {
                "GROUP" => group = v.to_string(),
                "END_GROUP" => group.clear(),
                _ => {
                    out.insert(format!("{group}.{k}"), v.to_string());
                }
            }
        }
    }
    if out.is_empty() {
        return Err(TilingError::malformed(path, "no metadata entries"));
    }
    Ok(out)
}

/// The value of `key` in any group (the first in `preferred_group` if it is there).
fn get<'a>(mtl: &'a BTreeMap<String, String>, preferred_group: &str, key: &str) -> Option<&'a str> {
    mtl.get(&format!("{preferred_group}.{key}"))
        .or_else(|| {
            mtl.iter()
                .find(|(k, _)| k.rsplit('.').next() == Some(key))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

/// The scenes of the product's band files, or `None` when `path` is not a Landsat product.
pub fn open_if_product(path: &Path, opts: &SceneOptions) -> Result<Option<Vec<Scene>>> {
    let Some(mtl_path) = find_metadata(path)? else {
        return Ok(None);
    };
    let mtl = read_mtl(&mtl_path)?;
    let root = mtl_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let level = get(&mtl, "PRODUCT_CONTENTS", "PROCESSING_LEVEL")
        .unwrap_or("unknown")
        .to_string();
    let surface = level.starts_with("L2");
    let spacecraft = get(&mtl, "IMAGE_ATTRIBUTES", "SPACECRAFT_ID").map(str::to_string);
    let sensor = match spacecraft.as_deref() {
        Some("LANDSAT_8") => Some(Sensor::Landsat8),
        Some("LANDSAT_9") => Some(Sensor::Landsat9),
        _ => None,
    };
    let date = get(&mtl, "IMAGE_ATTRIBUTES", "DATE_ACQUIRED").and_then(parse_date_prefix);
    let tile_id = match (
        get(&mtl, "IMAGE_ATTRIBUTES", "WRS_PATH"),
        get(&mtl, "IMAGE_ATTRIBUTES", "WRS_ROW"),
    ) {
        (Some(p), Some(r)) => Some(format!("{:0>3}{:0>3}", p, r)),
        _ => None,
    };
    let param_group = if surface {
        "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"
    } else {
        "LEVEL1_RADIOMETRIC_RESCALING"
    };
    let mut info = ProductInfo {
        format: "landsat_c2",
        path: path.to_path_buf(),
        metadata_file: mtl_path.clone(),
        level: level.clone(),
        surface_reflectance: surface,
        processing_baseline: get(&mtl, "PRODUCT_CONTENTS", "COLLECTION_NUMBER").map(str::to_string),
        spacecraft,
        tile_id,
        date,
        quantification: None,
        offsets: BTreeMap::new(),
        bands: BTreeMap::new(),
        missing: Vec::new(),
    };
    let mut wanted: Vec<(String, String, Option<Radiometry>)> = Vec::new();
    for n in 1..=7 {
        let Some(file) = get(&mtl, "PRODUCT_CONTENTS", &format!("FILE_NAME_BAND_{n}")) else {
            continue;
        };
        let mult = get(&mtl, param_group, &format!("REFLECTANCE_MULT_BAND_{n}"))
            .and_then(|v| v.parse::<f64>().ok());
        let add = get(&mtl, param_group, &format!("REFLECTANCE_ADD_BAND_{n}"))
            .and_then(|v| v.parse::<f64>().ok());
        let radiometry = match (mult, add) {
            (Some(scale), Some(offset)) => Some(Radiometry {
                scale,
                offset,
                source: RadiometrySource::ProductMetadata {
                    what: format!(
                        "{}: REFLECTANCE_MULT_BAND_{n} / REFLECTANCE_ADD_BAND_{n}",
                        mtl_path
                            .file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    ),
                },
            }),
            _ => None,
        };
        let Some(radiometry) = radiometry else {
            return Err(TilingError::malformed(
                &mtl_path,
                format!("band {n} has no REFLECTANCE_MULT_BAND_{n} / REFLECTANCE_ADD_BAND_{n}: its reflectance cannot be known"),
            ));
        };
        info.offsets.insert(format!("SR_B{n}"), radiometry.offset);
        wanted.push((format!("SR_B{n}"), file.to_string(), Some(radiometry)));
    }
    if let Some(qa) = get(&mtl, "PRODUCT_CONTENTS", "FILE_NAME_QUALITY_L1_PIXEL") {
        wanted.push(("QA_PIXEL".into(), qa.to_string(), None));
    }
    let mut scenes = Vec::new();
    for (band, file, radiometry) in wanted {
        let p = root.join(&file);
        if !p.exists() {
            info.missing.push(file);
            continue;
        }
        let mut o = opts.clone();
        o.band_names = Some(vec![band.clone()]);
        o.sensor = o.sensor.or(sensor).or(Some(Sensor::Landsat9));
        let user_date = o.date.is_some();
        if !user_date {
            o.date = date;
        }
        if o.radiometry.is_none() {
            o.radiometry = radiometry;
        }
        if band == "QA_PIXEL" {
            // Fill is a QA bit, not a value to drop.
            o.nodata = None;
        }
        let mut scene = Scene::open_with(&p, &o)?;
        if !user_date && date.is_some() {
            scene.date_source = Some(DateSource::Metadata);
        }
        info.bands.insert(band, p);
        scenes.push(scene);
    }
    if scenes.is_empty() {
        return Err(TilingError::malformed(
            &mtl_path,
            format!(
                "none of the band files it lists is beside it (missing: {})",
                info.missing.join(", ")
            ),
        ));
    }
    let info = Arc::new(info);
    for s in &mut scenes {
        s.product = Some(info.clone());
    }
    Ok(Some(scenes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qa_pixel_clear_means_no_fill_cloud_shadow_cirrus_or_snow_bit() {
        assert!(qa_pixel_is_clear(21824)); // clear land, low confidences (C2 docs)
        assert!(qa_pixel_is_clear(21952)); // water
        assert!(!qa_pixel_is_clear(1)); // fill
        assert!(!qa_pixel_is_clear(22280)); // high-confidence cloud
        assert!(!qa_pixel_is_clear(23888)); // cloud shadow
    }
}
