//! Jobs: a worker takes queued batches from the store one at a time and runs them through a
//! [`JobExecutor`] on tokio's blocking pool, writing progress as it goes and the result (or
//! the failure) at the end.
//!
//! The executor is the seam: [`analysis_adapter::AnalysisExecutor`] runs today what
//! `gengdi analyze` runs; a library pipeline call can replace it without touching the worker,
//! the store or the handlers.

pub mod analysis_adapter;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::ServiceError;
use crate::store::{BatchRecord, JobOutcome, NewPatch, Progress, Store};

/// Asks a running job to stop: the analysis checks it between its stages and before each
/// tile is read.
pub use gengdi_inference::pipeline::CancelToken;

/// Where an executor reports its progress (from any thread); the worker stores it.
#[derive(Clone, Debug, Default)]
pub struct ProgressSink(Arc<Mutex<Progress>>);

impl ProgressSink {
    /// Enter a stage (by name: the analysis's own stages are named as they serialise).
    pub fn stage_name(&self, stage: &str) {
        if let Ok(mut p) = self.0.lock() {
            p.stage = stage.to_string();
        }
    }

    /// Set the tile counts.
    pub fn tiles(&self, done: u64, total: u64) {
        if let Ok(mut p) = self.0.lock() {
            p.tiles_done = done;
            p.tiles_total = total;
        }
    }

    /// One more tile done (of `total`).
    pub fn tile_done(&self, total: u64) {
        if let Ok(mut p) = self.0.lock() {
            p.tiles_done = (p.tiles_done + 1).min(total);
            p.tiles_total = total;
        }
    }

    pub fn get(&self) -> Progress {
        self.0.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl gengdi_inference::pipeline::ProgressSink for ProgressSink {
    fn stage(&self, stage: gengdi_inference::pipeline::Stage) {
        let name = serde_json::to_value(stage)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{stage:?}"));
        self.stage_name(&name);
    }

    fn tiles(&self, done: usize, total: usize) {
        ProgressSink::tiles(self, done as u64, total as u64);
    }
}

/// What a job works on.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub batch: i64,
    /// Canonical scene paths.
    pub scenes: Vec<PathBuf>,
    /// The farmland copy in the data dir, its layer and attribute mapping (`role=FIELD,…`).
    pub farmland: PathBuf,
    pub farmland_layer: String,
    pub farmland_mapping: String,
}

/// Why a job did not produce patches.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// A model the jobs use, as `GET /api/v1/models` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    /// `landcover` or `croptype`.
    pub task: String,
    pub id: String,
}

/// Runs one job, synchronously, on a blocking thread. Implementations hold their models.
pub trait JobExecutor: Send + Sync + 'static {
    /// The models the jobs run (none by default).
    fn models(&self) -> Vec<ModelInfo> {
        Vec::new()
    }

    /// The card (as the registry's `card.json` holds it) of one of [`JobExecutor::models`],
    /// by its exact id; `None` for any other id.
    fn model_card(&self, _id: &str) -> Option<serde_json::Value> {
        None
    }

    fn run(
        &self,
        job: &JobSpec,
        progress: &ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Vec<NewPatch>, JobError>;
}

/// The job queue's in-process side: the executor, a wake-up for the worker and the cancel
/// tokens of running jobs.
pub struct Jobs {
    store: Arc<dyn Store>,
    executor: Arc<dyn JobExecutor>,
    wake: tokio::sync::Notify,
    running: Mutex<HashMap<i64, CancelToken>>,
    /// How often a running job's progress is written to the store.
    pub progress_interval: Duration,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

impl Jobs {
    pub fn new(store: Arc<dyn Store>, executor: Arc<dyn JobExecutor>) -> Jobs {
        Jobs {
            store,
            executor,
            wake: tokio::sync::Notify::new(),
            running: Mutex::new(HashMap::new()),
            progress_interval: Duration::from_millis(200),
        }
    }

    /// The models the executor runs.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.executor.models()
    }

    /// The card of a model the executor runs, by id.
    pub fn model_card(&self, id: &str) -> Option<serde_json::Value> {
        self.executor.model_card(id)
    }

    /// Tell the worker a job was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Ask the running job of `batch` (if it runs in this process) to stop.
    pub fn cancel_running(&self, batch: i64) {
        if let Ok(running) = self.running.lock() {
            if let Some(t) = running.get(&batch) {
                t.cancel();
            }
        }
    }

    /// Put jobs a stopped process left running back in the queue, then take jobs forever,
    /// one at a time (an analysis uses every core through rayon).
    pub async fn run_worker(self: Arc<Self>) {
        match self.store.requeue_running().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("jobs: {n} job(s) left running by the last run queued again"),
            Err(e) => tracing::error!("jobs: cannot requeue running jobs: {e}"),
        }
        loop {
            match self.store.claim_job().await {
                Ok(Some(batch)) => self.run_one(batch).await,
                Ok(None) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
                Err(e) => {
                    tracing::error!("jobs: cannot claim a job: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    async fn spec(&self, batch: &BatchRecord) -> Result<JobSpec, ServiceError> {
        let farmland = self.store.farmland(batch.farmland).await?.ok_or_else(|| {
            ServiceError::Invalid(format!("farmland layer {} is gone", batch.farmland))
        })?;
        Ok(JobSpec {
            batch: batch.id,
            scenes: batch.scenes.iter().map(PathBuf::from).collect(),
            farmland: PathBuf::from(farmland.stored_path),
            farmland_layer: farmland.layer,
            farmland_mapping: farmland.mapping,
        })
    }

    /// Run one claimed job to its end.
    pub async fn run_one(&self, batch: BatchRecord) {
        let id = batch.id;
        tracing::info!("jobs: batch {id} started (attempt {})", batch.attempts);
        let cancel = CancelToken::default();
        if batch.cancel_requested {
            cancel.cancel();
        }
        if let Ok(mut running) = self.running.lock() {
            running.insert(id, cancel.clone());
        }
        let outcome = match self.spec(&batch).await {
            Ok(spec) => self.execute(spec, cancel.clone()).await,
            Err(e) => JobOutcome::Failed(e.to_string()),
        };
        // A cancellation asked for while the job ran wins over its result.
        let cancelled = cancel.is_cancelled()
            || matches!(self.store.batch(id).await, Ok(Some(b)) if b.cancel_requested);
        let outcome = match outcome {
            JobOutcome::Done(_) if cancelled => JobOutcome::Cancelled,
            o => o,
        };
        let what = match &outcome {
            JobOutcome::Done(p) => format!("done, {} patches", p.len()),
            JobOutcome::Failed(e) => format!("failed: {e}"),
            JobOutcome::Cancelled => "cancelled".into(),
        };
        match self.store.finish_job(id, outcome).await {
            Ok(_) => tracing::info!("jobs: batch {id} {what}"),
            Err(e) => tracing::error!("jobs: batch {id} {what}, but it cannot be stored: {e}"),
        }
        if let Ok(mut running) = self.running.lock() {
            running.remove(&id);
        }
    }

    async fn execute(&self, spec: JobSpec, cancel: CancelToken) -> JobOutcome {
        let id = spec.batch;
        let progress = ProgressSink::default();
        progress.stage_name("starting");
        let executor = Arc::clone(&self.executor);
        let (p, c) = (progress.clone(), cancel.clone());
        let mut task = tokio::task::spawn_blocking(move || executor.run(&spec, &p, &c));
        let mut last = Progress::default();
        let mut tick = tokio::time::interval(self.progress_interval);
        let joined = loop {
            tokio::select! {
                r = &mut task => break r,
                _ = tick.tick() => {
                    let now = progress.get();
                    if now != last {
                        if let Err(e) = self.store.update_progress(id, now.clone()).await {
                            tracing::warn!("jobs: batch {id}: cannot store progress: {e}");
                        }
                        last = now;
                    }
                }
            }
        };
        if let Err(e) = self.store.update_progress(id, progress.get()).await {
            tracing::warn!("jobs: batch {id}: cannot store progress: {e}");
        }
        match joined {
            Ok(Ok(patches)) => JobOutcome::Done(patches),
            Ok(Err(JobError::Cancelled)) => JobOutcome::Cancelled,
            Ok(Err(JobError::Failed(e))) => JobOutcome::Failed(e.to_string()),
            Err(e) => JobOutcome::Failed(format!("the job stopped abnormally: {e}")),
        }
    }
}
