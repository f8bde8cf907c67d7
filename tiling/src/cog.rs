//! Class, probability and confidence maps written as Cloud-Optimized GeoTIFF.
//!
//! [`CogWriter`] takes windows of any size, in any order, band by band — e.g. the tile
//! cores of a parallel tiled run — and writes them into a temporary tiled GTiff next to
//! the output, so memory stays bounded (GDAL's block cache) whatever the raster size.
//! [`CogWriter::finish`] builds the overviews band by band (MODE for class codes, AVERAGE
//! for continuous values), turns the temporary file into a COG with GDAL's COG driver
//! (`CreateCopy`: 512² tiles, DEFLATE, a predictor where it helps, overviews, the
//! georeferencing of the analysis grid, nodata, band descriptions, class names in the
//! band metadata), renames it into place and removes the temporary file.
//!
//! A `CogWriter` owns a GDAL dataset, which is `Send` but not `Sync`: write from one
//! thread that receives tiles over a channel, or put the writer in a `Mutex`.
//!
//! Pixels never written read as nodata (or 0 when the spec has none).

use crate::dtype::{DataType, Sample};
use crate::error::{Result, TilingError};
use crate::geo::{Crs, GeoTransform};
use crate::window::PixelWindow;
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager, Metadata};
use ndarray::ArrayView2;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tile size of the COG (and of the temporary file), in pixels.
pub const COG_BLOCK_SIZE: usize = 512;

/// DEFLATE level of the COG. GDAL's default is 6; on the six class + confidence maps of a
/// 2400² generated season (no predictor on their 8-bit bands) level 4 compressed in 0.6 × the
/// time of level 6 for files 1.7 % larger. The six maps `gengdi classify` writes for that
/// season now total 41.5 MB, 1.9 % more than the 40.7 MB of this writer's earlier setting
/// (horizontal predictor, level 6), for a third of its compression time (docs/benchmarks.md).
pub const COG_DEFLATE_LEVEL: u32 = 4;

/// The band-metadata key holding a categorical band's class names, as a JSON array
/// indexed by class code: `["nodata","water","forest",…]`.
pub const CLASS_NAMES_KEY: &str = "CLASS_NAMES";

/// What the values of a band mean; decides the overview resampling.
#[derive(Clone, Debug, PartialEq)]
pub enum BandKind {
    /// Class codes; `class_names[code]` names code `code`. Overviews take the most
    /// frequent class (MODE), never an average of codes.
    Categorical { class_names: Vec<String> },
    /// Measurements, probabilities, confidences: overviews AVERAGE (nodata excluded).
    Continuous,
}

/// One band of the output.
#[derive(Clone, Debug, PartialEq)]
pub struct CogBand {
    pub description: String,
    pub kind: BandKind,
}

impl CogBand {
    pub fn categorical(description: impl Into<String>, class_names: Vec<String>) -> Self {
        CogBand {
            description: description.into(),
            kind: BandKind::Categorical { class_names },
        }
    }

    pub fn continuous(description: impl Into<String>) -> Self {
        CogBand {
            description: description.into(),
            kind: BandKind::Continuous,
        }
    }

    /// GDAL's name of the overview resampling for this band.
    pub fn overview_resampling(&self) -> &'static str {
        match self.kind {
            BandKind::Categorical { .. } => "MODE",
            BandKind::Continuous => "AVERAGE",
        }
    }
}

/// Everything about the output except its pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct CogSpec {
    pub width: usize,
    pub height: usize,
    pub crs: Crs,
    pub world_from_pixel: GeoTransform,
    pub bands: Vec<CogBand>,
    /// One sample type for all bands (a TIFF has one); u8, u16 and f32 are the usual ones.
    pub dtype: DataType,
    /// One nodata value for all bands (GDAL's GTiff stores one per file).
    pub nodata: Option<f64>,
}

impl CogSpec {
    /// The TIFF predictor the COG gets: none when every band holds class codes (their
    /// differences compress no better) or 8-bit values, horizontal differencing for wider
    /// integer measurements, the floating-point predictor for floats.
    ///
    /// 8-bit measurements are per-pixel confidences and percentages, noisy from pixel to
    /// pixel: on the six class + confidence maps of a 2400² generated season, differencing
    /// made the DEFLATE files 1.1 % larger and their compression 1.4 × slower.
    pub fn predictor(&self) -> &'static str {
        let any_continuous = self
            .bands
            .iter()
            .any(|b| matches!(b.kind, BandKind::Continuous));
        match (any_continuous, self.dtype.is_float()) {
            (false, _) => "NO",
            (true, false) if self.dtype.size() == 1 => "NO",
            (true, false) => "STANDARD",
            (true, true) => "FLOATING_POINT",
        }
    }

    /// Overview decimation factors: 2, 4, … until the smallest level fits in one tile
    /// (what GDAL's COG driver would choose).
    pub fn overview_factors(&self) -> Vec<i32> {
        let mut factors = Vec::new();
        let (mut w, mut h, mut f) = (self.width, self.height, 1usize);
        while (w > COG_BLOCK_SIZE || h > COG_BLOCK_SIZE) && f < (1 << 30) {
            f *= 2;
            w = self.width.div_ceil(f);
            h = self.height.div_ceil(f);
            factors.push(f as i32);
        }
        factors
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| {
            Err(TilingError::Write {
                path: path.to_path_buf(),
                reason,
            })
        };
        if self.width == 0 || self.height == 0 {
            return bad(format!(
                "the raster must not be empty ({} x {})",
                self.width, self.height
            ));
        }
        let max = i32::MAX as usize;
        if self.width > max || self.height > max {
            return bad(format!(
                "{} x {} is larger than GDAL can address ({max} per side)",
                self.width, self.height
            ));
        }
        if self.bands.is_empty() {
            return bad("no bands".into());
        }
        if !self.world_from_pixel.is_invertible() {
            return bad(format!(
                "the geotransform {:?} is not invertible",
                self.world_from_pixel.0
            ));
        }
        for (i, b) in self.bands.iter().enumerate() {
            if let BandKind::Categorical { class_names } = &b.kind {
                if self.dtype.is_float() {
                    return bad(format!(
                        "band {} ({}) holds class codes, which need an integer type, not {}",
                        i + 1,
                        b.description,
                        self.dtype
                    ));
                }
                if class_names.is_empty() {
                    return bad(format!(
                        "band {} ({}) is categorical but names no classes",
                        i + 1,
                        b.description
                    ));
                }
            }
        }
        if let Some(nd) = self.nodata {
            if !nodata_fits(self.dtype, nd) {
                return bad(format!("nodata {nd} is not a {} value", self.dtype));
            }
        }
        Ok(())
    }
}

fn nodata_fits(dtype: DataType, v: f64) -> bool {
    let int_in = |lo: f64, hi: f64| v.fract() == 0.0 && v >= lo && v <= hi;
    match dtype {
        DataType::U8 => int_in(0.0, u8::MAX as f64),
        DataType::I8 => int_in(i8::MIN as f64, i8::MAX as f64),
        DataType::U16 => int_in(0.0, u16::MAX as f64),
        DataType::I16 => int_in(i16::MIN as f64, i16::MAX as f64),
        DataType::U32 => int_in(0.0, u32::MAX as f64),
        DataType::I32 => int_in(i32::MIN as f64, i32::MAX as f64),
        DataType::U64 => int_in(0.0, u64::MAX as f64),
        DataType::I64 => int_in(i64::MIN as f64, i64::MAX as f64),
        DataType::F32 => v.is_nan() || v.is_infinite() || (v as f32) as f64 == v,
        DataType::F64 => true,
    }
}

fn gdal_type_name(dtype: DataType) -> Option<gdal::raster::GdalDataType> {
    use gdal::raster::GdalDataType as G;
    Some(match dtype {
        DataType::U8 => G::UInt8,
        DataType::U16 => G::UInt16,
        DataType::I16 => G::Int16,
        DataType::U32 => G::UInt32,
        DataType::I32 => G::Int32,
        DataType::U64 => G::UInt64,
        DataType::I64 => G::Int64,
        DataType::F32 => G::Float32,
        DataType::F64 => G::Float64,
        // GDAL 3.6 has no signed byte type of its own.
        DataType::I8 => return None,
    })
}

/// Writes one Cloud-Optimized GeoTIFF from windows given in any order.
pub struct CogWriter {
    path: PathBuf,
    staging_path: PathBuf,
    spec: CogSpec,
    staging: Option<Dataset>,
}

impl std::fmt::Debug for CogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CogWriter")
            .field("path", &self.path)
            .field("staging_path", &self.staging_path)
            .field("spec", &self.spec)
            .finish()
    }
}

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A sibling of `path` for an intermediate file: hidden, unique to this process and call.
fn sibling(path: &Path, role: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| TilingError::Write {
            path: path.to_path_buf(),
            reason: "the output path has no (UTF-8) file name".into(),
        })?;
    let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
    Ok(path.with_file_name(format!(".{name}.{}-{n}.{role}.tif", std::process::id())))
}

/// Remove a GDAL-written file and the side files GDAL may have left beside it.
fn remove_with_side_files(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut aux = path.as_os_str().to_owned();
    aux.push(".aux.xml");
    let _ = std::fs::remove_file(PathBuf::from(aux));
}

impl CogWriter {
    /// Start writing `path` (overwritten on [`finish`](Self::finish); nothing appears
    /// there before). The temporary tiled GTiff is created next to it.
    pub fn create(path: impl AsRef<Path>, spec: CogSpec) -> Result<CogWriter> {
        let path = path.as_ref().to_path_buf();
        spec.check(&path)?;
        let Some(gdal_type) = gdal_type_name(spec.dtype) else {
            return Err(TilingError::Write {
                path,
                reason: format!("GDAL 3.6 cannot write {} rasters", spec.dtype),
            });
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(TilingError::Write {
                path,
                reason: format!("the folder {} does not exist", dir.display()),
            });
        }
        let staging_path = sibling(&path, "staging")?;
        let gdal_err = |step: &str, e: gdal::errors::GdalError| TilingError::Write {
            path: path.clone(),
            reason: format!("{step}: GDAL: {e}"),
        };
        let driver = DriverManager::get_driver_by_name("GTiff")
            .map_err(|e| gdal_err("no GTiff driver", e))?;
        // The staging file only has to be quick to write and re-read: the fastest
        // lossless compression GDAL has, one band per plane so a band's window never
        // touches the others' blocks, no pixel ever written twice by us.
        let fast_codec = match driver.metadata_item("DMD_CREATIONOPTIONLIST", "") {
            Some(list) if list.contains("ZSTD") => ["COMPRESS=ZSTD", "ZSTD_LEVEL=1"],
            _ => ["COMPRESS=DEFLATE", "ZLEVEL=1"],
        };
        let block = COG_BLOCK_SIZE.to_string();
        let options: RasterCreationOptions = [
            "TILED=YES",
            &format!("BLOCKXSIZE={block}"),
            &format!("BLOCKYSIZE={block}"),
            "INTERLEAVE=BAND",
            "SPARSE_OK=TRUE",
            "BIGTIFF=IF_SAFER",
            fast_codec[0],
            fast_codec[1],
        ]
        .into_iter()
        .collect();
        let mut ds = create_staging(
            &driver,
            &staging_path,
            gdal_type,
            spec.width,
            spec.height,
            spec.bands.len(),
            &options,
        )
        .map_err(|e| gdal_err("creating the staging GTiff", e))?;
        // From here on the staging file exists: remove it on every error path.
        let mut writer = CogWriter {
            path: path.clone(),
            staging_path,
            spec,
            staging: None,
        };
        writer
            .describe(&mut ds)
            .map_err(|e| gdal_err("setting georeferencing and band metadata", e))?;
        writer.staging = Some(ds);
        Ok(writer)
    }

    fn describe(&self, ds: &mut Dataset) -> gdal::errors::Result<()> {
        let srs = self.spec.crs.to_spatial_ref()?;
        ds.set_spatial_ref(&srs)?;
        ds.set_geo_transform(&self.spec.world_from_pixel.0)?;
        ds.set_metadata_item("AREA_OR_POINT", "Area", "")?;
        for (i, b) in self.spec.bands.iter().enumerate() {
            let mut band = ds.rasterband(i + 1)?;
            band.set_description(&b.description)?;
            if let Some(nd) = self.spec.nodata {
                band.set_no_data_value(Some(nd))?;
            }
            if let BandKind::Categorical { class_names } = &b.kind {
                let json = serde_json::to_string(class_names).unwrap_or_default();
                band.set_metadata_item(CLASS_NAMES_KEY, &json, "")?;
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn spec(&self) -> &CogSpec {
        &self.spec
    }

    fn write_error(&self, reason: String) -> TilingError {
        TilingError::Write {
            path: self.path.clone(),
            reason,
        }
    }

    /// Write `data` (rows × cols, matching `window`) into band `band` (0-based).
    /// Windows may come in any order and may overlap (the last write wins); they must lie
    /// inside the raster, and `T` must be the spec's data type (no silent conversion).
    pub fn write_window<T: Sample>(
        &mut self,
        band: usize,
        window: &PixelWindow,
        data: ArrayView2<'_, T>,
    ) -> Result<()> {
        if T::DTYPE != self.spec.dtype {
            return Err(self.write_error(format!(
                "band {}: got {} samples for a {} raster",
                band + 1,
                T::DTYPE,
                self.spec.dtype
            )));
        }
        if band >= self.spec.bands.len() {
            return Err(TilingError::NoSuchBand {
                path: self.path.clone(),
                band: band + 1,
                count: self.spec.bands.len(),
            });
        }
        if !window.is_inside(self.spec.width, self.spec.height) {
            return Err(TilingError::WindowOutOfBounds {
                path: self.path.clone(),
                window: window.to_string(),
                width: self.spec.width,
                height: self.spec.height,
            });
        }
        if data.dim() != (window.rows, window.cols) {
            return Err(self.write_error(format!(
                "band {}: window {window} is {} x {} pixels but the data is {} x {}",
                band + 1,
                window.cols,
                window.rows,
                data.ncols(),
                data.nrows()
            )));
        }
        if window.is_empty() {
            return Ok(());
        }
        let Some(ds) = self.staging.as_ref() else {
            return Err(self.write_error("the writer was already finished".into()));
        };
        let pixels: Vec<T> = match data.as_slice() {
            Some(s) => s.to_vec(),
            None => data.iter().copied().collect(),
        };
        let mut buffer = Buffer::new((window.cols, window.rows), pixels);
        let result = ds.rasterband(band + 1).and_then(|mut b| {
            b.write(
                (window.col_off as isize, window.row_off as isize),
                (window.cols, window.rows),
                &mut buffer,
            )
        });
        result
            .map_err(|e| self.write_error(format!("band {}, window {window}: GDAL: {e}", band + 1)))
    }

    /// Build the overviews, write the COG, move it to the output path and remove the
    /// temporary files. On error the output path is left untouched.
    pub fn finish(mut self) -> Result<()> {
        let Some(mut ds) = self.staging.take() else {
            return Err(self.write_error("the writer was already finished".into()));
        };
        let factors = self.spec.overview_factors();
        if !factors.is_empty() {
            self.build_overviews(&mut ds, &factors)?;
        }
        ds.flush_cache()
            .map_err(|e| self.write_error(format!("flushing the staging file: GDAL: {e}")))?;

        let cog_path = sibling(&self.path, "cog")?;
        let result = self.copy_to_cog(&ds, &cog_path, !factors.is_empty());
        drop(ds);
        if let Err(e) = result {
            remove_with_side_files(&cog_path);
            return Err(e);
        }
        std::fs::rename(&cog_path, &self.path).map_err(|e| {
            remove_with_side_files(&cog_path);
            self.write_error(format!("moving {} into place: {e}", cog_path.display()))
        })?;
        Ok(())
        // Drop removes the staging file.
    }

    /// Empty overview levels for all bands, then each band's levels computed from its
    /// full-resolution data with its own resampling (GTiff builds internal overviews only
    /// for all bands at once, with one method).
    fn build_overviews(&self, ds: &mut Dataset, factors: &[i32]) -> Result<()> {
        ds.build_overviews("NONE", factors, &[])
            .map_err(|e| self.write_error(format!("creating overview levels: GDAL: {e}")))?;
        for (i, b) in self.spec.bands.iter().enumerate() {
            let band = ds
                .rasterband(i + 1)
                .map_err(|e| self.write_error(format!("band {}: GDAL: {e}", i + 1)))?;
            let mut levels = Vec::with_capacity(factors.len());
            for o in 0..factors.len() {
                let ovr = band.overview(o).map_err(|e| {
                    self.write_error(format!("band {}, overview {o}: GDAL: {e}", i + 1))
                })?;
                // SAFETY: the handles belong to `ds`, which outlives this function call.
                levels.push(unsafe { ovr.c_rasterband() });
            }
            let resampling = CString::new(b.overview_resampling()).unwrap_or_default();
            // SAFETY: `band` and every handle in `levels` are live bands of `ds`; the
            // level count matches the array; no progress callback.
            let rv = unsafe {
                gdal_sys::GDALRegenerateOverviews(
                    band.c_rasterband(),
                    levels.len() as libc::c_int,
                    levels.as_mut_ptr(),
                    resampling.as_ptr(),
                    None,
                    std::ptr::null_mut(),
                )
            };
            if rv != gdal_sys::CPLErr::CE_None {
                return Err(self.write_error(format!(
                    "band {}: computing {} overviews failed: {}",
                    i + 1,
                    b.overview_resampling(),
                    last_gdal_error()
                )));
            }
        }
        Ok(())
    }

    fn copy_to_cog(&self, staging: &Dataset, cog_path: &Path, has_overviews: bool) -> Result<()> {
        let driver = DriverManager::get_driver_by_name("COG")
            .map_err(|e| self.write_error(format!("GDAL has no COG driver: {e}")))?;
        let options: RasterCreationOptions = [
            "COMPRESS=DEFLATE".to_string(),
            format!("LEVEL={COG_DEFLATE_LEVEL}"),
            format!("PREDICTOR={}", self.spec.predictor()),
            format!("BLOCKSIZE={COG_BLOCK_SIZE}"),
            "BIGTIFF=IF_SAFER".to_string(),
            "NUM_THREADS=ALL_CPUS".to_string(),
            if has_overviews {
                "OVERVIEWS=FORCE_USE_EXISTING".to_string()
            } else {
                "OVERVIEWS=NONE".to_string()
            },
        ]
        .into_iter()
        .collect();
        let mut cog = staging
            .create_copy(&driver, cog_path, &options)
            .map_err(|e| self.write_error(format!("writing the COG: GDAL: {e}")))?;
        cog.flush_cache()
            .map_err(|e| self.write_error(format!("flushing the COG: GDAL: {e}")))?;
        cog.close()
            .map_err(|e| self.write_error(format!("closing the COG: GDAL: {e}")))
    }
}

impl Drop for CogWriter {
    fn drop(&mut self) {
        // Close before removing, then take GDAL's side files with it.
        drop(self.staging.take());
        remove_with_side_files(&self.staging_path);
    }
}

#[allow(clippy::too_many_arguments)]
fn create_staging(
    driver: &gdal::Driver,
    path: &Path,
    gdal_type: gdal::raster::GdalDataType,
    width: usize,
    height: usize,
    bands: usize,
    options: &RasterCreationOptions,
) -> gdal::errors::Result<Dataset> {
    use gdal::raster::GdalDataType as G;
    macro_rules! create {
        ($t:ty) => {
            driver.create_with_band_type_with_options::<$t, _>(path, width, height, bands, options)
        };
    }
    match gdal_type {
        G::UInt8 => create!(u8),
        G::UInt16 => create!(u16),
        G::Int16 => create!(i16),
        G::UInt32 => create!(u32),
        G::Int32 => create!(i32),
        G::UInt64 => create!(u64),
        G::Int64 => create!(i64),
        G::Float32 => create!(f32),
        _ => create!(f64),
    }
}

fn last_gdal_error() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local, NUL-terminated
    // string owned by GDAL, valid until the next GDAL call on this thread.
    unsafe {
        let msg = gdal_sys::CPLGetLastErrorMsg();
        if msg.is_null() {
            return "unknown GDAL error".into();
        }
        std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(w: usize, h: usize) -> CogSpec {
        CogSpec {
            width: w,
            height: h,
            crs: Crs {
                epsg: Some(32633),
                name: "WGS 84 / UTM zone 33N".into(),
                wkt: String::new(),
            },
            world_from_pixel: GeoTransform([500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0]),
            bands: vec![CogBand::continuous("p")],
            dtype: DataType::U8,
            nodata: Some(0.0),
        }
    }

    #[test]
    fn overview_factors_follow_the_cog_driver() {
        assert!(spec(512, 512).overview_factors().is_empty());
        assert_eq!(spec(513, 10).overview_factors(), vec![2]);
        assert_eq!(spec(2048, 1000).overview_factors(), vec![2, 4]);
        assert_eq!(spec(2049, 1000).overview_factors(), vec![2, 4, 8]);
    }

    #[test]
    fn the_predictor_is_used_only_where_it_helps() {
        let mut s = spec(10, 10);
        assert_eq!(
            s.predictor(),
            "NO",
            "8-bit confidences are too noisy to difference"
        );
        s.dtype = DataType::U16;
        assert_eq!(s.predictor(), "STANDARD");
        s.dtype = DataType::F32;
        assert_eq!(s.predictor(), "FLOATING_POINT");
        s.dtype = DataType::U8;
        s.bands = vec![CogBand::categorical("c", vec!["a".into()])];
        assert_eq!(s.predictor(), "NO");
    }

    #[test]
    fn bad_specs_are_refused_with_reasons() {
        let p = Path::new("/tmp/x.tif");
        let mut s = spec(0, 10);
        assert!(s.check(p).is_err());
        s = spec(10, 10);
        s.nodata = Some(300.0);
        let e = s.check(p).unwrap_err().to_string();
        assert!(e.contains("nodata 300"), "{e}");
        s = spec(10, 10);
        s.dtype = DataType::F32;
        s.bands = vec![CogBand::categorical("c", vec!["a".into()])];
        assert!(s.check(p).unwrap_err().to_string().contains("integer"));
        s = spec(10, 10);
        s.world_from_pixel = GeoTransform([0.0; 6]);
        assert!(s.check(p).is_err());
    }
}
