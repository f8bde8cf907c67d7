//! Registering an administrative-boundary layer (county / township / village / group units):
//! a file under the import root is copied into the data dir, read with inference's admin
//! reader ([`gengdi_inference::admin::AdminLayer`], every layer of the file, in WGS 84) and
//! summarised. A batch names it (`admin`) to give parcels whose attributes lack unit codes
//! the codes of the units they lie in.

use gengdi_inference::admin::{AdminFields, AdminLayer, ADMIN_ROLES, LEVELS};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Result, ServiceError};
use crate::farmland::{checked_layer_file, copy_into_data_dir};
use crate::geometry::wgs84;
use crate::paths::ImportRoot;
use crate::store::NewAdminLayer;

/// `POST /api/v1/admin-layers`.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminLayerRequest {
    /// The layer file, relative to the import root (or absolute inside it).
    pub path: String,
    /// Attribute mapping, role → field (roles: code, name, county, county_name, township,
    /// township_name, village, village_name, group, group_name).
    pub mapping: Option<BTreeMap<String, String>>,
    /// A name to list the layer by (default: the file name).
    pub name: Option<String>,
}

/// The mapping as `role=FIELD,…` (the form `gengdi analyze --admin-fields` takes).
pub fn mapping_spec(mapping: &BTreeMap<String, String>) -> Result<String> {
    crate::farmland::role_fields_spec(mapping, &ADMIN_ROLES)
}

/// Import the layer `request` names: copy it under `data_dir/admin/`, read it, count its
/// units per level. Blocking (GDAL): run it on the blocking pool. A layer with no usable
/// unit is refused (and its copy removed).
pub fn import(
    root: &ImportRoot,
    data_dir: &std::path::Path,
    request: &AdminLayerRequest,
    created_by: i64,
    limits: &crate::limits::Limits,
) -> Result<NewAdminLayer> {
    let source = checked_layer_file(root, &request.path, limits)?;
    let mapping = match &request.mapping {
        Some(m) => mapping_spec(m)?,
        None => String::new(),
    };
    let fields = if mapping.is_empty() {
        AdminFields::default()
    } else {
        AdminFields::parse(&mapping)?
    };
    let (dir, stored) = copy_into_data_dir(&source, &data_dir.join("admin"))?;
    let read = AdminLayer::read(&stored, &fields, &wgs84()?)
        .map_err(ServiceError::from)
        .and_then(|layer| {
            if layer.units.is_empty() {
                Err(ServiceError::Invalid(format!(
                    "{}: no administrative unit in {} features ({} rejected{})",
                    request.path,
                    layer.report.features,
                    layer.report.rejected.len(),
                    layer
                        .report
                        .rejected
                        .first()
                        .map(|r| format!(", the first: {}", r.reason))
                        .unwrap_or_default()
                )))
            } else {
                Ok(layer)
            }
        });
    let layer = match read {
        Ok(l) => l,
        Err(e) => {
            if let Err(rm) = std::fs::remove_dir_all(&dir) {
                tracing::warn!("cannot remove {}: {rm}", dir.display());
            }
            return Err(e);
        }
    };
    let mut per_level: [BTreeSet<&str>; 4] = Default::default();
    for u in &layer.units {
        for (level, code) in u.codes.iter().enumerate() {
            if let Some(c) = code {
                per_level[level].insert(c.as_str());
            }
        }
    }
    let units: serde_json::Map<String, serde_json::Value> = LEVELS
        .iter()
        .zip(&per_level)
        .map(|(level, codes)| (level.to_string(), codes.len().into()))
        .collect();
    let r = &layer.report;
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(NewAdminLayer {
        name: request.name.clone().unwrap_or_else(|| {
            source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        source: root.relative(&source),
        stored_path: stored.display().to_string(),
        mapping,
        layers: r.layers.clone(),
        features: count(r.features),
        used: count(r.used),
        rejected: count(r.rejected.len()),
        units: serde_json::Value::Object(units),
        fields_used: serde_json::to_value(&r.fields_used)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?,
        created_by,
    })
}
