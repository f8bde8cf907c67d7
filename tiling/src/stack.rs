//! Several dates (and sensors) on one analysis grid, read tile by tile.
//!
//! The analysis grid is a north-up CRS + affine + size (by default the grid of the scene
//! with the finest pixels). A scene already on that grid is read directly by its reader. A
//! scene on the same CRS whose pixels are whole multiples of the grid's, on its pixel
//! edges (20 m and 60 m Sentinel-2 bands under the 10 m ones; another extent at the same
//! resolution), is read by its own reader too, the source window a tile needs once, and
//! interpolated onto the grid with the warper's arithmetic ([`crate::resample`]). Any
//! other (another CRS, a resolution that is no whole multiple) is warped onto it by GDAL
//! through an in-memory warped VRT description. Either way: bilinear for reflectance,
//! nearest neighbour for categorical bands (SCL), exact transformation (`-et 0`), with
//! pixels outside a scene's footprint read as nodata. Tiles are read only when they run,
//! so memory follows the number of tiles in flight, not the scene size.
//!
//! Values come out as `f32` with `NaN` for every pixel that has no valid value: declared
//! (or user-given) nodata, outside the scene, or in a halo past the grid's edge.

use crate::bands::CommonBand;
use crate::error::{Result, TilingError};
use crate::gdal_log;
use crate::gdal_open::{self, DataKind};
use crate::geo::{Crs, GeoTransform};
use crate::grid::{Tile, TileGrid};
use crate::pool::DatasetPool;
use crate::resample::ScaledGrid;
use crate::scene::Scene;
use crate::window::PixelWindow;
use chrono::NaiveDate;
use ndarray::{s, Array3, Array4, Axis};
use rayon::prelude::*;
use serde::Serialize;
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The grid every layer of a stack is put on.
#[derive(Clone, Debug, Serialize)]
pub struct AnalysisGrid {
    pub crs: Crs,
    pub world_from_pixel: GeoTransform,
    pub width: usize,
    pub height: usize,
}

impl AnalysisGrid {
    /// The grid a scene's pixels are on.
    pub fn of_scene(scene: &Scene) -> Result<AnalysisGrid> {
        let (crs, gt) = scene.georeference()?;
        Ok(AnalysisGrid {
            crs: crs.clone(),
            world_from_pixel: gt,
            width: scene.width,
            height: scene.height,
        })
    }

    /// Same CRS, same affine (to a millionth of a pixel) and same size.
    pub fn same_as(&self, other: &AnalysisGrid) -> bool {
        let (px, py) = self.world_from_pixel.pixel_size();
        let tol = [px, px, py, py, px, py].map(|p| p * 1e-6);
        let a = self.world_from_pixel.0;
        let b = other.world_from_pixel.0;
        let idx = [0usize, 1, 2, 3, 4, 5];
        self.width == other.width
            && self.height == other.height
            && idx
                .iter()
                .all(|&i| (a[i] - b[i]).abs() <= tol[i].max(1e-12))
            && self.crs.same_as(&other.crs)
    }

    pub fn bounds(&self) -> [f64; 4] {
        self.world_from_pixel.bounds(self.width, self.height)
    }
}

/// GDAL resampling used when a band is warped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resampling {
    Nearest,
    Bilinear,
    Cubic,
    Average,
}

impl Resampling {
    fn gdal_name(self) -> &'static str {
        match self {
            Resampling::Nearest => "near",
            Resampling::Bilinear => "bilinear",
            Resampling::Cubic => "cubic",
            Resampling::Average => "average",
        }
    }
}

/// How to build a stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// The grid; by default the grid of the scene with the finest pixels.
    pub grid: Option<AnalysisGrid>,
    /// Bands every layer must supply, by name (`B04`) or common name (`red`); by default
    /// the bands of the first layer.
    pub bands: Option<Vec<String>>,
    /// Resampling of continuous bands (categorical bands always use nearest).
    pub continuous: Resampling,
    /// Put every scene that is not on the grid through GDAL's warper, even one whose
    /// pixels are whole multiples of the grid's (the oracle the integer-scale reader is
    /// tested against; slower).
    pub always_gdal_warp: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            grid: None,
            bands: None,
            continuous: Resampling::Bilinear,
            always_gdal_warp: false,
        }
    }
}

/// How a scene's pixels reach the analysis grid.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "placement")]
pub enum Placement {
    /// Already on the grid: read directly.
    Direct,
    /// Each scene pixel is `factor` × `factor` grid pixels, on the grid's pixel edges:
    /// read by the scene's reader and interpolated ([`crate::resample`]).
    Scaled {
        #[serde(flatten)]
        scaled: ScaledGrid,
        resampling: Resampling,
    },
    /// Warped by GDAL; the VRT descriptions are kept per resampling.
    Warped {
        #[serde(skip)]
        vrt_continuous: String,
        #[serde(skip)]
        vrt_nearest: String,
        resampling: Resampling,
    },
}

/// One scene in the stack with its placement on the grid.
#[derive(Clone, Debug, Serialize)]
pub struct StackScene {
    pub scene: Scene,
    pub placement: Placement,
}

/// One band of a layer: which scene and which of its bands (0-based) supplies it.
#[derive(Clone, Debug, Serialize)]
pub struct StackBand {
    pub name: String,
    pub common_name: Option<CommonBand>,
    pub scene: usize,
    pub band: usize,
}

/// One date: the bands that date supplies, possibly from several files.
#[derive(Clone, Debug, Serialize)]
pub struct Layer {
    pub date: Option<NaiveDate>,
    pub bands: Vec<StackBand>,
}

/// Several dates on one grid.
#[derive(Debug, Serialize)]
pub struct SceneStack {
    pub grid: AnalysisGrid,
    pub scenes: Vec<StackScene>,
    pub layers: Vec<Layer>,
    /// Band names in the order they appear in every tile array.
    pub band_names: Vec<String>,
    #[serde(skip)]
    window_reads: AtomicU64,
    /// Open warped views of the scenes, reused from read to read.
    #[serde(skip)]
    warped_pool: DatasetPool,
}

/// The pixels of one tile: shape (dates, bands, rows, cols) over the tile's halo window.
#[derive(Debug)]
pub struct TileData {
    pub tile: Tile,
    pub values: Array4<f32>,
    /// Time spent reading and decoding this tile (all dates and bands), for phase timings.
    pub read_time: std::time::Duration,
    /// The part of `read_time` spent putting scenes onto the grid: interpolating scaled
    /// scenes, and the whole of each GDAL warped read (which decodes its source too).
    pub warp_time: std::time::Duration,
}

impl TileData {
    /// The tile's core values (no halo).
    pub fn core(&self) -> ndarray::ArrayView4<'_, f32> {
        let c = self.tile.core_in_tile();
        let (r0, c0) = (c.row_off as usize, c.col_off as usize);
        self.values
            .slice(s![.., .., r0..r0 + c.rows, c0..c0 + c.cols])
    }
}

/// Planned block reads of a run over tiles, forgotten when dropped (the run done, failed
/// or cancelled).
struct ReadPlan(Vec<(Arc<crate::blocks::BlockCache>, Vec<usize>)>);

impl Drop for ReadPlan {
    fn drop(&mut self) {
        for (cache, keys) in self.0.drain(..) {
            cache.end_plan(keys);
        }
    }
}

impl SceneStack {
    /// Group scenes into dated layers and put them all on one grid.
    pub fn build(scenes: Vec<Scene>, opts: &StackOptions) -> Result<SceneStack> {
        if scenes.is_empty() {
            return Err(TilingError::Alignment {
                reason: "no scenes were given".into(),
            });
        }
        let grid = match &opts.grid {
            Some(g) => g.clone(),
            None => {
                let mut best: Option<(f64, &Scene)> = None;
                for s in &scenes {
                    let (_, gt) = s.georeference()?;
                    let (px, py) = gt.pixel_size();
                    let area = px * py;
                    if best.is_none_or(|(a, _)| area < a * (1.0 - 1e-9)) {
                        best = Some((area, s));
                    }
                }
                match best {
                    Some((_, s)) => AnalysisGrid::of_scene(s)?,
                    None => unreachable_grid()?,
                }
            }
        };
        if !grid.world_from_pixel.is_north_up() {
            return Err(TilingError::Alignment {
                reason: "the analysis grid is rotated; choose a north-up grid to warp onto".into(),
            });
        }
        let mut stack_scenes = Vec::with_capacity(scenes.len());
        for scene in scenes {
            let own = AnalysisGrid::of_scene(&scene)?;
            let scaled = ScaledGrid::detect(&own, &grid).filter(|_| {
                !opts.always_gdal_warp
                    && matches!(opts.continuous, Resampling::Bilinear | Resampling::Nearest)
            });
            let placement = if own.same_as(&grid) {
                Placement::Direct
            } else if let Some(scaled) = scaled {
                check_overlap(&scene, &own, &grid)?;
                Placement::Scaled {
                    scaled,
                    resampling: opts.continuous,
                }
            } else {
                check_overlap(&scene, &own, &grid)?;
                Placement::Warped {
                    vrt_continuous: warped_vrt(&scene, &grid, opts.continuous)?,
                    vrt_nearest: warped_vrt(&scene, &grid, Resampling::Nearest)?,
                    resampling: opts.continuous,
                }
            };
            stack_scenes.push(StackScene { scene, placement });
        }

        // Layers: scenes of one date together (a dateless scene is a layer of its own).
        let mut order: Vec<usize> = (0..stack_scenes.len()).collect();
        order.sort_by(|a, b| {
            let (sa, sb) = (&stack_scenes[*a].scene, &stack_scenes[*b].scene);
            sa.date.cmp(&sb.date).then_with(|| sa.path.cmp(&sb.path))
        });
        let mut groups: Vec<(Option<NaiveDate>, Vec<usize>)> = Vec::new();
        for i in order {
            let d = stack_scenes[i].scene.date;
            match groups.last_mut() {
                Some((gd, members)) if d.is_some() && *gd == d => members.push(i),
                _ => groups.push((d, vec![i])),
            }
        }
        let available = |members: &[usize]| -> Vec<StackBand> {
            members
                .iter()
                .flat_map(|&si| {
                    stack_scenes[si].scene.bands.iter().map(move |b| StackBand {
                        name: b.name.clone(),
                        common_name: b.common_name,
                        scene: si,
                        band: b.index - 1,
                    })
                })
                .collect()
        };
        let wanted: Vec<String> = match &opts.bands {
            Some(b) if !b.is_empty() => b.clone(),
            _ => available(&groups[0].1)
                .into_iter()
                .map(|b| b.name)
                .collect(),
        };
        let mut layers = Vec::with_capacity(groups.len());
        for (date, members) in &groups {
            let avail = available(members);
            let mut bands = Vec::with_capacity(wanted.len());
            for w in &wanted {
                let common = CommonBand::from_band_name(w, stack_scenes[members[0]].scene.sensor);
                let found = avail
                    .iter()
                    .find(|b| b.name.eq_ignore_ascii_case(w))
                    .or_else(|| {
                        avail
                            .iter()
                            .find(|b| common.is_some() && b.common_name == common)
                    });
                match found {
                    Some(b) => bands.push(b.clone()),
                    None => {
                        return Err(TilingError::Alignment {
                            reason: format!(
                                "the layer of {} ({}) has no band {w:?}; it has {}. Choose bands every date has with --bands",
                                date.map(|d| d.to_string()).unwrap_or_else(|| "no date".into()),
                                members
                                    .iter()
                                    .map(|i| stack_scenes[*i].scene.path.display().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                avail.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        })
                    }
                }
            }
            layers.push(Layer { date: *date, bands });
        }
        Ok(SceneStack {
            grid,
            scenes: stack_scenes,
            layers,
            band_names: wanted,
            window_reads: AtomicU64::new(0),
            warped_pool: DatasetPool::default(),
        })
    }

    /// Every band the stack reads must have a known radiometry (see
    /// [`crate::radiometry`]) before its values are classified: the first band that has none
    /// is an error naming the file, the band and why.
    pub fn check_radiometry(&self) -> Result<()> {
        for layer in &self.layers {
            for b in &layer.bands {
                let scene = &self.scenes[b.scene].scene;
                let info = &scene.bands[b.band];
                if let crate::radiometry::RadiometrySource::Unknown { reason } =
                    &info.radiometry.source
                {
                    return Err(TilingError::UnknownRadiometry {
                        path: scene.path.clone(),
                        band: info.name.clone(),
                        reason: reason.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A tile layout over the analysis grid.
    pub fn tile_grid(&self, tile_size: usize, halo: usize) -> Result<TileGrid> {
        TileGrid::new(self.grid.width, self.grid.height, tile_size, halo)
    }

    /// How many window reads the stack has made so far (for tests and progress).
    pub fn window_reads(&self) -> u64 {
        self.window_reads.load(Ordering::Relaxed)
    }

    /// Bytes of one tile's array.
    pub fn tile_bytes(&self, grid: &TileGrid) -> usize {
        let side = grid.tile_size + 2 * grid.halo;
        self.layers.len() * self.band_names.len() * side * side * std::mem::size_of::<f32>()
    }

    /// Read one tile: every layer's bands over the tile's halo window.
    pub fn read_tile(&self, tile: &Tile) -> Result<TileData> {
        let started = std::time::Instant::now();
        let w = tile.with_halo;
        let mut values = Array4::<f32>::from_elem(
            (self.layers.len(), self.band_names.len(), w.rows, w.cols),
            f32::NAN,
        );
        let mut warp_time = std::time::Duration::ZERO;
        for (li, mut dst) in values.axis_iter_mut(Axis(0)).enumerate() {
            warp_time += self.fill_layer(li, &w, &mut dst)?;
        }
        Ok(TileData {
            tile: *tile,
            values,
            read_time: started.elapsed(),
            warp_time,
        })
    }

    /// Read one layer (date) of a tile: its bands over the tile's halo window, shape
    /// (bands, rows, cols). A tiled run that handles one date at a time holds one date's
    /// pixels per tile in flight instead of the whole season's.
    pub fn read_layer(&self, tile: &Tile, layer: usize) -> Result<Array3<f32>> {
        let mut values = Array3::<f32>::zeros((0, 0, 0));
        self.read_layer_into(tile, layer, &mut values)?;
        Ok(values)
    }

    /// [`read_layer`](Self::read_layer) into `values`, reusing its allocation when it has
    /// the right shape (a worker keeps one buffer for all its tiles).
    pub fn read_layer_into(
        &self,
        tile: &Tile,
        layer: usize,
        values: &mut Array3<f32>,
    ) -> Result<()> {
        if layer >= self.layers.len() {
            return Err(TilingError::Alignment {
                reason: format!(
                    "internal: layer {layer} of a stack of {}",
                    self.layers.len()
                ),
            });
        }
        let w = tile.with_halo;
        let shape = (self.band_names.len(), w.rows, w.cols);
        let inside = w.intersection(&PixelWindow::full(self.grid.width, self.grid.height));
        if values.dim() != shape {
            *values = Array3::<f32>::from_elem(shape, f32::NAN);
        } else if inside != w {
            // Pixels past the grid's edge are not read: they must be NaN.
            values.fill(f32::NAN);
        }
        self.fill_layer(layer, &w, &mut values.view_mut())?;
        Ok(())
    }

    /// The scenes layer `li` reads, each with the layer's bands it supplies (the band's
    /// place in the layer, its index in the scene): one read per scene, all its bands at once.
    fn layer_scenes(&self, li: usize) -> Vec<(usize, Vec<(usize, usize)>)> {
        let mut by_scene: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
        for (bi, b) in self.layers[li].bands.iter().enumerate() {
            match by_scene.iter_mut().find(|(s, _)| *s == b.scene) {
                Some((_, v)) => v.push((bi, b.band)),
                None => by_scene.push((b.scene, vec![(bi, b.band)])),
            }
        }
        by_scene
    }

    /// Tell the decoded-block caches of the scenes read block by block which blocks
    /// reading `tiles` will take, and from which row (see [`crate::blocks`]): each block
    /// then leaves its cache after its last read, and its top rows once no read left
    /// needs them. The plan ends when the returned value is dropped.
    fn plan_reads(&self, tiles: &[Tile]) -> ReadPlan {
        let mut keys: Vec<Vec<usize>> = vec![Vec::new(); self.scenes.len()];
        if !self
            .scenes
            .iter()
            .any(|s| s.scene.gdal_block_size().is_some())
        {
            return ReadPlan(Vec::new());
        }
        let full = PixelWindow::full(self.grid.width, self.grid.height);
        for tile in tiles {
            let inside = tile.with_halo.intersection(&full);
            if inside.is_empty() {
                continue;
            }
            for li in 0..self.layers.len() {
                for (si, bands) in self.layer_scenes(li) {
                    let ss = &self.scenes[si];
                    if ss.scene.gdal_block_size().is_none() {
                        continue;
                    }
                    let window = match &ss.placement {
                        Placement::Direct => Some(inside),
                        Placement::Scaled { scaled, .. } => scaled.source_window(&inside),
                        Placement::Warped { .. } => None,
                    };
                    if let Some(w) = window {
                        let band_idx: Vec<usize> = bands.iter().map(|(_, b)| *b).collect();
                        ss.scene.plan_read(&w, &band_idx, &mut keys[si]);
                    }
                }
            }
        }
        ReadPlan(
            self.scenes
                .iter()
                .zip(keys)
                .filter_map(|(s, k)| Some((Arc::clone(s.scene.block_cache()?), k)))
                .filter(|(_, k)| !k.is_empty())
                .collect(),
        )
    }

    /// Fill `dst` (bands, rows, cols of `w`) with layer `li`: every pixel of `w` inside the
    /// grid is written, the others are left as they are (NaN on entry). Returns the time
    /// spent putting scenes onto the grid (see [`TileData::warp_time`]).
    fn fill_layer(
        &self,
        li: usize,
        w: &PixelWindow,
        dst: &mut ndarray::ArrayViewMut3<'_, f32>,
    ) -> Result<std::time::Duration> {
        let mut warp_time = std::time::Duration::ZERO;
        let inside = w.intersection(&PixelWindow::full(self.grid.width, self.grid.height));
        if inside.is_empty() {
            return Ok(warp_time);
        }
        let (r0, c0) = (
            (inside.row_off - w.row_off) as usize,
            (inside.col_off - w.col_off) as usize,
        );
        for (si, bands) in self.layer_scenes(li) {
            let ss = &self.scenes[si];
            let band_idx: Vec<usize> = bands.iter().map(|(_, b)| *b).collect();
            let (rows, cols) = (r0..r0 + inside.rows, c0..c0 + inside.cols);
            // Stored values → reflectance × 10 000 (exactly (1, 0) where they are that
            // already, and for categorical bands), declared nodata → NaN (warped and
            // scaled reads carry NaN already).
            let conversions: Vec<(f32, f32, f32)> = bands
                .iter()
                .map(|(_, band)| {
                    let nodata = match ss.placement {
                        Placement::Direct => ss.scene.bands[*band].nodata.map(|v| v as f32),
                        Placement::Scaled { .. } | Placement::Warped { .. } => None,
                    };
                    let (gain, bias) = ss.scene.bands[*band].radiometry.to_canonical();
                    (nodata.unwrap_or(f32::NAN), gain, bias)
                })
                .collect();
            let identity =
                |&(nd, gain, bias): &(f32, f32, f32)| nd.is_nan() && gain == 1.0 && bias == 0.0;
            let convert = |k: usize, row: &mut [f32]| {
                let (nd, gain, bias) = conversions[k];
                to_canonical(row, nd, gain, bias);
            };
            let hook: Option<&crate::tiff::RowHook<'_, f32>> = if conversions.iter().all(identity) {
                None
            } else {
                Some(&convert)
            };
            // The layer bands this scene supplies are consecutive (a multi-band file in the
            // stack's band order, or one band): decode straight into the tile array,
            // converting each row as it is written.
            let first = bands[0].0;
            let consecutive = bands
                .iter()
                .enumerate()
                .all(|(k, (bi, _))| *bi == first + k);
            match (&ss.placement, consecutive) {
                (Placement::Direct, true) => {
                    let part =
                        dst.slice_mut(s![first..first + bands.len(), rows.clone(), cols.clone()]);
                    ss.scene
                        .read_window_into::<f32>(&inside, &band_idx, part, hook)?;
                }
                (placement, _) => {
                    let data = match placement {
                        Placement::Direct => ss.scene.read_window::<f32>(&inside, &band_idx)?,
                        Placement::Scaled { .. } => {
                            let (data, took) = self.read_scaled(si, &inside, &band_idx)?;
                            warp_time += took;
                            data
                        }
                        Placement::Warped { .. } => {
                            let started = std::time::Instant::now();
                            let data = self.read_warped(si, &inside, &band_idx)?;
                            warp_time += started.elapsed();
                            data
                        }
                    };
                    for (k, (bi, _)) in bands.iter().enumerate() {
                        let mut d = dst.slice_mut(s![*bi, rows.clone(), cols.clone()]);
                        d.assign(&data.index_axis(Axis(0), k));
                        if let Some(h) = hook {
                            for mut row in d.rows_mut() {
                                match row.as_slice_mut() {
                                    Some(r) => h(k, r),
                                    None => row.mapv_inplace(|v| {
                                        let (nd, gain, bias) = conversions[k];
                                        canonical(v, nd, gain, bias)
                                    }),
                                }
                            }
                        }
                    }
                }
            }
            self.window_reads.fetch_add(1, Ordering::Relaxed);
        }
        Ok(warp_time)
    }

    /// Give the fast readers' decoded-chunk caches a budget for a run over `grid`: none
    /// when no chunk is read by two tiles (no halo, tiles made of whole chunks — the cache
    /// would only hold chunks that are never asked for again), else `total_bytes` shared
    /// among the scenes. Returns the bytes given to each scene.
    pub fn set_chunk_cache_for(&mut self, grid: &TileGrid, total_bytes: usize) -> usize {
        let aligned = |s: &Scene| {
            s.structure.as_ref().is_some_and(|st| {
                st.chunk_width > 0
                    && st.chunk_height > 0
                    && grid.tile_size % st.chunk_width == 0
                    && grid.tile_size % st.chunk_height == 0
            })
        };
        // Scaled scenes read a source pixel past each tile's edge for bilinear: their
        // neighbours share those chunks.
        let shared = grid.halo > 0
            || self.scenes.iter().any(|s| match s.placement {
                Placement::Direct => !aligned(&s.scene),
                Placement::Scaled { .. } => true,
                Placement::Warped { .. } => false,
            });
        let per_scene = if shared {
            total_bytes / self.scenes.len().max(1)
        } else {
            0
        };
        for s in &mut self.scenes {
            s.scene.set_chunk_cache(per_scene);
        }
        per_scene
    }

    /// Read `bands` of scaled scene `scene` over grid window `window` (inside the grid):
    /// the source window it needs, once, through the scene's reader, declared nodata made
    /// NaN, then interpolated. Returns the values and the time the interpolation took.
    fn read_scaled(
        &self,
        scene: usize,
        window: &PixelWindow,
        bands: &[usize],
    ) -> Result<(ndarray::Array3<f32>, std::time::Duration)> {
        let ss = &self.scenes[scene];
        let Placement::Scaled {
            scaled, resampling, ..
        } = &ss.placement
        else {
            return Err(TilingError::Alignment {
                reason: "internal: scene is not scaled".into(),
            });
        };
        let mut out =
            ndarray::Array3::<f32>::from_elem((bands.len(), window.rows, window.cols), f32::NAN);
        let Some(src_win) = scaled.source_window(window) else {
            return Ok((out, std::time::Duration::ZERO));
        };
        let mut src = ss.scene.read_window::<f32>(&src_win, bands)?;
        let started = std::time::Instant::now();
        for (k, &b) in bands.iter().enumerate() {
            let info = &ss.scene.bands[b];
            let mut plane = src.index_axis_mut(Axis(0), k);
            if let Some(nd) = info.nodata.map(|v| v as f32) {
                plane.mapv_inplace(|v| if v == nd { f32::NAN } else { v });
            }
            let alg = if info.common_name.is_some_and(|c| c.is_categorical()) {
                Resampling::Nearest
            } else {
                *resampling
            };
            scaled.resample(
                plane.view(),
                &src_win,
                window,
                alg,
                out.index_axis_mut(Axis(0), k),
            );
        }
        Ok((out, started.elapsed()))
    }

    fn read_warped(
        &self,
        scene: usize,
        window: &PixelWindow,
        bands: &[usize],
    ) -> Result<ndarray::Array3<f32>> {
        let ss = &self.scenes[scene];
        let Placement::Warped {
            vrt_continuous,
            vrt_nearest,
            ..
        } = &ss.placement
        else {
            return Err(TilingError::Alignment {
                reason: "internal: scene is not warped".into(),
            });
        };
        let path = &ss.scene.path;
        let _scope = gdal_log::scope(format!(
            "reading {} warped onto the analysis grid, window {window}",
            path.display()
        ));
        let mut out =
            ndarray::Array3::<f32>::from_elem((bands.len(), window.rows, window.cols), f32::NAN);
        // Continuous and categorical bands come from two warped views of the file: each
        // read takes a pooled dataset of the view it needs (one per worker at most).
        for categorical in [false, true] {
            let mine: Vec<(usize, usize)> = bands
                .iter()
                .enumerate()
                .filter(|(_, &b)| {
                    ss.scene.bands[b]
                        .common_name
                        .is_some_and(|c| c.is_categorical())
                        == categorical
                })
                .map(|(k, &b)| (k, b))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let xml = if categorical {
                vrt_nearest
            } else {
                vrt_continuous
            };
            let key = (scene as u64) << 1 | u64::from(categorical);
            let open = || gdal::Dataset::open(xml).map_err(|e| TilingError::gdal(path, e));
            self.warped_pool.with(key, open, |ds| {
                for &(k, b) in &mine {
                    let band = ds
                        .rasterband(b + 1)
                        .map_err(|e| TilingError::gdal(path, e))?;
                    let mut plane = out.index_axis_mut(Axis(0), k);
                    let Some(slice) = plane.as_slice_mut() else {
                        return Err(TilingError::malformed(path, "output array not contiguous"));
                    };
                    band.read_into_slice(
                        (window.col_off as isize, window.row_off as isize),
                        (window.cols, window.rows),
                        (window.cols, window.rows),
                        slice,
                        None,
                    )
                    .map_err(|e| TilingError::gdal(path, e))?;
                }
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// The order tiles are read in: row by row, except where scenes are read block by
    /// block through a decoded-block cache (JPEG 2000 band files): then down the columns
    /// of strips as high as the tallest such block on the grid (2048 grid rows for a 20 m
    /// band in 1024² blocks), so the tiles that share a block are read one after the
    /// other, while it is in the cache.
    ///
    /// When the tallest blocks are those of a scaled scene (a 20 m band under 10 m ones),
    /// the strips start halfway down them (the first strip is half a strip high). A tile
    /// at a block's bottom edge reads the top source row of the block below for its
    /// bilinear margin; with strips on the blocks' edges that block would be needed a
    /// whole strip before its own strip, so either decoded twice or kept whole across a
    /// strip. Halfway down, a block is first read by the strip that holds its top half,
    /// decoded then, and only its lower half (with the row above it) waits for the next
    /// strip. This is done only where the half strip is made of whole tiles and keeps the
    /// other scenes' blocks whole within strips (the 10 m blocks of 1024 grid rows).
    pub fn tile_order(&self, grid: &TileGrid) -> Vec<Tile> {
        // Each block-read scene's block height on the grid, and whether it is scaled.
        let heights: Vec<(usize, bool)> = self
            .scenes
            .iter()
            .filter_map(|s| {
                let (_, bh) = s.scene.gdal_block_size()?;
                match &s.placement {
                    Placement::Direct => Some((bh, false)),
                    Placement::Scaled { scaled, .. } => {
                        Some((bh * scaled.factor, scaled.factor > 1))
                    }
                    Placement::Warped { .. } => None,
                }
            })
            .collect();
        let block_rows = heights.iter().map(|(h, _)| *h).max().unwrap_or(0);
        let ts = grid.tile_size.max(1);
        let strip = block_rows.div_ceil(ts).max(1);
        let half = strip / 2;
        let offset = if strip % 2 == 0
            && block_rows == strip * ts
            && heights.iter().any(|&(h, scaled)| scaled && h == block_rows)
            && heights
                .iter()
                .all(|&(h, scaled)| (scaled && h == block_rows) || (half * ts) % h == 0)
        {
            half
        } else {
            0
        };
        let (across, down) = (grid.tiles_across(), grid.tiles_down());
        let mut tops = vec![0];
        let mut top = if offset > 0 { offset } else { strip };
        while top < down {
            tops.push(top);
            top += strip;
        }
        let mut order = Vec::with_capacity(grid.len());
        for (i, &top) in tops.iter().enumerate() {
            let bottom = tops.get(i + 1).copied().unwrap_or(down);
            for col in 0..across {
                for row in top..bottom {
                    order.extend(grid.tile_at(col, row));
                }
            }
        }
        order
    }

    /// Run `f` on every tile that `skip` does not exclude, in parallel on the rayon pool.
    /// Each tile is read only when it runs, so at most (threads) tiles are in memory;
    /// skipped tiles are never read. The workers take tiles from one queue in
    /// [`tile_order`](Self::tile_order), so they read neighbouring tiles at the same time.
    /// `progress(done, total)` is called after each tile. Results come back in tile
    /// order; the first error stops the run (a failed read is a [`TilingError::Tile`]
    /// naming the tile).
    pub fn par_map_tiles<R, F, S>(
        &self,
        grid: &TileGrid,
        skip: S,
        f: F,
        progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    ) -> Result<Vec<(Tile, R)>>
    where
        R: Send,
        F: Fn(TileData) -> R + Sync,
        S: Fn(&Tile) -> bool + Sync,
    {
        self.try_par_map_tiles(grid, skip, |d| Ok::<R, TilingError>(f(d)), progress, None)
    }

    /// [`par_map_tiles`](Self::par_map_tiles) for work that can fail, and can be cancelled:
    /// `cancel` is checked before each tile is read (a set flag stops the run with
    /// [`TilingError::Cancelled`]; tiles already running finish), and the first error of
    /// `f`, or of reading a tile, stops the run. Tiles not yet started are never read.
    pub fn try_par_map_tiles<R, E, F, S>(
        &self,
        grid: &TileGrid,
        skip: S,
        f: F,
        progress: Option<&(dyn Fn(usize, usize) + Sync)>,
        cancel: Option<&AtomicBool>,
    ) -> std::result::Result<Vec<(Tile, R)>, E>
    where
        R: Send,
        E: From<TilingError> + Send,
        F: Fn(TileData) -> std::result::Result<R, E> + Sync,
        S: Fn(&Tile) -> bool + Sync,
    {
        if grid.width != self.grid.width || grid.height != self.grid.height {
            return Err(TilingError::InvalidGrid {
                reason: format!(
                    "tile grid is {}x{} but the stack's analysis grid is {}x{}",
                    grid.width, grid.height, self.grid.width, self.grid.height
                ),
            }
            .into());
        }
        let todo: Vec<Tile> = self
            .tile_order(grid)
            .into_iter()
            .filter(|t| !skip(t))
            .collect();
        let _plan = self.plan_reads(&todo);
        let total = todo.len();
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        // What the caller said it is doing holds on the workers too.
        let context = gdal_log::Context::capture();
        let workers = rayon::current_num_threads().clamp(1, total.max(1));
        let per_worker: Vec<std::result::Result<Vec<(Tile, R)>, E>> = (0..workers)
            .into_par_iter()
            .map(|_| {
                let _scope = context.enter();
                let mut mine = Vec::new();
                loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = todo.get(k) else {
                        break;
                    };
                    let fail = |e: E| {
                        failed.store(true, Ordering::Relaxed);
                        Err(e)
                    };
                    if cancel.is_some_and(|c| c.load(Ordering::Acquire)) {
                        return fail(
                            TilingError::Cancelled {
                                tiles_done: done.load(Ordering::Relaxed),
                                tiles_total: total,
                            }
                            .into(),
                        );
                    }
                    let data = match self.read_tile(t) {
                        Ok(d) => d,
                        Err(e) => {
                            return fail(
                                TilingError::Tile {
                                    index: t.index,
                                    col: t.col,
                                    row: t.row,
                                    window: t.with_halo,
                                    source: Box::new(e),
                                }
                                .into(),
                            )
                        }
                    };
                    match f(data) {
                        Ok(r) => mine.push((*t, r)),
                        Err(e) => return fail(e),
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(p) = progress {
                        p(n, total);
                    }
                }
                Ok(mine)
            })
            .collect();
        let mut all = Vec::with_capacity(total);
        for r in per_worker {
            all.extend(r?);
        }
        all.sort_unstable_by_key(|(t, _)| t.index);
        Ok(all)
    }
}

/// A stored value as reflectance × 10 000: `v × gain + bias`, NaN where it is `nodata`
/// (NaN when there is none: no value equals it).
#[inline(always)]
fn canonical(v: f32, nodata: f32, gain: f32, bias: f32) -> f32 {
    if v == nodata {
        f32::NAN
    } else {
        v * gain + bias
    }
}

/// [`canonical`] over a row, in place (a plain loop over a slice, which vectorises).
fn to_canonical(row: &mut [f32], nodata: f32, gain: f32, bias: f32) {
    for v in row {
        *v = canonical(*v, nodata, gain, bias);
    }
}

fn unreachable_grid() -> Result<AnalysisGrid> {
    Err(TilingError::Alignment {
        reason: "no scene has georeferencing".into(),
    })
}

/// A scene that does not touch the grid cannot be stacked on it.
fn check_overlap(scene: &Scene, own: &AnalysisGrid, grid: &AnalysisGrid) -> Result<()> {
    let to_grid = |x: f64, y: f64| -> Option<(f64, f64)> {
        if own.crs.same_as(&grid.crs) {
            return Some((x, y));
        }
        let src = own.crs.to_spatial_ref().ok()?;
        let dst = grid.crs.to_spatial_ref().ok()?;
        let t = gdal::spatial_ref::CoordTransform::new(&src, &dst).ok()?;
        let (mut xs, mut ys, mut zs) = ([x], [y], [0.0]);
        t.transform_coords(&mut xs, &mut ys, &mut zs).ok()?;
        Some((xs[0], ys[0]))
    };
    let b = own.bounds();
    let corners = [(b[0], b[1]), (b[0], b[3]), (b[2], b[1]), (b[2], b[3])];
    let pts: Vec<(f64, f64)> = corners
        .iter()
        .filter_map(|(x, y)| to_grid(*x, *y))
        .collect();
    if pts.is_empty() {
        return Err(TilingError::Alignment {
            reason: format!(
                "{}: its corners cannot be transformed from {} to {}",
                scene.path.display(),
                own.crs.name,
                grid.crs.name
            ),
        });
    }
    let (minx, maxx) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.0), a.1.max(p.0))
    });
    let (miny, maxy) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.1), a.1.max(p.1))
    });
    let g = grid.bounds();
    if maxx <= g[0] || minx >= g[2] || maxy <= g[1] || miny >= g[3] {
        return Err(TilingError::Alignment {
            reason: format!(
                "{} does not overlap the analysis grid (scene x {minx:.1}..{maxx:.1}, y {miny:.1}..{maxy:.1}; grid x {:.1}..{:.1}, y {:.1}..{:.1})",
                scene.path.display(),
                g[0],
                g[2],
                g[1],
                g[3]
            ),
        });
    }
    Ok(())
}

/// The XML of a GDAL warped VRT that puts `scene` on `grid` with `alg`.
fn warped_vrt(scene: &Scene, grid: &AnalysisGrid, alg: Resampling) -> Result<String> {
    let path = &scene.path;
    let _scope = gdal_log::scope(format!(
        "warping {} onto the analysis grid ({}, {} resampling)",
        path.display(),
        grid.crs.name,
        alg.gdal_name()
    ));
    let abs: PathBuf = if crate::vsi::is_vsi_path(path) {
        path.clone()
    } else {
        std::fs::canonicalize(path).map_err(|e| TilingError::io(path, e))?
    };
    let src =
        gdal_open::open(&abs, DataKind::Raster).map_err(|failure| TilingError::CannotOpen {
            path: path.clone(),
            failure,
        })?;
    let b = grid.bounds();
    let t_srs = match grid.crs.epsg {
        Some(c) => format!("EPSG:{c}"),
        None => grid.crs.wkt.clone(),
    };
    let mut args: Vec<String> = vec![
        "-of".into(),
        "VRT".into(),
        "-t_srs".into(),
        t_srs,
        "-te".into(),
        format!("{:.12}", b[0]),
        format!("{:.12}", b[1]),
        format!("{:.12}", b[2]),
        format!("{:.12}", b[3]),
        "-ts".into(),
        grid.width.to_string(),
        grid.height.to_string(),
        "-r".into(),
        alg.gdal_name().into(),
        "-et".into(),
        "0".into(),
        "-ot".into(),
        "Float32".into(),
        "-dstnodata".into(),
        "nan".into(),
    ];
    // Nodata the user gave (or GDAL read) must be honoured by the warper too.
    if let Some(nd) = scene.bands.first().and_then(|b| b.nodata) {
        args.push("-srcnodata".into());
        args.push(format!("{nd}"));
    }
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| TilingError::Alignment {
            reason: "a warp argument holds a NUL byte".into(),
        })?;
    let mut argv: Vec<*mut std::ffi::c_char> =
        c_args.iter().map(|c| c.as_ptr() as *mut _).collect();
    argv.push(std::ptr::null_mut());
    let fail = |what: &str| TilingError::Alignment {
        reason: format!(
            "{}: GDAL warp {what}: {}",
            path.display(),
            last_gdal_error()
        ),
    };
    // SAFETY: argv is a NULL-terminated array of valid C strings that outlive the call;
    // the options, the source handle and the result are freed / closed exactly once below.
    unsafe {
        let opts = gdal_sys::GDALWarpAppOptionsNew(argv.as_mut_ptr(), std::ptr::null_mut());
        if opts.is_null() {
            return Err(fail("options were rejected"));
        }
        let mut src_h = src.c_dataset();
        let mut usage_error: std::ffi::c_int = 0;
        let empty = CString::default();
        let dst = gdal_sys::GDALWarp(
            empty.as_ptr(),
            std::ptr::null_mut(),
            1,
            &mut src_h,
            opts,
            &mut usage_error,
        );
        gdal_sys::GDALWarpAppOptionsFree(opts);
        if dst.is_null() {
            return Err(fail("failed"));
        }
        let domain = CString::new("xml:VRT").unwrap_or_default();
        let md = gdal_sys::GDALGetMetadata(dst as gdal_sys::GDALMajorObjectH, domain.as_ptr());
        let xml = if md.is_null() || (*md).is_null() {
            None
        } else {
            Some(CStr::from_ptr(*md).to_string_lossy().into_owned())
        };
        gdal_sys::GDALClose(dst);
        xml.ok_or_else(|| fail("produced no VRT description"))
    }
}

fn last_gdal_error() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local, NUL-terminated buffer.
    unsafe {
        let p = gdal_sys::CPLGetLastErrorMsg();
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}
