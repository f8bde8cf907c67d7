//! The one error type of the inference crate.

use std::path::PathBuf;

pub type Result<T, E = InferenceError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },

    #[error("{path}: GDAL: {source}")]
    Gdal {
        path: PathBuf,
        #[source]
        source: gdal::errors::GdalError,
    },

    #[error("{path}: farmland layer: {reason}")]
    Farmland { path: PathBuf, reason: String },

    #[error("{path}: labels: {reason}")]
    Labels { path: PathBuf, reason: String },

    #[error("the vector labels gave no labelled observation\n{report}")]
    NoLabels { report: String },

    #[error("{path}: cannot write: {reason}")]
    Output { path: PathBuf, reason: String },

    #[error("{what}: {reason}")]
    Config { what: String, reason: String },

    #[error(transparent)]
    Tiling(#[from] gengdi_tiling::TilingError),
}
