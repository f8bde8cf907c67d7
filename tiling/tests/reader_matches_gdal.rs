//! The fast reader is checked against GDAL, the oracle: every window of every fixture
//! decodes to exactly GDAL's values, and every lossless variant of the Slovenia scene
//! decodes to the raw truth file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_fixtures::fixture;
use gengdi_tiling::scene::ReaderKind;
use gengdi_tiling::{DataType, PixelWindow, Sample, Scene};
use std::path::PathBuf;

fn tifs_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tif"))
        .collect();
    v.sort();
    v
}

fn all_fixture_tifs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in [
        "geotiff-reader-fixtures/rasterio",
        "geotiff-reader-fixtures/georust-geotiff",
        "geotiff-reader-fixtures/gdal-generated-variants",
        "eolearn-slovenia-s2",
    ] {
        v.extend(tifs_in(d));
    }
    v
}

/// Windows that start and end inside, on and across chunk borders, plus the whole image.
fn windows(w: usize, h: usize) -> Vec<PixelWindow> {
    let mut v = vec![PixelWindow::full(w, h), PixelWindow::new(0, 0, 1, 1)];
    v.push(PixelWindow::new((w - 1) as i64, (h - 1) as i64, 1, 1));
    // A deterministic spread of odd-sized windows.
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..12 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let c0 = (s % w as u64) as usize;
        let r0 = ((s >> 20) % h as u64) as usize;
        let cw = 1 + ((s >> 40) % (w - c0) as u64) as usize;
        let rh = 1 + ((s >> 50) % (h - r0) as u64) as usize;
        v.push(PixelWindow::new(c0 as i64, r0 as i64, cw, rh));
    }
    v
}

fn same<T: Sample>(a: T, b: T) -> bool {
    a == b || (a.to_f64().is_nan() && b.to_f64().is_nan())
}

fn compare<T: Sample>(scene: &Scene) -> usize {
    let bands: Vec<usize> = (0..scene.band_count()).collect();
    let mut checked = 0;
    for w in windows(scene.width, scene.height) {
        let fast = scene.read_window::<T>(&w, &bands).unwrap();
        let gdal = scene.read_window_gdal::<T>(&w, &bands).unwrap();
        assert_eq!(fast.shape(), gdal.shape());
        let bad = fast
            .iter()
            .zip(gdal.iter())
            .position(|(a, b)| !same(*a, *b));
        assert!(
            bad.is_none(),
            "{}: window {w}: first difference at flat index {bad:?}",
            scene.path.display()
        );
        checked += fast.len();
        // Band subsets in another order read the same values.
        if bands.len() > 1 {
            let sub = [bands.len() - 1, 0];
            let f = scene.read_window::<T>(&w, &sub).unwrap();
            let g = scene.read_window_gdal::<T>(&w, &sub).unwrap();
            assert!(f.iter().zip(g.iter()).all(|(a, b)| same(*a, *b)));
        }
    }
    checked
}

#[test]
fn every_window_of_every_fixture_equals_gdals_read() {
    let mut fast_files = 0;
    let mut fallback = Vec::new();
    for path in all_fixture_tifs() {
        let scene = match Scene::open(&path) {
            Ok(s) => s,
            Err(e) => {
                // Only the Geostationary file whose corners fall outside its projection may
                // fail, and then with a clear error, not a panic.
                assert!(path.ends_with("goes.tif"), "{}: {e}", path.display());
                continue;
            }
        };
        if let ReaderKind::Gdal { reason } = &scene.reader {
            fallback.push((
                path.file_name().unwrap().to_string_lossy().to_string(),
                reason.clone(),
            ));
            continue;
        }
        fast_files += 1;
        let n = match scene.dtype {
            DataType::U8 => compare::<u8>(&scene),
            DataType::U16 => compare::<u16>(&scene),
            DataType::I16 => compare::<i16>(&scene),
            DataType::U32 => compare::<u32>(&scene),
            DataType::I32 => compare::<i32>(&scene),
            DataType::F32 => compare::<f32>(&scene),
            DataType::F64 => compare::<f64>(&scene),
            other => panic!("{}: unexpected type {other}", path.display()),
        };
        assert!(n > 0);
        // Reading as f64 agrees with GDAL's conversion too.
        let w = PixelWindow::full(scene.width, scene.height);
        let a = scene.read_window::<f64>(&w, &[0]).unwrap();
        let b = scene.read_window_gdal::<f64>(&w, &[0]).unwrap();
        assert!(
            a.iter().zip(b.iter()).all(|(x, y)| same(*x, *y)),
            "{}",
            path.display()
        );
    }
    // Only JPEG / YCbCr files go to GDAL.
    for (name, reason) in &fallback {
        assert!(
            reason.contains("JPEG") || reason.contains("YCbCr"),
            "{name}: {reason}"
        );
    }
    assert!(
        fast_files >= 30,
        "only {fast_files} files were read by the fast reader"
    );
    assert!(fallback.len() <= 4, "{fallback:?}");
}

#[test]
fn every_lossless_variant_decodes_to_the_raw_truth() {
    let raw = std::fs::read(fixture(
        "geotiff-reader-fixtures/gdal-generated-variants/s2_reference_13x101x100_u16le.raw",
    ))
    .unwrap();
    let truth: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(truth.len(), 13 * 101 * 100);
    assert_eq!(truth.iter().map(|v| *v as u64).sum::<u64>(), 154_921_347);
    let mut n = 0;
    for path in tifs_in("geotiff-reader-fixtures/gdal-generated-variants") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("s2_u16") {
            continue;
        }
        let scene = Scene::open(&path).unwrap();
        assert!(matches!(scene.reader, ReaderKind::Fast), "{name}");
        let all: Vec<usize> = (0..13).collect();
        let got = scene
            .read_window::<u16>(&PixelWindow::full(100, 101), &all)
            .unwrap();
        assert_eq!(got.as_slice().unwrap(), &truth[..], "{name}");
        // And in parallel.
        let par = scene
            .fast_reader()
            .unwrap()
            .read_window_par::<u16>(&PixelWindow::full(100, 101), &all)
            .unwrap();
        assert_eq!(par.as_slice().unwrap(), &truth[..], "{name}");
        n += 1;
    }
    assert_eq!(n, 10, "all ten lossless u16 variants were checked");
    // The float variant holds value / 10000 with the floating-point predictor.
    let f = Scene::open(fixture(
        "geotiff-reader-fixtures/gdal-generated-variants/s2_f32_reflectance_deflate_pred3.tif",
    ))
    .unwrap();
    let got = f
        .read_window::<f32>(&PixelWindow::full(100, 101), &(0..13).collect::<Vec<_>>())
        .unwrap();
    for (g, t) in got.iter().zip(&truth) {
        assert_eq!(*g, (*t as f32) / 10000.0);
    }
}
