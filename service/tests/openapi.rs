//! `GET /openapi.json` and the router are written from one route table: every path and
//! method of the document is served (not 404/405), every other method of those paths is
//! 405, and the document lists exactly the table. Its schemas are the handlers' types: the
//! request bodies name exactly the request structs' fields, the query parameters the query
//! structs' (typed), every `$ref` resolves, and real responses conform to their schemas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{service, three_patches, TestService};
use gengdi_service::api::openapi::{routes, COMPONENTS};
use schemars::JsonSchema;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
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
    assert_eq!(in_doc.len(), 31);
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

/// The schema a `$ref` (to `components/schemas`, followed to the end) names, or `schema`.
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix(COMPONENTS)
            .unwrap_or_else(|| panic!("{r}: not under {COMPONENTS}"));
        schema = doc["components"]["schemas"]
            .get(name)
            .unwrap_or_else(|| panic!("{r}: no such schema"));
    }
    schema
}

fn names(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Object(o) => o.keys().cloned().collect(),
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => BTreeSet::new(),
    }
}

/// A type's (properties, required) as schemars writes them on its own, for deserializing.
fn fields_of<T: JsonSchema>() -> (BTreeSet<String>, BTreeSet<String>) {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    let v = schema.as_value();
    (names(&v["properties"]), names(&v["required"]))
}

/// The content types and the JSON schema of a JSON-body route.
fn request_body<'a>(doc: &'a Value, path: &str) -> (BTreeSet<String>, &'a Value) {
    let body = &doc["paths"][path]["post"]["requestBody"];
    assert_eq!(body["required"], true, "{path}");
    let schema = &body["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{path}: no JSON schema: {body}");
    (names(&body["content"]), resolve(doc, schema))
}

fn strings(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Send `body` with `content_type` to `POST path` as admin; the status and error code.
async fn post_as(s: &TestService, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(path.replace("{id}", "1"))
        .header(header::AUTHORIZATION, format!("Bearer {}", s.tokens.admin))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, body) = s.send_request(req).await;
    (status.as_u16(), body["code"].clone())
}

#[tokio::test]
async fn request_bodies_are_the_request_structs() {
    use gengdi_service::admin::AdminLayerRequest;
    use gengdi_service::api::batches::BatchRequest;
    use gengdi_service::api::changes::VerdictRequest;
    use gengdi_service::farmland::FarmlandRequest;
    use gengdi_service::jobs::training::TrainingRequest;
    let s = service().await;
    let (_, doc) = s.send("GET", "/openapi.json", None, None).await;

    // The batch request exactly.
    let (content, batch) = request_body(&doc, "/api/v1/batches");
    assert_eq!(
        content,
        strings(&["application/json", "multipart/form-data"])
    );
    assert_eq!(
        names(&batch["properties"]),
        strings(&["scenes", "farmland", "admin", "baseline", "rules", "name"])
    );
    assert_eq!(names(&batch["required"]), strings(&["scenes", "farmland"]));
    assert_eq!(batch["additionalProperties"], false);
    assert_eq!(batch["properties"]["farmland"]["type"], "integer");
    assert_eq!(batch["properties"]["scenes"]["type"], "array");
    assert_eq!(batch["properties"]["scenes"]["items"]["type"], "string");
    // A verdict names its three values.
    let (_, verdict) = request_body(&doc, "/api/v1/changes/{id}/verdicts");
    assert_eq!(
        resolve(&doc, &verdict["properties"]["verdict"])["enum"],
        json!(["confirmed", "false_positive", "rectified"])
    );
    assert_eq!(names(&verdict["required"]), strings(&["verdict"]));

    // Every POST that reads a body names its request struct's fields, no more, no fewer.
    let expected: BTreeMap<&str, (BTreeSet<String>, BTreeSet<String>)> = [
        ("/api/v1/farmland", fields_of::<FarmlandRequest>()),
        ("/api/v1/admin-layers", fields_of::<AdminLayerRequest>()),
        ("/api/v1/batches", fields_of::<BatchRequest>()),
        (
            "/api/v1/changes/{id}/verdicts",
            fields_of::<VerdictRequest>(),
        ),
        ("/api/v1/training", fields_of::<TrainingRequest>()),
    ]
    .into_iter()
    .collect();
    for (path, (properties, required)) in &expected {
        let (_, schema) = request_body(&doc, path);
        assert_eq!(&names(&schema["properties"]), properties, "{path}");
        assert_eq!(&names(&schema["required"]), required, "{path}");
        assert!(!properties.is_empty(), "{path}");
    }
    assert_eq!(
        fields_of::<TrainingRequest>().0,
        strings(&["task", "batches", "epochs", "seed", "tables", "fine_tune"])
    );
    let posts: Vec<&str> = routes()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    let with_body: BTreeSet<&str> = posts
        .iter()
        .copied()
        .filter(|p| !doc["paths"][*p]["post"]["requestBody"].is_null())
        .collect();
    assert_eq!(with_body, expected.keys().copied().collect());

    // And the handlers agree: those routes (only) refuse a text body as not JSON (415), and
    // those that say so (only) take a multipart one.
    let mut reads_json = BTreeSet::new();
    let mut takes_uploads = BTreeSet::new();
    for path in &posts {
        let (status, code) = post_as(&s, path, "text/plain", "x").await;
        if (status, code.as_str()) == (415, Some("unsupported_media_type")) {
            reads_json.insert(*path);
        }
        let (status, _) =
            post_as(&s, path, "multipart/form-data; boundary=XyZ", "--XyZ--\r\n").await;
        if status != 415 && reads_json.contains(path) {
            takes_uploads.insert(*path);
        }
    }
    assert_eq!(reads_json, with_body);
    let multipart: BTreeSet<&str> = with_body
        .iter()
        .copied()
        .filter(|p| {
            doc["paths"][*p]["post"]["requestBody"]["content"]
                .get("multipart/form-data")
                .is_some()
        })
        .collect();
    assert_eq!(takes_uploads, multipart);
    assert_eq!(
        multipart,
        [
            "/api/v1/farmland",
            "/api/v1/changes/{id}/verdicts",
            "/api/v1/admin-layers",
            "/api/v1/batches"
        ]
        .into_iter()
        .collect()
    );
}

#[tokio::test]
async fn query_parameters_are_the_query_structs_fields_with_their_types() {
    use gengdi_service::api::changes::ChangeQuery;
    use gengdi_service::api::stats::StatsQuery;
    let s = service().await;
    let (_, doc) = s.send("GET", "/openapi.json", None, None).await;
    let query = |path: &str| -> BTreeMap<String, Value> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| {
                // Only the parcels' box is required.
                let required = path == "/api/v1/batches/{id}/parcels" && p["name"] == "bbox";
                assert_eq!(p["required"], required, "{path}: {p}");
                (p["name"].as_str().unwrap().to_string(), p["schema"].clone())
            })
            .collect()
    };

    let changes = query("/api/v1/changes");
    for (name, ty) in [
        ("sort", "string"),
        ("pbf", "boolean"),
        ("min_mu", "number"),
        ("limit", "integer"),
        ("batch", "integer"),
        ("cursor", "string"),
        ("format", "string"),
    ] {
        assert_eq!(changes[name]["type"], ty, "{name}: {}", changes[name]);
    }
    let changes: BTreeSet<String> = changes.into_keys().collect();
    assert_eq!(changes, fields_of::<ChangeQuery>().0);
    assert_eq!(
        changes,
        strings(&[
            "batch", "kind", "status", "region", "bbox", "min_mu", "pbf", "from", "to", "sort",
            "limit", "cursor", "format"
        ])
    );
    // A parameter carries its field's doc comment.
    let sort = doc["paths"]["/api/v1/changes"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sort")
        .unwrap();
    assert!(sort["description"].as_str().unwrap().contains("-area_mu"));

    let stats = query("/api/v1/stats");
    assert_eq!(stats["batch"]["type"], "integer");
    assert_eq!(stats["level"]["type"], "string");
    assert_eq!(
        stats.into_keys().collect::<BTreeSet<_>>(),
        fields_of::<StatsQuery>().0
    );
    let parcels = query("/api/v1/batches/{id}/parcels");
    assert_eq!(parcels["bbox"]["type"], "string");
    assert_eq!(parcels["limit"]["type"], "integer");
    assert_eq!(
        parcels.into_keys().collect::<BTreeSet<_>>(),
        fields_of::<gengdi_service::api::parcels::ParcelQuery>().0
    );
    // Only those three routes take query parameters.
    for r in routes() {
        let method = r.method.as_str().to_ascii_lowercase();
        let n = doc["paths"][r.path][&method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .count();
        let expected = [
            "/api/v1/changes",
            "/api/v1/stats",
            "/api/v1/batches/{id}/parcels",
        ]
        .contains(&r.path);
        assert_eq!(n > 0, expected, "{method} {}", r.path);
    }
}

/// Every `$ref` under `v`, with where it is.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let here = format!("{at}/{k}");
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push((here, r.clone())),
                    _ => refs(x, &here, out),
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_ref_resolves_and_every_success_is_described() {
    let s = service().await;
    let (_, doc) = s.send("GET", "/openapi.json", None, None).await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut found = Vec::new();
    refs(&doc, "", &mut found);
    assert!(found.len() > 40, "{}", found.len());
    let mut used = BTreeSet::new();
    for (at, r) in &found {
        let name = r
            .strip_prefix(COMPONENTS)
            .unwrap_or_else(|| panic!("{at}: {r} is not under {COMPONENTS}"));
        assert!(schemas.contains_key(name), "{at}: {r} resolves to nothing");
        used.insert(name.to_string());
    }
    // Every named schema is used, and the handlers' main types are among them.
    assert_eq!(used, schemas.keys().cloned().collect::<BTreeSet<_>>());
    for name in [
        "Error",
        "BatchRequest",
        "BatchView",
        "ProgressView",
        "JobStatus",
        "FarmlandRecord",
        "AdminLayerRecord",
        "ChangeRecord",
        "ChangeList",
        "AdminCodes",
        "PatchStatus",
        "VerdictRecord",
        "Role",
        "TrainingJobRecord",
        "TrainingRequest",
        "Stats",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
    // The error body every failure carries.
    let error = &schemas["Error"];
    assert_eq!(
        names(&error["properties"]),
        strings(&["code", "message", "details"])
    );
    assert_eq!(names(&error["required"]), strings(&["code", "message"]));
    // The data dir path of a layer is not the client's business.
    assert!(schemas["FarmlandRecord"]["properties"]
        .get("stored_path")
        .is_none());
    // Every route says what a success carries: a JSON schema or other media types.
    for r in routes() {
        let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
        let successes: Vec<(&String, &Value)> = op["responses"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with('2'))
            .collect();
        assert!(!successes.is_empty(), "{} {}", r.method, r.path);
        for (status, res) in successes {
            assert!(
                res["content"].as_object().is_some_and(|c| !c.is_empty()),
                "{} {} {status}: {res}",
                r.method,
                r.path
            );
        }
        assert_eq!(
            op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
            format!("{COMPONENTS}Error")
        );
    }
    let png = &doc["paths"]["/api/v1/changes/{id}/chips/{date}.png"]["get"]["responses"]["200"];
    assert!(png["content"].get("image/png").is_some());
}

/// Check `value` against `schema` (following `$ref`s): types, `const`/`enum`, required
/// properties, every property of an object declared (or, for maps, its values checked against
/// `additionalProperties`), array items, `anyOf`/`oneOf` alternatives.
fn conform(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    let o = match schema {
        Value::Bool(true) => return,
        Value::Object(o) => o,
        _ => {
            errors.push(format!("{at}: schema {schema} admits nothing"));
            return;
        }
    };
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = o.get(key).and_then(Value::as_array) {
            let fits = alternatives.iter().any(|alt| {
                let mut e = Vec::new();
                conform(doc, alt, value, at, &mut e);
                e.is_empty()
            });
            if !fits {
                errors.push(format!("{at}: {value} fits no alternative of {key}"));
            }
        }
    }
    if let Some(c) = o.get("const") {
        if c != value {
            errors.push(format!("{at}: {value} is not {c}"));
        }
    }
    if let Some(e) = o.get("enum").and_then(Value::as_array) {
        if !e.contains(value) {
            errors.push(format!("{at}: {value} is not one of {e:?}"));
        }
    }
    if let Some(ty) = o.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !fits {
            errors.push(format!("{at}: {value} is not of type {ty}"));
        }
    }
    if let Value::Object(fields) = value {
        let properties = o.get("properties").and_then(Value::as_object);
        for (k, v) in fields {
            let here = format!("{at}.{k}");
            match (
                properties.and_then(|p| p.get(k)),
                o.get("additionalProperties"),
            ) {
                (Some(p), _) => conform(doc, p, v, &here, errors),
                (None, Some(extra)) if properties.is_none() => {
                    conform(doc, extra, v, &here, errors)
                }
                (None, _) if properties.is_some() => {
                    errors.push(format!("{here}: not declared in the schema"))
                }
                (None, _) => {}
            }
        }
        for r in o
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str() {
                if !fields.contains_key(r) {
                    errors.push(format!("{at}: required `{r}` missing"));
                }
            }
        }
    }
    if let (Value::Array(items), Some(schema)) = (value, o.get("items")) {
        for (i, v) in items.iter().enumerate() {
            conform(doc, schema, v, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Send `method uri` as admin and check the answer against the document's schema for that
/// route and status (the error schema for an error).
async fn conforms(
    s: &TestService,
    doc: &Value,
    method: &str,
    uri: &str,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let (status, value) = s.send(method, uri, Some(&s.tokens.admin), body).await;
    let responses = &doc["paths"][path][method.to_ascii_lowercase()]["responses"];
    let response = match responses.get(status.as_str()) {
        Some(r) => r,
        None if !status.is_success() => &responses["default"],
        None => panic!("{method} {uri}: {status} is not in the document: {responses}"),
    };
    let schema = &response["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {uri} {status}: no schema");
    let mut errors = Vec::new();
    conform(doc, schema, &value, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {uri} {status}: {errors:#?}\n{value:#}"
    );
    (status, value)
}

#[tokio::test]
async fn responses_conform_to_their_schemas() {
    use gengdi_service::store::NewAdminLayer;
    let s = service().await;
    let (farmland, batch) = s.seed(three_patches()).await;
    let admin = s.store.list_tokens().await.unwrap()[0].id;
    let layer = s
        .store
        .insert_admin_layer(NewAdminLayer {
            name: "units".into(),
            source: "units.gpkg".into(),
            stored_path: "/nonexistent/units.gpkg".into(),
            mapping: String::new(),
            layers: vec!["villages".into()],
            features: 3,
            used: 3,
            rejected: 0,
            units: json!({"county": 1, "township": 1, "village": 3, "group": 0}),
            fields_used: json!({"villages": {"code": "ZLDWDM"}}),
            created_by: admin,
        })
        .await
        .unwrap();
    let job = s
        .store
        .create_training_job(json!({"task": "landcover", "epochs": 3}), 3, admin)
        .await
        .unwrap();
    let (_, doc) = s.send("GET", "/openapi.json", None, None).await;

    let (_, page) = conforms(
        &s,
        &doc,
        "GET",
        "/api/v1/changes?limit=2",
        "/api/v1/changes",
        None,
    )
    .await;
    assert!(page["next_cursor"].is_string(), "{page}");
    let change = page["items"][0]["id"].as_i64().unwrap();
    let (status, recorded) = conforms(
        &s,
        &doc,
        "POST",
        &format!("/api/v1/changes/{change}/verdicts"),
        "/api/v1/changes/{id}/verdicts",
        Some(r#"{"verdict": "confirmed", "note": "seen"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let (_, detail) = conforms(
        &s,
        &doc,
        "GET",
        &format!("/api/v1/changes/{change}"),
        "/api/v1/changes/{id}",
        None,
    )
    .await;
    assert!(detail["geometry"].is_object() && detail["verdicts"][0]["role"] == "admin");
    let (_, view) = conforms(
        &s,
        &doc,
        "GET",
        &format!("/api/v1/batches/{batch}"),
        "/api/v1/batches/{id}",
        None,
    )
    .await;
    assert_eq!(view["status"], "done");
    for (uri, path) in [
        ("/healthz".to_string(), "/healthz"),
        (
            "/api/v1/changes?sort=-area_mu&pbf=true".into(),
            "/api/v1/changes",
        ),
        (
            format!("/api/v1/changes/{change}/verdicts"),
            "/api/v1/changes/{id}/verdicts",
        ),
        ("/api/v1/batches".into(), "/api/v1/batches"),
        ("/api/v1/farmland".into(), "/api/v1/farmland"),
        (
            format!("/api/v1/farmland/{farmland}"),
            "/api/v1/farmland/{id}",
        ),
        ("/api/v1/admin-layers".into(), "/api/v1/admin-layers"),
        (
            format!("/api/v1/admin-layers/{}", layer.id),
            "/api/v1/admin-layers/{id}",
        ),
        ("/api/v1/stats?level=village".into(), "/api/v1/stats"),
        (format!("/api/v1/stats?batch={batch}"), "/api/v1/stats"),
        ("/api/v1/models".into(), "/api/v1/models"),
        ("/api/v1/training".into(), "/api/v1/training"),
        (
            format!("/api/v1/training/{}", job.id),
            "/api/v1/training/{id}",
        ),
        // Errors: the error body.
        ("/api/v1/batches/999".into(), "/api/v1/batches/{id}"),
        ("/api/v1/changes?limit=0".into(), "/api/v1/changes"),
    ] {
        conforms(&s, &doc, "GET", &uri, path, None).await;
    }
    // A cancelled training job, and a finished batch refused (409, with the error body).
    let (status, _) = conforms(
        &s,
        &doc,
        "POST",
        &format!("/api/v1/training/{}/cancel", job.id),
        "/api/v1/training/{id}/cancel",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = conforms(
        &s,
        &doc,
        "POST",
        &format!("/api/v1/batches/{batch}/cancel"),
        "/api/v1/batches/{id}/cancel",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The checker itself refuses a property the schema does not declare.
    let mut errors = Vec::new();
    let mut extra = view.clone();
    extra["surprise"] = json!(1);
    let schema = &doc["paths"]["/api/v1/batches/{id}"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    conform(&doc, schema, &extra, "$", &mut errors);
    assert_eq!(
        errors,
        vec!["$.surprise: not declared in the schema".to_string()]
    );
}
