//! Uploads: a farmland layer or a batch's scenes sent as `multipart/form-data` instead of
//! named by path. The files are streamed under the import root and go through the same
//! checks and records as a path; an upload over its limit, a refused request or an
//! idempotent replay leaves no file behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{service, service_with, TestService};
use std::path::{Path, PathBuf};

const BOUNDARY: &str = "gengdi-test-boundary-7MA4YWxk";

fn slovenia(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/data/eolearn-slovenia-s2")
        .join(name)
}

/// A multipart body of text fields and (field, file name, bytes) files.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (name, file, bytes) in files {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(
    s: &TestService,
    uri: &str,
    body: Vec<u8>,
    key: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::post(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", s.tokens.centre))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    s.send_request(req.body(Body::from(body)).unwrap()).await
}

/// Folders under `<import root>/uploads`.
fn uploads(s: &TestService) -> Vec<PathBuf> {
    match std::fs::read_dir(s.config.import_root.join("uploads")) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn an_uploaded_farmland_layer_is_registered_as_the_same_file_named_by_path() {
    let s = service().await;
    let gpkg = std::fs::read(slovenia("lulc_raba_polygons.gpkg")).unwrap();
    let body = multipart(
        &[
            ("name", "Slovenia"),
            ("mapping", r#"{"land_class": "RABA_ID"}"#),
        ],
        &[("file", "lulc_raba_polygons.gpkg", &gpkg)],
    );
    let (status, up) = upload(&s, "/api/v1/farmland", body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    assert_eq!(up["name"], "Slovenia");
    assert!(uploads(&s).is_empty(), "the upload is removed once copied");

    std::fs::create_dir_all(&s.config.import_root).unwrap();
    std::fs::write(s.config.import_root.join("layer.gpkg"), &gpkg).unwrap();
    let (status, named) = s
        .send(
            "POST",
            "/api/v1/farmland",
            Some(&s.tokens.centre),
            Some(r#"{"path": "layer.gpkg", "mapping": {"land_class": "RABA_ID"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{named}");
    for field in [
        "features",
        "parcels",
        "used",
        "repaired",
        "rejected",
        "area_mu",
        "pbf_area_mu",
        "layer",
    ] {
        assert_eq!(up[field], named[field], "{field}");
    }
    assert!(up["parcels"].as_i64().unwrap() > 0);

    // The stored copy is what analyses read: it is there though the upload is gone.
    let id = up["id"].as_i64().unwrap();
    let rec = s.store.farmland(id).await.unwrap().unwrap();
    assert!(Path::new(&rec.stored_path).is_file(), "{}", rec.stored_path);

    // A layer upload without its `file`, with two, or with an unknown field is refused.
    for (fields, files, code) in [
        (vec![("name", "x")], vec![], "bad_request"),
        (
            vec![],
            vec![
                ("file", "a.gpkg", gpkg.as_slice()),
                ("file", "b.gpkg", gpkg.as_slice()),
            ],
            "bad_request",
        ),
        (
            vec![("colour", "red")],
            vec![("file", "a.gpkg", gpkg.as_slice())],
            "invalid_body",
        ),
        (
            vec![("mapping", "land_class")],
            vec![("file", "a.gpkg", gpkg.as_slice())],
            "invalid_body",
        ),
    ] {
        let (status, e) = upload(&s, "/api/v1/farmland", multipart(&fields, &files), None).await;
        assert!(status.is_client_error(), "{e}");
        assert_eq!(e["code"], code, "{e}");
        assert!(uploads(&s).is_empty(), "{e}");
    }
}

#[tokio::test]
async fn uploaded_scenes_make_a_batch_and_a_replay_keeps_one_copy() {
    let s = service().await;
    let (farmland, _) = s.seed(Vec::new()).await;
    let a = std::fs::read(slovenia("s2l1c_20150711_13band.tif")).unwrap();
    let b = std::fs::read(slovenia("s2l1c_20150731_13band.tif")).unwrap();
    let id = farmland.to_string();
    let body = || {
        multipart(
            &[("farmland", id.as_str()), ("name", "uploaded")],
            &[
                ("scenes", "s2l1c_20150711_13band.tif", &a),
                ("scenes", "../../s2l1c_20150731_13band.tif", &b),
            ],
        )
    };
    let (status, first) = upload(&s, "/api/v1/batches", body(), Some("k1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let dirs = uploads(&s);
    assert_eq!(dirs.len(), 1);
    // File names are reduced to their last component: nothing is written outside.
    let mut names: Vec<String> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["s2l1c_20150711_13band.tif", "s2l1c_20150731_13band.tif"]
    );
    assert_eq!(
        std::fs::read(dirs[0].join("s2l1c_20150731_13band.tif")).unwrap(),
        b
    );
    let (_, batch) = s
        .send(
            "GET",
            &format!("/api/v1/batches/{}", first["id"]),
            Some(&s.tokens.centre),
            None,
        )
        .await;
    let scenes: Vec<&str> = batch["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let dir = dirs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        scenes,
        [
            format!("uploads/{dir}/s2l1c_20150711_13band.tif"),
            format!("uploads/{dir}/s2l1c_20150731_13band.tif")
        ]
    );

    // The same upload with the same key: the same batch, the second copy removed.
    let (status, again) = upload(&s, "/api/v1/batches", body(), Some("k1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(uploads(&s).len(), 1);
    // Other files with that key: 409, nothing kept.
    let other = multipart(&[("farmland", id.as_str())], &[("scenes", "x.tif", &a)]);
    let (status, e) = upload(&s, "/api/v1/batches", other, Some("k1")).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    assert_eq!(uploads(&s).len(), 1);

    // A role that may not submit batches: 403, and its upload is not kept.
    let req = Request::post("/api/v1/batches")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", s.tokens.researcher),
        )
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body()))
        .unwrap();
    let (status, e) = s.send_request(req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(uploads(&s).len(), 1);

    // Refused uploads leave nothing: no farmland, an unknown layer, an unknown part.
    for (fields, file_part) in [
        (vec![("name", "x")], "scenes"),
        (vec![("farmland", "999")], "scenes"),
        (vec![("farmland", id.as_str())], "scene"),
    ] {
        let body = multipart(&fields, &[(file_part, "a.tif", &a)]);
        let (status, e) = upload(&s, "/api/v1/batches", body, None).await;
        assert!(status.is_client_error(), "{e}");
        assert_eq!(uploads(&s).len(), 1, "{e}");
    }
}

#[tokio::test]
async fn an_upload_over_its_limit_is_413_and_leaves_nothing() {
    let s = service_with(|c| c.upload_limit = 100_000).await;
    let (farmland, _) = s.seed(Vec::new()).await;
    let a = std::fs::read(slovenia("s2l1c_20150711_13band.tif")).unwrap();
    assert!(a.len() > 100_000);
    let id = farmland.to_string();
    let body = multipart(&[("farmland", id.as_str())], &[("scenes", "a.tif", &a)]);
    let (status, e) = upload(&s, "/api/v1/batches", body, None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert_eq!(e["code"], "payload_too_large");
    assert_eq!(e["details"]["limit_bytes"], 100_000);
    assert!(uploads(&s).is_empty());
    // A JSON body keeps the small body limit (4 KiB here) on the same route.
    let big = format!(r#"{{"scenes": ["{}"], "farmland": 1}}"#, "a".repeat(5000));
    let (status, e) = s
        .send(
            "POST",
            "/api/v1/batches",
            Some(&s.tokens.centre),
            Some(&big),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert_eq!(e["code"], "payload_too_large");
    let (status, _) = s.send("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}
