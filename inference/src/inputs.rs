//! The scenes of an analysis: files, directories and STAC Items / ItemCollections → scenes
//! → one scene stack with the land-cover model's bands (and SCL when every date has one).

use crate::error::{InferenceError, Result};
use crate::stac;
use gengdi_tiling::{AnalysisGrid, CommonBand, Scene, SceneOptions, SceneStack, StackOptions};
use std::path::{Path, PathBuf};

/// File extensions a directory is expanded to.
pub const RASTER_EXTENSIONS: [&str; 5] = ["tif", "tiff", "vrt", "jp2", "img"];

fn extension(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether a path names a STAC Item / ItemCollection (`.json` or `.geojson`).
pub fn is_stac_path(p: &Path) -> bool {
    matches!(extension(p).as_str(), "json" | "geojson")
}

/// Open every scene the inputs name: a delivered product (a Sentinel-2 `.SAFE` folder, its
/// `.zip` or `MTD_MSIL*.xml`; a Landsat Collection 2 `*_MTL.json` or its folder) as the
/// scenes of its band files (see [`gengdi_tiling::product`]), a raster file as is, a
/// directory as the rasters it holds (sorted; `.tif .tiff .vrt .jp2 .img`), a `.json` / `.geojson` as a STAC Item or
/// ItemCollection (see [`crate::stac`]). `opts` applies to every scene (a STAC item's date
/// and band names replace `opts.date` / `opts.band_names`). `bands` are the bands the
/// analysis needs from every STAC item (by name or common name); `optional` are taken from an
/// item when it has them (e.g. `SCL`). `opts.chunk_cache_bytes` is the decoded-chunk budget
/// of all the scenes together: each gets an equal share.
pub fn open_scenes(
    inputs: &[PathBuf],
    opts: &SceneOptions,
    bands: &[String],
    optional: &[String],
) -> Result<Vec<Scene>> {
    let mut scenes = Vec::new();
    for p in inputs {
        // `s3://…` and `https://…` under an allowed prefix: read by GDAL with range requests.
        if let Some(vsi) = p
            .to_str()
            .map(|href| gengdi_tiling::vsi::resolve_remote(href, &opts.remote_prefixes))
            .transpose()?
            .flatten()
        {
            scenes.push(Scene::open_with(&vsi, opts)?);
            continue;
        }
        if gengdi_tiling::product::is_product(p) {
            scenes.extend(gengdi_tiling::product::open_scenes(p, opts)?);
        } else if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| InferenceError::Config {
                    what: p.display().to_string(),
                    reason: format!("cannot list the directory: {e}"),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| RASTER_EXTENSIONS.contains(&extension(f).as_str()))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(InferenceError::Config {
                    what: p.display().to_string(),
                    reason: "the directory holds no .tif / .tiff / .vrt / .jp2 / .img files".into(),
                });
            }
            for f in found {
                scenes.push(Scene::open_with(&f, opts)?);
            }
        } else if is_stac_path(p) {
            scenes.extend(stac::open_scenes(p, opts, bands, optional)?);
        } else {
            scenes.push(Scene::open_with(p, opts)?);
        }
    }
    // `opts.chunk_cache_bytes` is the budget of the whole stack, not of each scene: a season
    // of many dates would otherwise keep many times the budget in decoded chunks. The
    // scenes GDAL reads block by block (JPEG 2000 band files) share one cache of
    // `opts.block_cache_bytes`, used where the tiles are.
    let fast = scenes
        .iter()
        .filter(|s| s.gdal_block_size().is_none())
        .count();
    let per_scene = opts.chunk_cache_bytes / fast.max(1);
    for s in &mut scenes {
        if s.gdal_block_size().is_none() {
            s.set_chunk_cache(per_scene);
        }
    }
    Scene::share_block_cache(&mut scenes, opts.block_cache_bytes);
    Ok(scenes)
}

/// Whether every date of `scenes` (grouped as [`SceneStack`] groups them: scenes of one date
/// form one layer, a dateless scene is a layer of its own) has a band named `band` (or with
/// its common name).
pub fn every_date_has(scenes: &[Scene], band: &str) -> bool {
    let has = |s: &Scene| {
        let wanted = CommonBand::from_band_name(band, s.sensor);
        s.bands.iter().any(|b| {
            b.name.eq_ignore_ascii_case(band) || (wanted.is_some() && b.common_name == wanted)
        })
    };
    !scenes.is_empty()
        && scenes.iter().all(|s| match s.date {
            Some(d) => scenes.iter().filter(|o| o.date == Some(d)).any(has),
            None => has(s),
        })
}

/// Stack `scenes` with `model_bands`, plus the cloud mask when every date has one: `SCL`
/// (Sentinel-2), else `QA_PIXEL` (Landsat Collection 2) (decided from the scenes' band
/// names, up front). `grid`: put the stack on this grid (warping scenes that
/// are on another one), else the grid of the finest scene.
pub fn build_stack(
    scenes: Vec<Scene>,
    model_bands: &[String],
    grid: Option<AnalysisGrid>,
) -> Result<SceneStack> {
    let mut bands = model_bands.to_vec();
    if every_date_has(&scenes, "SCL") {
        bands.push("SCL".into());
    } else if every_date_has(&scenes, "QA_PIXEL") {
        bands.push("QA_PIXEL".into());
    }
    let stack = SceneStack::build(
        scenes,
        &StackOptions {
            bands: Some(bands),
            grid,
            ..Default::default()
        },
    )?;
    stack.check_radiometry()?;
    Ok(stack)
}
