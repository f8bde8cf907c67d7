//! `gengdi info SCENE [--json] [--stats]`

use super::scene_args::SceneArgs;
use clap::Args;
use gengdi_tiling::scene::ReaderKind;
use gengdi_tiling::stats::{band_stats, BandStats};
use gengdi_tiling::{ProductInfo, Scene};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The raster file, or a delivered product (Sentinel-2 .SAFE folder / .zip / MTD_MSIL*.xml, Landsat *_MTL.json).
    pub scene: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Compute per-band min, max, mean, sum and valid-pixel count (nodata excluded).
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub scene_args: SceneArgs,
}

#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    scene: &'a Scene,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<Vec<BandStats>>,
}

#[derive(Serialize)]
struct ProductReport<'a> {
    product: &'a ProductInfo,
    scenes: Vec<Report<'a>>,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let scenes = args.scene_args.open_all(&args.scene)?;
    let mut reports = Vec::with_capacity(scenes.len());
    for scene in &scenes {
        let stats = if args.stats {
            Some(band_stats(scene)?)
        } else {
            None
        };
        reports.push(Report { scene, stats });
    }
    let product = scenes.first().and_then(|s| s.product.as_deref());
    if args.json {
        match product {
            Some(product) => println!(
                "{}",
                serde_json::to_string_pretty(&ProductReport {
                    product,
                    scenes: reports
                })?
            ),
            None => {
                for r in &reports {
                    println!("{}", serde_json::to_string_pretty(r)?);
                }
            }
        }
        return Ok(());
    }
    if let Some(p) = product {
        println!("product:    {}", p.summary());
        println!("metadata:   {}", p.metadata_file.display());
        if !p.missing.is_empty() {
            println!("missing:    {}", p.missing.join(", "));
        }
        println!();
    }
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", render_text(r.scene, r.stats.as_deref()));
    }
    Ok(())
}

fn render_text(s: &Scene, stats: Option<&[BandStats]>) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "scene:      {}", s.path.display());
    let _ = writeln!(o, "driver:     {}", s.driver);
    let _ = writeln!(
        o,
        "size:       {} x {} pixels, {} bands, {}",
        s.width,
        s.height,
        s.bands.len(),
        s.dtype
    );
    match &s.reader {
        ReaderKind::Fast => {
            let _ = writeln!(o, "reader:     fast (pure Rust, parallel)");
        }
        ReaderKind::Gdal { reason } => {
            let _ = writeln!(o, "reader:     GDAL ({reason})");
        }
    }
    if let Some(st) = &s.structure {
        let _ = writeln!(
            o,
            "layout:     {} {}x{}, {} compression, predictor {}, {}{}{}, {} overviews",
            if st.tiled { "tiles" } else { "strips" },
            st.chunk_width,
            st.chunk_height,
            st.compression,
            st.predictor,
            if st.band_interleaved {
                "band-interleaved"
            } else {
                "pixel-interleaved"
            },
            if st.big_tiff { ", BigTIFF" } else { "" },
            if st.big_endian { ", big-endian" } else { "" },
            st.overviews
        );
    }
    match &s.crs {
        Some(c) => {
            let _ = writeln!(
                o,
                "crs:        {}{}",
                c.name,
                c.epsg
                    .map(|e| format!(" (EPSG:{e})"))
                    .unwrap_or_else(|| " (no EPSG code)".into())
            );
        }
        None => {
            let _ = writeln!(o, "crs:        none");
        }
    }
    match s.world_from_pixel {
        Some(gt) => {
            let g = gt.0;
            let (px, py) = gt.pixel_size();
            let _ = writeln!(o, "affine:     x = {} + col*{} + row*{}", g[0], g[1], g[2]);
            let _ = writeln!(o, "            y = {} + col*{} + row*{}", g[3], g[4], g[5]);
            let _ = writeln!(
                o,
                "pixel:      {px} x {py}{}, {:?}{}",
                if gt.is_north_up() { "" } else { " (rotated)" },
                s.raster_type,
                s.georeferencing
                    .map(|m| format!(", from {m:?}"))
                    .unwrap_or_default()
            );
            let b = gt.bounds(s.width, s.height);
            let _ = writeln!(
                o,
                "bounds:     x {} .. {}, y {} .. {}",
                b[0], b[2], b[1], b[3]
            );
        }
        None => {
            let _ = writeln!(o, "affine:     none (no georeferencing)");
        }
    }
    let _ = writeln!(
        o,
        "date:       {}",
        match (s.date, s.date_source) {
            (Some(d), Some(src)) => format!("{d} (from {src:?})").to_lowercase(),
            _ => "unknown".into(),
        }
    );
    if let Some(sensor) = s.sensor {
        let _ = writeln!(o, "sensor:     {sensor}");
    }
    let _ = writeln!(o, "bands:");
    for b in &s.bands {
        let _ = writeln!(
            o,
            "  {:>3} {:<8} {:<10} nodata {}",
            b.index,
            b.name,
            b.common_name
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            b.nodata
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none".into())
        );
    }
    // What was assumed about the values: one line when every band shares it.
    let radiometry: Vec<String> = s.bands.iter().map(|b| b.radiometry.to_string()).collect();
    if radiometry.iter().all(|r| *r == radiometry[0]) {
        let _ = writeln!(o, "values:     {}", radiometry[0]);
    } else {
        let _ = writeln!(o, "values:");
        for (b, r) in s.bands.iter().zip(&radiometry) {
            let _ = writeln!(o, "  {:>3} {:<8} {r}", b.index, b.name);
        }
    }
    if let Some(stats) = stats {
        let _ = writeln!(o, "statistics (nodata excluded):");
        let _ = writeln!(
            o,
            "  {:>3} {:<8} {:>14} {:>14} {:>16} {:>20} {:>12}",
            "#", "band", "min", "max", "mean", "sum", "valid"
        );
        let f = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_else(|| "-".into());
        for st in stats {
            let _ = writeln!(
                o,
                "  {:>3} {:<8} {:>14} {:>14} {:>16.4} {:>20} {:>12}",
                st.band,
                st.name,
                f(st.min),
                f(st.max),
                st.mean.unwrap_or(f64::NAN),
                st.sum,
                st.valid_count
            );
        }
    }
    o
}
