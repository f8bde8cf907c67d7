//! [`TaskQueue`] on PostgreSQL: the `tasks` and `batch_plans` tables of migration 6 (and
//! the plan's `models`, migration 7).
//!
//! Every transaction that finishes a task first locks its batch's `jobs` row: the tile
//! completions of one batch are serialised, so exactly one of them sees the last tile done
//! and queues the merge, and a cancellation or failure recorded on the job is seen by every
//! later completion.

use async_trait::async_trait;
use std::time::Duration;

use super::{col, get_batch, insert_patches, pg, PgStore};
use crate::error::{Result, ServiceError};
use crate::store::queue::{BatchPlan, Claimed, TaskKind, TaskLease, TaskQueue, MAX_ATTEMPTS};
use crate::store::NewPatch;

/// A lease token: 128 random bits.
fn new_lease() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| ServiceError::Random(e.to_string()))?;
    Ok(hex::encode(b))
}

fn kind_of(kind: &str, tile: i64) -> Result<TaskKind> {
    match kind {
        "plan" => Ok(TaskKind::Plan),
        "merge" => Ok(TaskKind::Merge),
        "tile" => usize::try_from(tile)
            .map(TaskKind::Tile)
            .map_err(|_| super::corrupt("tasks.tile")(format!("tile {tile}"))),
        k => Err(super::corrupt("tasks.kind")(format!("unknown kind {k:?}"))),
    }
}

/// Lock `batch`'s job row and say whether `task` still holds its lease on a running job.
async fn holds(tx: &deadpool_postgres::Transaction<'_>, task: &TaskLease) -> Result<bool> {
    let job = tx
        .query_opt(
            "SELECT status, cancel_requested FROM jobs WHERE batch_id = $1 FOR UPDATE",
            &[&task.batch],
        )
        .await
        .map_err(pg("locking a job"))?;
    let Some(job) = job else { return Ok(false) };
    let status: String = col(&job, 0, "jobs")?;
    let cancel: bool = col(&job, 1, "jobs")?;
    if status != "running" || cancel {
        return Ok(false);
    }
    let held = tx
        .query_opt(
            "SELECT 1 FROM tasks WHERE id = $1 AND lease = $2 AND status = 'running' FOR UPDATE",
            &[&task.id, &task.lease],
        )
        .await
        .map_err(pg("checking a task's lease"))?;
    Ok(held.is_some())
}

/// End `batch`'s job as `status` (`failed` with `error`, or `cancelled`), its unfinished
/// tasks cancelled (`failed_task` marked failed).
async fn end_job(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: i64,
    status: &str,
    error: Option<&str>,
    failed_task: Option<i64>,
) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET status = $2, stage = $2, error = $3, finished_at = now()
         WHERE batch_id = $1 AND status IN ('queued', 'running')",
        &[&batch, &status, &error],
    )
    .await
    .map_err(pg("ending a job"))?;
    tx.execute(
        "UPDATE tasks SET status = CASE WHEN id = $2 THEN 'failed' ELSE 'cancelled' END,
           error = CASE WHEN id = $2 THEN $3 ELSE error END, finished_at = now()
         WHERE batch_id = $1 AND status IN ('queued', 'running')",
        &[&batch, &failed_task.unwrap_or(-1), &error],
    )
    .await
    .map_err(pg("ending a job's tasks"))?;
    Ok(())
}

#[async_trait]
impl TaskQueue for PgStore {
    async fn claim_task(&self, worker: &str, lease: Duration) -> Result<Claimed> {
        let mut c = self.client().await?;
        let lease_s = lease.as_secs_f64();
        loop {
            let tx = c
                .transaction()
                .await
                .map_err(pg("starting a transaction"))?;
            let row = tx
                .query_opt(
                    "SELECT t.id, t.batch_id, t.kind, t.tile, t.attempts
                     FROM tasks t JOIN jobs j ON j.batch_id = t.batch_id
                     WHERE (t.status = 'queued'
                            OR (t.status = 'running'
                                AND t.heartbeat_at + make_interval(secs => t.lease_s) < now()))
                       AND j.status IN ('queued', 'running') AND NOT j.cancel_requested
                     ORDER BY t.id LIMIT 1
                     FOR UPDATE OF t SKIP LOCKED",
                    &[],
                )
                .await
                .map_err(pg("finding a queued task"))?;
            let Some(row) = row else {
                return Ok(Claimed::Nothing);
            };
            let w = "tasks";
            let id: i64 = col(&row, 0, w)?;
            let batch: i64 = col(&row, 1, w)?;
            let kind = kind_of(&col::<String>(&row, 2, w)?, col(&row, 3, w)?)?;
            let attempts: i64 = col(&row, 4, w)?;
            if attempts >= MAX_ATTEMPTS {
                let error = format!(
                    "{kind} was claimed {attempts} times and never finished (its workers \
                     stopped): the batch is failed"
                );
                tracing::error!("queue: batch {batch}: {error}");
                tx.execute(
                    "SELECT 1 FROM jobs WHERE batch_id = $1 FOR UPDATE",
                    &[&batch],
                )
                .await
                .map_err(pg("locking a job"))?;
                end_job(&tx, batch, "failed", Some(&error), Some(id)).await?;
                tx.commit().await.map_err(pg("failing a batch"))?;
                continue;
            }
            if kind == TaskKind::Plan {
                // The job row decides between a shared run and a whole-batch claim
                // (`Store::claim_job`), which cancels the plan task it can lock.
                let status: String = col(
                    &tx.query_one(
                        "SELECT status FROM jobs WHERE batch_id = $1 FOR UPDATE",
                        &[&batch],
                    )
                    .await
                    .map_err(pg("locking a job"))?,
                    0,
                    "jobs",
                )?;
                match status.as_str() {
                    "queued" => {
                        tx.execute(
                            "UPDATE jobs SET status = 'running', stage = 'planning',
                               attempts = attempts + 1, tiles_done = 0, tiles_total = 0,
                               started_at = now()
                             WHERE batch_id = $1",
                            &[&batch],
                        )
                        .await
                        .map_err(pg("starting a job"))?;
                    }
                    // A planner that stopped: plan again.
                    "running" if attempts > 0 => {}
                    _ => {
                        tx.execute(
                            "UPDATE tasks SET status = 'cancelled', finished_at = now()
                             WHERE id = $1",
                            &[&id],
                        )
                        .await
                        .map_err(pg("dropping a plan task"))?;
                        tx.commit().await.map_err(pg("dropping a plan task"))?;
                        continue;
                    }
                }
            }
            let token = new_lease()?;
            tx.execute(
                "UPDATE tasks SET status = 'running', worker = $2, lease = $3, lease_s = $4,
                   heartbeat_at = now(), attempts = attempts + 1
                 WHERE id = $1",
                &[&id, &worker, &token, &lease_s],
            )
            .await
            .map_err(pg("claiming a task"))?;
            let rec = get_batch(&*tx, batch)
                .await?
                .ok_or_else(|| super::vanished("batches", batch))?;
            tx.commit().await.map_err(pg("committing a claim"))?;
            if attempts > 0 {
                tracing::info!(
                    "queue: batch {batch} {kind} taken over by {worker} (claim {})",
                    attempts + 1
                );
            }
            return Ok(Claimed::Task(
                TaskLease {
                    id,
                    batch,
                    kind,
                    lease: token,
                    attempts: attempts + 1,
                },
                Box::new(rec),
            ));
        }
    }

    async fn heartbeat(&self, task: &TaskLease) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE tasks SET heartbeat_at = now()
                 WHERE id = $1 AND lease = $2 AND status = 'running'
                   AND EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = tasks.batch_id
                               AND j.status = 'running' AND NOT j.cancel_requested)",
                &[&task.id, &task.lease],
            )
            .await
            .map_err(pg("renewing a lease"))?;
        Ok(n == 1)
    }

    async fn release_task(&self, task: &TaskLease) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE tasks SET status = 'queued', worker = NULL, lease = NULL,
               heartbeat_at = NULL, attempts = greatest(attempts - 1, 0)
             WHERE id = $1 AND lease = $2 AND status = 'running'",
            &[&task.id, &task.lease],
        )
        .await
        .map_err(pg("releasing a task"))?;
        Ok(())
    }

    async fn finish_plan(
        &self,
        task: &TaskLease,
        worker: &str,
        plan: &BatchPlan,
        tiles: &[usize],
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        if !holds(&tx, task).await? {
            return Ok(false);
        }
        let tiles: Vec<i64> = tiles.iter().map(|&t| t as i64).collect();
        let n = tiles.len() as i64;
        tx.execute(
            "INSERT INTO batch_plans (batch_id, request, fingerprint, tiles, planned_by, models)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (batch_id) DO UPDATE SET request = EXCLUDED.request,
               fingerprint = EXCLUDED.fingerprint, tiles = EXCLUDED.tiles,
               planned_by = EXCLUDED.planned_by, planned_at = now(),
               models = EXCLUDED.models",
            &[
                &task.batch,
                &plan.request.to_string(),
                &plan.fingerprint,
                &n,
                &worker,
                &serde_json::Value::from(plan.models.clone()).to_string(),
            ],
        )
        .await
        .map_err(pg("recording a plan"))?;
        tx.execute(
            "INSERT INTO tasks (batch_id, kind, tile)
             SELECT $1, 'tile', t FROM unnest($2::bigint[]) AS t
             ON CONFLICT (batch_id, kind, tile) DO NOTHING",
            &[&task.batch, &tiles],
        )
        .await
        .map_err(pg("queueing tile tasks"))?;
        if tiles.is_empty() {
            tx.execute(
                "INSERT INTO tasks (batch_id, kind) VALUES ($1, 'merge')
                 ON CONFLICT (batch_id, kind, tile) DO NOTHING",
                &[&task.batch],
            )
            .await
            .map_err(pg("queueing a merge"))?;
        }
        tx.execute(
            "UPDATE tasks SET status = 'done', finished_at = now() WHERE id = $1",
            &[&task.id],
        )
        .await
        .map_err(pg("finishing a plan task"))?;
        tx.execute(
            "UPDATE jobs SET stage = $2, tiles_total = $3,
               tiles_done = (SELECT count(*) FROM tasks
                             WHERE batch_id = $1 AND kind = 'tile' AND status = 'done')
             WHERE batch_id = $1",
            &[
                &task.batch,
                &if tiles.is_empty() {
                    "merging"
                } else {
                    "analysing_tiles"
                },
                &n,
            ],
        )
        .await
        .map_err(pg("recording a plan's progress"))?;
        tx.commit().await.map_err(pg("committing a plan"))?;
        Ok(true)
    }

    async fn plan(&self, batch: i64) -> Result<Option<BatchPlan>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT request, fingerprint, tiles, models FROM batch_plans
                 WHERE batch_id = $1",
                &[&batch],
            )
            .await
            .map_err(pg("reading a plan"))?;
        row.map(|r| {
            let w = "batch_plans";
            Ok(BatchPlan {
                request: serde_json::from_str(&col::<String>(&r, 0, w)?)
                    .map_err(|e| super::corrupt("batch_plans.request")(e.to_string()))?,
                fingerprint: col(&r, 1, w)?,
                tiles: col(&r, 2, w)?,
                models: serde_json::from_str(&col::<String>(&r, 3, w)?)
                    .map_err(|e| super::corrupt("batch_plans.models")(e.to_string()))?,
            })
        })
        .transpose()
    }

    async fn finish_tile(&self, task: &TaskLease, output: &[u8]) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        if !holds(&tx, task).await? {
            return Ok(false);
        }
        tx.execute(
            "UPDATE tasks SET status = 'done', result = $2, finished_at = now() WHERE id = $1",
            &[&task.id, &output],
        )
        .await
        .map_err(pg("storing a tile's output"))?;
        let r = tx
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'done'), count(*)
                 FROM tasks WHERE batch_id = $1 AND kind = 'tile'",
                &[&task.batch],
            )
            .await
            .map_err(pg("counting finished tiles"))?;
        let (done, total): (i64, i64) = (col(&r, 0, "tasks")?, col(&r, 1, "tasks")?);
        let last = done == total;
        if last {
            tx.execute(
                "INSERT INTO tasks (batch_id, kind) VALUES ($1, 'merge')
                 ON CONFLICT (batch_id, kind, tile) DO NOTHING",
                &[&task.batch],
            )
            .await
            .map_err(pg("queueing a merge"))?;
        }
        tx.execute(
            "UPDATE jobs SET tiles_done = $2, tiles_total = $3, stage = $4 WHERE batch_id = $1",
            &[
                &task.batch,
                &done,
                &total,
                &if last { "merging" } else { "analysing_tiles" },
            ],
        )
        .await
        .map_err(pg("storing progress"))?;
        tx.commit().await.map_err(pg("committing a tile"))?;
        Ok(true)
    }

    async fn tile_outputs(&self, batch: i64) -> Result<Vec<(usize, Vec<u8>)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT tile, result FROM tasks
                 WHERE batch_id = $1 AND kind = 'tile' AND status = 'done' AND result IS NOT NULL
                 ORDER BY tile",
                &[&batch],
            )
            .await
            .map_err(pg("reading tile outputs"))?;
        rows.iter()
            .map(|r| {
                let tile: i64 = col(r, 0, "tasks")?;
                Ok((
                    usize::try_from(tile)
                        .map_err(|_| super::corrupt("tasks.tile")(format!("tile {tile}")))?,
                    col(r, 1, "tasks")?,
                ))
            })
            .collect()
    }

    async fn finish_merge(&self, task: &TaskLease, patches: &[NewPatch]) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        if !holds(&tx, task).await? {
            return Ok(false);
        }
        let n = insert_patches(&*tx, task.batch, patches).await? as i64;
        tx.execute(
            "UPDATE jobs SET status = 'done', stage = 'done', patches = $2, finished_at = now()
             WHERE batch_id = $1",
            &[&task.batch, &n],
        )
        .await
        .map_err(pg("finishing a job"))?;
        tx.execute(
            "UPDATE tasks SET status = 'done', finished_at = now() WHERE id = $1",
            &[&task.id],
        )
        .await
        .map_err(pg("finishing a merge task"))?;
        // The patches are kept: the tile outputs are not needed any more.
        tx.execute(
            "UPDATE tasks SET result = NULL WHERE batch_id = $1 AND kind = 'tile'",
            &[&task.batch],
        )
        .await
        .map_err(pg("dropping tile outputs"))?;
        tx.commit().await.map_err(pg("committing a merge"))?;
        Ok(true)
    }

    async fn fail_task(&self, task: &TaskLease, error: &str) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        if !holds(&tx, task).await? {
            return Ok(());
        }
        let error = format!("{}: {error}", task.kind);
        end_job(&tx, task.batch, "failed", Some(&error), Some(task.id)).await?;
        tx.commit().await.map_err(pg("committing a failure"))
    }
}

impl PgStore {
    /// Cancel a running shared run at once (its workers' leases stop renewing and their late
    /// results are refused); `false` when the batch is not one (no task of it ran).
    pub(super) async fn cancel_shared(
        tx: &deadpool_postgres::Transaction<'_>,
        batch: i64,
    ) -> Result<bool> {
        let shared = tx
            .query_opt(
                "SELECT 1 FROM tasks WHERE batch_id = $1 AND status IN ('running', 'done')
                 LIMIT 1",
                &[&batch],
            )
            .await
            .map_err(pg("looking for a shared run"))?
            .is_some();
        if shared {
            end_job(tx, batch, "cancelled", None, None).await?;
        }
        Ok(shared)
    }
}
