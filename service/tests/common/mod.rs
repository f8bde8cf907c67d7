//! Shared by the service's tests: a service over a fresh data dir, tokens of every role,
//! requests sent in-process.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use gengdi_service::auth::{new_token, token_digest, Role};
use gengdi_service::jobs::{CancelToken, JobError, JobExecutor, JobSpec, Jobs, ProgressSink};
use gengdi_service::store::{
    AdminCodes, BatchCreated, JobOutcome, NewBatch, NewFarmland, NewPatch, NewToken, PgStore,
    SqliteStore, Store,
};
use gengdi_service::{app, AppState, ServiceConfig};
use std::sync::Arc;
use tower::ServiceExt;

/// An executor for tests that never runs (the router tests start no worker).
pub struct Never;

impl JobExecutor for Never {
    fn run(
        &self,
        _: &JobSpec,
        _: &ProgressSink,
        _: &CancelToken,
    ) -> Result<Vec<NewPatch>, JobError> {
        Err(JobError::Cancelled)
    }
}

pub struct Tokens {
    pub admin: String,
    pub centre: String,
    /// Inspector of county 640502.
    pub inspector: String,
    /// Inspector of county 640521.
    pub inspector_other: String,
    /// Inspector of a county with no patches.
    pub inspector_empty: String,
    pub researcher: String,
    pub revoked: String,
}

impl Tokens {
    pub fn of(&self, role: Role) -> &str {
        match role {
            Role::Admin => &self.admin,
            Role::Centre => &self.centre,
            Role::Inspector => &self.inspector,
            Role::Researcher => &self.researcher,
        }
    }
}

/// The store under test, for statements the trait does not offer (showing what the schema
/// refuses, undoing what a test set up).
#[derive(Clone)]
pub enum RawStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl RawStore {
    pub async fn execute_raw(&self, statement: &str) -> Result<u64, gengdi_service::ServiceError> {
        match self {
            RawStore::Sqlite(s) => s.execute_raw(statement.into()).await.map(|n| n as u64),
            RawStore::Postgres(s) => s.execute_raw(statement.into()).await,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, RawStore::Postgres(_))
    }
}

/// The environment variable naming a PostgreSQL/PostGIS database (a URL) that the service's
/// tests then run against instead of the embedded SQLite store (`scripts/test.sh` starts
/// one and runs the API tests a second time with it set).
pub const POSTGRES_ENV: &str = "GENGDI_TEST_POSTGRES";

/// A new, empty store: in `data_dir` (SQLite), or, when [`POSTGRES_ENV`] is set, in a new
/// schema of that database (each test its own, so tests run in parallel).
pub async fn open_store(data_dir: &std::path::Path) -> (Arc<dyn Store>, RawStore) {
    match postgres_schema_url().await {
        Some(url) => {
            let store = Arc::new(PgStore::connect(&url).await.unwrap());
            (store.clone(), RawStore::Postgres(store))
        }
        None => {
            let store = Arc::new(SqliteStore::open(data_dir).unwrap());
            (store.clone(), RawStore::Sqlite(store))
        }
    }
}

/// When [`POSTGRES_ENV`] is set: a new, empty schema in that database, and the URL whose
/// connections use it (PostGIS's types come from `public`, where the test server has it).
pub async fn postgres_schema_url() -> Option<String> {
    let base = std::env::var(POSTGRES_ENV).ok().filter(|b| !b.is_empty())?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!(
        "t_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={base}: {e}"));
    let conn = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!(
        "{base}{sep}options=-csearch_path%3D{schema}%2Cpublic"
    ))
}

pub struct TestService {
    pub dir: tempfile::TempDir,
    pub config: ServiceConfig,
    pub store: Arc<dyn Store>,
    pub raw: RawStore,
    pub state: AppState,
    pub tokens: Tokens,
}

pub async fn token(
    store: &dyn Store,
    role: Role,
    region: Option<&str>,
    name: &str,
) -> (i64, String) {
    let t = new_token().unwrap();
    let rec = store
        .create_token(NewToken {
            name: name.into(),
            role,
            region: region.map(String::from),
            digest: token_digest(&t),
        })
        .await
        .unwrap();
    (rec.id, t)
}

/// A service over a new data dir, no worker running, no rate limit (the role matrix sends
/// hundreds of requests a second with one token).
pub async fn service() -> TestService {
    service_with(|_| {}).await
}

/// [`service`] with settings changed by `change`.
#[allow(dead_code)]
pub async fn service_with(change: impl FnOnce(&mut ServiceConfig)) -> TestService {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServiceConfig {
        data_dir: dir.path().join("data"),
        import_root: dir.path().join("import"),
        body_limit: 4096,
        rate_limit: 0.0,
        ..ServiceConfig::default()
    };
    change(&mut config);
    let (store, raw) = open_store(&config.data_dir).await;
    let tokens = Tokens {
        admin: token(&*store, Role::Admin, None, "admin").await.1,
        centre: token(&*store, Role::Centre, None, "centre").await.1,
        inspector: token(&*store, Role::Inspector, Some("640502"), "inspector 640502")
            .await
            .1,
        inspector_other: token(&*store, Role::Inspector, Some("640521"), "inspector 640521")
            .await
            .1,
        inspector_empty: token(&*store, Role::Inspector, Some("640522"), "inspector 640522")
            .await
            .1,
        researcher: token(&*store, Role::Researcher, None, "researcher").await.1,
        revoked: {
            let (id, t) = token(&*store, Role::Admin, None, "gone").await;
            assert!(store.revoke_token(id).await.unwrap());
            t
        },
    };
    let jobs = Arc::new(Jobs::new(store.clone(), Arc::new(Never)));
    let state = AppState::new(&config, store.clone(), jobs).unwrap();
    TestService {
        dir,
        config,
        store,
        raw,
        state,
        tokens,
    }
}

impl TestService {
    pub fn app(&self) -> Router {
        app(self.state.clone())
    }

    /// Send a request; the status and the JSON body (Null when empty).
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(
                body.map(|b| Body::from(b.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        self.send_request(req).await
    }

    pub async fn send_request(&self, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let res = self.app().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, json)
    }

    /// A farmland record (no file behind it) and a done batch holding `patches`; returns
    /// (farmland id, batch id).
    pub async fn seed(&self, patches: Vec<NewPatch>) -> (i64, i64) {
        let admin = self.store.list_tokens().await.unwrap()[0].id;
        let f = self
            .store
            .insert_farmland(NewFarmland {
                name: "seed".into(),
                source: "seed.gpkg".into(),
                stored_path: "/nonexistent/seed.gpkg".into(),
                layer: "parcels".into(),
                mapping: String::new(),
                features: 2,
                parcels: 2,
                used: 2,
                repaired: 0,
                rejected: 0,
                area_mu: 30.0,
                pbf_area_mu: 15.0,
                fields_used: serde_json::json!({"id": "TBBH"}),
                created_by: admin,
            })
            .await
            .unwrap();
        (f.id, self.done_batch(f.id, patches).await)
    }

    /// A done batch over farmland layer `farmland` (no scene file behind it) holding
    /// `patches`; returns its id.
    pub async fn done_batch(&self, farmland: i64, patches: Vec<NewPatch>) -> i64 {
        let admin = self.store.list_tokens().await.unwrap()[0].id;
        let BatchCreated::New(b) = self
            .store
            .create_batch(NewBatch {
                options: Default::default(),
                name: Some("seed".into()),
                farmland,
                scenes: vec!["/nonexistent/a.tif".into()],
                created_by: admin,
                idempotency: None,
            })
            .await
            .unwrap()
        else {
            panic!("not new")
        };
        let claimed = self.store.claim_job().await.unwrap().unwrap();
        assert_eq!(claimed.id, b.id);
        self.store
            .finish_job(b.id, JobOutcome::Done(patches))
            .await
            .unwrap();
        b.id
    }
}

/// A patch in village `village` (12 digits) with a square bbox at (`x`, `y`).
pub fn patch(reference: &str, kind: &str, village: &str, x: f64, y: f64, mu: f64) -> NewPatch {
    let sq = vec![vec![vec![
        (x, y),
        (x + 0.001, y),
        (x + 0.001, y + 0.001),
        (x, y + 0.001),
    ]]];
    NewPatch {
        series: None,
        reference: reference.into(),
        kind: kind.into(),
        parcel: format!("P-{reference}"),
        pbf: true,
        area_m2: mu * 2000.0 / 3.0,
        area_mu: mu,
        admin: AdminCodes {
            county_code: Some(village[..6].into()),
            township_code: Some(village[..9].into()),
            village_code: Some(village.into()),
            group_code: None,
            location_code: Some(village.into()),
            county_name: None,
            township_name: None,
            village_name: None,
            group_name: None,
        },
        class_before: "cropland".into(),
        class_after: "water".into(),
        dates: vec!["2024-04-20".into(), "2024-06-10".into()],
        confidence: 0.9,
        model_version: "test".into(),
        evidence: "test".into(),
        geometry: gengdi_service::geometry::geojson_multipolygon(&sq).to_string(),
        bbox: gengdi_service::geometry::bbox(&sq).unwrap(),
    }
}

/// Three patches: two in county 640502 (ids 1, 2), one in 640521 (id 3).
pub fn three_patches() -> Vec<NewPatch> {
    vec![
        patch("a1", "fishpond", "640502101001", 105.10, 37.50, 12.5),
        patch("a2", "abandonment", "640502104002", 105.20, 37.52, 3.25),
        patch("b1", "construction", "640521100003", 105.60, 37.30, 7.0),
    ]
}

/// Wait (up to 10 minutes) until the job of batch `id` is done; any other end panics.
pub async fn wait_done(store: &dyn Store, id: i64) {
    use gengdi_service::store::JobStatus;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let b = store.batch(id).await.unwrap().unwrap();
        match b.status {
            JobStatus::Done => return,
            JobStatus::Queued | JobStatus::Running => {
                assert!(std::time::Instant::now() < deadline, "{b:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => panic!("batch {id} {other:?}: {b:?}"),
        }
    }
}

/// The XYZ tile (x, y) holding longitude / latitude at zoom z.
pub fn tile_of(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor() as u32;
    let lat = lat.to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor()
        as u32;
    (x, y)
}

/// Bands `bands` (1-based; empty: every band) of `scene` as GDAL's own `gdalwarp` puts them
/// on the Web Mercator tile `bounds` (`resampling`, nodata 0 → NaN), row-major 256 × 256
/// each.
pub fn gdalwarp_tile(
    scene: &std::path::Path,
    bands: &[usize],
    bounds: [f64; 4],
    resampling: &str,
    out: &std::path::Path,
) -> Vec<Vec<f32>> {
    let source = if bands.is_empty() {
        scene.to_path_buf()
    } else {
        let vrt = out.with_extension("vrt");
        let mut translate = std::process::Command::new("gdal_translate");
        translate.args(["-q", "-of", "VRT"]);
        for b in bands {
            translate.args(["-b", &b.to_string()]);
        }
        assert!(translate.arg(scene).arg(&vrt).status().unwrap().success());
        vrt
    };
    let status = std::process::Command::new("gdalwarp")
        .args(["-q", "-overwrite", "-t_srs", "EPSG:3857", "-te"])
        .args(bounds.iter().map(|b| format!("{b:.10}")))
        .args(["-ts", "256", "256", "-r", resampling, "-ot", "Float32"])
        .args(["-srcnodata", "0", "-dstnodata", "nan"])
        .arg(&source)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
    let ds = gdal::Dataset::open(out).unwrap();
    (1..=ds.raster_count())
        .map(|b| {
            ds.rasterband(b)
                .unwrap()
                .read_as::<f32>((0, 0), (256, 256), (256, 256), None)
                .unwrap()
                .data()
                .to_vec()
        })
        .collect()
}
