//! `gengdi serve`: the HTTP API over the embedded store (or PostgreSQL), with the analysis
//! worker.

use anyhow::Context;
use clap::Args;
use gengdi_models::DeviceChoice;
use gengdi_service::config::ConfigFile;
use gengdi_service::jobs::analysis_adapter::{data_dir_registry, load_models, AnalysisExecutor};
use gengdi_service::ServiceConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where the database and stored farmland layers live [default: ./gengdi-data].
    #[arg(long, value_name = "DIR", env = "GENGDI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL/PostGIS database (postgres://user:password@host:port/db) as the store, shared by every server on it, instead of the embedded SQLite file in the data dir [default: SQLite].
    #[arg(long, value_name = "URL", env = "GENGDI_DATABASE")]
    pub database: Option<String>,
    /// With --database: workers of shared runs beside the API (0: none; batches then wait for `gengdi worker` processes) [default: the cores].
    #[arg(long, value_name = "N", env = "GENGDI_WORKERS")]
    pub workers: Option<usize>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", env = "GENGDI_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Requests may only name files under this folder [default: <data dir>/import].
    #[arg(long, value_name = "DIR", env = "GENGDI_IMPORT_ROOT")]
    pub import_root: Option<PathBuf>,
    /// Cropland target the statistics compare the farmland layers with, in mu [default: 4401200].
    #[arg(long, value_name = "MU", env = "GENGDI_CROPLAND_TARGET_MU")]
    pub cropland_target_mu: Option<f64>,
    /// Permanent basic farmland target, in mu [default: 3434500].
    #[arg(long, value_name = "MU", env = "GENGDI_PBF_TARGET_MU")]
    pub pbf_target_mu: Option<f64>,
    /// Settings file (TOML: data_dir, database, workers, task_lease_s, listen, import_root, body_limit, tile, crop_type, cropland_target_mu, pbf_target_mu, training_tables); flags and GENGDI_* variables override it.
    #[arg(long, value_name = "FILE", env = "GENGDI_CONFIG")]
    pub config: Option<PathBuf>,
    /// The registry copied into <data dir>/models on the first start (the service then runs, activates and trains models there). [default: $GENGDI_REGISTRY, else a registry installed beside the executable, else the models built into gengdi]
    #[arg(long, value_name = "DIR")]
    pub registry: Option<PathBuf>,
    /// Batches may name remote scenes (s3://bucket/key, https://…) under this prefix, read through GDAL with its usual AWS_* settings (repeatable; adds to the settings file's remote_prefixes).
    #[arg(long, value_name = "PREFIX")]
    pub allow_remote: Vec<String>,
    /// Burn device: ndarray or flex.
    #[arg(long, default_value = "ndarray", env = "GENGDI_DEVICE")]
    pub device: DeviceChoice,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let flags = ConfigFile {
        data_dir: args.data_dir,
        database: args.database,
        workers: args.workers,
        listen: args.listen,
        import_root: args.import_root,
        cropland_target_mu: args.cropland_target_mu,
        pbf_target_mu: args.pbf_target_mu,
        ..ConfigFile::default()
    };
    let config = resolve(flags, file, &args.allow_remote)?;
    let executor = executor(&config, args.registry.as_deref(), args.device)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    println!(
        "gengdi serve: http://{} (data {}, import root {}, store {})",
        config.listen,
        config.data_dir.display(),
        config.import_root.display(),
        config
            .database
            .as_deref()
            .map(gengdi_service::store::postgres::redact_url)
            .unwrap_or_else(|| "SQLite in the data dir".into())
    );
    runtime.block_on(gengdi_service::serve(config, executor, stop_signal()))?;
    Ok(())
}

/// The settings of `gengdi serve` and `gengdi worker`: `flags` over the settings `file`,
/// the `--allow-remote` prefixes added to the file's `remote_prefixes` (checked with them).
pub(crate) fn resolve(
    mut flags: ConfigFile,
    file: ConfigFile,
    allow_remote: &[String],
) -> anyhow::Result<ServiceConfig> {
    if !allow_remote.is_empty() {
        let mut prefixes = file.remote_prefixes.clone().unwrap_or_default();
        prefixes.extend(allow_remote.iter().cloned());
        flags.remote_prefixes = Some(prefixes);
    }
    Ok(flags.or(file).resolve()?)
}

/// The analysis executor of `gengdi serve` and `gengdi worker`: the active models of the
/// data dir's own registry (activation and training write there), which is filled from the
/// located one (built in, installed or `registry`) on the first start.
pub(crate) fn executor(
    config: &ServiceConfig,
    registry: Option<&Path>,
    device: DeviceChoice,
) -> anyhow::Result<Arc<AnalysisExecutor>> {
    let located = crate::registry::locate(registry)?.for_reading()?;
    let registry = data_dir_registry(&config.data_dir, &located.registry)
        .with_context(|| format!("cannot copy the models of {located} into the data dir"))?;
    tracing::info!(
        "models: {} (first filled from {located})",
        registry.root().display()
    );
    let models = load_models(&registry, device, config.crop_type)
        .with_context(|| format!("cannot load the models of {}", registry.root().display()))?;
    let mut executor = AnalysisExecutor::new(models, config.tile, config.max_scene_pixels)
        .with_registry(registry, device);
    executor.remote_prefixes = config.remote_prefixes.clone();
    Ok(Arc::new(executor))
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM: the service then stops taking requests and jobs,
/// and the running job goes back to the queue with its finished tiles kept.
pub(crate) async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot wait for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot wait for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
}
