//! `gengdi classify SCENE... --out MAP.tif [--model ID]`: a land-cover map of each date.

use super::scene_args::SceneArgs;
use crate::util::{expand_scene_paths, progress_bar};
use anyhow::Context;
use clap::Args;
use gengdi_models::{DeviceChoice, LandCoverModel, Task};
use gengdi_tiling::cog::{CogBand, CogSpec, CogWriter};
use gengdi_tiling::{DataType, PixelWindow, SceneStack, StackOptions};
use ndarray::{Array2, Axis};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

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
    /// Burn device: ndarray or flex.
    #[arg(long, default_value = "ndarray")]
    pub device: DeviceChoice,
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

pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    let registry = crate::registry::locate(args.registry.as_deref())?.for_reading()?;
    let dir = match &args.model {
        Some(id) => registry.model_dir(id)?,
        None => registry.active_dir(Task::LandCover)?,
    };
    let model = LandCoverModel::load(&dir, &args.device.device())
        .with_context(|| format!("cannot load the land-cover model in {}", dir.display()))?;
    let card = model.card().clone();
    let paths = expand_scene_paths(&args.scenes)?;
    let mut scenes = Vec::new();
    for p in &paths {
        scenes.extend(args.scene_args.open_all(p)?);
    }
    let stack = SceneStack::build(
        scenes,
        &StackOptions {
            bands: Some(card.input.bands.clone()),
            ..Default::default()
        },
    )
    .context("the scenes do not supply the model's bands on one grid")?;
    stack.check_radiometry()?;
    let grid = stack.tile_grid(args.tile, 0)?;
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
        writers.push(Mutex::new(CogWriter::create(&path, spec)?));
        outputs.push(path);
    }
    let band_names: Vec<&str> = stack.band_names.iter().map(String::as_str).collect();
    let bar = progress_bar(grid.len() as u64, "classifying");
    let tick = |_: usize, _: usize| bar.inc(1);
    let start = Instant::now();
    let results = stack.par_map_tiles(
        &grid,
        |_| false,
        |data| -> anyhow::Result<[u64; 8]> {
            let mut counts = [0u64; 8];
            let core = data.core();
            let w = data.tile.core;
            for (d, writer) in writers.iter().enumerate() {
                let dn = core.index_axis(Axis(0), d);
                let valid: Array2<bool> =
                    dn.map_axis(Axis(0), |px| px.iter().all(|v| v.is_finite()));
                let map = model.classify_image(&band_names, dn, valid.view())?;
                let conf = map.confidence.mapv(|c| {
                    if c > 0.0 {
                        (c * 100.0).round().clamp(1.0, 100.0) as u8
                    } else {
                        0
                    }
                });
                for c in map.codes.iter() {
                    counts[(*c as usize).min(7)] += 1;
                }
                let win = PixelWindow::new(w.col_off, w.row_off, w.cols, w.rows);
                let mut wr = writer
                    .lock()
                    .map_err(|_| anyhow::anyhow!("a writer thread failed"))?;
                wr.write_window::<u8>(0, &win, map.codes.view())?;
                wr.write_window::<u8>(1, &win, conf.view())?;
            }
            Ok(counts)
        },
        Some(&tick),
    )?;
    bar.finish_and_clear();
    let mut totals = [0u64; 8];
    for (_, r) in results {
        for (t, c) in totals.iter_mut().zip(r?) {
            *t += c;
        }
    }
    for w in writers {
        w.into_inner()
            .map_err(|_| anyhow::anyhow!("a writer thread failed"))?
            .finish()?;
    }
    let secs = start.elapsed().as_secs_f64();
    let px = (stack.grid.width * stack.grid.height * n) as f64;
    println!(
        "model {} ({}), {} date(s), {} x {} pixels, {:.2} s, {:.2} Mpixel/s",
        card.id,
        args.device,
        n,
        stack.grid.width,
        stack.grid.height,
        secs,
        px / secs / 1e6
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
