//! Per-parcel season decisions: the crop-type model over parcels' mean seasons, and each
//! parcel's verdict ([`ParcelStatus`]) from its accumulated evidence.

use super::accumulate::{ParcelAcc, Q, QC};
use super::evidence::{date_evidence, DateEvidence};
use super::{AnalysisInput, SeasonClassifier};
use crate::error::{InferenceError, Result};
use crate::farmland::{AdminUnits, Parcel};
use crate::rules::{ChangeKind, PixelKind, RulesConfig, SeasonModel};
use chrono::NaiveDate;
use gengdi_tiling::SceneStack;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A parcel's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ParcelStatus {
    pub parcel_id: String,
    pub pbf: bool,
    /// Codes and names of the administrative units (from the parcel's attributes, else the
    /// `--admin` layer).
    #[serde(flatten)]
    pub admin: AdminUnits,
    pub status: ParcelState,
    pub pixels: u64,
    /// Pixels per season kind.
    pub kinds: BTreeMap<String, u64>,
    /// Clear pixels per date.
    pub clear_pixels: Vec<u64>,
    /// Mean NDVI of clear pixels per date (None without any).
    pub mean_ndvi: Vec<Option<f64>>,
    /// Per date: land-cover class fractions and mean spectral indices of the clear pixels
    /// (None without any) — the parcel's evidence time series.
    pub evidence: Vec<Option<DateEvidence>>,
    /// Crop type over the season (PBF and cultivated parcels), with confidence.
    pub crop_type: Option<(String, f32)>,
    /// The season model's class of the mean season of the parcel's tree-planting pixels, with
    /// confidence (parcels with such pixels, when a season model is loaded: the season-cover
    /// model, else the crop-type model). Anything but perennial cover (season cover), or an
    /// annual crop (crop type), drops the parcel's tree-planting patches (`tree_season_veto`,
    /// `tree_annual_crop_veto`).
    pub tree_check: Option<(String, f32)>,
    /// The kinds of its patches, in the order of their names.
    pub flags: Vec<ChangeKind>,
}

/// What the analysis concluded about a parcel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParcelState {
    /// Analysed, nothing to report.
    Ok,
    /// At least one patch (see the parcel's flags).
    Flagged,
    /// Too many of its pixels lack clear observations (`max_insufficient_fraction`).
    InsufficientObservations,
    /// No pixel centre of the imagery grid lies in the parcel (outside the scenes, or
    /// smaller than a pixel), or none of its pixels has a value on any date.
    NotCovered,
}

impl ParcelState {
    /// The name in the outputs (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            ParcelState::Ok => "ok",
            ParcelState::Flagged => "flagged",
            ParcelState::InsufficientObservations => "insufficient_observations",
            ParcelState::NotCovered => "not_covered",
        }
    }
}

impl std::fmt::Display for ParcelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ParcelState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
/// Per date: how many pixels, and their Σ round(DN·Q) of the model bands.
type SeasonSums<'a> = Vec<(u64, &'a Vec<i64>)>;

/// What the season models said of the parcels' seasons, by parcel label.
pub(super) struct SeasonChecks {
    /// Crop type of the mean season of a PBF parcel's cultivated pixels.
    pub crop: HashMap<u32, (String, f32)>,
    /// Class of the mean season of a parcel's tree-planting pixels, by `tree_check_model`.
    pub tree_check: HashMap<u32, (String, f32)>,
    /// The model of the tree-planting check: the season-cover model when loaded, else the
    /// crop-type model.
    pub tree_check_model: SeasonModel,
    /// The season-cover model's class of the mean season of every clear pixel of a monitored
    /// parcel (empty without a season-cover model).
    pub cover: HashMap<u32, (String, f32)>,
}

impl SeasonChecks {
    /// Crop type for PBF parcels with a cultivated season (empty without a crop-type model),
    /// and the season check of the parcels with tree-planting pixels (empty without a season
    /// model).
    pub fn of(
        input: &AnalysisInput<'_>,
        acc: &BTreeMap<u32, ParcelAcc>,
        stack: &SceneStack,
    ) -> Result<SeasonChecks> {
        let crop = season_classes(input, input.croptype, acc, stack, |p, a| {
            p.pbf.then(|| {
                a.dates
                    .iter()
                    .map(|d| (d.cultivated, &d.band_sums))
                    .collect()
            })
        })?;
        let (tree_model, tree_check_model) = match input.season_cover {
            Some(sc) => (Some(sc), SeasonModel::SeasonCover),
            None => (input.croptype, SeasonModel::CropType),
        };
        let tree_check = season_classes(input, tree_model, acc, stack, |_, a| {
            (a.kinds[PixelKind::TreePlanting as usize] > 0).then(|| {
                a.dates
                    .iter()
                    .map(|d| (d.woody, &d.woody_band_sums))
                    .collect()
            })
        })?;
        let cover = season_classes(input, input.season_cover, acc, stack, |p, a| {
            input
                .rules
                .monitors(p.land_class.as_deref(), p.pbf)
                .then(|| {
                    a.dates
                        .iter()
                        .map(|d| (d.clear, &d.clear_band_sums))
                        .collect()
                })
        })?;
        Ok(SeasonChecks {
            crop,
            tree_check,
            tree_check_model,
            cover,
        })
    }
}

/// A season model's class of a season of mean spectra per parcel: `sums` picks the parcels
/// and, per date, the pixel count and band sums to average (dates without pixels are left
/// out; fewer than `min_clear_dates` dates and the parcel gets no class).
fn season_classes<'a>(
    input: &AnalysisInput<'_>,
    model: Option<&dyn SeasonClassifier>,
    acc: &'a BTreeMap<u32, ParcelAcc>,
    stack: &SceneStack,
    sums: impl Fn(&Parcel, &'a ParcelAcc) -> Option<SeasonSums<'a>>,
) -> Result<HashMap<u32, (String, f32)>> {
    let Some(ct) = model else {
        return Ok(HashMap::new());
    };
    // The season model's bands, found among the land-cover model's bands.
    let lc_bands = input.landcover.bands();
    let pos: Vec<usize> = ct
        .bands()
        .iter()
        .map(|b| {
            lc_bands
                .iter()
                .position(|x| x.eq_ignore_ascii_case(b))
                .ok_or_else(|| InferenceError::Config {
                    what: "season model".into(),
                    reason: format!("needs band {b}, which the land-cover inputs do not carry"),
                })
        })
        .collect::<Result<_>>()?;
    let mut ids = Vec::new();
    let mut series = Vec::new();
    for p in &input.farmland.parcels {
        let Some(a) = acc.get(&p.index) else { continue };
        let Some(per_date) = sums(p, a) else { continue };
        let obs: Vec<(NaiveDate, Vec<f32>)> = per_date
            .into_iter()
            .zip(&stack.layers)
            .filter(|((n, s), _)| *n > 0 && !s.is_empty())
            .filter_map(|((n, s), layer)| {
                layer.date.map(|date| {
                    (
                        date,
                        pos.iter()
                            .map(|&k| (s[k] as f64 / Q / n as f64) as f32)
                            .collect(),
                    )
                })
            })
            .collect();
        if input.rules.enough_clear_dates(obs.len()) {
            ids.push(p.index);
            series.push(obs);
        }
    }
    if series.is_empty() {
        return Ok(HashMap::new());
    }
    let names = ct.class_names();
    let out = ct
        .classify(&series)
        .map_err(|source| InferenceError::Model {
            what: "season model",
            source,
        })?;
    Ok(ids
        .into_iter()
        .zip(out)
        .filter(|(_, (code, _))| *code > 0)
        .filter_map(|(id, (code, conf))| {
            names
                .get(code as usize - 1)
                .map(|n| (id, (n.clone(), conf)))
        })
        .collect())
}

/// A parcel's verdict before its patches: final, or to be analysed further.
pub(super) enum ParcelVerdict<'a> {
    /// Not covered, or too few clear observations: no patches.
    Final(ParcelStatus),
    /// Analysed: patches may follow (`status` is `Ok` until they do).
    Analysed {
        status: ParcelStatus,
        acc: &'a ParcelAcc,
    },
}

/// A parcel's status from its accumulated evidence (`acc`: None when no pixel of the grid
/// lies in it); `dates` are the season's, `model_bands` the land-cover model's.
pub(super) fn parcel_verdict<'a>(
    parcel: &Parcel,
    acc: Option<&'a ParcelAcc>,
    model_bands: &[String],
    checks: &SeasonChecks,
    rules: &RulesConfig,
    n_dates: usize,
) -> ParcelVerdict<'a> {
    let Some(a) = acc.filter(|a| a.observed > 0) else {
        // No pixel centre of the grid lies in the parcel (outside the imagery, or
        // smaller than a pixel), or none of its pixels has a value on any date (outside
        // every scene's footprint). Reported, never dropped.
        return ParcelVerdict::Final(ParcelStatus {
            parcel_id: parcel.id.clone(),
            pbf: parcel.pbf,
            admin: parcel.admin.clone(),
            status: ParcelState::NotCovered,
            pixels: acc.map_or(0, |a| a.pixels),
            kinds: BTreeMap::new(),
            clear_pixels: vec![0; n_dates],
            mean_ndvi: vec![None; n_dates],
            evidence: vec![None; n_dates],
            crop_type: None,
            tree_check: None,
            flags: Vec::new(),
        });
    };
    let kinds: BTreeMap<String, u64> = a
        .kinds
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (PixelKind::from_code(k as u8).name().to_string(), *n))
        .collect();
    let mut status = ParcelStatus {
        parcel_id: parcel.id.clone(),
        pbf: parcel.pbf,
        admin: parcel.admin.clone(),
        status: ParcelState::Ok,
        pixels: a.pixels,
        kinds,
        clear_pixels: a.dates.iter().map(|d| d.clear).collect(),
        mean_ndvi: a
            .dates
            .iter()
            .map(|d| (d.clear > 0).then(|| d.ndvi_sum as f64 / QC / d.clear as f64))
            .collect(),
        evidence: a
            .dates
            .iter()
            .map(|d| date_evidence(d, model_bands))
            .collect(),
        crop_type: checks.crop.get(&parcel.index).cloned(),
        tree_check: checks.tree_check.get(&parcel.index).cloned(),
        flags: Vec::new(),
    };
    let insufficient = a.kinds[PixelKind::InsufficientObservations as usize];
    if rules.too_few_observations(insufficient, a.pixels) {
        status.status = ParcelState::InsufficientObservations;
        return ParcelVerdict::Final(status);
    }
    ParcelVerdict::Analysed { status, acc: a }
}

impl ParcelStatus {
    /// Its flags sorted and deduplicated; flagged when it has any.
    pub(super) fn finish(&mut self) {
        self.flags.sort();
        self.flags.dedup();
        if !self.flags.is_empty() {
            self.status = ParcelState::Flagged;
        }
    }
}

/// The dates on which any pixel of a parcel is clear.
pub(super) fn clear_dates(a: &ParcelAcc, dates: &[Option<NaiveDate>]) -> Vec<NaiveDate> {
    a.dates
        .iter()
        .zip(dates)
        .filter(|(d, _)| d.clear > 0)
        .filter_map(|(_, date)| *date)
        .collect()
}
