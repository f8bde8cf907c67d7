//! Sentinel-2 products as ESA delivers them: a `.SAFE` folder (or its `.zip`, read through
//! GDAL's `/vsizip/` without unpacking, or the product's `MTD_MSIL1C.xml` /
//! `MTD_MSIL2A.xml`), one JPEG 2000 file per band at its native resolution (10 m B02 B03
//! B04 B08; 20 m B05 B06 B07 B8A B11 B12 and SCL; 60 m B01 B09 B10).
//!
//! Everything is taken from the product metadata, never assumed:
//! - the band files from its `IMAGE_FILE` list (their names need not follow ESA's pattern),
//!   each band at the finest resolution listed for it;
//! - the radiometry: `reflectance = (DN + offset) / quantification`, with the quantification
//!   value (`BOA_QUANTIFICATION_VALUE`, `QUANTIFICATION_VALUE`, `L2A_BOA_QUANTIFICATION_VALUE`)
//!   and, from processing baseline 04.00 on (products since 25 January 2022), the per-band
//!   `BOA_ADD_OFFSET` (L2A) / `RADIO_ADD_OFFSET` (L1C) of −1000. GDAL 3.6 neither applies nor
//!   reports that offset; without it every reflectance reads 0.1 too bright;
//! - the NODATA special value (0), the sensing date, the level (L1C / L2A) and the tile;
//! - the georeferencing of the granule (`MTD_TL.xml`) for band files that carry none.

use super::xml::{self, Element};
use super::ProductInfo;
use crate::bands::Sensor;
use crate::error::{Result, TilingError};
use crate::radiometry::{Radiometry, RadiometrySource};
use crate::scene::{parse_date_prefix, Scene, SceneOptions};
use crate::vsi;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Product metadata file names (compact naming, 2016 on).
const METADATA_NAMES: [&str; 2] = ["MTD_MSIL1C.xml", "MTD_MSIL2A.xml"];
/// The most bytes a metadata XML may have (the real ones are under 100 kB; tile metadata
/// with angle grids under 1 MB).
const MAX_XML_BYTES: u64 = 16 << 20;
/// Band ids of the metadata (`band_id="8"`) in ESA's order, used when the product lacks a
/// `Spectral_Information` list.
const BAND_ORDER: [&str; 13] = [
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
];

/// `(root folder, metadata file)` of the Sentinel-2 product `path` names, if it names one.
pub fn find_metadata(path: &Path) -> Result<Option<(PathBuf, PathBuf)>> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if METADATA_NAMES.iter().any(|m| m.eq_ignore_ascii_case(&name)) {
        let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        return Ok(Some((root, path.to_path_buf())));
    }
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".zip") && !vsi::is_vsi_path(path) && path.is_file() {
        let abs = std::fs::canonicalize(path).map_err(|e| TilingError::io(path, e))?;
        let archive = vsi::in_zip(&abs, "");
        let Ok(entries) = vsi::list_recursive(&archive) else {
            return Ok(None);
        };
        let mut found: Vec<&PathBuf> = entries
            .iter()
            .filter(|e| {
                e.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| METADATA_NAMES.iter().any(|m| m.eq_ignore_ascii_case(n)))
            })
            .collect();
        found.sort_by_key(|e| e.components().count());
        return Ok(found.first().map(|inner| {
            let inner = inner.to_string_lossy().replace('\\', "/");
            let mtd = vsi::in_zip(&abs, &inner);
            let root = mtd.parent().map(Path::to_path_buf).unwrap_or(archive);
            (root, mtd)
        }));
    }
    let is_dir = if vsi::is_vsi_path(path) {
        vsi::exists(path) && !lower.ends_with(".xml")
    } else {
        path.is_dir()
    };
    if is_dir {
        for m in METADATA_NAMES {
            let mtd = path.join(m);
            if vsi::exists(&mtd) {
                return Ok(Some((path.to_path_buf(), mtd)));
            }
        }
        if lower.ends_with(".safe") && !vsi::is_vsi_path(path) {
            let old = std::fs::read_dir(path)
                .map_err(|e| TilingError::io(path, e))?
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains("_MTD_SAF"));
            if old {
                return Err(TilingError::unsupported(
                    path,
                    "a Sentinel-2 product in the pre-December-2016 long-name (OPER) format; \
                     gengdi reads products with MTD_MSIL1C.xml / MTD_MSIL2A.xml",
                ));
            }
        }
    }
    Ok(None)
}

/// The scenes of the product's band files, or `None` when `path` is not a Sentinel-2 product.
pub fn open_if_product(path: &Path, opts: &SceneOptions) -> Result<Option<Vec<Scene>>> {
    let Some((root, mtd)) = find_metadata(path)? else {
        return Ok(None);
    };
    let meta = ProductMetadata::read(&mtd)?;
    let mut info = ProductInfo {
        format: "sentinel2_safe",
        path: path.to_path_buf(),
        metadata_file: mtd.clone(),
        level: meta.level.clone(),
        surface_reflectance: meta.level.starts_with("L2"),
        processing_baseline: meta.baseline.clone(),
        spacecraft: meta.spacecraft.clone(),
        tile_id: meta.tile_id.clone(),
        date: meta.date,
        quantification: Some(meta.quantification),
        offsets: meta.offsets.clone(),
        bands: BTreeMap::new(),
        missing: Vec::new(),
    };
    let mut chosen: Vec<(String, PathBuf, Option<u32>)> = Vec::new();
    for (band, (file, res)) in &meta.band_files {
        let mut p = root.join(format!("{file}.jp2"));
        if !vsi::exists(&p) {
            // Products converted by other tools keep the layout with GeoTIFFs.
            let tif = root.join(format!("{file}.tif"));
            if vsi::exists(&tif) {
                p = tif;
            } else {
                info.missing.push(format!("{file}.jp2"));
                continue;
            }
        }
        chosen.push((band.clone(), p, *res));
    }
    if chosen.is_empty() {
        return Err(TilingError::malformed(
            &mtd,
            format!(
                "the product lists no band file that exists (looked for {})",
                info.missing.join(", ")
            ),
        ));
    }
    let geocoding = match meta.granule_metadata(&root) {
        Some(tl) => TileGeocoding::read(&tl).ok(),
        None => None,
    };
    let what = meta.radiometry_source();
    let mut scenes = Vec::with_capacity(chosen.len());
    let user_date = opts.date.is_some();
    for (band, file, res) in chosen {
        let mut o = opts.clone();
        o.band_names = Some(vec![band.clone()]);
        o.sensor = Some(Sensor::Sentinel2);
        if o.date.is_none() {
            o.date = meta.date;
        }
        if o.nodata.is_none() {
            o.nodata = Some(meta.nodata);
        }
        if o.radiometry.is_none() {
            let offset = meta.offsets.get(&band).copied().unwrap_or(0.0);
            o.radiometry = Some(Radiometry {
                scale: 1.0 / meta.quantification,
                offset: offset / meta.quantification,
                source: RadiometrySource::ProductMetadata {
                    what: format!("{what}{}", offset_note(offset, &meta)),
                },
            });
        }
        let mut scene = Scene::open_with(&file, &o)?;
        if scene.world_from_pixel.is_none() || scene.crs.is_none() {
            let Some(g) = &geocoding else {
                return Err(TilingError::NoGeoreference { path: file });
            };
            let wrapped = g.wrap(&scene, res)?;
            scene = Scene::open_with(&wrapped, &o)?;
        }
        if !user_date && meta.date.is_some() {
            scene.date_source = Some(crate::scene::DateSource::Metadata);
        }
        info.bands.insert(band, file);
        scenes.push(scene);
    }
    let info = Arc::new(info);
    for s in &mut scenes {
        s.product = Some(info.clone());
    }
    Ok(Some(scenes))
}

fn offset_note(offset: f64, meta: &ProductMetadata) -> String {
    if offset != 0.0 {
        format!(", {} {offset}", meta.offset_element)
    } else if meta.offsets.is_empty() {
        ", no offset list (processing baseline before 04.00)".into()
    } else {
        String::new()
    }
}

/// What gengdi reads of a product's `MTD_MSIL1C.xml` / `MTD_MSIL2A.xml`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductMetadata {
    pub file: PathBuf,
    pub level: String,
    pub baseline: Option<String>,
    pub spacecraft: Option<String>,
    pub tile_id: Option<String>,
    pub date: Option<chrono::NaiveDate>,
    pub quantification: f64,
    /// Which element the quantification came from.
    pub quantification_element: &'static str,
    /// Band → additive offset in DN.
    pub offsets: BTreeMap<String, f64>,
    pub offset_element: &'static str,
    pub nodata: f64,
    /// Band → (image file relative to the product root, without extension; resolution in m).
    pub band_files: BTreeMap<String, (String, Option<u32>)>,
}

impl ProductMetadata {
    pub fn read(mtd: &Path) -> Result<ProductMetadata> {
        let bytes = vsi::read_bytes(mtd, MAX_XML_BYTES)?;
        let text = String::from_utf8_lossy(&bytes);
        let els = xml::elements(&text).map_err(|reason| TilingError::malformed(mtd, reason))?;
        Self::from_elements(mtd, &els)
    }

    fn from_elements(mtd: &Path, els: &[Element]) -> Result<ProductMetadata> {
        let bad = |reason: String| TilingError::malformed(mtd, reason);
        let product_type = xml::first_text(els, "PRODUCT_TYPE").unwrap_or_default();
        let level = if product_type.contains("1C") {
            "L1C"
        } else if product_type.ends_with("2Ap") {
            "L2Ap"
        } else if product_type.contains("2A") {
            "L2A"
        } else if mtd
            .to_string_lossy()
            .to_ascii_uppercase()
            .contains("MSIL1C")
        {
            "L1C"
        } else {
            "L2A"
        }
        .to_string();
        let (quantification_element, quantification) = [
            "BOA_QUANTIFICATION_VALUE",
            "L2A_BOA_QUANTIFICATION_VALUE",
            "QUANTIFICATION_VALUE",
        ]
        .iter()
        .find_map(|k| xml::first_text(els, k).map(|v| (*k, v)))
        .ok_or_else(|| {
            bad(
                "no quantification value (BOA_QUANTIFICATION_VALUE / QUANTIFICATION_VALUE): \
                 the reflectance of the product cannot be known"
                    .into(),
            )
        })?;
        let quantification: f64 = quantification
            .parse()
            .ok()
            .filter(|q: &f64| q.is_finite() && *q > 0.0)
            .ok_or_else(|| {
                bad(format!(
                    "quantification value {quantification:?} is not a positive number"
                ))
            })?;

        let mut id_to_band: BTreeMap<String, String> = BTreeMap::new();
        for e in els.iter().filter(|e| e.name == "Spectral_Information") {
            if let (Some(id), Some(b)) = (e.attribute("bandId"), e.attribute("physicalBand")) {
                id_to_band.insert(id.to_string(), normalise_band(b));
            }
        }
        let band_of_id = |id: &str| -> Option<String> {
            id_to_band.get(id).cloned().or_else(|| {
                id.parse::<usize>()
                    .ok()
                    .and_then(|i| BAND_ORDER.get(i))
                    .map(|b| b.to_string())
            })
        };
        let mut offsets = BTreeMap::new();
        let mut offset_element = "BOA_ADD_OFFSET";
        for e in els
            .iter()
            .filter(|e| e.name == "BOA_ADD_OFFSET" || e.name == "RADIO_ADD_OFFSET")
        {
            offset_element = if e.name == "BOA_ADD_OFFSET" {
                "BOA_ADD_OFFSET"
            } else {
                "RADIO_ADD_OFFSET"
            };
            let id = e
                .attribute("band_id")
                .ok_or_else(|| bad(format!("a {} without band_id", e.name)))?;
            let band = band_of_id(id)
                .ok_or_else(|| bad(format!("{} names an unknown band_id {id:?}", e.name)))?;
            let v: f64 = e
                .text
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| {
                    bad(format!(
                        "{} of band {band}: {:?} is not a number",
                        e.name, e.text
                    ))
                })?;
            offsets.insert(band, v);
        }

        let mut nodata = 0.0;
        for (i, e) in els.iter().enumerate() {
            if e.name == "SPECIAL_VALUE_TEXT" && e.text.eq_ignore_ascii_case("NODATA") {
                if let Some(v) = els[i + 1..]
                    .iter()
                    .find(|n| n.name == "SPECIAL_VALUE_INDEX")
                    .and_then(|n| n.text.parse::<f64>().ok())
                {
                    nodata = v;
                }
            }
        }
        let date = [
            "PRODUCT_START_TIME",
            "DATATAKE_SENSING_START",
            "SENSING_TIME",
        ]
        .iter()
        .find_map(|k| xml::first_text(els, k).and_then(parse_date_prefix));
        let uri = xml::first_text(els, "PRODUCT_URI").unwrap_or_default();
        let mut band_files: BTreeMap<String, (String, Option<u32>)> = BTreeMap::new();
        for e in els
            .iter()
            .filter(|e| e.name == "IMAGE_FILE" || e.name == "IMAGE_FILE_2A")
        {
            let Some((band, res)) = band_of_file(&e.text) else {
                continue;
            };
            // The band's native resolution where the product has it (L2A also holds
            // resampled copies: B01 at 20 m, B02 at 60 m …), else the finest listed.
            let native = native_resolution(&band);
            let better = match band_files.get(&band) {
                None => true,
                Some((_, old)) => match (res, old) {
                    (Some(r), Some(o)) => *o != native && (r == native || r < *o),
                    _ => false,
                },
            };
            if better {
                band_files.insert(band, (e.text.clone(), res));
            }
        }
        if band_files.is_empty() {
            return Err(bad("the product lists no band image (IMAGE_FILE)".into()));
        }
        let tile_id = tile_in(uri).or_else(|| {
            band_files
                .values()
                .find_map(|(f, _)| f.split('/').find_map(tile_in))
        });
        Ok(ProductMetadata {
            file: mtd.to_path_buf(),
            level,
            baseline: xml::first_text(els, "PROCESSING_BASELINE").map(str::to_string),
            spacecraft: xml::first_text(els, "SPACECRAFT_NAME").map(str::to_string),
            tile_id,
            date,
            quantification,
            quantification_element,
            offsets,
            offset_element,
            nodata,
            band_files,
        })
    }

    /// How the radiometry was read, for reports.
    fn radiometry_source(&self) -> String {
        let file = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!(
            "{file}: {} {}",
            self.quantification_element, self.quantification
        )
    }

    /// The granule metadata (`GRANULE/<granule>/MTD_TL.xml`) of the first band file.
    fn granule_metadata(&self, root: &Path) -> Option<PathBuf> {
        let (file, _) = self.band_files.values().next()?;
        let mut parts = file.split('/');
        let (Some("GRANULE"), Some(granule)) = (parts.next(), parts.next()) else {
            return None;
        };
        let tl = root.join("GRANULE").join(granule).join("MTD_TL.xml");
        vsi::exists(&tl).then_some(tl)
    }
}

/// The resolution (m) at which the instrument samples a band.
fn native_resolution(band: &str) -> u32 {
    match band {
        "B02" | "B03" | "B04" | "B08" => 10,
        "B01" | "B09" | "B10" => 60,
        _ => 20,
    }
}

/// `B1` → `B01`, `B8A` → `B8A`.
fn normalise_band(b: &str) -> String {
    let u = b.trim().to_ascii_uppercase();
    match u.strip_prefix('B') {
        Some(rest) if rest.len() == 1 && rest.chars().all(|c| c.is_ascii_digit()) => {
            format!("B0{rest}")
        }
        _ => u,
    }
}

/// `…/T34UCF_20230823T095559_B02_10m` → (`B02`, 10); `…/BAR_B8A` → (`B8A`, None); the
/// spectral bands and SCL only (not TCI, AOT, WVP, masks).
fn band_of_file(file: &str) -> Option<(String, Option<u32>)> {
    let stem = file.rsplit('/').next()?;
    let mut tokens: Vec<&str> = stem.split('_').collect();
    let res = tokens
        .last()
        .and_then(|t| t.strip_suffix('m').and_then(|n| n.parse::<u32>().ok()));
    if res.is_some() {
        tokens.pop();
    }
    let band = normalise_band(tokens.last()?);
    let known = BAND_ORDER.contains(&band.as_str()) || band == "SCL";
    known.then_some((band, res))
}

/// `T34UCF` in `…_T34UCF_…` or `L2A_T34UCF_A03…`.
fn tile_in(s: &str) -> Option<String> {
    s.split('_')
        .find(|t| {
            let b = t.as_bytes();
            b.len() == 6
                && b[0] == b'T'
                && b[1].is_ascii_digit()
                && b[2].is_ascii_digit()
                && b[3..].iter().all(|c| c.is_ascii_uppercase())
        })
        .map(str::to_string)
}

/// The granule's geocoding (`MTD_TL.xml`): CRS and, per resolution, the upper-left corner
/// and pixel size.
#[derive(Clone, Debug, PartialEq)]
pub struct TileGeocoding {
    pub crs: String,
    /// resolution → (ulx, uly, xdim, ydim, ncols, nrows)
    pub positions: BTreeMap<u32, [f64; 6]>,
}

impl TileGeocoding {
    pub fn read(tl: &Path) -> Result<TileGeocoding> {
        let bytes = vsi::read_bytes(tl, MAX_XML_BYTES)?;
        let text = String::from_utf8_lossy(&bytes);
        let els = xml::elements(&text).map_err(|reason| TilingError::malformed(tl, reason))?;
        let crs = xml::first_text(&els, "HORIZONTAL_CS_CODE")
            .ok_or_else(|| TilingError::malformed(tl, "no HORIZONTAL_CS_CODE"))?
            .to_string();
        let mut positions: BTreeMap<u32, [f64; 6]> = BTreeMap::new();
        let mut pending: BTreeMap<&str, f64> = BTreeMap::new();
        for e in &els {
            match e.name.as_str() {
                "ULX" | "ULY" | "XDIM" | "YDIM" | "NROWS" | "NCOLS" => {
                    if let Ok(v) = e.text.parse::<f64>() {
                        pending.insert(
                            match e.name.as_str() {
                                "ULX" => "ULX",
                                "ULY" => "ULY",
                                "XDIM" => "XDIM",
                                "YDIM" => "YDIM",
                                "NROWS" => "NROWS",
                                _ => "NCOLS",
                            },
                            v,
                        );
                    }
                }
                "Size" | "Geoposition" => {
                    if let Some(r) = e
                        .attribute("resolution")
                        .and_then(|r| r.parse::<u32>().ok())
                    {
                        let p = positions.entry(r).or_insert([f64::NAN; 6]);
                        for (k, i) in [
                            ("ULX", 0),
                            ("ULY", 1),
                            ("XDIM", 2),
                            ("YDIM", 3),
                            ("NCOLS", 4),
                            ("NROWS", 5),
                        ] {
                            if let Some(v) = pending.get(k) {
                                p[i] = *v;
                            }
                        }
                    }
                    pending.clear();
                }
                _ => {}
            }
        }
        Ok(TileGeocoding { crs, positions })
    }

    /// A VRT in GDAL's memory that gives `scene` (a band file without georeferencing) the
    /// granule's CRS and position at its resolution (from the file name, else from its size).
    fn wrap(&self, scene: &Scene, res: Option<u32>) -> Result<PathBuf> {
        let pos = res
            .and_then(|r| self.positions.get(&r))
            .or_else(|| {
                self.positions
                    .values()
                    .find(|p| p[4] as usize == scene.width && p[5] as usize == scene.height)
            })
            .filter(|p| p[..4].iter().all(|v| v.is_finite()))
            .ok_or_else(|| TilingError::NoGeoreference {
                path: scene.path.clone(),
            })?;
        let gdal_type = match scene.dtype {
            crate::dtype::DataType::U8 => "Byte",
            crate::dtype::DataType::U16 => "UInt16",
            crate::dtype::DataType::I16 => "Int16",
            crate::dtype::DataType::F32 => "Float32",
            other => {
                return Err(TilingError::unsupported(
                    &scene.path,
                    format!("a {other} band file without georeferencing"),
                ))
            }
        };
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let xml = format!(
            r#"<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{srs}</SRS><GeoTransform>{ulx}, {xd}, 0, {uly}, 0, {yd}</GeoTransform><VRTRasterBand dataType="{t}" band="1"><SimpleSource><SourceFilename relativeToVRT="0">{src}</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"#,
            w = scene.width,
            h = scene.height,
            srs = escape(&self.crs),
            ulx = pos[0],
            uly = pos[1],
            xd = pos[2],
            yd = pos[3],
            t = gdal_type,
            src = escape(&scene.path.to_string_lossy()),
        );
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let stem = scene
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "band".into());
        let vrt = PathBuf::from(format!(
            "/vsimem/gengdi/s2-geocoded/{}/{stem}.vrt",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        gdal::vsi::create_mem_file(&vrt, xml.into_bytes())
            .map_err(|e| TilingError::gdal(&scene.path, e))?;
        Ok(vrt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_files_are_named_by_band_and_resolution() {
        assert_eq!(
            band_of_file("GRANULE/L2A_T34UCF/IMG_DATA/R20m/T34UCF_20230823T095559_B8A_20m"),
            Some(("B8A".to_string(), Some(20)))
        );
        assert_eq!(
            band_of_file("GRANULE/FOO/IMG_DATA/BAR_B1"),
            Some(("B01".to_string(), None))
        );
        assert_eq!(
            band_of_file("GRANULE/x/IMG_DATA/R20m/T34UCF_20230823T095559_SCL_20m"),
            Some(("SCL".to_string(), Some(20)))
        );
        assert_eq!(band_of_file("x/T34UCF_20230823T095559_TCI_10m"), None);
        assert_eq!(band_of_file("x/T34UCF_20230823T095559_AOT_10m"), None);
        assert_eq!(
            tile_in("S2B_MSIL2A_20230823T095559_N0509_R122_T34UCF_20230823T124759.SAFE").as_deref(),
            Some("T34UCF")
        );
    }
}
