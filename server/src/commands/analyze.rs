//! `gengdi analyze`: the season analysis the monitoring centre runs.

use super::scene_args::SceneArgs;
use crate::util::{expand_scene_paths, progress_bar};
use anyhow::Context;
use clap::Args;
use gengdi_inference::analysis::{analyze, AnalysisInput, AnalysisResult, EqualArea};
use gengdi_inference::models_adapter::{CropTypeAdapter, LandCoverAdapter};
use gengdi_inference::output::write_patches;
use gengdi_inference::rules::RulesConfig;
use gengdi_inference::{FarmlandLayer, FieldMapping};
use gengdi_models::{CropTypeModel, DeviceChoice, LandCoverModel, Registry, Task};
use gengdi_tiling::{SceneStack, StackOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Scene files or directories: several dates of one season (any CRS; aligned by the tiling engine).
    #[arg(long, required = true, num_args = 1..)]
    pub scenes: Vec<PathBuf>,
    /// The farmland layer (GeoPackage, Shapefile or zipped Shapefile, GeoJSON, FlatGeobuf; any CRS).
    #[arg(long)]
    pub farmland: PathBuf,
    /// Attribute mapping, e.g. id=TBBH,pbf=YJJBNT,land_class=DLBM,location=ZLDWDM (defaults recognise the land-survey names).
    #[arg(long)]
    pub farmland_fields: Option<String>,
    /// Rules configuration (TOML); every threshold has a documented default.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output: changes.geojson (RFC 7946), changes.gpkg (farmland CRS) or changes.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the per-parcel status table (parcels.csv, parcels.json) into this directory.
    #[arg(long)]
    pub maps: Option<PathBuf>,
    /// Tile side in pixels.
    #[arg(long, default_value_t = 512)]
    pub tile: usize,
    /// Model registry directory.
    #[arg(long, default_value = "models/weights")]
    pub registry: PathBuf,
    /// Burn device: ndarray or flex.
    #[arg(long, default_value = "ndarray")]
    pub device: DeviceChoice,
    /// Skip the crop-type model (no non_grain_pbf flags).
    #[arg(long)]
    pub no_crop_type: bool,
    /// Print the result as JSON on stdout (summary and patches, no geometry).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub scene_args: SceneArgs,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let rules = match &args.config {
        Some(p) => RulesConfig::load(p)?,
        None => RulesConfig::default(),
    };
    let registry = Registry::new(&args.registry);
    let device = args.device.device();
    let lc_dir = registry.active_dir(Task::LandCover)?;
    let lc = LandCoverModel::load(&lc_dir, &device)
        .with_context(|| format!("cannot load the land-cover model in {}", lc_dir.display()))?;
    let ct = if args.no_crop_type {
        None
    } else {
        let dir = registry.active_dir(Task::CropType)?;
        Some(
            CropTypeModel::load(&dir, &device)
                .with_context(|| format!("cannot load the crop-type model in {}", dir.display()))?,
        )
    };
    let lc = LandCoverAdapter(lc);
    let ct = ct.map(CropTypeAdapter);

    let paths = expand_scene_paths(&args.scenes)?;
    let scenes = paths
        .iter()
        .map(|p| args.scene_args.open(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    use gengdi_inference::analysis::PixelClassifier;
    // With the SCL band when every date has one (cloud and shadow mask), else without.
    let bands = lc.bands();
    let with_scl: Vec<String> = bands.iter().cloned().chain(["SCL".to_string()]).collect();
    let stack = match SceneStack::build(
        scenes.clone(),
        &StackOptions {
            bands: Some(with_scl),
            ..Default::default()
        },
    ) {
        Ok(s) => s,
        Err(_) => SceneStack::build(
            scenes,
            &StackOptions {
                bands: Some(bands),
                ..Default::default()
            },
        )
        .context("the scenes do not supply the land-cover model's bands on one grid")?,
    };
    let mapping = match &args.farmland_fields {
        Some(s) => FieldMapping::parse(s)?,
        None => FieldMapping::default(),
    };
    let farmland = FarmlandLayer::read(&args.farmland, &mapping, &stack.grid.crs)?;
    let r = &farmland.report;
    eprintln!(
        "farmland: {} features: {} used ({} repaired), {} rejected; fields {}",
        r.features,
        r.used,
        r.repaired,
        r.rejected.len(),
        r.fields_used
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for rej in &r.rejected {
        eprintln!("  rejected {}: {}", rej.id, rej.reason);
    }
    let grid = stack.tile_grid(args.tile, 0)?;
    let bar = progress_bar(grid.len() as u64, "analysing");
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let tick = |_: usize, total: usize| {
        bar.set_length(total as u64);
        bar.inc(1)
    };
    let input = AnalysisInput {
        stack: &stack,
        farmland: &farmland,
        landcover: &lc,
        croptype: ct
            .as_ref()
            .map(|c| c as &dyn gengdi_inference::analysis::SeasonClassifier),
        rules: &rules,
        tile_size: args.tile,
    };
    let result = analyze(&input, Some(&tick))?;
    bar.finish_and_clear();
    write_patches(
        &args.out,
        &result.patches,
        &stack.grid.crs,
        farmland.source_crs.as_ref(),
    )?;
    if let Some(dir) = &args.maps {
        write_parcel_table(dir, &result)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_summary(&result, &stack, start.elapsed().as_secs_f64());
        print_timings(&result, &stack, start.elapsed().as_secs_f64());
        println!(
            "wrote {} ({} patches)",
            args.out.display(),
            result.patches.len()
        );
    }
    Ok(())
}

fn write_parcel_table(dir: &std::path::Path, result: &AnalysisResult) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join("parcels.json"),
        serde_json::to_string_pretty(&result.parcels)?,
    )?;
    let mut csv = String::from("parcel_id,pbf,county_code,status,pixels,flags,crop_type,crop_type_confidence,clear_pixels_per_date,mean_ndvi_per_date\n");
    for p in &result.parcels {
        let (ct, cc) = p
            .crop_type
            .clone()
            .map(|(n, c)| (n, format!("{c:.3}")))
            .unwrap_or_default();
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            p.parcel_id,
            u8::from(p.pbf),
            p.county_code.clone().unwrap_or_default(),
            p.status,
            p.pixels,
            p.flags.join(";"),
            ct,
            cc,
            p.clear_pixels
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(";"),
            p.mean_ndvi
                .iter()
                .map(|v| v.map(|x| format!("{x:.3}")).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(";")
        ));
    }
    std::fs::write(dir.join("parcels.csv"), csv)?;
    Ok(())
}

fn print_summary(r: &AnalysisResult, stack: &SceneStack, secs: f64) {
    let analysed = r.parcels.len();
    let insufficient = r
        .parcels
        .iter()
        .filter(|p| p.status == "insufficient_observations")
        .count();
    let flagged = r.parcels.iter().filter(|p| p.status == "flagged").count();
    println!(
        "season {} dates ({}), {} x {} px, {}/{} tiles with farmland, {:.1} s",
        r.dates.len(),
        r.dates
            .iter()
            .map(|d| d.map(|x| x.to_string()).unwrap_or_else(|| "?".into()))
            .collect::<Vec<_>>()
            .join(", "),
        stack.grid.width,
        stack.grid.height,
        r.tiles_with_farmland,
        r.tiles_total,
        secs
    );
    println!(
        "parcels analysed {analysed}, flagged {flagged}, insufficient observations {insufficient}"
    );
    let mut table: BTreeMap<(String, String), (usize, f64)> = BTreeMap::new();
    for p in &r.patches {
        let e = table
            .entry((
                p.county_code.clone().unwrap_or_else(|| "-".into()),
                p.kind.clone(),
            ))
            .or_default();
        e.0 += 1;
        e.1 += p.area_mu;
    }
    println!(
        "{:<10} {:<16} {:>8} {:>12}",
        "county", "kind", "patches", "mu"
    );
    for ((county, kind), (n, mu)) in &table {
        println!("{county:<10} {kind:<16} {n:>8} {mu:>12.2}");
    }
    let total_mu: f64 = r.patches.iter().map(|p| p.area_mu).sum();
    println!(
        "{:<10} {:<16} {:>8} {:>12.2}",
        "all",
        "all",
        r.patches.len(),
        total_mu
    );
}

/// Where the time went, the area covered per second and the peak memory.
fn print_timings(r: &AnalysisResult, stack: &SceneStack, secs: f64) {
    let t = &r.timings;
    // The scene's footprint on an equal-area basis (edges densified, any CRS).
    let (w, h) = (stack.grid.width as f64, stack.grid.height as f64);
    let ring: Vec<(f64, f64)> = (0..64)
        .map(|k| (w * k as f64 / 64.0, 0.0))
        .chain((0..64).map(|k| (w, h * k as f64 / 64.0)))
        .chain((0..64).map(|k| (w * (64 - k) as f64 / 64.0, h)))
        .chain((0..64).map(|k| (0.0, h * (64 - k) as f64 / 64.0)))
        .map(|(c, r)| stack.grid.world_from_pixel.world_from_pixel(c, r))
        .collect();
    let km2 = EqualArea::for_grid(&stack.grid)
        .and_then(|a| a.area_m2(&[vec![ring]]))
        .map(|m2| m2 / 1e6)
        .unwrap_or(f64::NAN);
    let shares = t
        .shares()
        .iter()
        .map(|(n, s)| format!("{n} {:.0} %", s * 100.0))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "time: {secs:.1} s wall, {:.3} km²/s over the scene ({km2:.1} km²); tiles {:.1} s wall \
         (thread-seconds: decode {:.1}, inference {:.1}, aggregation {:.1}), crop type {:.1} s, \
         vectorisation {:.1} s; shares: {shares}; peak RSS {}",
        km2 / secs.max(1e-9),
        t.tiles_wall_s,
        t.decode_s,
        t.inference_s,
        t.aggregation_s,
        t.crop_type_s,
        t.vectorisation_s,
        crate::util::peak_rss_bytes()
            .map(|b| format!("{:.0} MiB", b as f64 / 1048576.0))
            .unwrap_or_else(|| "unknown".into())
    );
}
