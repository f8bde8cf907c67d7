//! Administrative-boundary layers and a batch's options (`admin`, `baseline`, `rules`):
//! registered and checked at submission (in-process), and run: a batch with options gives
//! exactly what the library pipeline gives for the same request, which differs from what
//! the same scenes give without them (over a real port, with the real models).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::service;
use gengdi_inference::pipeline::{
    self, AdminRequest, AnalysisRequest, CancelToken, FarmlandRequest, NoProgress, OutputRequest,
};
use gengdi_inference::rules::RulesConfig;
use gengdi_models::{DeviceChoice, Registry};
use gengdi_service::jobs::analysis_adapter::{load_models, AnalysisExecutor};
use gengdi_service::store::{ChangeFilter, SqliteStore, Store};
use gengdi_service::ServiceConfig;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn slovenia() -> PathBuf {
    root().join("fixtures/data/eolearn-slovenia-s2")
}

const DATES: [&str; 5] = ["20150711", "20150731", "20150820", "20150830", "20150909"];

fn copy_into(import: &Path, files: &[PathBuf]) {
    std::fs::create_dir_all(import).unwrap();
    for f in files {
        std::fs::copy(f, import.join(f.file_name().unwrap())).unwrap();
    }
}

fn slovenia_scene(date: &str) -> PathBuf {
    slovenia().join(format!("s2l1c_{date}_13band.tif"))
}

#[tokio::test]
async fn admin_layers_are_registered_with_their_units_and_bad_ones_refused() {
    let s = service().await;
    let t = &s.tokens;
    let import = &s.config.import_root;
    copy_into(
        import,
        &[root().join("docs/examples/slovenia-admin.geojson")],
    );
    let (status, a) = s
        .send(
            "POST",
            "/api/v1/admin-layers",
            Some(&t.centre),
            Some(&json!({"path": "slovenia-admin.geojson", "name": "demo units"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["id"], 1);
    assert_eq!(a["name"], "demo units");
    assert_eq!(a["source"], "slovenia-admin.geojson");
    assert_eq!(
        (&a["features"], &a["used"], &a["rejected"]),
        (&json!(3), &json!(3), &json!(0))
    );
    // 640502 (a county), 640502101001 and 640502101002 (villages of township 640502101).
    assert_eq!(
        a["units"],
        json!({"county": 1, "township": 1, "village": 2, "group": 0})
    );
    assert!(a.get("stored_path").is_none(), "{a}");
    let (status, list) = s
        .send("GET", "/api/v1/admin-layers", Some(&t.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], json!([a.clone()]));
    let (status, one) = s
        .send("GET", "/api/v1/admin-layers/1", Some(&t.admin), None)
        .await;
    assert_eq!((status, one), (StatusCode::OK, a));

    // A layer without a code field gives no unit: 400, and nothing is stored.
    std::fs::write(
        import.join("nocodes.geojson"),
        json!({"type": "FeatureCollection", "features": [{"type": "Feature",
            "properties": {"label": "x"},
            "geometry": {"type": "Polygon", "coordinates": [[[14.5, 45.8], [14.6, 45.8], [14.6, 45.9], [14.5, 45.8]]]}}]})
        .to_string(),
    )
    .unwrap();
    let (status, e) = s
        .send(
            "POST",
            "/api/v1/admin-layers",
            Some(&t.admin),
            Some(&json!({"path": "nocodes.geojson"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["message"],
        "nocodes.geojson: no administrative unit in 1 features (1 rejected, the first: no administrative code)"
    );
    // A role unknown to the mapping, a file that is no layer, a path out of the root.
    std::fs::write(import.join("empty.geojson"), b"").unwrap();
    for (body, status, code) in [
        (
            json!({"path": "slovenia-admin.geojson", "mapping": {"county_code": "X"}}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"path": "empty.geojson"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unreadable_input",
        ),
        (
            json!({"path": "../x.geojson"}),
            StatusCode::FORBIDDEN,
            "path_outside_import_root",
        ),
        (
            json!({"path": "slovenia-admin.geojson", "layer": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ] {
        let (got, e) = s
            .send(
                "POST",
                "/api/v1/admin-layers",
                Some(&t.admin),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(
            (got, e["code"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    let (_, list) = s
        .send("GET", "/api/v1/admin-layers", Some(&t.admin), None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Only the stored copy of the one accepted layer is in the data dir.
    let copies = std::fs::read_dir(s.config.data_dir.join("admin"))
        .unwrap()
        .count();
    assert_eq!(copies, 1);
}

#[tokio::test]
async fn a_batch_keeps_its_options_and_refuses_bad_ones() {
    let s = service().await;
    let t = &s.tokens;
    let import = &s.config.import_root;
    copy_into(
        &import.join("scenes"),
        &[slovenia_scene("20150711"), slovenia_scene("20150731")],
    );
    copy_into(
        import,
        &[root().join("docs/examples/slovenia-admin.geojson")],
    );
    let (status, _) = s
        .send(
            "POST",
            "/api/v1/admin-layers",
            Some(&t.admin),
            Some(&json!({"path": "slovenia-admin.geojson"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (farmland, _) = s.seed(Vec::new()).await;
    let good = json!({
        "scenes": ["scenes/s2l1c_20150731_13band.tif"],
        "baseline": ["scenes/s2l1c_20150711_13band.tif"],
        "admin": 1,
        "rules": {"min_patch_mu": 0.25, "tree_fraction": 0.5},
        "farmland": farmland,
    });
    let (status, b) = s
        .send(
            "POST",
            "/api/v1/batches",
            Some(&t.centre),
            Some(&good.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    let (_, got) = s
        .send(
            "GET",
            &format!("/api/v1/batches/{}", b["id"]),
            Some(&t.centre),
            None,
        )
        .await;
    assert_eq!(got["admin"], 1);
    assert_eq!(got["baseline"], json!(["scenes/s2l1c_20150711_13band.tif"]));
    assert_eq!(
        got["rules"],
        json!({"min_patch_mu": 0.25, "tree_fraction": 0.5})
    );
    assert_eq!(got["scenes"], json!(["scenes/s2l1c_20150731_13band.tif"]));
    // A batch without options shows none.
    let plain = json!({"scenes": ["scenes/s2l1c_20150731_13band.tif"], "farmland": farmland});
    let (_, p) = s
        .send(
            "POST",
            "/api/v1/batches",
            Some(&t.centre),
            Some(&plain.to_string()),
        )
        .await;
    let (_, got) = s
        .send(
            "GET",
            &format!("/api/v1/batches/{}", p["id"]),
            Some(&t.centre),
            None,
        )
        .await;
    for field in ["admin", "baseline", "rules"] {
        assert!(got.get(field).is_none(), "{field}: {got}");
    }

    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        b
    };
    let cases = [
        (
            with("rules", json!({"min_patch": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_rules",
            "rules: unknown field `min_patch`",
        ),
        (
            with("rules", json!({"tree_fraction": 2.0})),
            StatusCode::BAD_REQUEST,
            "invalid_rules",
            "rules: tree_fraction = 2 must be between 0 and 1",
        ),
        (
            with("rules", json!([1])),
            StatusCode::BAD_REQUEST,
            "invalid_rules",
            "rules: an object of rule thresholds",
        ),
        (
            with("rules", json!({"min_patch_mu": "big"})),
            StatusCode::BAD_REQUEST,
            "invalid_rules",
            "rules: invalid type: string \"big\", expected f64",
        ),
        (
            with("admin", json!(99)),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "admin: no admin layer 99",
        ),
        (
            with("baseline", json!(["../../etc/passwd"])),
            StatusCode::FORBIDDEN,
            "path_outside_import_root",
            "",
        ),
        (
            with("baseline", json!(["scenes/missing.tif"])),
            StatusCode::BAD_REQUEST,
            "path_not_found",
            "",
        ),
    ];
    for (body, status, code, message) in cases {
        let (got, e) = s
            .send(
                "POST",
                "/api/v1/batches",
                Some(&t.centre),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(
            (got, e["code"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
        if !message.is_empty() {
            assert!(
                e["message"].as_str().unwrap().starts_with(message),
                "{body}: {e}"
            );
        }
    }
    // Only the seeded batch and the two accepted ones exist.
    let (_, all) = s
        .send("GET", "/api/v1/batches", Some(&t.centre), None)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);

    // The options are part of an idempotent request: the same key with other rules is 409.
    let keyed = |body: &Value| {
        axum::http::Request::post("/api/v1/batches")
            .header("authorization", format!("Bearer {}", t.centre))
            .header("content-type", "application/json")
            .header("idempotency-key", "k1")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    let (status, first) = s.send_request(keyed(&good)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, again) = s.send_request(keyed(&good)).await;
    assert_eq!((status, &again["id"]), (StatusCode::ACCEPTED, &first["id"]));
    let (status, e) = s
        .send_request(keyed(&with("rules", json!({"min_patch_mu": 0.5}))))
        .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
}

/// Patches as comparable rows: (reference, kind, area_mu in 1e-6 mu, class before, class
/// after, county code, village code).
type Row = (
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn library_rows(req: &AnalysisRequest, models: &pipeline::Models) -> Vec<Row> {
    let out = pipeline::run(req, models, &NoProgress, &CancelToken::new()).unwrap();
    let mut rows: Vec<Row> = out
        .result
        .patches
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                p.kind.to_string(),
                (p.area_mu * 1e6).round() as i64,
                p.class_before.clone(),
                p.class_after.clone(),
                p.county_code.clone(),
                p.village_code.clone(),
            )
        })
        .collect();
    rows.sort();
    rows
}

async fn stored_rows(store: &SqliteStore, batch: i64) -> Vec<Row> {
    let page = store
        .list_changes(
            &gengdi_service::auth::Scope::All,
            &ChangeFilter {
                batch: Some(batch),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.next_after.is_none());
    let mut rows: Vec<Row> = page
        .items
        .into_iter()
        .map(|p| {
            (
                p.reference,
                p.kind,
                (p.area_mu * 1e6).round() as i64,
                p.class_before,
                p.class_after,
                p.admin.county_code,
                p.admin.village_code,
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_with_its_admin_layer_baseline_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("import");
    let season: Vec<PathBuf> = DATES[1..].iter().map(|d| slovenia_scene(d)).collect();
    let baseline = slovenia_scene(DATES[0]);
    copy_into(&import.join("season"), &season);
    copy_into(&import.join("baseline"), std::slice::from_ref(&baseline));
    copy_into(
        &import,
        &[
            slovenia().join("lulc_raba_polygons.gpkg"),
            root().join("docs/examples/slovenia-admin.geojson"),
        ],
    );
    let config = ServiceConfig {
        data_dir: dir.path().join("data"),
        import_root: import.clone(),
        tile: 64,
        rate_limit: 0.0,
        ..ServiceConfig::default()
    };
    let store = Arc::new(SqliteStore::open(&config.data_dir).unwrap());
    let (_, token) =
        common::token(&*store, gengdi_service::auth::Role::Centre, None, "centre").await;
    let registry = Registry::new(root().join("models/weights"));
    let models = load_models(&registry, DeviceChoice::NdArray, true).unwrap();
    let library_models = load_models(&registry, DeviceChoice::NdArray, true).unwrap();
    let executor = Arc::new(AnalysisExecutor::new(
        models,
        config.tile,
        config.max_scene_pixels,
    ));
    let (state, worker) = gengdi_service::start(&config, store.clone(), executor).unwrap();
    let post = |path: &'static str, body: Value| {
        let state = state.clone();
        let token = token.clone();
        async move {
            use tower::ServiceExt;
            let req = axum::http::Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let res = gengdi_service::app(state).oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (status, f) = post(
        "/api/v1/farmland",
        json!({"path": "lulc_raba_polygons.gpkg", "mapping": {"land_class": "RABA_ID"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    let (status, a) = post(
        "/api/v1/admin-layers",
        json!({"path": "slovenia-admin.geojson"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let rules = RulesConfig::load(&root().join("fixtures/slovenia-rules.toml")).unwrap();
    let scenes: Vec<String> = DATES[1..]
        .iter()
        .map(|d| format!("season/s2l1c_{d}_13band.tif"))
        .collect();
    let (status, with) = post(
        "/api/v1/batches",
        json!({"scenes": scenes, "farmland": f["id"], "admin": a["id"],
               "baseline": [format!("baseline/s2l1c_{}_13band.tif", DATES[0])],
               "rules": serde_json::to_value(&rules).unwrap()}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{with}");
    let (status, without) = post(
        "/api/v1/batches",
        json!({"scenes": scenes, "farmland": f["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{without}");
    let (with, without) = (
        with["id"].as_i64().unwrap(),
        without["id"].as_i64().unwrap(),
    );
    for id in [with, without] {
        common::wait_done(&*store, id).await;
    }

    // The same requests through the library.
    let mut req = AnalysisRequest {
        scenes: season.clone(),
        baseline: Vec::new(),
        farmland: FarmlandRequest {
            path: slovenia().join("lulc_raba_polygons.gpkg"),
            layer: None,
            fields: Some("land_class=RABA_ID".into()),
        },
        admin: None,
        scene_options: Default::default(),
        rules: RulesConfig::default(),
        tile_size: 64,
        crop_type: true,
        outputs: OutputRequest::default(),
        checkpoint: None,
    };
    let plain = library_rows(&req, &library_models);
    req.baseline = vec![baseline];
    req.admin = Some(AdminRequest {
        path: root().join("docs/examples/slovenia-admin.geojson"),
        fields: None,
    });
    req.rules = rules;
    let optioned = library_rows(&req, &library_models);

    let (got_with, got_without) = (
        stored_rows(&store, with).await,
        stored_rows(&store, without).await,
    );
    assert_eq!(got_without, plain);
    assert_eq!(got_with, optioned);
    assert_ne!(optioned, plain, "the options change the result");
    assert!(!optioned.is_empty());
    // The admin layer coded the parcels (the farmland layer carries no unit codes) ...
    assert!(plain.iter().all(|r| r.5.is_none()), "{plain:?}");
    assert!(
        optioned.iter().any(|r| r.5.as_deref() == Some("640502")),
        "{optioned:?}"
    );
    // Each stored patch carries its parcel's evidence over the season, as the library
    // measured it; lists leave it out.
    let out = pipeline::run(&req, &library_models, &NoProgress, &CancelToken::new()).unwrap();
    let page = store
        .list_changes(
            &gengdi_service::auth::Scope::All,
            &ChangeFilter {
                batch: Some(with),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.items.iter().all(|p| p.series.is_none()));
    for p in &page.items {
        let stored = store
            .change(&gengdi_service::auth::Scope::All, p.id)
            .await
            .unwrap()
            .unwrap()
            .series
            .unwrap();
        let parcel = out
            .result
            .parcels
            .iter()
            .find(|s| s.parcel_id == p.parcel)
            .unwrap();
        assert_eq!(
            stored,
            gengdi_service::jobs::analysis_adapter::series(
                parcel,
                &out.result.dates,
                &out.result.class_names
            )
        );
        assert_eq!(stored.dates.len(), DATES.len() - 1);
        assert_eq!(stored.classes, out.result.class_names);
        for d in &stored.dates {
            if d.clear_pixels > 0 {
                let sum: f32 = d.class_fractions.values().sum();
                assert!((sum - 1.0).abs() < 1e-3, "{d:?}");
            } else {
                assert!(d.class_fractions.is_empty() && d.ndvi.is_none(), "{d:?}");
            }
        }
        assert!(
            stored.kinds.get(&p.kind).copied().unwrap_or(0) > 0 || p.kind == "non_grain_pbf",
            "{p:?} {stored:?}"
        );
    }
    // ... and the baseline is part of the result (classes before, from its date).
    req.baseline.clear();
    assert_ne!(
        library_rows(&req, &library_models),
        optioned,
        "the baseline matters"
    );
    state.jobs().shutdown();
    worker.await.unwrap();
}
