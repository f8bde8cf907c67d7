//! End to end on a generated season with ground truth: the shipped models and the rules
//! find the violations, and the tile size does not change the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use gengdi_fixtures::season::{generate_season, SeasonSpec, SeriesFilter};
use gengdi_inference::analysis::{analyze, AnalysisInput, AnalysisResult, SeasonClassifier};
use gengdi_inference::models_adapter::{LandCoverAdapter, SeriesAdapter};
use gengdi_inference::rules::RulesConfig;
use gengdi_inference::{FarmlandLayer, FieldMapping};
use gengdi_models::card::ModelCard;
use gengdi_models::samples::{load_croptype, load_landcover, load_season_cover, SeriesSamples};
use gengdi_models::split::SplitMethod;
use gengdi_models::{
    held_out_croptype, held_out_landcover, train_season_cover, DeviceChoice, InferencePath,
    LandCoverModel, Registry, SeriesModel, Task, TrainConfig,
};
use gengdi_tiling::{Crs, Scene, SceneStack, StackOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn registry() -> Registry {
    Registry::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/weights"))
}

/// The WorldCereal samples and EuroSAT patches the shipped models never saw. Both models
/// split by a hash of the group id, so a WorldCereal sample that one holds out the other holds
/// out too (asserted here from the cards and the data): every rendered cultivated, fallow or
/// orchard series and every per-date spectrum is one neither model trained or stopped on.
fn held_out_series() -> SeriesFilter {
    let reg = registry();
    let data = [
        gengdi_fixtures::fixture("eurosat-ms-samples"),
        gengdi_fixtures::fixture("worldcereal-s2-timeseries"),
    ];
    let ct = ModelCard::load(&reg.active_dir(Task::CropType).unwrap()).unwrap();
    let lc = ModelCard::load(&reg.active_dir(Task::LandCover).unwrap()).unwrap();
    assert_eq!(
        ct.training.split.spec, lc.training.split.spec,
        "the shipped models must share one split"
    );
    assert_eq!(ct.training.split.spec.method, SplitMethod::GroupHash);
    let ct_samples = load_croptype(&data).unwrap();
    let lc_samples = load_landcover(&data).unwrap();
    let crops: BTreeSet<String> = held_out_croptype(&ct, &ct_samples)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s.group)
        .collect();
    let landcover: BTreeSet<String> = held_out_landcover(&lc, &lc_samples)
        .unwrap()
        .into_iter()
        .map(|p| p.group)
        .collect();
    let ct_all: BTreeSet<&str> = ct_samples
        .samples
        .iter()
        .map(|(s, _)| s.group.as_str())
        .collect();
    let lc_all: BTreeSet<&str> = lc_samples
        .samples
        .iter()
        .map(|p| p.group.as_str())
        .collect();
    // A sample both models use is held out by both or by neither.
    let shared: Vec<&&str> = ct_all.intersection(&lc_all).collect();
    assert!(shared.len() > 1000, "{} shared samples", shared.len());
    for g in shared {
        assert_eq!(crops.contains(*g), landcover.contains(*g), "sample {g}");
    }
    assert!(crops.len() >= 250, "{} held-out series", crops.len());
    SeriesFilter {
        crops: Some(crops),
        landcover: Some(landcover),
    }
}

/// One column of the generated truth_parcels.csv, by parcel number (TBBH).
fn truth_column(dir: &std::path::Path, name: &str) -> BTreeMap<String, String> {
    let csv = std::fs::read_to_string(dir.join("truth_parcels.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (id, value) = (col("TBBH"), col(name));
    lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[id].to_string(), c[value].to_string())
        })
        .collect()
}

struct Run {
    result: AnalysisResult,
    truth: BTreeMap<String, String>,
    farmland_class: BTreeMap<String, String>,
    grid_crs: Crs,
    farmland_crs: Option<Crs>,
    /// One pixel's area in the grid CRS.
    pixel_area: f64,
}

fn run(tile: usize, dir: &std::path::Path) -> Run {
    run_with(tile, dir, RulesConfig::default())
}

fn run_with(tile: usize, dir: &std::path::Path, rules: RulesConfig) -> Run {
    run_on(tile, dir, rules, InferencePath::Kernel)
}

fn run_on(tile: usize, dir: &std::path::Path, rules: RulesConfig, path: InferencePath) -> Run {
    let spec = SeasonSpec {
        series: held_out_series(),
        ..SeasonSpec::default()
    };
    run_spec(tile, dir, rules, spec, path)
}

/// The season `spec` generated into `dir`, analysed with the shipped models (no
/// season-cover model ships yet: tree planting is checked by the crop-type model).
fn run_spec(
    tile: usize,
    dir: &std::path::Path,
    rules: RulesConfig,
    spec: SeasonSpec,
    path: InferencePath,
) -> Run {
    run_models(tile, dir, rules, spec, path, None)
}

/// As [`run_spec`], with the season-cover model in `season_cover` (a model folder) when
/// given; without one, tree planting is checked by the crop-type model.
fn run_models(
    tile: usize,
    dir: &std::path::Path,
    rules: RulesConfig,
    spec: SeasonSpec,
    path: InferencePath,
    season_cover: Option<&std::path::Path>,
) -> Run {
    generate_season(&spec, dir).unwrap();
    let device = DeviceChoice::NdArray.device();
    let reg = registry();
    let lc = LandCoverAdapter(
        LandCoverModel::load(&reg.active_dir(Task::LandCover).unwrap(), &device)
            .unwrap()
            .with_path(path),
    );
    let ct = SeriesAdapter(
        SeriesModel::load(
            &reg.active_dir(Task::CropType).unwrap(),
            &device,
            Task::CropType,
        )
        .unwrap(),
    );
    let sc = season_cover
        .map(|dir| SeriesAdapter(SeriesModel::load(dir, &device, Task::SeasonCover).unwrap()));
    use gengdi_inference::analysis::PixelClassifier;
    let mut bands = lc.bands();
    bands.push("SCL".into());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("S2_L2A_")
        })
        .collect();
    files.sort();
    let scenes = files.iter().map(|p| Scene::open(p).unwrap()).collect();
    let stack = SceneStack::build(
        scenes,
        &StackOptions {
            bands: Some(bands),
            ..Default::default()
        },
    )
    .unwrap();
    let farmland = FarmlandLayer::read(
        &dir.join("farmland.gpkg"),
        &FieldMapping::default(),
        &stack.grid.crs,
    )
    .unwrap();
    if spec.size_px.is_none() {
        assert_eq!(farmland.report.used, 193);
    }
    let input = AnalysisInput {
        stack: &stack,
        farmland: &farmland,
        landcover: &lc,
        croptype: Some(&ct as &dyn SeasonClassifier),
        season_cover: sc.as_ref().map(|m| m as &dyn SeasonClassifier),
        rules: &rules,
        tile_size: tile,
    };
    let result = analyze(&input, None).unwrap();
    let truth = truth_column(dir, "violation")
        .into_iter()
        .map(|(id, v)| (id, v.replace("non_grain", "non_grain_pbf")))
        .collect();
    let farmland_class = farmland
        .parcels
        .iter()
        .map(|p| (p.id.clone(), p.land_class.clone().unwrap_or_default()))
        .collect();
    Run {
        result,
        truth,
        farmland_class,
        grid_crs: stack.grid.crs.clone(),
        farmland_crs: farmland.source_crs.clone(),
        pixel_area: {
            let (w, h) = stack.grid.world_from_pixel.pixel_size();
            w * h
        },
    }
}

#[test]
fn the_pixel_kernel_and_burns_forward_give_the_same_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = run_on(
        256,
        dir.path(),
        RulesConfig::default(),
        InferencePath::Kernel,
    );
    let burn = run_on(256, dir.path(), RulesConfig::default(), InferencePath::Burn);
    // Every parcel's per-date evidence (class fractions, indices) and every patch, exactly.
    let json = |r: &AnalysisResult| {
        (
            serde_json::to_string(&r.parcels).unwrap(),
            serde_json::to_string(&r.patches).unwrap(),
        )
    };
    let (kp, kq) = json(&kernel.result);
    let (bp, bq) = json(&burn.result);
    assert!(
        kp == bp,
        "per-parcel evidence differs between the kernel and Burn"
    );
    assert!(kq == bq, "patches differ between the kernel and Burn");
    assert!(!kernel.result.patches.is_empty());
}

#[test]
fn the_season_analysis_finds_the_generated_violations_whatever_the_tile_size() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(128, dir.path());
    let b = run(512, dir.path());
    let key = |r: &AnalysisResult| -> Vec<(String, String, String)> {
        r.patches
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    p.kind.to_string(),
                    format!("{:.2}", p.area_m2),
                )
            })
            .collect()
    };
    assert_eq!(
        key(&a.result),
        key(&b.result),
        "tile size changed the patch list"
    );
    // Scored as `gengdi-season score` scores it: this seed is the one the rules' thresholds
    // were tuned on, so its figures are printed, not asserted; the floors are asserted over
    // other seeds below ([`scores_hold_their_floors_over_other_seeds`]).
    let s = score(&a.result, dir.path());
    println!("{}", s.table());
    assert_eq!(s.parcels, 193);
    for k in &s.kinds {
        assert!(k.truth > 0, "{}: every kind is in the season", k.kind);
        assert!(k.true_positives <= k.found.min(k.truth));
    }
    // Areas are positive and in mu = m² / 666.67.
    for p in &a.result.patches {
        assert!((p.area_mu - p.area_m2 / 666.6667).abs() < 0.01, "{p:?}");
        assert!(p.area_m2 > 0.0);
    }
    // Registered orchards (DLBM 0201) and grassland (0404) are not cropland: never flagged.
    for p in &a.result.patches {
        let parcel = a
            .farmland_class
            .get(&p.parcel_id)
            .cloned()
            .unwrap_or_default();
        assert!(
            p.kind == "non_grain_pbf" || p.pbf || parcel.starts_with("01"),
            "{p:?} on land class {parcel}"
        );
    }
}

/// The analysis's patches scored against the season's truth by the scorer of
/// `gengdi-season score`.
fn score(r: &AnalysisResult, dir: &std::path::Path) -> gengdi_fixtures::season::score::SeasonScore {
    use gengdi_fixtures::season::score;
    let truth = score::read_truth(&dir.join("truth_parcels.csv")).unwrap();
    let found: Vec<score::FoundPatch> = r
        .patches
        .iter()
        .map(|p| score::FoundPatch {
            parcel: p.parcel_id.clone(),
            kind: p.kind.to_string(),
            area_m2: p.area_m2,
        })
        .collect();
    score::score(&truth, &found)
}

/// Floors over development seeds 1 and 2 (some rules were set on them; `scripts/season-eval.sh`
/// reports seeds 101–105, which no tuning touched, beside them), on scenes of 3 × 3 parcel blocks (1,737 parcels, at least
/// 36 of each kind: one parcel moves a recall by under 3 %), rendered only from samples
/// neither model saw. The floors sit below the worst of those seeds (README, "Season
/// analysis"): they catch a regression, they do not pin a result.
///
/// Abandoned parcels are real WorldCereal fallow fields, most of them green all season: the
/// bare-field rule (no cycle, NDVI below 0.4) finds none of them, the overgrown rule (never
/// below NDVI 0.6, grass, over a season from April) about half (README).
#[test]
fn scores_hold_their_floors_over_other_seeds() {
    // kind → (precision, recall, share of the parcels found with an area within 15 %)
    let floors: BTreeMap<&str, (f64, f64, f64)> = [
        ("abandonment", (0.48, 0.45, 0.6)),
        ("tree_planting", (0.12, 0.18, 0.30)),
        ("fishpond", (0.95, 0.93, 0.90)),
        ("construction", (0.90, 0.90, 0.70)),
        ("non_grain_pbf", (0.30, 0.12, 0.90)),
    ]
    .into_iter()
    .collect();
    for seed in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let spec = SeasonSpec {
            seed,
            size_px: Some(1203),
            series: held_out_series(),
            ..SeasonSpec::default()
        };
        let r = run_spec(
            512,
            dir.path(),
            RulesConfig::default(),
            spec,
            InferencePath::Kernel,
        );
        let s = score(&r.result, dir.path());
        println!("seed {seed}:\n{}", s.table());
        for k in &s.kinds {
            let (p, rc, area) = floors[k.kind.as_str()];
            assert!(k.truth >= 34, "seed {seed} {}: {} parcels", k.kind, k.truth);
            assert!(
                k.precision >= p,
                "seed {seed} {}: precision {:.2} < {p}",
                k.kind,
                k.precision
            );
            assert!(
                k.recall >= rc,
                "seed {seed} {}: recall {:.2} < {rc}",
                k.kind,
                k.recall
            );
            let share = k.area_within as f64 / k.true_positives.max(1) as f64;
            assert!(
                share >= area,
                "seed {seed} {}: area within 15 % {share:.2} < {area}",
                k.kind
            );
        }
        // Building sites are not abandoned fields: the cleared ground of a site whose
        // structures went up late in the season (built on fewer than half of its dates) is
        // construction (`construction_site_built_fraction`). Abandonment patches cover 8.9 %
        // and 7.9 % of the sites' true area on these seeds with that rule off, 5.8 % and 0.3 %
        // with it; most of the rest is one site whose real built-up spectrum the land-cover
        // model calls crop or bare on every date (README, "Season analysis").
        let c = s.kind("construction").unwrap();
        let abandoned = c.other_kinds_m2.get("abandonment").copied().unwrap_or(0.0);
        assert!(
            abandoned <= 0.07 * c.truth_m2,
            "seed {seed}: abandonment on {:.1} % of the construction sites' area",
            100.0 * abandoned / c.truth_m2
        );
    }
}

/// The generated season of the default seed, rendered from held-out series only, analysed
/// with the crop-type model and `rules` (no season-cover model).
fn crop_type_check(dir: &std::path::Path, rules: RulesConfig) -> Run {
    let spec = SeasonSpec {
        series: held_out_series(),
        ..SeasonSpec::default()
    };
    run_models(512, dir, rules, spec, InferencePath::Kernel, None)
}

/// The parcels of the patches that `off` has and `on` does not, asserting that `on` added no
/// patch and that each dropped patch is tree planting.
fn dropped_tree_planting<'a>(on: &Run, off: &'a Run) -> BTreeSet<&'a String> {
    let key =
        |p: &gengdi_inference::analysis::PatchRecord| (p.id.clone(), format!("{:.2}", p.area_m2));
    let kept: BTreeSet<_> = on.result.patches.iter().map(key).collect();
    assert!(
        kept.is_subset(&off.result.patches.iter().map(key).collect()),
        "the check added patches"
    );
    off.result
        .patches
        .iter()
        .filter(|p| !kept.contains(&key(p)))
        .map(|p| {
            assert_eq!(p.kind, "tree_planting", "{p:?}");
            &p.parcel_id
        })
        .collect()
}

/// The season check's class and confidence on `parcel` in `run`.
fn tree_check(run: &Run, parcel: &str) -> (String, f32) {
    let status = run
        .result
        .parcels
        .iter()
        .find(|s| s.parcel_id == parcel)
        .unwrap();
    status.tree_check.clone().unwrap()
}

/// The crop-type season check (without a season-cover model) only removes tree-planting
/// patches, and only false ones: the summer-crop parcels whose canopy the single-date
/// land-cover model calls orchard.
#[test]
fn the_season_check_drops_tree_planting_only_on_annual_crops() {
    let dir = tempfile::tempdir().unwrap();
    // The grassland side of the check is tested below.
    let on = crop_type_check(
        dir.path(),
        RulesConfig {
            tree_grassland_min_confidence: 0.0,
            ..RulesConfig::default()
        },
    );
    let off = crop_type_check(
        dir.path(),
        RulesConfig {
            tree_annual_crop_veto: 2.0,
            tree_grassland_min_confidence: 0.0,
            ..RulesConfig::default()
        },
    );
    let dropped = dropped_tree_planting(&on, &off);
    let crops = truth_column(dir.path(), "crop");
    for p in &dropped {
        assert_ne!(on.truth[*p], "tree_planting", "dropped a true orchard: {p}");
        let c = crops[*p].as_str();
        assert!(
            ["soy", "maize", "sunflower", "spring_wheat", "rapeseed"].contains(&c),
            "{p}: {c}"
        );
        let (class, _) = tree_check(&on, p);
        assert!(class == "grain" || class == "non_grain", "{p}: {class}");
    }
    // The check does drop some (12 with the models before the shared split, 3 after).
    assert!(!dropped.is_empty());
    let vetoed: BTreeSet<&String> = on.result.tree_planting_vetoed.iter().collect();
    assert!(dropped.is_subset(&vetoed), "{vetoed:?}");
    assert!(off.result.tree_planting_vetoed.is_empty());
    // Kept tree patches say what the season model saw.
    for p in on
        .result
        .patches
        .iter()
        .filter(|p| p.kind == "tree_planting")
    {
        assert!(
            p.evidence.contains("crop-type model on the season"),
            "{p:?}"
        );
    }
}

/// The grassland side of the crop-type check (`tree_grassland_min_confidence`) only removes
/// tree-planting patches, only of parcels whose tree-like season the model calls grassland
/// below the threshold, and at least twice as many false ones as true ones: green fallow
/// fields and vegetables whose summer the single-date model calls orchard.
#[test]
fn the_season_check_drops_tree_planting_on_a_near_chance_grassland_call() {
    let dir = tempfile::tempdir().unwrap();
    let on = crop_type_check(dir.path(), RulesConfig::default());
    let off = crop_type_check(
        dir.path(),
        RulesConfig {
            tree_grassland_min_confidence: 0.0,
            ..RulesConfig::default()
        },
    );
    let threshold = RulesConfig::default().tree_grassland_min_confidence;
    let dropped = dropped_tree_planting(&on, &off);
    for p in &dropped {
        let (class, confidence) = tree_check(&on, p);
        assert!(
            class == "grassland" && confidence < threshold,
            "{p}: {class} {confidence}"
        );
    }
    let true_ones = dropped
        .iter()
        .filter(|p| on.truth[**p] == "tree_planting")
        .count();
    let false_ones = dropped.len() - true_ones;
    println!("dropped {false_ones} false and {true_ones} true tree-planting parcels");
    // On this seed: 2 false, 0 true.
    assert!(
        false_ones >= 2 && false_ones >= 2 * true_ones,
        "{false_ones} false, {true_ones} true"
    );
}

/// The season-cover check, with a (small, quickly trained) season-cover model: it removes
/// only tree-planting patches, of parcels whose tree-like season it does not call perennial,
/// and adds only whole-parcel tree-planting patches that it calls perennial with the rule's
/// confidence. (No season-cover model ships; see the README, "Season analysis".)
#[test]
fn the_season_cover_check_vetoes_and_adds_only_tree_planting() {
    let all = load_season_cover(&[
        gengdi_fixtures::fixture("eurosat-ms-samples"),
        gengdi_fixtures::fixture("worldcereal-s2-timeseries"),
    ])
    .unwrap();
    let mut count = BTreeMap::new();
    let tiny = SeriesSamples {
        samples: all
            .samples
            .iter()
            .filter(|(s, c)| {
                let n = count.entry(format!("{}:{c}", s.source)).or_insert(0);
                *n += 1;
                *n <= 20
            })
            .cloned()
            .collect(),
        ..all.clone()
    };
    let mut config = TrainConfig::new()
        .with_seed(3)
        .with_max_epochs(5)
        .with_batch_size(32)
        .with_progress(false);
    config.slot_head = Some(true);
    let model_dir = tempfile::tempdir().unwrap();
    train_season_cover(&config, &tiny, DeviceChoice::NdArray)
        .unwrap()
        .save(model_dir.path(), "test")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = || SeasonSpec {
        series: held_out_series(),
        ..SeasonSpec::default()
    };
    let with = |rules: RulesConfig| {
        let path = InferencePath::Kernel;
        run_models(512, dir.path(), rules, spec(), path, Some(model_dir.path()))
    };
    let rules = RulesConfig {
        tree_season_parcel_min: 0.3,
        ..RulesConfig::default()
    };
    let on = with(rules.clone());
    let off = with(RulesConfig {
        tree_season_veto: 2.0,
        tree_season_parcel_min: 2.0,
        ..RulesConfig::default()
    });
    let key =
        |p: &gengdi_inference::analysis::PatchRecord| (p.id.clone(), format!("{:.2}", p.area_m2));
    let a: BTreeSet<_> = on.result.patches.iter().map(key).collect();
    let b: BTreeSet<_> = off.result.patches.iter().map(key).collect();
    assert!(off.result.tree_planting_vetoed.is_empty());
    let vetoed: BTreeSet<&String> = on.result.tree_planting_vetoed.iter().collect();
    let mut changed = 0;
    for p in off.result.patches.iter().filter(|p| !a.contains(&key(p))) {
        assert_eq!(p.kind, "tree_planting", "{p:?}");
        assert!(vetoed.contains(&p.parcel_id), "{p:?}");
        let status = on
            .result
            .parcels
            .iter()
            .find(|s| s.parcel_id == p.parcel_id)
            .unwrap();
        let (class, _) = status.tree_check.clone().unwrap();
        assert_ne!(class, "perennial", "{}", p.parcel_id);
        changed += 1;
    }
    for p in on.result.patches.iter().filter(|p| !b.contains(&key(p))) {
        assert_eq!(p.kind, "tree_planting", "{p:?}");
        assert!(
            p.evidence.starts_with("season-cover model: perennial"),
            "{p:?}"
        );
        assert_eq!(p.class_after, "perennial");
        assert!(p.confidence >= f64::from(rules.tree_season_parcel_min) - 1e-6);
        changed += 1;
    }
    assert!(changed > 0, "the season-cover check changed nothing");
    for p in on
        .result
        .patches
        .iter()
        .filter(|p| p.kind == "tree_planting")
    {
        assert!(p.evidence.contains("season-cover model"), "{p:?}");
    }
    assert!(on.result.patches.iter().all(|p| p
        .model_version
        .ends_with(&ModelCard::load(model_dir.path()).unwrap().id)));
}

#[test]
fn patches_are_written_as_rfc7946_geojson_a_geopackage_in_the_farmland_crs_and_csv() {
    use gdal::vector::{Geometry, LayerAccess};
    use gdal::Dataset;
    use gengdi_inference::output::{write_patches, FIELDS};
    let dir = tempfile::tempdir().unwrap();
    let run = run(512, dir.path());
    let patches = &run.result.patches;
    assert!(patches.len() >= 12, "{}", patches.len());
    let evidence = FIELDS.iter().position(|f| *f == "evidence").unwrap();
    // Every patch says what triggered it.
    for p in patches {
        let lead = match p.kind.name() {
            "fishpond" => "open water on ",
            "construction" => "built-up on ",
            "tree_planting" => "tree or orchard on ",
            "abandonment" => "no cultivation cycle",
            _ => "crop-type model: non_grain",
        };
        assert!(p.evidence.starts_with(lead), "{p:?}");
    }
    let write = |name: &str| {
        let path = dir.path().join(name);
        write_patches(&path, patches, &run.grid_crs, run.farmland_crs.as_ref()).unwrap();
        path
    };
    let field_names = |layer: &gdal::vector::Layer| -> Vec<String> {
        layer.defn().fields().map(|f| f.name()).collect()
    };
    // GeoJSON: EPSG:4326 lon/lat, every property, the same features in the same order.
    let ds = Dataset::open(write("changes.geojson")).unwrap();
    let mut layer = ds.layer(0).unwrap();
    assert_eq!(field_names(&layer), FIELDS);
    assert_eq!(layer.spatial_ref().unwrap().auth_code().unwrap(), 4326);
    let lonlat: Vec<Geometry> = layer
        .features()
        .zip(patches)
        .map(|(f, p)| {
            assert_eq!(f.field_as_string(0).unwrap().unwrap(), p.id);
            assert_eq!(f.field_as_string(evidence).unwrap().unwrap(), p.evidence);
            let g = f.geometry().unwrap().clone();
            let env = g.envelope();
            // The generated block lies near Bourg-en-Bresse (Ain), about 5.2° E, 46.2° N.
            assert!(env.MinX > 4.0 && env.MaxX < 6.5 && env.MinY > 45.5 && env.MaxY < 47.0);
            g
        })
        .collect();
    assert_eq!(lonlat.len(), patches.len());
    // GeoPackage: in the farmland layer's CRS (CGCS2000, EPSG:4490); back in the grid's
    // projected CRS every polygon has the patch's area (equal-area figure) within 0.5 %.
    let ds = Dataset::open(write("changes.gpkg")).unwrap();
    let mut layer = ds.layer(0).unwrap();
    assert_eq!(field_names(&layer), FIELDS);
    let srs = layer.spatial_ref().unwrap();
    assert_eq!(srs.auth_code().unwrap(), 4490);
    let mut utm = run.grid_crs.to_spatial_ref().unwrap();
    utm.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    let to_utm = gdal::spatial_ref::CoordTransform::new(&srs, &utm).unwrap();
    let mut n = 0;
    for (f, p) in layer.features().zip(patches) {
        let g = f.geometry().unwrap().transform(&to_utm).unwrap();
        let err = (g.area() - p.area_m2).abs() / p.area_m2;
        assert!(err < 0.005, "{} {} vs {}", p.id, g.area(), p.area_m2);
        n += 1;
    }
    assert_eq!(n, patches.len());
    // CSV: the same columns plus the WKT; quoted cells (the evidence has commas) read back.
    let ds = Dataset::open(write("changes.csv")).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let mut expected: Vec<String> = FIELDS.iter().map(|f| f.to_string()).collect();
    expected.push("wkt_epsg4326".into());
    assert_eq!(field_names(&layer), expected);
    let rows: Vec<(String, String)> = layer
        .features()
        .map(|f| {
            (
                f.field_as_string(0).unwrap().unwrap(),
                f.field_as_string(evidence).unwrap().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = patches
        .iter()
        .map(|p| (p.id.clone(), p.evidence.clone()))
        .collect();
    assert_eq!(rows, want);
    // Every patch is a valid OGC geometry (GEOS IsValid) in every format: where two of its
    // pixels meet only at a corner, its rings touch there, none touches itself.
    let invalid = common::invalid_patches_in_every_format(
        dir.path(),
        patches,
        &run.grid_crs,
        run.farmland_crs.as_ref(),
    );
    common::assert_every_patch_is_valid(&invalid, patches.len());
    common::assert_pixel_patches_cover_whole_pixels(patches, run.pixel_area);
    // An unknown extension is refused with the formats it takes.
    let err = write_patches(&dir.path().join("x.shp"), patches, &run.grid_crs, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("use .geojson, .gpkg or .csv"), "{err}");
}

/// `gengdi-season --seed 9 --size-px 2400` then `gengdi analyze` gave 13 of 1,169 patches
/// whose ring touched itself at a pixel corner (10 tree planting, 3 construction); the same
/// seed at 800² held one of them with the models of the time. Which patches a season gives
/// depends on the models and the generator, so the exact case lives in the vectoriser's unit
/// tests (`a_ring_of_pixels_touching_itself_diagonally_stays_valid` and its neighbours); here
/// every patch of this seed is a valid OGC geometry in GeoJSON, GeoPackage and CSV and covers
/// whole pixels.
#[test]
fn every_patch_of_the_seed_9_season_is_valid_in_geojson_geopackage_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SeasonSpec {
        size_px: Some(800),
        seed: 9,
        ..SeasonSpec::default()
    };
    let run = run_spec(
        512,
        dir.path(),
        RulesConfig::default(),
        spec,
        InferencePath::Kernel,
    );
    let patches = &run.result.patches;
    assert!(patches.len() >= 15, "{}", patches.len());
    common::assert_pixel_patches_cover_whole_pixels(patches, run.pixel_area);
    let invalid = common::invalid_patches_in_every_format(
        dir.path(),
        patches,
        &run.grid_crs,
        run.farmland_crs.as_ref(),
    );
    common::assert_every_patch_is_valid(&invalid, patches.len());
}
