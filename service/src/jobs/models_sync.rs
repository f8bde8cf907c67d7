//! This process's registry and the models shared through the store
//! ([`crate::store::models`]): what one process trains or installs, every other gets; what
//! is activated in one, every other runs from its next plan on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{JobError, Jobs, ModelInfo, JOB_HEARTBEAT_S};
use crate::error::ServiceError;

/// Run `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Join(e.to_string()))?
}

impl Jobs {
    /// Bring this process's registry in line with the store's shared models (nothing in a
    /// store without them): publish the models only this process has, copy those it lacks,
    /// set the store's active models where it has none yet (the first process to start),
    /// then activate here the store's active models.
    pub async fn sync_models(&self) -> Result<(), ServiceError> {
        let Some(shared) = Arc::clone(&self.store).model_store() else {
            return Ok(());
        };
        let _one = self.syncing.lock().await;
        let local = self.executor.models();
        let stored: BTreeSet<String> = shared.model_ids().await?.into_iter().collect();
        for m in local.iter().filter(|m| !stored.contains(&m.id)) {
            let (executor, id) = (Arc::clone(&self.executor), m.id.clone());
            if let Some(model) = blocking(move || executor.export_model(&id)).await? {
                shared.put_model(&model).await?;
                tracing::info!("models: {} {} published to the store", m.task, m.id);
            }
        }
        for id in stored
            .iter()
            .filter(|id| !local.iter().any(|m| m.id == **id))
        {
            if let Some(model) = shared.get_model(id).await? {
                let executor = Arc::clone(&self.executor);
                let (task, id) = (model.task.clone(), model.id.clone());
                blocking(move || executor.import_model(&model)).await?;
                tracing::info!("models: {task} {id} copied from the store");
            }
        }
        for m in local.iter().filter(|m| m.active == Some(true)) {
            shared.set_active(&m.task, &m.id, true).await?;
        }
        for (task, id) in shared.active_models().await? {
            let active_here =
                |m: &ModelInfo| m.task == task && m.id == id && m.active == Some(true);
            if local.iter().any(active_here) {
                continue;
            }
            let (executor, which) = (Arc::clone(&self.executor), id.clone());
            match blocking(move || executor.activate(&which)).await? {
                Some(_) => tracing::info!("models: {task} {id} activated, as in the store"),
                None => tracing::error!("models: the store's active {task} model {id} is not here"),
            }
        }
        Ok(())
    }

    /// [`Jobs::sync_models`], a failure logged (the process goes on with the models it has).
    pub async fn sync_models_or_warn(&self, when: &str) {
        if let Err(e) = self.sync_models().await {
            tracing::warn!("models: cannot sync with the store {when}: {e}");
        }
    }

    /// Make model `id` (exact) its task's active model here and, in a store shared by several
    /// processes, in the store (every process runs it from its next plan on); `None`: no
    /// such model.
    pub async fn activate(&self, id: &str) -> Result<Option<ModelInfo>, ServiceError> {
        // A model trained by another server is copied here first.
        self.sync_models_or_warn("before an activation").await;
        let _one = self.syncing.lock().await;
        let (executor, which) = (Arc::clone(&self.executor), id.to_string());
        let activated = blocking(move || executor.activate(&which)).await?;
        if let (Some(info), Some(shared)) = (&activated, Arc::clone(&self.store).model_store()) {
            shared.set_active(&info.task, &info.id, false).await?;
        }
        Ok(activated)
    }

    /// Copy into this process's registry the models `ids` that it lacks, from the store
    /// (a batch planned elsewhere, or a map drawn by a model trained elsewhere).
    pub async fn ensure_models(&self, ids: &[String]) -> Result<(), JobError> {
        let local = self.executor.models();
        if ids.iter().all(|id| local.iter().any(|m| m.id == *id)) {
            return Ok(());
        }
        self.sync_models().await.map_err(JobError::Failed)
    }

    /// Renew, every [`JOB_HEARTBEAT_S`], the heartbeat of the jobs this process runs, until
    /// [`Jobs::shutdown`] (in a shared store; nothing in the embedded one).
    pub async fn run_heartbeat(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(JOB_HEARTBEAT_S));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stopping.wait() => return,
            }
            if let Err(e) = self.store.heartbeat_jobs().await {
                tracing::warn!("jobs: cannot renew the heartbeat of running jobs: {e}");
            }
        }
    }
}
