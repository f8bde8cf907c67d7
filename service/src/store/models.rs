//! Models kept in a shared store, so that every server and worker of one database runs the
//! same ones. Only the PostgreSQL store has it ([`super::Store::model_store`]); the embedded
//! store's one server keeps its models in the data dir's registry alone.
//!
//! Each process still loads models from a registry folder of its own data dir: the store
//! holds every model's files and which model is active per task, and each process copies
//! what it lacks ([`crate::jobs::Jobs::sync_models`]):
//! - a model trained or installed in one process is published (its files added under its id,
//!   never changed: the id is the weights' digest, checked again when the model is loaded);
//! - activating a model (`POST /api/v1/models/{id}/activate`) sets the store's active model
//!   of its task, and every process follows it before it plans its next batch;
//! - a batch's plan names the models it was planned with, and its tile and merge tasks run
//!   those, whatever has been activated since, wherever they run.

use async_trait::async_trait;

use crate::error::Result;

/// A model's files, as its registry folder holds them (`card.json`, `weights.bpk`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredModel {
    pub id: String,
    /// The task's name (`landcover`, `croptype`, `season`).
    pub task: String,
    /// File name and bytes, by name.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The models shared by the processes of one store.
#[async_trait]
pub trait ModelStore: Send + Sync {
    /// The ids of every model stored.
    async fn model_ids(&self) -> Result<Vec<String>>;
    /// Store a model, unless one with its id is stored already (ids are weight digests:
    /// the same id is the same model).
    async fn put_model(&self, model: &StoredModel) -> Result<()>;
    /// The model `id`, with its files.
    async fn get_model(&self, id: &str) -> Result<Option<StoredModel>>;
    /// The active model of each task that has one: `(task, id)`.
    async fn active_models(&self) -> Result<Vec<(String, String)>>;
    /// Make `id` (stored) the active model of `task`; with `only_if_none`, only when the
    /// task has none yet (the first process to start sets its own active models).
    async fn set_active(&self, task: &str, id: &str, only_if_none: bool) -> Result<()>;
}
