//! The route table: one list ([`routes`]) that both builds the router ([`super::app`]) and
//! writes the OpenAPI 3.1 document served at `GET /openapi.json` ([`spec`]), so the two
//! cannot drift apart.
//!
//! The document names every path and method with its summary, the roles allowed
//! (`x-roles`), its path and query parameters, the bearer-token security scheme and the JSON
//! error body every failure carries. Request and response bodies are described in the
//! summaries and the README, not as schemas (the handlers build `serde_json` values).

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{get, post, MethodRouter};

use super::{
    admin_layers, batches, changes, chips, farmland, metrics, stats, tiles, training, AppState,
};

/// One method on one path.
pub struct Route {
    pub method: Method,
    /// The axum path template (`/api/v1/changes/{id}`); OpenAPI writes parameters alike.
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it; `None`: no token.
    pub roles: Option<&'static str>,
    /// Query parameters (all optional).
    pub query: &'static [&'static str],
    pub handler: MethodRouter<AppState>,
}

const ALL_READERS: &str = "admin, centre, researcher; inspector within their region";

/// Every route the service serves.
pub fn routes() -> Vec<Route> {
    let r = |method: Method,
             path: &'static str,
             summary: &'static str,
             roles: Option<&'static str>,
             query: &'static [&'static str],
             handler: MethodRouter<AppState>| Route {
        method,
        path,
        summary,
        roles,
        query,
        handler,
    };
    let centre = Some("admin, centre");
    vec![
        r(Method::GET, "/healthz", "Liveness: {status, version}", None, &[], get(super::healthz)),
        r(Method::GET, "/metrics", "Prometheus text format 0.0.4: jobs, tiles, request latency", None, &[], get(metrics::metrics)),
        r(Method::GET, "/openapi.json", "This document", None, &[], get(openapi)),
        r(Method::GET, "/api/v1/me", "Who the token is: {name, role, region}", Some("admin, centre, inspector, researcher"), &[], get(super::me)),
        r(Method::GET, "/tiles/{batch}/{date}/{style}/{z}/{x}/{y}.png", "A 256 x 256 Web Mercator (EPSG:3857) XYZ tile of one date of a batch (YYYY-MM-DD or YYYYMMDD; its scenes or baseline scenes), style true (B04 B03 B02) or false (B08 B04 B03) colour, empty pixels transparent; 422 zoom_out when the tile spans over 2048 scene pixels", Some("admin, centre, researcher; inspector for batches with a patch in their region"), &[], get(tiles::tile)),
        r(Method::POST, "/api/v1/farmland", "Register a farmland layer under the import root: {path, layer?, mapping?, name?}, or multipart/form-data with the layer in `file` (fields layer, name, mapping as a JSON object) -> 201 the layer", centre, &[], post(farmland::create).layer(DefaultBodyLimit::disable())),
        r(Method::GET, "/api/v1/farmland", "Farmland layers: {items}", centre, &[], get(farmland::list)),
        r(Method::GET, "/api/v1/farmland/{id}", "One farmland layer", centre, &[], get(farmland::get)),
        r(Method::POST, "/api/v1/admin-layers", "Register an administrative-boundary layer under the import root: {path, mapping?, name?}, or multipart/form-data with the layer in `file` (fields name, mapping as a JSON object) -> 201 the layer with its units per level", centre, &[], post(admin_layers::create).layer(DefaultBodyLimit::disable())),
        r(Method::GET, "/api/v1/admin-layers", "Administrative-boundary layers: {items}", centre, &[], get(admin_layers::list)),
        r(Method::GET, "/api/v1/admin-layers/{id}", "One administrative-boundary layer", centre, &[], get(admin_layers::get)),
        r(Method::POST, "/api/v1/batches", "Queue an analysis: {scenes, farmland, admin?, baseline?, rules?, name?}, or multipart/form-data with each scene in a `scenes` file part, each baseline scene in a `baseline` part and fields farmland, admin, rules (JSON), name (+ Idempotency-Key) -> 202 {id, status}", centre, &[], post(batches::create).layer(DefaultBodyLimit::disable())),
        r(Method::GET, "/api/v1/batches", "Batches and their jobs: {items}", centre, &[], get(batches::list)),
        r(Method::GET, "/api/v1/batches/{id}", "One batch: status, progress {stage, tiles_done, tiles_total}", centre, &[], get(batches::get)),
        r(Method::POST, "/api/v1/batches/{id}/cancel", "Cancel a queued or running batch", centre, &[], post(batches::cancel)),
        r(Method::GET, "/api/v1/changes", "Suspected-change patches: {items, next_cursor, total}, ordered by sort=id (default)|-id|area_mu|-area_mu|confidence|-confidence (ties by ascending id); with format=geojson|csv|gpkg the whole selection as a file", Some(ALL_READERS), &["batch", "kind", "status", "region", "bbox", "min_mu", "pbf", "from", "to", "sort", "limit", "cursor", "format"], get(changes::list)),
        r(Method::GET, "/api/v1/changes/{id}", "One patch with its GeoJSON geometry (WGS 84) and verdicts", Some(ALL_READERS), &[], get(changes::get)),
        r(Method::POST, "/api/v1/changes/{id}/verdicts", "Record a field verdict: {verdict: confirmed|false_positive|rectified, note} -> 201", Some("admin; inspector within their region"), &[], post(changes::verdict)),
        r(Method::GET, "/api/v1/changes/{id}/verdicts", "A patch's verdicts, oldest first: {items}", Some(ALL_READERS), &[], get(changes::verdicts)),
        r(Method::GET, "/api/v1/changes/{id}/chips/{date}.png", "A true-colour PNG chip of the patch on one date of its batch (YYYY-MM-DD or YYYYMMDD), its outline in yellow; 404 with the batch's dates for another date", Some(ALL_READERS), &[], get(chips::chip)),
        r(Method::GET, "/api/v1/models", "The models the analyses run: {items: [{task, id}]}", Some("admin, centre, researcher"), &[], get(super::models)),
        r(Method::GET, "/api/v1/models/{id}", "The model card of a model the analyses run (by exact id)", Some("admin, centre, researcher"), &[], get(super::model)),
        r(Method::POST, "/api/v1/models/{id}/activate", "Make a model of the registry its task's active one, for batches that start from now on -> {activated, items}", Some("admin, researcher"), &[], post(training::activate)),
        r(Method::POST, "/api/v1/training", "Queue a training job: {task: landcover, batches?, epochs?, seed?, tables?} -> 202 {id, status}", Some("admin, researcher"), &[], post(training::create)),
        r(Method::GET, "/api/v1/training", "Training jobs: {items}", Some("admin, researcher"), &[], get(training::list)),
        r(Method::GET, "/api/v1/training/{id}", "One training job: status, stage, epoch (of epochs, as each ends), result (the new model and the active one's metrics on its held-out split)", Some("admin, researcher"), &[], get(training::get)),
        r(Method::POST, "/api/v1/training/{id}/cancel", "Cancel a queued training job (200) or stop a running one before its next epoch (202, no model saved); 409 when finished", Some("admin, researcher"), &[], post(training::cancel)),
        r(Method::GET, "/api/v1/stats", "Patches and mu per administrative unit by kind and status, the in/out balance of a period, farmland against the targets", Some("admin, centre, researcher; inspector within their region (no targets)"), &["level", "region", "batch", "from", "to"], get(stats::stats)),
    ]
}

/// The path parameters of a template (`{id}` → `id`, `{date}.png` → `date`).
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.split_once('}')))
        .map(|(name, _)| name)
        .collect()
}

/// The template the router matches: a parameter with a static suffix (`{date}.png`), which
/// the router cannot match, becomes the whole segment (`{date}`); the handler checks the
/// suffix.
pub fn router_path(path: &str) -> String {
    path.split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.split_once('}')) {
                Some((name, suffix)) if !suffix.is_empty() => format!("{{{name}}}"),
                _ => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn spec() -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut paths: Map<String, Value> = Map::new();
    for r in routes() {
        let mut params: Vec<Value> = path_params(r.path)
            .into_iter()
            .map(|p| {
                let ty = if p != "id" || r.path.starts_with("/api/v1/models/") {
                    "string"
                } else {
                    "integer"
                };
                json!({"name": p, "in": "path", "required": true, "schema": {"type": ty}})
            })
            .collect();
        params.extend(r.query.iter().map(
            |q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
        ));
        let mut op = json!({
            "operationId": format!("{} {}", r.method, r.path),
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "default": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
            "security": if r.roles.is_some() { json!([{"bearer": []}]) } else { json!([]) },
        });
        if let (Some(o), Some(roles)) = (op.as_object_mut(), r.roles) {
            o.insert("x-roles".into(), json!(roles));
        }
        let success = match (r.method.as_str(), r.path) {
            ("POST", "/api/v1/batches") | ("POST", "/api/v1/training") => "202",
            ("POST", "/api/v1/farmland") | ("POST", "/api/v1/changes/{id}/verdicts") => "201",
            _ => "200",
        };
        if let Some(resp) = op["responses"].as_object_mut() {
            resp.insert(success.into(), json!({"description": r.summary}));
        }
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(e) = entry.as_object_mut() {
            e.insert(r.method.as_str().to_ascii_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "gengdi", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {},
                    },
                },
            },
        },
    })
}

/// `GET /openapi.json`.
async fn openapi() -> axum::Json<serde_json::Value> {
    axum::Json(spec())
}
