//! Model × tiles → class maps; maps × farmland → per-parcel evidence → patches.

pub mod admin;
pub mod analysis;
pub mod checkpoint;
pub mod error;
pub mod farmland;
pub mod inputs;
pub mod labels;
pub mod maps;
pub mod models_adapter;
pub mod output;
pub mod pipeline;
pub mod rasterize;
pub mod rules;
pub mod stac;
pub mod vectorize;

pub use error::{InferenceError, Result};
pub use farmland::{
    AdminUnits, FarmlandLayer, FarmlandOptions, FieldMapping, IngestReport, LayerSummary, Parcel,
};
