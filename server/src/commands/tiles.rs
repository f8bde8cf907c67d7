//! `gengdi tiles SCENE... --tile 512 --halo 16 [--json]`

use super::scene_args::SceneArgs;
use crate::util::{expand_scene_paths, mib, peak_rss_bytes, progress_bar};
use clap::Args;
use gengdi_tiling::stack::Placement;
use gengdi_tiling::{Resampling, SceneStack, StackOptions, TileGrid};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct TilesArgs {
    /// Scene files or directories of them (several dates, possibly several resolutions and CRSs).
    #[arg(required = true)]
    pub scenes: Vec<PathBuf>,
    /// Tile side in pixels.
    #[arg(long, default_value_t = 512)]
    pub tile: usize,
    /// Halo (overlap) around each tile in pixels.
    #[arg(long, default_value_t = 16)]
    pub halo: usize,
    /// Bands every date must supply, by name or common name (default: the first date's bands).
    #[arg(long, value_delimiter = ',')]
    pub bands: Option<Vec<String>>,
    /// Resampling of continuous bands when a scene is warped onto the grid.
    #[arg(long, value_enum, default_value = "bilinear")]
    pub resampling: ResamplingArg,
    /// Only describe the layout; do not read the tiles.
    #[arg(long)]
    pub no_read: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub scene_args: SceneArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ResamplingArg {
    Nearest,
    Bilinear,
    Cubic,
    Average,
}

impl From<ResamplingArg> for Resampling {
    fn from(r: ResamplingArg) -> Self {
        match r {
            ResamplingArg::Nearest => Resampling::Nearest,
            ResamplingArg::Bilinear => Resampling::Bilinear,
            ResamplingArg::Cubic => Resampling::Cubic,
            ResamplingArg::Average => Resampling::Average,
        }
    }
}

#[derive(Serialize)]
struct ReadTiming {
    tiles: usize,
    valid_pixels: u64,
    decoded_mib: f64,
    seconds: f64,
    mib_per_second: f64,
    threads: usize,
    peak_rss_mib: Option<f64>,
}

#[derive(Serialize)]
struct Report<'a> {
    stack: &'a SceneStack,
    tiles: TileGrid,
    tile_count: usize,
    tiles_across: usize,
    tiles_down: usize,
    tile_array_mib: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    read: Option<ReadTiming>,
}

pub fn run(args: TilesArgs) -> anyhow::Result<()> {
    let paths = expand_scene_paths(&args.scenes)?;
    let mut scenes = Vec::new();
    for p in &paths {
        scenes.extend(args.scene_args.open_all(p)?);
    }
    let opts = StackOptions {
        bands: args.bands.clone(),
        continuous: args.resampling.into(),
        ..StackOptions::default()
    };
    let stack = SceneStack::build(scenes, &opts)?;
    let grid = stack.tile_grid(args.tile, args.halo)?;
    let read = if args.no_read {
        None
    } else {
        Some(read_all(&stack, &grid, args.json)?)
    };
    let report = Report {
        tiles: grid,
        tile_count: grid.len(),
        tiles_across: grid.tiles_across(),
        tiles_down: grid.tiles_down(),
        tile_array_mib: mib(stack.tile_bytes(&grid) as f64),
        read,
        stack: &stack,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn read_all(stack: &SceneStack, grid: &TileGrid, quiet: bool) -> anyhow::Result<ReadTiming> {
    let bar = progress_bar(grid.len() as u64, "reading");
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let start = Instant::now();
    let tick = |_: usize, _: usize| bar.inc(1);
    let counts = stack.par_map_tiles(
        grid,
        |_| false,
        |data| data.core().iter().filter(|v| !v.is_nan()).count() as u64,
        Some(&tick),
    )?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let valid: u64 = counts.iter().map(|(_, n)| n).sum();
    let decoded =
        (stack.grid.width * stack.grid.height * stack.layers.len() * stack.band_names.len() * 4)
            as f64;
    Ok(ReadTiming {
        tiles: counts.len(),
        valid_pixels: valid,
        decoded_mib: mib(decoded),
        seconds,
        mib_per_second: mib(decoded) / seconds.max(1e-9),
        threads: rayon::current_num_threads(),
        peak_rss_mib: peak_rss_bytes().map(|b| mib(b as f64)),
    })
}

fn print_text(r: &Report<'_>) {
    let g = &r.stack.grid;
    let (px, py) = g.world_from_pixel.pixel_size();
    let b = g.bounds();
    println!("analysis grid:");
    println!(
        "  crs        {}{}",
        g.crs.name,
        g.crs
            .epsg
            .map(|e| format!(" (EPSG:{e})"))
            .unwrap_or_default()
    );
    println!(
        "  size       {} x {} pixels of {px} x {py}",
        g.width, g.height
    );
    println!(
        "  bounds     x {} .. {}, y {} .. {}",
        b[0], b[2], b[1], b[3]
    );
    println!("  bands      {}", r.stack.band_names.join(", "));
    println!("layers ({}):", r.stack.layers.len());
    for l in &r.stack.layers {
        let mut files: Vec<String> = Vec::new();
        for band in &l.bands {
            let s = &r.stack.scenes[band.scene];
            let how = match &s.placement {
                Placement::Direct => "direct".to_string(),
                Placement::Scaled {
                    scaled, resampling, ..
                } => format!("scaled ×{}, {resampling:?}", scaled.factor).to_lowercase(),
                Placement::Warped { resampling, .. } => {
                    format!("warped, {resampling:?}").to_lowercase()
                }
            };
            let name = format!(
                "{} ({how})",
                s.scene
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            );
            if !files.contains(&name) {
                files.push(name);
            }
        }
        println!(
            "  {}  {}",
            l.date
                .map(|d| d.to_string())
                .unwrap_or_else(|| "(no date)".into()),
            files.join(", ")
        );
    }
    println!("tiles:");
    println!(
        "  {} tiles ({} across x {} down) of {} px with a {} px halo; {:.1} MiB per tile array",
        r.tile_count,
        r.tiles_across,
        r.tiles_down,
        r.tiles.tile_size,
        r.tiles.halo,
        r.tile_array_mib
    );
    if let Some(t) = &r.read {
        println!("read:");
        println!(
            "  {} tiles, {} valid values, {:.1} MiB as f32 in {:.3} s = {:.1} MiB/s on {} threads, peak RSS {}",
            t.tiles,
            t.valid_pixels,
            t.decoded_mib,
            t.seconds,
            t.mib_per_second,
            t.threads,
            t.peak_rss_mib.map(|m| format!("{m:.0} MiB")).unwrap_or_else(|| "unknown".into())
        );
    }
}
