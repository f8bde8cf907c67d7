//! Jobs: a worker takes queued batches from the store one at a time and runs them through a
//! [`JobExecutor`] on tokio's blocking pool, writing progress as it goes and the result (or
//! the failure) at the end.
//!
//! Durability: a job keeps each finished tile under `<checkpoint root>/<batch>/tiles` (see
//! `gengdi_inference::checkpoint`). A process killed mid-job leaves the job `running`; the
//! next process queues it again and the analysis resumes from those tiles, with the same
//! patches as an uninterrupted run (they are stored in one transaction at the end, so none is
//! lost or stored twice). [`Jobs::shutdown`] (SIGTERM) stops taking jobs, interrupts the
//! running one after its tiles in flight and puts it back in the queue. A job's tiles are
//! removed when it ends.
//!
//! The executor is the seam: [`analysis_adapter::AnalysisExecutor`] runs the library call
//! `gengdi analyze` makes (`inference::pipeline::run`); another executor (a remote worker)
//! can replace it without touching the worker loop, the store or the handlers.

pub mod analysis_adapter;
mod models_sync;
pub mod shared;
mod train_adapter;
pub mod training;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::ServiceError;
use crate::store::models::StoredModel;
use crate::store::queue::BatchPlan;
use crate::store::{BatchRecord, JobOutcome, NewPatch, Progress, Store};

/// The rules a batch runs with: the defaults with the batch's overrides.
pub fn batch_rules(
    batch: &BatchRecord,
) -> Result<gengdi_inference::rules::RulesConfig, ServiceError> {
    match &batch.options.rules {
        Some(r) => serde_json::from_value(r.clone())
            .map_err(|e| ServiceError::Invalid(format!("batch {}: rules: {e}", batch.id))),
        None => Ok(Default::default()),
    }
}

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

/// Cancel the token of job `id` in `running`, if it is there.
fn cancel_in(running: &Mutex<HashMap<i64, CancelToken>>, id: i64) {
    if let Ok(running) = running.lock() {
        if let Some(t) = running.get(&id) {
            t.cancel();
        }
    }
}

/// A flag set once, which tasks can wait for.
#[derive(Debug, Default)]
struct StopFlag {
    set: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl StopFlag {
    fn set(&self) {
        self.set.store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.set.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Returns once the flag is set.
    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
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
    /// The admin layer's copy in the data dir and its attribute mapping (`role=FIELD,…`).
    pub admin: Option<(PathBuf, String)>,
    /// Canonical paths of the baseline scenes.
    pub baseline: Vec<PathBuf>,
    /// The rules (defaults where the batch set none).
    pub rules: gengdi_inference::rules::RulesConfig,
    /// Where the job keeps its finished tiles (resumed from when it runs again).
    pub checkpoint: Option<PathBuf>,
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ModelInfo {
    /// `landcover` or `croptype`.
    pub task: String,
    pub id: String,
    /// With a registry: whether it is its task's active model (the one analyses run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
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

    /// The land-cover model `id` (exact; `None`: the one jobs starting now run), loaded, for
    /// drawing land-cover maps; `Ok(None)` when there is no such land-cover model. By
    /// default there is none. Blocking (it may load the model).
    fn landcover_model(
        &self,
        _id: Option<&str>,
    ) -> Result<Option<Arc<analysis_adapter::Models>>, ServiceError> {
        Ok(None)
    }

    fn run(
        &self,
        job: &JobSpec,
        progress: &ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Vec<NewPatch>, JobError>;

    /// Whether this executor runs shared batches ([`JobExecutor::plan`], `run_tile`,
    /// `merge`); one that does not takes whole batches even from a store with a task queue.
    fn runs_shared(&self) -> bool {
        false
    }

    /// A shared run's plan of `job` (see [`crate::store::queue`]): the request every task
    /// runs, its fingerprint with these models, and the tiles with farmland. Blocking.
    fn plan(
        &self,
        _job: &JobSpec,
        _cancel: &CancelToken,
    ) -> Result<(BatchPlan, Vec<usize>), JobError> {
        Err(JobError::Failed(ServiceError::Invalid(
            "this executor does not run shared batches".into(),
        )))
    }

    /// Analyse tile `tile` of a planned batch; its output, to be merged. Blocking.
    fn run_tile(
        &self,
        _batch: i64,
        _plan: &BatchPlan,
        _tile: usize,
        _cancel: &CancelToken,
    ) -> Result<Vec<u8>, JobError> {
        Err(JobError::Failed(ServiceError::Invalid(
            "this executor does not run shared batches".into(),
        )))
    }

    /// Merge the outputs of every tile of a planned batch into its patches. Blocking.
    fn merge(
        &self,
        _batch: i64,
        _plan: &BatchPlan,
        _tiles: Vec<(usize, Vec<u8>)>,
        _progress: &ProgressSink,
        _cancel: &CancelToken,
    ) -> Result<Vec<NewPatch>, JobError> {
        Err(JobError::Failed(ServiceError::Invalid(
            "this executor does not run shared batches".into(),
        )))
    }

    /// Make the model `id` (exact) its task's active model, for the jobs that start from now
    /// on; `Ok(None)` when there is no such model. By default models cannot be activated.
    fn activate(&self, _id: &str) -> Result<Option<ModelInfo>, ServiceError> {
        Err(ServiceError::Invalid(
            "this service has no model registry to activate models in".into(),
        ))
    }

    /// The files of model `id` of this executor's registry, to share through the store;
    /// `Ok(None)` when it has no such model. Blocking.
    fn export_model(&self, _id: &str) -> Result<Option<StoredModel>, ServiceError> {
        Ok(None)
    }

    /// Add a model from the store to this executor's registry (nothing when it is there).
    /// Blocking.
    fn import_model(&self, model: &StoredModel) -> Result<(), ServiceError> {
        Err(ServiceError::Invalid(format!(
            "this service has no model registry to add model {} to",
            model.id
        )))
    }

    /// Train a model (see [`training`]): the result is what the job shows (the new model
    /// and both models' held-out metrics); the progress counts epochs, and `cancel` stops it
    /// ([`JobError::Cancelled`]). By default the service does not train.
    fn train(
        &self,
        _spec: &training::TrainingSpec,
        _progress: &ProgressSink,
        _cancel: &CancelToken,
    ) -> Result<serde_json::Value, JobError> {
        Err(JobError::Failed(ServiceError::Invalid(
            "this service has no model registry to train into".into(),
        )))
    }
}

/// The job queue's in-process side: the executor, a wake-up for the worker and the cancel
/// tokens of running jobs.
pub struct Jobs {
    store: Arc<dyn Store>,
    executor: Arc<dyn JobExecutor>,
    wake: tokio::sync::Notify,
    running: Mutex<HashMap<i64, CancelToken>>,
    /// The cancel tokens of running tasks of shared runs, by task id.
    running_tasks: Mutex<HashMap<i64, CancelToken>>,
    /// The cancel tokens of running training jobs.
    running_training: Mutex<HashMap<i64, CancelToken>>,
    /// The process is stopping: take no job, put the running one back in the queue.
    stopping: StopFlag,
    /// Jobs keep their finished tiles under `<this>/<batch>/tiles`.
    checkpoint_root: Option<PathBuf>,
    /// How often a running job's progress is written to the store.
    pub progress_interval: Duration,
    /// Training jobs: their wake-up, the folder their label files go to, the tables added.
    wake_training: tokio::sync::Notify,
    training_dir: Option<PathBuf>,
    training_tables: Vec<PathBuf>,
    /// One exchange with the store's shared models at a time (see [`Jobs::sync_models`]).
    syncing: tokio::sync::Mutex<()>,
}

/// How often a server renews the heartbeat of the jobs it runs in a shared store
/// ([`Store::heartbeat_jobs`]), in seconds.
pub const JOB_HEARTBEAT_S: f64 = 10.0;

/// How often an idle worker looks for jobs whose server stopped, in seconds.
const REQUEUE_EVERY_S: u64 = 30;

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
            running_tasks: Mutex::new(HashMap::new()),
            running_training: Mutex::new(HashMap::new()),
            stopping: StopFlag::default(),
            checkpoint_root: None,
            progress_interval: Duration::from_millis(200),
            wake_training: tokio::sync::Notify::new(),
            training_dir: None,
            training_tables: Vec::new(),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    /// Training jobs write their label files under `dir/<job>/` and add `tables`.
    pub fn with_training(mut self, dir: PathBuf, tables: Vec<PathBuf>) -> Jobs {
        self.training_dir = Some(dir);
        self.training_tables = tables;
        self
    }

    /// The tables training jobs add (when a request keeps `tables: true`).
    pub fn training_tables(&self) -> &[PathBuf] {
        &self.training_tables
    }

    /// Tell the training worker a job was queued.
    pub fn wake_training(&self) {
        self.wake_training.notify_one();
    }

    /// Put training jobs a stopped process left running back in the queue, then run them,
    /// one at a time, until [`Jobs::shutdown`] (a job running then is left to the next start,
    /// which queues it again: training has no checkpoints and starts over).
    pub async fn run_training_worker(self: Arc<Self>) {
        self.work(
            "training",
            || self.store.requeue_running_training(),
            &self.wake_training,
            || self.store.claim_training_job(),
            |job| self.run_training(job),
        )
        .await
    }

    async fn run_training(&self, job: crate::store::TrainingJobRecord) {
        use crate::store::TrainingOutcome;
        let id = job.id;
        tracing::info!("training: job {id} started (attempt {})", job.attempts);
        let progress = ProgressSink::default();
        let cancel = CancelToken::default();
        if job.cancel_requested {
            cancel.cancel();
        }
        if let Ok(mut running) = self.running_training.lock() {
            running.insert(id, cancel.clone());
        }
        let outcome = match self.training_spec(&job).await {
            Err(e) => TrainingOutcome::Failed(e.to_string()),
            Ok(spec) => {
                progress.stage_name("samples");
                let executor = Arc::clone(&self.executor);
                let p = progress.clone();
                let c = cancel.clone();
                let mut task = tokio::task::spawn_blocking(move || executor.train(&spec, &p, &c));
                let mut tick = tokio::time::interval(self.progress_interval);
                let mut last = Progress::default();
                let joined = loop {
                    tokio::select! {
                        r = &mut task => break r,
                        _ = tick.tick() => {
                            let now = progress.get();
                            if now != last {
                                if let Err(e) = self.store.update_training_progress(id, now.stage.clone(), now.tiles_done).await {
                                    tracing::warn!("training: job {id}: cannot store progress: {e}");
                                }
                                last = now;
                            }
                        }
                    }
                };
                let now = progress.get();
                if let Err(e) = self
                    .store
                    .update_training_progress(id, now.stage, now.tiles_done)
                    .await
                {
                    tracing::warn!("training: job {id}: cannot store progress: {e}");
                }
                match joined {
                    Ok(Ok(result)) => TrainingOutcome::Done(result),
                    Ok(Err(JobError::Cancelled)) => TrainingOutcome::Cancelled,
                    Ok(Err(JobError::Failed(e))) => TrainingOutcome::Failed(e.to_string()),
                    Err(e) => TrainingOutcome::Failed(format!("the job stopped abnormally: {e}")),
                }
            }
        };
        if let Ok(mut running) = self.running_training.lock() {
            running.remove(&id);
        }
        if matches!(outcome, TrainingOutcome::Done(_)) {
            // The new model is shared before the job says it is done.
            self.sync_models_or_warn("after training").await;
        }
        let what = match &outcome {
            TrainingOutcome::Done(r) => format!("done, model {}", r["model"]["id"]),
            TrainingOutcome::Failed(e) => format!("failed: {e}"),
            TrainingOutcome::Cancelled => "cancelled".into(),
        };
        match self.store.finish_training_job(id, outcome).await {
            Ok(_) => tracing::info!("training: job {id} {what}"),
            Err(e) => tracing::error!("training: job {id} {what}, but it cannot be stored: {e}"),
        }
    }

    async fn training_spec(
        &self,
        job: &crate::store::TrainingJobRecord,
    ) -> Result<training::TrainingSpec, ServiceError> {
        let request: training::AcceptedRequest = serde_json::from_value(job.request.clone())
            .map_err(|e| ServiceError::Invalid(format!("the stored request: {e}")))?;
        let dir = self
            .training_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(job.id.to_string());
        training::spec(
            self.store.as_ref(),
            job.id,
            &request,
            &self.training_tables,
            &dir,
        )
        .await
    }

    /// Jobs keep their finished tiles under `root/<batch>/tiles` and resume from them.
    pub fn with_checkpoints(mut self, root: PathBuf) -> Jobs {
        self.checkpoint_root = Some(root);
        self
    }

    /// Stop: take no more jobs; the running job stops after its tiles in flight (which are
    /// kept) and goes back to the queue, for the next process to resume. The worker's task
    /// ends once that is stored.
    pub fn shutdown(&self) {
        self.stopping.set();
        for running in [&self.running, &self.running_tasks] {
            if let Ok(running) = running.lock() {
                for t in running.values() {
                    t.cancel();
                }
            }
        }
    }

    /// [`Jobs::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_set()
    }

    /// The models the executor runs.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.executor.models()
    }

    /// The card of a model the executor runs, by id.
    pub fn model_card(&self, id: &str) -> Option<serde_json::Value> {
        self.executor.model_card(id)
    }

    /// The land-cover model `id` (`None`: the active one), loaded (blocking).
    pub fn landcover_model(
        &self,
        id: Option<&str>,
    ) -> Result<Option<Arc<analysis_adapter::Models>>, ServiceError> {
        self.executor.landcover_model(id)
    }

    /// Tell the worker a job was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Ask the running training job `id` (if it runs in this process) to stop.
    pub fn cancel_running_training(&self, id: i64) {
        cancel_in(&self.running_training, id);
    }

    /// Ask the running job of `batch` (if it runs in this process) to stop.
    pub fn cancel_running(&self, batch: i64) {
        cancel_in(&self.running, batch);
    }

    /// Put jobs a stopped process left running back in the queue, then take jobs forever,
    /// one at a time (an analysis uses every core through rayon).
    pub async fn run_worker(self: Arc<Self>) {
        self.work(
            "jobs",
            || self.store.requeue_running(),
            &self.wake,
            || self.store.claim_job(),
            |batch| self.run_one(batch),
        )
        .await
    }

    /// A worker: `requeue` what a stopped process left running, then `claim` and `run` jobs
    /// one at a time until [`Jobs::shutdown`], waiting for `wake` (or 2 s) when none is queued.
    /// While idle it requeues again every [`REQUEUE_EVERY_S`]: in a store shared by several
    /// servers, a server that stopped leaves its jobs to the others (the store queues only
    /// jobs whose server stopped beating, and this worker runs none while idle).
    async fn work<J, Q, C, R>(
        &self,
        what: &str,
        requeue: impl Fn() -> Q,
        wake: &tokio::sync::Notify,
        claim: impl Fn() -> C,
        run: impl Fn(J) -> R,
    ) where
        Q: std::future::Future<Output = crate::error::Result<usize>>,
        C: std::future::Future<Output = crate::error::Result<Option<J>>>,
        R: std::future::Future<Output = ()>,
    {
        let mut last_requeue: Option<tokio::time::Instant> = None;
        loop {
            if self.is_stopping() {
                tracing::info!("{what}: worker stopped");
                return;
            }
            if last_requeue.is_none_or(|t| t.elapsed().as_secs() >= REQUEUE_EVERY_S) {
                match requeue().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        "{what}: {n} job(s) left running by a stopped process queued again"
                    ),
                    Err(e) => tracing::error!("{what}: cannot requeue running jobs: {e}"),
                }
                last_requeue = Some(tokio::time::Instant::now());
            }
            match claim().await {
                Ok(Some(job)) => run(job).await,
                Ok(None) => {
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = self.stopping.wait() => {}
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
                Err(e) => {
                    tracing::error!("{what}: cannot claim a job: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    async fn spec(&self, batch: &BatchRecord) -> Result<JobSpec, ServiceError> {
        let farmland = self.store.farmland(batch.farmland).await?.ok_or_else(|| {
            ServiceError::Invalid(format!("farmland layer {} is gone", batch.farmland))
        })?;
        let admin = match batch.options.admin {
            Some(id) => {
                let layer =
                    self.store.admin_layer(id).await?.ok_or_else(|| {
                        ServiceError::Invalid(format!("admin layer {id} is gone"))
                    })?;
                Some((PathBuf::from(layer.stored_path), layer.mapping))
            }
            None => None,
        };
        let rules = batch_rules(batch)?;
        Ok(JobSpec {
            batch: batch.id,
            scenes: batch.scenes.iter().map(PathBuf::from).collect(),
            farmland: PathBuf::from(farmland.stored_path),
            farmland_layer: farmland.layer,
            farmland_mapping: farmland.mapping,
            admin,
            baseline: batch.options.baseline.iter().map(PathBuf::from).collect(),
            rules,
            checkpoint: self.job_dir(batch.id).map(|d| d.join("tiles")),
        })
    }

    fn job_dir(&self, batch: i64) -> Option<PathBuf> {
        self.checkpoint_root
            .as_ref()
            .map(|r| r.join(batch.to_string()))
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
        let asked = matches!(self.store.batch(id).await, Ok(Some(b)) if b.cancel_requested);
        if self.is_stopping() && !asked && !matches!(outcome, JobOutcome::Done(_)) {
            // Interrupted by the shutdown, not cancelled by a user: back to the queue, its
            // finished tiles kept.
            match self.store.release_job(id).await {
                Ok(_) => tracing::info!("jobs: batch {id} interrupted by the shutdown: queued again, resumes from its finished tiles"),
                Err(e) => tracing::error!("jobs: batch {id} interrupted, but cannot be queued again (the next start does): {e}"),
            }
            if let Ok(mut running) = self.running.lock() {
                running.remove(&id);
            }
            return;
        }
        // A cancellation asked for while the job ran wins over its result.
        let cancelled = cancel.is_cancelled() || asked;
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
            Ok(_) => {
                tracing::info!("jobs: batch {id} {what}");
                // Its result is stored: the finished tiles are not needed any more.
                if let Some(dir) = self.job_dir(id) {
                    if let Err(e) = std::fs::remove_dir_all(&dir) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!("jobs: cannot remove {}: {e}", dir.display());
                        }
                    }
                }
            }
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
