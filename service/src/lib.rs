//! The gengdi HTTP service, as a library so that the API is tested in-process
//! ([`api::app`] over an [`api::AppState`]) and over a real port; `gengdi serve` in the
//! `gengdi-server` binary is a thin shell over [`serve`].
//!
//! - [`store`]: the [`store::Store`] trait (tokens, farmland layers, batches and jobs, patches,
//!   verdicts) and its embedded SQLite implementation: **rusqlite 0.39 on the system SQLite**,
//!   not sqlx: the embedded store's calls are short and synchronous, run on tokio's blocking
//!   pool, and need no async driver; the SQLite must be the system one that GDAL also loads
//!   (a bundled second copy crashes GDAL's GeoPackage driver in the same process), and
//!   rusqlite 0.43 needs a newer system SQLite than Debian 12's 3.40.1. The
//!   PostgreSQL/PostGIS backend ([`store::PgStore`], `--database`) implements the same trait
//!   on tokio-postgres, with the work queue of shared runs ([`store::queue`]). Schema
//!   migrations are numbered, recorded in `schema_version`; patch bounding
//!   boxes are in an R*Tree; verdicts are append-only by trigger.
//! - [`auth`]: roles, bearer tokens (stored as SHA-256 digests), region scopes.
//! - [`api`]: the axum router and its handlers; errors are JSON `{code, message, details?}`.
//! - [`jobs`]: the worker and the [`jobs::JobExecutor`] seam; [`jobs::analysis_adapter`] runs
//!   a batch through the library pipeline `gengdi analyze` runs too.
//! - [`farmland`], [`admin`]: registering a farmland or administrative-boundary layer from
//!   the import root.
//! - [`paths`]: the import root; requests cannot name files outside it.

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod farmland;
pub mod geometry;
pub mod jobs;
pub mod limits;
pub mod paths;
pub mod store;

use std::future::Future;
use std::sync::Arc;

pub use api::{app, AppState};
pub use config::ServiceConfig;
pub use error::{Result, ServiceError};

use jobs::{JobExecutor, Jobs};
use store::Store;

/// The state of a service over `store` and `executor`, and its job worker (started on the
/// current tokio runtime; it first puts jobs a stopped run left `running` back in the queue)
/// and its training worker (likewise).
pub fn start(
    config: &ServiceConfig,
    store: Arc<dyn Store>,
    executor: Arc<dyn JobExecutor>,
) -> Result<(AppState, tokio::task::JoinHandle<()>)> {
    let jobs = Arc::new(
        Jobs::new(Arc::clone(&store), Arc::clone(&executor))
            .with_checkpoints(config.data_dir.join("jobs"))
            .with_training(
                config.data_dir.join("training"),
                config.training_tables.clone(),
            ),
    );
    let state = AppState::new(config, Arc::clone(&store), Arc::clone(&jobs))?;
    // Layers registered before the map's parcels were stored get them now.
    tokio::spawn(farmland::backfill_parcels(Arc::clone(&store)));
    // Training jobs have a worker of their own (a job left running at shutdown is queued
    // again by the next start).
    tokio::spawn(Arc::clone(&jobs).run_training_worker());
    // In a store shared by several servers: this server's jobs keep their claim while it
    // beats, and its models are shared with the others (both do nothing in the embedded one).
    tokio::spawn(Arc::clone(&jobs).run_heartbeat());
    {
        let jobs = Arc::clone(&jobs);
        tokio::spawn(async move { jobs.sync_models_or_warn("at start").await });
    }
    let queue = Arc::clone(&store)
        .task_queue()
        .filter(|_| executor.runs_shared());
    let worker = match queue {
        // A shared store: batches are queues of tasks that this process's workers and any
        // `gengdi worker` process take (a store shared by several servers is never
        // requeued wholesale at start, as the embedded one is).
        Some(queue) => {
            let lease = std::time::Duration::from_secs_f64(config.task_lease_s);
            let workers: Vec<_> = (0..config.workers)
                .map(|i| {
                    tokio::spawn(Arc::clone(&jobs).run_shared_worker(
                        Arc::clone(&queue),
                        jobs::shared::worker_name("serve", i),
                        lease,
                    ))
                })
                .collect();
            if workers.is_empty() {
                tracing::info!("jobs: no local worker: batches wait for `gengdi worker` processes");
            }
            tokio::spawn(async move {
                for w in workers {
                    let _ = w.await;
                }
            })
        }
        None => tokio::spawn(jobs.run_worker()),
    };
    Ok((state, worker))
}

/// Serve `state` on `listener` until `shutdown` completes (requests in flight finish).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener.local_addr().map_err(|source| ServiceError::Io {
        path: "listener".into(),
        source,
    })?;
    tracing::info!("serving on http://{addr}");
    axum::serve(listener, api::app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServiceError::Io {
            path: format!("http://{addr}").into(),
            source,
        })
}

/// The store `config` names: the PostgreSQL/PostGIS database of `config.database`, else the
/// embedded SQLite file in the data dir; and what it is, for messages (no password).
pub async fn open_store(config: &ServiceConfig) -> Result<(Arc<dyn Store>, String)> {
    match &config.database {
        Some(url) => {
            let store = store::PgStore::connect(url).await?;
            let described = format!("PostgreSQL {}", store.display());
            Ok((Arc::new(store), described))
        }
        None => {
            let data_dir = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || store::SqliteStore::open(&data_dir))
                .await
                .map_err(|e| ServiceError::Join(e.to_string()))??;
            let described = format!("SQLite {}", store.path().display());
            Ok((Arc::new(store), described))
        }
    }
}

/// `gengdi serve`: open the store (PostgreSQL when configured, else the data dir's SQLite), start the worker, bind and serve until
/// `shutdown`; then stop the worker: a job running at shutdown stops after its tiles in
/// flight and is queued again, to resume from its finished tiles in the next run (as does a
/// job left `running` by a process that was killed).
pub async fn serve(
    config: ServiceConfig,
    executor: Arc<dyn JobExecutor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (store, described) = open_store(&config).await?;
    tracing::info!("store: {described}");
    let (state, worker) = start(&config, store, executor)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServiceError::Io {
            path: config.listen.to_string().into(),
            source,
        })?;
    let jobs = Arc::clone(state.jobs());
    let served = serve_on(listener, state, shutdown).await;
    jobs.shutdown();
    match tokio::time::timeout(std::time::Duration::from_secs(120), worker).await {
        Ok(_) => {}
        Err(_) => tracing::warn!(
            "the running job did not stop within 120 s: leaving it for the next start to resume"
        ),
    }
    served
}
