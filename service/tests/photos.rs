//! Field photos with verdicts: a multipart verdict keeps its JPEG / PNG photos (with when and
//! where they were taken) in the data dir, append-only like the verdicts; they come back
//! byte for byte to those who may read the patch; anything else is refused with nothing kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{service, three_patches, TestService};
use serde_json::json;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const BOUNDARY: &str = "gengdi-photo-boundary-Zq81";

fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (file, bytes) in files {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post(
    s: &TestService,
    token: &str,
    patch: i64,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let req = Request::post(format!("/api/v1/changes/{patch}/verdicts"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap();
    s.send_request(req).await
}

async fn bytes(s: &TestService, token: &str, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = s.app().oneshot(req).await.unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let b = axum::body::to_bytes(res.into_body(), 1 << 26)
        .await
        .unwrap();
    (status, ct, b.to_vec())
}

/// A real 8 × 6 PNG and a real JPEG (written by GDAL's JPEG driver).
fn images(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 8, 6);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        let data: Vec<u8> = (0..8 * 6 * 3).map(|i| (i * 5) as u8).collect();
        w.write_image_data(&data).unwrap();
    }
    let mem = gdal::DriverManager::get_driver_by_name("MEM")
        .unwrap()
        .create_with_band_type::<u8, _>("", 16, 16, 3)
        .unwrap();
    let path = dir.join("field.jpg");
    mem.create_copy(
        &gdal::DriverManager::get_driver_by_name("JPEG").unwrap(),
        &path,
        &gdal::cpl::CslStringList::new(),
    )
    .unwrap();
    (png_bytes, std::fs::read(path).unwrap())
}

fn uploads_left(s: &TestService) -> usize {
    std::fs::read_dir(s.config.import_root.join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn photo_dirs(s: &TestService) -> usize {
    std::fs::read_dir(s.config.data_dir.join("photos"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_verdict_keeps_its_photos_and_serves_them_back_to_readers_of_the_patch() {
    let s = service().await;
    s.seed(three_patches()).await;
    let t = &s.tokens;
    let (png_bytes, jpg_bytes) = images(s.dir.path());
    let body = multipart(
        &[
            ("verdict", "confirmed"),
            ("note", "ponds dug, see photos"),
            ("class_found", "water"),
            ("taken_at", "2026-06-01T09:30:00+08:00"),
            ("lon", "105.0123"),
            ("lat", "37.5012"),
        ],
        &[("IMG_1.jpg", &jpg_bytes), ("sketch.png", &png_bytes)],
    );
    let (status, v) = post(&s, &t.inspector, 1, body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "confirmed");
    assert_eq!(v["verdict"]["note"], "ponds dug, see photos");
    assert_eq!(v["verdict"]["class_found"], "water");
    let photos = v["verdict"]["photos"].as_array().unwrap().clone();
    assert_eq!(photos.len(), 2);
    let vid = v["verdict"]["id"].as_i64().unwrap();
    for (p, (ct, sent)) in photos
        .iter()
        .zip([("image/jpeg", &jpg_bytes), ("image/png", &png_bytes)])
    {
        assert_eq!(p["content_type"], ct);
        assert_eq!(p["bytes"], sent.len());
        assert_eq!(p["sha256"], hex::encode(Sha256::digest(sent)));
        assert_eq!(p["taken_at"], "2026-06-01T09:30:00+08:00");
        assert_eq!(
            (p["lon"].as_f64(), p["lat"].as_f64()),
            (Some(105.0123), Some(37.5012))
        );
        let url = format!("/api/v1/changes/1/verdicts/{vid}/photos/{}", p["id"]);
        assert_eq!(p["url"], url);
        assert!(p.get("file").is_none(), "{p}");
        // Byte for byte, to every reader of the patch; another county's inspector: 404.
        for token in [&t.inspector, &t.admin, &t.researcher, &t.centre] {
            let (status, got_ct, got) = bytes(&s, token, &url).await;
            assert_eq!((status, got_ct.as_str()), (StatusCode::OK, ct));
            assert_eq!(&got, sent);
        }
        let (status, _, _) = bytes(&s, &t.inspector_other, &url).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // The patch's verdict history carries them; the upload folder is gone.
    let (_, detail) = s
        .send("GET", "/api/v1/changes/1", Some(&t.admin), None)
        .await;
    assert_eq!(detail["verdicts"][0]["photos"], json!(photos));
    assert_eq!(
        (
            &detail["class_found"],
            &detail["verdicts"][0]["class_found"]
        ),
        (&json!("water"), &json!("water"))
    );
    assert_eq!(uploads_left(&s), 0);
    assert_eq!(photo_dirs(&s), 1);
    // Append-only, as the verdicts.
    for statement in [
        "UPDATE verdict_photos SET bytes = 0",
        "DELETE FROM verdict_photos",
    ] {
        let err = s.raw.execute_raw(statement).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    // A verdict without photos (JSON) still works and has none.
    let (status, v) = s
        .send(
            "POST",
            "/api/v1/changes/1/verdicts",
            Some(&t.inspector),
            Some(&json!({"verdict": "rectified", "note": "refilled"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["verdict"]["photos"], json!([]));
}

#[tokio::test]
async fn bad_photo_verdicts_are_refused_with_nothing_kept() {
    let s = service().await;
    s.seed(three_patches()).await;
    let t = &s.tokens;
    let (png_bytes, _) = images(s.dir.path());
    let many: Vec<(&str, &[u8])> = (0..11).map(|_| ("p.png", png_bytes.as_slice())).collect();
    let cases: Vec<(String, Vec<u8>, StatusCode, &str)> = vec![
        (
            t.inspector.clone(),
            multipart(
                &[("verdict", "confirmed")],
                &[("notes.txt", b"not an image")],
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_photo",
        ),
        (
            t.inspector.clone(),
            multipart(&[("verdict", "confirmed")], &many),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            t.inspector.clone(),
            multipart(
                &[("verdict", "confirmed"), ("lon", "500"), ("lat", "1")],
                &[("p.png", &png_bytes)],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            t.inspector.clone(),
            multipart(
                &[("verdict", "confirmed"), ("lon", "105")],
                &[("p.png", &png_bytes)],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            t.inspector.clone(),
            multipart(&[("verdict", "maybe")], &[("p.png", &png_bytes)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            t.inspector.clone(),
            multipart(
                &[("verdict", "confirmed"), ("taken_at", "yesterday")],
                &[("p.png", &png_bytes)],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            t.inspector.clone(),
            multipart(
                &[("verdict", "false_positive"), ("class_found", "forest")],
                &[("p.png", &png_bytes)],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_class_found",
        ),
        (
            t.inspector.clone(),
            multipart(
                &[("verdict", "rectified"), ("class_found", "grass")],
                &[("p.png", &png_bytes)],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_class_found",
        ),
        (
            t.researcher.clone(),
            multipart(&[("verdict", "confirmed")], &[("p.png", &png_bytes)]),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            t.inspector_other.clone(),
            multipart(&[("verdict", "confirmed")], &[("p.png", &png_bytes)]),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (i, (token, body, status, code)) in cases.into_iter().enumerate() {
        let (got, e) = post(&s, &token, 1, body).await;
        assert_eq!(
            (got, e["code"].as_str()),
            (status, Some(code)),
            "case {i}: {e}"
        );
        assert_eq!(uploads_left(&s), 0, "case {i}");
        assert_eq!(photo_dirs(&s), 0, "case {i}");
    }
    let (_, v) = s
        .send("GET", "/api/v1/changes/1/verdicts", Some(&t.admin), None)
        .await;
    assert_eq!(v["items"], json!([]));
    let (status, _, _) = bytes(&s, &t.admin, "/api/v1/changes/1/verdicts/1/photos/1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
