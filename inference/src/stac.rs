//! STAC Items and ItemCollections with local assets as analysis input.
//!
//! A `.json` given as scenes may be a STAC ItemCollection (a GeoJSON FeatureCollection of
//! Items) or a single Item (a Feature). Each Item is one date: `properties.datetime`, or
//! `properties.start_datetime` when `datetime` is null. Its assets are either one
//! multi-band raster (band names from the asset's `eo:bands` / `bands` list, else from the
//! file's band descriptions) or one raster per band (the band named by the asset's one-entry
//! `eo:bands` / `bands` list — `name`, or `common_name` / `eo:common_name` when the name is not
//! a known band — else by the asset key, e.g. `B04`, `red`, `nir`, `scl`). Bands match the
//! wanted ones by name or by common name (`B04` = `red`). Per band, a single-band asset is
//! preferred to a multi-band one; previews (`visual`, `thumbnail`, `overview` roles or keys)
//! and metadata assets are never used.
//!
//! Local hrefs are read (a path relative to the JSON file, an absolute path or a `file://`
//! URL), and remote ones (`s3://`, `http(s)://`) under the allowed prefixes of
//! `SceneOptions::remote_prefixes`, through GDAL's `/vsis3/` and `/vsicurl/`. Other remote
//! hrefs of an asset the analysis needs are an error naming the item and the asset.
//!
//! The per-band files of an item become scenes of one date, which the scene stack puts
//! together into one layer (warping 20 m bands onto the 10 m grid like any other scene).

use crate::error::{InferenceError, Result};
use chrono::NaiveDate;
use gengdi_tiling::scene::parse_date_prefix;
use gengdi_tiling::{gdal_log, CommonBand, Scene, SceneOptions, Sensor};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One asset of an item.
#[derive(Clone, Debug, PartialEq)]
pub struct StacAsset {
    pub key: String,
    pub href: String,
    /// Band names the asset declares (`eo:bands` / `bands`), or the key for a band-named
    /// asset; `None` when the file's own band descriptions must tell.
    pub bands: Option<Vec<String>>,
}

/// One item: one date.
#[derive(Clone, Debug, PartialEq)]
pub struct StacItem {
    pub id: String,
    pub date: NaiveDate,
    pub sensor: Option<Sensor>,
    pub assets: Vec<StacAsset>,
}

fn stac_err(path: &Path, reason: impl Into<String>) -> InferenceError {
    InferenceError::Stac {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Open the raster of one asset of a STAC item (`path` is the STAC file).
fn open_asset(
    path: &Path,
    item: &str,
    asset: &str,
    file: &Path,
    opts: &SceneOptions,
) -> Result<Scene> {
    let _scope = gdal_log::scope(format!(
        "STAC item {item}, asset {asset} of {}",
        path.display()
    ));
    Scene::open_with(file, opts).map_err(|source| InferenceError::StacAsset {
        path: path.to_path_buf(),
        item: item.to_string(),
        asset: asset.to_string(),
        source: Box::new(source),
    })
}

const SKIP_WORDS: [&str; 6] = [
    "visual",
    "thumbnail",
    "overview",
    "preview",
    "metadata",
    "tci",
];
const SKIP_EXTENSIONS: [&str; 7] = [".json", ".xml", ".html", ".jpg", ".jpeg", ".png", ".txt"];

/// The band name a STAC band entry gives: `name` when it is a known band (or there is no
/// common name), else the common name.
fn band_entry_name(entry: &Value) -> Option<String> {
    let name = entry.get("name").and_then(Value::as_str);
    let common = entry
        .get("common_name")
        .or_else(|| entry.get("eo:common_name"))
        .and_then(Value::as_str);
    match (name, common) {
        (Some(n), Some(c)) if CommonBand::from_band_name(n, None).is_none() => Some(c.into()),
        (Some(n), _) => Some(n.into()),
        (None, Some(c)) => Some(c.into()),
        (None, None) => None,
    }
}

fn parse_item(path: &Path, v: &Value, n: usize) -> Result<StacItem> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| format!("item #{n}"));
    let props = v.get("properties");
    let dt = props.and_then(|p| {
        p.get("datetime")
            .and_then(Value::as_str)
            .or_else(|| p.get("start_datetime").and_then(Value::as_str))
    });
    let date =
        dt.and_then(parse_date_prefix)
            .ok_or_else(|| InferenceError::StacItemWithoutDate {
                path: path.to_path_buf(),
                item: id.clone(),
            })?;
    let sensor = props
        .and_then(|p| p.get("platform").or_else(|| p.get("constellation")))
        .and_then(Value::as_str)
        .and_then(|s| {
            s.trim_end_matches(['a', 'b', 'c', 'A', 'B', 'C'])
                .parse()
                .ok()
        });
    let Some(assets) = v.get("assets").and_then(Value::as_object) else {
        return Err(stac_err(path, format!("item {id} has no assets")));
    };
    let mut out = Vec::new();
    for (key, a) in assets {
        let Some(href) = a.get("href").and_then(Value::as_str) else {
            continue;
        };
        let roles: Vec<String> = a
            .get("roles")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        let lkey = key.to_ascii_lowercase();
        let lhref = href.to_ascii_lowercase();
        if SKIP_WORDS
            .iter()
            .any(|w| lkey == *w || roles.iter().any(|r| r == w))
            || SKIP_EXTENSIONS.iter().any(|e| lhref.ends_with(e))
        {
            continue;
        }
        let listed: Vec<String> = a
            .get("eo:bands")
            .or_else(|| a.get("bands"))
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(band_entry_name).collect())
            .unwrap_or_default();
        let bands = if !listed.is_empty() {
            Some(listed)
        } else if CommonBand::from_band_name(key, sensor).is_some() {
            Some(vec![key.clone()])
        } else {
            None
        };
        out.push(StacAsset {
            key: key.clone(),
            href: href.to_string(),
            bands,
        });
    }
    Ok(StacItem {
        id,
        date,
        sensor,
        assets: out,
    })
}

/// Read the items of a STAC ItemCollection or Item.
pub fn read_items(path: &Path) -> Result<Vec<StacItem>> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InferenceError::NotFound {
            path: path.to_path_buf(),
        },
        _ => stac_err(path, e.to_string()),
    })?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| stac_err(path, format!("not JSON: {e}")))?;
    let items: Vec<&Value> = match v.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => v
            .get("features")
            .and_then(Value::as_array)
            .map(|f| f.iter().collect())
            .unwrap_or_default(),
        Some("Feature") => vec![&v],
        Some("Collection") => {
            return Err(stac_err(
                path,
                "a STAC Collection; give an ItemCollection (FeatureCollection of Items) or an Item",
            ))
        }
        _ => return Err(stac_err(
            path,
            "not a STAC ItemCollection or Item (no \"type\": \"FeatureCollection\" / \"Feature\")",
        )),
    };
    if items.is_empty() {
        return Err(stac_err(path, "the ItemCollection holds no items"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| parse_item(path, v, i + 1))
        .collect()
}

/// `%XX` escapes of a `file://` URL.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file an asset's href names: local, or remote (`s3://`, `http(s)://`) under one of
/// `remote_prefixes`, as GDAL's virtual path.
pub fn resolve_href(
    json: &Path,
    item: &str,
    asset: &StacAsset,
    remote_prefixes: &[String],
) -> Result<PathBuf> {
    let href = asset.href.trim();
    if gengdi_tiling::vsi::remote_allowed(href, remote_prefixes) {
        if let Some(vsi) = gengdi_tiling::vsi::remote_path(href) {
            return Ok(vsi);
        }
    }
    let lower = href.to_ascii_lowercase();
    let local = if let Some(rest) = lower.strip_prefix("file://") {
        // file:///abs/path or file://localhost/abs/path
        let rest = &href[href.len() - rest.len()..];
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        PathBuf::from(percent_decode(rest))
    } else if href.contains("://") {
        return Err(InferenceError::StacRemoteHref {
            path: json.to_path_buf(),
            item: item.to_string(),
            asset: asset.key.clone(),
            href: href.to_string(),
        });
    } else {
        let p = PathBuf::from(href);
        if p.is_absolute() {
            p
        } else {
            json.parent().unwrap_or(Path::new(".")).join(p)
        }
    };
    if !local.exists() {
        return Err(InferenceError::StacMissingAsset {
            path: json.to_path_buf(),
            item: item.to_string(),
            asset: asset.key.clone(),
            file: local,
        });
    }
    Ok(local)
}

fn band_matches(have: &str, want: &str, sensor: Option<Sensor>) -> bool {
    if have.eq_ignore_ascii_case(want) {
        return true;
    }
    let w = CommonBand::from_band_name(want, sensor);
    w.is_some() && CommonBand::from_band_name(have, sensor) == w
}

/// Open the scenes of every item of `path` that supply `bands` (required: an item lacking
/// one is an error naming it) and `optional` bands (taken where present).
pub fn open_scenes(
    path: &Path,
    opts: &SceneOptions,
    bands: &[String],
    optional: &[String],
) -> Result<Vec<Scene>> {
    let items = read_items(path)?;
    let mut scenes = Vec::new();
    for item in &items {
        scenes.extend(open_item(path, item, opts, bands, optional)?);
    }
    Ok(scenes)
}

/// The scenes of one item: the assets that supply the wanted bands, dated with the item's date.
pub fn open_item(
    path: &Path,
    item: &StacItem,
    opts: &SceneOptions,
    bands: &[String],
    optional: &[String],
) -> Result<Vec<Scene>> {
    let sensor = opts.sensor.or(item.sensor);
    let scene_opts = |names: Option<Vec<String>>| SceneOptions {
        band_names: names,
        date: Some(item.date),
        sensor,
        ..opts.clone()
    };
    // Assets by declared band names; single-band assets first.
    let mut declared: Vec<&StacAsset> = item.assets.iter().filter(|a| a.bands.is_some()).collect();
    declared.sort_by_key(|a| a.bands.as_ref().map_or(usize::MAX, Vec::len));
    let mut chosen: Vec<usize> = Vec::new();
    let mut missing: Vec<&String> = Vec::new();
    let wanted: Vec<(&String, bool)> = bands
        .iter()
        .map(|b| (b, true))
        .chain(optional.iter().map(|b| (b, false)))
        .collect();
    for &(w, required) in &wanted {
        let found = declared.iter().find(|a| {
            a.bands
                .as_ref()
                .is_some_and(|names| names.iter().any(|n| band_matches(n, w, sensor)))
        });
        match found {
            Some(a) => {
                let i = item
                    .assets
                    .iter()
                    .position(|x| std::ptr::eq(x, *a))
                    .unwrap_or(0);
                if !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
            None if required => missing.push(w),
            None => {}
        }
    }
    let mut scenes = Vec::new();
    for &i in &chosen {
        let a = &item.assets[i];
        let file = resolve_href(path, &item.id, a, &opts.remote_prefixes)?;
        let scene = open_asset(path, &item.id, &a.key, &file, &scene_opts(a.bands.clone()))?;
        scenes.push(scene);
    }
    // Bands still missing: the assets that declare none tell by their band descriptions.
    let undeclared: Vec<&StacAsset> = item.assets.iter().filter(|a| a.bands.is_none()).collect();
    if !undeclared.is_empty() {
        let optional_missing: Vec<&String> = optional
            .iter()
            .filter(|w| {
                !scenes
                    .iter()
                    .any(|s: &Scene| s.bands.iter().any(|b| band_matches(&b.name, w, sensor)))
            })
            .collect();
        if !missing.is_empty() || !optional_missing.is_empty() {
            for a in undeclared {
                let file = resolve_href(path, &item.id, a, &opts.remote_prefixes)?;
                let scene = open_asset(path, &item.id, &a.key, &file, &scene_opts(None))?;
                let supplies =
                    |w: &&String| scene.bands.iter().any(|b| band_matches(&b.name, w, sensor));
                if missing.iter().any(supplies) || optional_missing.iter().any(supplies) {
                    missing.retain(|w| !supplies(w));
                    scenes.push(scene);
                }
            }
        }
    }
    if !missing.is_empty() {
        let available: Vec<String> = item
            .assets
            .iter()
            .map(|a| match &a.bands {
                Some(b) => format!("{} ({})", a.key, b.join(",")),
                None => a.key.clone(),
            })
            .collect();
        return Err(InferenceError::StacMissingBands {
            path: path.to_path_buf(),
            item: item.id.clone(),
            bands: missing.iter().map(|s| s.to_string()).collect(),
            available: available.join(", "),
        });
    }
    Ok(scenes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_entries_name_bands_by_name_else_common_name() {
        let v: Value = serde_json::json!({"name": "B04", "common_name": "red"});
        assert_eq!(band_entry_name(&v).as_deref(), Some("B04"));
        let v: Value = serde_json::json!({"name": "band_4", "common_name": "red"});
        assert_eq!(band_entry_name(&v).as_deref(), Some("red"));
        let v: Value = serde_json::json!({"eo:common_name": "nir"});
        assert_eq!(band_entry_name(&v).as_deref(), Some("nir"));
        assert!(band_matches("red", "B04", None));
        assert!(band_matches("scl", "SCL", None));
        assert!(!band_matches("B03", "B04", None));
    }

    #[test]
    fn file_urls_are_decoded() {
        assert_eq!(percent_decode("/a%20b/c.tif"), "/a b/c.tif");
        assert_eq!(percent_decode("/a%2"), "/a%2");
    }
}
