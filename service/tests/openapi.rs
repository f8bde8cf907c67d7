//! `GET /openapi.json` and the router are written from one route table: every path and
//! method of the document is served (not 404/405), every other method of those paths is
//! 405, and the document lists exactly the table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{service, three_patches};
use gengdi_service::api::openapi::routes;
use std::collections::BTreeSet;
use tower::ServiceExt;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn the_document_and_the_router_serve_the_same_routes() {
    let s = service().await;
    s.seed(three_patches()).await;
    let (status, doc) = s.send("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");

    let in_doc: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    let in_table: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.path.to_string(), r.method.as_str().to_ascii_lowercase()))
        .collect();
    assert_eq!(in_doc, in_table);
    assert_eq!(in_doc.len(), 28);
    for expected in [
        ("/api/v1/stats", "get"),
        ("/api/v1/changes/{id}/verdicts", "post"),
        ("/api/v1/changes/{id}/verdicts", "get"),
        ("/metrics", "get"),
        ("/api/v1/changes/{id}/chips/{date}.png", "get"),
    ] {
        assert!(
            in_doc.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?}"
        );
    }
    // Path parameters are declared; token-free routes have no security.
    let op = &doc["paths"]["/api/v1/changes/{id}"]["get"];
    assert_eq!(op["parameters"][0]["name"], "id");
    assert_eq!(op["parameters"][0]["in"], "path");
    assert_eq!(op["security"], serde_json::json!([{"bearer": []}]));
    let chip = &doc["paths"]["/api/v1/changes/{id}/chips/{date}.png"]["get"]["parameters"];
    assert_eq!(
        (&chip[0]["name"], &chip[0]["schema"]["type"]),
        (&serde_json::json!("id"), &serde_json::json!("integer"))
    );
    assert_eq!(
        (&chip[1]["name"], &chip[1]["schema"]["type"]),
        (&serde_json::json!("date"), &serde_json::json!("string"))
    );
    assert_eq!(
        doc["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([])
    );

    let paths: BTreeSet<&String> = in_doc.iter().map(|(p, _)| p).collect();
    for path in paths {
        let uri = path.replace("{id}", "1").replace("{date}", "2024-04-20");
        for m in METHODS {
            let req = Request::builder()
                .method(m.to_ascii_uppercase().as_str())
                .uri(&uri)
                .header(header::AUTHORIZATION, format!("Bearer {}", s.tokens.admin))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let res = s.app().oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&bytes);
            if in_doc.contains(&(path.clone(), m.to_string())) {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}: {text}");
                assert!(
                    !(status == StatusCode::NOT_FOUND && text.contains("no such endpoint")),
                    "{m} {uri}: {text}"
                );
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}: {text}");
            }
        }
    }
    // And a path outside the document is not served.
    let (status, body) = s
        .send("GET", "/api/v1/nothing", Some(&s.tokens.admin), None)
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::NOT_FOUND, serde_json::json!("no such endpoint"))
    );
}
