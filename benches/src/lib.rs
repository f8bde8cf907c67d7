//! Shared helpers of the benchmarks: test rasters made of real pixels, and whole-image
//! reads through GDAL.
//!
//! The decode benchmarks need files much larger than the shipped fixtures. They are made
//! from the real Sentinel-2 scenes of `fixtures/data/eolearn-slovenia-s2/` (5 dates,
//! 100 x 101 pixels): each 100 x 101 block of the mosaic is one of the dates, mirrored or
//! not, so there are no exact repeats close together; no pixel is interpolated or
//! invented. GDAL writes them as tiled (256²), pixel-interleaved GeoTIFFs. They are
//! cached under the target folder (`bench-data/`) and made again when missing.

use anyhow::{bail, Context, Result};
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager, Metadata};
use gengdi_fixtures::fixture;
use gengdi_tiling::{PixelWindow, Scene};
use std::path::{Path, PathBuf};

/// The Slovenia dates the mosaic is made of.
pub const SLOVENIA_DATES: [&str; 5] = ["20150711", "20150731", "20150820", "20150830", "20150909"];

/// The six bands of the test files (10 m and 20 m bands a crop model uses).
pub const MOSAIC_BANDS: [&str; 6] = ["B02", "B03", "B04", "B08", "B11", "B12"];

/// Compression of a test file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Deflate,
    Zstd,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Deflate => "deflate",
            Codec::Zstd => "zstd",
        }
    }
}

/// One generated test file.
#[derive(Clone, Debug)]
pub struct TestFile {
    pub path: PathBuf,
    /// e.g. `deflate` or `deflate_pred2`.
    pub label: String,
    pub width: usize,
    pub height: usize,
    pub bands: usize,
    /// Bytes of the decoded pixels (width × height × bands × 2): the throughput unit.
    pub decoded_bytes: u64,
    /// Size of the file on disk.
    pub file_bytes: u64,
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct TestFileSpec {
    pub size: usize,
    pub tile: usize,
    pub codec: Codec,
    pub predictor: bool,
}

impl TestFileSpec {
    pub fn label(&self) -> String {
        match self.predictor {
            false => self.codec.name().to_string(),
            true => format!("{}_pred2", self.codec.name()),
        }
    }

    fn file_name(&self) -> String {
        format!(
            "s2_slovenia_mosaic_{}x{}x6_u16_tiled{}_{}.tif",
            self.size,
            self.size,
            self.tile,
            self.label()
        )
    }
}

/// Where generated files are cached: `$CARGO_TARGET_DIR/bench-data`, else
/// `<workspace>/target/bench-data`.
pub fn default_cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-data")
}

/// The real pixels of the mosaic, (bands, rows, cols) band-sequential.
pub fn slovenia_mosaic(size: usize) -> Result<Vec<u16>> {
    let mut scenes = Vec::new();
    for date in SLOVENIA_DATES {
        let path = fixture(&format!("eolearn-slovenia-s2/s2l1c_{date}_13band.tif"));
        let scene = Scene::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let bands = MOSAIC_BANDS
            .iter()
            .map(|b| scene.band_index(b))
            .collect::<gengdi_tiling::Result<Vec<_>>>()?;
        let px = scene.read_window::<u16>(&PixelWindow::full(scene.width, scene.height), &bands)?;
        scenes.push(px);
    }
    let (bh, bw) = (scenes[0].shape()[1], scenes[0].shape()[2]);
    let nb = MOSAIC_BANDS.len();
    let mut out = vec![0u16; nb * size * size];
    for by in 0..size.div_ceil(bh) {
        for bx in 0..size.div_ceil(bw) {
            // A fixed pseudo-random choice of date and mirroring per block.
            let mut h = (bx as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ (by as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
            h ^= h >> 29;
            h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h ^= h >> 32;
            let scene = &scenes[(h % scenes.len() as u64) as usize];
            let (flip_x, flip_y) = ((h >> 8) & 1 == 1, (h >> 9) & 1 == 1);
            for r in by * bh..((by + 1) * bh).min(size) {
                let lr = r - by * bh;
                let sr = if flip_y { bh - 1 - lr } else { lr };
                for c in bx * bw..((bx + 1) * bw).min(size) {
                    let lc = c - bx * bw;
                    let sc = if flip_x { bw - 1 - lc } else { lc };
                    for b in 0..nb {
                        out[(b * size + r) * size + c] = scene[[b, sr, sc]];
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Generate (or find in `cache_dir`) a test file.
pub fn test_file(cache_dir: &Path, spec: TestFileSpec) -> Result<TestFile> {
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    let path = cache_dir.join(spec.file_name());
    if !path.exists() {
        write_mosaic(&path, spec)?;
    }
    let ds = Dataset::open(&path)?;
    let (width, height) = ds.raster_size();
    let bands = ds.raster_count();
    if (width, height, bands) != (spec.size, spec.size, MOSAIC_BANDS.len()) {
        bail!(
            "{}: {width}x{height}x{bands}, expected {}x{}x{}; delete it to regenerate",
            path.display(),
            spec.size,
            spec.size,
            MOSAIC_BANDS.len()
        );
    }
    Ok(TestFile {
        file_bytes: std::fs::metadata(&path)?.len(),
        label: spec.label(),
        decoded_bytes: (width * height * bands * 2) as u64,
        width,
        height,
        bands,
        path,
    })
}

/// The decode benchmark's files: 2048² × 6 bands u16, 256² tiles, DEFLATE, ZSTD and
/// DEFLATE with the horizontal predictor.
pub fn decode_test_files(cache_dir: &Path) -> Result<Vec<TestFile>> {
    [
        (Codec::Deflate, false),
        (Codec::Zstd, false),
        (Codec::Deflate, true),
    ]
    .into_iter()
    .map(|(codec, predictor)| {
        test_file(
            cache_dir,
            TestFileSpec {
                size: 2048,
                tile: 256,
                codec,
                predictor,
            },
        )
    })
    .collect()
}

fn write_mosaic(path: &Path, spec: TestFileSpec) -> Result<()> {
    let px = slovenia_mosaic(spec.size)?;
    let nb = MOSAIC_BANDS.len();
    let src = Scene::open(fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif"))?;
    let (crs, gt) = src.georeference()?;
    let mem = DriverManager::get_driver_by_name("MEM")?;
    let mut ds = mem.create_with_band_type::<u16, _>("", spec.size, spec.size, nb)?;
    ds.set_geo_transform(&gt.0)?;
    ds.set_spatial_ref(&crs.to_spatial_ref()?)?;
    for (b, plane) in px.chunks_exact(spec.size * spec.size).enumerate() {
        let mut band = ds.rasterband(b + 1)?;
        let mut buf = Buffer::new((spec.size, spec.size), plane.to_vec());
        band.write((0, 0), (spec.size, spec.size), &mut buf)?;
        band.set_description(MOSAIC_BANDS[b])?;
    }
    let tile = spec.tile.to_string();
    let mut opts = vec![
        "TILED=YES".to_string(),
        format!("BLOCKXSIZE={tile}"),
        format!("BLOCKYSIZE={tile}"),
        "INTERLEAVE=PIXEL".to_string(),
        format!("COMPRESS={}", spec.codec.name().to_uppercase()),
    ];
    if spec.predictor {
        opts.push("PREDICTOR=2".into());
    }
    let options: RasterCreationOptions = opts.into_iter().collect();
    let gtiff = DriverManager::get_driver_by_name("GTiff")?;
    // Written under a temporary name, so a concurrent run never sees half a file.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    ds.create_copy(&gtiff, &tmp, &options)?.close()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Open a dataset for a benchmark read; `threads` > 1 turns on GDAL's own multi-threaded
/// decoding (the GTiff open option `NUM_THREADS`).
pub fn gdal_open(path: &Path, threads: Option<&str>) -> Result<Dataset> {
    let opt = threads.map(|t| format!("NUM_THREADS={t}"));
    let open_options: Vec<&str> = opt.iter().map(String::as_str).collect();
    Ok(Dataset::open_ex(
        path,
        gdal::DatasetOptions {
            open_options: Some(&open_options),
            ..Default::default()
        },
    )?)
}

/// All bands of the whole image in one dataset-level `RasterIO` (band-sequential output,
/// the layout of the fast reader's `Array3`), so a pixel-interleaved block is decoded once.
pub fn gdal_read_all_u16(ds: &Dataset) -> Result<Vec<u16>> {
    let (w, h) = ds.raster_size();
    let n = ds.raster_count();
    let mut out = vec![0u16; w * h * n];
    let mut band_list: Vec<i32> = (1..=n as i32).collect();
    let (wi, hi, ni) = (i32::try_from(w)?, i32::try_from(h)?, i32::try_from(n)?);
    // SAFETY: `out` holds exactly w × h × n u16 samples, the buffer type is UInt16, the
    // band list has n valid 1-based entries, and default spacings mean band-sequential.
    let rv = unsafe {
        gdal_sys::GDALDatasetRasterIO(
            ds.c_dataset(),
            gdal_sys::GDALRWFlag::GF_Read,
            0,
            0,
            wi,
            hi,
            out.as_mut_ptr().cast(),
            wi,
            hi,
            gdal_sys::GDALDataType::GDT_UInt16,
            ni,
            band_list.as_mut_ptr(),
            0,
            0,
            0,
        )
    };
    if rv != gdal_sys::CPLErr::CE_None {
        bail!("GDALDatasetRasterIO failed on {}", ds.description()?);
    }
    Ok(out)
}
