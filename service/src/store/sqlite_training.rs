//! The `training_jobs` table of the embedded store (migration 2): the statements behind the
//! training-job methods of [`super::Store`] for [`super::SqliteStore`].

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::sqlite::corrupt;
use super::{JobStatus, TrainingCancel, TrainingJobRecord, TrainingOutcome};
use crate::error::{sql, Result};

const SELECT: &str = "SELECT id, request, status, stage, epoch, epochs, result, error, attempts, created_by, created_at, started_at, finished_at, cancel_requested FROM training_jobs";

type RawRow = (TrainingJobRecord, String, String, Option<String>);

fn row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        TrainingJobRecord {
            id: r.get(0)?,
            request: serde_json::Value::Null,
            status: JobStatus::Queued,
            stage: r.get(3)?,
            epoch: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            epochs: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            result: None,
            error: r.get(7)?,
            attempts: r.get(8)?,
            created_by: r.get(9)?,
            created_at: r.get(10)?,
            started_at: r.get(11)?,
            finished_at: r.get(12)?,
            cancel_requested: r.get::<_, i64>(13)? != 0,
        },
        r.get(1)?,
        r.get(2)?,
        r.get(6)?,
    ))
}

fn record((mut rec, request, status, result): RawRow) -> Result<TrainingJobRecord> {
    rec.request = serde_json::from_str(&request)
        .map_err(|e| corrupt("training_jobs.request")(e.to_string()))?;
    rec.status = JobStatus::parse(&status)
        .ok_or_else(|| corrupt("training_jobs.status")(format!("unknown status {status:?}")))?;
    rec.result = result
        .map(|r| serde_json::from_str(&r))
        .transpose()
        .map_err(|e| corrupt("training_jobs.result")(e.to_string()))?;
    Ok(rec)
}

pub(super) fn get(c: &Connection, id: i64) -> Result<Option<TrainingJobRecord>> {
    c.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row)
        .optional()
        .map_err(sql("reading a training job"))?
        .map(record)
        .transpose()
}

fn vanished(id: i64) -> crate::error::ServiceError {
    corrupt("training_jobs")(format!("training job {id} vanished"))
}

pub(super) fn create(
    c: &Connection,
    request: &serde_json::Value,
    epochs: u64,
    created_by: i64,
) -> Result<TrainingJobRecord> {
    c.execute(
        "INSERT INTO training_jobs (request, status, epochs, created_by) VALUES (?1, 'queued', ?2, ?3)",
        params![
            request.to_string(),
            i64::try_from(epochs).unwrap_or(i64::MAX),
            created_by
        ],
    )
    .map_err(sql("queueing a training job"))?;
    let id = c.last_insert_rowid();
    get(c, id)?.ok_or_else(|| vanished(id))
}

pub(super) fn list(c: &mut Connection) -> Result<Vec<TrainingJobRecord>> {
    let mut st = c
        .prepare(&format!("{SELECT} ORDER BY id"))
        .map_err(sql("listing training jobs"))?;
    let rows = st
        .query_map([], row)
        .map_err(sql("listing training jobs"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql("listing training jobs"))?;
    rows.into_iter().map(record).collect()
}

pub(super) fn claim(c: &mut Connection) -> Result<Option<TrainingJobRecord>> {
    let tx = c.transaction().map_err(sql("starting a transaction"))?;
    let id: Option<i64> = tx
        .query_row(
            "SELECT id FROM training_jobs WHERE status = 'queued' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("finding a queued training job"))?;
    let Some(id) = id else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE training_jobs SET status = 'running', stage = 'starting', epoch = 0,
           attempts = attempts + 1, started_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
         WHERE id = ?1",
        [id],
    )
    .map_err(sql("claiming a training job"))?;
    let rec = get(&tx, id)?;
    tx.commit().map_err(sql("committing a claim"))?;
    Ok(rec)
}

pub(super) fn progress(c: &Connection, id: i64, stage: &str, epoch: u64) -> Result<()> {
    c.execute(
        "UPDATE training_jobs SET stage = ?2, epoch = ?3 WHERE id = ?1 AND status = 'running'",
        params![id, stage, i64::try_from(epoch).unwrap_or(i64::MAX)],
    )
    .map_err(sql("storing training progress"))?;
    Ok(())
}

pub(super) fn finish(
    c: &Connection,
    id: i64,
    outcome: &TrainingOutcome,
) -> Result<TrainingJobRecord> {
    let (status, result, error) = match outcome {
        TrainingOutcome::Done(r) => ("done", Some(r.to_string()), None),
        TrainingOutcome::Failed(e) => ("failed", None, Some(e.clone())),
        TrainingOutcome::Cancelled => ("cancelled", None, None),
    };
    c.execute(
        "UPDATE training_jobs SET status = ?2, stage = ?2, result = ?3, error = ?4,
           finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?1",
        params![id, status, result, error],
    )
    .map_err(sql("finishing a training job"))?;
    get(c, id)?.ok_or_else(|| vanished(id))
}

/// Cancel a queued job at once; mark a running one for cancellation (its process stops it,
/// and a restart that finds it running again cancels it before it trains).
pub(super) fn cancel(c: &mut Connection, id: i64) -> Result<TrainingCancel> {
    let tx = c.transaction().map_err(sql("starting a transaction"))?;
    let Some(job) = get(&tx, id)? else {
        return Ok(TrainingCancel::NotFound);
    };
    let outcome = match job.status {
        JobStatus::Queued => {
            tx.execute(
                "UPDATE training_jobs SET status = 'cancelled', stage = 'cancelled',
                   cancel_requested = 1, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
                 WHERE id = ?1",
                [id],
            )
            .map_err(sql("cancelling a training job"))?;
            TrainingCancel::Cancelled(get(&tx, id)?.ok_or_else(|| vanished(id))?)
        }
        JobStatus::Running => {
            tx.execute(
                "UPDATE training_jobs SET cancel_requested = 1 WHERE id = ?1",
                [id],
            )
            .map_err(sql("cancelling a training job"))?;
            TrainingCancel::Requested(get(&tx, id)?.ok_or_else(|| vanished(id))?)
        }
        _ => TrainingCancel::AlreadyFinished(job),
    };
    tx.commit().map_err(sql("committing a cancellation"))?;
    Ok(outcome)
}

pub(super) fn requeue(c: &mut Connection) -> Result<usize> {
    c.execute(
        "UPDATE training_jobs SET status = 'queued', stage = 'queued', epoch = 0
         WHERE status = 'running'",
        [],
    )
    .map_err(sql("requeueing running training jobs"))
}
