//! The worker: a job runs on the blocking pool with its progress stored, and ends done (its
//! patches stored), failed (with the reason) or cancelled (nothing stored).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use gengdi_service::error::ServiceError;
use gengdi_service::jobs::{CancelToken, JobError, JobExecutor, JobSpec, ProgressSink};
use gengdi_service::store::{NewPatch, Store};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Behaves by the first scene's file name: `wait.tif` reports progress and waits to be
/// cancelled, `fail.tif` fails, anything else is done with three patches.
struct Scripted;

impl JobExecutor for Scripted {
    fn run(
        &self,
        job: &JobSpec,
        progress: &ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Vec<NewPatch>, JobError> {
        progress.stage_name("analysing");
        progress.tiles(1, 4);
        let name = job.scenes[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        match name.as_str() {
            "wait.tif" => {
                let start = Instant::now();
                while !cancel.is_cancelled() {
                    assert!(start.elapsed() < Duration::from_secs(20), "never cancelled");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(JobError::Cancelled)
            }
            "fail.tif" => Err(JobError::Failed(ServiceError::Invalid(
                "scene 1 is empty".into(),
            ))),
            _ => {
                progress.tiles(4, 4);
                Ok(common::three_patches())
            }
        }
    }
}

async fn until(s: &common::TestService, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (_, b) = s
            .send(
                "GET",
                &format!("/api/v1/batches/{id}"),
                Some(&s.tokens.admin),
                None,
            )
            .await;
        if done(&b) {
            return b;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{b}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_end_done_failed_or_cancelled_with_their_progress_stored() {
    let s = common::service().await;
    let (farmland, _) = s.seed(vec![]).await;
    for f in ["wait.tif", "fail.tif", "ok.tif"] {
        std::fs::write(s.config.import_root.join(f), "x").unwrap();
    }
    let dyn_store: Arc<dyn Store> = s.store.clone();
    let (state, worker) = gengdi_service::start(&s.config, dyn_store, Arc::new(Scripted)).unwrap();
    let s = common::TestService { state, ..s };
    let submit = |scene: &str| json!({"scenes": [scene], "farmland": farmland}).to_string();

    let (_, b) = s
        .send(
            "POST",
            "/api/v1/batches",
            Some(&s.tokens.admin),
            Some(&submit("wait.tif")),
        )
        .await;
    let id = b["id"].as_i64().unwrap();
    let running = until(&s, id, |b| b["progress"]["stage"] == "analysing").await;
    assert_eq!(running["status"], "running");
    // The estimate of the time left depends on the clock: present, not negative.
    let mut progress = running["progress"].clone();
    let eta = progress
        .as_object_mut()
        .unwrap()
        .remove("eta_s")
        .and_then(|v| v.as_f64())
        .unwrap();
    assert!(eta >= 0.0, "{running}");
    assert_eq!(
        progress,
        json!({"stage": "analysing", "tiles_done": 1, "tiles_total": 4})
    );
    let (status, c) = s
        .send(
            "POST",
            &format!("/api/v1/batches/{id}/cancel"),
            Some(&s.tokens.admin),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 202);
    assert_eq!(
        (c["status"].clone(), c["cancel_requested"].clone()),
        (json!("running"), json!(true))
    );
    let cancelled = until(&s, id, |b| b["status"] != "running").await;
    assert_eq!(
        (cancelled["status"].clone(), cancelled["patches"].clone()),
        (json!("cancelled"), json!(null))
    );

    let (_, b) = s
        .send(
            "POST",
            "/api/v1/batches",
            Some(&s.tokens.admin),
            Some(&submit("fail.tif")),
        )
        .await;
    let failed = until(&s, b["id"].as_i64().unwrap(), |b| b["status"] == "failed").await;
    assert_eq!(failed["error"], "scene 1 is empty");

    let (_, b) = s
        .send(
            "POST",
            "/api/v1/batches",
            Some(&s.tokens.admin),
            Some(&submit("ok.tif")),
        )
        .await;
    let ok = b["id"].as_i64().unwrap();
    let done = until(&s, ok, |b| b["status"] == "done").await;
    assert_eq!(done["patches"], 3);
    assert_eq!(
        done["progress"],
        json!({"stage": "done", "tiles_done": 4, "tiles_total": 4})
    );
    let (_, changes) = s
        .send("GET", "/api/v1/changes", Some(&s.tokens.admin), None)
        .await;
    let batches: Vec<i64> = changes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["batch"].as_i64().unwrap())
        .collect();
    assert_eq!(
        batches,
        vec![ok, ok, ok],
        "only the done job stored patches"
    );
    worker.abort();
}
