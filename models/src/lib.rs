//! What a model is and how it learns: classes, features, Burn networks, training,
//! evaluation, model cards and the model registry. Takes arrays, never raster files.
//!
//! Two tasks are covered:
//! - [`Task::LandCover`]: one date, one pixel → [`LandCoverClass`] (a small MLP over 9 bands and
//!   5 spectral indices, see [`features`]).
//! - [`Task::CropType`]: one season of one pixel or parcel → [`CropTypeClass`] (a masked temporal
//!   1D convolution network over 12 monthly slots, see [`season`]).
//! - [`Task::SeasonCover`]: one season → [`SeasonCoverClass`] (perennial woody against annual
//!   crop, grassland, fallow, water, built), the same network on those classes.
//!
//! The device is chosen in one place, [`DeviceChoice`]; library code never picks one.

pub mod card;
pub mod classes;
pub mod device;
pub mod error;
pub mod features;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod nets;
pub mod reference;
pub mod registry;
pub mod rng;
pub mod samples;
pub mod season;
pub mod split;
pub mod train;
pub mod training_config;

pub use card::{ModelCard, CARD_FILE, WEIGHTS_FILE};
pub use classes::{CropTypeClass, LandCoverClass, SeasonCoverClass, SeriesClass, Task};
pub use device::DeviceChoice;
pub use error::ModelError;
pub use metrics::{EvaluationReport, Metrics};
pub use model::{
    evaluate_croptype, evaluate_landcover, evaluate_series, Classification, InferencePath,
    LandCoverModel, SeriesModel,
};
pub use registry::Registry;
pub use train::{
    fine_tune_croptype, fine_tune_landcover, held_out_croptype, held_out_landcover,
    held_out_series, train_croptype, train_croptype_observed, train_landcover,
    train_landcover_observed, train_season_cover, TrainConfig, TrainObserver, TrainedModel,
    Unobserved,
};

/// Result type of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
