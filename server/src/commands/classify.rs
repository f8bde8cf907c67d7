//! `gengdi classify SCENE... --out MAP.tif [--model ID]`: a land-cover map of each date.

use super::scene_args::SceneArgs;
use crate::util::{expand_scene_paths, progress_bar};
use anyhow::Context;
use clap::Args;
use gengdi_models::{DeviceChoice, InferencePath, LandCoverModel, Task};
use gengdi_tiling::cog::{CogBand, CogSpec, CogWriter};
use gengdi_tiling::scene::DEFAULT_CHUNK_CACHE_BYTES;
use gengdi_tiling::{DataType, PixelWindow, SceneStack, StackOptions, Tile};
use ndarray::{s, Array2, Array3};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Scene files or directories (one or more dates).
    #[arg(required = true)]
    pub scenes: Vec<PathBuf>,
    /// Output COG. With several dates, one file per date: MAP_YYYYMMDD.tif.
    #[arg(long)]
    pub out: PathBuf,
    /// Model id in the registry (default: the active land-cover model).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_name = "DIR", help = crate::registry::REGISTRY_HELP)]
    pub registry: Option<PathBuf>,
    /// Burn device: ndarray or flex (used with --burn).
    #[arg(long, default_value = "ndarray")]
    pub device: DeviceChoice,
    /// Run Burn's forward on --device instead of the fused pixel kernel (the reference:
    /// same network and weights, same class codes, slower).
    #[arg(long)]
    pub burn: bool,
    /// Tile side in pixels.
    #[arg(long, default_value_t = 512)]
    pub tile: usize,
    #[command(flatten)]
    pub scene_args: SceneArgs,
}

/// Output path of date `i` of `n`.
fn out_path(base: &Path, n: usize, date: Option<chrono::NaiveDate>, i: usize) -> PathBuf {
    if n == 1 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("landcover");
    let tag = date
        .map(|d| d.format("%Y%m%d").to_string())
        .unwrap_or_else(|| format!("layer{i}"));
    base.with_file_name(format!("{stem}_{tag}.tif"))
}

/// Thread-seconds spent in each phase of the tiled run, summed over the workers.
#[derive(Default)]
struct PhaseTimes {
    read: AtomicU64,
    classify: AtomicU64,
    write: AtomicU64,
    cog: AtomicU64,
}

impl PhaseTimes {
    fn add(counter: &AtomicU64, d: Duration) {
        counter.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
    fn secs(counter: &AtomicU64) -> f64 {
        counter.load(Ordering::Relaxed) as f64 / 1e9
    }
}

pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    let registry = crate::registry::locate(args.registry.as_deref())?.for_reading()?;
    let dir = match &args.model {
        Some(id) => registry.model_dir(id)?,
        None => registry.active_dir(Task::LandCover)?,
    };
    let path = if args.burn {
        InferencePath::Burn
    } else {
        InferencePath::Kernel
    };
    let model = LandCoverModel::load(&dir, &args.device.device())
        .with_context(|| format!("cannot load the land-cover model in {}", dir.display()))?
        .with_path(path);
    let engine = match path {
        InferencePath::Burn => format!("burn {}", args.device),
        InferencePath::Kernel => format!("kernel {}", model.kernel().isa()),
    };
    let card = model.card().clone();
    let paths = expand_scene_paths(&args.scenes)?;
    let mut scenes = Vec::new();
    for p in &paths {
        scenes.extend(args.scene_args.open_all(p)?);
    }
    let mut stack = SceneStack::build(
        scenes,
        &StackOptions {
            bands: Some(card.input.bands.clone()),
            ..Default::default()
        },
    )
    .context("the scenes do not supply the model's bands on one grid")?;
    stack.check_radiometry()?;
    let grid = stack.tile_grid(args.tile, 0)?;
    // One budget for the whole stack, and none at all when tiles never share a chunk.
    stack.set_chunk_cache_for(&grid, DEFAULT_CHUNK_CACHE_BYTES);
    let names: Vec<String> = std::iter::once("nodata".to_string())
        .chain(card.class_names().iter().map(|s| s.to_string()))
        .collect();
    let n = stack.layers.len();
    let mut writers = Vec::with_capacity(n);
    let mut outputs = Vec::with_capacity(n);
    for (i, layer) in stack.layers.iter().enumerate() {
        let path = out_path(&args.out, n, layer.date, i);
        let spec = CogSpec {
            width: stack.grid.width,
            height: stack.grid.height,
            crs: stack.grid.crs.clone(),
            world_from_pixel: stack.grid.world_from_pixel,
            bands: vec![
                CogBand::categorical(format!("land cover ({})", card.id), names.clone()),
                CogBand::continuous("confidence (percent)"),
            ],
            dtype: DataType::U8,
            nodata: Some(0.0),
        };
        writers.push(CogWriter::create(&path, spec)?);
        outputs.push(path);
    }
    let band_names: Vec<&str> = stack.band_names.iter().map(String::as_str).collect();
    let tiles: Vec<Tile> = grid.tiles().collect();
    // One task per date and tile, date by date: a task holds one date of one tile, the dates
    // of a small scene still keep every core busy, and a date's COG is finished (overviews,
    // compressed copy) by the worker that wrote its last tile while the others go on with
    // the next dates.
    let units = tiles.len() * n;
    let left: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(tiles.len())).collect();
    let writers: Vec<Mutex<Option<CogWriter>>> =
        writers.into_iter().map(|w| Mutex::new(Some(w))).collect();
    let bar = progress_bar(units as u64, "classifying");
    let times = PhaseTimes::default();
    let start = Instant::now();
    let counts: Vec<[u64; 8]> = (0..units)
        .into_par_iter()
        .map_init(
            // A worker's tile buffer, reused from task to task.
            || Array3::<f32>::zeros((0, 0, 0)),
            |dn, u| -> anyhow::Result<[u64; 8]> {
                let (d, tile) = (u / tiles.len(), &tiles[u % tiles.len()]);
                let t0 = Instant::now();
                stack.read_layer_into(tile, d, dn)?;
                let t1 = Instant::now();
                PhaseTimes::add(&times.read, t1 - t0);
                let c = tile.core_in_tile();
                let (r0, c0) = (c.row_off as usize, c.col_off as usize);
                let core = dn.slice(s![.., r0..r0 + c.rows, c0..c0 + c.cols]);
                // Pixels with a non-finite value in any band are nodata (the model skips them).
                let valid = Array2::from_elem((c.rows, c.cols), true);
                let map = model.classify_image(&band_names, core, valid.view())?;
                let conf = map.confidence.mapv(|c| {
                    if c > 0.0 {
                        (c * 100.0).round().clamp(1.0, 100.0) as u8
                    } else {
                        0
                    }
                });
                let mut counts = [0u64; 8];
                for c in map.codes.iter() {
                    counts[(*c as usize).min(7)] += 1;
                }
                let t2 = Instant::now();
                PhaseTimes::add(&times.classify, t2 - t1);
                let w = tile.core;
                let win = PixelWindow::new(w.col_off, w.row_off, w.cols, w.rows);
                {
                    let mut guard = writers[d]
                        .lock()
                        .map_err(|_| anyhow::anyhow!("a writer thread failed"))?;
                    let Some(wr) = guard.as_mut() else {
                        anyhow::bail!("internal: date {d} was finished before all its tiles");
                    };
                    wr.write_window::<u8>(0, &win, map.codes.view())?;
                    wr.write_window::<u8>(1, &win, conf.view())?;
                }
                let t3 = Instant::now();
                PhaseTimes::add(&times.write, t3 - t2);
                if left[d].fetch_sub(1, Ordering::AcqRel) == 1 {
                    let writer = writers[d]
                        .lock()
                        .map_err(|_| anyhow::anyhow!("a writer thread failed"))?
                        .take();
                    if let Some(w) = writer {
                        w.finish()?;
                    }
                    PhaseTimes::add(&times.cog, t3.elapsed());
                }
                bar.inc(1);
                Ok(counts)
            },
        )
        .collect::<anyhow::Result<_>>()?;
    bar.finish_and_clear();
    let mut totals = [0u64; 8];
    for r in counts {
        for (t, c) in totals.iter_mut().zip(r) {
            *t += c;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let px = (stack.grid.width * stack.grid.height * n) as f64;
    println!(
        "model {} ({engine}), {} date(s), {} x {} pixels, {:.2} s, {:.2} Mpixel/s",
        card.id,
        n,
        stack.grid.width,
        stack.grid.height,
        secs,
        px / secs / 1e6
    );
    println!(
        "  phases (thread-seconds over {} workers): read {:.2}, classify {:.2}, write tiles {:.2}, COG overviews + copy {:.2}",
        rayon::current_num_threads(),
        PhaseTimes::secs(&times.read),
        PhaseTimes::secs(&times.classify),
        PhaseTimes::secs(&times.write),
        PhaseTimes::secs(&times.cog),
    );
    let total: u64 = totals.iter().sum();
    for (code, name) in names.iter().enumerate() {
        println!(
            "  {code} {name:<12} {:>12} px  {:>6.2} %",
            totals[code],
            100.0 * totals[code] as f64 / total.max(1) as f64
        );
    }
    for p in outputs {
        println!("wrote {}", p.display());
    }
    Ok(())
}
