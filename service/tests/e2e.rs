//! End to end over a real port: register the generated season's farmland layer, submit the
//! season as a batch, follow it to done and list its changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use gengdi_fixtures::season::{generate_season, SeasonSpec};
use gengdi_inference::analysis::M2_PER_MU;
use gengdi_models::{DeviceChoice, Registry};
use gengdi_service::auth::Role;
use gengdi_service::jobs::analysis_adapter::{load_models, AnalysisExecutor};
use gengdi_service::store::{SqliteStore, Store};
use gengdi_service::ServiceConfig;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request with `Connection: close`; the status and the JSON body.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (
        status,
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap()
        },
    )
}

/// A GET through the router in-process (for bodies that are not JSON); status and bytes.
async fn in_process(state: &gengdi_service::AppState, path: &str, token: &str) -> (u16, Vec<u8>) {
    use tower::ServiceExt;
    let req = axum::http::Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = gengdi_service::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 26)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_season_is_registered_analysed_and_listed_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("import");
    let season_dir = import.join("season");
    let season = tokio::task::spawn_blocking({
        let d = season_dir.clone();
        move || generate_season(&SeasonSpec::default(), &d).unwrap()
    })
    .await
    .unwrap();
    let config = ServiceConfig {
        data_dir: dir.path().join("data"),
        import_root: import.clone(),
        tile: 128,
        ..ServiceConfig::default()
    };
    let store = Arc::new(SqliteStore::open(&config.data_dir).unwrap());
    let (_, admin) = common::token(&*store, Role::Admin, None, "centre admin").await;
    let (_, inspector) = common::token(&*store, Role::Inspector, Some("640502"), "inspector").await;
    let registry =
        Registry::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/weights"));
    let models = load_models(&registry, DeviceChoice::NdArray, true).unwrap();
    let executor = Arc::new(AnalysisExecutor::new(
        models,
        config.tile,
        config.max_scene_pixels,
    ));
    let (state, worker) = gengdi_service::start(&config, store.clone(), executor).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gengdi_service::serve_on(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    let (status, m) = http(addr, "GET", "/api/v1/models", &admin, None).await;
    assert_eq!(status, 200);
    let tasks: Vec<&str> = m["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, vec!["landcover", "croptype"]);
    // Each model's card, by the id the list names.
    for item in m["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let (status, card) = http(addr, "GET", &format!("/api/v1/models/{id}"), &admin, None).await;
        assert_eq!(status, 200, "{card}");
        assert_eq!(
            (card["id"].as_str(), &card["task"]),
            (Some(id), &item["task"])
        );
    }
    assert!(m["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["id"].as_str().is_some_and(|i| !i.is_empty())));

    let (status, f) = http(
        addr,
        "POST",
        "/api/v1/farmland",
        &admin,
        Some(&json!({"path": "season/farmland.gpkg"})),
    )
    .await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(f["parcels"], json!(season.counts.parcels));
    assert_eq!(f["rejected"], 0);
    let want_mu = season.counts.area_m2 / M2_PER_MU;
    let area_mu = f["area_mu"].as_f64().unwrap();
    assert!(
        (area_mu - want_mu).abs() < 1e-3 * want_mu,
        "{area_mu} mu vs the generator's {want_mu}"
    );
    assert!(
        f["pbf_area_mu"].as_f64().unwrap() > 0.0 && f["pbf_area_mu"].as_f64().unwrap() < area_mu
    );
    let farmland = f["id"].as_i64().unwrap();

    let scenes: Vec<String> = season
        .scenes
        .iter()
        .map(|s| format!("season/{}", s.path.file_name().unwrap().to_string_lossy()))
        .collect();
    let (status, b) = http(
        addr,
        "POST",
        "/api/v1/batches",
        &admin,
        Some(&json!({"scenes": scenes, "farmland": farmland, "name": "demo"})),
    )
    .await;
    assert_eq!((status, b["status"].as_str()), (202, Some("queued")), "{b}");
    let id = b["id"].as_i64().unwrap();

    let mut stages = Vec::new();
    let batch = loop {
        let (_, b) = http(addr, "GET", &format!("/api/v1/batches/{id}"), &admin, None).await;
        let stage = b["progress"]["stage"].as_str().unwrap().to_string();
        if stages.last() != Some(&stage) {
            stages.push(stage);
        }
        match b["status"].as_str().unwrap() {
            "queued" | "running" => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            "done" => break b,
            other => panic!("batch {other}: {b}"),
        }
        assert!(stages.len() < 100);
    };
    assert_eq!(stages.last().map(String::as_str), Some("done"));
    let tiles = batch["progress"]["tiles_total"].as_u64().unwrap();
    assert_eq!(batch["progress"]["tiles_done"].as_u64().unwrap(), tiles);
    assert!(tiles >= 4, "{batch}");
    let patches = batch["patches"].as_i64().unwrap();
    assert!(patches > 20, "{batch}");

    let (status, all) = http(
        addr,
        "GET",
        &format!("/api/v1/changes?batch={id}&limit=1000"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], json!(patches));
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len() as i64, patches);
    assert!(items
        .iter()
        .all(|p| p["status"] == "open" && p["batch"] == json!(id)));
    let in_county = items
        .iter()
        .filter(|p| p["admin"]["county_code"] == "640502")
        .count();
    assert!(
        in_county > 0 && (in_county as i64) < patches,
        "both counties have patches"
    );
    let (_, mine) = http(addr, "GET", "/api/v1/changes?limit=1000", &inspector, None).await;
    assert_eq!(mine["total"], json!(in_county));
    let first = items[0]["id"].as_i64().unwrap();
    let (status, one) = http(
        addr,
        "GET",
        &format!("/api/v1/changes/{first}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["geometry"]["type"], "MultiPolygon");
    let [x0, y0, x1, y1] = [0, 1, 2, 3].map(|i| one["bbox"][i].as_f64().unwrap());
    assert!(
        x0 < x1 && y0 < y1 && (-180.0..180.0).contains(&x0) && (-90.0..90.0).contains(&y0),
        "{one}"
    );

    // Chips of that patch on every date of the season (the generated scenes, as analysed):
    // PNGs with the outline drawn and the scene around it; another date lists the season's.
    for scene in &season.scenes {
        let (status, bytes) = in_process(
            &state,
            &format!("/api/v1/changes/{first}/chips/{}.png", scene.date),
            &admin,
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        assert!(info.width.max(info.height) <= 512 && info.width.min(info.height) > 16);
        let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks_exact(4).collect();
        assert!(
            px.iter().any(|p| *p == [255, 255, 0, 255]),
            "{}",
            scene.date
        );
        assert!(
            px.iter().any(|p| p[3] == 255 && *p != [255, 255, 0, 255]),
            "{}",
            scene.date
        );
    }
    let (status, bytes) = in_process(
        &state,
        &format!("/api/v1/changes/{first}/chips/2024-01-01.png"),
        &admin,
    )
    .await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let dates: Vec<String> = season.scenes.iter().map(|s| s.date.to_string()).collect();
    assert_eq!(body["details"]["dates"], json!(dates));

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    worker.abort();
    assert_eq!(store.list_batches().await.unwrap().len(), 1);
}
