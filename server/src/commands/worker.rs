//! `gengdi worker`: a stateless worker of shared runs. It takes tasks (a batch's plan, its
//! tiles, its merge) from the PostgreSQL database the servers use, runs them with the active
//! models of the data dir's registry, and stores each result there; start as many as the
//! machines hold, anywhere that sees the database, the data dir and the scenes.

use anyhow::{bail, Context};
use clap::Args;
use gengdi_models::DeviceChoice;
use gengdi_service::config::ConfigFile;
use gengdi_service::jobs::{shared, Jobs};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The PostgreSQL/PostGIS database of the service (postgres://user:password@host:port/db).
    #[arg(long, value_name = "URL", env = "GENGDI_DATABASE")]
    pub database: String,
    /// The service's data dir, shared with the servers (the farmland copies batches name, and the models) [default: ./gengdi-data].
    #[arg(long, value_name = "DIR", env = "GENGDI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Tasks run at once in this process [default: the cores]. A tile task runs mostly on one thread, so one task per core keeps the cores busy.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// A claimed task not renewed for this long is taken over by another worker, in seconds.
    #[arg(long, value_name = "S", default_value_t = shared::DEFAULT_LEASE_S)]
    pub lease_s: f64,
    /// Tile side in pixels of the batches this worker plans [default: the service's, 512].
    #[arg(long, value_name = "PX")]
    pub tile: Option<usize>,
    /// Settings file (TOML, as `gengdi serve --config`: data_dir, database, tile, crop_type, max_scene_pixels, task_lease_s are used).
    #[arg(long, value_name = "FILE", env = "GENGDI_CONFIG")]
    pub config: Option<PathBuf>,
    /// The registry copied into <data dir>/models when it has none (as `gengdi serve --registry`).
    #[arg(long, value_name = "DIR")]
    pub registry: Option<PathBuf>,
    /// Batches may name remote scenes (s3://bucket/key, https://…) under this prefix, read through GDAL with its usual AWS_* settings (repeatable; adds to the settings file's remote_prefixes).
    #[arg(long, value_name = "PREFIX")]
    pub allow_remote: Vec<String>,
    /// Burn device: ndarray or flex.
    #[arg(long, default_value = "ndarray", env = "GENGDI_DEVICE")]
    pub device: DeviceChoice,
}

pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let concurrency = match args.concurrency {
        Some(0) => bail!("--concurrency must be at least 1"),
        Some(n) => n,
        None => rayon::current_num_threads(),
    };
    if !(args.lease_s.is_finite() && args.lease_s >= 1.0) {
        bail!("--lease-s must be at least 1 second");
    }
    let file = match &args.config {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let flags = ConfigFile {
        data_dir: args.data_dir,
        database: Some(args.database),
        tile: args.tile,
        task_lease_s: Some(args.lease_s),
        ..ConfigFile::default()
    };
    let config = super::serve::resolve(flags, file, &args.allow_remote)?;
    let executor = super::serve::executor(&config, args.registry.as_deref(), args.device)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (store, described) = gengdi_service::open_store(&config).await?;
        let Some(queue) = Arc::clone(&store).task_queue() else {
            bail!("{described} has no task queue: workers need a PostgreSQL database");
        };
        let jobs = Arc::new(Jobs::new(store, executor));
        println!(
            "gengdi worker: {} task(s) at once from {described}, lease {} s",
            concurrency, config.task_lease_s
        );
        let lease = std::time::Duration::from_secs_f64(config.task_lease_s);
        let loops: Vec<_> = (0..concurrency)
            .map(|i| {
                tokio::spawn(Arc::clone(&jobs).run_shared_worker(
                    Arc::clone(&queue),
                    shared::worker_name("worker", i),
                    lease,
                ))
            })
            .collect();
        super::serve::stop_signal().await;
        // Tasks in flight stop and go back to the queue for another worker.
        jobs.shutdown();
        for l in loops {
            let _ = l.await;
        }
        Ok(())
    })
}
