//! Scenes GDAL reads block by block (JPEG 2000) go through one decoded-block cache: every
//! window equals GDAL's own read of it, and each block is decoded once however many tiles
//! and threads want it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::raster::Buffer;
use gdal::DriverManager;
use gengdi_fixtures::fixture;
use gengdi_tiling::stack::Placement;
use gengdi_tiling::{PixelWindow, Scene, SceneOptions, SceneStack, StackOptions};
use std::path::{Path, PathBuf};

const BEN: &str = "bigearthnet-tiny-s2/s2/S2B_MSIL2A_20180421T114349_47_56";

/// `data` (`w` × `h`, u16) on the grid of `like` as lossless JPEG 2000 in `block`² tiles at
/// `dest`, with GeoJP2 georeferencing.
fn write_jp2(data: Vec<u16>, w: usize, h: usize, like: &gdal::Dataset, block: usize, dest: &Path) {
    let mem = DriverManager::get_driver_by_name("MEM").unwrap();
    let mut ds = mem.create_with_band_type::<u16, _>("", w, h, 1).unwrap();
    ds.set_geo_transform(&like.geo_transform().unwrap())
        .unwrap();
    ds.set_spatial_ref(&like.spatial_ref().unwrap()).unwrap();
    let mut buf = Buffer::new((w, h), data);
    ds.rasterband(1)
        .unwrap()
        .write((0, 0), (w, h), &mut buf)
        .unwrap();
    let drv = DriverManager::get_driver_by_name("JP2OpenJPEG").unwrap();
    let bx = format!("BLOCKXSIZE={block}");
    let by = format!("BLOCKYSIZE={block}");
    let opts = gdal::raster::RasterCreationOptions::from_iter([
        "REVERSIBLE=YES",
        "QUALITY=100",
        bx.as_str(),
        by.as_str(),
    ]);
    ds.create_copy(&drv, dest, &opts).unwrap().close().unwrap();
}

/// A BigEarthNet band (120² at 10 m, 60² at 20 m) as lossless JPEG 2000 in `block`² tiles,
/// with GeoJP2 georeferencing.
fn jp2(dir: &Path, band: &str, block: usize) -> PathBuf {
    let src = gdal::Dataset::open(fixture(&format!(
        "{BEN}/S2B_MSIL2A_20180421T114349_47_56_{band}.tif"
    )))
    .unwrap();
    let (w, h) = src.raster_size();
    let data: Vec<u16> = src
        .rasterband(1)
        .unwrap()
        .read_as::<u16>((0, 0), (w, h), (w, h), None)
        .unwrap()
        .data()
        .to_vec();
    let dest = dir.join(format!("T29SND_20180421T114349_{band}.jp2"));
    write_jp2(data, w, h, &src, block, &dest);
    dest
}

#[test]
fn every_window_read_through_the_block_cache_equals_gdals_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = jp2(dir.path(), "B02", 64);
    let scene = Scene::open(&path).unwrap();
    assert_eq!(scene.gdal_block_size(), Some((64, 64)));
    // Inside one block, across two and four, along the partial edge blocks, the whole.
    let windows = [
        (0, 0, 64, 64),
        (3, 5, 20, 17),
        (50, 10, 30, 20),
        (60, 60, 10, 10),
        (100, 0, 20, 120),
        (0, 119, 120, 1),
        (0, 0, 120, 120),
    ];
    for (c, r, w, h) in windows {
        let win = PixelWindow::new(c, r, w, h);
        let cached = scene.read_window::<f32>(&win, &[0]).unwrap();
        let gdal = scene.read_window_gdal::<f32>(&win, &[0]).unwrap();
        assert_eq!(cached, gdal, "window {win}");
        let cached = scene.read_window::<u16>(&win, &[0]).unwrap();
        let gdal = scene.read_window_gdal::<u16>(&win, &[0]).unwrap();
        assert_eq!(cached, gdal, "window {win} as u16");
    }
    // Out of the raster and unknown bands are the same errors as GDAL's path gives.
    let err = scene
        .read_window::<f32>(&PixelWindow::new(100, 100, 30, 30), &[0])
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside") || err.contains("out of"), "{err}");
    assert!(scene
        .read_window::<f32>(&PixelWindow::new(0, 0, 8, 8), &[1])
        .is_err());
}

#[test]
fn tiles_read_by_several_workers_decode_each_block_once() {
    let dir = tempfile::tempdir().unwrap();
    let b02 = jp2(dir.path(), "B02", 64);
    let b05 = jp2(dir.path(), "B05", 32);
    let open = || {
        vec![
            Scene::open_with(&b02, &SceneOptions::default()).unwrap(),
            Scene::open_with(&b05, &SceneOptions::default()).unwrap(),
        ]
    };
    let mut scenes = open();
    let cache = Scene::share_block_cache(&mut scenes, 64 << 20).unwrap();
    let stack = SceneStack::build(scenes, &StackOptions::default()).unwrap();
    assert_eq!(stack.band_names, ["B02", "B05"]);
    assert!(matches!(
        stack.scenes[1].placement,
        Placement::Scaled { scaled, .. } if scaled.factor == 2
    ));
    // Blocks of 64 at 10 m and of 32 at 20 m are both 64 grid rows: strips of four 16 px
    // tiles, read down their columns.
    let grid = stack.tile_grid(16, 0).unwrap();
    let order: Vec<(usize, usize)> = stack
        .tile_order(&grid)
        .iter()
        .map(|t| (t.col, t.row))
        .collect();
    assert_eq!(
        &order[..6],
        &[(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]
    );
    assert_eq!(order[8 * 4], (0, 4));
    assert_eq!(order.len(), 64);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let sums = pool
        .install(|| {
            stack.par_map_tiles(
                &grid,
                |_| false,
                |d| d.values.iter().map(|v| *v as f64).sum::<f64>(),
                None,
            )
        })
        .unwrap();
    assert_eq!(sums.len(), 64);
    assert!(sums.windows(2).all(|w| w[0].0.index < w[1].0.index));
    // B02: 2 x 2 blocks of 64 over 120²; B05: 2 x 2 blocks of 32 over 60².
    assert_eq!(cache.blocks_decoded(), 8);
    assert_eq!(cache.distinct_blocks(), 8);

    // The same values through GDAL's own reads, tile by tile.
    let plain: Vec<Scene> = [&b02, &b05]
        .iter()
        .map(|p| {
            Scene::open_with(
                p,
                &SceneOptions {
                    force_gdal: true,
                    ..Default::default()
                },
            )
            .unwrap()
        })
        .collect();
    assert!(plain.iter().all(|s| s.gdal_block_size().is_none()));
    let reference = SceneStack::build(plain, &StackOptions::default()).unwrap();
    let want = reference
        .par_map_tiles(
            &grid,
            |_| false,
            |d| d.values.iter().map(|v| *v as f64).sum::<f64>(),
            None,
        )
        .unwrap();
    for ((t, a), (_, b)) in sums.iter().zip(&want) {
        assert_eq!(a, b, "tile {}", t.index);
    }
}

#[test]
fn without_a_cache_budget_blocks_are_decoded_again_for_each_window() {
    let dir = tempfile::tempdir().unwrap();
    let b02 = jp2(dir.path(), "B02", 64);
    let mut scenes = vec![Scene::open(&b02).unwrap()];
    let cache = Scene::share_block_cache(&mut scenes, 0).unwrap();
    let win = PixelWindow::new(0, 0, 10, 10);
    scenes[0].read_window::<f32>(&win, &[0]).unwrap();
    scenes[0].read_window::<f32>(&win, &[0]).unwrap();
    assert_eq!(cache.blocks_decoded(), 2);
}

/// Nine BigEarthNet patches side by side (3 × 3: 360² px at 10 m, 180² at 20 m, on the
/// first patch's grid whatever the order), band `band` as lossless JPEG 2000 in `block`² tiles, dated `date`
/// by its name. `shift` rotates which patch goes where, so two dates differ.
fn jp2_mosaic(dir: &Path, band: &str, block: usize, date: &str, shift: usize) -> PathBuf {
    let mut patches: Vec<PathBuf> = std::fs::read_dir(fixture("bigearthnet-tiny-s2/s2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    patches.sort();
    let open = |p: &PathBuf| {
        let name = p.file_name().unwrap().to_str().unwrap();
        gdal::Dataset::open(p.join(format!("{name}_{band}.tif"))).unwrap()
    };
    let first = open(&patches[0]);
    patches.rotate_left(shift);
    let (n, _) = first.raster_size();
    let side = 3 * n;
    let mut data = vec![0u16; side * side];
    for (k, p) in patches.iter().take(9).enumerate() {
        let ds = open(p);
        let v: Vec<u16> = ds
            .rasterband(1)
            .unwrap()
            .read_as::<u16>((0, 0), (n, n), (n, n), None)
            .unwrap()
            .data()
            .to_vec();
        let (r0, c0) = ((k / 3) * n, (k % 3) * n);
        for r in 0..n {
            let at = (r0 + r) * side + c0;
            data[at..at + n].copy_from_slice(&v[r * n..(r + 1) * n]);
        }
    }
    let dest = dir.join(format!("T29SND_{date}T114349_{band}.jp2"));
    write_jp2(data, side, side, &first, block, &dest);
    dest
}

/// Two dates of B02 and B04 (10 m) and B05 and B11 (20 m) as mosaics of real pixels, in
/// 32² blocks: a 20 m block is 64 grid rows, twice a 10 m block, four 16 px tiles — the
/// proportions of a Sentinel-2 product's 1024² blocks under 512 px tiles (and, like a full
/// tile, 12 blocks across at 10 m and 6 at 20 m).
fn season_of_mosaics(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (date, shift) in [("20180421", 0), ("20180511", 2)] {
        for band in ["B02", "B04", "B05", "B11"] {
            files.push(jp2_mosaic(dir, band, 32, date, shift));
        }
    }
    files
}

fn tile_values(stack: &SceneStack, grid: &gengdi_tiling::TileGrid) -> Vec<Vec<f32>> {
    stack
        .par_map_tiles(
            grid,
            |_| false,
            |d| d.values.iter().copied().collect::<Vec<f32>>(),
            None,
        )
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn a_season_read_in_tiles_decodes_every_block_exactly_once_with_little_cache() {
    let dir = tempfile::tempdir().unwrap();
    let files = season_of_mosaics(dir.path());
    let stack_with_cache = |bytes: usize| {
        let mut scenes: Vec<Scene> = files.iter().map(|f| Scene::open(f).unwrap()).collect();
        let cache = Scene::share_block_cache(&mut scenes, bytes).unwrap();
        (
            SceneStack::build(scenes, &StackOptions::default()).unwrap(),
            cache,
        )
    };
    let (stack, cache) = stack_with_cache(1 << 20);
    assert_eq!(stack.layers.len(), 2);
    assert_eq!(stack.band_names, ["B02", "B04", "B05", "B11"]);
    assert_eq!((stack.grid.width, stack.grid.height), (360, 360));
    let grid = stack.tile_grid(16, 0).unwrap();

    // Strips of four tiles (one 20 m block) down their columns, starting halfway down the
    // first 20 m block row: two tile rows, then four.
    let order: Vec<(usize, usize)> = stack
        .tile_order(&grid)
        .iter()
        .map(|t| (t.col, t.row))
        .collect();
    let across = grid.tiles_across();
    assert_eq!(&order[..3], &[(0, 0), (0, 1), (1, 0)]);
    assert_eq!(
        &order[2 * across..2 * across + 5],
        &[(0, 2), (0, 3), (0, 4), (0, 5), (1, 2)]
    );
    assert_eq!(order.len(), grid.len());

    // 4 files of 12 x 12 blocks at 10 m, 4 of 6 x 6 at 20 m.
    let distinct = 4 * 144 + 4 * 36;
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let values = pool(4).install(|| tile_values(&stack, &grid));
    assert_eq!(cache.distinct_blocks(), distinct);
    assert_eq!(cache.blocks_decoded(), distinct);

    // One worker and a cache of 56 KiB: a block of 32² u16 is 2 KiB, the season 1.4 MiB,
    // one strip's 20 m blocks alone 48 KiB. Each block is still decoded once: it leaves
    // the cache after its last read, and a 20 m block's upper rows as soon as the tiles
    // left to read need only its lower ones.
    let (small, cache) = stack_with_cache(56 << 10);
    let again = pool(1).install(|| tile_values(&small, &grid));
    assert_eq!(cache.blocks_decoded(), distinct);
    assert_eq!(cache.distinct_blocks(), distinct);
    assert!(cache.peak_bytes() <= 56 << 10, "{}", cache.peak_bytes());
    assert_eq!(values, again);

    // The same values as GDAL's own reads of the files, tile by tile.
    let plain: Vec<Scene> = files
        .iter()
        .map(|p| {
            Scene::open_with(
                p,
                &SceneOptions {
                    force_gdal: true,
                    ..Default::default()
                },
            )
            .unwrap()
        })
        .collect();
    let reference = SceneStack::build(plain, &StackOptions::default()).unwrap();
    let want = tile_values(&reference, &grid);
    assert_eq!(values.len(), want.len());
    for (i, (a, b)) in values.iter().zip(&want).enumerate() {
        let same = a
            .iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
        assert!(same, "tile {i}");
    }
}
