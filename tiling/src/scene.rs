//! A scene: one raster file of one date, with everything gengdi needs to know about it.
//!
//! Metadata (CRS, band descriptions, nodata, dates) comes from GDAL, which reads every
//! format; pixels come from the fast reader for the TIFFs it decodes and from GDAL for
//! everything else. For TIFFs the georeferencing is also read from the tags directly, so
//! the three GeoTIFF mechanisms and PixelIsPoint are handled in one place we control.

use crate::bands::{CommonBand, Sensor};
use crate::blocks::{BlockCache, BlockShape};
use crate::dtype::{DataType, Sample};
use crate::error::{Result, TilingError};
use crate::gdal_log;
use crate::gdal_open::{self, DataKind, OpenFailure};
use crate::geo::{Crs, GeoTransform};
use crate::pool::DatasetPool;
use crate::radiometry::{self, Radiometry, RadiometrySource};
use crate::tiff::geo::{GeoMechanism, RasterType, TiffGeo};
use crate::tiff::{self, TiffReader};
use crate::window::PixelWindow;
use chrono::NaiveDate;
use gdal::Metadata;
use ndarray::Array3;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default size of a scene's decoded-chunk cache.
pub const DEFAULT_CHUNK_CACHE_BYTES: usize = 256 << 20;

/// Decoded blocks kept for the scenes GDAL reads block by block (JPEG 2000), all scenes of
/// a run together. A run over a stack's tiles plans its reads, so the cache holds only the
/// blocks the coming tiles need (see [`crate::blocks`] and `SceneStack::tile_order`): for
/// a full Sentinel-2 season (24 files of 10 m blocks, 36 of 20 m blocks, 1024² u16 blocks
/// of 2 MiB) that is the current strip's blocks plus the lower halves of one row of 20 m
/// blocks, about 350–430 MiB. Reads nobody planned are kept least recently used first.
pub const DEFAULT_BLOCK_CACHE_BYTES: usize = 512 << 20;

/// What a user can say about a scene that the file itself gets wrong or leaves out.
#[derive(Clone, Debug)]
pub struct SceneOptions {
    /// Band names in file order, overriding the file's descriptions.
    pub band_names: Option<Vec<String>>,
    /// Sensor, overriding the guess from the file name.
    pub sensor: Option<Sensor>,
    /// Nodata value for every band, overriding (or supplying) the declared one —
    /// e.g. Sentinel-2 edge tiles that declare none but use 0.
    pub nodata: Option<f64>,
    /// Acquisition date, overriding metadata and file name.
    pub date: Option<NaiveDate>,
    /// Read pixels through GDAL even where the fast reader could.
    pub force_gdal: bool,
    /// Most bytes one read may allocate.
    pub budget_bytes: u64,
    /// Decoded chunks kept for reuse by neighbouring tiles (fast reader only).
    pub chunk_cache_bytes: usize,
    /// Decoded GDAL blocks kept (scenes GDAL reads block by block; one cache for all the
    /// scenes of a run, see [`Scene::share_block_cache`]).
    pub block_cache_bytes: usize,
    /// How stored values become reflectance, for every band that is not categorical,
    /// overriding what the file says or the data suggest (`--scale` / `--offset`, or a
    /// product's metadata).
    pub radiometry: Option<Radiometry>,
    /// Calibration coefficients for scenes delivered as DN (Gaofen), see
    /// [`crate::calibration`].
    pub calibration: Option<Arc<crate::calibration::CalibrationFile>>,
    /// Remote scene hrefs (`s3://…`, `https://…`, given as scenes or in STAC items) are read
    /// only under these prefixes (see [`crate::vsi::remote_allowed`]); none by default.
    pub remote_prefixes: Vec<String>,
}

impl Default for SceneOptions {
    fn default() -> Self {
        SceneOptions {
            band_names: None,
            sensor: None,
            nodata: None,
            date: None,
            force_gdal: false,
            budget_bytes: tiff::DEFAULT_BUDGET_BYTES,
            chunk_cache_bytes: DEFAULT_CHUNK_CACHE_BYTES,
            block_cache_bytes: DEFAULT_BLOCK_CACHE_BYTES,
            radiometry: None,
            calibration: None,
            remote_prefixes: Vec::new(),
        }
    }
}

/// One band of a scene.
#[derive(Clone, Debug, Serialize)]
pub struct BandInfo {
    /// 1-based, as GDAL counts.
    pub index: usize,
    pub name: String,
    pub common_name: Option<CommonBand>,
    pub nodata: Option<f64>,
    /// How the band's values become reflectance (see [`crate::radiometry`]).
    pub radiometry: Radiometry,
}

/// How the file is laid out on disk (TIFFs only).
#[derive(Clone, Debug, Serialize)]
pub struct TiffStructure {
    pub tiled: bool,
    pub chunk_width: usize,
    pub chunk_height: usize,
    pub compression: String,
    pub predictor: String,
    pub band_interleaved: bool,
    pub big_tiff: bool,
    pub big_endian: bool,
    pub overviews: usize,
}

/// Which reader delivers the pixels.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "reader", rename_all = "snake_case")]
pub enum ReaderKind {
    Fast,
    Gdal { reason: String },
}

/// Where the acquisition date came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateSource {
    Given,
    Metadata,
    StacItem,
    FileName,
}

/// One raster file of one date.
#[derive(Clone, Debug, Serialize)]
pub struct Scene {
    pub path: PathBuf,
    pub driver: String,
    pub width: usize,
    pub height: usize,
    pub dtype: DataType,
    pub bands: Vec<BandInfo>,
    pub sensor: Option<Sensor>,
    pub crs: Option<Crs>,
    pub world_from_pixel: Option<GeoTransform>,
    pub raster_type: RasterType,
    pub georeferencing: Option<GeoMechanism>,
    pub date: Option<NaiveDate>,
    pub date_source: Option<DateSource>,
    pub structure: Option<TiffStructure>,
    pub reader: ReaderKind,
    /// The delivered product this file belongs to (a Sentinel-2 SAFE, a Landsat
    /// Collection 2 product …), when it was opened as part of one.
    #[serde(skip)]
    pub product: Option<Arc<crate::product::ProductInfo>>,
    #[serde(skip)]
    fast: Option<Arc<TiffReader>>,
    #[serde(skip)]
    budget_bytes: u64,
    /// Datasets of GDAL-read scenes, reused from window to window (shared by clones).
    #[serde(skip)]
    gdal_pool: Arc<DatasetPool>,
    /// Decoded blocks of a scene GDAL reads block by block (see [`crate::blocks`]).
    #[serde(skip)]
    blocks: Option<SceneBlocks>,
}

/// The part of one block a window read takes.
struct BlockPart {
    key: usize,
    shape: BlockShape,
    /// The block's top-left pixel.
    x0: usize,
    y0: usize,
    /// The columns and rows of the raster taken from it.
    cols: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
}

/// A GDAL-read scene's place in a block cache.
#[derive(Clone, Debug)]
struct SceneBlocks {
    cache: Arc<BlockCache>,
    /// This scene's key bits.
    key: usize,
    /// GDAL's block size of the file (width, height).
    block: (usize, usize),
}

impl Scene {
    pub fn open(path: impl AsRef<Path>) -> Result<Scene> {
        Scene::open_with(path, &SceneOptions::default())
    }

    /// Give the fast reader's decoded-chunk cache a new size (for instance to share one
    /// memory budget among the scenes of a stack), or a GDAL-read scene's decoded-block
    /// cache a cache of its own of that size. Returns false, changing nothing, when the
    /// scene has neither or its reader is already shared with a clone.
    pub fn set_chunk_cache(&mut self, bytes: usize) -> bool {
        if let Some(b) = &mut self.blocks {
            b.cache = Arc::new(BlockCache::new(bytes));
            return true;
        }
        match self.fast.as_mut().and_then(Arc::get_mut) {
            Some(reader) => {
                reader.set_chunk_cache(bytes);
                true
            }
            None => false,
        }
    }

    /// GDAL's block size (width, height) of a scene that GDAL reads block by block through
    /// a decoded-block cache, `None` for the others.
    pub fn gdal_block_size(&self) -> Option<(usize, usize)> {
        self.blocks.as_ref().map(|b| b.block)
    }

    /// Let the scenes that GDAL reads block by block share one decoded-block cache of
    /// `bytes` (the scenes of a season: one budget, used where the tiles are). Returns the
    /// cache, `None` when no scene reads through one.
    pub fn share_block_cache(scenes: &mut [Scene], bytes: usize) -> Option<Arc<BlockCache>> {
        let cache = Arc::new(BlockCache::new(bytes));
        let mut any = false;
        for s in scenes {
            if let Some(b) = &mut s.blocks {
                b.cache = Arc::clone(&cache);
                any = true;
            }
        }
        any.then_some(cache)
    }

    pub fn open_with(path: impl AsRef<Path>, opts: &SceneOptions) -> Result<Scene> {
        let path = path.as_ref();
        let virtual_file = crate::vsi::is_vsi_path(path);
        if !virtual_file && !path.exists() {
            return Err(TilingError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let cannot_open = |failure| TilingError::CannotOpen {
            path: path.to_path_buf(),
            failure,
        };
        if !virtual_file && path.is_dir() {
            return Err(cannot_open(OpenFailure::Directory {
                kind: DataKind::Raster,
            }));
        }
        let _scope = gdal_log::scope(format!("opening scene {}", path.display()));
        // The fast reader first: its structural errors are the most precise ones. Files
        // inside archives or in memory (`/vsizip/…`, `/vsimem/…`) are GDAL's.
        // Remote objects (`/vsis3/…`, `/vsicurl/…`) are the fast reader's too, its bytes
        // coming by range requests through GDAL's virtual file layer.
        let fast_open = if crate::vsi::is_remote_vsi_path(path) {
            crate::tiff::ByteSource::open_remote(path).and_then(TiffReader::from_source)
        } else if virtual_file {
            Err(TilingError::Unsupported {
                path: path.to_path_buf(),
                reason: "a GDAL virtual file (inside an archive or in memory)".into(),
            })
        } else {
            TiffReader::open(path)
        };
        let (fast, reader_kind) = match fast_open {
            Ok(r) if !opts.force_gdal => (
                Some(
                    r.with_budget(opts.budget_bytes)
                        .with_chunk_cache(opts.chunk_cache_bytes),
                ),
                ReaderKind::Fast,
            ),
            Ok(r) => (
                Some(r.with_budget(opts.budget_bytes)),
                ReaderKind::Gdal {
                    reason: "GDAL reading was asked for".into(),
                },
            ),
            Err(TilingError::NotTiff { .. }) => (
                None,
                ReaderKind::Gdal {
                    reason: "not a TIFF".into(),
                },
            ),
            Err(TilingError::Unsupported { reason, .. }) => (None, ReaderKind::Gdal { reason }),
            Err(TilingError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                return Err(cannot_open(OpenFailure::PermissionDenied))
            }
            Err(e) => return Err(e),
        };
        let ds = gdal_open::open(path, DataKind::Raster).map_err(cannot_open)?;
        let (width, height) = ds.raster_size();
        let count = ds.raster_count();
        if count == 0 {
            return Err(TilingError::malformed(path, "the raster has no bands"));
        }
        let first = ds.rasterband(1).map_err(|e| TilingError::gdal(path, e))?;
        let dtype = DataType::from_gdal(first.band_type()).ok_or_else(|| {
            TilingError::unsupported(path, format!("GDAL data type {:?}", first.band_type()))
        })?;
        if let Some(f) = &fast {
            if f.width() != width
                || f.height() != height
                || f.band_count() != count
                || f.dtype() != dtype
            {
                return Err(TilingError::malformed(
                    path,
                    format!(
                        "TIFF tags say {}x{}x{} {} but GDAL sees {width}x{height}x{count} {dtype}",
                        f.width(),
                        f.height(),
                        f.band_count(),
                        f.dtype()
                    ),
                ));
            }
        }
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let sensor = opts.sensor.or_else(|| {
            Sensor::from_file_name(file_name).or_else(|| {
                path.parent()
                    .and_then(|p| p.file_name())
                    .and_then(|n| n.to_str())
                    .and_then(Sensor::from_file_name)
            })
        });
        let bands = band_infos(path, &ds, count, sensor, dtype, opts)?;

        // Georeferencing: the TIFF tags where there are any, else GDAL's.
        let tiff_geo = fast.as_ref().map(|f| TiffGeo::from_ifd(f.first_ifd()));
        let (world_from_pixel, raster_type, mechanism) = match &tiff_geo {
            Some(g) if g.mechanism().is_some() => {
                (g.world_from_pixel(), g.raster_type(), g.mechanism())
            }
            _ => {
                let gt = ds
                    .geo_transform()
                    .ok()
                    .map(GeoTransform)
                    .filter(|g| g.is_invertible() && g.0 != [0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
                let rt = match ds.metadata_item("AREA_OR_POINT", "").as_deref() {
                    Some("Point") => RasterType::PixelIsPoint,
                    _ => RasterType::PixelIsArea,
                };
                (gt, rt, None)
            }
        };
        let crs = ds
            .spatial_ref()
            .ok()
            .or_else(|| ds.gcp_spatial_ref())
            .and_then(|s| Crs::from_spatial_ref(&s));

        let (date, date_source) = acquisition_date(path, &ds, opts);
        let structure = fast.as_ref().map(|f| {
            let l = f.layout();
            let (cw, ch) = l.chunk_size();
            TiffStructure {
                tiled: l.is_tiled(),
                chunk_width: cw,
                chunk_height: ch,
                compression: l.compression.name().to_string(),
                predictor: format!("{:?}", l.predictor).to_lowercase(),
                band_interleaved: l.planar_separate,
                big_tiff: f.is_big_tiff(),
                big_endian: f.byte_order() == tiff::ByteOrder::Big,
                overviews: f.overview_count(),
            }
        });
        let fast = match reader_kind {
            ReaderKind::Fast => fast.map(Arc::new),
            ReaderKind::Gdal { .. } => None,
        };
        tracing::debug!(
            "opened scene {}: {} {width} x {height} x {count} {dtype}, date {}, {}",
            path.display(),
            ds.driver().short_name(),
            date.map(|d| d.to_string())
                .unwrap_or_else(|| "unknown".into()),
            match &reader_kind {
                ReaderKind::Fast => "fast reader".to_string(),
                ReaderKind::Gdal { reason } => format!("GDAL reader ({reason})"),
            }
        );
        // Blocks worth keeping: GDAL decodes a whole one for any window touching it (JPEG
        // 2000 tiles, tiled files the fast reader does not take); rows or one block for
        // the whole image are not.
        let (bw, bh) = first.block_size();
        let blocks = (!opts.force_gdal
            && matches!(reader_kind, ReaderKind::Gdal { .. })
            && bw >= 32
            && bh >= 32
            && (bw < width || bh < height))
            .then(|| SceneBlocks {
                cache: Arc::new(BlockCache::new(opts.block_cache_bytes)),
                key: crate::blocks::scene_key(),
                block: (bw, bh),
            });
        let mut scene = Scene {
            path: path.to_path_buf(),
            driver: ds.driver().short_name(),
            width,
            height,
            dtype,
            bands,
            sensor,
            crs,
            world_from_pixel,
            raster_type,
            georeferencing: mechanism,
            date,
            date_source,
            structure,
            reader: reader_kind,
            product: None,
            fast,
            budget_bytes: opts.budget_bytes,
            gdal_pool: Arc::default(),
            blocks,
        };
        if let (Some(cal), None, Some(Sensor::Gaofen1 | Sensor::Gaofen2 | Sensor::Gaofen6)) =
            (&opts.calibration, &opts.radiometry, scene.sensor)
        {
            let calibrated = crate::calibration::band_radiometry(
                cal,
                &scene.path,
                scene.date,
                scene.bands.len(),
            );
            for (b, r) in scene.bands.iter_mut().zip(calibrated) {
                if b.radiometry.source != RadiometrySource::Categorical {
                    b.radiometry = r;
                }
            }
        }
        scene.detect_float_radiometry()?;
        Ok(scene)
    }

    /// Floating-point bands without stated radiometry: tell reflectance 0–1 from
    /// reflectance × 10 000 by the values of a few small windows of the first such band.
    fn detect_float_radiometry(&mut self) -> Result<()> {
        let pending = |b: &BandInfo| matches!(&b.radiometry.source, RadiometrySource::Unknown { reason } if reason == FLOAT_PENDING);
        let Some(probe) = self.bands.iter().position(pending) else {
            return Ok(());
        };
        let nodata = self.bands[probe].nodata;
        let side = 64.min(self.width).min(self.height);
        let mut values = Vec::new();
        for (fx, fy) in [
            (0.5, 0.5),
            (0.25, 0.25),
            (0.75, 0.75),
            (0.25, 0.75),
            (0.75, 0.25),
        ] {
            let col = ((self.width - side) as f64 * fx) as u64;
            let row = ((self.height - side) as f64 * fy) as u64;
            let window = PixelWindow::new(col as i64, row as i64, side, side);
            let data = self.read_window::<f64>(&window, &[probe])?;
            values.extend(
                data.iter()
                    .copied()
                    .filter(|v| v.is_finite() && Some(*v) != nodata),
            );
        }
        let detected = radiometry::from_float_sample(&mut values);
        for b in self.bands.iter_mut().filter(|b| pending(b)) {
            b.radiometry = detected.clone();
        }
        Ok(())
    }

    pub fn band_count(&self) -> usize {
        self.bands.len()
    }

    /// The georeferencing, or a `NoGeoreference` error.
    pub fn georeference(&self) -> Result<(&Crs, GeoTransform)> {
        match (&self.crs, self.world_from_pixel) {
            (Some(c), Some(g)) => Ok((c, g)),
            (None, Some(_)) => Err(TilingError::BadGeoreference {
                path: self.path.clone(),
                reason: "a geotransform but no coordinate reference system".into(),
            }),
            _ => Err(TilingError::NoGeoreference {
                path: self.path.clone(),
            }),
        }
    }

    /// The 0-based index of a band by its name (`B04`) or common name (`red`).
    pub fn band_index(&self, name: &str) -> Result<usize> {
        if let Some(b) = self
            .bands
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(name))
        {
            return Ok(b.index - 1);
        }
        let wanted = CommonBand::from_band_name(name, self.sensor);
        if let Some(b) = self
            .bands
            .iter()
            .find(|b| wanted.is_some() && b.common_name == wanted)
        {
            return Ok(b.index - 1);
        }
        Err(TilingError::UnknownBand {
            path: self.path.clone(),
            name: name.to_string(),
            available: self
                .bands
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The fast reader, when it serves this scene.
    pub fn fast_reader(&self) -> Option<&TiffReader> {
        self.fast.as_deref()
    }

    /// Read `bands` (0-based) of `window` as `T`: shape (bands, rows, cols).
    pub fn read_window<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
    ) -> Result<Array3<T>> {
        match (&self.fast, &self.blocks) {
            (Some(f), _) => f.read_window(window, bands),
            (None, Some(b)) => self.read_window_blocks(b, window, bands),
            (None, None) => self.read_window_gdal(window, bands),
        }
    }

    /// Read `bands` (0-based) of `window` as `T` into `out`, shape (bands, rows, cols),
    /// then `row_hook(k, row)` on every row of output band `k`: the fast reader decodes
    /// straight into `out` and runs the hook on each row as it is written; GDAL reads
    /// through a temporary array.
    pub fn read_window_into<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
        mut out: ndarray::ArrayViewMut3<'_, T>,
        row_hook: Option<&crate::tiff::RowHook<'_, T>>,
    ) -> Result<()> {
        match &self.fast {
            Some(f) => f.read_window_into_with(window, bands, out, row_hook),
            None => {
                let data = self.read_window::<T>(window, bands)?;
                if out.dim() != data.dim() {
                    return Err(TilingError::malformed(
                        &self.path,
                        format!(
                            "reading {} bands of {window} into an array of shape {:?}",
                            bands.len(),
                            out.shape()
                        ),
                    ));
                }
                out.assign(&data);
                if let Some(hook) = row_hook {
                    for (k, mut band) in out.outer_iter_mut().enumerate() {
                        for mut row in band.rows_mut() {
                            match row.as_slice_mut() {
                                Some(r) => hook(k, r),
                                None => {
                                    let mut tmp: Vec<T> = row.iter().copied().collect();
                                    hook(k, &mut tmp);
                                    row.iter_mut().zip(tmp).for_each(|(d, v)| *d = v);
                                }
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The blocks of band `band` (0-based) that `window` touches, with the part of each
    /// the window takes.
    fn blocks_in(
        &self,
        b: &SceneBlocks,
        window: &PixelWindow,
        band: usize,
    ) -> impl Iterator<Item = BlockPart> + '_ {
        let (bw, bh) = b.block;
        let across = self.width.div_ceil(bw);
        let (c0, r0) = (window.col_off as usize, window.row_off as usize);
        let (c1, r1) = (c0 + window.cols, r0 + window.rows);
        let key = b.key | (band << crate::blocks::BAND_SHIFT);
        let row_bytes = self.dtype.size();
        (r0 / bh..r1.div_ceil(bh)).flat_map(move |by| {
            (c0 / bw..c1.div_ceil(bw)).map(move |bx| {
                let (x0, y0) = (bx * bw, by * bh);
                let (cw, ch) = (bw.min(self.width - x0), bh.min(self.height - y0));
                BlockPart {
                    key: key | (by * across + bx),
                    shape: BlockShape {
                        row_bytes: cw * row_bytes,
                        rows: ch,
                    },
                    x0,
                    y0,
                    cols: c0.max(x0)..c1.min(x0 + cw),
                    rows: r0.max(y0)..r1.min(y0 + ch),
                }
            })
        })
    }

    /// Tell the scene's decoded-block cache that `bands` (0-based) of `window` will be
    /// read (see [`crate::blocks`]); the keys of the blocks are added to `keys`. Nothing
    /// for a scene read otherwise.
    pub(crate) fn plan_read(&self, window: &PixelWindow, bands: &[usize], keys: &mut Vec<usize>) {
        let Some(b) = &self.blocks else { return };
        if window.is_empty() || !window.is_inside(self.width, self.height) {
            return;
        }
        for &band in bands {
            for part in self.blocks_in(b, window, band) {
                b.cache
                    .plan_read(part.key, part.shape, part.rows.start - part.y0);
                keys.push(part.key);
            }
        }
    }

    /// The decoded-block cache a GDAL-read scene reads through.
    pub(crate) fn block_cache(&self) -> Option<&Arc<BlockCache>> {
        self.blocks.as_ref().map(|b| &b.cache)
    }

    /// Read through GDAL block by block, each block from the scene's decoded-block cache or
    /// decoded once and put there (see [`crate::blocks`]).
    fn read_window_blocks<T: Sample>(
        &self,
        b: &SceneBlocks,
        window: &PixelWindow,
        bands: &[usize],
    ) -> Result<Array3<T>> {
        self.check_read::<T>(window, bands)?;
        let mut out = Array3::<T>::default((bands.len(), window.rows, window.cols));
        let (c0, r0) = (window.col_off as usize, window.row_off as usize);
        for (i, &band) in bands.iter().enumerate() {
            let mut plane = out.index_axis_mut(ndarray::Axis(0), i);
            for part in self.blocks_in(b, window, band) {
                let BlockPart {
                    key,
                    shape,
                    x0,
                    y0,
                    cols,
                    rows,
                } = part;
                let from_row = rows.start - y0;
                let data = b.cache.get_or_decode(key, shape, from_row, || {
                    self.decode_block(
                        band,
                        x0,
                        y0,
                        shape.row_bytes / self.dtype.size(),
                        shape.rows,
                    )
                })?;
                // The block's rows from `first` on are in `data`.
                let first = shape.first_row(&data);
                let cw = shape.row_bytes / self.dtype.size();
                for y in rows {
                    let src_row = (y - y0 - first) * cw;
                    let mut dst = plane.row_mut(y - r0);
                    let Some(dst) = dst.as_slice_mut() else {
                        return Err(TilingError::malformed(
                            &self.path,
                            "output array not contiguous",
                        ));
                    };
                    convert_row(
                        self.dtype,
                        &data,
                        src_row + (cols.start - x0),
                        &mut dst[cols.start - c0..cols.end - c0],
                    );
                }
                b.cache.read_done(key, from_row);
            }
        }
        Ok(out)
    }

    /// One whole block of `band` (0-based) at pixel (`x0`, `y0`), `cw` × `ch` (smaller at
    /// the right and bottom edges), in the file's data type, native byte order.
    fn decode_block(
        &self,
        band: usize,
        x0: usize,
        y0: usize,
        cw: usize,
        ch: usize,
    ) -> Result<Vec<u8>> {
        let _scope = gdal_log::scope(format!(
            "reading {}, band {}, block at ({x0}, {y0})",
            self.path.display(),
            band + 1
        ));
        self.with_gdal_dataset(|ds| {
            let rb = ds
                .rasterband(band + 1)
                .map_err(|e| TilingError::gdal(&self.path, e))?;
            fn read<P: gdal::raster::GdalType + bytemuck::Pod>(
                rb: &gdal::raster::RasterBand<'_>,
                path: &Path,
                (x0, y0, cw, ch): (usize, usize, usize, usize),
            ) -> Result<Vec<u8>> {
                let mut v = vec![P::zeroed(); cw * ch];
                rb.read_into_slice((x0 as isize, y0 as isize), (cw, ch), (cw, ch), &mut v, None)
                    .map_err(|e| TilingError::gdal(path, e))?;
                Ok(bytemuck::cast_slice(&v).to_vec())
            }
            let at = (x0, y0, cw, ch);
            let data = match self.dtype {
                DataType::U8 => read::<u8>(&rb, &self.path, at),
                // GDAL 3.6 has no 8-bit signed type: such files are not GDAL's.
                DataType::I8 => Err(TilingError::unsupported(
                    &self.path,
                    "8-bit signed samples read through GDAL",
                )),
                DataType::U16 => read::<u16>(&rb, &self.path, at),
                DataType::I16 => read::<i16>(&rb, &self.path, at),
                DataType::U32 => read::<u32>(&rb, &self.path, at),
                DataType::I32 => read::<i32>(&rb, &self.path, at),
                DataType::U64 => read::<u64>(&rb, &self.path, at),
                DataType::I64 => read::<i64>(&rb, &self.path, at),
                DataType::F32 => read::<f32>(&rb, &self.path, at),
                DataType::F64 => read::<f64>(&rb, &self.path, at),
            };
            // The block is kept here: GDAL's own copy in its block cache would only double
            // the memory it takes.
            // SAFETY: the band handle is valid while `ds` is borrowed; flushing a band of a
            // dataset opened read-only only drops its cached blocks.
            unsafe {
                gdal_sys::GDALFlushRasterCache(rb.c_rasterband());
            }
            data
        })
    }

    /// Run `f` with one of this scene's pooled GDAL datasets (opened on first use, one per
    /// concurrent reader at most).
    fn with_gdal_dataset<R>(&self, f: impl FnOnce(&gdal::Dataset) -> Result<R>) -> Result<R> {
        let open = || {
            gdal_open::open(&self.path, DataKind::Raster).map_err(|failure| {
                TilingError::CannotOpen {
                    path: self.path.clone(),
                    failure,
                }
            })
        };
        self.gdal_pool.with(0, open, f)
    }

    /// A window read must lie inside the raster, fit the read budget and name bands the
    /// scene has.
    fn check_read<T: Sample>(&self, window: &PixelWindow, bands: &[usize]) -> Result<()> {
        if !window.is_inside(self.width, self.height) {
            return Err(TilingError::WindowOutOfBounds {
                path: self.path.clone(),
                window: window.to_string(),
                width: self.width,
                height: self.height,
            });
        }
        let bytes = bands.len() as u128
            * window.cols as u128
            * window.rows as u128
            * std::mem::size_of::<T>() as u128;
        if bytes > self.budget_bytes as u128 {
            return Err(TilingError::OverBudget {
                path: self.path.clone(),
                what: format!("reading {} bands of {window}", bands.len()),
                requested: bytes,
                budget: self.budget_bytes,
            });
        }
        if let Some(&b) = bands.iter().find(|&&b| b >= self.bands.len()) {
            return Err(TilingError::NoSuchBand {
                path: self.path.clone(),
                band: b + 1,
                count: self.bands.len(),
            });
        }
        Ok(())
    }

    /// Read through GDAL, whatever reader normally serves this scene (the test oracle,
    /// and the path for formats the fast reader does not decode). Safe to call from any
    /// thread: each call takes a dataset of its own from the scene's pool (opened on first
    /// use, one per concurrent reader at most) and returns it afterwards.
    pub fn read_window_gdal<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
    ) -> Result<Array3<T>> {
        self.check_read::<T>(window, bands)?;
        let _scope = gdal_log::scope(format!("reading {}, window {window}", self.path.display()));
        let mut out = Array3::<T>::default((bands.len(), window.rows, window.cols));
        self.with_gdal_dataset(|ds| {
            for (i, &b) in bands.iter().enumerate() {
                let band = ds
                    .rasterband(b + 1)
                    .map_err(|e| TilingError::gdal(&self.path, e))?;
                let mut plane = out.index_axis_mut(ndarray::Axis(0), i);
                let Some(slice) = plane.as_slice_mut() else {
                    return Err(TilingError::malformed(
                        &self.path,
                        "output array not contiguous",
                    ));
                };
                band.read_into_slice(
                    (window.col_off as isize, window.row_off as isize),
                    (window.cols, window.rows),
                    (window.cols, window.rows),
                    slice,
                    None,
                )
                .map_err(|e| TilingError::gdal(&self.path, e))?;
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Samples `start..start + dst.len()` of `data` (samples of `dtype`, native byte order)
/// into `dst`.
fn convert_row<T: Sample>(dtype: DataType, data: &[u8], start: usize, dst: &mut [T]) {
    macro_rules! convert {
        ($t:ty, $from:ident) => {{
            const N: usize = std::mem::size_of::<$t>();
            let src = &data[start * N..(start + dst.len()) * N];
            for (d, chunk) in dst.iter_mut().zip(src.chunks_exact(N)) {
                let mut a = [0u8; N];
                a.copy_from_slice(chunk);
                *d = T::$from(<$t>::from_ne_bytes(a));
            }
        }};
    }
    match dtype {
        DataType::U8 => convert!(u8, from_u8),
        DataType::I8 => convert!(i8, from_i8),
        DataType::U16 => convert!(u16, from_u16),
        DataType::I16 => convert!(i16, from_i16),
        DataType::U32 => convert!(u32, from_u32),
        DataType::I32 => convert!(i32, from_i32),
        DataType::U64 => convert!(u64, from_u64),
        DataType::I64 => convert!(i64, from_i64),
        DataType::F32 => convert!(f32, from_f32),
        DataType::F64 => convert!(f64, from_f64),
    }
}

fn band_infos(
    path: &Path,
    ds: &gdal::Dataset,
    count: usize,
    sensor: Option<Sensor>,
    dtype: DataType,
    opts: &SceneOptions,
) -> Result<Vec<BandInfo>> {
    let descriptions: Vec<String> = (1..=count)
        .map(|i| {
            ds.rasterband(i)
                .ok()
                .and_then(|b| b.description().ok())
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect();
    let names: Vec<String> = if let Some(given) = &opts.band_names {
        if given.len() != count {
            return Err(TilingError::BandMappingMismatch {
                path: path.to_path_buf(),
                given: given.len(),
                count,
            });
        }
        given.clone()
    } else if descriptions.iter().all(|d| !d.is_empty()) {
        descriptions
    } else if let Some(n) = (count == 1).then(|| band_from_file_name(path)).flatten() {
        vec![n]
    } else if let Some(names) = sensor.and_then(|s| s.band_names(count)) {
        names.into_iter().map(String::from).collect()
    } else {
        (1..=count).map(|i| format!("band{i}")).collect()
    };
    (1..=count)
        .map(|i| {
            let band = ds.rasterband(i).map_err(|e| TilingError::gdal(path, e))?;
            let name = names[i - 1].clone();
            let common_name = CommonBand::from_band_name(&name, sensor);
            let radiometry = band_radiometry(ds, &band, common_name, dtype, sensor, opts);
            Ok(BandInfo {
                index: i,
                common_name,
                name,
                nodata: opts.nodata.or_else(|| band.no_data_value()),
                radiometry,
            })
        })
        .collect()
}

/// Marks a floating-point band whose convention is decided from its values once the scene
/// is open ([`Scene::detect_float_radiometry`]).
const FLOAT_PENDING: &str = "floating-point values not yet sampled";

/// A band's radiometry from what is stated: the user (or the product's metadata), then the
/// file's own scale / offset, then the data type; floating-point bands are decided later
/// from their values.
fn band_radiometry(
    ds: &gdal::Dataset,
    band: &gdal::raster::RasterBand,
    common: Option<CommonBand>,
    dtype: DataType,
    sensor: Option<Sensor>,
    opts: &SceneOptions,
) -> Radiometry {
    match common {
        Some(c) if c.is_categorical() => return Radiometry::categorical(),
        None => {
            return Radiometry {
                scale: 1.0,
                offset: 0.0,
                source: RadiometrySource::NotSpectral,
            }
        }
        Some(_) => {}
    }
    if let Some(r) = &opts.radiometry {
        return r.clone();
    }
    let (scale, offset) = (band.scale(), band.offset());
    if scale.is_some_and(|s| s != 1.0) || offset.is_some_and(|o| o != 0.0) {
        return Radiometry {
            scale: scale.unwrap_or(1.0),
            offset: offset.unwrap_or(0.0),
            source: RadiometrySource::FileMetadata {
                what: "the band's scale and offset".into(),
            },
        };
    }
    let item = |key: &str| -> Option<f64> {
        band.metadata_item(key, "")
            .or_else(|| ds.metadata_item(key, ""))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let (sf, ao) = (item("scale_factor"), item("add_offset"));
    if sf.is_some() || ao.is_some() {
        return Radiometry {
            scale: sf.unwrap_or(1.0),
            offset: ao.unwrap_or(0.0),
            source: RadiometrySource::FileMetadata {
                what: "the scale_factor / add_offset metadata".into(),
            },
        };
    }
    if let Some(q) = item("REFLECTANCE_SCALE").filter(|q| *q > 0.0) {
        return Radiometry {
            scale: 1.0 / q,
            offset: 0.0,
            source: RadiometrySource::FileMetadata {
                what: format!("REFLECTANCE_SCALE={q}"),
            },
        };
    }
    if matches!(
        sensor,
        Some(Sensor::Gaofen1 | Sensor::Gaofen2 | Sensor::Gaofen6)
    ) {
        return Radiometry {
            scale: 1.0,
            offset: 0.0,
            source: RadiometrySource::Unknown {
                reason: format!(
                    "{} scenes are delivered as uncalibrated DN, not reflectance; gengdi uses them as delivered only for display and tiling",
                    sensor.map(|s| s.name()).unwrap_or_default()
                ),
            },
        };
    }
    match dtype {
        DataType::F32 | DataType::F64 => Radiometry {
            scale: 1.0,
            offset: 0.0,
            source: RadiometrySource::Unknown {
                reason: FLOAT_PENDING.into(),
            },
        },
        DataType::U8 | DataType::I8 => Radiometry {
            scale: 1.0,
            offset: 0.0,
            source: RadiometrySource::Unknown {
                reason: format!(
                    "{dtype} values (a visual / true-colour product?) are not reflectance × 10000"
                ),
            },
        },
        _ => Radiometry::times_10000(format!("{dtype} values, the usual reflectance × 10000")),
    }
}

/// `…_B02.tif` / `…_B8A.tif` → `B02` / `B8A` (one file per band, as in BigEarthNet or
/// Sentinel-2 SAFE products).
fn band_from_file_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let last = stem.rsplit(['_', '-', '.']).next()?;
    let upper = last.to_ascii_uppercase();
    let is_band = upper.len() >= 2
        && upper.starts_with('B')
        && upper[1..].chars().all(|c| c.is_ascii_alphanumeric())
        && upper[1..].chars().any(|c| c.is_ascii_digit());
    (is_band || upper == "SCL").then_some(upper)
}

fn acquisition_date(
    path: &Path,
    ds: &gdal::Dataset,
    opts: &SceneOptions,
) -> (Option<NaiveDate>, Option<DateSource>) {
    if let Some(d) = opts.date {
        return (Some(d), Some(DateSource::Given));
    }
    const KEYS: [&str; 8] = [
        "ACQUISITION_DATE",
        "ACQUISITIONDATE",
        "DATE_ACQUIRED",
        "SENSING_DATE",
        "SENSING_TIME",
        "DATATAKE_1_DATATAKE_SENSING_START",
        "PRODUCT_START_TIME",
        "DATETIME",
    ];
    for entry in ds.metadata_domain("").unwrap_or_default() {
        if let Some((k, v)) = entry.split_once('=') {
            if KEYS.iter().any(|key| key.eq_ignore_ascii_case(k.trim())) {
                if let Some(d) = parse_date_prefix(v.trim()) {
                    return (Some(d), Some(DateSource::Metadata));
                }
            }
        }
    }
    if let Some(d) = stac_sidecar_date(path) {
        return (Some(d), Some(DateSource::StacItem));
    }
    if let Some(d) = xml_sidecar_date(path) {
        return (Some(d), Some(DateSource::Metadata));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match date_in_name(name) {
        Some(d) => (Some(d), Some(DateSource::FileName)),
        None => (None, None),
    }
}

/// `2015-07-11…`, `2015:07:11…` or `20150711…` at the start of a string.
pub fn parse_date_prefix(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, m, d) = if b.len() >= 10 && matches!(b[4], b'-' | b':' | b'/') && b[7] == b[4] {
        (digits(0..4)?, digits(5..7)?, digits(8..10)?)
    } else {
        (digits(0..4)?, digits(4..6)?, digits(6..8)?)
    };
    (1970..=2100)
        .contains(&y)
        .then(|| NaiveDate::from_ymd_opt(y as i32, m, d))
        .flatten()
}

/// The first plausible date written as 8 digits (or YYYY-MM-DD) in a file name.
pub fn date_in_name(name: &str) -> Option<NaiveDate> {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let run = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if run == 8 || run == 4 || (run > 8 && b.get(i + 8) == Some(&b'T')) || run == 14 {
                if let Some(d) = name.get(i..).and_then(parse_date_prefix) {
                    return Some(d);
                }
            }
            i += run.max(1);
        } else {
            i += 1;
        }
    }
    None
}

/// The acquisition time of the XML metadata beside the file (`scene.xml` for `scene.tiff`),
/// as Gaofen (and other Chinese satellite centres') products carry it: `<StartTime>`,
/// `<CenterTime>`, `<ReceiveTime>` or `<ImagingTime>`.
fn xml_sidecar_date(path: &Path) -> Option<NaiveDate> {
    let sidecar = path.with_extension("xml");
    let meta = std::fs::metadata(&sidecar).ok()?;
    if meta.len() > 4 << 20 {
        return None;
    }
    let text = std::fs::read_to_string(sidecar).ok()?;
    ["CenterTime", "StartTime", "ImagingTime", "ReceiveTime"]
        .iter()
        .find_map(|tag| {
            let open = format!("<{tag}>");
            let start = text.find(&open)? + open.len();
            parse_date_prefix(text[start..].trim_start())
        })
}

/// A STAC item beside the file (`scene.json` for `scene.tif`) with `properties.datetime`.
fn stac_sidecar_date(path: &Path) -> Option<NaiveDate> {
    let sidecar = path.with_extension("json");
    let text = std::fs::read_to_string(sidecar).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let props = v.get("properties")?;
    let dt = props
        .get("datetime")
        .and_then(|d| d.as_str())
        .or_else(|| props.get("start_datetime").and_then(|d| d.as_str()))?;
    parse_date_prefix(dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_found_in_the_usual_file_names() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        assert_eq!(date_in_name("s2l1c_20150711_13band.tif"), d(2015, 7, 11));
        assert_eq!(
            date_in_name("S2A_MSIL2A_20170617T113321_36_85_B02.tif"),
            d(2017, 6, 17)
        );
        assert_eq!(
            date_in_name("LC09_L2SP_129033_20230512_20230514_02_T1.tif"),
            d(2023, 5, 12)
        );
        assert_eq!(date_in_name("zhongwei_2024-05-03.tif"), d(2024, 5, 3));
        assert_eq!(date_in_name("s2_u16_tiled64_zstd_pred2.tif"), None);
        assert_eq!(
            date_in_name("scene_20151340.tif"),
            None,
            "month 13 is no date"
        );
    }

    #[test]
    fn band_names_come_from_single_band_file_names() {
        assert_eq!(
            band_from_file_name(Path::new("x/S2A_MSIL2A_20170617T113321_36_85_B8A.tif")).as_deref(),
            Some("B8A")
        );
        assert_eq!(
            band_from_file_name(Path::new("x/T33_SCL.tif")).as_deref(),
            Some("SCL")
        );
        assert_eq!(band_from_file_name(Path::new("x/byte.tif")), None);
    }
}
