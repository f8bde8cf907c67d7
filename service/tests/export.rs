//! `GET /api/v1/changes?format=…`: the whole (scoped, filtered) selection as GeoJSON, CSV or
//! a GeoPackage, read back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use common::{patch, service, three_patches, TestService};
use gdal::vector::LayerAccess;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn get_raw(s: &TestService, uri: &str, token: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = s.app().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 28)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

/// Three patches, the first with an evidence text that needs quoting in CSV.
fn quoted_patches() -> Vec<gengdi_service::store::NewPatch> {
    let mut p = three_patches();
    p[0].evidence = "water, \"open\" on\ntwo dates".into();
    p[0].admin.county_name = Some("沙坡头区".into());
    p
}

#[tokio::test]
async fn geojson_exports_every_page_of_the_selection() {
    let s = service().await;
    // 2,101 patches: three pages of the export's 1,000.
    let many: Vec<_> = (0..2101)
        .map(|i| {
            let kind = if i % 2 == 0 {
                "fishpond"
            } else {
                "construction"
            };
            patch(
                &format!("p{i}"),
                kind,
                "640502101001",
                105.0 + i as f64 * 0.002,
                37.5,
                1.5,
            )
        })
        .collect();
    s.seed(many).await;
    let (status, headers, body) = get_raw(
        &s,
        "/api/v1/changes?format=geojson&kind=fishpond",
        &s.tokens.centre,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/geo+json");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"changes.geojson\""
    );
    let fc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    let features = fc["features"].as_array().unwrap();
    assert_eq!(features.len(), 1051);
    let ids: Vec<i64> = features.iter().map(|f| f["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (0..1051).map(|i| 2 * i + 1).collect::<Vec<_>>());
    let last = &features[1050];
    assert_eq!(last["properties"]["reference"], "p2100");
    assert_eq!(last["properties"]["kind"], "fishpond");
    assert_eq!(last["geometry"]["type"], "MultiPolygon");
    assert_eq!(
        last["geometry"]["coordinates"][0][0][0],
        json!([109.2, 37.5])
    );
}

#[tokio::test]
async fn geojson_properties_are_the_record_flattened_and_scoped() {
    let s = service().await;
    let (_, batch) = s.seed(quoted_patches()).await;
    let (status, _, body) =
        get_raw(&s, "/api/v1/changes?format=geojson", &s.tokens.inspector).await;
    assert_eq!(status, StatusCode::OK);
    let fc: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<i64> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![1, 2],
        "the inspector of 640502 exports only its patches"
    );
    let f = &fc["features"][0];
    assert_eq!(f["bbox"], json!([105.1, 37.5, 105.101, 37.501]));
    assert_eq!(
        f["properties"],
        json!({
            "id": 1,
            "batch": batch,
            "reference": "a1",
            "kind": "fishpond",
            "status": "open",
            "class_found": "",
            "area_m2": 12.5 * 2000.0 / 3.0,
            "area_mu": 12.5,
            "parcel": "P-a1",
            "pbf": true,
            "county_code": "640502",
            "township_code": "640502101",
            "village_code": "640502101001",
            "group_code": null,
            "location_code": "640502101001",
            "county_name": "沙坡头区",
            "township_name": null,
            "village_name": null,
            "group_name": null,
            "class_before": "cropland",
            "class_after": "water",
            "dates": "2024-04-20;2024-06-10",
            "confidence": 0.9,
            "model_version": "test",
            "evidence": "water, \"open\" on\ntwo dates",
        })
    );
}

#[tokio::test]
async fn csv_has_a_header_quoted_fields_and_wkt() {
    let s = service().await;
    s.seed(quoted_patches()).await;
    let (status, headers, body) = get_raw(
        &s,
        "/api/v1/changes?format=csv&min_mu=5",
        &s.tokens.researcher,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"changes.csv\""
    );
    let mut r = csv::Reader::from_reader(body.as_slice());
    let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(head.len(), 26);
    assert_eq!(
        (
            head[0].as_str(),
            head[3].as_str(),
            head[5].as_str(),
            head[25].as_str()
        ),
        ("id", "kind", "class_found", "geometry_wkt")
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    // min_mu=5: patches 1 (12.5 mu) and 3 (7 mu).
    assert_eq!(rows.len(), 2);
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][col("id")], "1");
    assert_eq!(&rows[1][col("id")], "3");
    assert_eq!(&rows[0][col("evidence")], "water, \"open\" on\ntwo dates");
    assert_eq!(&rows[0][col("pbf")], "1");
    assert_eq!(&rows[0][col("area_mu")], "12.5");
    assert_eq!(&rows[0][col("group_code")], "");
    assert_eq!(
        &rows[1][col("geometry_wkt")],
        "MULTIPOLYGON (((105.6 37.3,105.601 37.3,105.601 37.301,105.6 37.301,105.6 37.3)))"
    );
    // The quoting is in the bytes, not only in the parse.
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("\"water, \"\"open\"\" on\ntwo dates\""),
        "{text}"
    );
}

#[tokio::test]
async fn a_geopackage_export_opens_in_gdal_with_typed_fields() {
    let s = service().await;
    s.seed(quoted_patches()).await;
    let (status, headers, body) = get_raw(&s, "/api/v1/changes?format=gpkg", &s.tokens.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/geopackage+sqlite3"
    );
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"changes.gpkg\""
    );
    // The temporary file under the data dir is gone.
    let exports = s.config.data_dir.join("exports");
    assert_eq!(std::fs::read_dir(&exports).unwrap().count(), 0);

    let path = s.dir.path().join("got.gpkg");
    std::fs::write(&path, &body).unwrap();
    let ds = gdal::Dataset::open(&path).unwrap();
    let mut layer = ds.layer_by_name("changes").unwrap();
    assert_eq!(layer.feature_count(), 3);
    let srs = layer.spatial_ref().unwrap();
    assert_eq!(srs.auth_code().unwrap(), 4326);
    let defn: Vec<(String, u32)> = layer
        .defn()
        .fields()
        .map(|f| (f.name(), f.field_type()))
        .collect();
    assert_eq!(defn.len(), 25);
    assert_eq!(
        defn[0],
        ("id".to_string(), gdal::vector::OGRFieldType::OFTInteger64)
    );
    assert_eq!(
        defn[5],
        (
            "class_found".to_string(),
            gdal::vector::OGRFieldType::OFTString
        )
    );
    assert_eq!(
        defn[7],
        ("area_mu".to_string(), gdal::vector::OGRFieldType::OFTReal)
    );
    let features: Vec<_> = layer.features().collect();
    let f = &features[2];
    let idx = |n: &str| f.field_index(n).unwrap();
    assert_eq!(f.field_as_integer64(idx("id")).unwrap(), Some(3));
    assert_eq!(
        f.field_as_string(idx("kind")).unwrap().as_deref(),
        Some("construction")
    );
    assert_eq!(f.field_as_double(idx("area_mu")).unwrap(), Some(7.0));
    assert_eq!(
        features[0]
            .field_as_string(idx("county_name"))
            .unwrap()
            .as_deref(),
        Some("沙坡头区")
    );
    let g = f.geometry().unwrap();
    assert!((g.area() - 1e-6).abs() < 1e-12, "{}", g.area());
    let e = g.envelope();
    // The square's corners as the test wrote them (37.3 + 0.001 is 37.300999999999995).
    assert_eq!(
        [e.MinX, e.MinY, e.MaxX, e.MaxY],
        [105.6, 37.3, 105.6 + 0.001, 37.3 + 0.001]
    );
}

#[tokio::test]
async fn bad_export_requests_are_400_json_errors() {
    let s = service().await;
    s.seed(three_patches()).await;
    for (query, message) in [
        ("format=shp", "format \"shp\": one of geojson, csv, gpkg"),
        (
            "format=csv&limit=10",
            "limit and cursor page the list; an export (format) holds the whole selection",
        ),
        (
            "format=csv&cursor=1",
            "limit and cursor page the list; an export (format) holds the whole selection",
        ),
        (
            "format=csv&status=gone",
            "status \"gone\": one of open, confirmed, false_positive, rectified",
        ),
    ] {
        let (status, body) = s
            .send(
                "GET",
                &format!("/api/v1/changes?{query}"),
                Some(&s.tokens.admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            body,
            json!({"code": "bad_request", "message": message}),
            "{query}"
        );
    }
}

/// Four patches with verdicts: a false positive on which the inspector found grass, a
/// confirmed abandonment found grass, a false positive with nothing recorded (its register
/// class, cropland, labels), a confirmed construction "found" tree (not one of its kind's
/// classes: built labels).
async fn verdicts_with_class_found(s: &TestService) -> i64 {
    let mut patches = three_patches();
    patches.push(patch(
        "b2",
        "construction",
        "640521100003",
        105.7,
        37.3,
        2.0,
    ));
    let (_, batch) = s.seed(patches).await;
    for (id, verdict, class) in [
        (1, "false_positive", Some("grass")),
        (2, "confirmed", Some("grass")),
        (3, "false_positive", None),
        (4, "confirmed", Some("tree")),
    ] {
        let mut body = json!({"verdict": verdict, "note": "field visit"});
        if let Some(c) = class {
            body["class_found"] = json!(c);
        }
        let (status, v) = s
            .send(
                "POST",
                &format!("/api/v1/changes/{id}/verdicts"),
                Some(&s.tokens.admin),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    batch
}

#[tokio::test]
async fn exports_carry_the_class_found_and_label_as_the_service_does() {
    use gengdi_service::jobs::training::{batch_labels, verdict_file_labels};
    let s = service().await;
    let batch = verdicts_with_class_found(&s).await;
    let want: Vec<(i64, &str, &str)> = vec![
        (1, "false_positive", "grass"),
        (2, "confirmed", "grass"),
        (3, "false_positive", ""),
        (4, "confirmed", "tree"),
    ];

    // GeoJSON: the property.
    let (status, _, geojson) = get_raw(
        &s,
        &format!("/api/v1/changes?format=geojson&batch={batch}"),
        &s.tokens.researcher,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let fc: Value = serde_json::from_slice(&geojson).unwrap();
    let got: Vec<(i64, String, String)> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (
                p["id"].as_i64().unwrap(),
                p["status"].as_str().unwrap().to_string(),
                p["class_found"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want_owned: Vec<(i64, String, String)> = want
        .iter()
        .map(|(i, st, c)| (*i, st.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want_owned);

    // CSV: the column after status.
    let (status, _, csv_bytes) = get_raw(
        &s,
        &format!("/api/v1/changes?format=csv&batch={batch}"),
        &s.tokens.researcher,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut r = csv::Reader::from_reader(csv_bytes.as_slice());
    let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&head[4..6], ["status", "class_found"]);
    let rows: Vec<(i64, String, String)> = r
        .records()
        .map(|x| {
            let x = x.unwrap();
            (x[0].parse().unwrap(), x[4].to_string(), x[5].to_string())
        })
        .collect();
    assert_eq!(rows, want_owned);

    // The exported list read as `gengdi train --verdicts` reads it labels as the service's
    // training does: patch by patch, the same classes.
    let service = batch_labels(&*s.store, batch, true, gengdi_models::Task::LandCover)
        .await
        .unwrap();
    let by_patch = |features: &[(i64, &'static str, Value)]| {
        let mut v: Vec<(i64, &'static str)> = features.iter().map(|(id, c, _)| (*id, *c)).collect();
        v.sort_unstable();
        v
    };
    let expected = vec![(1, "grass"), (2, "grass"), (3, "annual_crop"), (4, "built")];
    assert_eq!(by_patch(&service.features), expected);
    let counts: std::collections::BTreeMap<String, usize> =
        [("annual_crop", 1), ("built", 1), ("grass", 2)]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
    assert_eq!(service.labelled, counts);
    let (status, _, gpkg) = get_raw(
        &s,
        &format!("/api/v1/changes?format=gpkg&batch={batch}"),
        &s.tokens.researcher,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (name, bytes) in [("changes.geojson", &geojson), ("changes.gpkg", &gpkg)] {
        let path = s.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let file = verdict_file_labels(&path).unwrap();
        assert_eq!(by_patch(&file.features), expected, "{name}");
        assert_eq!(file.labelled, counts, "{name}");
        assert_eq!(file.verdicts, service.verdicts, "{name}");
    }
}
