//! The embedded store on its own: schema versioning, WAL, restart behaviour of jobs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use gengdi_service::store::{JobStatus, SqliteStore, Store};

#[tokio::test]
async fn a_restart_puts_jobs_left_running_back_in_the_queue() {
    let s = common::service().await;
    let (farmland, done) = s.seed(vec![]).await;
    let admin = s.store.list_tokens().await.unwrap()[0].id;
    let new = |name: &str| gengdi_service::store::NewBatch {
        options: Default::default(),
        name: Some(name.into()),
        farmland,
        scenes: vec!["/x.tif".into()],
        created_by: admin,
        idempotency: None,
    };
    s.store.create_batch(new("interrupted")).await.unwrap();
    let training = s
        .store
        .create_training_job(serde_json::json!({"task": "landcover"}), 3, admin)
        .await
        .unwrap();
    let claimed = s.store.claim_training_job().await.unwrap().unwrap();
    assert_eq!(
        (claimed.id, claimed.status, claimed.attempts),
        (training.id, JobStatus::Running, 1)
    );
    s.store.create_batch(new("waiting")).await.unwrap();
    let running = s.store.claim_job().await.unwrap().unwrap();
    assert_eq!(
        (running.id, running.status, running.attempts),
        (2, JobStatus::Running, 1)
    );
    drop(s.store);

    // The process stops; another opens the same data dir.
    let store = SqliteStore::open(&s.config.data_dir).unwrap();
    assert_eq!(store.schema_version().unwrap(), 8);
    assert_eq!(store.requeue_running().await.unwrap(), 1);
    // A training job left running is queued again too, and starts over.
    assert_eq!(store.requeue_running_training().await.unwrap(), 1);
    let again = store.claim_training_job().await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (training.id, 2));
    let statuses: Vec<(i64, JobStatus)> = store
        .list_batches()
        .await
        .unwrap()
        .iter()
        .map(|b| (b.id, b.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (done, JobStatus::Done),
            (2, JobStatus::Queued),
            (3, JobStatus::Queued)
        ]
    );
    // The interrupted job is taken first again, on its second attempt.
    let again = store.claim_job().await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (2, 2));
}

#[tokio::test]
async fn the_database_is_in_wal_mode_with_an_rtree_of_patch_boxes() {
    let s = common::service().await;
    s.seed(common::three_patches()).await;
    assert!(s.config.data_dir.join("gengdi.sqlite-wal").exists());
    // The R*Tree holds one box per patch (a count through the raw statement path).
    let n = s
        .raw
        .execute_raw(
            "UPDATE patches SET evidence = evidence WHERE id IN (SELECT id FROM patch_bbox)",
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn a_store_at_version_7_gains_class_found_with_its_verdicts_kept() {
    let s = common::service().await;
    s.seed(common::three_patches()).await;
    let (status, v) = s
        .send(
            "POST",
            "/api/v1/changes/1/verdicts",
            Some(&s.tokens.inspector),
            Some(r#"{"verdict":"false_positive","note":"before the migration"}"#),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    drop(s.state);
    drop(s.store);
    drop(s.raw);
    // The database as version 7 left it: no class_found anywhere.
    let path = s.config.data_dir.join("gengdi.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "ALTER TABLE verdicts DROP COLUMN class_found;
             ALTER TABLE patches DROP COLUMN class_found;
             UPDATE schema_version SET version = 7;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&s.config.data_dir).unwrap();
    assert_eq!(store.schema_version().unwrap(), 8);
    let scope = gengdi_service::auth::Scope::All;
    let verdicts = store.verdicts(&scope, 1).await.unwrap();
    assert_eq!(
        verdicts
            .iter()
            .map(|v| (v.note.as_str(), v.class_found.as_str()))
            .collect::<Vec<_>>(),
        [("before the migration", "")]
    );
    let p = store.change(&scope, 1).await.unwrap().unwrap();
    assert_eq!(
        (p.status, p.class_found.as_str()),
        (gengdi_service::store::PatchStatus::FalsePositive, "")
    );
    // Still append-only.
    let err = store
        .execute_raw("UPDATE verdicts SET class_found = 'grass'".into())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
