//! The farmland layer: parcels from any vector format GDAL/OGR reads, in any CRS, with a
//! configurable attribute mapping whose defaults recognise the Chinese land-survey (DLTB)
//! field names. Every feature is used, repaired or rejected with its id and the reason —
//! none is dropped silently. Curved geometries (CurvePolygon, MultiSurface, rings of arcs or
//! CompoundCurves, as land-survey software writes into GeoPackage, GML or FileGDB) are
//! linearised by OGR and counted.
//!
//! A file with several layers is never read silently by its first one: the layer is named
//! ([`FarmlandOptions::layer`], `--farmland-layer`), or it is the file's only layer, or the
//! only one that can hold polygons (non-spatial tables and point or line layers are not
//! candidates); otherwise the error lists the candidate layers with their feature counts.

use crate::error::{InferenceError, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform};
use gdal::vector::{
    geometry_type_flatten, geometry_type_to_name, Geometry, LayerAccess, OGRwkbGeometryType,
};
use gengdi_tiling::{gdal_log, gdal_open, Crs, DataKind, GeoTransform};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which attribute holds what. Each entry lists candidate field names, tried in order
/// (case-insensitively); the first present in the layer is used.
#[derive(Clone, Debug, Serialize)]
pub struct FieldMapping {
    pub fields: BTreeMap<String, Vec<String>>,
    /// Roles the user named a field for: that field must exist.
    pub explicit: Vec<String>,
}

/// The roles a field can play.
pub const ROLES: [&str; 11] = [
    "id",
    "pbf",
    "land_class",
    "land_class_name",
    "location",
    "location_name",
    "county",
    "township",
    "village",
    "group",
    "area",
];

impl Default for FieldMapping {
    fn default() -> Self {
        let mut fields = BTreeMap::new();
        let mut set = |role: &str, names: &[&str]| {
            fields.insert(
                role.to_string(),
                names.iter().map(|s| s.to_string()).collect(),
            );
        };
        set(
            "id",
            &[
                "TBBH",
                "BSM",
                "parcel_id",
                "id_parcel",
                "id",
                "SNAR_ID",
                "fid",
            ],
        );
        set("pbf", &["YJJBNT", "SFYJJBNT", "JBNTBS", "is_pbf", "pbf"]);
        set(
            "land_class",
            &["DLBM", "land_class", "code_cultu", "SNAR_CODE", "gewascode"],
        );
        set(
            "land_class_name",
            &["DLMC", "land_class_name", "SNAR_BEZEICHNUNG", "gewas"],
        );
        set("location", &["ZLDWDM", "location_code"]);
        set("location_name", &["ZLDWMC", "location_name"]);
        set("county", &["XZQDM", "county_code", "county"]);
        set("township", &["XZDM", "township_code", "township"]);
        set("village", &["CJDM", "village_code", "village"]);
        set("group", &["CMXZDM", "group_code", "group"]);
        set("area", &["TBMJ", "area_m2"]);
        FieldMapping {
            fields,
            explicit: Vec::new(),
        }
    }
}

impl FieldMapping {
    /// Parse `id=TBBH,pbf=YJJBNT,…`; given roles replace the defaults' candidates.
    pub fn parse(spec: &str) -> Result<FieldMapping> {
        let mut m = FieldMapping::default();
        parse_role_fields(
            spec,
            "--farmland-fields",
            &ROLES,
            &mut m.fields,
            &mut m.explicit,
        )?;
        Ok(m)
    }
}

/// How to read a farmland file: which layer, which attributes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FarmlandOptions {
    pub fields: FieldMapping,
    /// The layer to read (`--farmland-layer`). Needed when the file holds several layers that
    /// can hold polygons; matched exactly, else case-insensitively when that is unambiguous.
    pub layer: Option<String>,
}

/// One layer of a vector file, as the layer-choice errors list it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSummary {
    pub name: String,
    /// The declared geometry type of its first geometry column (`Polygon`, `Multi Surface`,
    /// `Unknown (any)` …), `None` for a table without a geometry column.
    pub geometry: Option<String>,
    /// Whether that geometry type can hold polygons (polygonal, curved polygonal, a collection
    /// or any geometry).
    pub polygonal: bool,
    pub features: u64,
}

impl std::fmt::Display for LayerSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.geometry {
            Some(g) => write!(f, "{} ({} features, {g})", self.name, self.features),
            None => write!(
                f,
                "{} ({} rows, no geometry column)",
                self.name, self.features
            ),
        }
    }
}

/// `a (3 features, Polygon), b (…)`.
pub fn list_layers(layers: &[LayerSummary]) -> String {
    layers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a declared geometry type can hold polygons.
fn can_hold_polygons(t: OGRwkbGeometryType::Type) -> bool {
    matches!(
        geometry_type_flatten(t),
        OGRwkbGeometryType::wkbPolygon
            | OGRwkbGeometryType::wkbMultiPolygon
            | OGRwkbGeometryType::wkbCurvePolygon
            | OGRwkbGeometryType::wkbMultiSurface
            | OGRwkbGeometryType::wkbSurface
            | OGRwkbGeometryType::wkbGeometryCollection
            | OGRwkbGeometryType::wkbUnknown
    )
}

/// Every layer of an open vector file, in the file's order.
pub(crate) fn layer_summaries(path: &Path, ds: &gdal::Dataset) -> Result<Vec<LayerSummary>> {
    let mut out = Vec::new();
    for i in 0..ds.layer_count() {
        let layer = ds.layer(i).map_err(|e| gdal_error(path, e))?;
        let geom_type = layer.defn().geom_fields().next().map(|g| g.field_type());
        out.push(LayerSummary {
            name: layer.name(),
            geometry: geom_type.map(geometry_type_to_name),
            polygonal: geom_type.is_some_and(can_hold_polygons),
            features: layer.feature_count(),
        });
    }
    Ok(out)
}

/// The index of the farmland layer to read among `layers` (see the module doc).
fn choose_layer(path: &Path, layers: &[LayerSummary], wanted: Option<&str>) -> Result<usize> {
    if let Some(name) = wanted {
        let exact = layers.iter().position(|l| l.name == name);
        let folded: Vec<usize> = (0..layers.len())
            .filter(|&i| layers[i].name.eq_ignore_ascii_case(name))
            .collect();
        let Some(i) = exact.or((folded.len() == 1).then(|| folded[0])) else {
            return Err(InferenceError::FarmlandLayerNotFound {
                path: path.to_path_buf(),
                name: name.to_string(),
                layers: layers.to_vec(),
            });
        };
        if !layers[i].polygonal {
            return Err(InferenceError::Farmland {
                path: path.to_path_buf(),
                reason: format!(
                    "layer {} cannot hold polygons; the file's layers: {}",
                    layers[i],
                    list_layers(layers)
                ),
            });
        }
        return Ok(i);
    }
    if layers.len() == 1 {
        return Ok(0);
    }
    let candidates: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].polygonal).collect();
    match candidates[..] {
        [i] => Ok(i),
        [] => Err(InferenceError::Farmland {
            path: path.to_path_buf(),
            reason: format!(
                "none of its {} layers can hold polygons: {}",
                layers.len(),
                list_layers(layers)
            ),
        }),
        _ => Err(InferenceError::FarmlandLayerAmbiguous {
            path: path.to_path_buf(),
            layers: candidates.iter().map(|&i| layers[i].clone()).collect(),
        }),
    }
}

/// Parse `role=FIELD,…` (empty parts ignored) for the option `flag`: each role must be one of
/// `roles`; its field replaces the default candidates in `fields` and the role is recorded in
/// `explicit` (a field the user named must exist).
pub(crate) fn parse_role_fields(
    spec: &str,
    flag: &str,
    roles: &[&str],
    fields: &mut BTreeMap<String, Vec<String>>,
    explicit: &mut Vec<String>,
) -> Result<()> {
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((role, field)) = part.split_once('=') else {
            return Err(InferenceError::Config {
                what: flag.into(),
                reason: format!("{part:?} is not role=FIELD"),
            });
        };
        let role = role.trim();
        if !roles.contains(&role) {
            return Err(InferenceError::Config {
                what: flag.into(),
                reason: format!("unknown role {role:?}; roles are {}", roles.join(", ")),
            });
        }
        fields.insert(role.to_string(), vec![field.trim().to_string()]);
        explicit.push(role.to_string());
    }
    Ok(())
}

/// The administrative units a parcel lies in, at every grid level.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AdminUnits {
    pub county_code: Option<String>,
    pub township_code: Option<String>,
    pub village_code: Option<String>,
    pub group_code: Option<String>,
    pub location_name: Option<String>,
    /// Names of the units, from an administrative-boundary layer (`crate::admin`).
    pub county_name: Option<String>,
    pub township_name: Option<String>,
    pub village_name: Option<String>,
    pub group_name: Option<String>,
}

impl AdminUnits {
    /// From a 19-character ZLDWDM: county = first 6, township = 9, village = 12, and the
    /// village group = all 19 when the tail is not all zeros.
    pub fn from_location_code(code: &str) -> AdminUnits {
        let c: String = code
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let part = |n: usize| (c.len() >= n).then(|| c[..n].to_string());
        AdminUnits {
            county_code: part(6),
            township_code: part(9),
            village_code: part(12),
            group_code: (c.len() >= 19 && c[12..19].chars().any(|d| d != '0'))
                .then(|| c[..19].to_string()),
            ..Default::default()
        }
    }
}

/// One parcel of the farmland layer, its geometry in the analysis grid's CRS.
#[derive(Clone, Debug, Serialize)]
pub struct Parcel {
    /// 1-based index, the value the parcel is rasterised with.
    pub index: u32,
    pub id: String,
    pub pbf: bool,
    pub land_class: Option<String>,
    pub land_class_name: Option<String>,
    pub admin: AdminUnits,
    pub declared_area_m2: Option<f64>,
    /// Polygons → rings → (x, y) in the grid CRS.
    #[serde(skip)]
    pub polygons: Vec<Vec<Vec<(f64, f64)>>>,
    /// Whether the geometry had to be repaired.
    pub repaired: bool,
}

impl Parcel {
    /// The polygons in the grid's pixel space.
    pub fn pixel_polygons(
        &self,
        world_from_pixel: &GeoTransform,
    ) -> Vec<crate::rasterize::PixelPolygon> {
        crate::rasterize::pixel_polygons(&self.polygons, world_from_pixel)
    }
}

/// A feature that could not be used.
#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    pub id: String,
    pub reason: String,
}

/// What reading the layer did with its features.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestReport {
    /// The layer read.
    pub layer: String,
    pub features: usize,
    pub used: usize,
    /// Used features whose invalid geometry was repaired.
    pub repaired: usize,
    /// Used features whose curved geometry (arcs) was linearised.
    pub linearised: usize,
    pub rejected: Vec<Rejected>,
    /// The field each role was read from (roles with no field in the layer are absent).
    pub fields_used: BTreeMap<String, String>,
}

/// The parcels of a farmland layer, reprojected to the analysis grid's CRS.
#[derive(Clone, Debug, Serialize)]
pub struct FarmlandLayer {
    pub path: PathBuf,
    pub source_crs: Option<Crs>,
    pub parcels: Vec<Parcel>,
    pub report: IngestReport,
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "y" | "yes" | "true" | "t" | "是" | "pbf" | "jbnt"
    )
}

impl FarmlandLayer {
    /// Read the parcels of a file whose farmland layer needs no name (its only layer, or its
    /// only layer that can hold polygons), with the attribute mapping `mapping`.
    pub fn read(path: &Path, mapping: &FieldMapping, target: &Crs) -> Result<FarmlandLayer> {
        FarmlandLayer::read_with(
            path,
            &FarmlandOptions {
                fields: mapping.clone(),
                layer: None,
            },
            target,
        )
    }

    /// Read every feature of the chosen layer (see the module doc), reproject to `target`,
    /// map attributes.
    pub fn read_with(
        path: &Path,
        options: &FarmlandOptions,
        target: &Crs,
    ) -> Result<FarmlandLayer> {
        let mapping = &options.fields;
        let farmland_err = |reason: String| InferenceError::Farmland {
            path: path.to_path_buf(),
            reason,
        };
        let ds = open_vector_layer(path, "farmland layer", farmland_err)?;
        let layers = layer_summaries(path, &ds)?;
        let index = choose_layer(path, &layers, options.layer.as_deref())?;
        let mut layer = ds.layer(index).map_err(|e| gdal_error(path, e))?;
        let _scope = gdal_log::scope(format!(
            "reading farmland layer {:?} of {}",
            layer.name(),
            path.display()
        ));
        tracing::debug!(
            "reading farmland layer {:?} of {} ({} driver)",
            layer.name(),
            path.display(),
            ds.driver().short_name()
        );
        let (source_crs, transform) = layer_transform(path, &layer, target, farmland_err)?;

        let field_names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
        let mut fields_used = BTreeMap::new();
        let mut role_index: BTreeMap<&str, usize> = BTreeMap::new();
        for role in ROLES {
            let candidates = mapping.fields.get(role).cloned().unwrap_or_default();
            if let Some((i, name)) = candidates.iter().find_map(|c| {
                field_names
                    .iter()
                    .position(|f| f.eq_ignore_ascii_case(c))
                    .map(|i| (i, field_names[i].clone()))
            }) {
                role_index.insert(role, i);
                fields_used.insert(role.to_string(), name);
            } else if mapping.explicit.iter().any(|r| r == role) {
                // A field the user named explicitly must exist.
                return Err(InferenceError::Farmland {
                    path: path.to_path_buf(),
                    reason: format!(
                        "no field {:?} for {role} (fields: {})",
                        candidates.first().cloned().unwrap_or_default(),
                        field_names.join(", ")
                    ),
                });
            }
        }

        let mut report = IngestReport {
            layer: layers[index].name.clone(),
            fields_used,
            ..Default::default()
        };
        let mut parcels = Vec::new();
        let mut seen_ids = std::collections::HashSet::new();
        for feature in layer.features() {
            report.features += 1;
            let get = |role: &str| -> Option<String> {
                role_index
                    .get(role)
                    .and_then(|&i| feature.field_as_string(i).ok().flatten())
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            let id = get("id")
                .or_else(|| feature.fid().map(|f| format!("fid:{f}")))
                .unwrap_or_else(|| format!("feature#{}", report.features));
            let _feature_scope = gdal_log::scope(feature_scope(feature.fid(), &id));
            let reject = |reason: String| Rejected {
                id: id.clone(),
                reason,
            };
            if !seen_ids.insert(id.clone()) {
                report.rejected.push(reject("duplicate parcel id".into()));
                continue;
            }
            let UsableGeometry {
                geometry: geom,
                repaired,
                linearised,
            } = match feature_geometry(&feature) {
                Ok(g) => g,
                Err(reason) => {
                    report.rejected.push(reject(reason));
                    continue;
                }
            };
            let projected = match geom.transform(&transform) {
                Ok(g) => g,
                Err(e) => {
                    report
                        .rejected
                        .push(reject(format!("cannot reproject: {e}")));
                    continue;
                }
            };
            let polygons = polygons_of(&projected);
            if polygons.is_empty() {
                report.rejected.push(reject(format!(
                    "not a polygon ({})",
                    projected.geometry_name()
                )));
                continue;
            }
            let mut admin = get("location")
                .map(|c| AdminUnits::from_location_code(&c))
                .unwrap_or_default();
            admin.location_name = get("location_name");
            if let Some(c) = get("county") {
                admin.county_code = Some(c);
            }
            if let Some(c) = get("township") {
                admin.township_code = Some(c);
            }
            if let Some(c) = get("village") {
                admin.village_code = Some(c);
            }
            if let Some(c) = get("group") {
                admin.group_code = Some(c);
            }
            if repaired {
                report.repaired += 1;
            }
            if linearised {
                report.linearised += 1;
            }
            report.used += 1;
            parcels.push(Parcel {
                index: parcels.len() as u32 + 1,
                id,
                pbf: get("pbf").is_some_and(|v| truthy(&v)),
                land_class: get("land_class"),
                land_class_name: get("land_class_name"),
                admin,
                declared_area_m2: get("area").and_then(|a| a.parse().ok()),
                polygons,
                repaired,
            });
        }
        Ok(FarmlandLayer {
            path: path.to_path_buf(),
            source_crs,
            parcels,
            report,
        })
    }
}

/// How a feature is named in GDAL's messages: its FID, and the parcel id when an
/// attribute gave one.
fn feature_scope(fid: Option<u64>, id: &str) -> String {
    match fid {
        Some(f) if id == format!("fid:{f}") => format!("feature {f}"),
        Some(f) => format!("feature {f} (parcel id {id})"),
        None => format!("feature {id}"),
    }
}

/// A GDAL error about `path`.
pub(crate) fn gdal_error(path: &Path, source: gdal::errors::GdalError) -> InferenceError {
    InferenceError::Gdal {
        path: path.to_path_buf(),
        source,
    }
}

/// Open a vector file that holds at least one layer; `what` names the file's role in errors
/// ("farmland layer"), `fail` makes the error of a file without a layer.
pub(crate) fn open_vector_layer(
    path: &Path,
    what: &'static str,
    fail: impl Fn(String) -> InferenceError,
) -> Result<gdal::Dataset> {
    if !path.exists() {
        return Err(InferenceError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let _scope = gdal_log::scope(format!("opening {what} {}", path.display()));
    let ds = open_vector(path).map_err(|failure| InferenceError::CannotOpenVector {
        path: path.to_path_buf(),
        what,
        failure,
    })?;
    if ds.layer_count() == 0 {
        return Err(fail("the file holds no vector layer".into()));
    }
    Ok(ds)
}

/// The layer's CRS and the transform from it to `target` (traditional x/y axis order on
/// both sides); `fail` makes the error of a layer without a CRS.
pub(crate) fn layer_transform(
    path: &Path,
    layer: &gdal::vector::Layer<'_>,
    target: &Crs,
    fail: impl Fn(String) -> InferenceError,
) -> Result<(Option<Crs>, CoordTransform)> {
    let mut src_srs = layer
        .spatial_ref()
        .ok_or_else(|| fail("the layer has no coordinate reference system".into()))?;
    src_srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let source_crs = Crs::from_spatial_ref(&src_srs);
    let dst_srs = target.to_spatial_ref().map_err(|e| gdal_error(path, e))?;
    let transform = CoordTransform::new(&src_srs, &dst_srs).map_err(|e| gdal_error(path, e))?;
    Ok((source_crs, transform))
}

/// A feature's geometry, ready to use: linear, valid and not empty.
pub(crate) struct UsableGeometry {
    pub geometry: Geometry,
    /// It was invalid and has been repaired (`make_valid`).
    pub repaired: bool,
    /// It held arcs (CurvePolygon, MultiSurface, CircularString or CompoundCurve rings) and
    /// has been linearised.
    pub linearised: bool,
}

/// A feature's geometry, linearised when curved and repaired when invalid, or why it cannot
/// be used (none, empty, not linearisable, invalid beyond repair).
pub(crate) fn feature_geometry(
    feature: &gdal::vector::Feature<'_>,
) -> std::result::Result<UsableGeometry, String> {
    // gdal 0.19 wraps a feature's NULL geometry in a Geometry: check the pointer.
    // SAFETY: c_geometry only reads the wrapped pointer, which the feature owns.
    let Some(geom) = feature
        .geometry()
        .filter(|g| unsafe { !g.c_geometry().is_null() })
    else {
        return Err("no geometry".into());
    };
    if geom.is_empty() {
        return Err("empty geometry".into());
    }
    let (geom, linearised) = match linear_geometry(geom)? {
        Some(g) => (g, true),
        None => (geom.clone(), false),
    };
    if geom.is_valid() {
        return Ok(UsableGeometry {
            geometry: geom,
            repaired: false,
            linearised,
        });
    }
    match geom.make_valid(&gdal::cpl::CslStringList::new()) {
        Ok(g) if g.is_valid() && !g.is_empty() => Ok(UsableGeometry {
            geometry: g,
            repaired: true,
            linearised,
        }),
        _ => Err("invalid geometry that could not be repaired".into()),
    }
}

/// The linear approximation of a geometry holding arcs (OGR's `OGR_G_GetLinearGeometry`,
/// default step of 4 degrees of arc: a circle's area is within 0.1 % of πr²); `None` for a
/// geometry without curves. gdal 0.19 has no safe wrapper for it.
pub(crate) fn linear_geometry(geom: &Geometry) -> std::result::Result<Option<Geometry>, String> {
    // SAFETY: the handle is the geometry's own, valid while `geom` lives; the call only reads.
    let curved = unsafe { gdal_sys::OGR_G_HasCurveGeometry(geom.c_geometry(), 1) } != 0;
    if !curved {
        return Ok(None);
    }
    // SAFETY: as above; the result is a new geometry the caller owns (or NULL).
    let raw =
        unsafe { gdal_sys::OGR_G_GetLinearGeometry(geom.c_geometry(), 0.0, std::ptr::null_mut()) };
    if raw.is_null() {
        return Err(format!(
            "curved geometry ({}) that OGR could not linearise",
            geom.geometry_name()
        ));
    }
    // gdal 0.19 cannot take ownership of a raw handle: wrap it unowned, clone it into an
    // owned Geometry, then free the raw one.
    // SAFETY: `raw` is a valid, non-null geometry; the unowned wrapper never frees it and is
    // dropped before `raw` is destroyed, exactly once.
    let linear = unsafe {
        let borrowed = Geometry::lazy_feature_geometry();
        borrowed.set_c_geometry(raw);
        let owned = borrowed.clone();
        drop(borrowed);
        gdal_sys::OGR_G_DestroyGeometry(raw);
        owned
    };
    Ok(Some(linear))
}

/// Open a vector file; zipped shapefiles are read through /vsizip/.
fn open_vector(path: &Path) -> std::result::Result<gdal::Dataset, gengdi_tiling::OpenFailure> {
    let is_zip = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    let p = if is_zip {
        PathBuf::from(format!("/vsizip/{}", path.display()))
    } else {
        path.to_path_buf()
    };
    gdal_open::open_through(path, &p, DataKind::Vector)
}

/// Polygons → rings → points of any polygonal geometry (collections included).
pub(crate) fn polygons_of(g: &Geometry) -> Vec<Vec<Vec<(f64, f64)>>> {
    let t = gdal::vector::geometry_type_flatten(g.geometry_type());
    let mut out = Vec::new();
    match t {
        OGRwkbGeometryType::wkbPolygon => {
            let mut rings = Vec::new();
            for i in 0..g.geometry_count() {
                let ring = g.get_geometry(i);
                let mut pts = Vec::new();
                ring.get_points(&mut pts);
                let pts: Vec<(f64, f64)> = pts.into_iter().map(|(x, y, _)| (x, y)).collect();
                if pts.len() >= 3 {
                    rings.push(pts);
                }
            }
            if !rings.is_empty() {
                out.push(rings);
            }
        }
        OGRwkbGeometryType::wkbMultiPolygon | OGRwkbGeometryType::wkbGeometryCollection => {
            for i in 0..g.geometry_count() {
                let sub = g.get_geometry(i);
                out.extend(polygons_of(&sub));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_code_gives_every_grid_level() {
        let a = AdminUnits::from_location_code("6405021011030000000");
        assert_eq!(a.county_code.as_deref(), Some("640502"));
        assert_eq!(a.township_code.as_deref(), Some("640502101"));
        assert_eq!(a.village_code.as_deref(), Some("640502101103"));
        assert_eq!(a.group_code, None);
        let b = AdminUnits::from_location_code("6405021011030010000");
        assert_eq!(b.group_code.as_deref(), Some("6405021011030010000"));
    }

    #[test]
    fn field_mappings_parse_and_unknown_roles_are_refused() {
        let m = FieldMapping::parse("id=PARCEL, pbf = IS_JBNT").unwrap();
        assert_eq!(m.fields["id"], vec!["PARCEL".to_string()]);
        assert_eq!(m.fields["pbf"], vec!["IS_JBNT".to_string()]);
        assert_eq!(m.fields["land_class"][0], "DLBM");
        assert!(FieldMapping::parse("colour=RED").is_err());
        assert!(FieldMapping::parse("id").is_err());
    }
}
