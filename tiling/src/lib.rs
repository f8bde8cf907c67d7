//! Rasters in, aligned tiles out.
