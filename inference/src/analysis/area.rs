//! Areas on an equal-area basis.

use crate::error::{InferenceError, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gengdi_tiling::AnalysisGrid;

/// Areas on an equal-area basis: Lambert azimuthal equal-area centred on the grid.
pub struct EqualArea {
    to_laea: CoordTransform,
}

impl EqualArea {
    pub fn for_grid(grid: &AnalysisGrid) -> Result<EqualArea> {
        let gerr = |e: gdal::errors::GdalError| InferenceError::Config {
            what: "equal-area projection".into(),
            reason: e.to_string(),
        };
        let src = grid.crs.to_spatial_ref().map_err(gerr)?;
        let mut wgs = SpatialRef::from_epsg(4326).map_err(gerr)?;
        wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let (cx, cy) = grid
            .world_from_pixel
            .world_from_pixel(grid.width as f64 / 2.0, grid.height as f64 / 2.0);
        let t = CoordTransform::new(&src, &wgs).map_err(gerr)?;
        let (mut xs, mut ys, mut zs) = ([cx], [cy], [0.0]);
        t.transform_coords(&mut xs, &mut ys, &mut zs)
            .map_err(gerr)?;
        let mut laea = SpatialRef::from_proj4(&format!(
            "+proj=laea +lat_0={} +lon_0={} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs",
            ys[0], xs[0]
        ))
        .map_err(gerr)?;
        laea.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        Ok(EqualArea {
            to_laea: CoordTransform::new(&src, &laea).map_err(gerr)?,
        })
    }

    /// Area in m² of polygons (rings in the grid CRS; first ring shell, others holes).
    pub fn area_m2(&self, polygons: &[Vec<Vec<(f64, f64)>>]) -> Result<f64> {
        let mut total = 0.0;
        for poly in polygons {
            for (i, ring) in poly.iter().enumerate() {
                let mut xs: Vec<f64> = ring.iter().map(|p| p.0).collect();
                let mut ys: Vec<f64> = ring.iter().map(|p| p.1).collect();
                let mut zs = vec![0.0; xs.len()];
                self.to_laea
                    .transform_coords(&mut xs, &mut ys, &mut zs)
                    .map_err(|e| InferenceError::Config {
                        what: "equal-area projection".into(),
                        reason: e.to_string(),
                    })?;
                let n = xs.len();
                let a = (0..n)
                    .map(|k| xs[k] * ys[(k + 1) % n] - xs[(k + 1) % n] * ys[k])
                    .sum::<f64>()
                    .abs()
                    / 2.0;
                total += if i == 0 { a } else { -a };
            }
        }
        Ok(total)
    }
}
