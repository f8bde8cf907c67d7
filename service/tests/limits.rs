//! Hard limits: a zip bomb, a zip claiming more than it may unpack to, a TIFF claiming
//! 10⁶ x 10⁶ pixels, too many requests with one token, a request past its time. Each is a
//! clean JSON 4xx / 5xx naming what was wrong, and the service answers normally after.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{service, service_with};
use gengdi_service::limits::{check_zip, zip_claims, Limits};
use std::io::Write;
use std::path::Path;

/// A zip archive of `(name, bytes)` members, deflated.
fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        let packed = enc.finish().unwrap();
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = out.len() as u32;
        let fixed = |sig: u32, v: &mut Vec<u8>| {
            v.extend(sig.to_le_bytes());
        };
        // Local header.
        fixed(0x0403_4b50, &mut out);
        out.extend(20u16.to_le_bytes()); // version needed
        out.extend(0u16.to_le_bytes()); // flags
        out.extend(8u16.to_le_bytes()); // deflate
        out.extend([0u8; 4]); // time, date
        out.extend(crc.sum().to_le_bytes());
        out.extend((packed.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(&packed);
        // Central directory entry.
        fixed(0x0201_4b50, &mut central);
        central.extend(20u16.to_le_bytes()); // made by
        central.extend(20u16.to_le_bytes()); // needed
        central.extend(0u16.to_le_bytes());
        central.extend(8u16.to_le_bytes());
        central.extend([0u8; 4]);
        central.extend(crc.sum().to_le_bytes());
        central.extend((packed.len() as u32).to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0u8; 2 + 2 + 2 + 2 + 4]); // extra, comment, disk, attrs
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A ZIP64 archive whose one member claims `unpacked` bytes (sizes in the ZIP64 extra
/// field); no data behind the claim.
fn zip64_claiming(unpacked: u64) -> Vec<u8> {
    let name = b"huge.shp";
    let mut out = Vec::new();
    let cd_offset = out.len() as u64;
    out.extend(0x0201_4b50u32.to_le_bytes());
    out.extend(45u16.to_le_bytes());
    out.extend(45u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(8u16.to_le_bytes());
    out.extend([0u8; 8]); // time, date, crc
    out.extend(0xFFFF_FFFFu32.to_le_bytes());
    out.extend(0xFFFF_FFFFu32.to_le_bytes());
    out.extend((name.len() as u16).to_le_bytes());
    out.extend(20u16.to_le_bytes()); // extra: 4 + 16
    out.extend([0u8; 2 + 2 + 2 + 4]);
    out.extend(0u32.to_le_bytes());
    out.extend(name);
    out.extend(1u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(unpacked.to_le_bytes());
    out.extend(1000u64.to_le_bytes());
    let cd_size = out.len() as u64 - cd_offset;
    // ZIP64 end of central directory record, its locator, then the classic record.
    let z64_at = out.len() as u64;
    out.extend(0x0606_4b50u32.to_le_bytes());
    out.extend(44u64.to_le_bytes());
    out.extend(45u16.to_le_bytes());
    out.extend(45u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(1u64.to_le_bytes());
    out.extend(1u64.to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0x0706_4b50u32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(z64_at.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(0xFFFFu16.to_le_bytes());
    out.extend(0xFFFFu16.to_le_bytes());
    out.extend(0xFFFF_FFFFu32.to_le_bytes());
    out.extend(0xFFFF_FFFFu32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A little-endian TIFF whose header claims `w` x `h` 16-bit pixels in one deflated strip
/// (1 KiB of data behind it).
fn tiff_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&[0u8; 1024]).unwrap();
    let data = enc.finish().unwrap();
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, w),
        (257, 4, h),
        (258, 3, 16),
        (259, 3, 8),
        (262, 3, 1),
        (273, 4, 8 + 2 + 9 * 12 + 4),
        (277, 3, 1),
        (278, 4, h),
        (279, 4, data.len() as u32),
    ];
    let mut out = b"II".to_vec();
    out.extend(42u16.to_le_bytes());
    out.extend(8u32.to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        out.extend(tag.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        if kind == 3 {
            out.extend((value as u16).to_le_bytes());
            out.extend([0u8; 2]);
        } else {
            out.extend(value.to_le_bytes());
        }
    }
    out.extend(0u32.to_le_bytes());
    out.extend(&data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn zip_claims_are_read_from_the_central_directory() {
    let dir = tempfile::tempdir().unwrap();
    let gpkg = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/data/parcels-lpis/fr_rpg_ain_193parcels_lamb93.gpkg"),
    )
    .unwrap();
    let real = zip(&[("parcels.gpkg", &gpkg), ("readme.txt", b"hello")]);
    write(dir.path(), "real.zip", &real);
    let claims = check_zip(&dir.path().join("real.zip"), &Limits::default()).unwrap();
    assert_eq!(claims.entries, 2);
    assert_eq!(claims.unpacked_bytes, gpkg.len() as u64 + 5);
    assert!(claims.worst_ratio < 20, "{claims:?}");

    write(dir.path(), "z64.zip", &zip64_claiming(5 << 30));
    let claims = zip_claims(&dir.path().join("z64.zip")).unwrap();
    assert_eq!((claims.entries, claims.unpacked_bytes), (1, 5 << 30));

    write(dir.path(), "cut.zip", &real[..real.len() - 30]);
    let err = zip_claims(&dir.path().join("cut.zip")).unwrap_err();
    assert!(err.to_string().contains("not a zip archive"), "{err}");
}

#[tokio::test]
async fn a_zip_bomb_and_an_oversized_archive_are_refused_before_reading() {
    let s = service().await;
    let admin = Some(s.tokens.admin.as_str());
    let import = &s.config.import_root;
    // 64 MiB of zeros deflate to ~64 KiB: the 1,000-fold ratio of a bomb.
    write(
        import,
        "bomb.zip",
        &zip(&[("farmland.shp", &vec![0u8; 64 << 20])]),
    );
    write(import, "huge.zip", &zip64_claiming(5 << 30));
    for (path, what) in [
        ("bomb.zip", "inflates"),
        ("huge.zip", "unpacks to 5368709120 bytes"),
    ] {
        let body = format!(r#"{{"path": "{path}"}}"#);
        let (status, e) = s.send("POST", "/api/v1/farmland", admin, Some(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["code"], "input_too_large");
        assert!(e["message"].as_str().unwrap().contains(what), "{e}");
    }
    // Nothing was stored.
    let (status, list) = s.send("GET", "/api/v1/farmland", admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], serde_json::json!([]));
}

#[tokio::test]
async fn a_tiff_claiming_a_trillion_pixels_is_refused_when_the_batch_is_submitted() {
    let s = service().await;
    let admin = Some(s.tokens.admin.as_str());
    let (farmland, _) = s.seed(Vec::new()).await;
    let import = &s.config.import_root;
    write(import, "bomb.tif", &tiff_claiming(1_000_000, 1_000_000));
    write(import, "fine.tif", &tiff_claiming(512, 512));
    let body = format!(r#"{{"scenes": ["fine.tif", "bomb.tif"], "farmland": {farmland}}}"#);
    let (status, e) = s.send("POST", "/api/v1/batches", admin, Some(&body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "input_too_large");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("1000000 x 1000000 = 1000000000000 pixels"),
        "{e}"
    );
    let (_, batches) = s.send("GET", "/api/v1/batches", admin, None).await;
    assert_eq!(
        batches["items"].as_array().unwrap().len(),
        1,
        "only the seeded batch: none was made"
    );
    // The header alone within the limit is accepted (the analysis reads the pixels).
    let body = format!(r#"{{"scenes": ["fine.tif"], "farmland": {farmland}}}"#);
    let (status, b) = s.send("POST", "/api/v1/batches", admin, Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    let (status, _) = s.send("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_token_has_its_own_request_rate() {
    let s = service_with(|c| {
        c.rate_limit = 2.0;
        c.rate_burst = 3.0;
    })
    .await;
    let admin = Some(s.tokens.admin.as_str());
    for _ in 0..3 {
        let (status, _) = s.send("GET", "/api/v1/farmland", admin, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, e) = s.send("GET", "/api/v1/farmland", admin, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{e}");
    assert_eq!(e["code"], "rate_limited");
    let wait = e["details"]["retry_after_s"].as_f64().unwrap();
    assert!(wait > 0.0 && wait <= 0.5, "{e}");
    // Another token is not slowed down; no token at all is not counted.
    let (status, _) = s
        .send("GET", "/api/v1/farmland", Some(&s.tokens.centre), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.send("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    // The bucket refills at 2 a second.
    tokio::time::sleep(std::time::Duration::from_secs_f64(wait + 0.05)).await;
    let (status, _) = s.send("GET", "/api/v1/farmland", admin, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_request_past_its_time_limit_is_a_json_503() {
    use axum::routing::get;
    use tower::ServiceExt;
    // The middleware `app` puts around every route, over a route that takes 2 s.
    let app = axum::Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                "late"
            }),
        )
        .route("/fast", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(
            std::time::Duration::from_millis(50),
            gengdi_service::api::time_limit,
        ));
    let call = |uri: &'static str| {
        let app = app.clone();
        async move {
            let res = app
                .oneshot(
                    axum::http::Request::get(uri)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), 1 << 16)
                .await
                .unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let started = std::time::Instant::now();
    let (status, body) = call("/slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let e: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["code"], "timeout");
    assert!(e["message"].as_str().unwrap().contains("0.05 s"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(call("/fast").await, (StatusCode::OK, "ok".to_string()));
    // The service's router carries it (a request within the limit is answered).
    let s = service_with(|c| c.request_timeout_s = 5.0).await;
    let (status, _) = s
        .send("GET", "/api/v1/farmland", Some(&s.tokens.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}
