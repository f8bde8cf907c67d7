//! The one error type of the tiling crate. Every variant names the file (and where it
//! applies the band, chunk or tile) so that a user can tell what was wrong with what.

use crate::gdal_open::OpenFailure;
use std::path::PathBuf;

/// Result alias of the tiling crate.
pub type Result<T, E = TilingError> = std::result::Result<T, E>;

/// Everything that can go wrong while opening, reading, stacking or writing rasters.
#[derive(Debug, thiserror::Error)]
pub enum TilingError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },

    /// GDAL could not open the file as a raster; `failure` says what the file is.
    #[error("{path}: {failure}")]
    CannotOpen { path: PathBuf, failure: OpenFailure },

    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{path}: not a TIFF file (the first bytes are {magic:02x?}, not II*\\0 / MM\\0* / BigTIFF)"
    )]
    NotTiff { path: PathBuf, magic: Vec<u8> },

    #[error(
        "{path}: truncated: {what} needs bytes {offset}..{end} but the file has {file_len} bytes"
    )]
    Truncated {
        path: PathBuf,
        what: String,
        offset: u64,
        end: u64,
        file_len: u64,
    },

    #[error("{path}: malformed TIFF: {reason}")]
    Malformed { path: PathBuf, reason: String },

    #[error("{path}: unsupported by the fast reader: {reason}")]
    Unsupported { path: PathBuf, reason: String },

    #[error("{path}: chunk {chunk}: {reason}")]
    Decode {
        path: PathBuf,
        chunk: usize,
        reason: String,
    },

    #[error(
        "{path}: {what} would need {requested} bytes, over the memory budget of {budget} bytes"
    )]
    OverBudget {
        path: PathBuf,
        what: String,
        requested: u128,
        budget: u64,
    },

    #[error("{path}: window {window} is outside the raster ({width} x {height})")]
    WindowOutOfBounds {
        path: PathBuf,
        window: String,
        width: usize,
        height: usize,
    },

    #[error("{path}: band {band} does not exist (the raster has {count} bands)")]
    NoSuchBand {
        path: PathBuf,
        band: usize,
        count: usize,
    },

    #[error("{path}: no band named {name:?} (bands: {available})")]
    UnknownBand {
        path: PathBuf,
        name: String,
        available: String,
    },

    #[error("{path}: band mapping names {given} bands but the raster has {count}")]
    BandMappingMismatch {
        path: PathBuf,
        given: usize,
        count: usize,
    },

    #[error(
        "{path}: band {band}: cannot tell how its values become reflectance: {reason}; state it with --scale and --offset (reflectance = value × scale + offset)"
    )]
    UnknownRadiometry {
        path: PathBuf,
        band: String,
        reason: String,
    },

    #[error("{path}: no georeferencing (no geotransform, tie points or ModelTransformation)")]
    NoGeoreference { path: PathBuf },

    #[error("{path}: {reason}")]
    BadGeoreference { path: PathBuf, reason: String },

    #[error(
        "{path}: no acquisition date in metadata or file name; give one with --date or a STAC item"
    )]
    NoDate { path: PathBuf },

    #[error("{path}: GDAL: {source}")]
    Gdal {
        path: PathBuf,
        #[source]
        source: gdal::errors::GdalError,
    },

    #[error("cannot align the stack: {reason}")]
    Alignment { reason: String },

    #[error("invalid tile layout: {reason}")]
    InvalidGrid { reason: String },

    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },

    /// Reading one tile of a stack failed; `source` says what failed in which file.
    #[error("tile {index} (column {col}, row {row}; {window}): {source}")]
    Tile {
        index: usize,
        col: usize,
        row: usize,
        /// The pixels read (the core grown by the halo) on the analysis grid.
        window: crate::window::PixelWindow,
        #[source]
        source: Box<TilingError>,
    },

    /// The run was cancelled before every tile was read.
    #[error("cancelled after {tiles_done} of {tiles_total} tiles")]
    Cancelled {
        tiles_done: usize,
        tiles_total: usize,
    },
}

impl TilingError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TilingError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn gdal(path: impl Into<PathBuf>, source: gdal::errors::GdalError) -> Self {
        TilingError::Gdal {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TilingError::Malformed {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TilingError::Unsupported {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
