//! gengdi's tiling engine: rasters in, aligned tiles out.
//!
//! - [`Scene`]: one raster of one date — size, type, band names, nodata, CRS, affine,
//!   date — with window reads through the fast reader ([`tiff::TiffReader`], pure Rust,
//!   many threads on one file) or GDAL for other formats.
//! - [`TileGrid`]: tiles with a halo, every pixel in exactly one tile core.
//! - [`SceneStack`]: several dates on one analysis grid (warped by GDAL where needed),
//!   read tile by tile in parallel with bounded memory.
//! - [`product`]: imagery as delivered (Sentinel-2 SAFE / zip / MTD XML, Landsat
//!   Collection 2) opened as the scenes of its band files, radiometry from the metadata.
//! - [`radiometry`]: how stored values become reflectance, per band.
//! - [`cog`]: class / probability maps written as Cloud-Optimized GeoTIFF.
//! - [`gdal_open`]: a user's file opened with GDAL, or what the file is when GDAL cannot;
//!   [`gdal_log`]: GDAL's own messages routed into `tracing` with what gengdi was doing.

pub mod bands;
pub mod blocks;
pub mod calibration;
pub mod cog;
pub mod dtype;
pub mod error;
pub mod gdal_log;
pub mod gdal_open;
pub mod geo;
pub mod grid;
mod pool;
pub mod product;
pub mod radiometry;
pub mod resample;
pub mod scene;
pub mod stack;
pub mod stats;
pub mod tiff;
pub mod vsi;
pub mod window;

pub use bands::{CommonBand, Sensor};
pub use cog::{BandKind, CogBand, CogSpec, CogWriter};
pub use dtype::{DataType, Sample};
pub use error::{Result, TilingError};
pub use gdal_open::{DataKind, OpenFailure};
pub use geo::{Crs, GeoTransform};
pub use grid::{Tile, TileGrid};
pub use product::ProductInfo;
pub use radiometry::{Radiometry, RadiometrySource};
pub use scene::{BandInfo, Scene, SceneOptions};
pub use stack::{AnalysisGrid, Resampling, SceneStack, StackOptions, TileData};
pub use window::PixelWindow;
