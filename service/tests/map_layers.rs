//! The web map's own layers, in-process over the generated season (real GeoTIFFs, the real
//! farmland GeoPackage, the shipped models):
//! - `GET /api/v1/batches/{id}/parcels`: the parcels of a box are exactly the layer's
//!   features whose envelope meets it, read independently with OGR (ids, order, PBF, codes,
//!   area), scoped for inspectors, limited, and read again for a layer stored before (on
//!   request and at start-up);
//! - `GET /tiles/{batch}/{date}/landcover/…`: the land-cover model's classes on the tile
//!   grid, compared with the model run on bands GDAL's `gdalwarp` puts on the same grid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{gdalwarp_tile, tile_of};
use common::{patch, TestService};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::Metadata;
use gengdi_fixtures::season::{generate_season, SeasonSpec};
use gengdi_service::store::Store;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tower::ServiceExt;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Got {
    status: StatusCode,
    content_type: String,
    model: String,
    body: Vec<u8>,
}

async fn get(app: axum::Router, uri: &str, token: &str) -> Got {
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let h = |n: &str| {
        res.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (content_type, model) = (h("content-type"), h("x-model"));
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 28)
        .await
        .unwrap()
        .to_vec();
    Got {
        status,
        content_type,
        model,
        body,
    }
}

fn json_of(g: &Got) -> Value {
    assert_eq!(g.content_type, "application/json", "{}", g.status);
    serde_json::from_slice(&g.body).unwrap()
}

/// A feature of the farmland layer as OGR reads it.
#[derive(Clone, Debug)]
struct Truth {
    tbbh: String,
    pbf: bool,
    zldwdm: String,
    /// Declared area (m²).
    tbmj: f64,
    /// Envelope in longitude / latitude.
    env: [f64; 4],
}

fn read_truth(path: &Path) -> Vec<Truth> {
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(path).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut src = layer.spatial_ref().unwrap();
    src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let t = CoordTransform::new(&src, &wgs).unwrap();
    layer
        .features()
        .map(|f| {
            let s = |n: &str| {
                f.field_as_string(f.field_index(n).unwrap())
                    .unwrap()
                    .unwrap_or_default()
            };
            let mut g = f.geometry().unwrap().clone();
            g.transform_inplace(&t).unwrap();
            let e = g.envelope();
            Truth {
                tbbh: s("TBBH"),
                pbf: s("YJJBNT") == "1",
                zldwdm: s("ZLDWDM"),
                tbmj: f
                    .field_as_double(f.field_index("TBMJ").unwrap())
                    .unwrap()
                    .unwrap(),
                env: [e.MinX, e.MinY, e.MaxX, e.MaxY],
            }
        })
        .collect()
}

fn meets(env: [f64; 4], b: [f64; 4]) -> bool {
    env[2] >= b[0] && env[0] <= b[2] && env[3] >= b[1] && env[1] <= b[3]
}

/// A box of the middle of `truth`'s extent whose edges lie at least 10⁻⁶° from every
/// envelope edge (so that no parcel is decided by rounding).
fn middle_box(truth: &[Truth]) -> [f64; 4] {
    let ext = truth
        .iter()
        .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |a, t| {
            [
                a[0].min(t.env[0]),
                a[1].min(t.env[1]),
                a[2].max(t.env[2]),
                a[3].max(t.env[3]),
            ]
        });
    let (w, h) = (ext[2] - ext[0], ext[3] - ext[1]);
    let mut b = [
        ext[0] + 0.3 * w,
        ext[1] + 0.3 * h,
        ext[0] + 0.65 * w,
        ext[1] + 0.7 * h,
    ];
    for (i, v) in b.iter_mut().enumerate() {
        let edges: Vec<f64> = truth
            .iter()
            .flat_map(|t| {
                if i % 2 == 0 {
                    [t.env[0], t.env[2]]
                } else {
                    [t.env[1], t.env[3]]
                }
            })
            .collect();
        while edges.iter().any(|e| (e - *v).abs() < 1e-6) {
            *v += 3e-6;
        }
    }
    b
}

/// The service over a fresh data dir with the generated season under its import root.
async fn with_season() -> (TestService, PathBuf) {
    let s = common::service().await;
    let season = s.config.import_root.join("season");
    generate_season(&SeasonSpec::default(), &season).unwrap();
    (s, season)
}

/// The parcels of a box: OGR's features there, in the layer's order, with their PBF flag,
/// location code and area; an inspector sees only their county's; `limit` cuts the list
/// and says so; a layer whose parcels were not stored is read again; bad requests are
/// clean errors.
#[tokio::test]
async fn the_parcels_of_a_box_are_the_layers_features_there() {
    let (s, season) = with_season().await;
    let t = &s.tokens;
    let (status, f) = s
        .send(
            "POST",
            "/api/v1/farmland",
            Some(&t.centre),
            Some(&json!({"path": "season/farmland.gpkg"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    let farmland = f["id"].as_i64().unwrap();
    // A done batch over that layer, with one patch in county 640502.
    let batch = s
        .done_batch(
            farmland,
            vec![patch("P1", "abandonment", "640502100200", 5.04, 45.79, 3.0)],
        )
        .await;

    let truth = read_truth(&season.join("farmland.gpkg"));
    assert_eq!(truth.len(), 193);
    let bbox = middle_box(&truth);
    let q = |b: [f64; 4]| format!("{},{},{},{}", b[0], b[1], b[2], b[3]);
    let uri = |extra: &str| format!("/api/v1/batches/{}/parcels?bbox={}{extra}", batch, q(bbox));
    let expected: Vec<&Truth> = truth.iter().filter(|t| meets(t.env, bbox)).collect();
    assert!(
        expected.len() >= 20 && expected.len() < truth.len() / 2,
        "{}",
        expected.len()
    );
    assert!(expected.iter().any(|t| t.pbf) && expected.iter().any(|t| !t.pbf));
    let check = |fc: &Value, want: &[&Truth], total: usize, truncated: bool| {
        assert_eq!(fc["type"], "FeatureCollection");
        assert_eq!(fc["farmland"], farmland);
        assert_eq!(fc["total"], total as i64, "{fc}");
        assert_eq!(fc["truncated"], truncated);
        let features = fc["features"].as_array().unwrap();
        let got: Vec<&str> = features
            .iter()
            .map(|f| f["properties"]["parcel"].as_str().unwrap())
            .collect();
        let want_ids: Vec<&str> = want.iter().map(|t| t.tbbh.as_str()).collect();
        assert_eq!(got, want_ids);
        let mut last_id = 0;
        for (f, t) in features.iter().zip(want) {
            assert_eq!(f["type"], "Feature");
            let id = f["id"].as_i64().unwrap();
            assert!(id > last_id, "ids ascend in the layer's order");
            last_id = id;
            let p = &f["properties"];
            assert_eq!(p["pbf"], t.pbf, "{}", t.tbbh);
            assert!(t.zldwdm.starts_with(p["location_code"].as_str().unwrap()));
            assert!(p["location_code"].as_str().unwrap().len() >= 12);
            // The declared area (m²) and the area on an equal-area projection agree.
            let mu = p["area_mu"].as_f64().unwrap();
            let declared = t.tbmj / (2000.0 / 3.0);
            assert!(
                (mu - declared).abs() <= 0.01 * declared,
                "{mu} vs {declared}"
            );
            assert_eq!(f["geometry"]["type"], "MultiPolygon");
            // The geometry's own box is the parcel's envelope.
            let mut env = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
            for poly in f["geometry"]["coordinates"].as_array().unwrap() {
                for ring in poly.as_array().unwrap() {
                    for pt in ring.as_array().unwrap() {
                        let (x, y) = (pt[0].as_f64().unwrap(), pt[1].as_f64().unwrap());
                        env = [env[0].min(x), env[1].min(y), env[2].max(x), env[3].max(y)];
                    }
                }
            }
            for k in 0..4 {
                assert!((env[k] - t.env[k]).abs() < 2e-7, "{env:?} vs {:?}", t.env);
            }
        }
    };
    for token in [&t.centre, &t.admin, &t.researcher] {
        let g = get(s.app(), &uri(""), token).await;
        assert_eq!(g.status, StatusCode::OK);
        check(&json_of(&g), &expected, expected.len(), false);
    }
    // The county inspector: their county's parcels only; the other county's inspector has
    // no patch in the batch, so no batch.
    let mine: Vec<&Truth> = expected
        .iter()
        .copied()
        .filter(|t| t.zldwdm.starts_with("640502"))
        .collect();
    assert!(!mine.is_empty() && mine.len() < expected.len());
    let g = get(s.app(), &uri(""), &t.inspector).await;
    assert_eq!(g.status, StatusCode::OK);
    check(&json_of(&g), &mine, mine.len(), false);
    let g = get(s.app(), &uri(""), &t.inspector_other).await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    // A limit: the first parcels of the layer's order, with the total.
    let g = get(s.app(), &uri("&limit=5"), &t.centre).await;
    check(&json_of(&g), &expected[..5], expected.len(), true);
    // The whole extent.
    let g = get(
        s.app(),
        &format!(
            "/api/v1/batches/{}/parcels?bbox=-180,-90,180,90&limit=10000",
            batch
        ),
        &t.centre,
    )
    .await;
    let all: Vec<&Truth> = truth.iter().collect();
    check(&json_of(&g), &all, truth.len(), false);
    // A layer whose parcels were not stored (registered before they were) is read again.
    forget_parcels(&s.raw).await;
    assert!(!s.store.parcels_stored(farmland).await.unwrap());
    let g = get(s.app(), &uri(""), &t.centre).await;
    check(&json_of(&g), &expected, expected.len(), false);
    assert!(s.store.parcels_stored(farmland).await.unwrap());
    // … or when the service starts (`start` runs the backfill in the background).
    forget_parcels(&s.raw).await;
    let dyn_store: std::sync::Arc<dyn Store> = s.store.clone();
    gengdi_service::farmland::backfill_parcels(dyn_store).await;
    assert!(s.store.parcels_stored(farmland).await.unwrap());
    let page = s
        .store
        .parcels_in(farmland, &gengdi_service::auth::Scope::All, bbox, 10_000)
        .await
        .unwrap();
    let got: Vec<&str> = page
        .items
        .iter()
        .map(|p| p.attributes.parcel.as_str())
        .collect();
    let want: Vec<&str> = expected.iter().map(|t| t.tbbh.as_str()).collect();
    assert_eq!(got, want);
    // Bad requests.
    for (q, status) in [
        ("", StatusCode::BAD_REQUEST),
        ("?bbox=1,2,3", StatusCode::BAD_REQUEST),
        ("?bbox=3,2,1,4", StatusCode::BAD_REQUEST),
        ("?bbox=1,2,3,4&limit=0", StatusCode::BAD_REQUEST),
        ("?bbox=1,2,3,4&limit=10001", StatusCode::BAD_REQUEST),
        ("?bbox=1,2,3,4&colour=red", StatusCode::BAD_REQUEST),
    ] {
        let g = get(
            s.app(),
            &format!("/api/v1/batches/{}/parcels{q}", batch),
            &t.centre,
        )
        .await;
        assert_eq!(g.status, status, "{q}");
        assert!(json_of(&g)["code"].is_string(), "{q}");
    }
    let g = get(
        s.app(),
        "/api/v1/batches/999/parcels?bbox=1,2,3,4",
        &t.centre,
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
}

/// Land-cover tiles of an analysed batch: the legend names the model that analysed it and
/// a colour per class; a tile's colours are the classes the land-cover model gives the
/// bands GDAL warps onto the tile (bilinear; SCL nearest, its cloud classes transparent);
/// the tile is cached under the model's id, and drawn by that model after another one is
/// made active; an inspector of a county without patches sees no batch.
#[tokio::test]
async fn landcover_tiles_are_the_model_on_the_tile_grid() {
    use gengdi_inference::analysis::PixelClassifier;
    use gengdi_models::{DeviceChoice, Registry};
    use gengdi_service::jobs::analysis_adapter::{load_models, AnalysisExecutor};
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("import");
    let season = import.join("season");
    let generated = generate_season(&SeasonSpec::default(), &season).unwrap();
    let config = gengdi_service::ServiceConfig {
        data_dir: dir.path().join("data"),
        import_root: import.clone(),
        rate_limit: 0.0,
        ..gengdi_service::ServiceConfig::default()
    };
    let store =
        std::sync::Arc::new(gengdi_service::store::SqliteStore::open(&config.data_dir).unwrap());
    let role = gengdi_service::auth::Role::Centre;
    let (_, centre) = common::token(&*store, role, None, "centre").await;
    let (_, other) = common::token(
        &*store,
        gengdi_service::auth::Role::Inspector,
        Some("640522"),
        "inspector 640522",
    )
    .await;
    let registry = Registry::new(root().join("models/weights"));
    let models = load_models(&registry, DeviceChoice::NdArray, true).unwrap();
    let lc_id = models.landcover.id();
    let class_names = models.landcover.class_names();
    let truth_model = load_models(&registry, DeviceChoice::NdArray, false).unwrap();
    let executor = std::sync::Arc::new(
        AnalysisExecutor::new(models, config.tile, config.max_scene_pixels).with_registry(
            gengdi_service::jobs::analysis_adapter::data_dir_registry(&config.data_dir, &registry)
                .unwrap(),
            DeviceChoice::NdArray,
        ),
    );
    let (state, _worker) = gengdi_service::start(&config, store.clone(), executor).unwrap();
    let app = || gengdi_service::app(state.clone());
    let post = |path: &'static str, body: Value| {
        let token = centre.clone();
        let app = app();
        async move {
            let req = Request::post(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (status, f) = post("/api/v1/farmland", json!({"path": "season/farmland.gpkg"})).await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    let scenes: Vec<String> = generated
        .scenes
        .iter()
        .map(|s| format!("season/{}", s.path.file_name().unwrap().to_string_lossy()))
        .collect();
    let (status, b) = post(
        "/api/v1/batches",
        json!({"scenes": scenes, "farmland": f["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    let batch = b["id"].as_i64().unwrap();
    common::wait_done(&*store, batch).await;

    // The legend.
    let g = get(app(), &format!("/tiles/{batch}/landcover.json"), &centre).await;
    assert_eq!(g.status, StatusCode::OK);
    let legend = json_of(&g);
    assert_eq!(legend["model"], lc_id.as_str());
    let classes = legend["classes"].as_array().unwrap();
    assert_eq!(classes.len(), class_names.len());
    let mut colour_code = std::collections::HashMap::new();
    for (i, c) in classes.iter().enumerate() {
        assert_eq!(c["code"], i as u64 + 1);
        assert_eq!(c["name"], class_names[i].as_str());
        let hex = c["colour"].as_str().unwrap();
        let rgb: Vec<u8> = (0..3)
            .map(|k| u8::from_str_radix(&hex[1 + 2 * k..3 + 2 * k], 16).unwrap())
            .collect();
        assert!(
            colour_code
                .insert([rgb[0], rgb[1], rgb[2]], i as u8 + 1)
                .is_none(),
            "two classes share {hex}"
        );
    }
    let g = get(app(), &format!("/tiles/{batch}/landcover.json"), &other).await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);

    // The scene's centre, at zoom 15 (a tile spans about 85 scene pixels of 10 m).
    let scene = generated
        .scenes
        .iter()
        .find(|s| !s.cloudy && !s.nodata_edge)
        .unwrap();
    let date = scene.date.format("%Y-%m-%d").to_string();
    let ds = gdal::Dataset::open(&scene.path).unwrap();
    let gt = ds.geo_transform().unwrap();
    let (w, h) = ds.raster_size();
    let mut src = ds.spatial_ref().unwrap();
    src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_wgs = CoordTransform::new(&src, &wgs).unwrap();
    let (mut xs, mut ys) = (
        vec![gt[0] + gt[1] * w as f64 / 2.0],
        vec![gt[3] + gt[5] * h as f64 / 2.0],
    );
    to_wgs.transform_coords(&mut xs, &mut ys, &mut []).unwrap();
    let z = 15;
    let (x, y) = tile_of(xs[0], ys[0], z);
    let uri = format!("/tiles/{batch}/{date}/landcover/{z}/{x}/{y}.png");
    let g = get(app(), &uri, &centre).await;
    assert_eq!(
        g.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&g.body)
    );
    assert_eq!(g.content_type, "image/png");
    assert_eq!(g.model, lc_id);
    let cached = config.data_dir.join(format!(
        "tiles/{batch}/{date}/landcover/{lc_id}/{z}/{x}/{y}.png"
    ));
    assert_eq!(std::fs::read(&cached).unwrap(), g.body);
    let decoder = png::Decoder::new(std::io::Cursor::new(&g.body));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (256, 256));
    assert_eq!(info.color_type, png::ColorType::Rgba);
    let codes: Vec<u8> = buf[..info.buffer_size()]
        .chunks(4)
        .map(|px| {
            if px[3] == 0 {
                0
            } else {
                assert_eq!(px[3], 255);
                *colour_code
                    .get(&[px[0], px[1], px[2]])
                    .unwrap_or_else(|| panic!("{px:?} is no class's colour"))
            }
        })
        .collect();

    // The truth: the model on the bands gdalwarp puts on the tile.
    let bounds = gengdi_service::api::tiles::tile_bounds(z, x, y);
    let names: Vec<String> = (1..=ds.raster_count())
        .map(|b| ds.rasterband(b).unwrap().description().unwrap())
        .collect();
    let model_bands = truth_model.landcover.bands();
    let idx: Vec<usize> = model_bands
        .iter()
        .map(|b| names.iter().position(|n| n == b).unwrap() + 1)
        .collect();
    let scl = names.iter().position(|n| n == "SCL").unwrap() + 1;
    let refl = gdalwarp_tile(
        &scene.path,
        &idx,
        bounds,
        "bilinear",
        &dir.path().join("w.tif"),
    );
    let mask = gdalwarp_tile(
        &scene.path,
        &[scl],
        bounds,
        "near",
        &dir.path().join("m.tif"),
    );
    let rules = gengdi_inference::rules::RulesConfig::default();
    let dn =
        ndarray::Array3::from_shape_fn((idx.len(), 256, 256), |(b, r, c)| refl[b][r * 256 + c]);
    let valid = ndarray::Array2::from_shape_fn((256, 256), |(r, c)| {
        let m = mask[0][r * 256 + c];
        (0..idx.len()).all(|b| refl[b][r * 256 + c].is_finite())
            && m.is_finite()
            && rules.scl_clear(m as u8)
    });
    let band_refs: Vec<&str> = model_bands.iter().map(String::as_str).collect();
    let truth = truth_model
        .landcover
        .0
        .classify_image(&band_refs, dn.view(), valid.view())
        .unwrap();
    let (mut same, mut clear, mut classes_seen) =
        (0usize, 0usize, std::collections::BTreeSet::new());
    for r in 0..256 {
        for c in 0..256 {
            let want = if valid[[r, c]] {
                truth.codes[[r, c]]
            } else {
                0
            };
            let got = codes[r * 256 + c];
            same += usize::from(want == got);
            clear += usize::from(valid[[r, c]]);
            classes_seen.insert(got);
        }
    }
    assert!(clear > 256 * 256 / 2, "{clear} clear pixels");
    assert!(classes_seen.len() >= 3, "{classes_seen:?}");
    // Another land-cover model made active afterwards: the batch's tiles and legend still
    // come from the model that analysed it (loaded beside the active one).
    let another = registry
        .list()
        .unwrap()
        .into_iter()
        .find(|e| e.task == gengdi_models::Task::LandCover && e.id != lc_id)
        .expect("the registry ships a second land-cover model")
        .id;
    let activated = state.jobs().activate(&another).await.unwrap();
    assert!(activated.is_some());
    let other_date = generated
        .scenes
        .iter()
        .find(|s| s.date != scene.date && !s.cloudy)
        .unwrap()
        .date
        .format("%Y-%m-%d")
        .to_string();
    let g = get(
        app(),
        &format!("/tiles/{batch}/{other_date}/landcover/{z}/{x}/{y}.png"),
        &centre,
    )
    .await;
    assert_eq!(
        g.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&g.body)
    );
    assert_eq!(
        g.model, lc_id,
        "drawn by the batch's model, not the active one"
    );
    let g = get(app(), &format!("/tiles/{batch}/landcover.json"), &centre).await;
    assert_eq!(json_of(&g)["model"], lc_id.as_str());

    // gdalwarp and the stack's warped view may differ in the last bits of a value, which
    // moves a pixel lying on a class boundary (8 of 65,536 when this was written).
    assert!(
        same as f64 >= 0.999 * (256.0 * 256.0),
        "{} of 65536 pixels differ",
        256 * 256 - same
    );
}

/// Remove the stored parcels as a store from before the map had them would lack them.
async fn forget_parcels(raw: &common::RawStore) {
    if !raw.is_postgres() {
        // SQLite's R*Tree of the parcels' boxes (PostGIS indexes the rows themselves).
        raw.execute_raw("DELETE FROM parcel_bbox").await.unwrap();
    }
    raw.execute_raw("DELETE FROM parcels").await.unwrap();
    raw.execute_raw("UPDATE farmland SET parcels_stored = false")
        .await
        .unwrap();
}
