//! Training from field verdicts and activation, on the real path: the generated demo season
//! is analysed, verdicts are recorded, a land-cover model is trained from them (few epochs),
//! saved into the data dir's registry with both models' held-out metrics, and activated: the
//! model list changes and the next batch's patches record the new model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use gengdi_fixtures::season::{generate_season, SeasonSpec};
use gengdi_inference::labels::{label_stack, landcover_samples, LabelOptions};
use gengdi_models::{DeviceChoice, ModelCard, Registry};
use gengdi_service::auth::Role;
use gengdi_service::jobs::analysis_adapter::{data_dir_registry, load_models, AnalysisExecutor};
use gengdi_service::jobs::training::{confirmed_class, croptype_label_class, register_class};
use gengdi_service::store::PatchStatus;
use gengdi_service::store::SqliteStore;
use gengdi_service::{AppState, ServiceConfig};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
        .unwrap();
    let res = gengdi_service::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

/// Poll `uri` until its status is final; the last body.
async fn follow(state: &AppState, uri: &str, token: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let (status, b) = send(state, "GET", uri, token, None).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        match b["status"].as_str().unwrap() {
            "queued" | "running" => {}
            _ => return b,
        }
        assert!(start.elapsed() < limit, "{uri} still {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run_batch(state: &AppState, token: &str, scenes: &[String], farmland: i64) -> i64 {
    let (status, b) = send(
        state,
        "POST",
        "/api/v1/batches",
        token,
        Some(json!({"scenes": scenes, "farmland": farmland})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    let id = b["id"].as_i64().unwrap();
    let done = follow(
        state,
        &format!("/api/v1/batches/{id}"),
        token,
        Duration::from_secs(600),
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_train_a_model_that_is_saved_compared_and_activated() {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("import");
    let season = tokio::task::spawn_blocking({
        let d = import.join("season");
        move || generate_season(&SeasonSpec::default(), &d).unwrap()
    })
    .await
    .unwrap();
    // Tables: the shipped WorldCereal series only (the crop-type job below trains on them;
    // the land-cover jobs ask for no tables).
    let config = ServiceConfig {
        data_dir: dir.path().join("data"),
        import_root: import.clone(),
        tile: 128,
        rate_limit: 0.0,
        training_tables: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/data/worldcereal-s2-timeseries")],
        ..ServiceConfig::default()
    };
    let store = Arc::new(SqliteStore::open(&config.data_dir).unwrap());
    let (_, admin) = common::token(&*store, Role::Admin, None, "admin").await;
    let (_, researcher) = common::token(&*store, Role::Researcher, None, "researcher").await;
    // The shipped registry is copied into the data dir; the service writes only there.
    let shipped =
        Registry::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/weights"));
    let registry = data_dir_registry(&config.data_dir, &shipped).unwrap();
    assert_eq!(registry.root(), config.data_dir.join("models"));
    let shipped_lc = shipped
        .active_id(gengdi_models::Task::LandCover)
        .unwrap()
        .unwrap();
    assert_eq!(
        registry.active_id(gengdi_models::Task::LandCover).unwrap(),
        Some(shipped_lc.clone())
    );
    let models = load_models(&registry, DeviceChoice::NdArray, true).unwrap();
    let executor = Arc::new(
        AnalysisExecutor::new(models, config.tile, config.max_scene_pixels)
            .with_registry(registry.clone(), DeviceChoice::NdArray),
    );
    let (state, _worker) = gengdi_service::start(&config, store.clone(), executor).unwrap();

    let (status, f) = send(
        &state,
        "POST",
        "/api/v1/farmland",
        &admin,
        Some(json!({"path": "season/farmland.gpkg"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    let farmland = f["id"].as_i64().unwrap();
    let scenes: Vec<String> = season
        .scenes
        .iter()
        .map(|s| format!("season/{}", s.path.file_name().unwrap().to_string_lossy()))
        .collect();
    let batch = run_batch(&state, &admin, &scenes, farmland).await;

    // Verdicts: one confirmed patch of each kind that labels land cover, three false
    // positives whose register class is a land-cover class; on the first of them the
    // inspector found grass (`class_found`), which labels it instead of its register class.
    let (_, all) = send(
        &state,
        "GET",
        &format!("/api/v1/changes?batch={batch}&limit=1000"),
        &admin,
        None,
    )
    .await;
    let items = all["items"].as_array().unwrap();
    let mut expected: BTreeSet<&'static str> = BTreeSet::new();
    // The class each verdict labels its patch with.
    let mut labelled: BTreeMap<i64, &'static str> = BTreeMap::new();
    let mut kinds = BTreeSet::new();
    let mut picked = Vec::new();
    for p in items {
        let kind = p["kind"].as_str().unwrap();
        if let Some(class) = confirmed_class(kind, p["class_after"].as_str().unwrap()) {
            if kinds.insert(kind.to_string()) {
                let id = p["id"].as_i64().unwrap();
                picked.push((id, "confirmed", ""));
                expected.insert(class.name());
                labelled.insert(id, class.name());
            }
        }
    }
    let mut fps = 0;
    let mut grass_patch = None;
    for p in items {
        let id = p["id"].as_i64().unwrap();
        if fps < 3 && !picked.iter().any(|(i, _, _)| *i == id) {
            if let Some(class) = register_class(p["class_before"].as_str().unwrap()) {
                // The first: found grass on the ground, where the register says otherwise.
                let found = grass_patch.is_none() && class != gengdi_models::LandCoverClass::Grass;
                let class = if found {
                    grass_patch = Some(id);
                    "grass"
                } else {
                    class.name()
                };
                picked.push((id, "false_positive", if found { "grass" } else { "" }));
                expected.insert(class);
                labelled.insert(id, class);
                fps += 1;
            }
        }
    }
    assert!(
        kinds.len() >= 2 && fps > 0,
        "kinds {kinds:?}, false positives {fps}"
    );
    let grass_patch = grass_patch.expect("a false positive whose register class is not grass");
    for (id, verdict, class_found) in &picked {
        let (status, v) = send(
            &state,
            "POST",
            &format!("/api/v1/changes/{id}/verdicts"),
            &admin,
            Some(json!({"verdict": verdict, "note": "field visit", "class_found": class_found})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["verdict"]["class_found"], *class_found, "{v}");
    }

    // Train from the verdicts alone (few epochs), by a researcher.
    let (status, t) = send(
        &state,
        "POST",
        "/api/v1/training",
        &researcher,
        Some(json!({"task": "landcover", "epochs": 3, "seed": 7, "tables": false})),
    )
    .await;
    assert_eq!(
        (status, t["status"].as_str()),
        (StatusCode::ACCEPTED, Some("queued")),
        "{t}"
    );
    let job = t["id"].as_i64().unwrap();
    let done = follow(
        &state,
        &format!("/api/v1/training/{job}"),
        &researcher,
        Duration::from_secs(600),
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        done["request"]["batches"],
        json!([batch]),
        "default: batches with verdicts"
    );
    assert_eq!(done["epochs"], 3);
    // The progress counted the epochs as they ended: the last one run.
    assert_eq!(done["epoch"], done["result"]["model"]["epochs_run"]);
    assert_eq!(done["cancel_requested"], false);
    let r = &done["result"];
    let new_id = r["model"]["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, shipped_lc);

    // The labels file: one feature per verdict, with the class mapped (the false positive on
    // which grass was found: grass).
    let labels_file = config
        .data_dir
        .join(format!("training/{job}/verdicts-b{batch}.geojson"));
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(&labels_file).unwrap()).unwrap();
    let features = labels["features"].as_array().unwrap();
    let in_file: BTreeMap<i64, &str> = features
        .iter()
        .map(|f| {
            (
                f["properties"]["patch"].as_i64().unwrap(),
                f["properties"]["class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(in_file, labelled);
    assert_eq!(in_file[&grass_patch], "grass");
    // The grass patch alone, as a label file of its own.
    let grass_only = dir.path().join("grass-only.geojson");
    let grass_features: Vec<&Value> = features
        .iter()
        .filter(|f| f["properties"]["class"] == "grass")
        .collect();
    std::fs::write(
        &grass_only,
        json!({"type": "FeatureCollection", "features": grass_features}).to_string(),
    )
    .unwrap();

    // The labels, read again over the batch's scenes by labels.rs: the job's verdict samples
    // are exactly those observations, one class per verdict as mapped.
    let (report, grass_report) = tokio::task::spawn_blocking({
        let scenes: Vec<PathBuf> = season.scenes.iter().map(|s| s.path.clone()).collect();
        let labels_file = labels_file.clone();
        move || {
            let bands: Vec<String> = gengdi_models::features::BANDS
                .iter()
                .map(|b| b.to_string())
                .collect();
            let scenes = gengdi_inference::inputs::open_scenes(
                &scenes,
                &gengdi_tiling::SceneOptions::default(),
                &bands,
                &["SCL".to_string()],
            )
            .unwrap();
            let stack = label_stack(scenes).unwrap();
            let read = |file: PathBuf| {
                landcover_samples(&[file], &LabelOptions::new("class"), &stack)
                    .unwrap()
                    .1
            };
            (read(labels_file), read(grass_only))
        }
    })
    .await
    .unwrap();
    // Patches per class, exactly; the grass patches' pixels are the job's grass samples.
    let mut features_per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for class in labelled.values() {
        *features_per_class.entry(class).or_default() += 1;
    }
    assert_eq!(
        report
            .per_class
            .iter()
            .map(|(k, c)| (k.as_str(), c.features))
            .collect::<BTreeMap<_, _>>(),
        features_per_class,
        "{report}"
    );
    let grass_pixels = grass_report.per_class["grass"].observations;
    assert!(grass_pixels > 0, "{grass_report}");
    assert_eq!(
        grass_report.per_class.keys().collect::<Vec<_>>(),
        ["grass"],
        "{grass_report}"
    );
    assert_eq!(
        report.per_class["grass"].observations, grass_pixels,
        "{report}\n{grass_report}"
    );
    let per_class: BTreeMap<String, u64> = report
        .per_class
        .iter()
        .map(|(k, c)| (k.clone(), c.observations as u64))
        .collect();
    assert_eq!(
        per_class
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        expected,
        "{report}"
    );
    assert!(per_class.values().all(|n| *n > 0), "{report}");
    assert_eq!(r["samples"]["verdicts_per_class"], json!(per_class));
    assert_eq!(r["samples"]["verdicts"], json!(report.observations));
    assert_eq!(r["samples"]["tables"], 0);
    assert_eq!(r["samples"]["total"], json!(report.observations));

    // The new model is in the data dir's registry, not active; its card counts the verdict
    // samples per class.
    let card =
        ModelCard::load(&config.data_dir.join(format!("models/landcover/{new_id}"))).unwrap();
    assert_eq!(card.id, new_id);
    assert_eq!(card.training.epochs_run, 3);
    for (class, n) in &per_class {
        let key = format!("vector:verdicts-b{batch}: kept as {class}");
        assert_eq!(card.training.rule_counts.get(&key), Some(n), "{key}");
    }
    // Both models on the same held-out split.
    let held_out = r["held_out"]["samples"].as_u64().unwrap();
    assert!(held_out > 0);
    assert_eq!(r["model"]["metrics"]["overall"]["n"], json!(held_out));
    assert_eq!(
        r["active_model"]["metrics"]["overall"]["n"],
        json!(held_out)
    );
    assert_eq!(r["active_model"]["id"], json!(shipped_lc));
    assert!(r["active_model"]["metrics"]["overall"]["overall_accuracy"].is_number());
    assert_eq!(card.metrics.overall.n, held_out);

    let active_of = |list: &Value, id: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .map(|m| m["active"].clone())
    };
    let (_, list) = send(&state, "GET", "/api/v1/models", &researcher, None).await;
    assert_eq!(active_of(&list, &new_id), Some(json!(false)), "{list}");
    assert_eq!(active_of(&list, &shipped_lc), Some(json!(true)), "{list}");
    let (status, c) = send(
        &state,
        "GET",
        &format!("/api/v1/models/{new_id}"),
        &researcher,
        None,
    )
    .await;
    assert_eq!(
        (status, c["id"].as_str()),
        (StatusCode::OK, Some(new_id.as_str()))
    );

    // The card and the job's result count the verdicts that labelled, by kind and verdict.
    let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
    for (id, verdict, _) in &picked {
        let p = items.iter().find(|p| p["id"] == *id).unwrap();
        *verdicts
            .entry(format!("{}/{verdict}", p["kind"].as_str().unwrap()))
            .or_default() += 1;
    }
    assert_eq!(card.training.verdicts, verdicts);
    assert_eq!(r["model"]["verdicts"], json!(verdicts));
    assert_eq!(r["model"]["fine_tuned_from"], Value::Null);

    // Fine-tuned from the active model instead: its weights and normalisation to start from.
    let (status, t) = send(
        &state,
        "POST",
        "/api/v1/training",
        &researcher,
        Some(json!({"task": "landcover", "epochs": 2, "seed": 7, "tables": false, "fine_tune": true})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let tuned = follow(
        &state,
        &format!("/api/v1/training/{}", t["id"]),
        &researcher,
        Duration::from_secs(600),
    )
    .await;
    assert_eq!(tuned["status"], "done", "{tuned}");
    assert_eq!(tuned["request"]["fine_tune"], true);
    let tuned_model = &tuned["result"]["model"];
    assert_eq!(tuned_model["fine_tuned_from"], json!(shipped_lc));
    assert_eq!(tuned_model["verdicts"], json!(verdicts));
    let tuned_card = ModelCard::load(&config.data_dir.join(format!(
        "models/landcover/{}",
        tuned_model["id"].as_str().unwrap()
    )))
    .unwrap();
    let shipped_card =
        ModelCard::load(&registry.active_dir(gengdi_models::Task::LandCover).unwrap()).unwrap();
    assert_eq!(shipped_card.id, shipped_lc);
    assert_eq!(
        tuned_card.input.normalisation,
        shipped_card.input.normalisation
    );
    assert_ne!(tuned_card.id, shipped_lc);

    // A crop-type model fine-tuned from the verdicts: each patch labels its season (the mean
    // of its clear pixels per date), added to the shipped WorldCereal series (the config's
    // `training_tables`). A non-grain patch confirmed now labels `non_grain`.
    if let Some(p) = items
        .iter()
        .find(|p| p["kind"] == "non_grain_pbf" && !picked.iter().any(|(i, _, _)| p["id"] == *i))
    {
        let id = p["id"].as_i64().unwrap();
        let (status, v) = send(
            &state,
            "POST",
            &format!("/api/v1/changes/{id}/verdicts"),
            &admin,
            Some(json!({"verdict": "confirmed", "note": "vegetables"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        picked.push((id, "confirmed", ""));
    }
    let shipped_ct = shipped
        .active_id(gengdi_models::Task::CropType)
        .unwrap()
        .unwrap();
    let mut ct_verdicts: BTreeMap<String, u64> = BTreeMap::new();
    let mut ct_labelled: BTreeMap<i64, &'static str> = BTreeMap::new();
    for (id, verdict, found) in &picked {
        let p = items.iter().find(|p| p["id"] == *id).unwrap();
        let status = match *verdict {
            "confirmed" => PatchStatus::Confirmed,
            _ => PatchStatus::FalsePositive,
        };
        let found = gengdi_models::LandCoverClass::ALL
            .into_iter()
            .find(|c| c.name() == *found);
        let kind = p["kind"].as_str().unwrap();
        if let Some(c) =
            croptype_label_class(status, kind, p["class_before"].as_str().unwrap(), found)
        {
            ct_labelled.insert(*id, c.name());
            *ct_verdicts.entry(format!("{kind}/{verdict}")).or_default() += 1;
        }
    }
    assert!(!ct_labelled.is_empty(), "{picked:?}");
    let (status, t) = send(
        &state,
        "POST",
        "/api/v1/training",
        &researcher,
        Some(json!({"task": "croptype", "epochs": 2, "seed": 7, "fine_tune": true})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let ct_job = t["id"].as_i64().unwrap();
    let ct = follow(
        &state,
        &format!("/api/v1/training/{ct_job}"),
        &researcher,
        Duration::from_secs(600),
    )
    .await;
    assert_eq!(ct["status"], "done", "{ct}");
    let r = &ct["result"];
    assert_eq!(r["task"], "croptype");
    assert_eq!(r["model"]["fine_tuned_from"], json!(shipped_ct));
    assert_eq!(r["model"]["verdicts"], json!(ct_verdicts));
    // Compared with the active crop-type model on the new model's held-out split.
    assert_eq!(r["active_model"]["id"], json!(shipped_ct));
    assert!(r["active_model"]["metrics"]["overall"].is_object(), "{r}");
    assert_eq!(
        r["samples"]["tables"], 1530,
        "the shipped WorldCereal series"
    );
    let from_verdicts = r["samples"]["verdicts"].as_u64().unwrap();
    assert!(
        (1..=ct_labelled.len() as u64).contains(&from_verdicts),
        "{from_verdicts} seasons from {ct_labelled:?}"
    );
    let labels: Value = serde_json::from_str(
        &std::fs::read_to_string(
            config
                .data_dir
                .join(format!("training/{ct_job}/verdicts-b{batch}.geojson")),
        )
        .unwrap(),
    )
    .unwrap();
    let in_file: BTreeMap<i64, &str> = labels["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["properties"]["patch"].as_i64().unwrap(),
                f["properties"]["class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(in_file, ct_labelled);
    let ct_card = ModelCard::load(&config.data_dir.join(format!(
        "models/croptype/{}",
        r["model"]["id"].as_str().unwrap()
    )))
    .unwrap();
    let shipped_ct_card =
        ModelCard::load(&registry.active_dir(gengdi_models::Task::CropType).unwrap()).unwrap();
    assert_eq!(
        ct_card.input.normalisation,
        shipped_ct_card.input.normalisation
    );
    // The base's split: what the shipped model held out stays out of training.
    assert_eq!(ct_card.training.config.split_seed, Some(42));
    assert_eq!(ct_card.training.config.seed, 7);

    // Activate: the list changes and the next batch runs the new model.
    let (status, a) = send(
        &state,
        "POST",
        &format!("/api/v1/models/{new_id}/activate"),
        &researcher,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["activated"]["id"], json!(new_id));
    let (_, list) = send(&state, "GET", "/api/v1/models", &admin, None).await;
    assert_eq!(active_of(&list, &new_id), Some(json!(true)), "{list}");
    assert_eq!(active_of(&list, &shipped_lc), Some(json!(false)), "{list}");
    assert_eq!(
        registry.active_id(gengdi_models::Task::LandCover).unwrap(),
        Some(new_id.clone())
    );
    assert_eq!(
        shipped.active_id(gengdi_models::Task::LandCover).unwrap(),
        Some(shipped_lc.clone()),
        "the shipped registry is untouched"
    );
    let (status, missing) =
        send(&state, "POST", "/api/v1/models/nope/activate", &admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");

    let (_, before) = send(
        &state,
        "GET",
        &format!("/api/v1/changes/{}", items[0]["id"]),
        &admin,
        None,
    )
    .await;
    assert!(before["model_version"]
        .as_str()
        .unwrap()
        .starts_with(&shipped_lc));
    let second = run_batch(&state, &admin, &scenes, farmland).await;
    let (_, after) = send(
        &state,
        "GET",
        &format!("/api/v1/changes?batch={second}&limit=1000"),
        &admin,
        None,
    )
    .await;
    let after = after["items"].as_array().unwrap();
    assert!(
        !after.is_empty(),
        "the new model's batch has patches to show its version"
    );
    assert!(
        after.iter().all(|p| p["model_version"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{new_id}+"))),
        "{:?}",
        after.first()
    );
}

#[tokio::test]
async fn bad_training_requests_get_json_4xx() {
    let s = common::service().await;
    let (farmland, batch) = s.seed(common::three_patches()).await;
    let _ = farmland;
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({"task": "forest"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "unknown task",
        ),
        (
            json!({"task": "season"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "only landcover or croptype",
        ),
        (
            json!({"task": "landcover", "batches": [999]}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "no batch 999",
        ),
        (
            json!({"task": "landcover", "epochs": 0}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "epochs",
        ),
        (
            json!({"task": "landcover", "model": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "unknown field `model`",
        ),
        (
            json!({"task": "landcover", "batches": [batch], "tables": false}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_samples",
            "tables is false",
        ),
    ];
    for (body, want, code, words) in cases {
        let (status, json) = s
            .send(
                "POST",
                "/api/v1/training",
                Some(&s.tokens.researcher),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(status, want, "{body}: {json}");
        assert!(json["message"].is_string(), "{body}: {json}");
        if !code.is_empty() {
            assert_eq!(json["code"], code, "{body}: {json}");
            assert!(
                json["message"].as_str().unwrap().contains(words),
                "{body}: {json}"
            );
        }
    }
    // A false positive on a register class that is cropland labels annual_crop: then it is
    // accepted (and queued: this service runs no worker).
    let (status, v) = s
        .send(
            "POST",
            "/api/v1/changes/1/verdicts",
            Some(&s.tokens.admin),
            Some(&json!({"verdict": "false_positive", "note": "crop"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, t) = s
        .send(
            "POST",
            "/api/v1/training",
            Some(&s.tokens.admin),
            Some(&json!({"task": "landcover", "tables": false, "epochs": 2}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let (_, got) = s
        .send(
            "GET",
            &format!("/api/v1/training/{}", t["id"]),
            Some(&s.tokens.researcher),
            None,
        )
        .await;
    assert_eq!(got["status"], "queued");
    assert_eq!(
        got["request"],
        json!({"task": "landcover", "batches": [batch], "epochs": 2, "seed": null, "tables": false, "fine_tune": false})
    );
    let (_, list) = s
        .send("GET", "/api/v1/training", Some(&s.tokens.admin), None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Cancelling: not by an inspector; a queued job at once (200); then it is finished (409);
    // no such job (404).
    let cancel = format!("/api/v1/training/{}/cancel", t["id"]);
    let (status, _) = s
        .send("POST", &cancel, Some(&s.tokens.inspector), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, c) = s
        .send("POST", &cancel, Some(&s.tokens.researcher), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(
        (&c["status"], &c["stage"], &c["cancel_requested"]),
        (&json!("cancelled"), &json!("cancelled"), &json!(true))
    );
    assert!(c["finished_at"].is_string(), "{c}");
    let (status, again) = s.send("POST", &cancel, Some(&s.tokens.admin), None).await;
    assert_eq!(
        (status, again),
        (
            StatusCode::CONFLICT,
            json!({"code": "job_finished", "message": format!("training job {} is already cancelled", t["id"])})
        )
    );
    let (status, e) = s
        .send(
            "POST",
            "/api/v1/training/99/cancel",
            Some(&s.tokens.admin),
            None,
        )
        .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[test]
fn verdicts_map_to_land_cover_classes() {
    use gengdi_models::LandCoverClass as C;
    assert_eq!(
        confirmed_class("tree_planting", "orchard"),
        Some(C::Orchard)
    );
    assert_eq!(confirmed_class("tree_planting", "grass"), Some(C::Tree));
    assert_eq!(confirmed_class("fishpond", "water"), Some(C::Water));
    assert_eq!(confirmed_class("construction", "bare"), Some(C::Built));
    assert_eq!(confirmed_class("abandonment", "grass"), Some(C::Grass));
    assert_eq!(confirmed_class("abandonment", "annual_crop"), Some(C::Bare));
    assert_eq!(confirmed_class("non_grain_pbf", "annual_crop"), None);
    for (before, class) in [
        ("0103", Some(C::AnnualCrop)),
        ("旱地", Some(C::AnnualCrop)),
        ("水田", Some(C::AnnualCrop)),
        ("cropland", Some(C::AnnualCrop)),
        ("0201", Some(C::Orchard)),
        ("果园", Some(C::Orchard)),
        ("0301", Some(C::Tree)),
        ("0404", Some(C::Grass)),
        ("其他草地", Some(C::Grass)),
        ("1104", Some(C::Water)),
        ("0702", Some(C::Built)),
        ("1206", Some(C::Bare)),
        ("grass", Some(C::Grass)),
        ("1202", None),
        ("1108", None),
        ("", None),
        ("unknown", None),
    ] {
        assert_eq!(register_class(before), class, "{before}");
    }
}
