//! Georeferencing: the affine from pixel space to the CRS's world space, and CRS identity.

use serde::Serialize;

/// GDAL-ordered affine `[x0, dx/dcol, dx/drow, y0, dy/dcol, dy/drow]` mapping pixel
/// *corners* (col, row) to world coordinates: `x = x0 + col·a + row·b`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GeoTransform(pub [f64; 6]);

impl GeoTransform {
    /// World coordinates of pixel-space point (col, row); (0.5, 0.5) is the first pixel's centre.
    pub fn world_from_pixel(&self, col: f64, row: f64) -> (f64, f64) {
        let g = &self.0;
        (
            g[0] + col * g[1] + row * g[2],
            g[3] + col * g[4] + row * g[5],
        )
    }

    fn det(&self) -> f64 {
        self.0[1] * self.0[5] - self.0[2] * self.0[4]
    }

    pub fn is_invertible(&self) -> bool {
        self.0.iter().all(|v| v.is_finite()) && self.det().abs() > f64::EPSILON * 1e-6
    }

    /// Pixel-space (col, row) of world point (x, y), fractional.
    pub fn pixel_from_world(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let g = &self.0;
        let det = self.det();
        if !self.is_invertible() {
            return None;
        }
        let (dx, dy) = (x - g[0], y - g[3]);
        Some(((dx * g[5] - dy * g[2]) / det, (dy * g[1] - dx * g[4]) / det))
    }

    /// The same mapping with the origin moved by (dcol, drow) pixels.
    pub fn shifted_by_pixels(&self, dcol: f64, drow: f64) -> GeoTransform {
        let (x0, y0) = self.world_from_pixel(dcol, drow);
        let g = self.0;
        GeoTransform([x0, g[1], g[2], y0, g[4], g[5]])
    }

    /// North-up: no rotation or shear terms.
    pub fn is_north_up(&self) -> bool {
        self.0[2] == 0.0 && self.0[4] == 0.0
    }

    /// Pixel size (width, height) in world units along the pixel axes.
    pub fn pixel_size(&self) -> (f64, f64) {
        let g = &self.0;
        (g[1].hypot(g[4]), g[2].hypot(g[5]))
    }

    /// World bounding box (min x, min y, max x, max y) of a width × height raster.
    pub fn bounds(&self, width: usize, height: usize) -> [f64; 4] {
        let corners = [
            self.world_from_pixel(0.0, 0.0),
            self.world_from_pixel(width as f64, 0.0),
            self.world_from_pixel(0.0, height as f64),
            self.world_from_pixel(width as f64, height as f64),
        ];
        let mut b = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for (x, y) in corners {
            b[0] = b[0].min(x);
            b[1] = b[1].min(y);
            b[2] = b[2].max(x);
            b[3] = b[3].max(y);
        }
        b
    }
}

/// A coordinate reference system as GDAL describes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Crs {
    /// EPSG code, where the CRS has one.
    pub epsg: Option<u32>,
    /// Short name, e.g. "WGS 84 / UTM zone 33N".
    pub name: String,
    /// OGC WKT (WKT2 as GDAL writes it).
    pub wkt: String,
}

impl Crs {
    pub fn from_spatial_ref(srs: &gdal::spatial_ref::SpatialRef) -> Option<Crs> {
        let wkt = srs.to_wkt().ok()?;
        let epsg = srs
            .auth_name()
            .filter(|a| a.eq_ignore_ascii_case("EPSG"))
            .and_then(|_| srs.auth_code().ok())
            .and_then(|c| u32::try_from(c).ok());
        let name = srs.name().unwrap_or_else(|| "unnamed".to_string());
        Some(Crs { epsg, name, wkt })
    }

    pub fn to_spatial_ref(&self) -> Result<gdal::spatial_ref::SpatialRef, gdal::errors::GdalError> {
        let mut srs = match self.epsg {
            Some(code) => gdal::spatial_ref::SpatialRef::from_epsg(code)?,
            None => gdal::spatial_ref::SpatialRef::from_wkt(&self.wkt)?,
        };
        srs.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
        Ok(srs)
    }

    /// Whether two CRSs are the same, by EPSG code where both have one, else by GDAL.
    pub fn same_as(&self, other: &Crs) -> bool {
        if let (Some(a), Some(b)) = (self.epsg, other.epsg) {
            return a == b;
        }
        match (self.to_spatial_ref(), other.to_spatial_ref()) {
            (Ok(a), Ok(b)) => a == b,
            _ => self.wkt == other.wkt,
        }
    }
}
