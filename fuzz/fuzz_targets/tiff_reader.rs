//! Fuzz the pure-Rust GeoTIFF reader: any bytes → open → read windows → GeoTIFF keys.
//! Errors are fine; panics, overflows, hangs and allocations past the budget are not.
#![no_main]

use gengdi_tiling::tiff::geo::TiffGeo;
use gengdi_tiling::tiff::{ByteSource, TiffReader};
use gengdi_tiling::PixelWindow;
use libfuzzer_sys::fuzz_target;

/// Most bytes one read may allocate; run with `-malloc_limit_mb=512` so that anything
/// allocating past it (the budget bounds every single buffer) is a finding.
const BUDGET: u64 = 64 << 20;
/// Whole-image reads only for images up to this many pixels.
const SMALL: u128 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let src = ByteSource::from_bytes("fuzz.tif", data.to_vec());
    let reader = match TiffReader::from_source(src) {
        Ok(r) => r.with_budget(BUDGET),
        Err(e) => {
            // Every error renders (and names the file).
            assert!(e.to_string().contains("fuzz.tif"));
            return;
        }
    };

    let geo = TiffGeo::from_ifd(reader.first_ifd());
    let _ = (
        geo.world_from_pixel(),
        geo.epsg(),
        geo.raster_type(),
        geo.mechanism(),
    );
    let _ = (
        reader.overview_count(),
        reader.nodata(),
        reader.layout().chunk_count(),
    );

    let (w, h) = (reader.width(), reader.height());
    let all_bands: Vec<usize> = (0..reader.band_count()).collect();
    let (cw, ch) = reader.layout().chunk_size();
    let mut windows = Vec::new();
    if (w as u128) * (h as u128) <= SMALL {
        windows.push(PixelWindow::full(w, h));
    }
    let (wi, hi) = (w as i64, h as i64);
    // The four corner pixels.
    for (c, r) in [(0, 0), (wi - 1, 0), (0, hi - 1), (wi - 1, hi - 1)] {
        windows.push(PixelWindow::new(c, r, 1, 1));
    }
    // 2 x 2 windows across the first chunk border and the last one.
    let (ci, ri) = (cw as i64, ch as i64);
    for (c, r) in [
        (ci - 1, ri - 1),
        (wi - 1 - (wi - 1) % ci - 1, hi - 1 - (hi - 1) % ri - 1),
    ] {
        let win = PixelWindow::new(c.max(0), r.max(0), 2, 2);
        windows.push(win);
    }
    // A window partly outside, and a band that does not exist: errors, not panics.
    windows.push(PixelWindow::new(wi - 1, hi - 1, 2, 2));
    let _ = reader.read_window::<u8>(&PixelWindow::new(0, 0, 1, 1), &[reader.band_count()]);

    for win in &windows {
        let a = reader.read_window::<u16>(win, &all_bands);
        let b = reader.read_window::<f32>(win, &all_bands);
        // The same window read in parallel gives the same answer.
        let c = reader.read_window_par::<u16>(win, &all_bands);
        match (&a, &c) {
            (Ok(x), Ok(y)) => assert_eq!(x, y),
            (Err(_), Err(_)) => {}
            // Parallel reads may hit a different first error, but never succeed where the
            // sequential one fails or the other way round.
            _ => panic!("sequential and parallel reads disagree on {win}: {a:?} vs {c:?}"),
        }
        if let (Ok(x), Ok(y)) = (&a, &b) {
            assert_eq!(x.shape(), y.shape());
        }
    }
});
