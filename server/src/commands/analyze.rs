//! `gengdi analyze`: the season analysis the monitoring centre runs.

use super::scene_args::SceneArgs;
use crate::util::progress_bar;
use clap::Args;
use gengdi_inference::analysis::{AnalysisResult, EqualArea, ParcelState};
use gengdi_inference::pipeline::{
    self, AdminRequest, AnalysisOutput, AnalysisRequest, CancelToken, FarmlandRequest, Models,
    OutputRequest, ProgressSink, Stage,
};
use gengdi_inference::rules::RulesConfig;
use gengdi_models::{DeviceChoice, Task};
use gengdi_tiling::AnalysisGrid;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Scene files, directories, STAC ItemCollection / Item JSON files, or remote scenes (s3://bucket/key, https://…; with --allow-remote): several dates of one season (any CRS; aligned by the tiling engine).
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
    /// Keep each finished tile in DIR and resume from the tiles found there: run the same command again after an interruption (Ctrl-C, a kill, a reboot) and only the unfinished tiles are analysed, with the same result. Tiles of another analysis in DIR are discarded; DIR is removed when the analysis succeeds. Not with --maps.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
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

impl AnalyzeArgs {
    /// The library request these arguments stand for (rules file loaded).
    pub fn request(&self) -> anyhow::Result<AnalysisRequest> {
        let rules = match &self.config {
            Some(p) => RulesConfig::load(p)?,
            None => RulesConfig::default(),
        };
        Ok(AnalysisRequest {
            scenes: self.scenes.clone(),
            baseline: self.baseline.clone(),
            farmland: FarmlandRequest {
                path: self.farmland.clone(),
                layer: self.farmland_layer.clone(),
                fields: self.farmland_fields.clone(),
            },
            admin: self.admin.as_ref().map(|path| AdminRequest {
                path: path.clone(),
                fields: self.admin_fields.clone(),
            }),
            scene_options: self.scene_args.request(),
            rules,
            tile_size: self.tile,
            crop_type: !self.no_crop_type,
            outputs: OutputRequest {
                changes: Some(self.out.clone()),
                maps: self.maps.clone(),
                parcel_table: self.maps.clone(),
            },
            checkpoint: self.checkpoint.clone(),
        })
    }
}

/// The tile progress bar on stderr, shown from the tile stage on (hidden with `--json`).
struct BarSink {
    bar: std::sync::OnceLock<indicatif::ProgressBar>,
    hidden: bool,
}

impl ProgressSink for BarSink {
    fn stage(&self, stage: Stage) {
        if stage == Stage::AnalysingTiles {
            let bar = self.bar.get_or_init(|| progress_bar(0, "analysing"));
            if self.hidden {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
        }
    }

    fn tiles(&self, done: usize, total: usize) {
        if let Some(bar) = self.bar.get() {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let request = args.request()?;
    let registry = crate::registry::locate(args.registry.as_deref())?.for_reading()?;
    let lc_dir = registry.active_dir(Task::LandCover)?;
    let (ct_dir, sc_dir) = if args.no_crop_type {
        (None, None)
    } else {
        // The season-cover model is optional: a registry without one checks tree planting
        // with the crop-type model.
        let sc_dir = registry.active_dir_if_any(Task::SeasonCover)?;
        (Some(registry.active_dir(Task::CropType)?), sc_dir)
    };
    let models = Models::load(&lc_dir, ct_dir.as_deref(), sc_dir.as_deref(), args.device)?;
    let sink = BarSink {
        bar: std::sync::OnceLock::new(),
        hidden: args.json,
    };
    let output = pipeline::run(&request, &models, &sink, &CancelToken::new());
    if let Some(bar) = sink.bar.get() {
        bar.finish_and_clear();
    }
    let AnalysisOutput {
        result,
        grid,
        map_paths,
    } = output?;
    // The result is written: the finished tiles are no longer needed.
    pipeline::remove_checkpoint(&request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_summary(&result, &grid, start.elapsed().as_secs_f64());
        print_timings(&result, &grid, start.elapsed().as_secs_f64());
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

fn print_summary(r: &AnalysisResult, grid: &AnalysisGrid, secs: f64) {
    let not_covered = r
        .parcels
        .iter()
        .filter(|p| p.status == ParcelState::NotCovered)
        .count();
    let analysed = r.parcels.len() - not_covered;
    let insufficient = r
        .parcels
        .iter()
        .filter(|p| p.status == ParcelState::InsufficientObservations)
        .count();
    let flagged = r
        .parcels
        .iter()
        .filter(|p| p.status == ParcelState::Flagged)
        .count();
    println!(
        "season {} dates ({}), {} x {} px, {}/{} tiles with farmland, {:.1} s",
        r.dates.len(),
        r.dates
            .iter()
            .map(|d| d.map(|x| x.to_string()).unwrap_or_else(|| "?".into()))
            .collect::<Vec<_>>()
            .join(", "),
        grid.width,
        grid.height,
        r.tiles_with_farmland,
        r.tiles_total,
        secs
    );
    println!(
        "parcels analysed {analysed}, flagged {flagged}, insufficient observations {insufficient}, not covered by the imagery {not_covered}"
    );
    if !r.tree_planting_vetoed.is_empty() {
        println!(
            "tree planting not reported on {} parcels: the season model does not find the season of their tree-like pixels perennial (rules tree_season_veto, tree_annual_crop_veto, tree_grassland_min_confidence; see tree_check in the --maps parcel table)",
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
                p.kind.to_string(),
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
fn print_timings(r: &AnalysisResult, grid: &AnalysisGrid, secs: f64) {
    let t = &r.timings;
    // The scene's footprint on an equal-area basis (edges densified, any CRS).
    let (w, h) = (grid.width as f64, grid.height as f64);
    let ring: Vec<(f64, f64)> = (0..64)
        .map(|k| (w * k as f64 / 64.0, 0.0))
        .chain((0..64).map(|k| (w, h * k as f64 / 64.0)))
        .chain((0..64).map(|k| (w * (64 - k) as f64 / 64.0, h)))
        .chain((0..64).map(|k| (0.0, h * (64 - k) as f64 / 64.0)))
        .map(|(c, r)| grid.world_from_pixel.world_from_pixel(c, r))
        .collect();
    let km2 = EqualArea::for_grid(grid)
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
