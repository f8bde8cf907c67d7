//! The work queue of shared runs: a batch analysed by any number of `gengdi worker`
//! processes (and `gengdi serve --workers N`) on any number of machines, through the
//! database they share. Only the PostgreSQL store has one ([`super::Store::task_queue`]).
//!
//! A batch is three kinds of task:
//! 1. **plan**: open the inputs, record the analysis request every worker runs and a
//!    fingerprint of it and the models (scenes' sizes and times, model ids), and queue one
//!    task per tile with farmland;
//! 2. **tile**: analyse one tile; its output (the per-parcel sums and candidate pixels the
//!    merge needs) is stored with the task in the transaction that finishes it;
//! 3. **merge**: queued by the transaction that finishes the last tile; merges every tile's
//!    output into patches and stores them with the job's end, in one transaction.
//!
//! Claims take queued tasks with row locks that skip locked rows (`FOR UPDATE SKIP
//! LOCKED`), so workers never wait on each other or take one task twice. A claim is a lease
//! (a random token) that the worker's heartbeat renews; a task whose heartbeat is older than
//! the lease is claimed again by another worker, and the first worker's late result is
//! refused (its lease token no longer matches). A task is tried at most
//! [`MAX_ATTEMPTS`] times; then its batch fails, naming it.

use async_trait::async_trait;
use std::time::Duration;

use super::{BatchRecord, NewPatch};
use crate::error::Result;

/// How many times a task may be claimed before its batch fails.
pub const MAX_ATTEMPTS: i64 = 5;

/// What a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Plan,
    Tile(usize),
    Merge,
}

impl TaskKind {
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Plan => "plan",
            TaskKind::Tile(_) => "tile",
            TaskKind::Merge => "merge",
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskKind::Tile(t) => write!(f, "tile {t}"),
            k => f.write_str(k.name()),
        }
    }
}

/// A claimed task: what to do, and the lease that proves the claim.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskLease {
    pub id: i64,
    pub batch: i64,
    pub kind: TaskKind,
    /// The claim's token: only its holder may renew or finish the task.
    pub lease: String,
    /// Claims of this task so far, this one included.
    pub attempts: i64,
}

/// A batch's plan, as its plan task recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPlan {
    /// The analysis request every task of the batch runs (JSON).
    pub request: serde_json::Value,
    /// What the request's result depends on besides the request: scene files and models.
    /// A worker whose own fingerprint differs (other models) refuses the task.
    pub fingerprint: String,
    /// Tiles with farmland.
    pub tiles: i64,
    /// The ids of the models the batch was planned with: its tasks run these, wherever
    /// they run and whatever was activated since (empty in plans recorded before it was
    /// kept: those run the worker's active models, checked by the fingerprint).
    pub models: Vec<String>,
}

/// What a claim gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Claimed {
    /// A task to run, with its batch.
    Task(TaskLease, Box<BatchRecord>),
    /// Nothing is queued.
    Nothing,
}

/// The queue of tasks of shared runs.
#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Claim the oldest queued task (or one whose lease ran out: not renewed for as long as
    /// its holder's lease) for `worker`, who renews it at least every `lease`.
    async fn claim_task(&self, worker: &str, lease: Duration) -> Result<Claimed>;
    /// Renew the lease; `false` when it is no longer this worker's (taken over, or its batch
    /// ended: the worker should drop the task).
    async fn heartbeat(&self, task: &TaskLease) -> Result<bool>;
    /// Give the task back unfinished (the worker is stopping); it is claimed again at once.
    async fn release_task(&self, task: &TaskLease) -> Result<()>;
    /// Record a plan task's plan and queue the tiles (the merge when there are none).
    /// `false`: the lease was lost and nothing was recorded.
    async fn finish_plan(
        &self,
        task: &TaskLease,
        worker: &str,
        plan: &BatchPlan,
        tiles: &[usize],
    ) -> Result<bool>;
    /// The plan of `batch`.
    async fn plan(&self, batch: i64) -> Result<Option<BatchPlan>>;
    /// Store a tile's output and finish its task; the last tile of a batch queues its merge.
    /// `false`: the lease was lost and nothing was stored.
    async fn finish_tile(&self, task: &TaskLease, output: &[u8]) -> Result<bool>;
    /// Every tile output of `batch`, by tile.
    async fn tile_outputs(&self, batch: i64) -> Result<Vec<(usize, Vec<u8>)>>;
    /// Store the patches, finish the merge task and the batch's job, in one transaction.
    /// `false`: the lease was lost and nothing was stored.
    async fn finish_merge(&self, task: &TaskLease, patches: &[NewPatch]) -> Result<bool>;
    /// The task failed: so does its batch, with `error` (the other tasks are cancelled).
    async fn fail_task(&self, task: &TaskLease, error: &str) -> Result<()>;
}
