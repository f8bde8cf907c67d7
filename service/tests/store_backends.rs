//! The PostgreSQL/PostGIS store against the embedded one: the same schema from the same
//! numbered definitions, the audit tables append-only in the database itself, jobs claimed
//! once by servers sharing a database, the spatial index in the query plans.
//!
//! These need a real PostgreSQL 15 + PostGIS 3 server: they are `#[ignore]`d in the plain
//! run and `scripts/test.sh` runs them (with the API tests a second time) against the server
//! it starts (`scripts/pg-test-server.sh`), with `GENGDI_TEST_POSTGRES` naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gengdi_service::store::{JobStatus, PgStore, SqliteStore, Store};

const NEEDS_PG: &str = "needs PostgreSQL: scripts/test.sh runs it with GENGDI_TEST_POSTGRES";

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

async fn url() -> String {
    common::postgres_schema_url()
        .await
        .unwrap_or_else(|| panic!("{NEEDS_PG}"))
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh runs it with GENGDI_TEST_POSTGRES"]
async fn both_backends_hold_the_same_tables_and_columns_at_the_same_version() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path()).unwrap();
    let url = url().await;
    let pg = PgStore::connect(&url).await.unwrap();
    assert_eq!(
        sqlite.schema_version().unwrap(),
        pg.schema_version().await.unwrap()
    );
    assert!(pg.schema_version().await.unwrap() >= 8);

    let conn = rusqlite::Connection::open(sqlite.path()).unwrap();
    let mut st = conn
        .prepare(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    let mut lite: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (t, c) = row.unwrap();
        lite.entry(t).or_default().insert(c);
    }
    let client = pg_client(&url).await;
    let mut post: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema()",
            &[],
        )
        .await
        .unwrap()
    {
        post.entry(r.get(0)).or_default().insert(r.get(1));
    }
    // The spatial indexes are each backend's own: SQLite's R*Tree tables (and their shadow
    // tables), PostGIS's `geom` columns.
    lite.retain(|t, _| !(t.starts_with("patch_bbox") || t.starts_with("parcel_bbox")));
    // The work queue of shared runs and the shared models are PostgreSQL's alone, as are
    // the holder and heartbeat of a running job (one server uses the embedded store).
    for t in [
        "tasks",
        "batch_plans",
        "models",
        "model_files",
        "active_models",
    ] {
        assert!(post.remove(t).is_some(), "{t}");
    }
    for t in ["jobs", "training_jobs"] {
        for c in ["owner", "heartbeat_at"] {
            assert!(post.get_mut(t).unwrap().remove(c), "{t}.{c}");
        }
    }
    for cols in post.values_mut() {
        cols.remove("geom");
    }
    assert_eq!(lite, post);
    assert!(lite.contains_key("verdicts") && lite.contains_key("training_jobs"));
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh runs it with GENGDI_TEST_POSTGRES"]
async fn the_audit_tables_refuse_changes_in_the_database_itself() {
    let s = common::service().await;
    assert!(s.raw.is_postgres(), "{NEEDS_PG}");
    s.seed(common::three_patches()).await;
    let (status, _) = s
        .send(
            "POST",
            "/api/v1/changes/1/verdicts",
            Some(&s.tokens.inspector),
            Some(r#"{"verdict":"confirmed","note":"pond dug"}"#),
        )
        .await;
    assert_eq!(status, 201);
    // Not the code: a statement sent straight to the database, by its owner.
    for statement in [
        "UPDATE verdicts SET note = 'edited'",
        "DELETE FROM verdicts",
        "TRUNCATE verdicts CASCADE",
        // (Updating and deleting photos: service/tests/photos.rs, which has some.)
        "TRUNCATE verdict_photos",
    ] {
        let err = s.raw.execute_raw(statement).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    let (_, v) = s
        .send(
            "GET",
            "/api/v1/changes/1/verdicts",
            Some(&s.tokens.admin),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["note"], "pond dug", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test.sh runs it with GENGDI_TEST_POSTGRES"]
async fn servers_sharing_a_database_claim_each_job_once() {
    let s = common::service().await;
    assert!(s.raw.is_postgres(), "{NEEDS_PG}");
    let (farmland, _) = s.seed(Vec::new()).await;
    let admin = s.store.list_tokens().await.unwrap()[0].id;
    let mut queued = BTreeSet::new();
    for i in 0..12 {
        let gengdi_service::store::BatchCreated::New(b) = s
            .store
            .create_batch(gengdi_service::store::NewBatch {
                options: Default::default(),
                name: Some(format!("b{i}")),
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
        queued.insert(b.id);
    }
    // Eight stores (eight servers' pools) claim at once until the queue is empty.
    let common::RawStore::Postgres(pg) = &s.raw else {
        panic!("{NEEDS_PG}")
    };
    let url = pg.url().to_string();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::new(PgStore::connect(&url).await.unwrap());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(b) = store.claim_job().await.unwrap() {
                got.push(b.id);
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    claimed.sort_unstable();
    assert_eq!(claimed, queued.into_iter().collect::<Vec<_>>());
    for id in claimed {
        let b = s.store.batch(id).await.unwrap().unwrap();
        assert_eq!(b.attempts, 1, "{b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test.sh runs it with GENGDI_TEST_POSTGRES"]
async fn a_server_starting_leaves_the_training_job_of_a_live_server_alone() {
    use gengdi_service::store::{TrainingOutcome, JOB_STALE_S};
    let url = url().await;
    let a = PgStore::connect(&url).await.unwrap();
    let admin = a
        .create_token(gengdi_service::store::NewToken {
            name: "admin".into(),
            role: gengdi_service::auth::Role::Admin,
            region: None,
            digest: "d".into(),
        })
        .await
        .unwrap()
        .id;
    let job = a
        .create_training_job(serde_json::json!({}), 3, admin)
        .await
        .unwrap();
    let claimed = a.claim_training_job().await.unwrap().unwrap();
    assert_eq!(claimed.id, job.id);
    // Server B starts (and its idle worker looks again later): A still beats, so A's job
    // stays A's.
    let b = PgStore::connect(&url).await.unwrap();
    assert_eq!(b.requeue_running_training().await.unwrap(), 0);
    a.heartbeat_jobs().await.unwrap();
    assert_eq!(b.requeue_running_training().await.unwrap(), 0);
    assert_eq!(b.claim_training_job().await.unwrap(), None);
    // A stops beating for longer than the limit: B queues the job again and takes it.
    b.execute_raw(format!(
        "UPDATE training_jobs SET heartbeat_at = now() - interval '{} seconds'",
        JOB_STALE_S + 1.0
    ))
    .await
    .unwrap();
    assert_eq!(b.requeue_running_training().await.unwrap(), 1);
    let again = b.claim_training_job().await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (job.id, 2));
    // A comes back and ends it: not recorded (the job is B's now); B's end is.
    let late = a
        .finish_training_job(job.id, TrainingOutcome::Failed("late".into()))
        .await
        .unwrap();
    assert_eq!(late.status, JobStatus::Running, "{late:?}");
    let done = b
        .finish_training_job(job.id, TrainingOutcome::Done(serde_json::json!({"ok": 1})))
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Done, "{done:?}");
    assert_eq!(done.error, None);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh runs it with GENGDI_TEST_POSTGRES"]
async fn stored_models_keep_their_files_and_the_first_active_model_per_task() {
    use gengdi_service::store::models::{ModelStore, StoredModel};
    let url = url().await;
    let pg = PgStore::connect(&url).await.unwrap();
    let model = |id: &str, task: &str, byte: u8| StoredModel {
        id: id.into(),
        task: task.into(),
        files: vec![
            (
                "card.json".into(),
                format!("{{\"id\":\"{id}\"}}").into_bytes(),
            ),
            ("weights.bpk".into(), vec![byte, 0, 255, byte]),
        ],
    };
    assert_eq!(pg.model_ids().await.unwrap(), Vec::<String>::new());
    pg.put_model(&model("aa", "landcover", 1)).await.unwrap();
    pg.put_model(&model("bb", "landcover", 2)).await.unwrap();
    // The same id again (another server publishing the same model) changes nothing.
    pg.put_model(&model("aa", "landcover", 9)).await.unwrap();
    assert_eq!(pg.model_ids().await.unwrap(), ["aa", "bb"]);
    assert_eq!(
        pg.get_model("aa").await.unwrap(),
        Some(model("aa", "landcover", 1))
    );
    assert_eq!(pg.get_model("cc").await.unwrap(), None);
    // The first server's active model is kept by the next one's start, replaced by an
    // activation.
    pg.set_active("landcover", "aa", true).await.unwrap();
    pg.set_active("landcover", "bb", true).await.unwrap();
    let active = || async { pg.active_models().await.unwrap() };
    assert_eq!(
        active().await,
        [("landcover".to_string(), "aa".to_string())]
    );
    pg.set_active("landcover", "bb", false).await.unwrap();
    assert_eq!(
        active().await,
        [("landcover".to_string(), "bb".to_string())]
    );
    // Only a stored model can be active.
    let e = pg.set_active("croptype", "zz", false).await.unwrap_err();
    assert!(e.to_string().contains("foreign key"), "{e}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh runs it with GENGDI_TEST_POSTGRES"]
async fn bbox_queries_use_the_spatial_index() {
    let url = url().await;
    let pg = PgStore::connect(&url).await.unwrap();
    drop(pg);
    let client = pg_client(&url).await;
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT id FROM patches p
             WHERE p.geom && ST_MakeEnvelope(105.0, 37.0, 105.5, 37.6, 4326)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(plan.iter().any(|l| l.contains("patches_geom")), "{plan:#?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh runs it with GENGDI_TEST_POSTGRES"]
async fn the_task_queue_leases_takes_over_refuses_late_results_and_cancels() {
    use gengdi_service::store::queue::{BatchPlan, Claimed, TaskKind, TaskQueue};
    use std::time::Duration;
    let s = common::service().await;
    let common::RawStore::Postgres(pg) = &s.raw else {
        panic!("{NEEDS_PG}")
    };
    let queue: Arc<dyn TaskQueue> = Arc::clone(pg).task_queue().unwrap();
    let (farmland, _) = s.seed(Vec::new()).await;
    let admin = s.store.list_tokens().await.unwrap()[0].id;
    let batch = |name: &str| gengdi_service::store::NewBatch {
        options: Default::default(),
        name: Some(name.into()),
        farmland,
        scenes: vec!["/nonexistent/a.tif".into()],
        created_by: admin,
        idempotency: None,
    };
    let gengdi_service::store::BatchCreated::New(b) =
        s.store.create_batch(batch("a")).await.unwrap()
    else {
        panic!()
    };
    let long = Duration::from_secs(60);
    let claim = |who: &'static str, lease: Duration| {
        let q = Arc::clone(&queue);
        async move {
            match q.claim_task(who, lease).await.unwrap() {
                Claimed::Task(t, batch) => Some((t, batch)),
                Claimed::Nothing => None,
            }
        }
    };
    let (plan, rec) = claim("w1", long).await.unwrap();
    assert_eq!(
        (plan.kind, rec.id, rec.status),
        (TaskKind::Plan, b.id, JobStatus::Running)
    );
    assert!(claim("w2", long).await.is_none(), "nothing else is queued");
    let the_plan = BatchPlan {
        request: serde_json::json!({"any": "request"}),
        fingerprint: "f".into(),
        tiles: 2,
        models: vec!["lc1".into(), "ct1".into()],
    };
    assert!(queue
        .finish_plan(&plan, "w1", &the_plan, &[3, 5])
        .await
        .unwrap());
    assert_eq!(queue.plan(b.id).await.unwrap(), Some(the_plan));
    let job = s.store.batch(b.id).await.unwrap().unwrap();
    assert_eq!((job.progress.tiles_done, job.progress.tiles_total), (0, 2));

    // A lease not renewed runs out: the tile is claimed again, and the first claim's late
    // result is refused.
    let (t3, _) = claim("w1", Duration::from_secs(1)).await.unwrap();
    assert_eq!((t3.kind, t3.attempts), (TaskKind::Tile(3), 1));
    let (t5, _) = claim("w2", long).await.unwrap();
    assert_eq!(t5.kind, TaskKind::Tile(5));
    assert!(claim("w3", long).await.is_none());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (again, _) = claim("w3", long).await.unwrap();
    assert_eq!((again.kind, again.attempts), (TaskKind::Tile(3), 2));
    assert!(!queue.heartbeat(&t3).await.unwrap());
    assert!(!queue.finish_tile(&t3, &[1]).await.unwrap());
    assert!(queue.heartbeat(&again).await.unwrap());
    assert!(queue.finish_tile(&again, &[3, 3]).await.unwrap());
    assert!(
        claim("w1", long).await.is_none(),
        "the merge waits for tile 5"
    );
    assert!(queue.finish_tile(&t5, &[5]).await.unwrap());
    let job = s.store.batch(b.id).await.unwrap().unwrap();
    assert_eq!(
        (job.progress.tiles_done, job.progress.stage.as_str()),
        (2, "merging")
    );
    let (merge, _) = claim("w2", long).await.unwrap();
    assert_eq!(merge.kind, TaskKind::Merge);
    assert_eq!(
        queue.tile_outputs(b.id).await.unwrap(),
        vec![(3, vec![3, 3]), (5, vec![5])]
    );
    let patches = common::three_patches();
    assert!(queue.finish_merge(&merge, &patches).await.unwrap());
    let job = s.store.batch(b.id).await.unwrap().unwrap();
    assert_eq!((job.status, job.patches), (JobStatus::Done, Some(3)));
    assert!(
        queue.tile_outputs(b.id).await.unwrap().is_empty(),
        "outputs freed"
    );

    // Cancelling a shared run ends it at once; its tasks are not claimed and their leases
    // not renewed.
    let gengdi_service::store::BatchCreated::New(c) =
        s.store.create_batch(batch("c")).await.unwrap()
    else {
        panic!()
    };
    let (plan, _) = claim("w1", long).await.unwrap();
    assert!(queue
        .finish_plan(
            &plan,
            "w1",
            &BatchPlan {
                tiles: 1,
                ..queue.plan(b.id).await.unwrap().unwrap()
            },
            &[0]
        )
        .await
        .unwrap());
    let (tile, _) = claim("w1", long).await.unwrap();
    let gengdi_service::store::CancelOutcome::Cancelled(cancelled) =
        s.store.cancel_batch(c.id).await.unwrap()
    else {
        panic!("not cancelled at once")
    };
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(!queue.heartbeat(&tile).await.unwrap());
    assert!(!queue.finish_tile(&tile, &[0]).await.unwrap());
    assert!(claim("w2", long).await.is_none());

    // A task that fails fails its batch, naming the task.
    let gengdi_service::store::BatchCreated::New(d) =
        s.store.create_batch(batch("d")).await.unwrap()
    else {
        panic!()
    };
    let (plan, _) = claim("w1", long).await.unwrap();
    queue
        .fail_task(&plan, "cannot open the scenes")
        .await
        .unwrap();
    let d = s.store.batch(d.id).await.unwrap().unwrap();
    assert_eq!(d.status, JobStatus::Failed);
    assert_eq!(d.error.as_deref(), Some("plan: cannot open the scenes"));
}
