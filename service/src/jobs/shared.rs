//! The worker of shared runs: claims tasks from the store's queue ([`crate::store::queue`]),
//! runs them through the executor on tokio's blocking pool, renews the claim's lease while it
//! works, and stores each result in one transaction. `gengdi worker` runs several of these
//! loops; `gengdi serve --database … --workers N` runs N of them beside the API.
//!
//! Losing the database for a while is survived: a claim that fails waits (1 s, doubling to
//! 10 s) and tries again; storing a finished task's result is retried while the database is
//! unreachable (for as long as the lease would last twice over), and a result that could not
//! be stored in that time is dropped: the task's lease runs out and another claim runs it again.

use std::sync::Arc;
use std::time::Duration;

use super::{CancelToken, JobError, Jobs, ProgressSink};
use crate::error::ServiceError;
use crate::store::queue::{Claimed, TaskKind, TaskLease, TaskQueue};
use crate::store::BatchRecord;

/// Default lease of a claimed task, in seconds: a worker renews it every third of that; a
/// task not renewed for that long (its worker was killed, its machine lost) is claimed again.
pub const DEFAULT_LEASE_S: f64 = 30.0;

/// A worker's name in the queue (`tasks.worker`): `host:pid:role-index`.
pub fn worker_name(role: &str, index: usize) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}:{role}-{index}", std::process::id())
}

/// Whether `e` says the store cannot be reached (so: wait and try again), rather than
/// refusing what was asked.
fn unreachable(e: &ServiceError) -> bool {
    matches!(e, ServiceError::StoreUnavailable(_))
}

impl Jobs {
    /// Claim and run tasks of shared runs as `name`, until [`Jobs::shutdown`] (a task running
    /// then is given back to the queue, for another worker to run at once).
    pub async fn run_shared_worker(
        self: Arc<Self>,
        queue: Arc<dyn TaskQueue>,
        name: String,
        lease: Duration,
    ) {
        tracing::info!(
            "worker {name}: taking tasks (lease {} s)",
            lease.as_secs_f64()
        );
        let mut backoff = Duration::from_secs(1);
        loop {
            if self.is_stopping() {
                tracing::info!("worker {name}: stopped");
                return;
            }
            match queue.claim_task(&name, lease).await {
                Ok(Claimed::Task(task, batch)) => {
                    backoff = Duration::from_secs(1);
                    self.run_task(&queue, &name, lease, task, *batch).await;
                }
                Ok(Claimed::Nothing) => {
                    backoff = Duration::from_secs(1);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = self.stopping.wait() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "worker {name}: cannot claim a task ({e}): trying again in {} s",
                        backoff.as_secs()
                    );
                    tokio::select! {
                        _ = self.stopping.wait() => {}
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn run_task(
        &self,
        queue: &Arc<dyn TaskQueue>,
        name: &str,
        lease: Duration,
        task: TaskLease,
        batch: BatchRecord,
    ) {
        let id = batch.id;
        tracing::info!(
            "worker {name}: batch {id} {} (claim {})",
            task.kind,
            task.attempts
        );
        let cancel = CancelToken::default();
        let heartbeat = {
            let (queue, task, cancel) = (Arc::clone(queue), task.clone(), cancel.clone());
            let name = name.to_string();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match queue.heartbeat(&task).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::info!(
                                "worker {name}: batch {} {}: the claim is no longer ours \
                                 (cancelled, failed or taken over): stopping it",
                                task.batch,
                                task.kind
                            );
                            cancel.cancel();
                            return;
                        }
                        Err(e) => tracing::warn!(
                            "worker {name}: batch {} {}: cannot renew the lease: {e}",
                            task.batch,
                            task.kind
                        ),
                    }
                }
            })
        };
        // A shutdown stops the task too ([`Jobs::shutdown`] cancels it); it goes back to the
        // queue below.
        if let Ok(mut running) = self.running_tasks.lock() {
            running.insert(task.id, cancel.clone());
        }
        if self.is_stopping() {
            cancel.cancel();
        }
        let outcome = self
            .task_outcome(queue, name, lease, &task, &batch, &cancel)
            .await;
        heartbeat.abort();
        if let Ok(mut running) = self.running_tasks.lock() {
            running.remove(&task.id);
        }
        match outcome {
            Ok(true) => tracing::info!("worker {name}: batch {id} {} done", task.kind),
            Ok(false) => tracing::info!(
                "worker {name}: batch {id} {}: the claim was lost before its result was \
                 stored: dropped",
                task.kind
            ),
            Err(JobError::Cancelled) if self.is_stopping() => {
                match queue.release_task(&task).await {
                    Ok(()) => tracing::info!(
                        "worker {name}: batch {id} {} given back (shutting down)",
                        task.kind
                    ),
                    Err(e) => tracing::warn!(
                        "worker {name}: batch {id} {}: cannot give it back ({e}): its lease \
                         runs out instead",
                        task.kind
                    ),
                }
            }
            Err(JobError::Cancelled) => {
                tracing::info!("worker {name}: batch {id} {} stopped", task.kind)
            }
            Err(JobError::Failed(e)) if unreachable(&e) => tracing::warn!(
                "worker {name}: batch {id} {}: the store is unreachable ({e}): the task runs \
                 again when its lease runs out",
                task.kind
            ),
            Err(JobError::Failed(e)) => {
                tracing::error!("worker {name}: batch {id} {} failed: {e}", task.kind);
                if let Err(e2) = queue.fail_task(&task, &e.to_string()).await {
                    tracing::error!(
                        "worker {name}: batch {id}: cannot record the failure ({e2}): the task \
                         runs again when its lease runs out"
                    );
                }
            }
        }
    }

    /// Run `task` and store its result; `Ok(false)`: the lease was lost first.
    async fn task_outcome(
        &self,
        queue: &Arc<dyn TaskQueue>,
        name: &str,
        lease: Duration,
        task: &TaskLease,
        batch: &BatchRecord,
        cancel: &CancelToken,
    ) -> Result<bool, JobError> {
        let executor = Arc::clone(&self.executor);
        let (c, id) = (cancel.clone(), batch.id);
        match task.kind {
            TaskKind::Plan => {
                // The batch runs the models active in the store now (recorded in its plan).
                self.sync_models_or_warn("before planning").await;
                let mut spec = self.spec(batch).await?;
                spec.checkpoint = None;
                let (plan, tiles) = blocking(move || executor.plan(&spec, &c)).await?;
                tracing::info!(
                    "worker {name}: batch {id} planned: {} tiles with farmland",
                    tiles.len()
                );
                retry(lease, || queue.finish_plan(task, name, &plan, &tiles)).await
            }
            TaskKind::Tile(tile) => {
                let plan = self.plan_of(queue, id).await?;
                self.ensure_models(&plan.models).await?;
                let out = blocking(move || executor.run_tile(id, &plan, tile, &c)).await?;
                retry(lease, || queue.finish_tile(task, &out)).await
            }
            TaskKind::Merge => {
                let plan = self.plan_of(queue, id).await?;
                self.ensure_models(&plan.models).await?;
                let tiles = queue.tile_outputs(id).await?;
                let progress = ProgressSink::default();
                let patches =
                    blocking(move || executor.merge(id, &plan, tiles, &progress, &c)).await?;
                tracing::info!(
                    "worker {name}: batch {id} merged: {} patches",
                    patches.len()
                );
                retry(lease, || queue.finish_merge(task, &patches)).await
            }
        }
    }

    async fn plan_of(
        &self,
        queue: &Arc<dyn TaskQueue>,
        batch: i64,
    ) -> Result<crate::store::queue::BatchPlan, JobError> {
        queue.plan(batch).await?.ok_or_else(|| {
            JobError::Failed(ServiceError::Invalid(format!(
                "batch {batch} has tasks but no plan"
            )))
        })
    }
}

/// Run `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobError::Failed(ServiceError::Join(e.to_string())))?
}

/// Store a result, trying again while the store is unreachable, for up to twice the lease.
async fn retry<F, Fut>(lease: Duration, store: F) -> Result<bool, JobError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = crate::error::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + lease * 2;
    loop {
        match store().await {
            Ok(kept) => return Ok(kept),
            Err(e) if unreachable(&e) && tokio::time::Instant::now() < deadline => {
                tracing::warn!("the store is unreachable ({e}): storing the result again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(JobError::Failed(e)),
        }
    }
}
