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
    Run { result, truth }
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
    // What the shipped models achieve today (README, "Season analysis"); the bar of
    // 0.9 is met for fishponds only: tree planting and non-grain use are not found yet.
    assert_eq!(scores["fishpond"], (1.0, 1.0), "{report}");
    assert!(
        scores["abandonment"].0 >= 0.8 && scores["abandonment"].1 >= 0.9,
        "{report}"
    );
    assert_eq!(scores["construction"].0, 1.0, "{report}");
    // Areas are positive and in mu = m² / 666.67.
    for p in &a.result.patches {
        assert!((p.area_mu - p.area_m2 / 666.6667).abs() < 0.01, "{p:?}");
        assert!(p.area_m2 > 0.0);
    }
}
