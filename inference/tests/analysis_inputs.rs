//! The analysis's inputs and side outputs: parcels outside the imagery, SCL decided up
//! front, STAC input, the administrative-boundary layer, the baseline period and the class
//! maps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::vector::Geometry;
use gengdi_inference::analysis::{analyze, AnalysisInput, AnalysisResult, PixelClassifier};
use gengdi_inference::inputs::{build_stack, every_date_has, open_scenes};
use gengdi_inference::models_adapter::LandCoverAdapter;
use gengdi_inference::rules::RulesConfig;
use gengdi_inference::{FarmlandLayer, FieldMapping};
use gengdi_models::{DeviceChoice, LandCoverModel, Registry, Task};
use gengdi_tiling::{Scene, SceneOptions, SceneStack};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn landcover() -> LandCoverAdapter {
    let reg = Registry::new(root().join("models/weights"));
    let device = DeviceChoice::NdArray.device();
    LandCoverAdapter(
        LandCoverModel::load(&reg.active_dir(Task::LandCover).unwrap(), &device).unwrap(),
    )
}

fn slovenia_scenes() -> Vec<PathBuf> {
    let dir = root().join("fixtures/data/eolearn-slovenia-s2");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("s2l1c_2015") && n.ends_with("_13band.tif")
        })
        .collect();
    v.sort();
    v
}

fn season_scenes(dir: &Path) -> Vec<PathBuf> {
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
    files
}

fn stack_of(inputs: &[PathBuf], lc: &LandCoverAdapter) -> SceneStack {
    let bands = lc.bands();
    let scenes = open_scenes(
        inputs,
        &SceneOptions::default(),
        &bands,
        &["SCL".to_string()],
    )
    .unwrap();
    build_stack(scenes, &bands, None).unwrap()
}

fn run(
    stack: &SceneStack,
    farmland: &FarmlandLayer,
    lc: &LandCoverAdapter,
    tile: usize,
) -> AnalysisResult {
    let rules = RulesConfig::default();
    let input = AnalysisInput {
        stack,
        farmland,
        landcover: lc,
        croptype: None,
        rules: &rules,
        tile_size: tile,
    };
    analyze(&input, None).unwrap()
}

fn slovenia_farmland(stack: &SceneStack) -> FarmlandLayer {
    FarmlandLayer::read(
        &root().join("fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg"),
        &FieldMapping::parse("land_class=RABA_ID").unwrap(),
        &stack.grid.crs,
    )
    .unwrap()
}

/// Whether any pixel centre of the stack's grid lies inside the parcel, by OGR (independent
/// of the analysis's rasteriser).
fn has_pixel_centre(stack: &SceneStack, polygons: &[Vec<Vec<(f64, f64)>>]) -> bool {
    let gt = stack.grid.world_from_pixel;
    for poly in polygons {
        let mut wkt = String::from("POLYGON(");
        for (i, ring) in poly.iter().enumerate() {
            if i > 0 {
                wkt.push(',');
            }
            let mut pts: Vec<String> = ring.iter().map(|(x, y)| format!("{x} {y}")).collect();
            pts.push(format!("{} {}", ring[0].0, ring[0].1));
            wkt.push_str(&format!("({})", pts.join(",")));
        }
        wkt.push(')');
        let g = Geometry::from_wkt(&wkt).unwrap();
        let env = g.envelope();
        for r in 0..stack.grid.height {
            for c in 0..stack.grid.width {
                let (x, y) = gt.world_from_pixel(c as f64 + 0.5, r as f64 + 0.5);
                if x < env.MinX || x > env.MaxX || y < env.MinY || y > env.MaxY {
                    continue;
                }
                if g.contains(&Geometry::from_wkt(&format!("POINT({x} {y})")).unwrap()) {
                    return true;
                }
            }
        }
    }
    false
}

#[test]
fn parcels_outside_the_imagery_are_reported_not_covered() {
    let lc = landcover();
    let stack = stack_of(&slovenia_scenes(), &lc);
    let farmland = slovenia_farmland(&stack);
    assert_eq!(farmland.parcels.len(), 88);
    let r = run(&stack, &farmland, &lc, 64);
    // Every parcel of the register is in the list, in register order.
    assert_eq!(r.parcels.len(), 88);
    let not_covered: Vec<&str> = r
        .parcels
        .iter()
        .filter(|p| p.status == "not_covered")
        .map(|p| p.parcel_id.as_str())
        .collect();
    assert_eq!(not_covered.len(), 7, "{not_covered:?}");
    for (p, s) in farmland.parcels.iter().zip(&r.parcels) {
        assert_eq!(p.id, s.parcel_id);
        let covered = has_pixel_centre(&stack, &p.polygons);
        assert_eq!(s.status != "not_covered", covered, "{}", p.id);
        if !covered {
            assert_eq!(s.pixels, 0);
            assert!(s.flags.is_empty());
            assert!(r.patches.iter().all(|x| x.parcel_id != p.id));
        }
    }
}

#[test]
fn scl_is_used_only_when_every_date_has_one() {
    let dir = tempfile::tempdir().unwrap();
    gengdi_fixtures::season::generate_season(
        &gengdi_fixtures::season::SeasonSpec::default(),
        dir.path(),
    )
    .unwrap();
    let lc = landcover();
    let files = season_scenes(dir.path());
    let stack = stack_of(&files, &lc);
    assert_eq!(stack.band_names.last().map(String::as_str), Some("SCL"));
    // The Slovenia L1C scenes carry no SCL.
    let slo: Vec<Scene> = slovenia_scenes()
        .iter()
        .map(|p| Scene::open(p).unwrap())
        .collect();
    assert!(!every_date_has(&slo, "SCL"));
    // One date without SCL (its last band renamed): the stack is built without SCL, at once.
    let mut scenes: Vec<Scene> = files.iter().map(|p| Scene::open(p).unwrap()).collect();
    let names: Vec<String> = scenes[2].bands.iter().map(|b| b.name.clone()).collect();
    let mut renamed = names.clone();
    *renamed.last_mut().unwrap() = "QA".into();
    scenes[2] = Scene::open_with(
        &files[2],
        &SceneOptions {
            band_names: Some(renamed),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!every_date_has(&scenes, "SCL"));
    let stack = build_stack(scenes, &lc.bands(), None).unwrap();
    assert!(!stack.band_names.iter().any(|b| b == "SCL"));
    assert_eq!(stack.layers.len(), 6);
}
