//! `gengdi analyze`: the season analysis the monitoring centre runs.

use super::scene_args::SceneArgs;
use crate::util::progress_bar;
use anyhow::Context;
use clap::Args;
use gengdi_inference::admin::{AdminFields, AdminLayer};
use gengdi_inference::analysis::{
    analyze_with, AnalysisInput, AnalysisOptions, AnalysisResult, EqualArea, MapSink,
};
use gengdi_inference::inputs::{build_stack, open_scenes};
use gengdi_inference::maps::ClassMaps;
use gengdi_inference::models_adapter::{CropTypeAdapter, LandCoverAdapter};
use gengdi_inference::output::write_patches;
use gengdi_inference::rules::RulesConfig;
use gengdi_inference::{FarmlandLayer, FarmlandOptions, FieldMapping};
use gengdi_models::{CropTypeModel, DeviceChoice, LandCoverModel, Task};
use gengdi_tiling::SceneStack;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Scene files, directories or STAC ItemCollection / Item JSON files (local assets): several dates of one season (any CRS; aligned by the tiling engine).
    #[arg(long, required = true, num_args = 1..)]
    pub scenes: Vec<PathBuf>,
    /// The farmland layer (GeoPackage, Shapefile or zipped Shapefile, GeoJSON, FlatGeobuf; any CRS).
    #[arg(long)]
    pub farmland: PathBuf,
    /// The layer of the farmland file to read; needed when the file (e.g. a GeoPackage) holds several layers that can hold polygons (the error lists them with their feature counts).
    #[arg(long, value_name = "NAME")]
    pub farmland_layer: Option<String>,
    /// Attribute mapping, e.g. id=TBBH,pbf=YJJBNT,land_class=DLBM,location=ZLDWDM (defaults recognise the land-survey names).
    #[arg(long)]
    pub farmland_fields: Option<String>,
    /// Scenes of an earlier (baseline) period: files, directories or STAC JSON; classified with the same model on the season's grid (warped onto it if needed). A patch's class_before becomes their dominant land-cover class over the patch.
    #[arg(long, num_args = 1..)]
    pub baseline: Vec<PathBuf>,
    /// Administrative-boundary layer (any OGR format, any CRS; every layer of the file is read): county / township / village / group codes and names for parcels whose attributes lack them.
    #[arg(long)]
    pub admin: Option<PathBuf>,
    /// Admin-layer attribute mapping, e.g. code=XZQDM,name=XZQMC or county=XDM,county_name=XMC,township=…,village=…,group=… (roles: code, name, county, county_name, township, township_name, village, village_name, group, group_name).
    #[arg(long)]
    pub admin_fields: Option<String>,
    /// Rules configuration (TOML); every threshold has a documented default.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output: changes.geojson (RFC 7946), changes.gpkg (farmland CRS) or changes.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write into this directory the per-parcel status table (parcels.csv, parcels.json) and class-map COGs on the analysis grid: landcover_YYYYMMDD.tif per date, season_kind.tif (and baseline_landcover.tif with --baseline).
    #[arg(long)]
    pub maps: Option<PathBuf>,
    /// Tile side in pixels.
    #[arg(long, default_value_t = 512)]
    pub tile: usize,
    #[arg(long, value_name = "DIR", help = crate::registry::REGISTRY_HELP)]
    pub registry: Option<PathBuf>,
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
    let registry = crate::registry::locate(args.registry.as_deref())?.for_reading()?;
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

    use gengdi_inference::analysis::PixelClassifier;
    // SCL (the cloud and shadow mask) is used when every date carries one, decided from the
    // scenes' band names before the stack is built.
    let bands = lc.bands();
    let scene_opts = args.scene_args.options_checked()?;
    let scenes = open_scenes(&args.scenes, &scene_opts, &bands, &["SCL".to_string()])
        .context("cannot open the scenes")?;
    let stack = build_stack(scenes, &bands, None)
        .context("the scenes do not supply the land-cover model's bands on one grid")?;
    let options = FarmlandOptions {
        fields: match &args.farmland_fields {
            Some(s) => FieldMapping::parse(s)?,
            None => FieldMapping::default(),
        },
        layer: args.farmland_layer.clone(),
    };
    let mut farmland = FarmlandLayer::read_with(&args.farmland, &options, &stack.grid.crs)?;
    let r = &farmland.report;
    tracing::info!(
        "farmland: layer {}, {} features: {} used ({} repaired, {} curved linearised), {} rejected; fields {}",
        r.layer,
        r.features,
        r.used,
        r.repaired,
        r.linearised,
        r.rejected.len(),
        r.fields_used
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for rej in &r.rejected {
        tracing::info!("  rejected {}: {}", rej.id, rej.reason);
    }
    if let Some(path) = &args.admin {
        let fields = match &args.admin_fields {
            Some(s) => AdminFields::parse(s)?,
            None => AdminFields::default(),
        };
        let admin = AdminLayer::read(path, &fields, &stack.grid.crs)?;
        let r = &admin.report;
        let a = admin.assign(&mut farmland);
        tracing::info!(
            "admin: {} layer(s) ({}), {} features: {} used, {} rejected; parcels given codes {}, already coded {}, outside every unit {}",
            r.layers.len(),
            r.layers.join(", "),
            r.features,
            r.used,
            r.rejected.len(),
            a.filled,
            a.kept,
            a.outside
        );
        for rej in &r.rejected {
            tracing::info!("  rejected {}:{}: {}", rej.layer, rej.feature, rej.reason);
        }
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
    let baseline = if args.baseline.is_empty() {
        None
    } else {
        let scenes = open_scenes(&args.baseline, &scene_opts, &bands, &["SCL".to_string()])
            .context("cannot open the baseline scenes")?;
        Some(
            build_stack(scenes, &bands, Some(stack.grid.clone()))
                .context("the baseline scenes cannot be put on the season's grid")?,
        )
    };
    let maps = match &args.maps {
        Some(dir) => Some(ClassMaps::create(
            dir,
            &stack,
            &lc.class_names(),
            &lc.id(),
            baseline.is_some(),
        )?),
        None => None,
    };
    let opts = AnalysisOptions {
        baseline: baseline.as_ref(),
        maps: maps.as_ref().map(|m| m as &dyn MapSink),
    };
    let result = analyze_with(&input, &opts, Some(&tick))?;
    bar.finish_and_clear();
    let map_paths = match maps {
        Some(m) => m.finish()?,
        None => Vec::new(),
    };
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
        if let Some(dir) = &args.maps {
            println!(
                "wrote {} (parcels.csv, parcels.json and {} class maps)",
                dir.display(),
                map_paths.len()
            );
        }
    }
    Ok(())
}

fn write_parcel_table(dir: &std::path::Path, result: &AnalysisResult) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join("parcels.json"),
        serde_json::to_string_pretty(&result.parcels)?,
    )?;
    let mut csv = String::from("parcel_id,pbf,county_code,county_name,township_code,township_name,village_code,village_name,group_code,group_name,status,pixels,flags,crop_type,crop_type_confidence,tree_check,tree_check_confidence,clear_pixels_per_date,mean_ndvi_per_date,class_fractions_per_date\n");
    for p in &result.parcels {
        let (ct, cc) = p
            .crop_type
            .clone()
            .map(|(n, c)| (n, format!("{c:.3}")))
            .unwrap_or_default();
        let (tc, tcc) = p
            .tree_check
            .clone()
            .map(|(n, c)| (n, format!("{c:.3}")))
            .unwrap_or_default();
        let a = &p.admin;
        let cells = [
            p.parcel_id.clone(),
            u8::from(p.pbf).to_string(),
            a.county_code.clone().unwrap_or_default(),
            a.county_name.clone().unwrap_or_default(),
            a.township_code.clone().unwrap_or_default(),
            a.township_name.clone().unwrap_or_default(),
            a.village_code.clone().unwrap_or_default(),
            a.village_name.clone().unwrap_or_default(),
            a.group_code.clone().unwrap_or_default(),
            a.group_name.clone().unwrap_or_default(),
            p.status.clone(),
            p.pixels.to_string(),
            p.flags.join(";"),
            ct,
            cc,
            tc,
            tcc,
            p.clear_pixels
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(";"),
            p.mean_ndvi
                .iter()
                .map(|v| v.map(|x| format!("{x:.3}")).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(";"),
            // Per date `class:fraction|class:fraction`, dates separated by `;`.
            p.evidence
                .iter()
                .map(|e| {
                    e.as_ref()
                        .map(|e| {
                            e.class_fractions
                                .iter()
                                .zip(&result.class_names)
                                .filter(|(v, _)| **v > 0.0)
                                .map(|(v, k)| format!("{k}:{v:.3}"))
                                .collect::<Vec<_>>()
                                .join("|")
                        })
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(";"),
        ];
        csv.push_str(
            &cells
                .iter()
                .map(|c| csv_quote(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push('\n');
    }
    std::fs::write(dir.join("parcels.csv"), csv)?;
    Ok(())
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_summary(r: &AnalysisResult, stack: &SceneStack, secs: f64) {
    let not_covered = r
        .parcels
        .iter()
        .filter(|p| p.status == "not_covered")
        .count();
    let analysed = r.parcels.len() - not_covered;
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
        "parcels analysed {analysed}, flagged {flagged}, insufficient observations {insufficient}, not covered by the imagery {not_covered}"
    );
    if !r.tree_planting_vetoed.is_empty() {
        println!(
            "tree planting not reported on {} parcels: the crop-type model calls the season of their tree-like pixels an annual crop (rule tree_annual_crop_veto; see tree_check in the --maps parcel table)",
            r.tree_planting_vetoed.len()
        );
    }
    let mut table: BTreeMap<(String, String), (usize, f64)> = BTreeMap::new();
    for p in &r.patches {
        let e = table
            .entry((
                match (&p.county_code, &p.county_name) {
                    (Some(c), Some(n)) => format!("{c} {n}"),
                    (Some(c), None) => c.clone(),
                    (None, _) => "-".into(),
                },
                p.kind.clone(),
            ))
            .or_default();
        e.0 += 1;
        e.1 += p.area_mu;
    }
    println!(
        "{:<20} {:<16} {:>8} {:>12}",
        "county", "kind", "patches", "mu"
    );
    for ((county, kind), (n, mu)) in &table {
        println!("{county:<20} {kind:<16} {n:>8} {mu:>12.2}");
    }
    // (+ 0.0: an empty sum of f64 is -0.0, printed "-0.00")
    let total_mu: f64 = r.patches.iter().map(|p| p.area_mu).sum::<f64>() + 0.0;
    println!(
        "{:<20} {:<16} {:>8} {:>12.2}",
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
         (thread-seconds: decode {:.1}, warp {:.1}, inference {:.1}, aggregation {:.1}), crop type {:.1} s, \
         vectorisation {:.1} s; shares: {shares}; peak RSS {}",
        km2 / secs.max(1e-9),
        t.tiles_wall_s,
        t.decode_s,
        t.warp_s,
        t.inference_s,
        t.aggregation_s,
        t.crop_type_s,
        t.vectorisation_s,
        crate::util::peak_rss_bytes()
            .map(|b| format!("{:.0} MiB", b as f64 / 1048576.0))
            .unwrap_or_else(|| "unknown".into())
    );
}
