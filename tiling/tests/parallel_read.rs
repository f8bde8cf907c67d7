//! The parallel read (`read_window_par`) gives exactly the single-threaded read, for
//! every layout of the fixtures, odd windows and band lists with repeats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_fixtures::fixture;
use gengdi_tiling::tiff::TiffReader;
use gengdi_tiling::PixelWindow;

#[test]
fn the_parallel_read_equals_the_single_threaded_read_on_every_layout() {
    let dir = fixture("geotiff-reader-fixtures/gdal-generated-variants");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "tif") {
            continue;
        }
        let Ok(r) = TiffReader::open(&path) else {
            continue; // layouts the fast reader leaves to GDAL
        };
        let (w, h, n) = (r.width(), r.height(), r.band_count());
        let mut band_lists = vec![(0..n).collect::<Vec<_>>(), vec![n - 1, 0, n - 1]];
        band_lists.push(vec![n / 2]);
        for window in [
            PixelWindow::full(w, h),
            PixelWindow::new(3, 5, w - 7, h - 11),
            PixelWindow::new((w / 2) as i64, 0, 1, h),
            PixelWindow::new(0, (h - 1) as i64, w, 1),
        ] {
            for bands in &band_lists {
                let one = r.read_window::<f64>(&window, bands).unwrap();
                let par = r.read_window_par::<f64>(&window, bands).unwrap();
                assert!(
                    one.iter()
                        .zip(par.iter())
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{}: {window} bands {bands:?}",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} reads compared");
}
