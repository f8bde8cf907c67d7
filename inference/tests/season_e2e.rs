//! End to end on a generated season with ground truth: the shipped models and the rules
//! find the violations, and the tile size does not change the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_fixtures::season::{generate_season, SeasonSpec};
use gengdi_inference::analysis::{analyze, AnalysisInput, AnalysisResult, SeasonClassifier};
use gengdi_inference::models_adapter::{CropTypeAdapter, LandCoverAdapter};
use gengdi_inference::rules::RulesConfig;
use gengdi_inference::{FarmlandLayer, FieldMapping};
use gengdi_models::{CropTypeModel, DeviceChoice, LandCoverModel, Registry, Task};
use gengdi_tiling::{Scene, SceneStack, StackOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn registry() -> Registry {
    Registry::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/weights"))
}

struct Run {
    result: AnalysisResult,
    truth: BTreeMap<String, String>,
    farmland_class: BTreeMap<String, String>,
}

fn run(tile: usize, dir: &std::path::Path) -> Run {
    let spec = SeasonSpec::default();
    generate_season(&spec, dir).unwrap();
    let device = DeviceChoice::NdArray.device();
    let reg = registry();
    let lc = LandCoverAdapter(
        LandCoverModel::load(&reg.active_dir(Task::LandCover).unwrap(), &device).unwrap(),
    );
    let ct = CropTypeAdapter(
        CropTypeModel::load(&reg.active_dir(Task::CropType).unwrap(), &device).unwrap(),
    );
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
    assert_eq!(farmland.report.used, 193);
    let rules = RulesConfig::default();
    let input = AnalysisInput {
        stack: &stack,
        farmland: &farmland,
        landcover: &lc,
        croptype: Some(&ct as &dyn SeasonClassifier),
        rules: &rules,
        tile_size: tile,
    };
    let result = analyze(&input, None).unwrap();
    let csv = std::fs::read_to_string(dir.join("truth_parcels.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (id_col, v_col) = (
        header.iter().position(|h| *h == "TBBH").unwrap(),
        header.iter().position(|h| *h == "violation").unwrap(),
    );
    let truth = lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[id_col].to_string(),
                c[v_col].replace("non_grain", "non_grain_pbf"),
            )
        })
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
    }
}

#[test]
fn the_season_analysis_finds_the_generated_violations_whatever_the_tile_size() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(128, dir.path());
    let b = run(512, dir.path());
    let key = |r: &AnalysisResult| -> Vec<(String, String, String)> {
        r.patches
            .iter()
            .map(|p| (p.id.clone(), p.kind.clone(), format!("{:.2}", p.area_m2)))
            .collect()
    };
    assert_eq!(
        key(&a.result),
        key(&b.result),
        "tile size changed the patch list"
    );
    // Per-kind precision and recall at the parcel level.
    let flagged: BTreeSet<(String, String)> = a
        .result
        .patches
        .iter()
        .map(|p| (p.parcel_id.clone(), p.kind.clone()))
        .collect();
    let mut report = String::new();
    let mut scores: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for kind in [
        "abandonment",
        "tree_planting",
        "fishpond",
        "construction",
        "non_grain_pbf",
    ] {
        let truth: BTreeSet<&String> = a
            .truth
            .iter()
            .filter(|(_, k)| k.as_str() == kind)
            .map(|(id, _)| id)
            .collect();
        let found: BTreeSet<&String> = flagged
            .iter()
            .filter(|(_, k)| k == kind)
            .map(|(id, _)| id)
            .collect();
        let tp = truth.intersection(&found).count();
        let precision = tp as f64 / found.len().max(1) as f64;
        let recall = tp as f64 / truth.len().max(1) as f64;
        report.push_str(&format!(
            "{kind}: truth {} found {} tp {tp} precision {precision:.2} recall {recall:.2}\n",
            truth.len(),
            found.len()
        ));
        scores.insert(kind, (precision, recall));
    }
    println!("{report}");
    // What the shipped models achieve today (README, "Season analysis"); the bar is
    // 0.9 for every kind: met for fishponds and abandonment; construction misses one partial
    // site; tree planting and non-grain use are not found yet.
    assert_eq!(scores["fishpond"], (1.0, 1.0), "{report}");
    assert!(
        scores["abandonment"].0 >= 0.9 && scores["abandonment"].1 >= 0.9,
        "{report}"
    );
    assert_eq!(scores["construction"].0, 1.0, "{report}");
    assert!(scores["construction"].1 >= 0.75, "{report}");
    // Patch area against the truth: for every truly violating parcel found with the right
    // kind, the share whose patch area (sum over its patches of that kind) is within 15 % of
    // the true violating area.
    let csv = std::fs::read_to_string(dir.path().join("truth_parcels.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (id_col, area_col) = (col("TBBH"), col("violating_area_m2"));
    let true_area: BTreeMap<String, f64> = lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[id_col].to_string(), c[area_col].parse().unwrap())
        })
        .collect();
    let mut found_area: BTreeMap<(String, String), f64> = BTreeMap::new();
    for p in &a.result.patches {
        *found_area
            .entry((p.parcel_id.clone(), p.kind.clone()))
            .or_default() += p.area_m2;
    }
    let mut within: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut area_report = String::new();
    for ((parcel, kind), area) in &found_area {
        if a.truth.get(parcel).map(String::as_str) != Some(kind.as_str()) {
            continue;
        }
        let truth = true_area[parcel];
        let err = (area - truth).abs() / truth;
        let e = within.entry(kind_name(kind)).or_default();
        e.1 += 1;
        if err <= 0.15 {
            e.0 += 1;
        }
        area_report.push_str(&format!(
            "{kind} {parcel}: {area:.0} m² vs {truth:.0} m² ({:+.0} %)\n",
            100.0 * (area - truth) / truth
        ));
    }
    println!("{area_report}");
    // Every fishpond patch found is within 15 % of its true area; 17 of the 19 abandoned
    // parcels found are (two small parcels are only partly found, −63 % and −38 %) and 2 of
    // the 3 construction sites (the growing site is found only where it is built all season,
    // −84 %).
    let within = |k: &str| within.get(k).copied().unwrap_or_default();
    assert_eq!(within("fishpond"), (5, 5), "{area_report}");
    assert_eq!(within("abandonment"), (17, 19), "{area_report}");
    assert_eq!(within("construction"), (2, 3), "{area_report}");
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

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "abandonment" => "abandonment",
        "tree_planting" => "tree_planting",
        "fishpond" => "fishpond",
        "construction" => "construction",
        _ => "non_grain_pbf",
    }
}
