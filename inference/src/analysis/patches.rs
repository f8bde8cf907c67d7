//! A parcel's violating pixels → patches: grouped by kind (a fishpond with its dikes),
//! majority-smoothed inside the parcel, split into 4-connected components, kept when the
//! rules say so, outlined and measured on an equal-area basis; and the whole-parcel
//! non-grain patch of a PBF parcel.

use super::accumulate::{Candidate, ParcelAcc, QC};
use super::area::EqualArea;
use super::tile::dominant;
use super::M2_PER_MU;
use crate::error::Result;
use crate::farmland::Parcel;
use crate::rasterize::{ParcelMask, PixelPolygon};
use crate::rules::{ChangeKind, PatchEvidence, PixelKind, RulesConfig, SeasonModel};
use crate::vectorize::{components, majority_smooth, outline, Component};
use chrono::NaiveDate;
use gengdi_tiling::GeoTransform;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A suspected-change patch (图斑).
#[derive(Clone, Debug, Serialize)]
pub struct PatchRecord {
    pub id: String,
    pub kind: ChangeKind,
    pub parcel_id: String,
    pub pbf: bool,
    pub area_m2: f64,
    pub area_mu: f64,
    pub county_code: Option<String>,
    pub township_code: Option<String>,
    pub village_code: Option<String>,
    pub group_code: Option<String>,
    pub county_name: Option<String>,
    pub township_name: Option<String>,
    pub village_name: Option<String>,
    pub group_name: Option<String>,
    pub location_name: Option<String>,
    pub class_before: String,
    pub class_after: String,
    pub dates: Vec<NaiveDate>,
    pub confidence: f64,
    pub model_version: String,
    pub status: PatchState,
    /// What triggered the patch, in words, with each rule's threshold.
    pub evidence: String,
    /// Polygons → rings → (x, y) in the analysis grid's CRS.
    #[serde(skip)]
    pub polygons: Vec<Vec<Vec<(f64, f64)>>>,
}

/// Where a patch stands. The analysis reports every patch as pending verification in the
/// field (the service tracks verdicts with its own statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchState {
    Pending,
}

impl PatchState {
    /// The name in the outputs (as serialised).
    pub fn name(self) -> &'static str {
        match self {
            PatchState::Pending => "pending",
        }
    }
}

impl std::fmt::Display for PatchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<&str> for PatchState {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// What turning parcels' evidence into patches needs, set up once per analysis.
pub(super) struct PatchContext<'a> {
    pub rules: &'a RulesConfig,
    /// The model of the tree-planting season check.
    pub tree_check_model: SeasonModel,
    /// The land-cover classes (code = index + 1).
    pub class_names: &'a [String],
    pub model_version: &'a str,
    pub area: &'a EqualArea,
    /// The analysis grid's pixel → world transform.
    pub gt: GeoTransform,
    /// Area of one pixel in the grid's CRS units.
    pub pixel_area_grid: f64,
}

/// One parcel, as the patches see it.
pub(super) struct ParcelView<'a> {
    pub parcel: &'a Parcel,
    /// The parcel in pixel space.
    pub pixel_polys: &'a [PixelPolygon],
    pub acc: &'a ParcelAcc,
    /// The dates on which any of its pixels is clear.
    pub clear_dates: &'a [NaiveDate],
}

/// What a parcel's pixel-level violations came to.
#[derive(Default)]
pub(super) struct PixelPatches {
    pub patches: Vec<PatchRecord>,
    /// Its tree-planting patches were dropped by the season check (`tree_season_veto`,
    /// `tree_annual_crop_veto`).
    pub tree_planting_vetoed: bool,
}

/// Pixel-level violations of a parcel (`mine`: its candidates, sorted by kind, row, column):
/// one patch per 4-connected component of a kind that the rules keep. `tree_check` is the
/// season model's class of the parcel's tree-planting season, if any.
pub(super) fn pixel_patches(
    ctx: &PatchContext<'_>,
    p: &ParcelView<'_>,
    mine: &[Candidate],
    tree_check: Option<&(String, f32)>,
) -> Result<PixelPatches> {
    let mut out = PixelPatches::default();
    // The parcel's pixels around its candidates: smoothing looks two pixels beyond them.
    let Some(mask) = candidate_mask(p.pixel_polys, mine) else {
        return Ok(out);
    };
    let (groups, dike_pixels) = kind_groups(mine, ctx.rules);
    for (kind, group) in groups {
        // Tree planting the season model calls an annual crop is a dense summer canopy.
        let season_check = (kind == PixelKind::TreePlanting)
            .then_some(tree_check)
            .flatten();
        if let Some((class, conf)) = season_check {
            if ctx
                .rules
                .tree_planting_vetoed(ctx.tree_check_model, class, *conf)
            {
                out.tree_planting_vetoed = true;
                continue;
            }
        }
        // Candidates are violations only, each with its patch kind.
        let Some(change) = ChangeKind::of_pixel(kind) else {
            continue;
        };
        let group = KindGroup {
            kind,
            change,
            candidates: &group,
            dike_pixels: &dike_pixels,
            season_check,
        };
        out.patches.extend(group_patches(ctx, p, &group, &mask)?);
    }
    Ok(out)
}

/// The parcel's pixels in the bounding box of its candidates, two pixels wider (None
/// without candidates).
fn candidate_mask(pixel_polys: &[PixelPolygon], mine: &[Candidate]) -> Option<ParcelMask> {
    (!mine.is_empty()).then(|| {
        let (c0, c1) = mine.iter().fold((i32::MAX, i32::MIN), |(a, b), c| {
            (a.min(c.col), b.max(c.col))
        });
        let (r0, r1) = mine.iter().fold((i32::MAX, i32::MIN), |(a, b), c| {
            (a.min(c.row), b.max(c.row))
        });
        let w = |v: i32, d: i64| i64::from(v) + d;
        ParcelMask::new(pixel_polys, w(c0, -2), w(r0, -2), w(c1, 2), w(r1, 2))
    })
}

/// One kind's candidates of a parcel.
struct KindGroup<'a, 'c> {
    kind: PixelKind,
    /// The kind of its patches.
    change: ChangeKind,
    candidates: &'a [&'c Candidate],
    /// The parcel's abandonment pixels that joined its fishpond as dikes.
    dike_pixels: &'a HashSet<(i32, i32)>,
    /// The crop-type model's class of the parcel's tree-planting season (tree planting only).
    season_check: Option<&'a (String, f32)>,
}

/// The patches of one kind's candidates: smoothed inside the parcel, one per component the
/// rules keep.
fn group_patches(
    ctx: &PatchContext<'_>,
    p: &ParcelView<'_>,
    group: &KindGroup<'_, '_>,
    mask: &ParcelMask,
) -> Result<Vec<PatchRecord>> {
    let rules = ctx.rules;
    let kind = group.kind;
    let mut pixels: Vec<(i64, i64)> = group
        .candidates
        .iter()
        .map(|c| (i64::from(c.col), i64::from(c.row)))
        .collect();
    if rules.smooth_patches {
        pixels = smooth_in_parcel(&pixels, mask);
    }
    let info: HashMap<(i64, i64), &Candidate> = group
        .candidates
        .iter()
        .map(|c| ((i64::from(c.col), i64::from(c.row)), *c))
        .collect();
    let mut patches = Vec::new();
    for comp in components(&pixels) {
        if !rules.reaches_mapping_unit((comp.len() as f64 * ctx.pixel_area_grid) / M2_PER_MU) {
            continue;
        }
        let pure_mu = || {
            let pure = comp.iter().filter(|&&(c, r)| mask.pure(c, r)).count();
            (pure as f64 * ctx.pixel_area_grid) / M2_PER_MU
        };
        if !rules.enough_pure_pixels(kind, pure_mu) {
            continue;
        }
        patches.push(component_patch(ctx, p, group, &comp, &info)?);
    }
    Ok(patches)
}

/// The patch of one connected component of a kind's pixels (`info`: the candidates by
/// position; smoothing may have added pixels that are none).
fn component_patch(
    ctx: &PatchContext<'_>,
    p: &ParcelView<'_>,
    group: &KindGroup<'_, '_>,
    comp: &Component,
    info: &HashMap<(i64, i64), &Candidate>,
) -> Result<PatchRecord> {
    let (rules, kind, n_classes) = (ctx.rules, group.kind, ctx.class_names.len());
    let rings = outline(comp);
    let world: Vec<Vec<(f64, f64)>> = rings
        .iter()
        .map(|ring| {
            ring.iter()
                .map(|&(x, y)| ctx.gt.world_from_pixel(x as f64, y as f64))
                .collect()
        })
        .collect();
    let area_m2 = ctx.area.area_m2(std::slice::from_ref(&world))?;
    let mut class_votes = vec![0u64; n_classes + 1];
    let mut base_votes = vec![0u64; n_classes + 1];
    let (mut conf, mut conf_n) = (0u64, 0u64);
    let mut evidence = PatchEvidence::default();
    for px in comp {
        if let Some(cand) = info.get(px) {
            evidence.add(&cand.measures);
            class_votes[cand.class as usize] += 1;
            conf += cand.conf as u64;
            conf_n += 1;
            for (v, n) in base_votes.iter_mut().zip(&cand.baseline) {
                *v += u64::from(*n);
            }
        }
    }
    let after = class_votes
        .iter()
        .enumerate()
        .skip(1)
        .max_by_key(|(i, n)| (**n, usize::MAX - i))
        .and_then(|(i, _)| ctx.class_names.get(i - 1).cloned())
        .unwrap_or_default();
    let mut patch = make_patch(
        ctx,
        p,
        group.change,
        class_before(ctx, p.parcel, &base_votes),
        after,
        area_m2,
        conf as f64 / conf_n.max(1) as f64 / QC,
        vec![world],
    );
    patch.evidence = evidence.describe(kind, rules);
    if kind == PixelKind::Fishpond {
        let dikes = comp
            .iter()
            .filter(|&&(c, r)| group.dike_pixels.contains(&(c as i32, r as i32)))
            .count();
        patch.evidence.push_str(&rules.describe_dikes(dikes));
    }
    if let Some((class, conf)) = group.season_check {
        patch
            .evidence
            .push_str(&rules.describe_tree_check(ctx.tree_check_model, class, *conf));
    }
    Ok(patch)
}

/// Non-grain use on PBF: the whole parcel, when the crop-type model's class of its
/// cultivated season (`crop`) says so and the parcel reaches the mapping unit.
pub(super) fn non_grain_patch(
    ctx: &PatchContext<'_>,
    p: &ParcelView<'_>,
    crop: Option<&(String, f32)>,
) -> Result<Option<PatchRecord>> {
    let rules = ctx.rules;
    if !p.parcel.pbf {
        return Ok(None);
    }
    let Some((name, conf)) = crop else {
        return Ok(None);
    };
    if !rules.non_grain_use(name, *conf) {
        return Ok(None);
    }
    let dates_used = p.acc.dates.iter().filter(|d| d.cultivated > 0).count();
    let evidence = rules.describe_non_grain(*conf, dates_used);
    whole_parcel_patch(
        ctx,
        p,
        ChangeKind::NonGrainPbf,
        "non_grain",
        *conf,
        evidence,
    )
}

/// Tree planting over the whole parcel: when it has no tree-planting patch of its own pixels
/// and the season-cover model's class of the mean season of all its clear pixels (`cover`)
/// is perennial (`tree_season_parcel_min`), and it reaches the mapping unit.
pub(super) fn perennial_parcel_patch(
    ctx: &PatchContext<'_>,
    p: &ParcelView<'_>,
    cover: Option<&(String, f32)>,
) -> Result<Option<PatchRecord>> {
    let rules = ctx.rules;
    let Some((name, conf)) = cover else {
        return Ok(None);
    };
    if !rules.perennial_parcel(name, *conf) {
        return Ok(None);
    }
    let dates_used = p.acc.dates.iter().filter(|d| d.clear > 0).count();
    let evidence = rules.describe_perennial_parcel(*conf, dates_used);
    whole_parcel_patch(
        ctx,
        p,
        ChangeKind::TreePlanting,
        "perennial",
        *conf,
        evidence,
    )
}

/// A patch of the whole parcel (class after `after`), when it reaches the mapping unit.
fn whole_parcel_patch(
    ctx: &PatchContext<'_>,
    p: &ParcelView<'_>,
    kind: ChangeKind,
    after: &str,
    confidence: f32,
    evidence: String,
) -> Result<Option<PatchRecord>> {
    let area_m2 = ctx.area.area_m2(&p.parcel.polygons)?;
    if !ctx.rules.reaches_mapping_unit(area_m2 / M2_PER_MU) {
        return Ok(None);
    }
    let mut patch = make_patch(
        ctx,
        p,
        kind,
        class_before(ctx, p.parcel, &p.acc.baseline),
        after.into(),
        area_m2,
        confidence as f64,
        p.parcel.polygons.clone(),
    );
    patch.evidence = evidence;
    Ok(Some(patch))
}

/// The class before: with a baseline, its dominant class over the patch's pixels
/// (`counts`: clear baseline observations per land-cover code), else the register's.
fn class_before(ctx: &PatchContext<'_>, parcel: &Parcel, counts: &[u64]) -> String {
    let register_class = || {
        parcel
            .land_class_name
            .clone()
            .or_else(|| parcel.land_class.clone())
            .unwrap_or_else(|| "cropland".into())
    };
    match dominant(counts) {
        0 => register_class(),
        k => ctx
            .class_names
            .get(k - 1)
            .cloned()
            .unwrap_or_else(register_class),
    }
}

/// Stable ids: parcel, kind, then position.
pub(super) fn assign_ids(patches: &mut [PatchRecord]) {
    let mut per_key: HashMap<(String, ChangeKind), usize> = HashMap::new();
    for p in patches {
        let n = per_key.entry((p.parcel_id.clone(), p.kind)).or_insert(0);
        *n += 1;
        p.id = format!("{}:{}:{}", p.parcel_id, p.kind, n);
    }
}

/// Majority-smooth one kind's pixels of a parcel, never leaving the parcel (its pixels are
/// those whose centre lies inside it, as in the tiles).
fn smooth_in_parcel(pixels: &[(i64, i64)], parcel: &ParcelMask) -> Vec<(i64, i64)> {
    majority_smooth(pixels, &|c, r| parcel.inside(c, r))
}

#[allow(clippy::too_many_arguments)]
fn make_patch(
    ctx: &PatchContext<'_>,
    p: &ParcelView<'_>,
    kind: ChangeKind,
    before: String,
    after: String,
    area_m2: f64,
    confidence: f64,
    polygons: Vec<Vec<Vec<(f64, f64)>>>,
) -> PatchRecord {
    let parcel = p.parcel;
    PatchRecord {
        id: String::new(),
        kind,
        parcel_id: parcel.id.clone(),
        pbf: parcel.pbf,
        area_m2: (area_m2 * 100.0).round() / 100.0,
        area_mu: (area_m2 / M2_PER_MU * 1000.0).round() / 1000.0,
        county_code: parcel.admin.county_code.clone(),
        township_code: parcel.admin.township_code.clone(),
        village_code: parcel.admin.village_code.clone(),
        group_code: parcel.admin.group_code.clone(),
        county_name: parcel.admin.county_name.clone(),
        township_name: parcel.admin.township_name.clone(),
        village_name: parcel.admin.village_name.clone(),
        group_name: parcel.admin.group_name.clone(),
        location_name: parcel.admin.location_name.clone(),
        class_before: before,
        class_after: after,
        dates: p.clear_dates.to_vec(),
        confidence: (confidence * 1000.0).round() / 1000.0,
        model_version: ctx.model_version.to_string(),
        status: PatchState::Pending,
        evidence: String::new(),
        polygons,
    }
}

/// A parcel's candidates by kind.
type KindGroups<'a> = BTreeMap<PixelKind, Vec<&'a Candidate>>;

/// A parcel's candidates grouped by kind, in kind order. A fishpond's dikes belong to it:
/// the abandonment candidates the rules call its dikes ([`RulesConfig::pond_dikes`]) join
/// the fishpond group; their positions are returned too.
fn kind_groups<'a>(
    mine: &'a [Candidate],
    rules: &RulesConfig,
) -> (KindGroups<'a>, HashSet<(i32, i32)>) {
    let of_kind = |k: PixelKind| {
        mine.iter()
            .filter(move |c| c.kind == k)
            .map(|c| (c.col, c.row))
    };
    let abandonment: Vec<(i32, i32)> = of_kind(PixelKind::Abandonment).collect();
    let dikes = rules.pond_dikes(of_kind(PixelKind::Fishpond), &abandonment);
    let mut groups: KindGroups<'_> = BTreeMap::new();
    for c in mine {
        let kind = if dikes.contains(&(c.col, c.row)) {
            PixelKind::Fishpond
        } else {
            c.kind
        };
        groups.entry(kind).or_default().push(c);
    }
    (groups, dikes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::SeasonMeasures;

    fn dike_px(fishpond_dike_px: usize) -> RulesConfig {
        RulesConfig {
            fishpond_dike_px,
            ..RulesConfig::default()
        }
    }

    fn cand(col: i32, row: i32, kind: PixelKind) -> Candidate {
        Candidate {
            parcel: 1,
            col,
            row,
            kind,
            class: 0,
            conf: 0,
            baseline: Box::new([]),
            measures: SeasonMeasures::default(),
        }
    }

    #[test]
    fn a_pond_s_rim_of_abandonment_pixels_joins_the_pond_and_nothing_else_does() {
        // A 3 × 3 pond at (10..13, 10..13), an abandonment ring around it, one abandonment
        // pixel two steps out and a construction pixel on the ring.
        let mut mine = Vec::new();
        for r in 9..14 {
            for c in 9..14 {
                let inner = (10..13).contains(&r) && (10..13).contains(&c);
                let kind = if inner {
                    PixelKind::Fishpond
                } else if (r, c) == (9, 9) {
                    PixelKind::Construction
                } else {
                    PixelKind::Abandonment
                };
                mine.push(cand(c, r, kind));
            }
        }
        mine.push(cand(14, 11, PixelKind::Abandonment));
        let (groups, dikes) = kind_groups(&mine, &dike_px(1));
        assert_eq!(groups[&PixelKind::Fishpond].len(), 9 + 15);
        assert_eq!(dikes.len(), 15);
        assert_eq!(
            groups[&PixelKind::Abandonment].len(),
            1,
            "two pixels out stays"
        );
        assert_eq!(groups[&PixelKind::Construction].len(), 1);
        // Two steps reach it; without dikes nothing moves.
        let (groups, _) = kind_groups(&mine, &dike_px(2));
        assert!(!groups.contains_key(&PixelKind::Abandonment));
        let (groups, dikes) = kind_groups(&mine, &dike_px(0));
        assert_eq!(groups[&PixelKind::Fishpond].len(), 9);
        assert!(dikes.is_empty());
        // No pond, no dikes.
        let no_pond: Vec<Candidate> = (0..5).map(|c| cand(c, 0, PixelKind::Abandonment)).collect();
        let (groups, dikes) = kind_groups(&no_pond, &dike_px(1));
        assert_eq!(groups[&PixelKind::Abandonment].len(), 5);
        assert!(dikes.is_empty());
    }
}
