//! Geometry the store keeps: WGS 84 longitude / latitude, as GeoJSON text with a bounding
//! box; areas on an equal-area projection.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gengdi_tiling::Crs;

use crate::error::{Result, ServiceError};

/// Polygons → rings → (x, y).
pub type Polygons = Vec<Vec<Vec<(f64, f64)>>>;

fn proj(e: gdal::errors::GdalError) -> ServiceError {
    ServiceError::Projection(e.to_string())
}

fn wgs84_srs() -> Result<SpatialRef> {
    let mut wgs = SpatialRef::from_epsg(4326).map_err(proj)?;
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(wgs)
}

/// WGS 84 (EPSG:4326) in longitude, latitude order.
pub fn wgs84() -> Result<Crs> {
    Crs::from_spatial_ref(&wgs84_srs()?)
        .ok_or_else(|| ServiceError::Projection("EPSG:4326 has no WKT".into()))
}

fn transform_all(t: &CoordTransform, polygons: &[Vec<Vec<(f64, f64)>>]) -> Result<Polygons> {
    polygons
        .iter()
        .map(|poly| {
            poly.iter()
                .map(|ring| {
                    let mut xs: Vec<f64> = ring.iter().map(|p| p.0).collect();
                    let mut ys: Vec<f64> = ring.iter().map(|p| p.1).collect();
                    t.transform_coords(&mut xs, &mut ys, &mut [])
                        .map_err(proj)?;
                    Ok(xs.into_iter().zip(ys).collect())
                })
                .collect()
        })
        .collect()
}

/// Reprojects polygons from one CRS to WGS 84 longitude / latitude.
pub struct ToWgs84 {
    t: CoordTransform,
}

impl ToWgs84 {
    pub fn from(crs: &Crs) -> Result<ToWgs84> {
        let src = crs.to_spatial_ref().map_err(proj)?;
        Ok(ToWgs84 {
            t: CoordTransform::new(&src, &wgs84_srs()?).map_err(proj)?,
        })
    }

    pub fn polygons(&self, polygons: &[Vec<Vec<(f64, f64)>>]) -> Result<Polygons> {
        transform_all(&self.t, polygons)
    }
}

/// Reprojects polygons from WGS 84 longitude / latitude to another CRS (a scene's).
pub struct FromWgs84 {
    t: CoordTransform,
}

impl FromWgs84 {
    pub fn to(crs: &Crs) -> Result<FromWgs84> {
        let dst = crs.to_spatial_ref().map_err(proj)?;
        Ok(FromWgs84 {
            t: CoordTransform::new(&wgs84_srs()?, &dst).map_err(proj)?,
        })
    }

    pub fn polygons(&self, polygons: &[Vec<Vec<(f64, f64)>>]) -> Result<Polygons> {
        transform_all(&self.t, polygons)
    }
}

/// The polygons of a GeoJSON Polygon or MultiPolygon geometry; `None` for anything else.
pub fn polygons_of_geojson(geometry: &serde_json::Value) -> Option<Polygons> {
    fn ring(v: &serde_json::Value) -> Option<Vec<(f64, f64)>> {
        v.as_array()?
            .iter()
            .map(|p| {
                let p = p.as_array()?;
                let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
                (x.is_finite() && y.is_finite()).then_some((x, y))
            })
            .collect()
    }
    fn polygon(v: &serde_json::Value) -> Option<Vec<Vec<(f64, f64)>>> {
        v.as_array()?.iter().map(ring).collect()
    }
    let coords = geometry.get("coordinates")?;
    match geometry.get("type")?.as_str()? {
        "Polygon" => Some(vec![polygon(coords)?]),
        "MultiPolygon" => coords.as_array()?.iter().map(polygon).collect(),
        _ => None,
    }
}

/// Areas of WGS 84 polygons on a Lambert azimuthal equal-area projection centred on a point
/// (the layer's centre), as the analysis measures patches.
pub struct EqualAreaLonLat {
    t: CoordTransform,
}

impl EqualAreaLonLat {
    pub fn centred(lon: f64, lat: f64) -> Result<EqualAreaLonLat> {
        let mut laea = SpatialRef::from_proj4(&format!(
            "+proj=laea +lat_0={lat} +lon_0={lon} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
        ))
        .map_err(proj)?;
        laea.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        Ok(EqualAreaLonLat {
            t: CoordTransform::new(&wgs84_srs()?, &laea).map_err(proj)?,
        })
    }

    /// Area in m² (first ring of each polygon the shell, the others holes).
    pub fn area_m2(&self, polygons: &[Vec<Vec<(f64, f64)>>]) -> Result<f64> {
        let projected = transform_all(&self.t, polygons)?;
        Ok(projected
            .iter()
            .map(|poly| {
                poly.iter()
                    .enumerate()
                    .map(|(i, ring)| {
                        let a = ring_area(ring).abs();
                        if i == 0 {
                            a
                        } else {
                            -a
                        }
                    })
                    .sum::<f64>()
            })
            .sum())
    }
}

/// Signed shoelace area of a ring.
fn ring_area(ring: &[(f64, f64)]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|k| {
            let (a, b) = (ring[k], ring[(k + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f64>()
        / 2.0
}

/// `[min_x, min_y, max_x, max_y]` of polygons; `None` when they hold no point.
pub fn bbox(polygons: &[Vec<Vec<(f64, f64)>>]) -> Option<[f64; 4]> {
    let mut it = polygons.iter().flatten().flatten();
    let first = it.next()?;
    Some(it.fold([first.0, first.1, first.0, first.1], |b, p| {
        [b[0].min(p.0), b[1].min(p.1), b[2].max(p.0), b[3].max(p.1)]
    }))
}

/// A GeoJSON MultiPolygon (rings closed).
pub fn geojson_multipolygon(polygons: &[Vec<Vec<(f64, f64)>>]) -> serde_json::Value {
    let coords: Vec<Vec<Vec<[f64; 2]>>> = polygons
        .iter()
        .map(|poly| {
            poly.iter()
                .map(|ring| {
                    let mut r: Vec<[f64; 2]> = ring.iter().map(|p| [p.0, p.1]).collect();
                    if let (Some(f), Some(l)) = (r.first().copied(), r.last().copied()) {
                        if f != l {
                            r.push(f);
                        }
                    }
                    r
                })
                .collect()
        })
        .collect();
    serde_json::json!({"type": "MultiPolygon", "coordinates": coords})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_and_geojson_of_a_square_with_an_open_ring() {
        let sq = vec![vec![vec![(1.0, 2.0), (3.0, 2.0), (3.0, 5.0), (1.0, 5.0)]]];
        assert_eq!(bbox(&sq), Some([1.0, 2.0, 3.0, 5.0]));
        assert_eq!(bbox(&[]), None);
        assert_eq!(
            geojson_multipolygon(&sq).to_string(),
            r#"{"coordinates":[[[[1.0,2.0],[3.0,2.0],[3.0,5.0],[1.0,5.0],[1.0,2.0]]]],"type":"MultiPolygon"}"#
        );
        assert_eq!(ring_area(&sq[0][0]), 6.0);
    }
}
