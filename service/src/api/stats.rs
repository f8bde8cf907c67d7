//! `GET /api/v1/stats`: patches and mu per administrative unit, the in/out balance of a
//! period, and the farmland layers against the city's targets.
//!
//! - **Units**: one per code at `level` (`county`, `township`, `village` or `group`, the
//!   patches' own admin codes and names); patches without a code at that level form one unit
//!   with `code: null`.
//! - **Period** (`from`, `to`: `YYYY-MM-DD`, inclusive, each optional): a patch counts (in
//!   `patches`, `mu`, `by_kind`, `by_status` and `out`) when it was *found* in the period:
//!   stored by an analysis (its `created_at`, UTC) on one of the period's days. It counts in
//!   `in` when it was *restored* in the period: its status is `rectified` and a `rectified`
//!   verdict was recorded on one of the period's days.
//! - **Balance** (进出平衡): `out` is cropland turned to another use: patches of the kinds in
//!   [`OUT_KINDS`] (tree planting / orchards, non-grain use of PBF, fishponds, construction)
//!   that are not `false_positive`; abandonment is idle cropland, not cropland lost, and is
//!   not in `out`. `in` is cropland restored (`rectified`, whatever the kind). `net_mu` is
//!   `in.mu - out.mu` (negative: more lost than restored).
//! - **Targets**: the cropland and PBF area (`area_mu`, `pbf_area_mu`) of the farmland layer
//!   the batch analysed (with `batch`), else summed over every registered layer, against the
//!   configured targets; `gap_mu` is `target - area` (positive: short of the target). The
//!   layers are city-wide, not scoped: an inspector gets `targets: null`.
//!
//! Areas are rounded to 0.001 mu. An inspector's scope is applied by the store's query, so
//! their units are only those of their region.

use axum::extract::State;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::AppState;
use crate::auth::{check_region_code, Principal, Role, Scope};
use crate::store::{AdminLevel, PatchStatus, StatsFilter, StatsRow};

/// Who may ask (inspectors within their region).
pub const ROLES: [Role; 4] = [Role::Admin, Role::Centre, Role::Inspector, Role::Researcher];

/// The patch kinds that are cropland turned to another use (the analysis's kind names:
/// `inference::rules::PixelKind` and the crop-type model's `non_grain_pbf`).
pub const OUT_KINDS: [&str; 4] = ["tree_planting", "non_grain_pbf", "fishpond", "construction"];

/// `GET /api/v1/stats` query.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    pub level: Option<String>,
    pub region: Option<String>,
    pub batch: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A number of patches and their area.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct Tally {
    pub patches: i64,
    pub mu: f64,
}

impl Tally {
    fn add(&mut self, patches: i64, mu: f64) {
        self.patches += patches;
        self.mu += mu;
    }

    fn rounded(mut self) -> Tally {
        self.mu = round_mu(self.mu);
        self
    }
}

/// The in/out balance of a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct Balance {
    pub out: Tally,
    #[serde(rename = "in")]
    pub restored: Tally,
    pub net_mu: f64,
}

/// Figures of a unit (or of all of them).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Figures {
    pub patches: i64,
    pub mu: f64,
    pub by_kind: BTreeMap<String, Tally>,
    /// Every status, zeros included.
    pub by_status: BTreeMap<String, Tally>,
    pub balance: Balance,
}

/// One administrative unit's figures.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Unit {
    /// The unit's code at the level; null for patches without one.
    pub code: Option<String>,
    pub name: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
}

fn round_mu(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl Default for Figures {
    fn default() -> Figures {
        Figures {
            patches: 0,
            mu: 0.0,
            by_kind: BTreeMap::new(),
            by_status: [
                PatchStatus::Open,
                PatchStatus::Confirmed,
                PatchStatus::FalsePositive,
                PatchStatus::Rectified,
            ]
            .into_iter()
            .map(|s| (s.name().to_string(), Tally::default()))
            .collect(),
            balance: Balance::default(),
        }
    }
}

impl Figures {
    fn add(&mut self, r: &StatsRow) {
        if r.found > 0 {
            self.patches += r.found;
            self.mu += r.found_mu;
            self.by_kind
                .entry(r.kind.clone())
                .or_default()
                .add(r.found, r.found_mu);
            self.by_status
                .entry(r.status.name().to_string())
                .or_default()
                .add(r.found, r.found_mu);
            if OUT_KINDS.contains(&r.kind.as_str()) && r.status != PatchStatus::FalsePositive {
                self.balance.out.add(r.found, r.found_mu);
            }
        }
        if r.restored > 0 {
            self.balance.restored.add(r.restored, r.restored_mu);
        }
    }

    fn finish(self) -> Figures {
        let out = self.balance.out.rounded();
        let restored = self.balance.restored.rounded();
        Figures {
            patches: self.patches,
            mu: round_mu(self.mu),
            by_kind: self
                .by_kind
                .into_iter()
                .map(|(k, t)| (k, t.rounded()))
                .collect(),
            by_status: self
                .by_status
                .into_iter()
                .map(|(k, t)| (k, t.rounded()))
                .collect(),
            balance: Balance {
                net_mu: round_mu(restored.mu - out.mu),
                out,
                restored,
            },
        }
    }
}

/// The units (ordered by code, the unit without a code first) and the totals of the store's
/// grouped rows.
pub fn aggregate(rows: &[StatsRow]) -> (Vec<Unit>, Figures) {
    let mut units: BTreeMap<Option<String>, Unit> = BTreeMap::new();
    let mut totals = Figures::default();
    for r in rows {
        let u = units.entry(r.code.clone()).or_insert_with(|| Unit {
            code: r.code.clone(),
            name: None,
            figures: Figures::default(),
        });
        if u.name.is_none() {
            u.name.clone_from(&r.name);
        }
        u.figures.add(r);
        totals.add(r);
    }
    (
        units
            .into_values()
            .map(|u| Unit {
                figures: u.figures.finish(),
                ..u
            })
            .collect(),
        totals.finish(),
    )
}

/// `GET /api/v1/stats` (see the module docs).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Stats {
    pub level: AdminLevel,
    pub region: Option<String>,
    pub batch: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Ordered by code, the unit without a code first.
    pub units: Vec<Unit>,
    pub totals: Figures,
    /// Null for an inspector (the layers are city-wide).
    pub targets: Option<Targets>,
}

/// A layer area against its target.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct TargetGap {
    pub target_mu: f64,
    pub area_mu: f64,
    /// `target_mu - area_mu`: positive when short of the target.
    pub gap_mu: f64,
}

impl TargetGap {
    fn new(target_mu: f64, area_mu: f64) -> TargetGap {
        TargetGap {
            target_mu,
            area_mu: round_mu(area_mu),
            gap_mu: round_mu(target_mu - area_mu),
        }
    }
}

/// The farmland layers against the targets.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Targets {
    /// The farmland layers summed.
    pub layers: Vec<i64>,
    pub cropland: TargetGap,
    pub pbf: TargetGap,
}

fn check_day(what: &str, v: &Option<String>) -> ApiResult<()> {
    if let Some(d) = v {
        // Exactly `YYYY-MM-DD`: the store compares the text with its timestamps' first ten
        // characters.
        let ok = d.len() == 10 && chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok();
        if !ok {
            return Err(ApiError::bad_request(format!(
                "{what} {d:?}: a day as YYYY-MM-DD"
            )));
        }
    }
    Ok(())
}

/// `GET /api/v1/stats?level=&region=&batch=&from=&to=` → `{level, region, batch, from, to,
/// units, totals, targets}` (see the module docs).
pub async fn stats(
    State(state): State<AppState>,
    who: Principal,
    query: Result<ApiQuery<StatsQuery>, ApiError>,
) -> ApiResult<Json<Stats>> {
    who.require(&ROLES)?;
    let ApiQuery(q) = query?;
    let level = match q.level.as_deref() {
        None => AdminLevel::County,
        Some(l) => AdminLevel::parse(l).ok_or_else(|| {
            ApiError::bad_request(format!(
                "level {l:?}: one of county, township, village, group"
            ))
        })?,
    };
    if let Some(r) = &q.region {
        check_region_code(r).map_err(ApiError::from)?;
    }
    check_day("from", &q.from)?;
    check_day("to", &q.to)?;
    if let (Some(f), Some(t)) = (&q.from, &q.to) {
        if f > t {
            return Err(ApiError::bad_request(format!("from {f} is after to {t}")));
        }
    }
    let scope = who.scope();
    let filter = StatsFilter {
        level,
        region: q.region.clone(),
        batch: q.batch,
        from: q.from.clone(),
        to: q.to.clone(),
    };
    let rows = state.store().stats(&scope, &filter).await?;
    let (units, totals) = aggregate(&rows);
    let targets = match scope {
        Scope::Region(_) => None,
        Scope::All => Some(targets(&state, q.batch).await?),
    };
    Ok(Json(Stats {
        level,
        region: q.region,
        batch: q.batch,
        from: q.from,
        to: q.to,
        units,
        totals,
        targets,
    }))
}

async fn targets(state: &AppState, batch: Option<i64>) -> ApiResult<Targets> {
    let store = state.store();
    let layers = match batch {
        Some(b) => {
            let batch = store
                .batch(b)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no batch {b}")))?;
            store.farmland(batch.farmland).await?.into_iter().collect()
        }
        None => store.list_farmland().await?,
    };
    let (cropland, pbf) = layers
        .iter()
        .fold((0.0, 0.0), |(c, p), l| (c + l.area_mu, p + l.pbf_area_mu));
    let t = state.targets();
    Ok(Targets {
        layers: layers.iter().map(|l| l.id).collect(),
        cropland: TargetGap::new(t.0, cropland),
        pbf: TargetGap::new(t.1, pbf),
    })
}
