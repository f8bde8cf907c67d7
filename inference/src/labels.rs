//! Researchers' own labels: labelled points or polygons (any vector format GDAL/OGR reads,
//! any CRS) over a scene stack, turned into the training samples of the models crate.
//!
//! - A feature's class is read from a field the user names, through an optional mapping
//!   `value=class,…` (e.g. land-survey codes → model classes); a value that is a class name of
//!   the task is used as is. Features with another value are skipped and counted per value.
//! - Geometries are reprojected to the stack grid's CRS. A point labels the pixel it falls in;
//!   a polygon (multipolygon, holes respected) labels the pixels whose centre lies inside
//!   ([`crate::rasterize::burn`], the rule the season analysis uses).
//! - A pixel claimed by two features of one class is kept once (first feature); a pixel in
//!   features of different classes is dropped.
//! - An observation is a (pixel, date) whose model bands are all valid (finite, not nodata)
//!   and, when the stack has an `SCL` band, whose SCL class is clear.
//! - Land cover: one [`PixelSample`] per observation, grouped by feature (`<file stem>:<FID>`,
//!   or the value of a group field), so a split never separates a feature's pixels.
//!   Crop type: one [`SeriesSample`] per feature, each date the mean of its clear pixels.
//!
//! Every feature is accounted for in the [`LabelReport`]: used, or skipped with the reason.

use crate::error::{InferenceError, Result};
use crate::farmland::{
    feature_geometry, gdal_error, layer_transform, open_vector_layer, polygons_of, Rejected,
    UsableGeometry,
};
use crate::rasterize::{burn, pixel_bbox, pixel_polygons};
use chrono::{Datelike, NaiveDate};
use gdal::vector::{Geometry, LayerAccess, OGRwkbGeometryType};
use gengdi_models::features::{BANDS, N_BANDS};
use gengdi_models::samples::{
    file_digest, CropTypeSamples, DataFingerprint, FileDigest, LandCoverSamples, Observation,
    PixelSample, SeriesSample, SeriesSamples,
};
use gengdi_models::{LandCoverClass, SeriesClass, Task};
use gengdi_tiling::{gdal_log, AnalysisGrid, Scene, SceneStack, StackOptions};
use ndarray::Array2;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// How to read label files.
#[derive(Clone, Debug)]
pub struct LabelOptions {
    /// The field holding each feature's class value (matched case-insensitively).
    pub class_field: String,
    /// Class value → class name of the task (`1300` → `grass`).
    pub class_map: BTreeMap<String, String>,
    /// A field whose value groups features for the split (e.g. a field id shared by several
    /// points); by default every feature is its own group.
    pub group_field: Option<String>,
    /// Tile side used to read the stack (memory ∝ tile² × dates × bands).
    pub tile_size: usize,
    /// SCL classes that are not a clear view (used when the stack has an `SCL` band).
    pub scl_not_clear: Vec<u8>,
}

impl LabelOptions {
    /// Options with the class field, no mapping, and the season analysis's SCL rule.
    pub fn new(class_field: impl Into<String>) -> LabelOptions {
        LabelOptions {
            class_field: class_field.into(),
            class_map: BTreeMap::new(),
            group_field: None,
            tile_size: 512,
            scl_not_clear: crate::rules::RulesConfig::default().scl_not_clear,
        }
    }
}

/// Parse `value=class,value=class,…` (spaces around items are ignored).
pub fn parse_class_map(spec: &str) -> Result<BTreeMap<String, String>> {
    let bad = |reason: String| InferenceError::Config {
        what: "--class-map".into(),
        reason,
    };
    let mut map = BTreeMap::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((value, class)) = part.split_once('=') else {
            return Err(bad(format!("{part:?} is not value=class")));
        };
        let (value, class) = (value.trim(), class.trim());
        if value.is_empty() || class.is_empty() {
            return Err(bad(format!("{part:?} is not value=class")));
        }
        if let Some(old) = map.insert(value.to_string(), class.to_string()) {
            if old != class {
                return Err(bad(format!(
                    "value {value:?} is mapped to both {old:?} and {class:?}"
                )));
            }
        }
    }
    Ok(map)
}

/// The stack the labels are read from: the model bands ([`BANDS`]) and, when every date has
/// one, the Sentinel-2 `SCL` band (cloud / shadow mask).
pub fn label_stack(scenes: Vec<Scene>) -> Result<SceneStack> {
    let bands: Vec<String> = BANDS.iter().map(|b| b.to_string()).collect();
    let with_scl: Vec<String> = bands.iter().cloned().chain(["SCL".to_string()]).collect();
    match SceneStack::build(
        scenes.clone(),
        &StackOptions {
            bands: Some(with_scl),
            ..Default::default()
        },
    ) {
        Ok(s) => Ok(s),
        Err(_) => Ok(SceneStack::build(
            scenes,
            &StackOptions {
                bands: Some(bands),
                ..Default::default()
            },
        )?),
    }
}

/// Counts of one class.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassCounts {
    /// Features used.
    pub features: usize,
    /// Pixels of the used features.
    pub pixels: usize,
    /// Land cover: clear (pixel, date) observations; crop type: dated observations of the
    /// features' series.
    pub observations: usize,
}

/// What happened to the features of one file. Every feature is counted exactly once:
/// `features = used + no_class_value + Σ unmapped + rejected + outside + no_pixel_centre +
/// no_own_pixel + no_clear_observation`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LabelFileReport {
    pub path: PathBuf,
    /// The field the class was read from (as spelt in the file).
    pub class_field: String,
    /// The file's CRS (name and EPSG code when known).
    pub source_crs: Option<String>,
    pub features: usize,
    pub used: usize,
    /// Used features by geometry kind.
    pub points: usize,
    pub polygons: usize,
    /// Features whose class field is empty / NULL.
    pub no_class_value: usize,
    /// Class values neither mapped nor a class name of the task → number of features.
    pub unmapped: BTreeMap<String, usize>,
    /// Features with an unusable geometry (none, empty, not repairable, not a point or
    /// polygon, not reprojectable), with the reason.
    pub rejected: Vec<Rejected>,
    /// Features whose geometry was invalid and repaired (they are used or skipped as usual).
    pub repaired: usize,
    /// Features whose curved geometry (arcs) was linearised.
    pub linearised: usize,
    /// Features that do not touch the imagery's extent (or, for points, lie on its edge).
    pub outside: usize,
    /// Polygons over the imagery that contain no pixel centre (slivers, tiny polygons).
    pub no_pixel_centre: usize,
    /// Features all of whose pixels belong to other features (an earlier feature of the same
    /// class, or features of another class).
    pub no_own_pixel: usize,
    /// Features with no clear observation at any date.
    pub no_clear_observation: usize,
}

impl LabelFileReport {
    /// Features not used, whatever the reason.
    pub fn skipped(&self) -> usize {
        self.features - self.used
    }
}

/// What reading the labels over the stack gave.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LabelReport {
    pub task: String,
    pub files: Vec<LabelFileReport>,
    /// Dates of the stack.
    pub dates: Vec<Option<NaiveDate>>,
    /// Whether the stack has an SCL band (clouds and shadows masked).
    pub scl: bool,
    /// Pixels of the used features (after overlaps were resolved).
    pub pixels: usize,
    /// Pixels in several features of one class, kept once.
    pub pixels_shared: usize,
    /// Pixels in features of different classes, dropped.
    pub pixels_conflicting: usize,
    /// (pixel, date) pairs kept and dropped (nodata, or not clear by SCL).
    pub observations: usize,
    pub observations_dropped: usize,
    /// Per class of the task (classes with no feature are absent).
    pub per_class: BTreeMap<String, ClassCounts>,
}

impl fmt::Display for LabelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.files {
            writeln!(
                f,
                "labels {} (class field {}, CRS {}): {} features, {} used ({} points, {} polygons), {} skipped",
                r.path.display(),
                r.class_field,
                r.source_crs.as_deref().unwrap_or("?"),
                r.features,
                r.used,
                r.points,
                r.polygons,
                r.skipped()
            )?;
            if !r.unmapped.is_empty() {
                let values: Vec<String> = r
                    .unmapped
                    .iter()
                    .map(|(v, n)| format!("{v} ({n})"))
                    .collect();
                writeln!(
                    f,
                    "  skipped, class value not mapped (value (features)): {}",
                    values.join(", ")
                )?;
            }
            for (n, what) in [
                (r.no_class_value, "no class value"),
                (r.outside, "outside the imagery"),
                (r.no_pixel_centre, "no pixel centre inside"),
                (
                    r.no_own_pixel,
                    "every pixel also in an earlier feature or in one of another class",
                ),
                (r.no_clear_observation, "no clear observation"),
            ] {
                if n > 0 {
                    writeln!(f, "  skipped, {what}: {n}")?;
                }
            }
            for rej in &r.rejected {
                writeln!(f, "  skipped, feature {}: {}", rej.id, rej.reason)?;
            }
            if r.repaired > 0 {
                writeln!(f, "  repaired geometries: {}", r.repaired)?;
            }
            if r.linearised > 0 {
                writeln!(f, "  linearised curved geometries: {}", r.linearised)?;
            }
        }
        writeln!(
            f,
            "stack: {} date(s) ({}), {}",
            self.dates.len(),
            self.dates
                .iter()
                .map(|d| d.map(|d| d.to_string()).unwrap_or_else(|| "no date".into()))
                .collect::<Vec<_>>()
                .join(", "),
            if self.scl {
                "SCL band: cloudy / shadowed / nodata observations dropped"
            } else {
                "no SCL band: clouds are NOT masked, every date with valid bands is used (pass clear scenes)"
            }
        )?;
        writeln!(
            f,
            "pixels {} ({} in several features of one class, kept once; {} in features of different classes, dropped); observations kept {}, dropped {} (nodata or not clear)",
            self.pixels,
            self.pixels_shared,
            self.pixels_conflicting,
            self.observations,
            self.observations_dropped
        )?;
        writeln!(
            f,
            "{:<16} {:>9} {:>9} {:>13}",
            "class", "features", "pixels", "observations"
        )?;
        for (class, c) in &self.per_class {
            writeln!(
                f,
                "{class:<16} {:>9} {:>9} {:>13}",
                c.features, c.pixels, c.observations
            )?;
        }
        Ok(())
    }
}

/// Class names of the task and the user's mapping onto them.
struct ClassResolver {
    names: Vec<&'static str>,
    map: BTreeMap<String, usize>,
}

impl ClassResolver {
    fn new(task: Task, class_map: &BTreeMap<String, String>) -> Result<ClassResolver> {
        let names = task.class_names();
        let mut map = BTreeMap::new();
        for (value, class) in class_map {
            let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(class)) else {
                return Err(InferenceError::Config {
                    what: "--class-map".into(),
                    reason: format!(
                        "{value}={class}: {class:?} is not a {task} class; the classes are {}",
                        names.join(", ")
                    ),
                });
            };
            map.insert(value.clone(), i);
        }
        Ok(ClassResolver { names, map })
    }

    fn resolve(&self, value: &str) -> Option<usize> {
        self.map.get(value).copied().or_else(|| {
            self.names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(value))
        })
    }
}

/// A feature's shape in the grid CRS.
#[derive(Clone, Debug)]
enum Shape {
    Points(Vec<(f64, f64)>),
    Polygons(Vec<Vec<Vec<(f64, f64)>>>),
}

#[derive(Clone, Debug)]
struct LabelFeature {
    /// Index of the file.
    file: usize,
    /// The split group.
    group: String,
    /// Class index of the task.
    class: usize,
    shape: Shape,
    /// Whether the geometry touches the imagery's extent at all.
    over_imagery: bool,
    /// Pixels (row, col) on the grid, row-major.
    pixels: Vec<(usize, usize)>,
}

/// Every point of a point or multipoint geometry.
fn points_of(g: &Geometry) -> Vec<(f64, f64)> {
    match gdal::vector::geometry_type_flatten(g.geometry_type()) {
        OGRwkbGeometryType::wkbPoint => {
            let (x, y, _) = g.get_point(0);
            vec![(x, y)]
        }
        OGRwkbGeometryType::wkbMultiPoint => (0..g.geometry_count())
            .map(|i| {
                let (x, y, _) = g.get_geometry(i).get_point(0);
                (x, y)
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn field_index(path: &Path, names: &[String], wanted: &str, role: &str) -> Result<usize> {
    names
        .iter()
        .position(|f| f.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| InferenceError::Labels {
            path: path.to_path_buf(),
            reason: format!(
                "no {role} field {wanted:?}; the fields are {}",
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names.join(", ")
                }
            ),
        })
}

/// The short name of a label file: its name without the (last) extension.
fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Read the features of one label file (reprojected to the grid CRS).
fn read_file(
    path: &Path,
    file: usize,
    opts: &LabelOptions,
    classes: &ClassResolver,
    grid: &AnalysisGrid,
) -> Result<(Vec<LabelFeature>, LabelFileReport)> {
    let labels_err = |reason: String| InferenceError::Labels {
        path: path.to_path_buf(),
        reason,
    };
    let ds = open_vector_layer(path, "labels", labels_err)?;
    let mut layer = ds.layer(0).map_err(|e| gdal_error(path, e))?;
    let _scope = gdal_log::scope(format!(
        "reading label layer {:?} of {}",
        layer.name(),
        path.display()
    ));
    let (source_crs, transform) = layer_transform(path, &layer, &grid.crs, labels_err)?;
    let names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let class_idx = field_index(path, &names, &opts.class_field, "class")?;
    let group_idx = match &opts.group_field {
        Some(g) => Some(field_index(path, &names, g, "group")?),
        None => None,
    };
    let stem = file_stem(path);
    let b = grid.bounds();
    let extent = Geometry::bbox(b[0], b[1], b[2], b[3]).map_err(|e| gdal_error(path, e))?;
    let mut report = LabelFileReport {
        path: path.to_path_buf(),
        class_field: names[class_idx].clone(),
        source_crs: source_crs.as_ref().map(|c| match c.epsg {
            Some(e) => format!("EPSG:{e}"),
            None => c.name.clone(),
        }),
        ..Default::default()
    };
    let mut features = Vec::new();
    for feature in layer.features() {
        report.features += 1;
        let id = feature
            .fid()
            .map(|f| f.to_string())
            .unwrap_or_else(|| format!("#{}", report.features));
        let _feature_scope = gdal_log::scope(format!("feature {id}"));
        let text = |i: usize| {
            feature
                .field_as_string(i)
                .ok()
                .flatten()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let Some(value) = text(class_idx) else {
            report.no_class_value += 1;
            continue;
        };
        let Some(class) = classes.resolve(&value) else {
            *report.unmapped.entry(value).or_default() += 1;
            continue;
        };
        let reject = |reason: String| Rejected {
            id: format!("FID {id}"),
            reason,
        };
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
        if repaired {
            report.repaired += 1;
        }
        if linearised {
            report.linearised += 1;
        }
        let projected = match geom.transform(&transform) {
            Ok(g) => g,
            Err(e) => {
                report
                    .rejected
                    .push(reject(format!("cannot reproject: {e}")));
                continue;
            }
        };
        let points = points_of(&projected);
        let shape = if !points.is_empty() {
            Shape::Points(points)
        } else {
            let polygons = polygons_of(&projected);
            if polygons.is_empty() {
                report.rejected.push(reject(format!(
                    "not a point or polygon geometry ({})",
                    projected.geometry_name()
                )));
                continue;
            }
            Shape::Polygons(polygons)
        };
        let over_imagery = projected.intersects(&extent);
        let group = match group_idx.and_then(text) {
            Some(g) => format!("{stem}:{g}"),
            None => format!("{stem}:{id}"),
        };
        features.push(LabelFeature {
            file,
            group,
            class,
            shape,
            over_imagery,
            pixels: Vec::new(),
        });
    }
    Ok((features, report))
}

/// Where a feature lands on the grid.
enum Footprint {
    Outside,
    NoPixelCentre,
    Pixels(Vec<(usize, usize)>),
}

/// Rows rasterised at a time (bounds memory for polygons as large as the grid).
const ROW_BAND: usize = 256;

fn footprint(feature: &LabelFeature, grid: &AnalysisGrid) -> Footprint {
    if !feature.over_imagery {
        return Footprint::Outside;
    }
    let (w, h) = (grid.width as i64, grid.height as i64);
    match &feature.shape {
        Shape::Points(points) => {
            let mut px: Vec<(usize, usize)> = points
                .iter()
                .filter_map(|&(x, y)| grid.world_from_pixel.pixel_from_world(x, y))
                .filter(|(c, r)| c.is_finite() && r.is_finite())
                .map(|(c, r)| (r.floor() as i64, c.floor() as i64))
                .filter(|&(r, c)| (0..h).contains(&r) && (0..w).contains(&c))
                .map(|(r, c)| (r as usize, c as usize))
                .collect();
            px.sort_unstable();
            px.dedup();
            if px.is_empty() {
                // On the extent's edge (or past it by rounding).
                Footprint::Outside
            } else {
                Footprint::Pixels(px)
            }
        }
        Shape::Polygons(polys) => {
            let pix = pixel_polygons(polys, &grid.world_from_pixel);
            let b = pixel_bbox(&pix);
            if !b.iter().all(|v| v.is_finite()) {
                return Footprint::Outside;
            }
            let c0 = (b[0].floor() as i64).max(0);
            let c1 = (b[2].ceil() as i64).min(w);
            let r0 = (b[1].floor() as i64).max(0);
            let r1 = (b[3].ceil() as i64).min(h);
            if c0 >= c1 || r0 >= r1 {
                return Footprint::Outside;
            }
            let cols = (c1 - c0) as usize;
            let mut px = Vec::new();
            let mut r = r0;
            while r < r1 {
                let rows = ((r1 - r) as usize).min(ROW_BAND);
                let mut band = Array2::<u32>::zeros((rows, cols));
                if burn(&mut band, c0, r, &pix, 1) > 0 {
                    for ((rr, cc), v) in band.indexed_iter() {
                        if *v != 0 {
                            px.push(((r as usize) + rr, (c0 as usize) + cc));
                        }
                    }
                }
                r += rows as i64;
            }
            if px.is_empty() {
                Footprint::NoPixelCentre
            } else {
                Footprint::Pixels(px)
            }
        }
    }
}

/// Observations of one pixel: per date the model bands in [`BANDS`] order, `None` when not
/// valid or not clear.
type PixelSeries = Vec<Option<[f32; N_BANDS]>>;

/// The labels read over the stack: features with their pixels and per-pixel observations.
struct Extracted {
    features: Vec<LabelFeature>,
    /// Per feature, per pixel (same order as `feature.pixels`).
    series: Vec<Vec<PixelSeries>>,
    report: LabelReport,
    fingerprint: DataFingerprint,
}

fn extract(
    paths: &[PathBuf],
    opts: &LabelOptions,
    task: Task,
    stack: &SceneStack,
) -> Result<Extracted> {
    if paths.is_empty() {
        return Err(InferenceError::Config {
            what: "labels".into(),
            reason: "no label file was given".into(),
        });
    }
    let classes = ClassResolver::new(task, &opts.class_map)?;
    let band_idx: Vec<usize> = BANDS
        .iter()
        .map(|b| {
            stack
                .band_names
                .iter()
                .position(|s| s.eq_ignore_ascii_case(b))
                .ok_or_else(|| InferenceError::Config {
                    what: "scene stack".into(),
                    reason: format!(
                        "the models need band {b}; the stack has {}",
                        stack.band_names.join(", ")
                    ),
                })
        })
        .collect::<Result<_>>()?;
    let scl = stack
        .band_names
        .iter()
        .position(|b| b.eq_ignore_ascii_case("SCL"));

    // 1. Features, and where they land on the grid.
    let mut features = Vec::new();
    let mut files = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let (mut feats, mut report) = read_file(path, i, opts, &classes, &stack.grid)?;
        feats.retain_mut(|f| match footprint(f, &stack.grid) {
            Footprint::Outside => {
                report.outside += 1;
                false
            }
            Footprint::NoPixelCentre => {
                report.no_pixel_centre += 1;
                false
            }
            Footprint::Pixels(px) => {
                f.pixels = px;
                true
            }
        });
        features.extend(feats);
        files.push(report);
    }

    // 2. Overlaps: a pixel belongs to the first feature claiming it; a pixel claimed by
    // features of different classes is dropped.
    let mut owner: HashMap<(usize, usize), (usize, bool)> = HashMap::new();
    let mut pixels_shared = 0;
    for (fi, f) in features.iter().enumerate() {
        for &p in &f.pixels {
            match owner.get_mut(&p) {
                None => {
                    owner.insert(p, (fi, false));
                }
                Some((first, conflict)) => {
                    if features[*first].class != f.class {
                        *conflict = true;
                    } else {
                        pixels_shared += 1;
                    }
                }
            }
        }
    }
    let pixels_conflicting = owner.values().filter(|(_, c)| *c).count();
    for (fi, f) in features.iter_mut().enumerate() {
        f.pixels
            .retain(|p| owner.get(p).is_some_and(|&(o, c)| o == fi && !c));
    }
    let mut kept = Vec::with_capacity(features.len());
    for f in features {
        if f.pixels.is_empty() {
            // Every pixel was shared: with the same class the first feature has them all
            // (this one adds nothing), otherwise they were dropped.
            files[f.file].no_own_pixel += 1;
        } else {
            kept.push(f);
        }
    }
    let features = kept;

    // 3. Read the tiles that hold labelled pixels.
    let n_dates = stack.layers.len();
    let tiles = stack.tile_grid(opts.tile_size, 0)?;
    let ts = tiles.tile_size;
    let mut buckets: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
    for (fi, f) in features.iter().enumerate() {
        for (pi, &(r, c)) in f.pixels.iter().enumerate() {
            let t = (r / ts) * tiles.tiles_across() + c / ts;
            buckets.entry(t).or_default().push((fi, pi));
        }
    }
    let scl_not_clear = &opts.scl_not_clear;
    let read = stack.par_map_tiles(
        &tiles,
        |t| !buckets.contains_key(&t.index),
        |data| {
            let core = data.core();
            let w = data.tile.core;
            let mut out = Vec::new();
            for &(fi, pi) in buckets
                .get(&data.tile.index)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                let (r, c) = features[fi].pixels[pi];
                let (lr, lc) = (r - w.row_off as usize, c - w.col_off as usize);
                let series: PixelSeries = (0..n_dates)
                    .map(|d| {
                        let mut dn = [0f32; N_BANDS];
                        for (k, &b) in band_idx.iter().enumerate() {
                            dn[k] = core[[d, b, lr, lc]];
                        }
                        let clear = scl.is_none_or(|s| {
                            let v = core[[d, s, lr, lc]];
                            v.is_finite() && !scl_not_clear.contains(&(v as u8))
                        });
                        (clear && dn.iter().all(|v| v.is_finite())).then_some(dn)
                    })
                    .collect();
                out.push((fi, pi, series));
            }
            out
        },
        None,
    )?;
    let mut series: Vec<Vec<PixelSeries>> = features
        .iter()
        .map(|f| vec![Vec::new(); f.pixels.len()])
        .collect();
    for (_, tile) in read {
        for (fi, pi, s) in tile {
            series[fi][pi] = s;
        }
    }

    // 4. Provenance: the label files (with a shapefile's sidecars) and the scenes.
    let mut digests: Vec<FileDigest> = Vec::new();
    let digest = |p: &Path| {
        file_digest(p).map_err(|e| InferenceError::Config {
            what: p.display().to_string(),
            reason: format!("cannot fingerprint: {e}"),
        })
    };
    for path in paths {
        digests.push(digest(path)?);
        let is_shp = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("shp"));
        if is_shp {
            for ext in ["dbf", "shx", "prj", "cpg"] {
                let side = path.with_extension(ext);
                if side.exists() {
                    digests.push(digest(&side)?);
                }
            }
        }
    }
    for s in &stack.scenes {
        digests.push(digest(&s.scene.path)?);
    }
    Ok(Extracted {
        features,
        series,
        report: LabelReport {
            task: task.name().to_string(),
            files,
            dates: stack.layers.iter().map(|l| l.date).collect(),
            scl: scl.is_some(),
            pixels_shared,
            pixels_conflicting,
            ..Default::default()
        },
        fingerprint: DataFingerprint::new(digests),
    })
}

/// The rules the card records for these labels.
fn label_rules(paths: &[PathBuf], opts: &LabelOptions, report: &LabelReport) -> Vec<String> {
    let mapping: Vec<String> = opts
        .class_map
        .iter()
        .map(|(v, c)| format!("{v}->{c}"))
        .collect();
    let mut rules: Vec<String> = paths
        .iter()
        .zip(&report.files)
        .map(|(path, r)| {
            format!(
                "vector labels {} ({}): class field {}, mapping {}; values equal to a class name are used as is, others are skipped ({} of {} features used); a point labels the pixel it falls in, a polygon the pixels whose centre is inside (holes excluded); a pixel in features of different classes is dropped; grouped by {}",
                path.display(),
                report.task,
                r.class_field,
                if mapping.is_empty() {
                    "none".to_string()
                } else {
                    mapping.join(", ")
                },
                r.used,
                r.features,
                opts.group_field
                    .as_deref()
                    .map(|g| format!("field {g}"))
                    .unwrap_or_else(|| "feature (FID)".into())
            )
        })
        .collect();
    rules.push(if report.scl {
        format!(
            "vector labels: an observation is a (pixel, date) with every model band valid and SCL not in {:?}",
            opts.scl_not_clear
        )
    } else {
        "vector labels: an observation is a (pixel, date) with every model band valid; the scenes had no SCL band, so clouds were not masked".to_string()
    });
    rules
}

fn no_labels(report: &LabelReport) -> InferenceError {
    InferenceError::NoLabels {
        report: report.to_string(),
    }
}

/// Land-cover samples from label files over a stack: one [`PixelSample`] per clear (pixel,
/// date) of every labelled pixel, source `vector:<file stem>`, group `<file stem>:<FID>` (or
/// the group field's value), stratum `vector:<class>`. The fingerprint lists the label files
/// and the stack's scene files. Errors when no observation results.
pub fn landcover_samples(
    paths: &[PathBuf],
    opts: &LabelOptions,
    stack: &SceneStack,
) -> Result<(LandCoverSamples, LabelReport)> {
    let ex = extract(paths, opts, Task::LandCover, stack)?;
    let mut report = ex.report;
    let mut out = LandCoverSamples {
        fingerprint: ex.fingerprint,
        ..Default::default()
    };
    for (f, series) in ex.features.iter().zip(&ex.series) {
        let class = LandCoverClass::from_index(f.class).ok_or_else(|| InferenceError::Config {
            what: "labels".into(),
            reason: format!("class index {} is not a land-cover class", f.class),
        })?;
        let file = &mut report.files[f.file];
        let source = format!("vector:{}", file_stem(&file.path));
        let n_obs: usize = series.iter().flatten().filter(|o| o.is_some()).count();
        let n_all: usize = series.iter().map(Vec::len).sum();
        report.observations_dropped += n_all - n_obs;
        *out.rule_counts
            .entry(format!(
                "{source}: observations dropped, nodata or not clear"
            ))
            .or_default() += (n_all - n_obs) as u64;
        if n_obs == 0 {
            file.no_clear_observation += 1;
            continue;
        }
        file.used += 1;
        match f.shape {
            Shape::Points(_) => file.points += 1,
            Shape::Polygons(_) => file.polygons += 1,
        }
        let stratum = format!("vector:{class}");
        for s in series {
            for dn in s.iter().flatten() {
                out.samples.push(PixelSample {
                    source: source.clone(),
                    group: f.group.clone(),
                    stratum: stratum.clone(),
                    class,
                    dn: *dn,
                });
            }
        }
        *out.rule_counts
            .entry(format!("{source}: kept as {class}"))
            .or_default() += n_obs as u64;
        report.pixels += f.pixels.len();
        report.observations += n_obs;
        let c = report.per_class.entry(class.to_string()).or_default();
        c.features += 1;
        c.pixels += f.pixels.len();
        c.observations += n_obs;
    }
    out.rule_counts.retain(|_, v| *v > 0);
    if out.samples.is_empty() {
        return Err(no_labels(&report));
    }
    out.label_rules = label_rules(paths, opts, &report);
    Ok((out, report))
}

/// Crop-type samples from label files over a stack (see [`series_samples`]).
pub fn croptype_samples(
    paths: &[PathBuf],
    opts: &LabelOptions,
    stack: &SceneStack,
) -> Result<(CropTypeSamples, LabelReport)> {
    series_samples(paths, opts, stack)
}

/// Season-model samples (crop type or season cover, by `C`) from label files over a stack:
/// one [`SeriesSample`] per feature whose observation at each date is the mean of the
/// feature's clear pixels (dates without a clear pixel are left out). The season year is the
/// year of the stack's first date; every layer must have a date. Errors when no series
/// results.
pub fn series_samples<C: SeriesClass>(
    paths: &[PathBuf],
    opts: &LabelOptions,
    stack: &SceneStack,
) -> Result<(SeriesSamples<C>, LabelReport)> {
    let dates: Vec<NaiveDate> = stack
        .layers
        .iter()
        .map(|l| l.date)
        .collect::<Option<_>>()
        .ok_or_else(|| InferenceError::Config {
            what: "scenes".into(),
            reason: format!(
                "{} labels need the acquisition date of every scene (set --date, or name files …_YYYYMMDD…)",
                C::TASK
            ),
        })?;
    let season_year = dates.iter().min().map(|d| d.year()).unwrap_or_default();
    let ex = extract(paths, opts, C::TASK, stack)?;
    let mut report = ex.report;
    let mut out = SeriesSamples::<C> {
        fingerprint: ex.fingerprint,
        ..Default::default()
    };
    for (f, series) in ex.features.iter().zip(&ex.series) {
        let class = *C::all()
            .get(f.class)
            .ok_or_else(|| InferenceError::Config {
                what: "labels".into(),
                reason: format!("class index {} is not a {} class", f.class, C::TASK),
            })?;
        let file = &mut report.files[f.file];
        let source = format!("vector:{}", file_stem(&file.path));
        let mut observations = Vec::new();
        for (d, date) in dates.iter().enumerate() {
            let mut sum = [0f64; N_BANDS];
            let mut n = 0usize;
            for dn in series.iter().filter_map(|s| s.get(d).copied().flatten()) {
                for (a, v) in sum.iter_mut().zip(dn) {
                    *a += f64::from(v);
                }
                n += 1;
            }
            let all = series.iter().filter(|s| s.len() > d).count();
            report.observations_dropped += all - n;
            if n > 0 {
                observations.push(Observation {
                    date: *date,
                    dn: sum.map(|v| (v / n as f64) as f32),
                });
            }
        }
        if observations.is_empty() {
            file.no_clear_observation += 1;
            *out.rule_counts
                .entry(format!("{source}: dropped, no clear observation"))
                .or_default() += 1;
            continue;
        }
        observations.sort_by_key(|o| o.date);
        file.used += 1;
        match f.shape {
            Shape::Points(_) => file.points += 1,
            Shape::Polygons(_) => file.polygons += 1,
        }
        let clear_pixel_dates: usize = series.iter().flatten().filter(|o| o.is_some()).count();
        report.observations += clear_pixel_dates;
        report.pixels += f.pixels.len();
        let c = report.per_class.entry(class.to_string()).or_default();
        c.features += 1;
        c.pixels += f.pixels.len();
        c.observations += observations.len();
        *out.rule_counts
            .entry(format!("{source}: {class}"))
            .or_default() += 1;
        out.samples.push((
            SeriesSample {
                source,
                group: f.group.clone(),
                ewoc_code: 0,
                lc10_class: class.to_string(),
                season_year,
                invalid_observations: dates.len() - observations.len(),
                observations,
            },
            class,
        ));
    }
    if out.samples.is_empty() {
        return Err(no_labels(&report));
    }
    out.label_rules = label_rules(paths, opts, &report);
    Ok((out, report))
}
