//! The administrative-boundary layer: county / township / village / village-group codes and
//! names for parcels whose attributes do not carry them.
//!
//! Design: every vector layer of the file (any OGR format, any CRS) is read; each feature is
//! a unit polygon carrying the codes (and names) of the levels it belongs to, through
//! configurable fields:
//!
//! - per-level fields (`county`, `county_name`, `township`, `township_name`, `village`,
//!   `village_name`, `group`, `group_name`; defaults `county_code`, `county_name`, … ), and/or
//! - one generic code field `code` (default `XZQDM`) with its name `name` (default `XZQMC`):
//!   the code's length tells its level — 6 characters a county, 9 a township, 12 a village,
//!   13 or more a village group (a 12-character code ending in `000000` is a county and one
//!   ending in `000` a township, a 19-character code ending in `0000000` a village, as the
//!   statistical division codes pad them); the levels above it are its prefixes (6, 9, 12).
//!   Its name names that finest level.
//!
//! Curved unit boundaries (arcs) are linearised as the farmland layer's are.
//!
//! So one layer of villages that carry every level's codes works, and so do separate
//! layers (county, township, village) in one GeoPackage, each with `XZQDM` / `XZQMC`.
//!
//! A parcel is placed by its representative point: a point inside the parcel (on a
//! horizontal scan line through the middle of its largest polygon, the midpoint of the widest
//! inside interval — inside even for a U-shaped parcel, whose centroid is not). For each
//! level, the smallest unit containing the point that has a code at that level gives it.
//! **The parcel's own attributes win**: a level the farmland layer already codes (by
//! `ZLDWDM` or the county/township/village/group fields) keeps its code; names are looked
//! up by code in the admin layer (any unit with that code at that level), else taken from
//! the containing unit when its code is the same.

use crate::error::{InferenceError, Result};
use crate::farmland::{feature_geometry, open_vector_layer, FarmlandLayer};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform};
use gdal::vector::{Geometry, LayerAccess};
use gengdi_tiling::{gdal_log, Crs};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The roles a field of the admin layer can play.
pub const ADMIN_ROLES: [&str; 10] = [
    "code",
    "name",
    "county",
    "county_name",
    "township",
    "township_name",
    "village",
    "village_name",
    "group",
    "group_name",
];

/// Which attribute holds what (candidates tried in order, case-insensitively).
#[derive(Clone, Debug, Serialize)]
pub struct AdminFields {
    pub fields: BTreeMap<String, Vec<String>>,
    /// Roles the user named: the field must exist in some layer.
    pub explicit: Vec<String>,
}

impl Default for AdminFields {
    fn default() -> Self {
        let mut fields = BTreeMap::new();
        let mut set = |role: &str, names: &[&str]| {
            fields.insert(
                role.to_string(),
                names.iter().map(|s| s.to_string()).collect(),
            );
        };
        set("code", &["XZQDM", "admin_code", "code"]);
        set("name", &["XZQMC", "admin_name", "name"]);
        set("county", &["county_code"]);
        set("county_name", &["county_name"]);
        set("township", &["township_code"]);
        set("township_name", &["township_name"]);
        set("village", &["village_code"]);
        set("village_name", &["village_name"]);
        set("group", &["group_code"]);
        set("group_name", &["group_name"]);
        AdminFields {
            fields,
            explicit: Vec::new(),
        }
    }
}

impl AdminFields {
    /// Parse `county=XDM,county_name=XMC,…`; given roles replace the defaults' candidates.
    pub fn parse(spec: &str) -> Result<AdminFields> {
        let mut m = AdminFields::default();
        crate::farmland::parse_role_fields(
            spec,
            "--admin-fields",
            &ADMIN_ROLES,
            &mut m.fields,
            &mut m.explicit,
        )?;
        Ok(m)
    }
}

/// Levels, coarse to fine.
pub const LEVELS: [&str; 4] = ["county", "township", "village", "group"];

/// One unit polygon of the admin layer.
#[derive(Debug)]
pub struct AdminUnit {
    pub layer: String,
    pub codes: [Option<String>; 4],
    pub names: [Option<String>; 4],
    /// In the analysis grid's CRS.
    geometry: Geometry,
    envelope: [f64; 4],
    area: f64,
}

/// A feature that could not be used.
#[derive(Clone, Debug, Serialize)]
pub struct AdminRejected {
    pub layer: String,
    pub feature: String,
    pub reason: String,
}

/// What reading the layer did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AdminReport {
    pub layers: Vec<String>,
    pub features: usize,
    pub used: usize,
    pub rejected: Vec<AdminRejected>,
    /// Per layer, the field each role was read from.
    pub fields_used: BTreeMap<String, BTreeMap<String, String>>,
}

/// What assigning did to the parcels.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AssignReport {
    /// Parcels that got at least one code from the admin layer.
    pub filled: usize,
    /// Parcels whose attributes already coded every level the admin layer offered.
    pub kept: usize,
    /// Parcels whose representative point lies in no unit.
    pub outside: usize,
}

/// The administrative units, reprojected to the analysis grid's CRS.
#[derive(Debug)]
pub struct AdminLayer {
    pub path: PathBuf,
    pub units: Vec<AdminUnit>,
    pub report: AdminReport,
    /// (level, code) → name, from every unit.
    names: HashMap<(usize, String), String>,
}

fn clean_code(c: &str) -> String {
    c.trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// The levels a generic division code gives: codes of each level (prefixes) and the index of
/// its finest level.
pub fn levels_of_code(code: &str) -> Option<([Option<String>; 4], usize)> {
    let c = clean_code(code);
    let mut n = c.len();
    let zeros = |from: usize| c.get(from..).is_some_and(|t| t.chars().all(|d| d == '0'));
    if n == 19 && zeros(12) {
        n = 12;
    }
    if n == 12 && zeros(6) {
        n = 6;
    } else if n == 12 && zeros(9) {
        n = 9;
    } else if n == 9 && zeros(6) {
        n = 6;
    }
    let finest = match n {
        6 => 0,
        9 => 1,
        12 => 2,
        n if n >= 13 => 3,
        _ => return None,
    };
    let part = |k: usize| c.get(..k).map(str::to_string);
    let mut codes: [Option<String>; 4] = [part(6), part(9), part(12), Some(c.clone())];
    for (i, slot) in codes.iter_mut().enumerate() {
        if i > finest {
            *slot = None;
        }
    }
    if finest == 3 {
        codes[3] = Some(c);
    }
    Some((codes, finest))
}

impl AdminLayer {
    /// Read every feature of every layer of the file, reprojected to `target`.
    pub fn read(path: &Path, fields: &AdminFields, target: &Crs) -> Result<AdminLayer> {
        let bad = |reason: String| InferenceError::Admin {
            path: path.to_path_buf(),
            reason,
        };
        let gdal_err = |e: gdal::errors::GdalError| InferenceError::Gdal {
            path: path.to_path_buf(),
            source: e,
        };
        let ds = open_vector_layer(path, "administrative-boundary layer", bad)?;
        let dst_srs = target.to_spatial_ref().map_err(gdal_err)?;
        let mut report = AdminReport::default();
        let mut units = Vec::new();
        let mut seen_roles: Vec<String> = Vec::new();
        for li in 0..ds.layer_count() {
            let mut layer = ds.layer(li).map_err(gdal_err)?;
            let lname = layer.name();
            let _layer_scope = gdal_log::scope(format!(
                "reading administrative-boundary layer {lname:?} of {}",
                path.display()
            ));
            report.layers.push(lname.clone());
            let mut src_srs = layer
                .spatial_ref()
                .ok_or_else(|| bad(format!("layer {lname} has no coordinate reference system")))?;
            src_srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
            let transform = CoordTransform::new(&src_srs, &dst_srs).map_err(gdal_err)?;
            let field_names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
            let mut role_index: BTreeMap<&str, usize> = BTreeMap::new();
            let mut used = BTreeMap::new();
            for role in ADMIN_ROLES {
                let candidates = fields.fields.get(role).cloned().unwrap_or_default();
                if let Some(i) = candidates
                    .iter()
                    .find_map(|c| field_names.iter().position(|f| f.eq_ignore_ascii_case(c)))
                {
                    role_index.insert(role, i);
                    used.insert(role.to_string(), field_names[i].clone());
                    seen_roles.push(role.to_string());
                }
            }
            report.fields_used.insert(lname.clone(), used);
            for feature in layer.features() {
                report.features += 1;
                let get = |role: &str| -> Option<String> {
                    role_index
                        .get(role)
                        .and_then(|&i| feature.field_as_string(i).ok().flatten())
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                };
                let fid = feature
                    .fid()
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| format!("#{}", report.features));
                let _feature_scope = gdal_log::scope(format!("feature {fid}"));
                let reject = |reason: &str| AdminRejected {
                    layer: lname.clone(),
                    feature: fid.clone(),
                    reason: reason.to_string(),
                };
                let mut codes: [Option<String>; 4] = Default::default();
                let mut names: [Option<String>; 4] = Default::default();
                if let Some(code) = get("code") {
                    match levels_of_code(&code) {
                        Some((c, finest)) => {
                            codes = c;
                            names[finest] = get("name");
                        }
                        None => {
                            report.rejected.push(reject(&format!(
                                "code {code:?} has no division-code length (6, 9, 12, 13+)"
                            )));
                            continue;
                        }
                    }
                }
                for (i, level) in LEVELS.iter().enumerate() {
                    if let Some(c) = get(level) {
                        codes[i] = Some(c);
                    }
                    if let Some(n) = get(&format!("{level}_name")) {
                        names[i] = Some(n);
                    }
                }
                if codes.iter().all(Option::is_none) {
                    report.rejected.push(reject("no administrative code"));
                    continue;
                }
                let geom = match feature_geometry(&feature) {
                    Ok(g) => g.geometry,
                    Err(reason) => {
                        report.rejected.push(reject(&reason));
                        continue;
                    }
                };
                let geom = match geom.transform(&transform) {
                    Ok(g) => g,
                    Err(e) => {
                        report
                            .rejected
                            .push(reject(&format!("cannot reproject: {e}")));
                        continue;
                    }
                };
                let area = geom.area();
                if geom.is_empty() || area <= 0.0 {
                    report.rejected.push(reject("not a polygon"));
                    continue;
                }
                let e = geom.envelope();
                report.used += 1;
                units.push(AdminUnit {
                    layer: lname.clone(),
                    codes,
                    names,
                    envelope: [e.MinX, e.MinY, e.MaxX, e.MaxY],
                    area,
                    geometry: geom,
                });
            }
        }
        for role in &fields.explicit {
            if !seen_roles.contains(role) {
                return Err(bad(format!(
                    "no field {:?} for {role} in any layer",
                    fields
                        .fields
                        .get(role)
                        .and_then(|c| c.first())
                        .cloned()
                        .unwrap_or_default()
                )));
            }
        }
        let mut names = HashMap::new();
        for u in &units {
            for i in 0..4 {
                if let (Some(c), Some(n)) = (&u.codes[i], &u.names[i]) {
                    names.entry((i, c.clone())).or_insert_with(|| n.clone());
                }
            }
        }
        Ok(AdminLayer {
            path: path.to_path_buf(),
            units,
            report,
            names,
        })
    }

    /// Codes and names at each level of the units containing `(x, y)` (grid CRS): per level,
    /// the smallest containing unit that has a code at that level.
    pub fn locate(&self, x: f64, y: f64) -> ([Option<String>; 4], [Option<String>; 4]) {
        let mut codes: [Option<String>; 4] = Default::default();
        let mut names: [Option<String>; 4] = Default::default();
        let mut best = [f64::INFINITY; 4];
        let Ok(point) = Geometry::from_wkt(&format!("POINT ({x} {y})")) else {
            return (codes, names);
        };
        for u in &self.units {
            let e = u.envelope;
            if x < e[0] || x > e[2] || y < e[1] || y > e[3] {
                continue;
            }
            if !(u.geometry.contains(&point) || u.geometry.intersects(&point)) {
                continue;
            }
            for i in 0..4 {
                if u.codes[i].is_some() && u.area < best[i] {
                    best[i] = u.area;
                    codes[i] = u.codes[i].clone();
                    names[i] = u.names[i].clone();
                }
            }
        }
        (codes, names)
    }

    /// The name of `code` at `level` (0 county … 3 group), if a unit names it.
    pub fn name_of(&self, level: usize, code: &str) -> Option<&str> {
        self.names
            .get(&(level, code.to_string()))
            .map(String::as_str)
    }

    /// Fill every parcel's missing codes (and the names of its codes) from the units that
    /// contain its representative point; codes from the parcel's attributes win.
    pub fn assign(&self, farmland: &mut FarmlandLayer) -> AssignReport {
        let mut report = AssignReport::default();
        for parcel in &mut farmland.parcels {
            let Some((x, y)) = representative_point(&parcel.polygons) else {
                report.outside += 1;
                continue;
            };
            let (codes, names) = self.locate(x, y);
            if codes.iter().all(Option::is_none) {
                report.outside += 1;
            }
            let a = &mut parcel.admin;
            let mut filled = false;
            {
                let mut slots: [(&mut Option<String>, &mut Option<String>); 4] = [
                    (&mut a.county_code, &mut a.county_name),
                    (&mut a.township_code, &mut a.township_name),
                    (&mut a.village_code, &mut a.village_name),
                    (&mut a.group_code, &mut a.group_name),
                ];
                for (i, (code, name)) in slots.iter_mut().enumerate() {
                    if code.is_none() && codes[i].is_some() {
                        **code = codes[i].clone();
                        filled = true;
                    }
                    if name.is_none() {
                        if let Some(c) = code.as_deref() {
                            **name = self.name_of(i, c).map(str::to_string).or_else(|| {
                                (codes[i].as_deref() == Some(c))
                                    .then(|| names[i].clone())
                                    .flatten()
                            });
                        }
                    }
                }
            }
            if filled {
                report.filled += 1;
            } else if codes.iter().any(Option::is_some) {
                report.kept += 1;
            }
        }
        report
    }
}

/// A point inside a (multi)polygon: on the horizontal line through the middle of the largest
/// polygon's vertex heights (never through a vertex), the midpoint of the widest interval
/// inside the polygon (even–odd over its rings, so holes are outside).
pub fn representative_point(polygons: &[Vec<Vec<(f64, f64)>>]) -> Option<(f64, f64)> {
    let ring_area = |r: &[(f64, f64)]| -> f64 {
        let n = r.len();
        (0..n)
            .map(|k| r[k].0 * r[(k + 1) % n].1 - r[(k + 1) % n].0 * r[k].1)
            .sum::<f64>()
            .abs()
            / 2.0
    };
    let poly = polygons.iter().filter(|p| !p.is_empty()).max_by(|a, b| {
        let area = |p: &Vec<Vec<(f64, f64)>>| {
            p.iter()
                .enumerate()
                .map(|(i, r)| if i == 0 { ring_area(r) } else { -ring_area(r) })
                .sum::<f64>()
        };
        area(a).total_cmp(&area(b))
    })?;
    let shell = poly.first()?;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(_, y) in shell {
        lo = lo.min(y);
        hi = hi.max(y);
    }
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    let centre = (lo + hi) / 2.0;
    // The vertex heights just below (or at) and above the centre: a scan line between them
    // crosses no vertex.
    let ys = poly.iter().flatten().map(|p| p.1);
    let below = ys
        .clone()
        .filter(|&y| y <= centre)
        .fold(f64::NEG_INFINITY, f64::max);
    let above = ys.filter(|&y| y > centre).fold(f64::INFINITY, f64::min);
    if !below.is_finite() || !above.is_finite() {
        return None;
    }
    let y = (below + above) / 2.0;
    let mut xs = Vec::new();
    for ring in poly {
        let n = ring.len();
        for i in 0..n {
            let (x1, y1) = ring[i];
            let (x2, y2) = ring[(i + 1) % n];
            if (y1 <= y && y < y2) || (y2 <= y && y < y1) {
                xs.push(x1 + (y - y1) * (x2 - x1) / (y2 - y1));
            }
        }
    }
    xs.sort_by(f64::total_cmp);
    xs.chunks_exact(2)
        .max_by(|a, b| (a[1] - a[0]).total_cmp(&(b[1] - b[0])))
        .map(|p| ((p[0] + p[1]) / 2.0, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_representative_point_of_a_u_is_inside_it() {
        let u = vec![vec![vec![
            (0.0, 0.0),
            (10.0, 0.0),
            (10.0, 10.0),
            (7.0, 10.0),
            (7.0, 3.0),
            (3.0, 3.0),
            (3.0, 10.0),
            (0.0, 10.0),
        ]]];
        let (x, y) = representative_point(&u).unwrap();
        let in_arm = (0.0..3.0).contains(&x) || (7.0..10.0).contains(&x);
        assert!(in_arm && y > 3.0 && y < 10.0, "({x}, {y})");
        // A square with a hole in the middle: the point avoids the hole.
        let holed = vec![vec![
            vec![(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)],
            vec![(2.0, 2.0), (8.0, 2.0), (8.0, 8.0), (2.0, 8.0)],
        ]];
        let (x, _) = representative_point(&holed).unwrap();
        assert!(!(2.0..=8.0).contains(&x), "{x}");
    }

    #[test]
    fn division_codes_give_their_levels() {
        let (c, f) = levels_of_code("640502").unwrap();
        assert_eq!(
            (c[0].as_deref(), c[1].as_deref(), f),
            (Some("640502"), None, 0)
        );
        let (c, f) = levels_of_code("640502101103").unwrap();
        assert_eq!(f, 2);
        assert_eq!(c[1].as_deref(), Some("640502101"));
        let (c, f) = levels_of_code("640502000000").unwrap();
        assert_eq!((f, c[0].as_deref()), (0, Some("640502")));
        let (_, f) = levels_of_code("6405021011030000000").unwrap();
        assert_eq!(f, 2);
        let (c, f) = levels_of_code("6405021011030010000").unwrap();
        assert_eq!((f, c[3].as_deref()), (3, Some("6405021011030010000")));
        assert!(levels_of_code("12").is_none());
        assert!(AdminFields::parse("county=XDM,county_name=XMC").is_ok());
        assert!(AdminFields::parse("province=SDM").is_err());
    }
}
