//! The API in-process: authentication, the role × endpoint matrix, inspector scoping, paths
//! outside the import root, clean 4xx on bad requests, verdicts (with the class found on the
//! ground) and their audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{service, three_patches};
use gengdi_service::auth::Role;
use serde_json::json;

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let s = service().await;
    let (status, body) = s.send("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn missing_wrong_and_revoked_tokens_are_401_with_a_json_error() {
    let s = service().await;
    let cases = [
        (None, "missing Authorization: Bearer TOKEN header"),
        (Some("gd_0000"), "unknown token"),
        (
            Some(s.tokens.revoked.as_str()),
            "the token has been revoked",
        ),
    ];
    for (token, message) in cases {
        let (status, body) = s.send("GET", "/api/v1/farmland", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body, json!({"code": "unauthorized", "message": message}));
    }
    let req = Request::get("/api/v1/changes")
        .header(header::AUTHORIZATION, format!("Basic {}", s.tokens.admin))
        .body(Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(s.app(), req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

/// Every endpoint with a request each role may or may not make; the statuses say which
/// (403 = refused by role; anything else = the handler ran). `/healthz` and `/metrics` take
/// no token (tests `healthz_answers_without_a_token`, `metrics.rs`).
#[tokio::test]
async fn each_role_reaches_exactly_its_endpoints() {
    let s = service().await;
    let (farmland, batch) = s.seed(three_patches()).await;
    let missing = json!({"path": "missing.gpkg"}).to_string();
    let bad_batch = json!({"scenes": ["missing.tif"], "farmland": farmland}).to_string();
    let verdict = json!({"verdict": "confirmed", "note": "seen"}).to_string();
    use StatusCode as S;
    const F: S = S::FORBIDDEN;
    // [admin, centre, inspector (640502), researcher]
    let matrix: Vec<(&str, String, Option<&str>, [S; 4])> = vec![
        (
            "POST",
            "/api/v1/farmland".into(),
            Some(&missing),
            [S::BAD_REQUEST, S::BAD_REQUEST, F, F],
        ),
        ("GET", "/api/v1/farmland".into(), None, [S::OK, S::OK, F, F]),
        (
            "POST",
            "/api/v1/admin-layers".into(),
            Some(&missing),
            [S::BAD_REQUEST, S::BAD_REQUEST, F, F],
        ),
        (
            "GET",
            "/api/v1/admin-layers".into(),
            None,
            [S::OK, S::OK, F, F],
        ),
        // No admin layer 1: the handler ran (404), the role was let through.
        (
            "GET",
            "/api/v1/admin-layers/1".into(),
            None,
            [S::NOT_FOUND, S::NOT_FOUND, F, F],
        ),
        (
            "GET",
            format!("/api/v1/farmland/{farmland}"),
            None,
            [S::OK, S::OK, F, F],
        ),
        (
            "POST",
            "/api/v1/batches".into(),
            Some(&bad_batch),
            [S::BAD_REQUEST, S::BAD_REQUEST, F, F],
        ),
        ("GET", "/api/v1/batches".into(), None, [S::OK, S::OK, F, F]),
        (
            "GET",
            format!("/api/v1/batches/{batch}"),
            None,
            [S::OK, S::OK, F, F],
        ),
        (
            "POST",
            format!("/api/v1/batches/{batch}/cancel"),
            None,
            [S::CONFLICT, S::CONFLICT, F, F],
        ),
        (
            "GET",
            "/api/v1/changes".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        (
            "GET",
            "/api/v1/changes?format=geojson".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        (
            "GET",
            "/api/v1/changes/1".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        (
            "GET",
            "/api/v1/changes/1/verdicts".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        // The seeded batch's scene file does not exist: the chip cannot be drawn (422)
        // once the handler runs (service/tests/chips.rs draws real ones).
        (
            "GET",
            "/api/v1/changes/1/chips/2024-04-20.png".into(),
            None,
            [S::UNPROCESSABLE_ENTITY; 4],
        ),
        // Likewise a tile (service/tests/chips.rs draws real ones); the inspector's region
        // holds patches of the batch.
        (
            "GET",
            format!("/tiles/{batch}/2024-04-20/true/15/25941/12697.png"),
            None,
            [S::UNPROCESSABLE_ENTITY; 4],
        ),
        ("GET", "/api/v1/me".into(), None, [S::OK; 4]),
        (
            "POST",
            "/api/v1/changes/1/verdicts".into(),
            Some(&verdict),
            [S::CREATED, F, S::CREATED, F],
        ),
        (
            "GET",
            "/api/v1/models".into(),
            None,
            [S::OK, S::OK, F, S::OK],
        ),
        (
            "GET",
            "/api/v1/models/lc-1".into(),
            None,
            [S::NOT_FOUND, S::NOT_FOUND, F, S::NOT_FOUND],
        ),
        (
            "GET",
            "/api/v1/stats?level=township".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        // Training and activation: admin and researcher (this service has no registry: 400;
        // no verdict labels a class and no tables: 422).
        (
            "POST",
            "/api/v1/models/lc-1/activate".into(),
            None,
            [S::BAD_REQUEST, F, F, S::BAD_REQUEST],
        ),
        (
            "POST",
            "/api/v1/training".into(),
            Some(r#"{"task": "landcover", "tables": false, "batches": []}"#),
            [S::UNPROCESSABLE_ENTITY, F, F, S::UNPROCESSABLE_ENTITY],
        ),
        ("GET", "/api/v1/training".into(), None, [S::OK, F, F, S::OK]),
        (
            "GET",
            "/api/v1/training/1".into(),
            None,
            [S::NOT_FOUND, F, F, S::NOT_FOUND],
        ),
        (
            "POST",
            "/api/v1/training/1/cancel".into(),
            None,
            [S::NOT_FOUND, F, F, S::NOT_FOUND],
        ),
    ];
    for (method, uri, body, expected) in &matrix {
        for (role, want) in Role::ALL.iter().zip(expected) {
            let (status, json) = s.send(method, uri, Some(s.tokens.of(*role)), *body).await;
            assert_eq!(status, *want, "{role} {method} {uri}: {json}");
            if status == F {
                assert_eq!(json["code"], "forbidden");
                assert_eq!(json["details"]["role"], role.name());
            }
        }
    }
    // The two verdicts (admin's, the inspector's) are on patch 1.
    let (_, v) = s
        .send(
            "GET",
            "/api/v1/changes/1/verdicts",
            Some(&s.tokens.admin),
            None,
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_inspector_sees_and_verifies_only_their_county() {
    let s = service().await;
    s.seed(three_patches()).await;
    let ids = |v: &serde_json::Value| -> Vec<i64> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let (_, all) = s
        .send("GET", "/api/v1/changes", Some(&s.tokens.centre), None)
        .await;
    assert_eq!((ids(&all), all["total"].clone()), (vec![1, 2, 3], json!(3)));

    let (_, mine) = s
        .send("GET", "/api/v1/changes", Some(&s.tokens.inspector), None)
        .await;
    assert_eq!((ids(&mine), mine["total"].clone()), (vec![1, 2], json!(2)));
    // Asking for another county's region does not widen the scope.
    let (_, other) = s
        .send(
            "GET",
            "/api/v1/changes?region=640521",
            Some(&s.tokens.inspector),
            None,
        )
        .await;
    assert_eq!(other, json!({"items": [], "next_cursor": null, "total": 0}));
    let (_, theirs) = s
        .send(
            "GET",
            "/api/v1/changes",
            Some(&s.tokens.inspector_other),
            None,
        )
        .await;
    assert_eq!((ids(&theirs), theirs["total"].clone()), (vec![3], json!(1)));
    let (_, none) = s
        .send(
            "GET",
            "/api/v1/changes",
            Some(&s.tokens.inspector_empty),
            None,
        )
        .await;
    assert_eq!(none, json!({"items": [], "next_cursor": null, "total": 0}));

    // A patch of the first county is not there for the other county's inspector.
    for (method, uri, body) in [
        ("GET", "/api/v1/changes/1", None),
        ("GET", "/api/v1/changes/1/verdicts", None),
        ("GET", "/api/v1/changes/1/chips/2024-04-20.png", None),
        (
            "POST",
            "/api/v1/changes/1/verdicts",
            Some(r#"{"verdict":"confirmed","note":""}"#),
        ),
    ] {
        let (status, body) = s
            .send(method, uri, Some(&s.tokens.inspector_other), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(body, json!({"code": "not_found", "message": "no change 1"}));
    }
    let (status, _) = s
        .send("GET", "/api/v1/changes/3", Some(&s.tokens.inspector), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing was recorded by the refused verdict.
    let (_, p1) = s
        .send("GET", "/api/v1/changes/1", Some(&s.tokens.admin), None)
        .await;
    assert_eq!(
        (p1["status"].clone(), p1["verdicts"].clone()),
        (json!("open"), json!([]))
    );
}

#[tokio::test]
async fn change_lists_filter_and_page_by_keyset_cursor() {
    let s = service().await;
    let mut patches = three_patches();
    patches[1].pbf = false;
    let (_, batch) = s.seed(patches).await;
    let (_, b) = s
        .send(
            "GET",
            &format!("/api/v1/batches/{batch}"),
            Some(&s.tokens.admin),
            None,
        )
        .await;
    let today = b["created_at"].as_str().unwrap()[..10].to_string();
    let admin = Some(s.tokens.admin.as_str());
    let (_, p1) = s.send("GET", "/api/v1/changes?limit=2", admin, None).await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        (p1["next_cursor"].clone(), p1["total"].clone()),
        (json!("2"), json!(3))
    );
    let (_, p2) = s
        .send("GET", "/api/v1/changes?limit=2&cursor=2", admin, None)
        .await;
    assert_eq!(p2["items"][0]["id"], 3);
    assert_eq!(
        (p2["next_cursor"].clone(), p2["total"].clone()),
        (json!(null), json!(3))
    );
    for (query, ids) in [
        ("kind=fishpond", vec![1]),
        ("min_mu=5", vec![1, 3]),
        ("region=640502104", vec![2]),
        ("bbox=105.15,37.2,105.7,37.6", vec![2, 3]),
        ("bbox=105.1005,37.5005,105.1006,37.5006", vec![1]),
        ("status=open&kind=construction", vec![3]),
        (&format!("batch={batch}"), vec![1, 2, 3]),
        ("batch=999", vec![]),
        ("pbf=true", vec![1, 3]),
        ("pbf=false", vec![2]),
        (&format!("from={today}&to={today}"), vec![1, 2, 3]),
        ("from=2999-01-01", vec![]),
        ("to=2000-01-01", vec![]),
    ] {
        let (status, page) = s
            .send("GET", &format!("/api/v1/changes?{query}"), admin, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        let got: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert_eq!(got, ids, "{query}");
        assert_eq!(page["total"], json!(ids.len()), "{query}");
    }
    let (_, one) = s.send("GET", "/api/v1/changes/1", admin, None).await;
    assert_eq!(one["admin"]["county_code"], "640502");
    assert_eq!(one["area_mu"], 12.5);
    assert_eq!(one["bbox"], json!([105.1, 37.5, 105.101, 37.501]));
    assert_eq!(one["geometry"]["type"], "MultiPolygon");
    assert_eq!(
        one["geometry"]["coordinates"][0][0]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn paths_outside_the_import_root_are_refused() {
    let s = service().await;
    let (farmland, _) = s.seed(vec![]).await;
    let outside = s.dir.path().join("outside.gpkg");
    std::fs::write(&outside, "not a layer").unwrap();
    std::os::unix::fs::symlink(&outside, s.config.import_root.join("link.gpkg")).unwrap();
    let admin = Some(s.tokens.admin.as_str());
    for path in [
        "../outside.gpkg",
        "sub/../../outside.gpkg",
        outside.to_str().unwrap(),
        "/etc/passwd",
        "link.gpkg",
    ] {
        let (status, body) = s
            .send(
                "POST",
                "/api/v1/farmland",
                admin,
                Some(&json!({"path": path}).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["code"], "path_outside_import_root");
        let (status, body) = s
            .send(
                "POST",
                "/api/v1/batches",
                admin,
                Some(&json!({"scenes": [path], "farmland": farmland}).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["code"], "path_outside_import_root");
    }
    // Nothing was copied into the data dir.
    assert!(!s.config.data_dir.join("farmland").exists());
}

#[tokio::test]
async fn remote_scenes_are_accepted_only_under_the_allowed_prefixes() {
    let s = common::service_with(|c| c.remote_prefixes = vec!["s3://scenes/t50/".into()]).await;
    let (farmland, _) = s.seed(vec![]).await;
    let admin = Some(s.tokens.admin.as_str());
    let post = |scene: &'static str| {
        let body = json!({"scenes": [scene], "farmland": farmland}).to_string();
        let s = &s;
        async move { s.send("POST", "/api/v1/batches", admin, Some(&body)).await }
    };
    for bad in [
        "s3://scenes/t500/a.tif",
        "s3://scenes/t50/../private/a.tif",
        "s3://other/t50/a.tif",
        "https://example.invalid/t50/a.tif",
    ] {
        let (status, body) = post(bad).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}: {body}");
        assert_eq!(body["code"], "remote_scene_not_allowed");
        assert_eq!(body["details"]["scene"], bad);
    }
    let (status, body) = post("s3://scenes/t50/2024/a.tif").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, b) = s
        .send(
            "GET",
            &format!("/api/v1/batches/{}", body["id"]),
            admin,
            None,
        )
        .await;
    assert_eq!(b["scenes"], json!(["s3://scenes/t50/2024/a.tif"]));
    // Without prefixes, no remote scene at all.
    let none = service().await;
    let (farmland, _) = none.seed(vec![]).await;
    let (status, body) = none
        .send(
            "POST",
            "/api/v1/batches",
            Some(none.tokens.admin.as_str()),
            Some(&json!({"scenes": ["s3://scenes/t50/a.tif"], "farmland": farmland}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("none is allowed"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_requests_get_clean_json_errors() {
    let s = service().await;
    let admin = Some(s.tokens.admin.as_str());
    let cases: Vec<(&str, &str, Option<String>, StatusCode, &str)> = vec![
        (
            "POST",
            "/api/v1/farmland",
            Some("{\"path\": ".into()),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "POST",
            "/api/v1/farmland",
            Some(r#"{"path": "a.gpkg", "colour": 1}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/farmland",
            Some(r#"{"path": 7}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/batches",
            Some(r#"{"farmland": 1}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/changes/1/verdicts",
            Some(r#"{"verdict": "maybe"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/farmland",
            Some(format!(r#"{{"path": "{}"}}"#, "a".repeat(5000))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "POST",
            "/api/v1/farmland",
            Some(r#"{"path": "a.gpkg", "mapping": {"colour": "X"}}"#.into()),
            StatusCode::BAD_REQUEST,
            "path_not_found",
        ),
        (
            "GET",
            "/api/v1/changes?colour=red",
            None,
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/changes?limit=0",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/changes?status=closed",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/changes?region=64%25",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/changes?bbox=1,2,3",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/changes?cursor=abc",
            None,
            StatusCode::BAD_REQUEST,
            "bad_cursor",
        ),
        (
            "GET",
            "/api/v1/changes/abc",
            None,
            StatusCode::BAD_REQUEST,
            "bad_path",
        ),
        (
            "GET",
            "/api/v1/nothing",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "DELETE",
            "/api/v1/changes/1",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, uri, body, want, code) in cases {
        let (status, json) = s.send(method, uri, admin, body.as_deref()).await;
        assert_eq!(
            (status, json["code"].as_str()),
            (want, Some(code)),
            "{method} {uri}: {json}"
        );
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // JSON without its content type.
    let req = Request::post("/api/v1/farmland")
        .header(header::AUTHORIZATION, format!("Bearer {}", s.tokens.admin))
        .body(Body::from(r#"{"path": "a.gpkg"}"#))
        .unwrap();
    let (status, json) = s.send_request(req).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
}

#[tokio::test]
async fn a_verdict_sets_the_status_and_appends_to_an_audit_table_nothing_rewrites() {
    let s = service().await;
    s.seed(three_patches()).await;
    let inspector = Some(s.tokens.inspector.as_str());
    let (status, first) = s
        .send(
            "POST",
            "/api/v1/changes/2/verdicts",
            inspector,
            Some(r#"{"verdict":"confirmed","note":"pond dug"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (first["patch"].clone(), first["status"].clone()),
        (json!(2), json!("confirmed"))
    );
    let (_, second) = s
        .send(
            "POST",
            "/api/v1/changes/2/verdicts",
            inspector,
            Some(r#"{"verdict":"rectified","note":"filled"}"#),
        )
        .await;
    assert_eq!(second["status"], "rectified");
    let (_, list) = s
        .send("GET", "/api/v1/changes?status=rectified", inspector, None)
        .await;
    assert_eq!(list["total"], 1);
    let (_, trail) = s
        .send("GET", "/api/v1/changes/2/verdicts", inspector, None)
        .await;
    let rows: Vec<(String, String, String, String, String, String)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let f = |k: &str| v[k].as_str().unwrap().to_string();
            (
                f("verdict"),
                f("from_status"),
                f("to_status"),
                f("note"),
                f("actor"),
                f("role"),
            )
        })
        .collect();
    let row = |a: &str, b: &str, c: &str, d: &str| {
        (
            a.into(),
            b.into(),
            c.into(),
            d.into(),
            "inspector 640502".into(),
            "inspector".into(),
        )
    };
    assert_eq!(
        rows,
        vec![
            row("confirmed", "open", "confirmed", "pond dug"),
            row("rectified", "confirmed", "rectified", "filled")
        ]
    );
    for statement in [
        "UPDATE verdicts SET note = 'edited'",
        "DELETE FROM verdicts",
    ] {
        let err = s.raw.execute_raw(statement).await.unwrap_err();
        assert!(
            err.to_string().contains("verdicts are append-only"),
            "{statement}: {err}"
        );
    }
    let (_, again) = s
        .send("GET", "/api/v1/changes/2/verdicts", inspector, None)
        .await;
    assert_eq!(again, trail);
}

#[tokio::test]
async fn a_verdict_records_the_class_found_on_the_ground_with_the_patch() {
    let s = service().await;
    s.seed(three_patches()).await;
    let inspector = Some(s.tokens.inspector.as_str());
    let post = |patch: i64, body: serde_json::Value| {
        let s = &s;
        async move {
            s.send(
                "POST",
                &format!("/api/v1/changes/{patch}/verdicts"),
                inspector,
                Some(&body.to_string()),
            )
            .await
        }
    };
    // A false positive on which the inspector found grass: the verdict and the patch keep it.
    let (status, v) = post(
        1,
        json!({"verdict": "false_positive", "note": "grass, no pond", "class_found": "grass"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            &v["status"],
            &v["verdict"]["class_found"],
            &v["verdict"]["note"]
        ),
        (
            &json!("false_positive"),
            &json!("grass"),
            &json!("grass, no pond")
        )
    );
    // Without one (absent, null or empty): not recorded, stored empty.
    for (patch, body) in [
        (2, json!({"verdict": "confirmed"})),
        (2, json!({"verdict": "confirmed", "class_found": null})),
        (2, json!({"verdict": "confirmed", "class_found": ""})),
    ] {
        let (status, v) = post(patch, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {v}");
        assert_eq!(v["verdict"]["class_found"], "", "{body}");
    }
    let class_of = |list: &serde_json::Value| -> Vec<(i64, String, String)> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_i64().unwrap(),
                    p["status"].as_str().unwrap().to_string(),
                    p["class_found"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (_, list) = s.send("GET", "/api/v1/changes", inspector, None).await;
    assert_eq!(
        class_of(&list),
        vec![
            (1, "false_positive".into(), "grass".into()),
            (2, "confirmed".into(), String::new()),
        ]
    );
    // A later verdict sets the patch's class with its status (blanks around a name dropped);
    // a rectified one leaves it empty again. The audit table keeps each verdict's.
    let (status, v) = post(1, json!({"verdict": "confirmed", "class_found": " water "})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["verdict"]["class_found"], "water");
    let (_, detail) = s.send("GET", "/api/v1/changes/1", inspector, None).await;
    assert_eq!(
        (&detail["status"], &detail["class_found"]),
        (&json!("confirmed"), &json!("water"))
    );
    let (status, v) = post(1, json!({"verdict": "rectified", "note": "refilled"})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (_, detail) = s.send("GET", "/api/v1/changes/1", inspector, None).await;
    assert_eq!(
        (&detail["status"], &detail["class_found"]),
        (&json!("rectified"), &json!(""))
    );
    let trail: Vec<(String, String)> = detail["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["verdict"].as_str().unwrap().to_string(),
                v["class_found"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        trail,
        vec![
            ("false_positive".into(), "grass".into()),
            ("confirmed".into(), "water".into()),
            ("rectified".into(), String::new()),
        ]
    );
    let (_, list) = s
        .send("GET", "/api/v1/changes?status=rectified", inspector, None)
        .await;
    assert_eq!(
        class_of(&list),
        vec![(1, "rectified".into(), String::new())]
    );
}

#[tokio::test]
async fn a_class_found_that_is_no_land_cover_class_or_comes_with_rectified_is_400() {
    let s = service().await;
    s.seed(three_patches()).await;
    let allowed = json!([
        "annual_crop",
        "orchard",
        "tree",
        "grass",
        "bare",
        "water",
        "built"
    ]);
    let names = "annual_crop, orchard, tree, grass, bare, water, built";
    for (body, message, details) in [
        (
            json!({"verdict": "false_positive", "class_found": "forest"}),
            format!("class_found \"forest\": not a land-cover class; one of {names} (or empty: not recorded)"),
            json!({"field": "class_found", "value": "forest", "allowed": allowed}),
        ),
        (
            json!({"verdict": "confirmed", "class_found": "Grass"}),
            format!("class_found \"Grass\": not a land-cover class; one of {names} (or empty: not recorded)"),
            json!({"field": "class_found", "value": "Grass", "allowed": allowed}),
        ),
        (
            json!({"verdict": "rectified", "class_found": "grass"}),
            "class_found \"grass\" with verdict rectified: a rectified patch was restored to cropland; class_found records what a confirmed or false_positive verdict found on the ground".to_string(),
            json!({"field": "class_found", "value": "grass", "verdict": "rectified", "allowed_with": ["confirmed", "false_positive"]}),
        ),
    ] {
        let (status, e) = s
            .send(
                "POST",
                "/api/v1/changes/1/verdicts",
                Some(&s.tokens.inspector),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(
            e,
            json!({"code": "invalid_class_found", "message": message, "details": details}),
            "{body}"
        );
    }
    // Not a string: the body does not parse (422, as any mistyped field).
    let (status, e) = s
        .send(
            "POST",
            "/api/v1/changes/1/verdicts",
            Some(&s.tokens.inspector),
            Some(r#"{"verdict": "confirmed", "class_found": 3}"#),
        )
        .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body")),
        "{e}"
    );
    // Nothing was recorded.
    let (_, detail) = s
        .send("GET", "/api/v1/changes/1", Some(&s.tokens.admin), None)
        .await;
    assert_eq!(
        (
            &detail["status"],
            &detail["class_found"],
            &detail["verdicts"]
        ),
        (&json!("open"), &json!(""), &json!([]))
    );
}

#[tokio::test]
async fn a_batch_is_idempotent_by_key_and_cancellable_while_queued() {
    let s = service().await;
    let (farmland, _) = s.seed(vec![]).await;
    std::fs::write(s.config.import_root.join("a.tif"), "x").unwrap();
    let body = json!({"scenes": ["a.tif"], "farmland": farmland, "name": "spring"}).to_string();
    let post = |key: &'static str, body: String| {
        Request::post("/api/v1/batches")
            .header(header::AUTHORIZATION, format!("Bearer {}", s.tokens.centre))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key)
            .body(Body::from(body))
            .unwrap()
    };
    let (status, first) = s.send_request(post("k1", body.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first, json!({"id": 2, "status": "queued"}));
    let (status, again) = s.send_request(post("k1", body.clone())).await;
    assert_eq!((status, again), (StatusCode::ACCEPTED, first.clone()));
    let other = json!({"scenes": ["a.tif"], "farmland": farmland}).to_string();
    let (status, reused) = s.send_request(post("k1", other)).await;
    assert_eq!(
        (status, reused["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    let (_, list) = s
        .send("GET", "/api/v1/batches", Some(&s.tokens.centre), None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (_, b) = s
        .send("GET", "/api/v1/batches/2", Some(&s.tokens.centre), None)
        .await;
    assert_eq!(b["scenes"], json!(["a.tif"]));
    assert_eq!(
        b["progress"],
        json!({"stage": "queued", "tiles_done": 0, "tiles_total": 0})
    );
    let (status, c) = s
        .send(
            "POST",
            "/api/v1/batches/2/cancel",
            Some(&s.tokens.centre),
            None,
        )
        .await;
    assert_eq!(
        (status, c["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (status, c) = s
        .send(
            "POST",
            "/api/v1/batches/2/cancel",
            Some(&s.tokens.centre),
            None,
        )
        .await;
    assert_eq!(
        (status, c["code"].as_str()),
        (StatusCode::CONFLICT, Some("job_finished"))
    );
    let (status, _) = s
        .send(
            "POST",
            "/api/v1/batches/9/cancel",
            Some(&s.tokens.centre),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        s.store.claim_job().await.unwrap().is_none(),
        "a cancelled job is not run"
    );
}

#[tokio::test]
async fn bad_day_filters_are_400_and_a_running_batch_has_an_eta() {
    let s = service().await;
    let admin = Some(s.tokens.admin.as_str());
    for q in ["from=2024-13-01", "to=yesterday", "pbf=maybe"] {
        let (status, e) = s
            .send("GET", &format!("/api/v1/changes?{q}"), admin, None)
            .await;
        assert!(status.is_client_error(), "{q}: {e}");
    }
    let (farmland, _) = s.seed(Vec::new()).await;
    let owner = s.store.list_tokens().await.unwrap()[0].id;
    let gengdi_service::store::BatchCreated::New(b) = s
        .store
        .create_batch(gengdi_service::store::NewBatch {
            options: Default::default(),
            name: None,
            farmland,
            scenes: vec!["/nonexistent/b.tif".into()],
            created_by: owner,
            idempotency: None,
        })
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    let uri = format!("/api/v1/batches/{}", b.id);
    let (_, queued) = s.send("GET", &uri, admin, None).await;
    assert_eq!(queued["progress"].get("eta_s"), None, "{queued}");
    assert_eq!(s.store.claim_job().await.unwrap().unwrap().id, b.id);
    s.store
        .update_progress(
            b.id,
            gengdi_service::store::Progress {
                stage: "analysing_tiles".into(),
                tiles_done: 1,
                tiles_total: 5,
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, running) = s.send("GET", &uri, admin, None).await;
    assert_eq!(running["progress"]["tiles_done"], 1);
    // Four tiles left at one tile per >= 0.3 s.
    let eta = running["progress"]["eta_s"].as_f64().unwrap();
    assert!((1.1..60.0).contains(&eta), "{running}");
}

#[tokio::test]
async fn me_says_who_the_token_is() {
    let s = service().await;
    let (status, me) = s
        .send("GET", "/api/v1/me", Some(&s.tokens.inspector), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"name": "inspector 640502", "role": "inspector", "region": "640502"})
    );
    let (_, me) = s
        .send("GET", "/api/v1/me", Some(&s.tokens.centre), None)
        .await;
    assert_eq!(
        me,
        json!({"name": "centre", "role": "centre", "region": null})
    );
    let (status, _) = s.send("GET", "/api/v1/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
