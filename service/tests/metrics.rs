//! `GET /metrics`: job gauges from the store, tiles, and the request latency histogram by
//! route template.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{service, three_patches};
use gengdi_service::store::{BatchCreated, NewBatch, Progress};
use std::collections::BTreeMap;
use tower::ServiceExt;

/// `name{labels}` → value, for every sample line.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_jobs_tiles_and_requests_by_route_template() {
    let s = service().await;
    let (farmland, _) = s.seed(three_patches()).await;
    // A second batch, running, 4 of 10 tiles done; a third, queued.
    let admin_id = s.store.list_tokens().await.unwrap()[0].id;
    for _ in 0..2 {
        let BatchCreated::New(_) = s
            .store
            .create_batch(NewBatch {
                options: Default::default(),
                name: None,
                farmland,
                scenes: vec!["/nonexistent/b.tif".into()],
                created_by: admin_id,
                idempotency: None,
            })
            .await
            .unwrap()
        else {
            panic!("not new")
        };
    }
    let running = s.store.claim_job().await.unwrap().unwrap();
    s.store
        .update_progress(
            running.id,
            Progress {
                stage: "analysing".into(),
                tiles_done: 4,
                tiles_total: 10,
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;

    let admin = Some(s.tokens.admin.as_str());
    for _ in 0..2 {
        assert_eq!(
            s.send("GET", "/healthz", None, None).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        s.send("GET", "/api/v1/changes/1", admin, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.send("GET", "/api/v1/changes/999", admin, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.send("GET", "/api/v1/changes/2", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.send("GET", "/no/such/thing", admin, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.send("DELETE", "/healthz", None, None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let res = s
        .app()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let m = parse(&text);

    for (state, n) in [
        ("queued", 1.0),
        ("running", 1.0),
        ("done", 1.0),
        ("failed", 0.0),
        ("cancelled", 0.0),
    ] {
        assert_eq!(
            m[&format!("gengdi_jobs{{state=\"{state}\"}}")],
            n,
            "{state}"
        );
    }
    assert_eq!(m["gengdi_tiles_done_total"], 4.0);
    let rate_key = format!("gengdi_job_tiles_per_second{{batch=\"{}\"}}", running.id);
    let rate = m[&rate_key];
    // 4 tiles over at least 30 ms, and not over more than a minute.
    assert!(rate > 4.0 / 60.0 && rate <= 4.0 / 0.03, "{rate}");
    assert_eq!(
        m.keys()
            .filter(|k| k.starts_with("gengdi_job_tiles_per_second"))
            .count(),
        1
    );

    let count = |route: &str, method: &str, status: u16| {
        m.get(&format!(
            "gengdi_http_request_duration_seconds_count{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
        ))
        .copied()
    };
    assert_eq!(count("/healthz", "GET", 200), Some(2.0));
    assert_eq!(count("/api/v1/changes/{id}", "GET", 200), Some(1.0));
    assert_eq!(count("/api/v1/changes/{id}", "GET", 404), Some(1.0));
    assert_eq!(count("/api/v1/changes/{id}", "GET", 401), Some(1.0));
    assert_eq!(count("unmatched", "GET", 404), Some(1.0));
    assert_eq!(count("/healthz", "DELETE", 405), Some(1.0));
    // Seven requests, seven observations; the raw URIs are not labels.
    let total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("gengdi_http_request_duration_seconds_count"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 7.0);
    assert!(
        !text.contains("changes/999") && !text.contains("/no/such"),
        "{text}"
    );
    // Buckets are cumulative and end at the count.
    let labels = "route=\"/healthz\",method=\"GET\",status=\"200\"";
    let buckets: Vec<f64> = ["0.005", "0.01", "0.1", "1", "10", "+Inf"]
        .iter()
        .map(|le| {
            m[&format!("gengdi_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}")]
        })
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(buckets[5], 2.0);
    let sum = m[&format!("gengdi_http_request_duration_seconds_sum{{{labels}}}")];
    assert!(sum > 0.0 && sum < 10.0, "{sum}");

    // The scrape itself is counted by the next one.
    let (status, _) = s.send("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let res = s
        .app()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let m = parse(&text);
    assert_eq!(
        m["gengdi_http_request_duration_seconds_count{route=\"/metrics\",method=\"GET\",status=\"200\"}"],
        1.0
    );
    assert_eq!(
        m["gengdi_http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\",status=\"200\"}"],
        3.0
    );
}
