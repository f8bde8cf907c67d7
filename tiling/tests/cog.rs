//! The COG writer: a class map and a confidence band derived from the real Slovenia
//! scene, written tile by tile in shuffled order from a parallel run, come out as a COG
//! that GDAL opens and validates, that reads back pixel for pixel, with georeferencing,
//! nodata, band descriptions, class names and MODE / AVERAGE overviews as specified.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::Metadata;
use gengdi_fixtures::fixture;
use gengdi_tiling::cog::CLASS_NAMES_KEY;
use gengdi_tiling::{
    CogBand, CogSpec, CogWriter, DataType, GeoTransform, PixelWindow, Scene, TilingError,
};
use ndarray::{s, Array2, Array3};
use rayon::prelude::*;
use std::path::Path;
use std::process::Command;

/// Analysis-grid pixels per scene pixel along each axis: 100 x 101 → 600 x 606, large
/// enough for one overview level at 512² tiles.
const UPSAMPLE: usize = 6;
/// Scene columns never written (an area outside the analysis): they must read as nodata.
const UNWRITTEN_SCENE_COLS: usize = 10;
const NODATA: u8 = 0;

const NDVI_EDGES: [f32; 6] = [0.0, 0.15, 0.3, 0.45, 0.6, 0.75];

fn class_names() -> Vec<String> {
    [
        "nodata",
        "ndvi below 0",
        "ndvi 0 to 0.15",
        "ndvi 0.15 to 0.3",
        "ndvi 0.3 to 0.45",
        "ndvi 0.45 to 0.6",
        "ndvi 0.6 to 0.75",
        "ndvi 0.75 and above",
    ]
    .map(String::from)
    .to_vec()
}

/// Class code 1..=7 from NDVI bins, and a confidence 1..=100 growing with the distance to
/// the nearest bin edge (0 stays nodata).
fn classify(ndvi: f32) -> (u8, u8) {
    let class = 1 + NDVI_EDGES.iter().filter(|e| ndvi >= **e).count() as u8;
    let dist = NDVI_EDGES
        .iter()
        .map(|e| (ndvi - e).abs())
        .fold(f32::INFINITY, f32::min);
    let conf = 1.0 + 99.0 * (dist / 0.075).min(1.0);
    (class, conf.round() as u8)
}

struct Truth {
    classes: Array2<u8>,
    confidence: Array2<u8>,
    scene_gt: GeoTransform,
    epsg: Option<u32>,
}

/// The expected full-resolution maps: NDVI of the real 2015-07-11 scene, each scene
/// pixel replicated UPSAMPLE² times, the last scene columns left as nodata.
fn truth() -> Truth {
    let scene = Scene::open(fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif")).unwrap();
    let red = scene.band_index("B04").unwrap();
    let nir = scene.band_index("B08").unwrap();
    let px = scene
        .read_window::<f32>(&PixelWindow::full(scene.width, scene.height), &[red, nir])
        .unwrap();
    let (w, h) = (scene.width * UPSAMPLE, scene.height * UPSAMPLE);
    let mut classes = Array2::<u8>::zeros((h, w));
    let mut confidence = Array2::<u8>::zeros((h, w));
    for r in 0..h {
        for c in 0..w {
            let (sr, sc) = (r / UPSAMPLE, c / UPSAMPLE);
            if sc >= scene.width - UNWRITTEN_SCENE_COLS {
                continue;
            }
            let (red, nir) = (px[[0, sr, sc]], px[[1, sr, sc]]);
            if red + nir <= 0.0 {
                continue;
            }
            let (k, p) = classify((nir - red) / (nir + red));
            classes[[r, c]] = k;
            confidence[[r, c]] = p;
        }
    }
    let (crs, gt) = scene.georeference().unwrap();
    Truth {
        classes,
        confidence,
        scene_gt: gt,
        epsg: crs.epsg,
    }
}

fn spec_for(truth: &Truth) -> CogSpec {
    let scene = Scene::open(fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif")).unwrap();
    let g = truth.scene_gt.0;
    let f = UPSAMPLE as f64;
    CogSpec {
        width: truth.classes.ncols(),
        height: truth.classes.nrows(),
        crs: scene.crs.clone().unwrap(),
        world_from_pixel: GeoTransform([g[0], g[1] / f, g[2] / f, g[3], g[4] / f, g[5] / f]),
        bands: vec![
            CogBand::categorical("ndvi class", class_names()),
            CogBand::continuous("confidence (percent)"),
        ],
        dtype: DataType::U8,
        nodata: Some(NODATA as f64),
    }
}

/// 128² tiles (not aligned with the 512² blocks), in a shuffled order.
fn shuffled_tiles(w: usize, h: usize) -> Vec<PixelWindow> {
    let t = 128;
    let mut tiles = Vec::new();
    for r in (0..h).step_by(t) {
        for c in (0..w).step_by(t) {
            tiles.push(PixelWindow::new(
                c as i64,
                r as i64,
                t.min(w - c),
                t.min(h - r),
            ));
        }
    }
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..tiles.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        tiles.swap(i, (s % (i as u64 + 1)) as usize);
    }
    tiles
}

fn tif_files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn run_validator(path: &Path) -> (bool, String) {
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.exists(),
        "/usr/bin/python3 is missing: install python3-gdal (the project's setup script does)"
    );
    let out = Command::new(python)
        .args(["-m", "osgeo_utils.samples.validate_cloud_optimized_geotiff"])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("No module named"),
        "GDAL's COG validator is missing ({stderr}): install python3-gdal \
         (the project's setup script does)"
    );
    let text = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    (out.status.success(), text)
}

#[test]
fn a_class_map_written_in_shuffled_tiles_is_a_valid_cog_that_reads_back_exactly() {
    let truth = truth();
    let spec = spec_for(&truth);
    let (w, h) = (spec.width, spec.height);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("classes.tif");
    let mut writer = CogWriter::create(&out, spec.clone()).unwrap();

    // A parallel tiled run: workers compute tiles, one thread owns the writer.
    let unwritten_from = (truth.classes.ncols() / UPSAMPLE - UNWRITTEN_SCENE_COLS) * UPSAMPLE;
    let tiles: Vec<PixelWindow> = shuffled_tiles(w, h)
        .into_iter()
        .map(|t| {
            // Tiles reaching into the never-written area are cut at its border.
            let cols = (t.col_end().min(unwritten_from as i64) - t.col_off).max(0) as usize;
            PixelWindow::new(t.col_off, t.row_off, cols, t.rows)
        })
        .filter(|t| !t.is_empty())
        .collect();
    let (tx, rx) = std::sync::mpsc::sync_channel::<(PixelWindow, Array3<u8>)>(4);
    std::thread::scope(|scope| {
        let truth = &truth;
        let tiles = &tiles;
        scope.spawn(move || {
            tiles.par_iter().for_each_with(tx, |tx, t| {
                let rows = t.row_off as usize..t.row_end() as usize;
                let cols = t.col_off as usize..t.col_end() as usize;
                let mut tile = Array3::<u8>::zeros((2, t.rows, t.cols));
                tile.slice_mut(s![0, .., ..])
                    .assign(&truth.classes.slice(s![rows.clone(), cols.clone()]));
                tile.slice_mut(s![1, .., ..])
                    .assign(&truth.confidence.slice(s![rows, cols]));
                tx.send((*t, tile)).unwrap();
            });
        });
        let mut received = 0;
        for (t, tile) in rx {
            // Band 2 first for some tiles: band order is free too.
            for b in if received % 2 == 0 { [0, 1] } else { [1, 0] } {
                writer
                    .write_window(b, &t, tile.index_axis(ndarray::Axis(0), b))
                    .unwrap();
            }
            received += 1;
        }
        assert_eq!(received, tiles.len());
    });
    writer.finish().unwrap();
    assert_eq!(
        tif_files_in(dir.path()),
        vec!["classes.tif"],
        "temporary files are removed and GDAL left no side files"
    );

    // gdalinfo opens it; GDAL's validator accepts it.
    let info = Command::new("gdalinfo").arg(&out).output().unwrap();
    let info_text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "gdalinfo failed: {info:?}");
    assert!(info_text.contains("LAYOUT=COG"), "{info_text}");
    assert!(info_text.contains("COMPRESSION=DEFLATE"), "{info_text}");
    let (valid, report) = run_validator(&out);
    assert!(valid, "the validator rejects the file: {report}");
    assert!(
        report.contains("is a valid cloud optimized GeoTIFF"),
        "{report}"
    );

    // Pixels: exactly what was written, nodata where nothing was.
    let back = Scene::open(&out).unwrap();
    assert!(
        back.fast_reader().is_some(),
        "the fast reader serves the COG"
    );
    let px = back
        .read_window::<u8>(&PixelWindow::full(w, h), &[0, 1])
        .unwrap();
    assert_eq!(px.index_axis(ndarray::Axis(0), 0), truth.classes);
    assert_eq!(px.index_axis(ndarray::Axis(0), 1), truth.confidence);
    assert!(truth.classes.iter().filter(|c| **c == NODATA).count() >= h * UNWRITTEN_SCENE_COLS);
    let distinct: std::collections::BTreeSet<u8> = truth.classes.iter().copied().collect();
    assert!(
        distinct.len() >= 4,
        "real NDVI gives several classes: {distinct:?}"
    );

    // Georeferencing, nodata, descriptions, structure.
    assert_eq!(back.world_from_pixel, Some(spec.world_from_pixel));
    let crs = back.crs.as_ref().unwrap();
    assert_eq!(crs.epsg, truth.epsg);
    assert_eq!(crs.epsg, Some(32633));
    assert!(back.bands.iter().all(|b| b.nodata == Some(0.0)));
    assert_eq!(back.bands[0].name, "ndvi class");
    assert_eq!(back.bands[1].name, "confidence (percent)");
    let structure = back.structure.as_ref().unwrap();
    assert_eq!((structure.chunk_width, structure.chunk_height), (512, 512));
    assert_eq!(structure.compression, "DEFLATE");
    assert_eq!(structure.overviews, 1);

    // Class names in the band metadata; overviews MODE for classes, AVERAGE for
    // confidence: with 6x6 replicated pixels both equal the 2x decimation exactly.
    let ds = gdal::Dataset::open(&out).unwrap();
    let class_band = ds.rasterband(1).unwrap();
    let names: Vec<String> =
        serde_json::from_str(&class_band.metadata_item(CLASS_NAMES_KEY, "").unwrap()).unwrap();
    assert_eq!(names, class_names());
    assert_eq!(CLASS_NAMES_KEY, "CLASS_NAMES");
    assert!(ds
        .rasterband(2)
        .unwrap()
        .metadata_item(CLASS_NAMES_KEY, "")
        .is_none());
    for (b, full) in [(1, &truth.classes), (2, &truth.confidence)] {
        let band = ds.rasterband(b).unwrap();
        assert!(band.overview_count().unwrap() >= 1);
        let ovr = band.overview(0).unwrap();
        assert_eq!(ovr.size(), (w.div_ceil(2), h.div_ceil(2)));
        let got = ovr.read_band_as::<u8>().unwrap().to_array().unwrap();
        let want = full.slice(s![..;2, ..;2]);
        assert_eq!(
            got, want,
            "band {b}: overview is not the expected resampling"
        );
    }
}

#[test]
fn a_float_probability_map_round_trips_with_nan_nodata() {
    // The real 68-date NDVI series, first date, upsampled to 606 x 513 (one overview).
    let ndvi = Scene::open(fixture("eolearn-slovenia-s2/ndvi_68dates.tif")).unwrap();
    let src = ndvi
        .read_window::<f32>(&PixelWindow::full(ndvi.width, ndvi.height), &[0])
        .unwrap();
    let (w, h) = (606, 513);
    let full = Array2::from_shape_fn((h, w), |(r, c)| {
        let v = src[[0, r * ndvi.height / h, c * ndvi.width / w]];
        if r < 7 {
            f32::NAN
        } else {
            (v + 1.0) / 2.0
        }
    });
    let (crs, gt) = ndvi.georeference().unwrap();
    let spec = CogSpec {
        width: w,
        height: h,
        crs: crs.clone(),
        world_from_pixel: gt,
        bands: vec![CogBand::continuous("probability of vegetation")],
        dtype: DataType::F32,
        nodata: Some(f64::NAN),
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prob.tif");
    let mut writer = CogWriter::create(&out, spec).unwrap();
    for t in shuffled_tiles(w, h) {
        let view = full.slice(s![
            t.row_off as usize..t.row_end() as usize,
            t.col_off as usize..t.col_end() as usize
        ]);
        writer.write_window(0, &t, view).unwrap();
    }
    writer.finish().unwrap();
    let (valid, report) = run_validator(&out);
    assert!(valid, "{report}");
    let back = Scene::open(&out).unwrap();
    assert_eq!(back.structure.as_ref().unwrap().predictor, "floatingpoint");
    assert!(back.bands[0].nodata.unwrap().is_nan());
    let px = back
        .read_window::<f32>(&PixelWindow::full(w, h), &[0])
        .unwrap();
    let same = px
        .iter()
        .zip(full.iter())
        .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
    assert!(same, "f32 pixels round-trip bit for bit");
    assert_eq!(back.world_from_pixel, Some(gt));
}

#[test]
fn mistakes_are_errors_that_say_what_was_wrong_and_leave_no_files() {
    let truth_spec = |w: usize, h: usize| CogSpec {
        width: w,
        height: h,
        crs: Scene::open(fixture("eolearn-slovenia-s2/dem.tif"))
            .unwrap()
            .crs
            .unwrap(),
        world_from_pixel: GeoTransform([465181.0, 10.0, 0.0, 5080254.0, 0.0, -10.0]),
        bands: vec![CogBand::categorical("c", class_names())],
        dtype: DataType::U8,
        nodata: Some(0.0),
    };
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("no/such/folder/x.tif");
    let err = CogWriter::create(&missing, truth_spec(10, 10)).unwrap_err();
    assert!(
        matches!(err, TilingError::Write { .. }) && err.to_string().contains("does not exist"),
        "{err}"
    );

    let out = dir.path().join("x.tif");
    let mut w = CogWriter::create(&out, truth_spec(100, 50)).unwrap();
    let data = Array2::<u8>::ones((10, 10));
    let err = w
        .write_window(0, &PixelWindow::new(95, 0, 10, 10), data.view())
        .unwrap_err();
    assert!(
        matches!(err, TilingError::WindowOutOfBounds { .. }),
        "{err}"
    );
    let err = w
        .write_window(1, &PixelWindow::new(0, 0, 10, 10), data.view())
        .unwrap_err();
    assert!(matches!(err, TilingError::NoSuchBand { .. }), "{err}");
    let err = w
        .write_window(0, &PixelWindow::new(0, 0, 10, 9), data.view())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("10 x 9 pixels but the data is 10 x 10"),
        "{err}"
    );
    let floats = Array2::<f32>::zeros((10, 10));
    let err = w
        .write_window(0, &PixelWindow::new(0, 0, 10, 10), floats.view())
        .unwrap_err();
    assert!(
        err.to_string().contains("f32 samples for a u8 raster"),
        "{err}"
    );
    // Abandoned without finish: no output, no staging file.
    drop(w);
    assert!(tif_files_in(dir.path())
        .iter()
        .all(|f| !f.ends_with(".tif")));
    assert!(!out.exists());
}
