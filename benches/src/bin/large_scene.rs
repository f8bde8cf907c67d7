//! End-to-end memory and throughput run of the tiling engine on a large generated scene.
//!
//! ```sh
//! cargo run --release -p gengdi-benches --bin large_scene -- generate --size 20000 --out target/bench-data/large_20000.tif
//! cargo run --release -p gengdi-benches --bin large_scene -- run target/bench-data/large_20000.tif --tile 512 --halo 16 [--keep 0.2] [--cache-mib 256]
//! ```
//!
//! `generate` writes a `size` × `size` 4-band (B02, B03, B04, B08) u16 BigTIFF, 512² tiles,
//! ZSTD, whose pixels are real Sentinel-2 pixels of the Slovenia scene laid out in a
//! scrambled mosaic with a little noise (so it compresses like imagery, not like a constant).
//! `run` reads every tile through `SceneStack::par_map_tiles` (with `--keep F`, only a
//! fraction F of the tiles, as a farmland mask would) computing each tile's mean NDVI, and
//! prints wall time, throughput and the process's peak RSS (VmHWM).

use anyhow::{bail, Context};
use gdal::raster::Buffer;
use gdal::DriverManager;
use gengdi_tiling::{PixelWindow, Scene, SceneStack, StackOptions};
use std::path::PathBuf;
use std::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> anyhow::Result<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{name} needs a value")),
        None => Ok(default),
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn generate(args: &[String]) -> anyhow::Result<()> {
    let size: usize = arg(args, "--size", 20_000)?;
    let out: PathBuf = arg(args, "--out", PathBuf::from("target/bench-data/large.tif"))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let src = Scene::open(gengdi_fixtures::fixture(
        "eolearn-slovenia-s2/s2l1c_20150711_13band.tif",
    ))?;
    let bands = [1usize, 2, 3, 7]; // B02, B03, B04, B08
    let pix = src.read_window::<u16>(&PixelWindow::full(src.width, src.height), &bands)?;
    let (sh, sw) = (src.height, src.width);
    let drv = DriverManager::get_driver_by_name("GTiff")?;
    let opts = gdal::raster::RasterCreationOptions::from_iter([
        "TILED=YES",
        "BLOCKXSIZE=512",
        "BLOCKYSIZE=512",
        "COMPRESS=ZSTD",
        "BIGTIFF=YES",
        "INTERLEAVE=PIXEL",
    ]);
    let mut ds = drv.create_with_band_type_with_options::<u16, _>(&out, size, size, 4, &opts)?;
    let (crs, gt) = src.georeference()?;
    ds.set_spatial_ref(&crs.to_spatial_ref()?)?;
    let g = gt.0;
    ds.set_geo_transform(&[g[0], 10.0, 0.0, g[3], 0.0, -10.0])?;
    for (i, name) in ["B02", "B03", "B04", "B08"].iter().enumerate() {
        use gdal::Metadata;
        ds.rasterband(i + 1)?.set_description(name)?;
    }
    let start = Instant::now();
    let rows_per_block = 512;
    for r0 in (0..size).step_by(rows_per_block) {
        let rows = rows_per_block.min(size - r0);
        for b in 0..4 {
            let mut data = vec![0u16; rows * size];
            for r in 0..rows {
                let gr = r0 + r;
                for c in 0..size {
                    // A scrambled mosaic of real pixels: patches of 64 px taken from shifted
                    // places of the source, plus a small deterministic noise.
                    let (pr, pc) = (gr / 64, c / 64);
                    let sr = (gr % 64 + pr * 37 + pc * 11) % sh;
                    let sc = (c % 64 + pc * 23 + pr * 7) % sw;
                    let h = (gr as u64)
                        .wrapping_mul(0x9E37_79B9)
                        .wrapping_add(c as u64 * 0x85EB_CA6B);
                    let noise = ((h >> 13) % 17) as i32 - 8;
                    data[r * size + c] = (pix[[b, sr, sc]] as i32 + noise).clamp(1, 65535) as u16;
                }
            }
            let mut buf = Buffer::new((size, rows), data);
            ds.rasterband(b + 1)?
                .write((0, r0 as isize), (size, rows), &mut buf)?;
        }
        eprint!("\rgenerated {}/{} rows", r0 + rows, size);
    }
    drop(ds);
    eprintln!();
    let bytes = std::fs::metadata(&out)?.len();
    println!(
        "wrote {} ({size} x {size} x 4 u16, {:.0} MiB on disk, {:.0} MiB decoded) in {:.1} s",
        out.display(),
        bytes as f64 / 1048576.0,
        (size * size * 8) as f64 / 1048576.0,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let Some(path) = args
        .iter()
        .find(|a| !a.starts_with("--") && a.ends_with(".tif"))
    else {
        bail!("usage: large_scene run FILE.tif [--tile 512] [--halo 16] [--keep 1.0] [--cache-mib 256]");
    };
    let tile: usize = arg(args, "--tile", 512)?;
    let halo: usize = arg(args, "--halo", 16)?;
    let keep: f64 = arg(args, "--keep", 1.0)?;
    let cache_mib: usize = arg(args, "--cache-mib", 256)?;
    let opts = gengdi_tiling::SceneOptions {
        chunk_cache_bytes: cache_mib << 20,
        ..Default::default()
    };
    let scene = Scene::open_with(path, &opts)?;
    let (w, h) = (scene.width, scene.height);
    let stack = SceneStack::build(vec![scene], &StackOptions::default())?;
    let grid = stack.tile_grid(tile, halo)?;
    let red = stack
        .band_names
        .iter()
        .position(|b| b == "B04")
        .context("no B04")?;
    let nir = stack
        .band_names
        .iter()
        .position(|b| b == "B08")
        .context("no B08")?;
    // A deterministic "farmland mask": keep tiles whose hashed index falls under `keep`.
    let skip = |t: &gengdi_tiling::Tile| {
        let hsh = (t.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        (hsh as f64 / (1u64 << 24) as f64) >= keep
    };
    let start = Instant::now();
    let results = stack.par_map_tiles(
        &grid,
        skip,
        |d| {
            let core = d.core();
            let (mut sum, mut n) = (0.0f64, 0u64);
            for (r, ni) in core
                .slice(ndarray::s![0, red, .., ..])
                .iter()
                .zip(core.slice(ndarray::s![0, nir, .., ..]).iter())
            {
                if r.is_finite() && ni.is_finite() && r + ni > 0.0 {
                    sum += ((ni - r) / (ni + r)) as f64;
                    n += 1;
                }
            }
            (sum, n)
        },
        None,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let pixels: u64 = results.iter().map(|(_, (_, n))| n).sum();
    let ndvi: f64 = results.iter().map(|(_, (s, _))| s).sum::<f64>() / pixels.max(1) as f64;
    let decoded_mib = (pixels * 8) as f64 / 1048576.0;
    println!(
        "{w} x {h}, tile {tile} halo {halo}, chunk cache {cache_mib} MiB: {} of {} tiles read, {pixels} pixels, mean NDVI {ndvi:.4}; {secs:.1} s, {:.1} Mpixel/s, {:.0} MiB/s decoded, {} threads, peak RSS {:.0} MiB",
        results.len(),
        grid.len(),
        pixels as f64 / secs / 1e6,
        decoded_mib / secs,
        rayon::current_num_threads(),
        peak_rss_mib()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generate") => generate(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => bail!("usage: large_scene generate|run …"),
    }
}
