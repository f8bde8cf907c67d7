//! Shared runs on PostgreSQL/PostGIS: batches analysed by `gengdi worker` processes through
//! the database's task queue give exactly the patches of one process; a worker killed with
//! SIGKILL in the middle of a tile has its task taken over (nothing lost, nothing stored
//! twice); a database killed and restarted in the middle of a batch is waited for and the
//! batch completes; a model activated through the server is copied from the database to a
//! worker that never had it, which plans the next batch with it. A real PostgreSQL 15 +
//! PostGIS 3 server (started by
//! `scripts/pg-test-server.sh` in a temporary directory, on a free port) and real processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_inference::rules::RulesConfig;
use gengdi_models::{DeviceChoice, Registry};
use gengdi_service::auth::{Role, Scope};
use gengdi_service::jobs::analysis_adapter::{data_dir_registry, load_models, AnalysisExecutor};
use gengdi_service::jobs::{CancelToken, JobExecutor, JobSpec, ProgressSink};
use gengdi_service::store::{
    BatchCreated, BatchOptions, ChangeFilter, JobStatus, NewBatch, NewFarmland, NewPatch, NewToken,
    PgStore, Store,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn slovenia() -> PathBuf {
    root().join("fixtures/data/eolearn-slovenia-s2")
}

/// Tile side of every batch here: the Slovenia scene in 32 px tiles has a dozen tiles with
/// farmland.
const TILE: usize = 32;
/// Short leases, so that a lost worker's task is taken over quickly.
const LEASE_S: &str = "2";

/// A PostgreSQL server of its own (these tests kill it), removed on drop.
struct Server {
    dir: tempfile::TempDir,
    url: String,
}

fn script() -> PathBuf {
    root().join("scripts/pg-test-server.sh")
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("gengdi-pg-")
            .tempdir()
            .unwrap();
        let pg = dir.path().join("pg");
        let out = Command::new(script())
            .arg("start")
            .arg(&pg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot start PostgreSQL (run scripts/install-deps.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Server { dir, url }
    }

    fn run(&self, what: &str) {
        let ok = Command::new(script())
            .arg(what)
            .arg(self.dir.path().join("pg"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg-test-server.sh {what}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .status();
    }
}

/// A `gengdi worker` process; its stderr goes to `log`.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(url: &str, data: &Path, log: PathBuf) -> Worker {
        let child = Command::new(env!("CARGO_BIN_EXE_gengdi"))
            .args(["worker", "--database", url, "--tile", &TILE.to_string()])
            .args(["--lease-s", LEASE_S, "--concurrency", "1", "--threads", "1"])
            .arg("--data-dir")
            .arg(data)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Worker { child, log }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .unwrap()
            .success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The site: a data dir with the models, a token, the Slovenia farmland layer; the single
/// process's patches to compare with.
struct Site {
    data: tempfile::TempDir,
    store: PgStore,
    admin: i64,
    farmland: i64,
    rules: RulesConfig,
}

fn scenes() -> Vec<String> {
    ["20150711", "20150731", "20150820", "20150830", "20150909"]
        .iter()
        .map(|d| {
            slovenia()
                .join(format!("s2l1c_{d}_13band.tif"))
                .display()
                .to_string()
        })
        .collect()
}

async fn site(url: &str) -> Site {
    let data = tempfile::tempdir().unwrap();
    // The workers share this data dir: its models are copied in before they start.
    data_dir_registry(data.path(), &Registry::new(root().join("models/weights"))).unwrap();
    let store = PgStore::connect(url).await.unwrap();
    let admin = store
        .create_token(NewToken {
            name: "admin".into(),
            role: Role::Admin,
            region: None,
            digest: "d".into(),
        })
        .await
        .unwrap()
        .id;
    let farmland = store
        .insert_farmland(NewFarmland {
            name: "slovenia".into(),
            source: "lulc_raba_polygons.gpkg".into(),
            stored_path: slovenia()
                .join("lulc_raba_polygons.gpkg")
                .display()
                .to_string(),
            layer: "LULC".into(),
            mapping: "land_class=RABA_ID".into(),
            features: 0,
            parcels: 0,
            used: 0,
            repaired: 0,
            rejected: 0,
            area_mu: 0.0,
            pbf_area_mu: 0.0,
            fields_used: serde_json::json!({}),
            created_by: admin,
        })
        .await
        .unwrap()
        .id;
    Site {
        data,
        store,
        admin,
        farmland,
        rules: RulesConfig::load(&root().join("fixtures/slovenia-rules.toml")).unwrap(),
    }
}

impl Site {
    async fn batch(&self, name: &str) -> i64 {
        let BatchCreated::New(b) = self
            .store
            .create_batch(NewBatch {
                name: Some(name.into()),
                farmland: self.farmland,
                scenes: scenes(),
                options: BatchOptions {
                    rules: Some(serde_json::to_value(&self.rules).unwrap()),
                    ..BatchOptions::default()
                },
                created_by: self.admin,
                idempotency: None,
            })
            .await
            .unwrap()
        else {
            panic!("not new")
        };
        b.id
    }

    /// What one process gives for the same batch (the embedded store's executor).
    fn single_process(&self) -> Vec<NewPatch> {
        let registry = Registry::new(self.data.path().join("models"));
        let models = load_models(&registry, DeviceChoice::NdArray, true).unwrap();
        let executor = AnalysisExecutor::new(models, TILE, u64::MAX);
        let spec = JobSpec {
            batch: 0,
            scenes: scenes().into_iter().map(PathBuf::from).collect(),
            farmland: slovenia().join("lulc_raba_polygons.gpkg"),
            farmland_layer: "LULC".into(),
            farmland_mapping: "land_class=RABA_ID".into(),
            admin: None,
            baseline: Vec::new(),
            rules: self.rules.clone(),
            checkpoint: None,
        };
        executor
            .run(&spec, &ProgressSink::default(), &CancelToken::default())
            .unwrap()
    }

    async fn wait_done(&self, batch: i64, workers: &[&Worker]) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            // The database may be restarting: a failed read is tried again.
            if let Ok(Some(b)) = self.store.batch(batch).await {
                match b.status {
                    JobStatus::Done => return,
                    JobStatus::Queued | JobStatus::Running => {}
                    _ => panic!("{b:?}\n{}", logs(workers)),
                }
                assert!(Instant::now() < deadline, "{b:?}\n{}", logs(workers));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The stored patches of `batch`, as comparable values.
    async fn stored(&self, batch: i64) -> Vec<serde_json::Value> {
        let page = self
            .store
            .list_changes(
                &Scope::All,
                &ChangeFilter {
                    batch: Some(batch),
                    limit: 10_000,
                    geometry: true,
                    ..ChangeFilter::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total as usize, page.items.len());
        let mut out = Vec::new();
        for p in page.items {
            let series = self.store.change(&Scope::All, p.id).await.unwrap().unwrap();
            out.push(comparable(
                &p.reference,
                &p.kind,
                &p.parcel,
                p.area_mu,
                &p.dates,
                p.confidence,
                &p.evidence,
                p.geometry.clone().unwrap(),
                serde_json::to_value(&series.series).unwrap(),
            ));
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn comparable(
    reference: &str,
    kind: &str,
    parcel: &str,
    area_mu: f64,
    dates: &[String],
    confidence: f64,
    evidence: &str,
    geometry: serde_json::Value,
    series: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "reference": reference, "kind": kind, "parcel": parcel, "area_mu": area_mu,
        "dates": dates, "confidence": confidence, "evidence": evidence,
        "geometry": geometry, "series": series,
    })
}

fn expected(patches: &[NewPatch]) -> Vec<serde_json::Value> {
    patches
        .iter()
        .map(|p| {
            comparable(
                &p.reference,
                &p.kind,
                &p.parcel,
                p.area_mu,
                &p.dates,
                p.confidence,
                &p.evidence,
                serde_json::from_str(&p.geometry).unwrap(),
                serde_json::to_value(&p.series).unwrap(),
            )
        })
        .collect()
}

fn logs(workers: &[&Worker]) -> String {
    workers
        .iter()
        .map(|w| format!("--- worker {}:\n{}", w.pid(), w.log()))
        .collect()
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

/// Every tile of `batch` has exactly one task, done, and the plan counted them.
async fn every_tile_once(url: &str, batch: i64) -> i64 {
    let c = client(url).await;
    let r = c
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE status = 'done'), count(DISTINCT tile),
                    (SELECT tiles FROM batch_plans WHERE batch_id = $1)
             FROM tasks WHERE batch_id = $1 AND kind = 'tile'",
            &[&batch],
        )
        .await
        .unwrap();
    let (n, done, distinct, planned): (i64, i64, i64, i64) =
        (r.get(0), r.get(1), r.get(2), r.get(3));
    assert_eq!((n, done, distinct), (planned, planned, planned));
    assert!(planned >= 10, "{planned} tiles");
    planned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_batches_and_survive_a_killed_worker_and_a_restarted_database() {
    let server = Server::start();
    let site = site(&server.url).await;
    let want = expected(&site.single_process());
    assert!(want.len() >= 5, "{} patches", want.len());
    let logs_dir = tempfile::tempdir().unwrap();
    let log = |name: &str| logs_dir.path().join(format!("{name}.log"));

    // 1. Two workers on one batch: the single process's patches, each tile once.
    let a = Worker::start(&server.url, site.data.path(), log("a"));
    let b = Worker::start(&server.url, site.data.path(), log("b"));
    let first = site.batch("two workers").await;
    site.wait_done(first, &[&a, &b]).await;
    assert_eq!(site.stored(first).await, want);
    every_tile_once(&server.url, first).await;
    drop((a, b));

    // 2. A worker stopped in the middle of a tile, then killed: another takes its task over.
    let second = site.batch("a killed worker").await;
    let c = client(&server.url).await;
    let victim = Worker::start(&server.url, site.data.path(), log("victim"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let held: i64 = loop {
        assert!(Instant::now() < deadline, "{}", logs(&[&victim]));
        let running = c
            .query_opt(
                "SELECT id FROM tasks WHERE batch_id = $1 AND kind = 'tile' AND status = 'running'",
                &[&second],
            )
            .await
            .unwrap();
        if running.is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        victim.signal("-STOP");
        // Frozen: whatever tile it holds now, it holds until it dies. A statement it sent just
        // before the stop (finishing a tile) may still be landing in the database: let it land
        // before asking which task is held (under load, a tile finished in that window was
        // taken for the held one and then found done by the victim itself).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let held = c
            .query_opt(
                "SELECT id FROM tasks WHERE batch_id = $1 AND kind = 'tile' AND status = 'running'",
                &[&second],
            )
            .await
            .unwrap();
        match held {
            Some(r) => break r.get(0),
            None => victim.signal("-CONT"),
        }
    };
    victim.signal("-KILL");
    let done_before: i64 = c
        .query_one(
            "SELECT count(*) FROM tasks WHERE batch_id = $1 AND status = 'done'",
            &[&second],
        )
        .await
        .unwrap()
        .get(0);
    let rescuer = Worker::start(&server.url, site.data.path(), log("rescuer"));
    site.wait_done(second, &[&victim, &rescuer]).await;
    assert_eq!(site.stored(second).await, want);
    every_tile_once(&server.url, second).await;
    let r = c
        .query_one(
            "SELECT attempts, status, worker FROM tasks WHERE id = $1",
            &[&held],
        )
        .await
        .unwrap();
    let (attempts, status, worker): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
    assert_eq!((attempts, status.as_str()), (2, "done"), "{worker}");
    assert!(
        !worker.contains(&format!(":{}:", victim.pid())),
        "the killed worker's task was finished by {worker}"
    );
    assert!(
        rescuer.log().contains("taken over") || logs(&[&rescuer]).contains("claim 2"),
        "{}",
        logs(&[&rescuer])
    );
    println!("killed worker: {done_before} tasks done before the kill");
    drop(c);

    // 3. The database killed and restarted while a batch runs: the workers wait for it and
    //    the batch completes with the same patches.
    let other = Worker::start(&server.url, site.data.path(), log("other"));
    let third = site.batch("a restarted database").await;
    let c = client(&server.url).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "{}", logs(&[&rescuer, &other]));
        let planned = c
            .query_opt("SELECT 1 FROM batch_plans WHERE batch_id = $1", &[&third])
            .await
            .unwrap();
        if planned.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(c);
    server.run("kill");
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.run("restart");
    site.wait_done(third, &[&rescuer, &other]).await;
    assert_eq!(site.stored(third).await, want);
    every_tile_once(&server.url, third).await;
    let both = logs(&[&rescuer, &other]);
    assert!(
        both.contains("cannot claim a task") || both.contains("unreachable"),
        "the workers never saw the database go: {both}"
    );
}

/// `curl` (installed by scripts/install-deps.sh): the status and the JSON body.
fn curl(url: &str, token: &str, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d"])
            .arg(b.to_string());
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    let value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (status.trim().parse().unwrap(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_no_local_worker_queues_batches_for_gengdi_worker_processes() {
    let server = Server::start();
    let site = site(&server.url).await;
    let want = site.single_process().len();
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("import");
    std::fs::create_dir_all(&import).unwrap();
    let mut scenes = Vec::new();
    for s in scenes_on_disk() {
        let name = s.file_name().unwrap().to_owned();
        std::fs::copy(&s, import.join(&name)).unwrap();
        scenes.push(name.to_string_lossy().into_owned());
    }
    std::fs::copy(
        slovenia().join("lulc_raba_polygons.gpkg"),
        import.join("farmland.gpkg"),
    )
    .unwrap();
    // The token, made on the command line against the database.
    let token = token_of(&server.url, site.data.path(), "centre");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    std::fs::write(dir.path().join("gengdi.toml"), format!("tile = {TILE}\n")).unwrap();
    let log = dir.path().join("serve.log");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_gengdi"))
        .args(["serve", "--database", &server.url, "--workers", "0"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(site.data.path())
        .arg("--import-root")
        .arg(&import)
        .arg("--config")
        .arg(dir.path().join("gengdi.toml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while curl(&format!("{url}/healthz"), &token, None).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, farmland) = curl(
        &format!("{url}/api/v1/farmland"),
        &token,
        Some(&serde_json::json!({"path": "farmland.gpkg", "mapping": {"land_class": "RABA_ID"}})),
    );
    assert_eq!(status, 201, "{farmland}");
    let submit = || {
        let (status, batch) = curl(
            &format!("{url}/api/v1/batches"),
            &token,
            Some(&serde_json::json!({
                "scenes": scenes, "farmland": farmland["id"],
                "rules": serde_json::to_value(&site.rules).unwrap(),
            })),
        );
        assert_eq!(status, 202, "{batch}");
        batch["id"].as_i64().unwrap()
    };
    let id = submit();
    // No worker anywhere: the batch waits.
    std::thread::sleep(Duration::from_secs(2));
    let (_, b) = curl(&format!("{url}/api/v1/batches/{id}"), &token, None);
    assert_eq!(b["status"], "queued", "{b}");
    // One `gengdi worker`, on a machine of its own (its own data dir), takes it. Its
    // registry lacks the other land-cover model, which only the server's has.
    let worker_data = dir.path().join("worker-data");
    let theirs = site.data.path().join("models");
    let mine = worker_data.join("models");
    copy_tree(&theirs, &mine);
    std::fs::remove_dir_all(mine.join("landcover").join(OTHER_LANDCOVER)).unwrap();
    let worker = Worker::start(&server.url, &worker_data, dir.path().join("worker.log"));
    site.wait_done(id, &[&worker]).await;
    let (_, changes) = curl(
        &format!("{url}/api/v1/changes?batch={id}&limit=1000"),
        &token,
        None,
    );
    assert_eq!(
        changes["total"].as_u64().unwrap() as usize,
        want,
        "{changes}"
    );

    // The other land-cover model activated through the server: the worker, which never had
    // it, plans the next batch with it, copied from the database byte for byte.
    let (status, activated) = curl(
        &format!("{url}/api/v1/models/{OTHER_LANDCOVER}/activate"),
        &token_of(&server.url, site.data.path(), "researcher"),
        Some(&serde_json::json!({})),
    );
    assert_eq!(status, 200, "{activated}");
    let second = submit();
    site.wait_done(second, &[&worker]).await;
    let c = client(&server.url).await;
    let planned = |b: i64| {
        let c = &c;
        async move {
            let r = c
                .query_one("SELECT models FROM batch_plans WHERE batch_id = $1", &[&b])
                .await
                .unwrap();
            serde_json::from_str::<Vec<String>>(&r.get::<_, String>(0)).unwrap()
        }
    };
    let active = Registry::new(&theirs).active_id(gengdi_models::Task::LandCover);
    assert_eq!(active.unwrap().as_deref(), Some(OTHER_LANDCOVER));
    let first_models = planned(id).await;
    let second_models = planned(second).await;
    assert_ne!(first_models[0], OTHER_LANDCOVER, "{first_models:?}");
    assert_eq!(second_models[0], OTHER_LANDCOVER, "{second_models:?}");
    assert_eq!(first_models[1..], second_models[1..]);
    for f in ["card.json", "weights.bpk"] {
        let path = |r: &Path| r.join("landcover").join(OTHER_LANDCOVER).join(f);
        assert_eq!(
            std::fs::read(path(&mine)).unwrap(),
            std::fs::read(path(&theirs)).unwrap(),
            "{f}"
        );
    }
    let (_, changes) = curl(
        &format!("{url}/api/v1/changes?batch={second}&limit=1000"),
        &token,
        None,
    );
    for p in changes["items"].as_array().unwrap() {
        let version = p["model_version"].as_str().unwrap();
        assert!(version.starts_with(OTHER_LANDCOVER), "{version}");
    }
    let _ = serve.kill();
    let _ = serve.wait();
}

/// The shipped land-cover model that is not active (models/weights/landcover).
const OTHER_LANDCOVER: &str = "aad5a06d8a989c66";

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A new token of `role`, made on the command line against the database.
fn token_of(database: &str, data: &Path, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gengdi"))
        .args(["token", "create", "--role", role, "--database", database])
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

fn scenes_on_disk() -> Vec<PathBuf> {
    scenes().into_iter().map(PathBuf::from).collect()
}
