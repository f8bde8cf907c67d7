//! Training jobs: `POST /api/v1/training` queues one; a worker of its own (one job at a time,
//! on tokio's blocking pool, like the batch worker) builds the samples and hands them to the
//! [`super::JobExecutor`], which trains, saves the new model into the data dir's registry (not
//! activated) and evaluates the active model on the new model's held-out split.
//!
//! Samples: the shipped tables (`training_tables`, when the request keeps `tables: true`) plus
//! the field verdicts of the chosen batches, as labelled polygons read over each batch's
//! scenes by the code `gengdi train --labels` runs ([`gengdi_inference::labels`]). A patch's
//! polygon is labelled by its current status and the class its latest verdict found on the
//! ground (`class_found`, when recorded):
//!
//! | status | land-cover class |
//! |---|---|
//! | `confirmed` `tree_planting` | `class_found`, else `class_after`, if `tree` or `orchard`; else `tree` |
//! | `confirmed` `fishpond` | `water` |
//! | `confirmed` `construction` | `built` |
//! | `confirmed` `abandonment` | `class_found`, else `class_after`, if `bare` or `grass`; else `bare` |
//! | `confirmed` `non_grain_pbf` | skipped (a crop-type finding: the land is still cropland) |
//! | `false_positive` | `class_found`, else the parcel's register class (`class_before`) as land cover, see [`register_class`]; skipped when it has none |
//!
//! A crop-type job (`task: croptype`) labels each patch's *season* instead (the mean of its
//! clear pixels at each date of the batch's scenes), by [`croptype_label_class`]: confirmed
//! `non_grain_pbf` → `non_grain`, `tree_planting` → `permanent_crop`, `abandonment` →
//! `fallow`; a false `non_grain_pbf` → `grain` (or the class found); other false positives by
//! the class found or the register class (`grass` → `grassland`, `bare` → `fallow`, `tree` and
//! `orchard` → `permanent_crop`; cropland says neither grain nor non-grain and is skipped).
//!
//! The labels of a batch are written to `<data dir>/training/<job>/verdicts-b<batch>.geojson`
//! (WGS 84, property `class`), kept with the job as the record of what it was trained on.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gengdi_models::{CropTypeClass, LandCoverClass, Task};
use serde::{Deserialize, Serialize};

use crate::auth::Scope;
use crate::error::{Result, ServiceError};
use crate::store::{ChangeFilter, ChangeRecord, PatchStatus, Store};

/// Largest `epochs` a request may ask for.
pub const MAX_EPOCHS: usize = 500;

/// `POST /api/v1/training`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingRequest {
    /// `landcover` (the verdicts' patches label pixels) or `croptype` (they label seasons).
    pub task: String,
    /// Batches whose verdicts label samples (default: every batch with verdicts).
    #[serde(default)]
    pub batches: Option<Vec<i64>>,
    /// Maximum epochs (default: the training config's, 80).
    #[serde(default)]
    pub epochs: Option<usize>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Add the shipped labelled tables (default true).
    #[serde(default)]
    pub tables: Option<bool>,
    /// Fine-tune the task's active model (start from its weights and normalisation) instead
    /// of training from scratch (default false).
    #[serde(default)]
    pub fine_tune: Option<bool>,
}

/// What a training job works on (built by the worker, run by the executor).
#[derive(Clone, Debug)]
pub struct TrainingSpec {
    pub job: i64,
    pub task: Task,
    /// Labelled tables (EuroSAT, WorldCereal) to load first.
    pub tables: Vec<PathBuf>,
    /// One label file per batch, read over that batch's scenes.
    pub label_sets: Vec<LabelSet>,
    pub epochs: usize,
    pub seed: Option<u64>,
    /// Start from the task's active model.
    pub fine_tune: bool,
}

/// The verdict labels of one batch.
#[derive(Clone, Debug)]
pub struct LabelSet {
    pub batch: i64,
    /// GeoJSON polygons, property `class`.
    pub labels: PathBuf,
    /// The batch's scenes (canonical paths).
    pub scenes: Vec<PathBuf>,
    /// The verdicts that label, by `kind/verdict`.
    pub verdicts: BTreeMap<String, u64>,
}

/// The land-cover class a `confirmed` patch of `kind` labels its pixels with.
pub fn confirmed_class(kind: &str, class_after: &str) -> Option<LandCoverClass> {
    use LandCoverClass as C;
    let allowed: &[C] = match kind {
        "tree_planting" => &[C::Tree, C::Orchard],
        "fishpond" => &[C::Water],
        "construction" => &[C::Built],
        "abandonment" => &[C::Bare, C::Grass],
        _ => return None,
    };
    let after = class_named(class_after);
    allowed
        .iter()
        .copied()
        .find(|c| Some(*c) == after)
        .or(allowed.first().copied())
}

fn class_named(name: &str) -> Option<LandCoverClass> {
    LandCoverClass::ALL
        .into_iter()
        .find(|c| c.name() == name.trim())
}

/// The land-cover class of a parcel's register land class (`class_before`): a land-cover
/// class name as is; `cropland` → `annual_crop`; a GB/T 21010 code (third national land
/// survey) by its prefix: 01 cropland → `annual_crop`, 0203 rubber → `tree`, other 02
/// gardens → `orchard`, 03 forest → `tree`, 04 grassland → `grass`, 05–10 built land and
/// roads → `built`, 1101–1107 water → `water`, 1109 hydraulic works → `built`, 1204–1207
/// saline, sand, bare soil and rock → `bare`; the survey's names alike (水田 水浇地 旱地 耕地 →
/// `annual_crop`, 果园 茶园 园地 → `orchard`, …林… → `tree`, …草… → `grass`, 坑塘 水库 河流
/// 湖泊 水面 → `water`, 裸 沙地 盐碱 → `bare`, 住宅 建设 工矿 道路 → `built`). Anything
/// else (swamp, glacier, facility farmland, field ridges, idle land, unknown) is `None`.
pub fn register_class(class_before: &str) -> Option<LandCoverClass> {
    use LandCoverClass as C;
    let s = class_before.trim();
    if let Some(c) = class_named(s) {
        return Some(c);
    }
    if s.eq_ignore_ascii_case("cropland") {
        return Some(C::AnnualCrop);
    }
    if s.len() >= 2 && s.chars().all(|c| c.is_ascii_digit()) {
        let major: u32 = s[..2].parse().ok()?;
        let minor = s.get(2..4).and_then(|m| m.parse::<u32>().ok());
        return match (major, minor) {
            (1, _) => Some(C::AnnualCrop),
            (2, Some(3)) => Some(C::Tree),
            (2, _) => Some(C::Orchard),
            (3, _) => Some(C::Tree),
            (4, _) => Some(C::Grass),
            (5..=10, _) => Some(C::Built),
            (11, Some(1..=7)) => Some(C::Water),
            (11, Some(9)) => Some(C::Built),
            (12, Some(4..=7)) => Some(C::Bare),
            _ => None,
        };
    }
    let has = |words: &[&str]| words.iter().any(|w| s.contains(w));
    if has(&["水田", "水浇地", "旱地", "耕地"]) {
        Some(C::AnnualCrop)
    } else if has(&["果园", "茶园", "园地"]) {
        Some(C::Orchard)
    } else if has(&["林"]) {
        Some(C::Tree)
    } else if has(&["草"]) {
        Some(C::Grass)
    } else if has(&["坑塘", "水库", "河流", "湖泊", "水面"]) {
        Some(C::Water)
    } else if has(&["裸", "沙地", "盐碱"]) {
        Some(C::Bare)
    } else if has(&["住宅", "建设", "工矿", "道路"]) {
        Some(C::Built)
    } else {
        None
    }
}

/// The class a patch with a verdict labels its pixels with (`None`: skipped), with what its
/// latest verdict found on the ground (`class_found`) when it was recorded.
pub fn verdict_class(p: &ChangeRecord) -> Option<LandCoverClass> {
    label_class(
        p.status,
        &p.kind,
        &p.class_before,
        &p.class_after,
        class_named(&p.class_found),
    )
}

/// The class a patch of `kind` with verdict `status` labels its pixels with (`None`:
/// skipped): a confirmed patch its violation's class (`found`, what the inspector saw, when
/// it is one of them, else `class_after`'s), a false positive `found` or else its register
/// class.
fn label_class(
    status: PatchStatus,
    kind: &str,
    class_before: &str,
    class_after: &str,
    found: Option<LandCoverClass>,
) -> Option<LandCoverClass> {
    match status {
        PatchStatus::Confirmed => {
            confirmed_class(kind, found.map(|c| c.name()).unwrap_or(class_after))
        }
        PatchStatus::FalsePositive => found.or_else(|| register_class(class_before)),
        _ => None,
    }
}

/// Why a patch with `status` (confirmed or false positive) labels nothing.
fn skipped_reason(status: PatchStatus, kind: &str, class_before: &str) -> String {
    match status {
        PatchStatus::Confirmed => format!("confirmed {kind}: no land-cover class"),
        _ => format!("false_positive: register class {class_before:?} has no land-cover class"),
    }
}

/// The crop-type class a patch of `kind` with verdict `status` labels its season with, for
/// `gengdi train --task croptype --verdicts` (`None`: skipped). The season is the mean of the
/// patch's clear pixels at each date of the batch's scenes:
///
/// | status | crop-type class |
/// |---|---|
/// | `confirmed` `non_grain_pbf` | `non_grain` |
/// | `confirmed` `tree_planting` | `permanent_crop` (perennial woody cover) |
/// | `confirmed` `abandonment` | `fallow` |
/// | `confirmed` `fishpond`, `construction` | skipped (no crop-type class) |
/// | `false_positive` `non_grain_pbf` | the class found, else `grain`: a crop on PBF that is not non-grain |
/// | `false_positive`, other kinds | the class found, else the register class (`class_before`), as crop type: `grass` → `grassland`, `bare` → `fallow`, `tree` and `orchard` → `permanent_crop`; `annual_crop` (cropland) is skipped, since it does not say grain or non-grain, and so are water and built |
pub fn croptype_label_class(
    status: PatchStatus,
    kind: &str,
    class_before: &str,
    found: Option<LandCoverClass>,
) -> Option<CropTypeClass> {
    use CropTypeClass as T;
    use LandCoverClass as C;
    let as_croptype = |c: LandCoverClass| match c {
        C::Grass => Some(T::Grassland),
        C::Bare => Some(T::Fallow),
        C::Tree | C::Orchard => Some(T::PermanentCrop),
        C::AnnualCrop | C::Water | C::Built => None,
    };
    match (status, kind.trim()) {
        (PatchStatus::Confirmed, "non_grain_pbf") => Some(T::NonGrain),
        (PatchStatus::Confirmed, "tree_planting") => Some(T::PermanentCrop),
        (PatchStatus::Confirmed, "abandonment") => Some(T::Fallow),
        (PatchStatus::FalsePositive, "non_grain_pbf") => match found {
            None | Some(C::AnnualCrop) => Some(T::Grain),
            Some(c) => as_croptype(c),
        },
        (PatchStatus::FalsePositive, _) => found
            .or_else(|| register_class(class_before))
            .and_then(as_croptype),
        _ => None,
    }
}

/// Why a patch with `status` labels no crop-type season.
fn croptype_skipped_reason(status: PatchStatus, kind: &str) -> String {
    match status {
        PatchStatus::Confirmed => format!("confirmed {kind}: no crop-type class"),
        _ => format!(
            "false_positive {kind}: the class found (or else the register class) names no \
             crop-type class (cropland does not say grain or non-grain)"
        ),
    }
}

/// The labels of a file of verdicts: an exported change list (`GET /api/v1/changes?…&format=
/// geojson|gpkg`), or any vector file GDAL reads (any CRS) whose features have the fields
/// `kind`, `status` (or `verdict`), `class_before` and `class_after`. Features are labelled
/// by the table above; other statuses (`open`, `rectified`) are skipped. An optional field
/// `class_found` (a land-cover class name: what the inspector found on the ground) labels a
/// false positive instead of its register class, and a confirmed patch when it is one of its
/// kind's classes.
pub fn verdict_file_labels(path: &std::path::Path) -> Result<BatchLabels> {
    verdict_file_labels_for(path, Task::LandCover)
}

/// The labels of a file of verdicts (as [`verdict_file_labels`]) for the model of `task`:
/// land-cover classes of the patches' pixels, or crop-type classes of the patches' seasons
/// ([`croptype_label_class`]). Season-cover models are not labelled from verdicts.
pub fn verdict_file_labels_for(path: &std::path::Path, task: Task) -> Result<BatchLabels> {
    use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
    use gdal::vector::LayerAccess;
    if !matches!(task, Task::LandCover | Task::CropType) {
        return Err(ServiceError::Invalid(format!(
            "verdicts label land-cover and crop-type models, not {task} models"
        )));
    }
    let bad = |reason: String| ServiceError::Invalid(format!("{}: {reason}", path.display()));
    let ds = gdal::Dataset::open(path).map_err(|e| bad(e.to_string()))?;
    let mut layer = ds.layer(0).map_err(|e| bad(e.to_string()))?;
    let names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let index = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    let missing = |what: &str| bad(format!("no field {what} (fields: {})", names.join(", ")));
    let kind_i = index(&["kind"]).ok_or_else(|| missing("kind"))?;
    let status_i = index(&["status", "verdict"]).ok_or_else(|| missing("status or verdict"))?;
    let before_i = index(&["class_before"]);
    let after_i = index(&["class_after"]);
    let id_i = index(&["id", "patch"]);
    let found_i = index(&["class_found"]);
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(|e| bad(e.to_string()))?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_wgs84 = match layer.spatial_ref() {
        Some(mut srs) => {
            srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
            Some(
                gdal::spatial_ref::CoordTransform::new(&srs, &wgs84)
                    .map_err(|e| bad(e.to_string()))?,
            )
        }
        None => None,
    };
    let mut out = BatchLabels::default();
    for (n, feature) in layer.features().enumerate() {
        let text = |i: Option<usize>| {
            i.and_then(|i| feature.field_as_string(i).ok().flatten())
                .unwrap_or_default()
        };
        let (kind, status_text) = (text(Some(kind_i)), text(Some(status_i)));
        let status = match status_text.trim() {
            "confirmed" => PatchStatus::Confirmed,
            "false_positive" => PatchStatus::FalsePositive,
            other => {
                *out.skipped
                    .entry(format!("status {other:?}: not a verdict that labels"))
                    .or_default() += 1;
                continue;
            }
        };
        let (before, after, found) = (text(before_i), text(after_i), text(found_i));
        // What the inspector found on the ground, when the file says.
        let class = match label_for(task, status, &kind, &before, &after, class_named(&found)) {
            Ok(class) => class,
            Err(reason) => {
                *out.skipped.entry(reason).or_default() += 1;
                continue;
            }
        };
        let Some(geometry) = feature.geometry() else {
            *out.skipped.entry("no geometry".into()).or_default() += 1;
            continue;
        };
        let mut geometry = geometry.clone();
        if let Some(t) = &to_wgs84 {
            geometry
                .transform_inplace(t)
                .map_err(|e| bad(e.to_string()))?;
        }
        let json: serde_json::Value = geometry
            .json()
            .ok()
            .and_then(|j| serde_json::from_str(&j).ok())
            .ok_or_else(|| bad(format!("feature {n}: its geometry cannot be written")))?;
        let id = text(id_i).trim().parse::<i64>().unwrap_or(n as i64 + 1);
        *out.labelled.entry(class.to_string()).or_default() += 1;
        *out.verdicts
            .entry(format!("{}/{}", kind.trim(), status.name()))
            .or_default() += 1;
        out.features.push((id, class, json));
    }
    Ok(out)
}

/// The verdict labels of one batch: labelled features and what was skipped, by reason.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BatchLabels {
    pub batch: i64,
    /// `(patch, class name, GeoJSON geometry)`.
    #[serde(skip)]
    pub features: Vec<(i64, &'static str, serde_json::Value)>,
    /// Labelled patches per class.
    pub labelled: BTreeMap<String, usize>,
    /// Patches with a verdict left out, per reason.
    pub skipped: BTreeMap<String, usize>,
    /// Patches that label, by `kind/verdict` (as the model card records them).
    pub verdicts: BTreeMap<String, u64>,
}

impl BatchLabels {
    /// The labels as a GeoJSON FeatureCollection (WGS 84).
    pub fn geojson(&self) -> serde_json::Value {
        let features: Vec<serde_json::Value> = self
            .features
            .iter()
            .map(|(id, class, geometry)| {
                serde_json::json!({
                    "type": "Feature",
                    "properties": {"class": class, "patch": id},
                    "geometry": geometry,
                })
            })
            .collect();
        serde_json::json!({"type": "FeatureCollection", "features": features})
    }
}

/// Every patch of `batch` whose status is `status`, with its geometry.
async fn patches_with_status(
    store: &dyn Store,
    batch: i64,
    status: PatchStatus,
    geometry: bool,
) -> Result<Vec<ChangeRecord>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_changes(
                &Scope::All,
                &ChangeFilter {
                    batch: Some(batch),
                    status: Some(status),
                    limit: 500,
                    after,
                    geometry,
                    ..ChangeFilter::default()
                },
            )
            .await?;
        out.extend(page.items);
        match page.next_after {
            Some(a) => after = Some(a),
            None => return Ok(out),
        }
    }
}

/// The class name a patch of `kind` with verdict `status` labels for the model of `task`: a
/// land-cover class of its pixels ([`label_class`]) or a crop-type class of its season
/// ([`croptype_label_class`]); else why it labels nothing.
fn label_for(
    task: Task,
    status: PatchStatus,
    kind: &str,
    class_before: &str,
    class_after: &str,
    found: Option<LandCoverClass>,
) -> std::result::Result<&'static str, String> {
    match task {
        Task::CropType => croptype_label_class(status, kind, class_before, found)
            .map(|c| c.name())
            .ok_or_else(|| croptype_skipped_reason(status, kind.trim())),
        _ => label_class(status, kind, class_before, class_after, found)
            .map(|c| c.name())
            .ok_or_else(|| skipped_reason(status, kind, class_before)),
    }
}

/// The verdict labels of `batch` for the model of `task` (`geometry`: with the polygons, else
/// only the counts).
pub async fn batch_labels(
    store: &dyn Store,
    batch: i64,
    geometry: bool,
    task: Task,
) -> Result<BatchLabels> {
    let mut out = BatchLabels {
        batch,
        ..BatchLabels::default()
    };
    for status in [PatchStatus::Confirmed, PatchStatus::FalsePositive] {
        for p in patches_with_status(store, batch, status, geometry).await? {
            let found = class_named(&p.class_found);
            match label_for(
                task,
                status,
                &p.kind,
                &p.class_before,
                &p.class_after,
                found,
            ) {
                Ok(class) => {
                    *out.labelled.entry(class.to_string()).or_default() += 1;
                    *out.verdicts
                        .entry(format!("{}/{}", p.kind, status.name()))
                        .or_default() += 1;
                    if let Some(g) = p.geometry {
                        out.features.push((p.id, class, g));
                    }
                }
                Err(reason) => {
                    *out.skipped.entry(reason).or_default() += 1;
                }
            }
        }
    }
    Ok(out)
}

/// Batches with at least one `confirmed` or `false_positive` patch, by id.
pub async fn batches_with_verdicts(store: &dyn Store) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for b in store.list_batches().await? {
        for status in [PatchStatus::Confirmed, PatchStatus::FalsePositive] {
            let page = store
                .list_changes(
                    &Scope::All,
                    &ChangeFilter {
                        batch: Some(b.id),
                        status: Some(status),
                        limit: 1,
                        ..ChangeFilter::default()
                    },
                )
                .await?;
            if page.total > 0 {
                out.push(b.id);
                break;
            }
        }
    }
    Ok(out)
}

/// The tables a training job adds by default: the repository's shipped tables
/// (`fixtures/data/eurosat-ms-samples`, `fixtures/data/worldcereal-s2-timeseries`) found
/// in the current directory or one above it, else in the executable's folder or one above it
/// (the checkout of a `target/debug/gengdi`); none when neither has them.
pub fn default_training_tables() -> Vec<PathBuf> {
    const TABLES: [&str; 2] = [
        "fixtures/data/eurosat-ms-samples",
        "fixtures/data/worldcereal-s2-timeseries",
    ];
    let mut bases: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        bases.extend(cwd.ancestors().map(PathBuf::from));
    }
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        bases.extend(bin.ancestors().map(PathBuf::from));
    }
    for base in bases {
        let found: Vec<PathBuf> = TABLES.iter().map(|t| base.join(t)).collect();
        if found.iter().all(|p| p.is_dir()) {
            return found
                .into_iter()
                .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
                .collect();
        }
    }
    Vec::new()
}

/// The accepted form of a request (defaults filled), as stored with the job.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct AcceptedRequest {
    pub task: String,
    pub batches: Vec<i64>,
    pub epochs: usize,
    pub seed: Option<u64>,
    pub tables: bool,
    /// Absent in jobs stored before it was asked for: from scratch.
    #[serde(default)]
    pub fine_tune: bool,
}

/// Build a job's spec: write each batch's labels under `dir` (created).
pub async fn spec(
    store: &dyn Store,
    job: i64,
    request: &AcceptedRequest,
    tables: &[PathBuf],
    dir: &std::path::Path,
) -> Result<TrainingSpec> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| ServiceError::Io { path, source }
    };
    let task: Task = request
        .task
        .parse()
        .map_err(|_| ServiceError::Invalid(format!("unknown task {:?}", request.task)))?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut label_sets = Vec::new();
    for &batch in &request.batches {
        let b = store
            .batch(batch)
            .await?
            .ok_or_else(|| ServiceError::Invalid(format!("batch {batch} is gone")))?;
        let labels = batch_labels(store, batch, true, task).await?;
        if labels.features.is_empty() {
            continue;
        }
        let path = dir.join(format!("verdicts-b{batch}.geojson"));
        std::fs::write(&path, labels.geojson().to_string()).map_err(io(&path))?;
        label_sets.push(LabelSet {
            batch,
            labels: path,
            scenes: b.scenes.iter().map(PathBuf::from).collect(),
            verdicts: labels.verdicts.clone(),
        });
    }
    Ok(TrainingSpec {
        job,
        task,
        tables: if request.tables {
            tables.to_vec()
        } else {
            Vec::new()
        },
        label_sets,
        epochs: request.epochs,
        seed: request.seed,
        fine_tune: request.fine_tune,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AdminCodes;
    use LandCoverClass as C;

    fn patch(kind: &str, status: PatchStatus, class_after: &str, found: &str) -> ChangeRecord {
        ChangeRecord {
            id: 1,
            batch: 1,
            reference: "r".into(),
            kind: kind.into(),
            status,
            class_found: found.into(),
            area_m2: 1.0,
            area_mu: 1.0,
            parcel: "p".into(),
            pbf: true,
            admin: AdminCodes::default(),
            class_before: "0103".into(),
            class_after: class_after.into(),
            dates: Vec::new(),
            confidence: 0.9,
            model_version: "m".into(),
            evidence: String::new(),
            bbox: [0.0; 4],
            geometry: None,
            series: None,
        }
    }

    #[test]
    fn the_class_found_on_the_ground_labels_the_service_s_verdicts() {
        use PatchStatus::{Confirmed, FalsePositive, Open, Rectified};
        for (kind, status, after, found, want) in [
            // A false positive: what was found, else the register class (0103: cropland).
            (
                "tree_planting",
                FalsePositive,
                "tree",
                "grass",
                Some(C::Grass),
            ),
            ("fishpond", FalsePositive, "water", "", Some(C::AnnualCrop)),
            (
                "fishpond",
                FalsePositive,
                "water",
                "not a class",
                Some(C::AnnualCrop),
            ),
            // Confirmed: what was found when it is one of the kind's classes.
            ("abandonment", Confirmed, "bare", "grass", Some(C::Grass)),
            ("abandonment", Confirmed, "grass", "", Some(C::Grass)),
            (
                "abandonment",
                Confirmed,
                "annual_crop",
                "water",
                Some(C::Bare),
            ),
            (
                "tree_planting",
                Confirmed,
                "tree",
                "orchard",
                Some(C::Orchard),
            ),
            ("construction", Confirmed, "bare", "tree", Some(C::Built)),
            ("non_grain_pbf", Confirmed, "annual_crop", "grass", None),
            // No verdict that labels.
            ("fishpond", Rectified, "water", "", None),
            ("fishpond", Open, "water", "", None),
        ] {
            assert_eq!(
                verdict_class(&patch(kind, status, after, found)),
                want,
                "{kind} {status:?} after {after:?} found {found:?}"
            );
        }
    }

    #[test]
    fn verdicts_label_crop_type_seasons_by_kind_and_what_was_found() {
        use CropTypeClass as T;
        use PatchStatus::{Confirmed, FalsePositive, Open};
        for (status, kind, before, found, want) in [
            (Confirmed, "non_grain_pbf", "0103", None, Some(T::NonGrain)),
            (
                Confirmed,
                "non_grain_pbf",
                "0103",
                Some(C::Grass),
                Some(T::NonGrain),
            ),
            (
                Confirmed,
                "tree_planting",
                "0103",
                None,
                Some(T::PermanentCrop),
            ),
            (
                Confirmed,
                "abandonment",
                "0103",
                Some(C::Grass),
                Some(T::Fallow),
            ),
            (Confirmed, "fishpond", "0103", None, None),
            (Confirmed, "construction", "0103", None, None),
            // A false non-grain flag on PBF: a grain crop, unless something else was found.
            (FalsePositive, "non_grain_pbf", "0103", None, Some(T::Grain)),
            (
                FalsePositive,
                "non_grain_pbf",
                "0103",
                Some(C::AnnualCrop),
                Some(T::Grain),
            ),
            (
                FalsePositive,
                "non_grain_pbf",
                "0103",
                Some(C::Grass),
                Some(T::Grassland),
            ),
            (FalsePositive, "non_grain_pbf", "0103", Some(C::Built), None),
            // Other false positives: what was found, else the register class; cropland does
            // not say grain or non-grain.
            (
                FalsePositive,
                "tree_planting",
                "0103",
                Some(C::Grass),
                Some(T::Grassland),
            ),
            (
                FalsePositive,
                "tree_planting",
                "0103",
                Some(C::Bare),
                Some(T::Fallow),
            ),
            (
                FalsePositive,
                "abandonment",
                "0103",
                Some(C::Orchard),
                Some(T::PermanentCrop),
            ),
            (
                FalsePositive,
                "abandonment",
                "0404",
                None,
                Some(T::Grassland),
            ),
            (
                FalsePositive,
                "tree_planting",
                "0103",
                Some(C::AnnualCrop),
                None,
            ),
            (FalsePositive, "tree_planting", "0103", None, None),
            (FalsePositive, "fishpond", "0103", Some(C::Water), None),
            (Open, "non_grain_pbf", "0103", None, None),
        ] {
            assert_eq!(
                croptype_label_class(status, kind, before, found),
                want,
                "{status:?} {kind} before {before} found {found:?}"
            );
        }
    }
}
