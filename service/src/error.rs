//! The one error type of the service crate (store, imports, jobs). HTTP statuses are chosen
//! in [`crate::api::error`], from these variants.

use std::path::PathBuf;

/// What went wrong in the service, below the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database refused or failed a statement.
    #[error("store: {context}: {source}")]
    Sql {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// PostgreSQL refused or failed a statement; `message` is the server's own words.
    #[error("store: {context}: {message}")]
    Postgres {
        context: &'static str,
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },

    /// The shared database cannot be reached (down, restarting, no free connection): the
    /// request may be sent again.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),

    /// The database file cannot be opened or migrated.
    #[error("store {path}: {reason}")]
    StoreOpen { path: PathBuf, reason: String },

    /// A stored value that cannot be read back (a JSON column, an unknown enum name).
    #[error("store: corrupt value in {what}: {reason}")]
    Corrupt { what: &'static str, reason: String },

    /// The store's connection lock was poisoned by a thread that panicked while holding it.
    #[error("store: the connection lock is poisoned")]
    Poisoned,

    /// A blocking task (store call or job) was cancelled or panicked.
    #[error("background task failed: {0}")]
    Join(String),

    /// A file operation under the data dir or the import root.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A path a request names that is not inside the import root (after resolving `..` and
    /// symbolic links).
    #[error("{path}: outside the import root")]
    OutsideImportRoot { path: String },

    /// A path a request names that does not exist under the import root.
    #[error("{path}: no such file under the import root")]
    NotUnderImportRoot { path: String },

    /// A request value the service cannot use (a bad mapping, an unknown farmland id, …).
    #[error("{0}")]
    Invalid(String),

    /// The farmland reader, scene opening or the analysis failed.
    #[error(transparent)]
    Inference(#[from] gengdi_inference::InferenceError),

    /// An analysis failed (its inputs, a tile, a model); the source says which.
    #[error(transparent)]
    Analysis(Box<gengdi_inference::pipeline::PipelineError>),

    /// Loading a model failed.
    #[error(transparent)]
    Model(#[from] gengdi_models::ModelError),

    /// A coordinate transformation (GDAL/PROJ) failed.
    #[error("coordinate transformation: {0}")]
    Projection(String),

    /// The configuration file or value is unusable.
    #[error("configuration {what}: {reason}")]
    Config { what: String, reason: String },

    /// A file a request names claims more than a configured limit (pixels, unpacked bytes).
    #[error("{path}: {reason}")]
    TooLarge { path: PathBuf, reason: String },

    /// Randomness for a token could not be drawn from the operating system.
    #[error("cannot draw random bytes for a token: {0}")]
    Random(String),
}

/// Wrap a rusqlite error with what the statement was for.
pub(crate) fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> ServiceError {
    move |source| ServiceError::Sql { context, source }
}

/// The service crate's result.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
