//! Registering a farmland layer: a file under the import root is copied into the data dir,
//! read with inference's farmland reader (in WGS 84) and summarised.

use gengdi_inference::analysis::M2_PER_MU;
use gengdi_inference::farmland::ROLES;
use gengdi_inference::{FarmlandLayer, FarmlandOptions, FieldMapping};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Result, ServiceError};
use crate::geometry::{bbox, geojson_multipolygon, wgs84, EqualAreaLonLat};
use crate::paths::ImportRoot;
use crate::store::{FarmlandRecord, NewFarmland, NewParcel, ParcelAttributes};

/// `POST /api/v1/farmland`.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FarmlandRequest {
    /// The layer file, relative to the import root (or absolute inside it).
    pub path: String,
    /// The layer to read, when the file holds several that can hold polygons.
    pub layer: Option<String>,
    /// Attribute mapping, role → field (roles: id, pbf, land_class, land_class_name,
    /// location, location_name, county, township, village, group, area).
    pub mapping: Option<BTreeMap<String, String>>,
    /// A name to list the layer by (default: the file name).
    pub name: Option<String>,
}

/// The mapping as `role=FIELD,…` (the form `gengdi analyze --farmland-fields` takes).
pub fn mapping_spec(mapping: &BTreeMap<String, String>) -> Result<String> {
    role_fields_spec(mapping, &ROLES)
}

/// A role → field mapping as `role=FIELD,…`, every role one of `roles` (the form the
/// analysis's `--farmland-fields` and `--admin-fields` take).
pub(crate) fn role_fields_spec(
    mapping: &BTreeMap<String, String>,
    roles: &[&str],
) -> Result<String> {
    let mut parts = Vec::new();
    for (role, field) in mapping {
        if !roles.contains(&role.as_str()) {
            return Err(ServiceError::Invalid(format!(
                "mapping: unknown role {role:?}; roles: {}",
                roles.join(", ")
            )));
        }
        if field.is_empty() || field.contains([',', '=']) {
            return Err(ServiceError::Invalid(format!(
                "mapping: {role}: {field:?} is not a field name"
            )));
        }
        parts.push(format!("{role}={field}"));
    }
    Ok(parts.join(","))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServiceError + '_ {
    move |source| ServiceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Copy `file` (and, for a Shapefile, the files beside it with the same stem) into `dir`.
pub(crate) fn copy_layer(file: &Path, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = file
        .file_name()
        .ok_or_else(|| ServiceError::Invalid(format!("{}: not a file", file.display())))?;
    let is_shp = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("shp"));
    let mut files = vec![file.to_path_buf()];
    if let (true, Some(parent), Some(stem)) = (is_shp, file.parent(), file.file_stem()) {
        for entry in std::fs::read_dir(parent).map_err(io(parent))? {
            let p = entry.map_err(io(parent))?.path();
            if p != file && p.is_file() && p.file_stem() == Some(stem) {
                files.push(p);
            }
        }
    }
    for f in &files {
        if let Some(n) = f.file_name() {
            let to = dir.join(n);
            std::fs::copy(f, &to).map_err(io(f))?;
        }
    }
    Ok(dir.join(name))
}

/// The layer file `path` names under the import root: a file, and a zip archive within the
/// unpacking limits.
pub(crate) fn checked_layer_file(
    root: &ImportRoot,
    path: &str,
    limits: &crate::limits::Limits,
) -> Result<PathBuf> {
    let source = root.resolve(path)?;
    if !source.is_file() {
        return Err(ServiceError::Invalid(format!(
            "{path}: not a file (name the layer file)"
        )));
    }
    if source
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        crate::limits::check_zip(&source, limits)?;
    }
    Ok(source)
}

/// Copy a layer file into a new folder of random name under `parent`: (the folder, the copy).
pub(crate) fn copy_into_data_dir(source: &Path, parent: &Path) -> Result<(PathBuf, PathBuf)> {
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).map_err(|e| ServiceError::Random(e.to_string()))?;
    let dir = parent.join(hex::encode(salt));
    let stored = copy_layer(source, &dir)?;
    Ok((dir, stored))
}

/// Import the layer `request` names: copy it under `data_dir/farmland/`, read it, sum the
/// areas. Blocking (GDAL): run it on the blocking pool.
pub fn import(
    root: &ImportRoot,
    data_dir: &Path,
    request: &FarmlandRequest,
    created_by: i64,
    limits: &crate::limits::Limits,
) -> Result<(NewFarmland, Vec<NewParcel>)> {
    let source = checked_layer_file(root, &request.path, limits)?;
    let mapping = match &request.mapping {
        Some(m) => mapping_spec(m)?,
        None => String::new(),
    };
    let fields = if mapping.is_empty() {
        FieldMapping::default()
    } else {
        FieldMapping::parse(&mapping)?
    };
    let (dir, stored) = copy_into_data_dir(&source, &data_dir.join("farmland"))?;
    let read = FarmlandLayer::read_with(
        &stored,
        &FarmlandOptions {
            fields,
            layer: request.layer.clone(),
        },
        &wgs84()?,
    );
    let layer = match read {
        Ok(l) => l,
        Err(e) => {
            if let Err(rm) = std::fs::remove_dir_all(&dir) {
                tracing::warn!("cannot remove {}: {rm}", dir.display());
            }
            return Err(e.into());
        }
    };
    let parcels = parcel_rows(&layer)?;
    let (area_mu, pbf_area_mu) = areas_mu(&parcels);
    let r = &layer.report;
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let new = NewFarmland {
        name: request.name.clone().unwrap_or_else(|| {
            source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        source: root.relative(&source),
        stored_path: stored.display().to_string(),
        layer: r.layer.clone(),
        mapping,
        features: count(r.features),
        parcels: count(layer.parcels.len()),
        used: count(r.used),
        repaired: count(r.repaired),
        rejected: count(r.rejected.len()),
        area_mu,
        pbf_area_mu,
        fields_used: serde_json::to_value(&r.fields_used)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?,
        created_by,
    };
    Ok((new, parcels))
}

/// Sum of the parcels' areas and of the PBF parcels' areas, in mu.
fn areas_mu(parcels: &[NewParcel]) -> (f64, f64) {
    parcels.iter().fold((0.0, 0.0), |(total, pbf), p| {
        let a = &p.attributes;
        (total + a.area_mu, pbf + if a.pbf { a.area_mu } else { 0.0 })
    })
}

/// Coordinates of the stored parcels are kept to 10⁻⁷ degrees (about 1 cm).
fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// The parcels of a layer read in WGS 84 as the map shows them: attributes, the area on an
/// equal-area projection centred on the layer, in mu, the box and the geometry.
pub fn parcel_rows(layer: &FarmlandLayer) -> Result<Vec<NewParcel>> {
    // Each parcel's box, and the layer's as their union (no copy of the geometry).
    let boxed: Vec<_> = layer
        .parcels
        .iter()
        .filter_map(|p| bbox(&p.polygons).map(|b| (p, b)))
        .collect();
    let Some([x0, y0, x1, y1]) = boxed.iter().map(|(_, b)| *b).reduce(|a, b| {
        [
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ]
    }) else {
        return Ok(Vec::new());
    };
    let ea = EqualAreaLonLat::centred((x0 + x1) / 2.0, (y0 + y1) / 2.0)?;
    boxed
        .into_iter()
        .map(|(p, b)| {
            let rounded: Vec<Vec<Vec<(f64, f64)>>> = p
                .polygons
                .iter()
                .map(|poly| {
                    poly.iter()
                        .map(|ring| ring.iter().map(|&(x, y)| (round7(x), round7(y))).collect())
                        .collect()
                })
                .collect();
            let a = &p.admin;
            Ok(NewParcel {
                attributes: ParcelAttributes {
                    parcel: p.id.clone(),
                    pbf: p.pbf,
                    land_class: p.land_class.clone(),
                    land_class_name: p.land_class_name.clone(),
                    area_mu: ea.area_m2(&p.polygons)? / M2_PER_MU,
                    location_code: a
                        .group_code
                        .clone()
                        .or_else(|| a.village_code.clone())
                        .or_else(|| a.township_code.clone())
                        .or_else(|| a.county_code.clone()),
                },
                bbox: b,
                geometry: geojson_multipolygon(&rounded).to_string(),
            })
        })
        .collect()
}

/// Store the parcels of a registered layer for the map if they are not stored yet (a layer
/// registered before parcels were stored): read the layer again on the blocking pool.
pub async fn ensure_parcels(
    store: &std::sync::Arc<dyn crate::store::Store>,
    record: FarmlandRecord,
) -> Result<()> {
    if store.parcels_stored(record.id).await? {
        return Ok(());
    }
    let id = record.id;
    let rows = tokio::task::spawn_blocking(move || read_parcels(&record))
        .await
        .map_err(|e| ServiceError::Join(e.to_string()))??;
    tracing::info!("farmland {id}: {} parcels stored for the map", rows.len());
    store.store_parcels(id, rows).await
}

/// [`ensure_parcels`] for every registered layer (at start-up, in the background).
pub async fn backfill_parcels(store: std::sync::Arc<dyn crate::store::Store>) {
    let layers = match store.list_farmland().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("farmland: cannot list the layers to store their parcels: {e}");
            return;
        }
    };
    for record in layers {
        let id = record.id;
        if let Err(e) = ensure_parcels(&store, record).await {
            tracing::warn!("farmland {id}: the parcels for the map are not stored: {e}");
        }
    }
}

/// Read the parcels of a registered layer again (for a layer registered before parcels
/// were stored). Blocking (GDAL).
pub fn read_parcels(record: &FarmlandRecord) -> Result<Vec<NewParcel>> {
    let fields = if record.mapping.is_empty() {
        FieldMapping::default()
    } else {
        FieldMapping::parse(&record.mapping)?
    };
    let layer = FarmlandLayer::read_with(
        Path::new(&record.stored_path),
        &FarmlandOptions {
            fields,
            layer: Some(record.layer.clone()),
        },
        &wgs84()?,
    )?;
    parcel_rows(&layer)
}
