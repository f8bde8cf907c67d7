//! The scene stack puts every layer on one grid without shifting it, reads tiles lazily,
//! and gives the same numbers whatever the tile layout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::raster::Buffer;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::{DriverManager, Metadata};
use gengdi_fixtures::fixture;
use gengdi_tiling::stack::Placement;
use gengdi_tiling::{
    AnalysisGrid, PixelWindow, Resampling, Scene, SceneOptions, SceneStack, StackOptions,
    TilingError,
};
use ndarray::Array2;
use std::path::{Path, PathBuf};

const BEN: &str = "bigearthnet-tiny-s2/s2/S2B_MSIL2A_20180421T114349_47_56";

fn ben_scenes() -> Vec<Scene> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture(BEN))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tif"))
        .collect();
    files.sort();
    files.iter().map(|p| Scene::open(p).unwrap()).collect()
}

fn band_file(name: &str) -> Array2<f32> {
    let s = Scene::open(fixture(&format!(
        "{BEN}/S2B_MSIL2A_20180421T114349_47_56_{name}.tif"
    )))
    .unwrap();
    s.read_window::<f32>(&PixelWindow::full(s.width, s.height), &[0])
        .unwrap()
        .index_axis_move(ndarray::Axis(0), 0)
}

#[test]
fn twenty_and_sixty_metre_bands_land_on_the_ten_metre_grid_without_a_half_pixel_shift() {
    let opts = StackOptions {
        continuous: Resampling::Nearest,
        ..Default::default()
    };
    let stack = SceneStack::build(ben_scenes(), &opts).unwrap();
    assert_eq!((stack.grid.width, stack.grid.height), (120, 120));
    assert_eq!(stack.layers.len(), 1, "all band files share one date");
    assert_eq!(stack.band_names.len(), 12);
    let grid = stack.tile_grid(120, 0).unwrap();
    let tile = stack.read_tile(&grid.tile(0).unwrap()).unwrap();
    let idx = |n: &str| stack.band_names.iter().position(|b| b == n).unwrap();
    // 10 m bands are read directly and are the file's pixels.
    let b02 = band_file("B02");
    assert_eq!(tile.values.slice(ndarray::s![0, idx("B02"), .., ..]), b02);
    // A 20 m pixel covers exactly 2 x 2 grid pixels, a 60 m pixel 6 x 6: any half-pixel
    // shift would move some grid pixels into the neighbouring source pixel.
    for (name, factor) in [("B05", 2), ("B11", 2), ("B8A", 2), ("B01", 6), ("B09", 6)] {
        let src = band_file(name);
        let got = tile.values.slice(ndarray::s![0, idx(name), .., ..]);
        for r in 0..120 {
            for c in 0..120 {
                assert_eq!(
                    got[[r, c]],
                    src[[r / factor, c / factor]],
                    "{name} at ({c}, {r})"
                );
            }
        }
    }
    let factors: Vec<usize> = stack
        .scenes
        .iter()
        .filter_map(|s| match &s.placement {
            Placement::Scaled { scaled, .. } => Some(scaled.factor),
            _ => None,
        })
        .collect();
    assert_eq!(
        (
            factors.iter().filter(|f| **f == 2).count(),
            factors.iter().filter(|f| **f == 6).count()
        ),
        (6, 2),
        "the six 20 m and two 60 m files are scaled onto the grid, the four 10 m ones read directly"
    );
}

/// Every value of a stack, tile by tile (tiles of `size` with `halo`), as one array of
/// (dates, bands, rows, cols).
fn whole_stack(stack: &SceneStack, size: usize, halo: usize) -> ndarray::Array4<f32> {
    let mut all = ndarray::Array4::<f32>::from_elem(
        (
            stack.layers.len(),
            stack.band_names.len(),
            stack.grid.height,
            stack.grid.width,
        ),
        -1.0,
    );
    let grid = stack.tile_grid(size, halo).unwrap();
    for tile in grid.tiles() {
        let data = stack.read_tile(&tile).unwrap();
        let c = tile.core;
        all.slice_mut(ndarray::s![
            ..,
            ..,
            c.row_off as usize..c.row_off as usize + c.rows,
            c.col_off as usize..c.col_off as usize + c.cols
        ])
        .assign(&data.core());
    }
    all
}

/// The largest difference between two stacks' values, and whether both have a value at
/// exactly the same pixels.
fn compare(a: &ndarray::Array4<f32>, b: &ndarray::Array4<f32>) -> (f32, bool) {
    let mut worst = 0.0f32;
    let mut same_nan = true;
    for (x, y) in a.iter().zip(b.iter()) {
        if x.is_nan() || y.is_nan() {
            same_nan &= x.is_nan() && y.is_nan();
        } else {
            worst = worst.max((x - y).abs());
        }
    }
    (worst, same_nan)
}

#[test]
fn scaled_bands_equal_gdal_warpers_output_on_real_twenty_and_sixty_metre_bands() {
    for alg in [Resampling::Bilinear, Resampling::Nearest] {
        let build = |always_gdal_warp| {
            let opts = StackOptions {
                continuous: alg,
                always_gdal_warp,
                ..Default::default()
            };
            SceneStack::build(ben_scenes(), &opts).unwrap()
        };
        let (ours, gdal) = (build(false), build(true));
        assert!(ours
            .scenes
            .iter()
            .all(|s| !matches!(s.placement, Placement::Warped { .. })));
        assert_eq!(
            gdal.scenes
                .iter()
                .filter(|s| matches!(s.placement, Placement::Warped { .. }))
                .count(),
            8
        );
        // Tiles that cut through source pixels (37 is odd, no multiple of 6) with a halo.
        let (a, b) = (whole_stack(&ours, 37, 5), whole_stack(&gdal, 37, 5));
        let (worst, same_nan) = compare(&a, &b);
        assert!(same_nan, "{alg:?}: values at different pixels");
        // Reflectance × 10 000 in f32: a few ulps of the largest values.
        let tol = if alg == Resampling::Nearest {
            0.0
        } else {
            0.004
        };
        assert!(worst <= tol, "{alg:?}: {worst} from GDAL's warper");
        assert!(a.iter().all(|v| !v.is_nan()), "the patch is all valid");
    }
}

#[test]
fn scaled_bands_leave_out_nodata_and_the_pixels_past_the_scene_as_gdal_does() {
    let dir = tempfile::tempdir().unwrap();
    let (x0, y0) = (500_000.0, 4_000_000.0);
    let grid_file = dir.path().join("grid_20200601_B02.tif");
    write_f32(
        &grid_file,
        32633,
        [x0, 10.0, 0.0, y0, 0.0, -10.0],
        &Array2::from_shape_fn((60, 60), |(r, c)| (r * 60 + c) as f32),
        "B02",
    );
    // 20 m pixels starting 10 grid columns left of and 6 grid rows above the grid, 25 x 25
    // of them (the grid's columns 40.. and rows 44.. are past the scene), with holes.
    let src = Array2::from_shape_fn((25, 25), |(r, c)| {
        if (r * 7 + c * 3) % 11 == 0 {
            -9999.0
        } else {
            ((r * 37 + c * 101) % 997) as f32 + 0.5
        }
    });
    let scaled_file = dir.path().join("other_20200601_B05.tif");
    write_f32(
        &scaled_file,
        32633,
        [x0 - 100.0, 20.0, 0.0, y0 + 60.0, 0.0, -20.0],
        &src,
        "B05",
    );
    {
        let ds = gdal::Dataset::open_ex(
            &scaled_file,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        let mut band = ds.rasterband(1).unwrap();
        band.set_no_data_value(Some(-9999.0)).unwrap();
    }
    let build = |always_gdal_warp| {
        let opts = StackOptions {
            always_gdal_warp,
            ..Default::default()
        };
        let scenes = vec![
            Scene::open(&grid_file).unwrap(),
            Scene::open(&scaled_file).unwrap(),
        ];
        SceneStack::build(scenes, &opts).unwrap()
    };
    let (ours, gdal) = (build(false), build(true));
    match &ours.scenes[1].placement {
        Placement::Scaled { scaled, .. } => {
            assert_eq!(
                (scaled.factor, scaled.row_off, scaled.col_off),
                (2, -6, -10)
            )
        }
        other => panic!("{other:?}"),
    }
    let (a, b) = (whole_stack(&ours, 16, 3), whole_stack(&gdal, 16, 3));
    let (worst, same_nan) = compare(&a, &b);
    assert!(same_nan, "values at different pixels");
    assert!(worst <= 0.001, "{worst} from GDAL's warper");
    let b05 = a.slice(ndarray::s![0, 1, .., ..]);
    assert!(b05.slice(ndarray::s![44.., ..]).iter().all(|v| v.is_nan()));
    assert!(b05
        .slice(ndarray::s![..44, 40..])
        .iter()
        .all(|v| v.is_nan()));
    assert!(b05
        .slice(ndarray::s![..44, ..40])
        .iter()
        .any(|v| v.is_nan()));
    assert!(
        b05.slice(ndarray::s![..44, ..40])
            .iter()
            .filter(|v| !v.is_nan())
            .count()
            > 1500
    );
}

fn write_f32(path: &Path, epsg: u32, gt: [f64; 6], data: &Array2<f32>, band_name: &str) {
    let drv = DriverManager::get_driver_by_name("GTiff").unwrap();
    let (rows, cols) = data.dim();
    let mut ds = drv
        .create_with_band_type::<f32, _>(path, cols, rows, 1)
        .unwrap();
    ds.set_geo_transform(&gt).unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(epsg).unwrap())
        .unwrap();
    let mut band = ds.rasterband(1).unwrap();
    band.set_description(band_name).unwrap();
    let mut buf = Buffer::new((cols, rows), data.iter().copied().collect());
    band.write((0, 0), (cols, rows), &mut buf).unwrap();
}

#[test]
fn a_known_point_lands_in_the_same_pixel_after_reprojection() {
    let dir = tempfile::tempdir().unwrap();
    // The grid: the Slovenia scene's own 100 x 101 UTM 33N grid.
    let slo = Scene::open(fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif")).unwrap();
    let grid = AnalysisGrid::of_scene(&slo).unwrap();
    let a = dir.path().join("grid_20150711.tif");
    write_f32(
        &a,
        32633,
        grid.world_from_pixel.0,
        &Array2::zeros((101, 100)),
        "idx",
    );
    // The other layer: UTM 32N, 7.3 m pixels, each pixel's value is its own index.
    let mut src = SpatialRef::from_epsg(32633).unwrap();
    let mut dst = SpatialRef::from_epsg(32632).unwrap();
    src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    dst.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let t = CoordTransform::new(&src, &dst).unwrap();
    let b = grid.bounds();
    let (mut xs, mut ys, mut zs) = ([b[0], b[2]], [b[3], b[1]], [0.0, 0.0]);
    t.transform_coords(&mut xs, &mut ys, &mut zs).unwrap();
    let (px, w, h) = (7.3, 200usize, 200usize);
    let gt_b = [
        xs[0].min(xs[1]) - 103.17,
        px,
        0.0,
        ys[0].max(ys[1]) + 97.41,
        0.0,
        -px,
    ];
    let index = Array2::from_shape_fn((h, w), |(r, c)| (r * w + c) as f32);
    let bpath = dir.path().join("other_20150712.tif");
    write_f32(&bpath, 32632, gt_b, &index, "idx");

    let opts = StackOptions {
        grid: Some(AnalysisGrid::of_scene(&Scene::open(&a).unwrap()).unwrap()),
        continuous: Resampling::Nearest,
        ..Default::default()
    };
    let stack = SceneStack::build(
        vec![Scene::open(&a).unwrap(), Scene::open(&bpath).unwrap()],
        &opts,
    )
    .unwrap();
    assert_eq!(stack.layers.len(), 2);
    let tiles = stack.tile_grid(40, 3).unwrap();
    let gt_b = gengdi_tiling::GeoTransform(gt_b);
    let mut checked = 0;
    for tile in tiles.tiles() {
        let data = stack.read_tile(&tile).unwrap();
        let core = data.core();
        for r in 0..tile.core.rows {
            for c in 0..tile.core.cols {
                let (gc, gr) = (
                    tile.core.col_off as f64 + c as f64 + 0.5,
                    tile.core.row_off as f64 + r as f64 + 0.5,
                );
                let (x, y) = grid.world_from_pixel.world_from_pixel(gc, gr);
                let (mut xs, mut ys, mut zs) = ([x], [y], [0.0]);
                t.transform_coords(&mut xs, &mut ys, &mut zs).unwrap();
                let (sc, sr) = gt_b.pixel_from_world(xs[0], ys[0]).unwrap();
                let near_edge = |v: f64| (v - v.round()).abs() < 1e-6;
                if near_edge(sc) || near_edge(sr) {
                    continue;
                }
                let expected = (sr.floor() as usize * w + sc.floor() as usize) as f32;
                assert_eq!(core[[1, 0, r, c]], expected, "grid pixel ({gc}, {gr})");
                checked += 1;
            }
        }
    }
    assert!(checked >= 100 * 101 - 10, "checked {checked}");
}

fn slovenia_stack() -> SceneStack {
    let dates = ["20150711", "20150731", "20150820", "20150830", "20150909"];
    let scenes = dates
        .iter()
        .map(|d| {
            Scene::open(fixture(&format!(
                "eolearn-slovenia-s2/s2l1c_{d}_13band.tif"
            )))
            .unwrap()
        })
        .collect();
    SceneStack::build(scenes, &StackOptions::default()).unwrap()
}

#[test]
fn tiled_result_equals_whole_image_result() {
    let stack = slovenia_stack();
    assert_eq!(stack.layers.len(), 5);
    assert_eq!(stack.band_names.len(), 13);
    let whole = stack
        .read_tile(&stack.tile_grid(128, 0).unwrap().tile(0).unwrap())
        .unwrap();
    assert_eq!(
        whole.values.dim(),
        (5, 13, 101, 100),
        "an edge tile holds only its part of the grid"
    );
    let whole = whole.core().to_owned();
    assert_eq!(whole.dim(), (5, 13, 101, 100));
    assert!(
        whole.iter().all(|v| v.is_finite()),
        "the Slovenia scene has no nodata"
    );
    for (size, halo) in [(32, 5), (17, 0), (64, 16)] {
        let grid = stack.tile_grid(size, halo).unwrap();
        let mut assembled = ndarray::Array4::<f32>::from_elem(whole.dim(), f32::NAN);
        let results = stack
            .par_map_tiles(&grid, |_| false, |data| data, None)
            .unwrap();
        assert_eq!(results.len(), grid.len());
        for (tile, data) in results {
            let c = tile.core;
            assembled
                .slice_mut(ndarray::s![
                    ..,
                    ..,
                    c.row_off as usize..c.row_end() as usize,
                    c.col_off as usize..c.col_end() as usize
                ])
                .assign(&data.core());
            // Halo pixels inside the raster are the neighbours' values; outside, NaN.
            let h = tile.with_halo;
            for r in 0..h.rows {
                for col in 0..h.cols {
                    let (gr, gc) = (h.row_off + r as i64, h.col_off + col as i64);
                    let v = data.values[[2, 7, r, col]];
                    if (0..101).contains(&gr) && (0..100).contains(&gc) {
                        assert_eq!(v, whole[[2, 7, gr as usize, gc as usize]]);
                    } else {
                        assert!(
                            v.is_nan(),
                            "halo pixel ({gc}, {gr}) outside the raster must be nodata"
                        );
                    }
                }
            }
        }
        assert_eq!(assembled, whole, "tile {size} halo {halo}");
    }
}

#[test]
fn tiles_the_mask_excludes_are_never_read() {
    let stack = slovenia_stack();
    let grid = stack.tile_grid(25, 2).unwrap();
    assert_eq!(grid.len(), 4 * 5);
    let before = stack.window_reads();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let progress = |n: usize, total: usize| {
        assert!(n <= total);
        done.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
    };
    let out = stack
        .par_map_tiles(&grid, |t| t.col != 1, |d| d.tile.index, Some(&progress))
        .unwrap();
    let indices: Vec<usize> = out.iter().map(|(_, i)| *i).collect();
    assert_eq!(indices, vec![1, 5, 9, 13, 17]);
    // One read per layer per tile that ran, none for the others.
    assert_eq!(stack.window_reads() - before, 5 * 5);
    assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 5);
}

#[test]
fn declared_nodata_becomes_nan() {
    let path = fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif");
    let plain = Scene::open(&path).unwrap();
    let v = plain
        .read_window::<f32>(&PixelWindow::full(100, 101), &[0])
        .unwrap();
    let marker = v[[0, 0, 0]];
    let expected_nan = v.iter().filter(|x| **x == marker).count();
    assert!(expected_nan >= 1);
    let opts = SceneOptions {
        nodata: Some(marker as f64),
        ..Default::default()
    };
    let scene = Scene::open_with(&path, &opts).unwrap();
    let stack = SceneStack::build(vec![scene], &StackOptions::default()).unwrap();
    let tile = stack
        .read_tile(&stack.tile_grid(128, 0).unwrap().tile(0).unwrap())
        .unwrap();
    let core = tile.core();
    let band0 = core.slice(ndarray::s![0, 0, .., ..]);
    assert_eq!(band0.iter().filter(|x| x.is_nan()).count(), expected_nan);
}

#[test]
fn stacks_that_cannot_be_aligned_are_refused_with_the_reason() {
    // No overlap: a BigEarthNet patch in Portugal against the Slovenia grid.
    let slo = Scene::open(fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif")).unwrap();
    let ben = Scene::open(fixture(&format!(
        "{BEN}/S2B_MSIL2A_20180421T114349_47_56_B02.tif"
    )))
    .unwrap();
    let opts = StackOptions {
        grid: Some(AnalysisGrid::of_scene(&slo).unwrap()),
        bands: Some(vec!["blue".into()]),
        ..Default::default()
    };
    match SceneStack::build(vec![slo, ben], &opts) {
        Err(TilingError::Alignment { reason }) => {
            assert!(reason.contains("does not overlap"), "{reason}")
        }
        other => panic!("expected an alignment error, got {other:?}"),
    }
    // A band one date lacks.
    let slo = Scene::open(fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif")).unwrap();
    let opts = StackOptions {
        bands: Some(vec!["B04".into(), "SCL".into()]),
        ..Default::default()
    };
    match SceneStack::build(vec![slo], &opts) {
        Err(TilingError::Alignment { reason }) => {
            assert!(reason.contains("no band \"SCL\""), "{reason}")
        }
        other => panic!("expected an alignment error, got {other:?}"),
    }
    // A scene without georeferencing.
    let plain = Scene::open(fixture(
        "geotiff-reader-fixtures/georust-geotiff/zh_dem_25.tif",
    ))
    .unwrap();
    assert!(matches!(
        SceneStack::build(vec![plain], &StackOptions::default()),
        Err(TilingError::BadGeoreference { .. } | TilingError::NoGeoreference { .. })
    ));
}

#[test]
fn chunks_shared_by_neighbouring_halos_are_decoded_once() {
    let stack = slovenia_stack();
    // 64 px chunks, 20 px tiles with a 6 px halo: most chunks are touched by many tiles.
    let grid = stack.tile_grid(20, 6).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| stack.par_map_tiles(&grid, |_| false, |_| (), None))
        .unwrap();
    for s in &stack.scenes {
        let (hits, misses) = s.scene.fast_reader().unwrap().cache_stats();
        assert_eq!(misses, 4, "each of the 2 x 2 chunks decoded once");
        assert!(hits >= 30 - 4, "hits {hits}");
    }
}

#[test]
fn a_scene_chunk_cache_can_be_resized_before_it_is_shared() {
    let path = fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif");
    let mut scene = Scene::open(&path).unwrap();
    // Turned off: every read decodes its chunks again.
    assert!(scene.set_chunk_cache(0));
    let w = PixelWindow {
        col_off: 10,
        row_off: 10,
        cols: 20,
        rows: 20,
    };
    let a = scene.read_window::<f32>(&w, &[0, 3]).unwrap();
    let b = scene.read_window::<f32>(&w, &[0, 3]).unwrap();
    assert_eq!(a, b);
    assert_eq!(scene.fast_reader().unwrap().cache_stats(), (0, 0));
    // Back on: the second read is served from the cache, with the same values.
    assert!(scene.set_chunk_cache(1 << 20));
    let c = scene.read_window::<f32>(&w, &[0, 3]).unwrap();
    let d = scene.read_window::<f32>(&w, &[0, 3]).unwrap();
    assert_eq!((&a, &a), (&c, &d));
    let (hits, misses) = scene.fast_reader().unwrap().cache_stats();
    assert!(misses > 0 && hits == misses, "hits {hits} misses {misses}");
    // A clone shares the reader: no resize then.
    let _clone = scene.clone();
    assert!(!scene.set_chunk_cache(0));
}

#[test]
fn the_chunk_cache_is_off_when_no_two_tiles_share_a_chunk_and_shared_otherwise() {
    let mut stack = slovenia_stack();
    // 64 px blocks: 128 px tiles without a halo never read a block twice.
    let grid = stack.tile_grid(128, 0).unwrap();
    assert_eq!(stack.set_chunk_cache_for(&grid, 64 << 20), 0);
    // A halo, or tiles that cut blocks, make neighbours share blocks: one budget, split.
    let grid = stack.tile_grid(128, 8).unwrap();
    assert_eq!(stack.set_chunk_cache_for(&grid, 64 << 20), (64 << 20) / 5);
    let grid = stack.tile_grid(96, 0).unwrap();
    assert_eq!(stack.set_chunk_cache_for(&grid, 64 << 20), (64 << 20) / 5);
}

#[test]
fn a_layer_read_on_its_own_equals_that_layer_of_the_tile_read_whole_nan_past_the_edge() {
    let stack = slovenia_stack();
    // 48 px tiles with an 8 px halo over a 100 x 101 grid: halos past every edge.
    let grid = stack.tile_grid(48, 8).unwrap();
    let mut reused = ndarray::Array3::<f32>::zeros((0, 0, 0));
    let same = |a: &ndarray::Array3<f32>, b: ndarray::ArrayView3<f32>| {
        a.iter()
            .zip(b.iter())
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    };
    let mut nan_seen = false;
    for tile in grid.tiles() {
        let whole = stack.read_tile(&tile).unwrap();
        for d in 0..stack.layers.len() {
            let layer = stack.read_layer(&tile, d).unwrap();
            assert_eq!(
                layer.dim(),
                whole.values.index_axis(ndarray::Axis(0), d).dim()
            );
            assert!(same(&layer, whole.values.index_axis(ndarray::Axis(0), d)));
            // A buffer that held another tile (or date) before gives the same values.
            stack.read_layer_into(&tile, d, &mut reused).unwrap();
            assert!(same(&reused, layer.view()), "tile {} date {d}", tile.index);
            nan_seen |= layer.iter().any(|v| v.is_nan());
        }
    }
    assert!(nan_seen, "halos past the edge read as NaN");
}

/// One worker, so that tiles run one after another in tile order.
fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

#[test]
fn a_cancelled_run_reads_no_tile_after_the_flag_is_set() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stack = slovenia_stack();
    let grid = stack.tile_grid(25, 0).unwrap();
    assert_eq!(grid.len(), 20);
    // Set before the run: nothing is read.
    let before = stack.window_reads();
    let cancel = AtomicBool::new(true);
    let err = one_thread()
        .install(|| {
            stack.try_par_map_tiles(
                &grid,
                |_| false,
                |d| Ok::<_, TilingError>(d.tile.index),
                None,
                Some(&cancel),
            )
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            TilingError::Cancelled {
                tiles_done: 0,
                tiles_total: 20
            }
        ),
        "{err:?}"
    );
    assert_eq!(stack.window_reads(), before);
    // Set by the progress callback after the first tile: that tile alone was read.
    cancel.store(false, Ordering::Release);
    let stop = |_: usize, _: usize| cancel.store(true, Ordering::Release);
    let err = one_thread()
        .install(|| {
            stack.try_par_map_tiles(
                &grid,
                |_| false,
                |d| Ok::<_, TilingError>(d.tile.index),
                Some(&stop),
                Some(&cancel),
            )
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            TilingError::Cancelled {
                tiles_done: 1,
                tiles_total: 20
            }
        ),
        "{err:?}"
    );
    assert_eq!(stack.window_reads() - before, 5, "one tile, five dates");
}

#[test]
fn a_tile_that_cannot_be_read_stops_the_run_with_an_error_naming_the_tile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s2l1c_20150711_13band.tif");
    std::fs::copy(
        fixture("eolearn-slovenia-s2/s2l1c_20150711_13band.tif"),
        &path,
    )
    .unwrap();
    let scene = Scene::open(&path).unwrap();
    let stack = SceneStack::build(vec![scene], &StackOptions::default()).unwrap();
    // The file loses its second half after it was opened.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let grid = stack.tile_grid(64, 2).unwrap();
    assert_eq!(grid.len(), 4);
    let err = one_thread()
        .install(|| stack.par_map_tiles(&grid, |_| false, |d| d.tile.index, None))
        .unwrap_err();
    let TilingError::Tile {
        index,
        col,
        row,
        window,
        source,
    } = &err
    else {
        panic!("expected a tile error, got {err:?}");
    };
    assert_eq!((*index, *col, *row), (0, 0, 0), "{err}");
    assert_eq!(*window, PixelWindow::new(-2, -2, 68, 68));
    match source.as_ref() {
        TilingError::Io { path: p, source } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), std::io::ErrorKind::UnexpectedEof);
        }
        other => panic!("expected a short read, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("tile 0 (column 0, row 0; cols -2..66 rows -2..66): "),
        "{err}"
    );
}
