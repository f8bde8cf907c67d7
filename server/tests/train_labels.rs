//! `gengdi train --labels`: the user's own polygons over scenes, alone or with tables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gengdi(args: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("{} {args}", env!("CARGO_BIN_EXE_gengdi")))
        .current_dir(root())
        .output()
        .unwrap()
}

const LABELS: &str = "--labels fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg --class-field RABA_ID --class-map 1100=annual_crop,1300=grass,2000=tree,3000=built --scenes fixtures/data/eolearn-slovenia-s2/s2l1c_2015{0711,0830,0909}_13band.tif";

/// Train with `args` into a new temporary registry; panics with gengdi's stderr on failure.
fn train(args: &str) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let run = gengdi(&format!(
        "train {args} --quiet --out {}",
        out.path().display()
    ));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// The card of the only model in `<out>/landcover/`.
fn only_card(out: &Path) -> serde_json::Value {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out.join("landcover"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("card.json").is_file())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    serde_json::from_str(&std::fs::read_to_string(dirs[0].join("card.json")).unwrap()).unwrap()
}

fn file_names(card: &serde_json::Value) -> Vec<String> {
    card["training"]["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn labels_alone_train_on_the_labels_only_and_the_card_lists_them() {
    let out = tempfile::tempdir().unwrap();
    let run = gengdi(&format!(
        "train --task landcover {LABELS} --epochs 2 --quiet --out {}",
        out.path().display()
    ));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("88 features, 46 used (0 points, 46 polygons), 42 skipped"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "skipped, class value not mapped (value (features)): 1410 (15), 1500 (18), 1600 (4)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("stack: 3 date(s)"), "{stdout}");
    let card = only_card(out.path());
    assert_eq!(
        file_names(&card),
        vec![
            "lulc_raba_polygons.gpkg",
            "s2l1c_20150711_13band.tif",
            "s2l1c_20150830_13band.tif",
            "s2l1c_20150909_13band.tif"
        ]
    );
    let gpkg = &card["training"]["data"]["files"][0];
    assert_eq!(gpkg["bytes"], 229376);
    assert_eq!(gpkg["sha256"].as_str().unwrap().len(), 64);
    let counts = &card["training"]["rule_counts"];
    // 1777 grass pixels × 3 dates, 7601 tree pixels × 3 dates (no SCL, no nodata).
    assert_eq!(counts["vector:lulc_raba_polygons: kept as grass"], 1777 * 3);
    assert_eq!(counts["vector:lulc_raba_polygons: kept as tree"], 7601 * 3);
    assert!(counts
        .as_object()
        .unwrap()
        .keys()
        .all(|k| k.starts_with("vector:")));
    let groups: u64 = card["training"]["split"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_u64().unwrap())
        .sum();
    assert_eq!(groups, 46, "one group per used polygon");
    assert!(card["training"]["command"]
        .as_str()
        .unwrap()
        .contains("--class-map 1100=annual_crop"));
}

/// `eval --held-out` recomputes the split of a model trained on vector labels when given the
/// same labels, and says clearly when the data cannot reproduce it.
#[test]
fn eval_recomputes_the_held_out_polygons_of_a_vector_label_model() {
    let out = train(&format!("--task landcover {LABELS} --epochs 1"));
    let card = only_card(out.path());
    let dir = out
        .path()
        .join("landcover")
        .join(card["id"].as_str().unwrap());
    let json = out.path().join("eval.json");
    let ids = out.path().join("held_out.txt");
    let run = gengdi(&format!(
        "eval --model {} --held-out {LABELS} --json {} --write-held-out {}",
        dir.display(),
        json.display(),
        ids.display()
    ));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        report["overall"]["confusion"], card["metrics"]["overall"]["confusion"],
        "the held-out pixels and the model's answers are those of training"
    );
    assert!(report["overall"]["n"].as_u64().unwrap() > 0);
    // The held-out polygons, once each, sorted: about a fifth of the 46 used polygons.
    let ids = std::fs::read_to_string(&ids).unwrap();
    let lines: Vec<&str> = ids.lines().collect();
    assert!((5..=15).contains(&lines.len()), "{lines:?}");
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
    assert!(
        lines.iter().all(|l| l.starts_with("lulc_raba_polygons:")),
        "{lines:?}"
    );
    // The shipped tables are not what this model was trained on.
    let run = gengdi(&format!("eval --model {} --held-out", dir.display()));
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("cannot be recomputed from this data")
            && err.contains("pass the tables and labels it was trained on"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn labels_and_tables_are_merged() {
    let out = train(&format!(
        "--task landcover --data fixtures/data/eurosat-ms-samples {LABELS} --epochs 1"
    ));
    let card = only_card(out.path());
    let names = file_names(&card);
    assert!(names.contains(&"eurosat_ms_pixels_16perimage.csv.gz".to_string()));
    assert!(names.contains(&"lulc_raba_polygons.gpkg".to_string()));
    assert_eq!(names.len(), 5);
    let counts = card["training"]["rule_counts"].as_object().unwrap();
    assert!(counts.keys().any(|k| k.starts_with("eurosat:")));
    assert!(counts.keys().any(|k| k.starts_with("vector:")));
    let rules = card["training"]["label_rules"].as_array().unwrap();
    assert!(rules
        .iter()
        .any(|r| r.as_str().unwrap().contains("class field RABA_ID")));
}

#[test]
fn label_mistakes_give_one_clear_line() {
    for (args, needle) in [
        (
            "train --task landcover --labels fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg --class-field CLASS --scenes fixtures/data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif --out target/never",
            "no class field \"CLASS\"; the fields are index, RABA_ID, AREA, DATE, LULC_ID, LULC_NAME",
        ),
        (
            "train --task landcover --labels fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg --class-field RABA_ID --scenes fixtures/data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif --out target/never",
            "1100 (4), 1300 (26), 1410 (15), 1500 (18), 1600 (4), 2000 (10), 3000 (11)",
        ),
        (
            "train --task croptype --labels fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg --class-field RABA_ID --class-map 1300=grass --scenes fixtures/data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif --out target/never",
            "\"grass\" is not a croptype class; the classes are grain, non_grain, grassland, fallow, permanent_crop",
        ),
    ] {
        let out = gengdi(args);
        assert_eq!(out.status.code(), Some(1), "{args}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args}: {err}");
        assert!(!err.contains("panicked"), "{args}: {err}");
    }
    // --labels needs a class field and scenes.
    let out = gengdi("train --task landcover --labels x.gpkg --out target/never");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--class-field") && err.contains("--scenes"),
        "{err}"
    );
}

/// Verdicts as the service exports them (fields `kind`, `status`, `class_before`,
/// `class_after`; here in the farmland's UTM CRS), made from the Slovenia register: built-up
/// parcels confirmed as construction, forest confirmed as tree planting, cropland parcels
/// false positives of abandonment on which the inspector found grass (`class_found`, instead
/// of the register class), grassland confirmed non-grain (no land-cover class), the rest
/// still open.
fn verdict_file(dir: &Path) -> PathBuf {
    let out = dir.join("verdicts.geojson");
    let sql = "SELECT geom, \
        CASE RABA_ID WHEN 3000 THEN 'construction' WHEN 2000 THEN 'tree_planting' \
          WHEN 1100 THEN 'abandonment' WHEN 1300 THEN 'non_grain_pbf' ELSE 'fishpond' END AS kind, \
        CASE WHEN RABA_ID = 1100 THEN 'false_positive' WHEN RABA_ID IN (1410, 1500, 1600) \
          THEN 'open' ELSE 'confirmed' END AS status, \
        'cropland' AS class_before, \
        CASE RABA_ID WHEN 2000 THEN 'tree' ELSE '' END AS class_after, \
        CASE RABA_ID WHEN 1100 THEN 'grass' ELSE '' END AS class_found FROM LULC";
    let run = Command::new("ogr2ogr")
        .args(["-f", "GeoJSON"])
        .arg(&out)
        .arg(root().join("fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg"))
        .args(["-dialect", "SQLite", "-sql", sql])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "ogr2ogr (scripts/install-deps.sh installs gdal-bin): {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// A model fine-tuned on [`verdict_file`]'s verdicts: what `gengdi train` printed, the new
/// card and its base's.
struct FineTuned {
    stdout: String,
    card: serde_json::Value,
    base: serde_json::Value,
}

/// `gengdi train --task TASK --verdicts … --scenes <three Slovenia dates> --fine-tune active
/// --epochs 1 --seed 5` into an exported registry, with what holds for either task: one new
/// model, fine-tuned from the task's active model (which stays active: activation is a
/// decision of its own), with its own seed, the base's split and the base's normalisation.
fn fine_tune_on_verdicts(task: &str) -> FineTuned {
    let dir = tempfile::tempdir().unwrap();
    let verdicts = verdict_file(dir.path());
    let registry = dir.path().join("models");
    let export = gengdi(&format!("models export {}", registry.display()));
    assert!(export.status.success(), "{export:?}");
    let active_id = || {
        let active: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(registry.join(task).join("active.json")).unwrap(),
        )
        .unwrap();
        active["id"].as_str().unwrap().to_string()
    };
    let base_id = active_id();
    let before = model_dirs_of(&registry, task);
    let run = gengdi(&format!(
        "train --task {task} --verdicts {} --scenes fixtures/data/eolearn-slovenia-s2/s2l1c_2015{{0711,0830,0909}}_13band.tif --fine-tune active --epochs 1 --seed 5 --quiet --out {}",
        verdicts.display(),
        registry.display()
    ));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let new: Vec<PathBuf> = model_dirs_of(&registry, task)
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(new[0].join("card.json")).unwrap()).unwrap();
    let base: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(registry.join(task).join(&base_id).join("card.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        card["training"]["config"]["fine_tune_from"],
        base_id.as_str()
    );
    // Its own seed, the base's split: what the base held out stays out of training.
    assert_eq!(card["training"]["config"]["seed"], 5);
    assert_eq!(card["training"]["config"]["split_seed"], 42);
    assert_eq!(
        card["input"]["normalisation"],
        base["input"]["normalisation"]
    );
    // The verdicts trained it.
    let files = file_names(&card);
    assert!(files.iter().any(|f| f.contains("verdicts")), "{files:?}");
    assert_eq!(active_id(), base_id);
    FineTuned {
        stdout: String::from_utf8_lossy(&run.stdout).into_owned(),
        card,
        base,
    }
}

#[test]
fn verdicts_fine_tune_the_active_land_cover_model_and_the_card_counts_them() {
    let FineTuned { stdout, card, base } = fine_tune_on_verdicts("landcover");
    assert!(
        stdout.contains(r#"25 patches label pixels {"built": 11, "grass": 4, "tree": 10}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""confirmed non_grain_pbf: no land-cover class": 26"#)
            && stdout.contains(r#""status \"open\": not a verdict that labels": 37"#),
        "{stdout}"
    );
    assert_eq!(
        card["training"]["verdicts"],
        serde_json::json!({
            "abandonment/false_positive": 4,
            "construction/confirmed": 11,
            "tree_planting/confirmed": 10,
        })
    );
    assert_eq!(card["architecture"], base["architecture"]);
    // The shipped tables and the verdicts' pixels both trained it.
    let files = file_names(&card);
    assert!(files.iter().any(|f| f.contains("eurosat")), "{files:?}");
}

#[test]
fn verdicts_fine_tune_the_active_crop_type_model_with_one_season_per_patch() {
    let FineTuned { stdout, card, base } = fine_tune_on_verdicts("croptype");
    // Confirmed non-grain labels non_grain, confirmed tree planting permanent_crop, the false
    // abandonment on which grass was found grassland; construction has no crop-type class.
    assert!(
        stdout.contains(
            r#"40 patches label seasons {"grassland": 4, "non_grain": 26, "permanent_crop": 10}"#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""confirmed construction: no crop-type class": 11"#)
            && stdout.contains(r#""status \"open\": not a verdict that labels": 37"#),
        "{stdout}"
    );
    assert_eq!(
        card["training"]["verdicts"],
        serde_json::json!({
            "abandonment/false_positive": 4,
            "non_grain_pbf/confirmed": 26,
            "tree_planting/confirmed": 10,
        })
    );
    // The base's architecture (its card predates the optional heads: absent reads as off).
    assert_eq!(card["architecture"]["kind"], base["architecture"]["kind"]);
    for (k, v) in base["architecture"]["config"].as_object().unwrap() {
        assert_eq!(&card["architecture"]["config"][k], v, "{k}");
    }
    for head in ["slot_head", "stats_head"] {
        let on = &card["architecture"]["config"][head];
        assert!(on.is_null() || on == false, "{head}: {on}");
    }
    // One season per labelling patch joined the shipped WorldCereal series: the training
    // counts grow by exactly the verdicts' classes, less the patches that went to the
    // validation and test parts of the split.
    let files = file_names(&card);
    assert!(files.iter().any(|f| f.contains("worldcereal")), "{files:?}");
    let count = |c: &serde_json::Value, class: &str| {
        c["training"]["train_class_counts"][class]
            .as_u64()
            .unwrap_or(0)
    };
    let grown: u64 = ["grassland", "non_grain", "permanent_crop"]
        .iter()
        .map(|k| count(&card, k) - count(&base, k))
        .sum();
    assert!((1..=40).contains(&grown), "{grown}");
    for k in ["grain", "fallow"] {
        assert_eq!(count(&card, k), count(&base, k), "{k}");
    }
}

#[test]
fn verdicts_label_land_cover_and_crop_type_only_and_need_their_scenes() {
    let dir = tempfile::tempdir().unwrap();
    let verdicts = verdict_file(dir.path());
    let broken = dir.path().join("broken.geojson");
    std::fs::write(&broken, r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"kind":"fishpond"},"geometry":null}]}"#).unwrap();
    let scene = "--scenes fixtures/data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif";
    for (task, file, scenes, says) in [
        (
            "season",
            &verdicts,
            scene,
            "--verdicts label land-cover and crop-type models only",
        ),
        ("landcover", &verdicts, "", "--scenes"),
        ("croptype", &verdicts, "", "--scenes"),
        ("landcover", &broken, scene, "no field status or verdict"),
        ("croptype", &broken, scene, "no field status or verdict"),
    ] {
        let run = gengdi(&format!(
            "train --task {task} --verdicts {} {scenes} --epochs 1 --quiet --out {}",
            file.display(),
            dir.path().join("r").display()
        ));
        assert!(!run.status.success(), "{task} {scenes}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}

fn model_dirs_of(registry: &Path, task: &str) -> BTreeSet<PathBuf> {
    std::fs::read_dir(registry.join(task))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("card.json").is_file())
        .collect()
}
