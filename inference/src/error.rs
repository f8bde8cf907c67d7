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

    /// GDAL could not open a vector file (`what`: "farmland layer", …); `failure` says
    /// what the file is.
    #[error("{path}: {what}: {failure}")]
    CannotOpenVector {
        path: PathBuf,
        what: &'static str,
        failure: gengdi_tiling::OpenFailure,
    },

    #[error("{path}: farmland layer: {reason}")]
    Farmland { path: PathBuf, reason: String },

    #[error(
        "{path}: farmland layer: the file holds {} layers that can hold polygons: {}; name the one to read with --farmland-layer NAME",
        layers.len(),
        crate::farmland::list_layers(layers)
    )]
    FarmlandLayerAmbiguous {
        path: PathBuf,
        /// The candidate layers (those that can hold polygons).
        layers: Vec<crate::farmland::LayerSummary>,
    },

    #[error(
        "{path}: farmland layer: no layer {name:?}; the file's layers: {}",
        crate::farmland::list_layers(layers)
    )]
    FarmlandLayerNotFound {
        path: PathBuf,
        name: String,
        /// Every layer of the file.
        layers: Vec<crate::farmland::LayerSummary>,
    },

    #[error("{path}: administrative-boundary layer: {reason}")]
    Admin { path: PathBuf, reason: String },

    #[error("{path}: labels: {reason}")]
    Labels { path: PathBuf, reason: String },

    #[error("the vector labels gave no labelled observation\n{report}")]
    NoLabels { report: String },

    #[error("{path}: cannot write: {reason}")]
    Output { path: PathBuf, reason: String },

    #[error("{what}: {reason}")]
    Config { what: String, reason: String },

    #[error("{path}: STAC: {reason}")]
    Stac { path: PathBuf, reason: String },

    #[error("{path}: STAC item {item} has no date (properties.datetime or start_datetime)")]
    StacItemWithoutDate { path: PathBuf, item: String },

    #[error("{path}: STAC item {item}, asset {asset}: {href} is remote and not under an allowed prefix (gengdi analyze --allow-remote PREFIX, the service's remote_prefixes; s3:// and http(s):// only), and not a local path or file:// URL")]
    StacRemoteHref {
        path: PathBuf,
        item: String,
        asset: String,
        href: String,
    },

    #[error("{path}: STAC item {item}, asset {asset}: {file}: no such file")]
    StacMissingAsset {
        path: PathBuf,
        item: String,
        asset: String,
        file: PathBuf,
    },

    #[error("{path}: STAC item {item}, asset {asset}: {source}")]
    StacAsset {
        path: PathBuf,
        item: String,
        asset: String,
        #[source]
        source: Box<gengdi_tiling::TilingError>,
    },

    #[error("{path}: STAC item {item} lacks band(s) {}; its assets: {available}", bands.join(", "))]
    StacMissingBands {
        path: PathBuf,
        item: String,
        bands: Vec<String>,
        available: String,
    },

    #[error(transparent)]
    Tiling(#[from] gengdi_tiling::TilingError),

    /// A model failed on its inputs (`what`: "land-cover model", "crop-type model").
    #[error("{what}: {source}")]
    Model {
        what: &'static str,
        #[source]
        source: gengdi_models::ModelError,
    },

    /// Reading or classifying the baseline period failed.
    #[error("baseline: {source}")]
    Baseline {
        #[source]
        source: Box<InferenceError>,
    },

    /// One tile of an analysis failed; the run stops there.
    #[error("tile {index} (column {col}, row {row}): {source}")]
    Tile {
        index: usize,
        col: usize,
        row: usize,
        #[source]
        source: Box<InferenceError>,
    },

    /// A worker panicked while holding `what`, so it cannot be trusted.
    #[error("{what}: a worker thread panicked while updating it")]
    Poisoned { what: &'static str },
}
