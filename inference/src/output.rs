//! Writing the patch list: GeoJSON (RFC 7946, EPSG:4326), GeoPackage (in the farmland
//! layer's CRS) or CSV (WKT in EPSG:4326), chosen by the file extension.

use crate::analysis::PatchRecord;
use crate::error::{InferenceError, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{
    Feature, FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::DriverManager;
use gengdi_tiling::Crs;
use std::fmt::Write;
use std::path::Path;

/// The properties every output carries, in order.
pub const FIELDS: [&str; 24] = [
    "id",
    "kind",
    "parcel_id",
    "pbf",
    "area_m2",
    "area_mu",
    "county_code",
    "township_code",
    "village_code",
    "group_code",
    "county_name",
    "township_name",
    "village_name",
    "group_name",
    "location_name",
    "class_before",
    "class_after",
    "dates",
    "confidence",
    "model_version",
    "status",
    "evidence",
    "inspector",
    "verdict_note",
];

fn value(p: &PatchRecord, field: &str) -> Option<FieldValue> {
    let s = |v: &Option<String>| v.clone().map(FieldValue::StringValue);
    Some(match field {
        "id" => FieldValue::StringValue(p.id.clone()),
        "kind" => FieldValue::StringValue(p.kind.to_string()),
        "parcel_id" => FieldValue::StringValue(p.parcel_id.clone()),
        "pbf" => FieldValue::IntegerValue(i32::from(p.pbf)),
        "area_m2" => FieldValue::RealValue(p.area_m2),
        "area_mu" => FieldValue::RealValue(p.area_mu),
        "county_code" => return s(&p.county_code),
        "township_code" => return s(&p.township_code),
        "village_code" => return s(&p.village_code),
        "group_code" => return s(&p.group_code),
        "county_name" => return s(&p.county_name),
        "township_name" => return s(&p.township_name),
        "village_name" => return s(&p.village_name),
        "group_name" => return s(&p.group_name),
        "location_name" => return s(&p.location_name),
        "class_before" => FieldValue::StringValue(p.class_before.clone()),
        "class_after" => FieldValue::StringValue(p.class_after.clone()),
        "dates" => FieldValue::StringValue(
            p.dates
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        "confidence" => FieldValue::RealValue(p.confidence),
        "model_version" => FieldValue::StringValue(p.model_version.clone()),
        "status" => FieldValue::StringValue(p.status.to_string()),
        "evidence" => FieldValue::StringValue(p.evidence.clone()),
        _ => return None,
    })
}

fn field_type(field: &str) -> OGRFieldType::Type {
    match field {
        "pbf" => OGRFieldType::OFTInteger,
        "area_m2" | "area_mu" | "confidence" => OGRFieldType::OFTReal,
        _ => OGRFieldType::OFTString,
    }
}

fn wkt_of(polygons: &[Vec<Vec<(f64, f64)>>]) -> String {
    let mut w = String::from("MULTIPOLYGON(");
    for (i, poly) in polygons.iter().enumerate() {
        if i > 0 {
            w.push(',');
        }
        w.push('(');
        for (j, ring) in poly.iter().enumerate() {
            if j > 0 {
                w.push(',');
            }
            w.push('(');
            for (k, (x, y)) in ring.iter().enumerate() {
                if k > 0 {
                    w.push(',');
                }
                let _ = write!(w, "{x} {y}");
            }
            // Close the ring if it is not closed.
            if let (Some(f), Some(l)) = (ring.first(), ring.last()) {
                if f != l {
                    let _ = write!(w, ",{} {}", f.0, f.1);
                }
            }
            w.push(')');
        }
        w.push(')');
    }
    w.push(')');
    w
}

fn out_err(path: &Path, reason: impl ToString) -> InferenceError {
    InferenceError::Output {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Write `patches` (geometry in `grid_crs`) to `path`; `farmland_crs` is the CRS of a
/// GeoPackage output. The format comes from the extension: .geojson/.json, .gpkg, .csv.
pub fn write_patches(
    path: &Path,
    patches: &[PatchRecord],
    grid_crs: &Crs,
    farmland_crs: Option<&Crs>,
) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let gerr = |e: gdal::errors::GdalError| out_err(path, e);
    let src = grid_crs.to_spatial_ref().map_err(gerr)?;
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(gerr)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    match ext.as_str() {
        "geojson" | "json" => write_ogr(
            path,
            "GeoJSON",
            patches,
            &src,
            &wgs84,
            &["RFC7946=YES", "WRITE_NAME=NO"],
        ),
        "gpkg" => {
            let dst = match farmland_crs {
                Some(c) => c.to_spatial_ref().map_err(gerr)?,
                None => src.clone(),
            };
            write_ogr(path, "GPKG", patches, &src, &dst, &[])
        }
        "csv" => write_csv(path, patches, &src, &wgs84),
        other => Err(out_err(
            path,
            format!("unknown output format {other:?}: use .geojson, .gpkg or .csv"),
        )),
    }
}

fn write_ogr(
    path: &Path,
    driver: &str,
    patches: &[PatchRecord],
    src: &SpatialRef,
    dst: &SpatialRef,
    options: &[&str],
) -> Result<()> {
    let gerr = |e: gdal::errors::GdalError| out_err(path, e);
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| out_err(path, e))?;
    }
    let transform = CoordTransform::new(src, dst).map_err(gerr)?;
    let drv = DriverManager::get_driver_by_name(driver).map_err(gerr)?;
    let mut ds = drv.create_vector_only(path).map_err(gerr)?;
    let layer = ds
        .create_layer(LayerOptions {
            name: "suspected_changes",
            srs: Some(dst),
            ty: OGRwkbGeometryType::wkbMultiPolygon,
            options: Some(options),
        })
        .map_err(gerr)?;
    let defs: Vec<(&str, OGRFieldType::Type)> =
        FIELDS.iter().map(|f| (*f, field_type(f))).collect();
    layer.create_defn_fields(&defs).map_err(gerr)?;
    for p in patches {
        let geom = Geometry::from_wkt(&wkt_of(&p.polygons)).map_err(gerr)?;
        let geom = geom.transform(&transform).map_err(gerr)?;
        let mut f = Feature::new(layer.defn()).map_err(gerr)?;
        for (i, name) in FIELDS.iter().enumerate() {
            // Empty fields are written as null, not left out: a GeoJSON reader then still
            // sees every property (GDAL omits unset ones, and drops a column unset everywhere).
            match value(p, name) {
                Some(v) => f.set_field(i, &v).map_err(gerr)?,
                None => f.set_field_null(i).map_err(gerr)?,
            }
        }
        f.set_geometry(geom).map_err(gerr)?;
        f.create(&layer).map_err(gerr)?;
    }
    Ok(())
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(
    path: &Path,
    patches: &[PatchRecord],
    src: &SpatialRef,
    dst: &SpatialRef,
) -> Result<()> {
    let gerr = |e: gdal::errors::GdalError| out_err(path, e);
    let transform = CoordTransform::new(src, dst).map_err(gerr)?;
    let mut out = FIELDS.join(",");
    out.push_str(",wkt_epsg4326\n");
    for p in patches {
        let cells: Vec<String> = FIELDS
            .iter()
            .map(|f| match value(p, f) {
                Some(FieldValue::StringValue(s)) => csv_quote(&s),
                Some(FieldValue::IntegerValue(v)) => v.to_string(),
                Some(FieldValue::RealValue(v)) => v.to_string(),
                _ => String::new(),
            })
            .collect();
        let geom = Geometry::from_wkt(&wkt_of(&p.polygons)).map_err(gerr)?;
        let wkt = geom
            .transform(&transform)
            .and_then(|g| g.wkt())
            .map_err(gerr)?;
        out.push_str(&cells.join(","));
        out.push(',');
        out.push_str(&csv_quote(&wkt));
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| out_err(path, e))
}
