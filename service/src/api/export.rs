//! `GET /api/v1/changes?…&format=geojson|csv|gpkg`: the whole selection the list would page
//! through (the same filters, the same scope), as one file.
//!
//! - `geojson`: a FeatureCollection (RFC 7946, WGS 84), each feature's `properties` the
//!   record's fields flattened ([`FIELDS`]), its `id` the patch id, its `bbox` the patch's.
//! - `csv`: a header, then one row per patch: [`FIELDS`] and `geometry_wkt` (WKT, WGS 84);
//!   fields are quoted where they must be (RFC 4180).
//! - `gpkg`: a GeoPackage written by GDAL (layer `changes`, EPSG:4326, MultiPolygon, fields
//!   typed: integers as Integer64, areas and confidence as Real, the rest as String) into a
//!   temporary file under `<data dir>/exports`, read back and removed.
//!
//! `dates` is the image dates joined by `;`; `pbf` is true/false in GeoJSON, 1/0 in CSV and
//! GeoPackage; `class_found` is what the patch's latest verdict found on the ground (a
//! land-cover class name, empty when not recorded), so that `gengdi train --verdicts` labels
//! an exported list as the service's training does. An export holds at most [`MAX_EXPORT`] patches: a larger selection is refused
//! (400 `export_too_large`, with the count) rather than cut short; narrow the filters
//! (`batch`, `region`, `bbox`, …). `limit` and `cursor` do not go with `format`; `sort` does:
//! the patches come in its order (by default by ascending id).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use gdal::vector::{
    Feature, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::DriverManager;
use std::path::{Path, PathBuf};

use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::auth::Scope;
use crate::store::{ChangeFilter, ChangeRecord};

/// Most patches one export holds.
pub const MAX_EXPORT: i64 = 100_000;

/// Page size while collecting an export.
const PAGE: u32 = 1000;

/// The media types of the exports (geojson, csv, gpkg), as the responses name them.
pub const MEDIA_TYPES: [&str; 3] = [
    Format::GeoJson.content_type(),
    Format::Csv.content_type(),
    Format::Gpkg.content_type(),
];

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    GeoJson,
    Csv,
    Gpkg,
}

impl Format {
    pub fn parse(s: &str) -> ApiResult<Format> {
        match s {
            "geojson" => Ok(Format::GeoJson),
            "csv" => Ok(Format::Csv),
            "gpkg" => Ok(Format::Gpkg),
            _ => Err(ApiError::bad_request(format!(
                "format {s:?}: one of geojson, csv, gpkg"
            ))),
        }
    }

    pub const fn content_type(self) -> &'static str {
        match self {
            Format::GeoJson => "application/geo+json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Gpkg => "application/geopackage+sqlite3",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::Csv => "csv",
            Format::Gpkg => "gpkg",
        }
    }
}

/// The properties every export carries, in order.
pub const FIELDS: [&str; 25] = [
    "id",
    "batch",
    "reference",
    "kind",
    "status",
    "class_found",
    "area_m2",
    "area_mu",
    "parcel",
    "pbf",
    "county_code",
    "township_code",
    "village_code",
    "group_code",
    "location_code",
    "county_name",
    "township_name",
    "village_name",
    "group_name",
    "class_before",
    "class_after",
    "dates",
    "confidence",
    "model_version",
    "evidence",
];

/// A property value.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(Option<String>),
}

fn field_type(name: &str) -> OGRFieldType::Type {
    match name {
        "id" | "batch" | "pbf" => OGRFieldType::OFTInteger64,
        "area_m2" | "area_mu" | "confidence" => OGRFieldType::OFTReal,
        _ => OGRFieldType::OFTString,
    }
}

fn values(r: &ChangeRecord) -> [Val; 25] {
    let t = |s: &str| Val::Text(Some(s.to_string()));
    let o = |s: &Option<String>| Val::Text(s.clone());
    let a = &r.admin;
    [
        Val::Int(r.id),
        Val::Int(r.batch),
        t(&r.reference),
        t(&r.kind),
        t(r.status.name()),
        t(&r.class_found),
        Val::Real(r.area_m2),
        Val::Real(r.area_mu),
        t(&r.parcel),
        Val::Bool(r.pbf),
        o(&a.county_code),
        o(&a.township_code),
        o(&a.village_code),
        o(&a.group_code),
        o(&a.location_code),
        o(&a.county_name),
        o(&a.township_name),
        o(&a.village_name),
        o(&a.group_name),
        t(&r.class_before),
        t(&r.class_after),
        t(&r.dates.join(";")),
        Val::Real(r.confidence),
        t(&r.model_version),
        t(&r.evidence),
    ]
}

/// Every patch of the selection, with its geometry, in the filter's sort order.
pub async fn collect(
    state: &AppState,
    scope: &Scope,
    mut filter: ChangeFilter,
) -> ApiResult<Vec<ChangeRecord>> {
    filter.limit = PAGE;
    filter.geometry = true;
    filter.after = None;
    let mut all = Vec::new();
    loop {
        let page = state.store().list_changes(scope, &filter).await?;
        if page.total > MAX_EXPORT {
            return Err(too_large(page.total));
        }
        all.extend(page.items);
        if all.len() as i64 > MAX_EXPORT {
            return Err(too_large(all.len() as i64));
        }
        match page.next_after {
            Some(a) => filter.after = Some(a),
            None => return Ok(all),
        }
    }
}

fn too_large(total: i64) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "export_too_large",
        format!("{total} patches match; an export holds at most {MAX_EXPORT}: narrow the filters"),
    )
    .with_details(serde_json::json!({"total": total, "max": MAX_EXPORT}))
}

/// The export of `records` as a response (the file's bytes, its type, an attachment name).
pub async fn respond(
    state: &AppState,
    format: Format,
    records: Vec<ChangeRecord>,
) -> ApiResult<Response> {
    let dir = state.data_dir().join("exports");
    let body = tokio::task::spawn_blocking(move || match format {
        Format::GeoJson => geojson(&records),
        Format::Csv => csv(&records),
        Format::Gpkg => gpkg(&dir, &records),
    })
    .await
    .map_err(|e| ApiError::internal(format!("the export task stopped: {e}")))??;
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"changes.{}\"",
        format.extension()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

fn internal(what: &str) -> impl Fn(String) -> ApiError + '_ {
    move |e| {
        tracing::error!("export: {what}: {e}");
        ApiError::internal(format!(
            "cannot write the export ({what}); the server log has the cause"
        ))
    }
}

fn geometry_text(r: &ChangeRecord) -> String {
    r.geometry
        .as_ref()
        .map(|g| g.to_string())
        .unwrap_or_else(|| "null".into())
}

fn geojson(records: &[ChangeRecord]) -> ApiResult<Vec<u8>> {
    let features: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let props: serde_json::Map<String, serde_json::Value> = FIELDS
                .iter()
                .zip(values(r))
                .map(|(k, v)| {
                    let v = match v {
                        Val::Int(i) => serde_json::json!(i),
                        Val::Real(x) => serde_json::json!(x),
                        Val::Bool(b) => serde_json::json!(b),
                        Val::Text(t) => serde_json::json!(t),
                    };
                    (k.to_string(), v)
                })
                .collect();
            serde_json::json!({
                "type": "Feature",
                "id": r.id,
                "bbox": r.bbox,
                "geometry": r.geometry,
                "properties": props,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "type": "FeatureCollection",
        "features": features,
    }))
    .map_err(|e| internal("GeoJSON")(e.to_string()))
}

fn csv(records: &[ChangeRecord]) -> ApiResult<Vec<u8>> {
    let err = internal("CSV");
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = FIELDS.to_vec();
    header.push("geometry_wkt");
    w.write_record(&header).map_err(|e| err(e.to_string()))?;
    for r in records {
        let mut row: Vec<String> = values(r)
            .into_iter()
            .map(|v| match v {
                Val::Int(i) => i.to_string(),
                Val::Real(x) => x.to_string(),
                Val::Bool(b) => u8::from(b).to_string(),
                Val::Text(t) => t.unwrap_or_default(),
            })
            .collect();
        let wkt = Geometry::from_geojson(&geometry_text(r))
            .and_then(|g| g.wkt())
            .map_err(|e| err(format!("patch {}: {e}", r.id)))?;
        row.push(wkt);
        w.write_record(&row).map_err(|e| err(e.to_string()))?;
    }
    w.into_inner().map_err(|e| err(e.to_string()))
}

/// Removes a file (and SQLite's side files) when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

fn gpkg(dir: &Path, records: &[ChangeRecord]) -> ApiResult<Vec<u8>> {
    let err = internal("GeoPackage");
    let gerr = |e: gdal::errors::GdalError| err(e.to_string());
    std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    let mut name = [0u8; 12];
    getrandom::fill(&mut name).map_err(|e| err(e.to_string()))?;
    let file = TempFile(dir.join(format!("changes-{}.gpkg", hex::encode(name))));
    let mut srs = SpatialRef::from_epsg(4326).map_err(gerr)?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    {
        let drv = DriverManager::get_driver_by_name("GPKG").map_err(gerr)?;
        let mut ds = drv.create_vector_only(&file.0).map_err(gerr)?;
        let mut tx = ds.start_transaction().map_err(gerr)?;
        {
            let layer = tx
                .create_layer(LayerOptions {
                    name: "changes",
                    srs: Some(&srs),
                    ty: OGRwkbGeometryType::wkbMultiPolygon,
                    options: None,
                })
                .map_err(gerr)?;
            let defs: Vec<(&str, OGRFieldType::Type)> =
                FIELDS.iter().map(|f| (*f, field_type(f))).collect();
            layer.create_defn_fields(&defs).map_err(gerr)?;
            for r in records {
                let geom = Geometry::from_geojson(&geometry_text(r))
                    .map_err(|e| err(format!("patch {}: {e}", r.id)))?;
                let mut f = Feature::new(layer.defn()).map_err(gerr)?;
                for (i, v) in values(r).into_iter().enumerate() {
                    match v {
                        Val::Int(x) => f.set_field_integer64(i, x),
                        Val::Real(x) => f.set_field_double(i, x),
                        Val::Bool(b) => f.set_field_integer64(i, i64::from(b)),
                        Val::Text(Some(t)) => f.set_field_string(i, &t),
                        Val::Text(None) => f.set_field_null(i),
                    }
                    .map_err(gerr)?;
                }
                f.set_geometry(geom).map_err(gerr)?;
                f.create(&layer).map_err(gerr)?;
            }
        }
        tx.commit().map_err(gerr)?;
        ds.close().map_err(gerr)?;
    }
    std::fs::read(&file.0).map_err(|e| err(format!("{}: {e}", file.0.display())))
}
