//! The rules that turn a pixel's season of evidence into a kind, with a documented default
//! for every threshold (all settable in a TOML file, see `RulesConfig`), and every other
//! decision that compares a measure against one of those thresholds: which pixels are a
//! clear view, which parcels have too few observations, which patches are kept (mapping
//! unit, pure pixels, the tree-planting season veto), a fishpond's dikes, non-grain use on
//! PBF. The analysis (`crate::analysis`) calls these and decides nothing by itself.

use crate::error::{InferenceError, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Thresholds of the season rules. Every field has a default; a TOML file may set any subset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Fewer clear dates than this and a pixel is `insufficient_observations`.
    pub min_clear_dates: usize,
    /// A parcel with more than this fraction of insufficient pixels is reported as
    /// `insufficient_observations`, not flagged.
    pub max_insufficient_fraction: f64,
    /// Fishpond: open water at least this fraction of the clear dates …
    pub fishpond_water_fraction: f64,
    /// … and never a green canopy (NDVI max below this): rice paddies flooded in May turn
    /// green later and are not fishponds.
    pub fishpond_max_ndvi: f32,
    /// A fishpond's dikes belong to it: abandonment pixels (bare or sparse grass, no cycle)
    /// within this many pixels of a fishpond's pixels in the same parcel join the fishpond
    /// patch. At 10 m a pond's rim mixes water with its grassy embankment and is often not
    /// called water; without this the rim becomes a ring of abandonment around the pond and the
    /// pond comes out short. Default 1; 0 turns it off.
    pub fishpond_dike_px: usize,
    /// Construction: built-up at least this fraction of the clear dates.
    pub construction_built_fraction: f64,
    /// Construction on a site with no cultivation cycle: a pixel whose season passes the
    /// abandonment NDVI test (no green-up, flat) is construction, not abandonment, when it is
    /// built-up on at least this fraction of its clear dates. A building site is cleared,
    /// bare ground until its structures go up, so over a season it is bare on some dates and
    /// built on the others, and built on fewer than `construction_built_fraction` of them when
    /// the work started late; an abandoned field is bare or weedy and never built. Above 1
    /// turns it off.
    pub construction_site_built_fraction: f64,
    /// Trees / orchard: tree or orchard at least this fraction of the clear dates.
    pub tree_fraction: f64,
    /// Trees / orchard, checked over the season when a crop-type model is loaded: the mean
    /// spectra of a parcel's tree-planting pixels, date by date, go through the crop-type model;
    /// when it calls that season an annual crop (`grain` or `non_grain`) with at least this
    /// confidence, the parcel's tree-planting patches are dropped. The single-date land-cover
    /// model calls a dense summer canopy (soybean, maize, sunflower) orchard on most dates;
    /// the season model sees the bare spring and the harvest. On held-out WorldCereal series
    /// seen from April to September, the previous model called 144 of 160 annual crops annual
    /// and 3 of 35 permanent crops annual (`gengdi eval --held-out --months 4-9`). Default 0.4,
    /// twice the chance level of its five classes: a near-uniform call is no evidence (with the
    /// default 0 the model trained on the shared split vetoed every forest parcel of the
    /// Slovenia scene at confidences of 0.29–0.36, on three summer dates of L1C); on the
    /// development seeds 0, 0.4 and 0.5 give the same tree-planting scores within 0.01. Above
    /// 1 turns the check off.
    pub tree_annual_crop_veto: f32,
    /// Trees / orchard, the same crop-type check: when the model calls the season
    /// `grassland` with less than this confidence, the parcel's tree-planting patches are
    /// dropped too. An orchard's season reads as permanent crop, or as grassland (its grassy
    /// understorey, no bare spring, no harvest) with a clear call; a near-chance grassland
    /// call (its five classes: chance 0.2) is a green fallow field or a mixed season. Default
    /// 0.3, chosen on the development seeds of `scripts/season-eval.sh` (tree planting
    /// precision / recall 0.27 / 0.26 without it, 0.50 / 0.24 at 0.3, 0.53 / 0.20 at 0.5,
    /// 0.44 / 0.12 at 0.6); it leaves the Slovenia scene's forest patches alone (the model
    /// calls their L1C summer non_grain at 0.30–0.35, below the annual-crop veto). 0 turns it
    /// off.
    pub tree_grassland_min_confidence: f32,
    /// Trees / orchard, checked over the season when a season-cover model is loaded (it then
    /// replaces the crop-type check above): the mean spectra of a parcel's tree-planting
    /// pixels, date by date, go through the season-cover model; when it calls that season
    /// anything but `perennial` (annual crop, grassland, fallow, water, built) with at least
    /// this confidence, the parcel's tree-planting patches are dropped. Above 1 turns the
    /// check off.
    pub tree_season_veto: f32,
    /// Trees / orchard over the whole parcel, when a season-cover model is loaded: a
    /// monitored parcel without tree-planting patches of its own pixels (and not vetoed)
    /// whose mean season of every clear pixel the season-cover model calls `perennial` with
    /// at least this confidence is reported as tree planting, the whole parcel. The
    /// single-date model misses orchards whose understorey looks like grass or crop on most
    /// dates; the season shows no bare spring and no harvest. Default 0.7, chosen on the
    /// development seeds 1 and 2 of `scripts/season-eval.sh` (0.6 let wheat and maize series
    /// through, 0.75 lost orchards). Above 1 turns it off.
    pub tree_season_parcel_min: f32,
    /// Abandonment: no green-up (NDVI max below this) …
    pub abandonment_max_ndvi: f32,
    /// … and a flat season (NDVI max − min below this) …
    pub abandonment_max_amplitude: f32,
    /// … and bare or grass at least this fraction of the clear dates. The default, 0, lets
    /// the NDVI season decide alone: the single-date land-cover model confuses sparse weeds
    /// with annual crops too often (see the model card) to veto a flat, low season. Raise it
    /// to require the model's agreement.
    pub abandonment_bare_grass_fraction: f64,
    /// Abandonment, overgrown: where abandoned fields green up with weeds and grass (a humid
    /// climate), a field left alone is green all season. A pixel whose NDVI never falls below
    /// this on any clear date (no bare soil before sowing, no harvest) …
    pub abandonment_overgrown_min_ndvi: f32,
    /// … and that the land-cover model calls bare or grass (not crop, not trees) on at least
    /// this fraction of its clear dates is abandonment too …
    pub abandonment_overgrown_grass_fraction: f64,
    /// … when the batch's dates span at least this many days: a summer-only batch shows every
    /// crop green, and only a season from before sowing to after harvest shows that nothing
    /// was sown or harvested. Defaults 0.6, 0.6 and 120, chosen on the development seeds of
    /// `scripts/season-eval.sh` (README, "Season analysis"). An NDVI above 1 turns it off.
    pub abandonment_overgrown_min_days: u32,
    /// Non-grain use on PBF: the crop-type model's confidence needed to flag a PBF parcel.
    pub non_grain_min_confidence: f32,
    /// Minimum mapping unit of a patch, in mu (1 mu = 666.67 m²).
    pub min_patch_mu: f64,
    /// Per kind: a pixel-level patch of that kind must also hold at least this area, in mu, of
    /// *pure* pixels, pixels whose eight neighbours all lie in the same parcel. A boundary pixel
    /// mixes the parcel with its neighbour, and the imagery is rarely registered to the parcel
    /// layer to better than a pixel. Next to a wood this matters most: crowns overhang the
    /// boundary and shade it, so a strip of boundary pixels along a forest edge looks like
    /// trees. On the real Slovenia scene such strips were most of the false tree planting on
    /// grassland (15 of 25 grassland parcels flagged without the test, 2 with it). The whole
    /// patch, boundary pixels included, is reported and measured. A parcel narrower than three
    /// pixels has no pure pixel, so it gets no patch of such a kind: it needs finer imagery.
    /// Default `{ tree_planting = 0.5 }`; kinds not listed have no such test (a narrow abandoned
    /// strip is still found). Keys: abandonment, tree_planting, fishpond, construction.
    pub min_pure_mu: BTreeMap<String, f64>,
    /// Land-class codes (prefixes of the parcel's land class) of monitored cropland. The
    /// pixel-level violations (abandonment, tree planting, fishpond, construction) are reported
    /// only on these parcels, on PBF parcels and on parcels without a land class. Default
    /// `["01"]`: cropland in the Chinese land-use classification (GB/T 21010: 0101 paddy, 0102
    /// irrigated, 0103 dry land), so an orchard registered as 0201 or a grassland registered as
    /// 0404 is not a violation. An empty list monitors every parcel of the layer.
    pub cropland_classes: Vec<String>,
    /// Smooth each kind's pixels of a parcel with a 3 × 3 majority filter (inside the parcel)
    /// before they become patches: removes speckle from single-date misclassifications and
    /// fills pinholes, so one violation is one patch, not a scatter of fragments.
    pub smooth_patches: bool,
    /// Sentinel-2 SCL classes that are not a clear view: 0 no data, 1 saturated, 3 cloud
    /// shadow, 8/9 cloud, 10 cirrus, 11 snow.
    pub scl_not_clear: Vec<u8>,
    /// Without an SCL band, a pixel is cloudy when its blue reflectance exceeds this …
    pub cloud_blue_reflectance: f32,
    /// … and shadowed when its NIR reflectance is below this while not water.
    pub shadow_nir_reflectance: f32,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            min_clear_dates: 3,
            max_insufficient_fraction: 0.5,
            fishpond_water_fraction: 0.6,
            fishpond_max_ndvi: 0.5,
            fishpond_dike_px: 1,
            construction_built_fraction: 0.5,
            construction_site_built_fraction: 0.2,
            tree_fraction: 0.6,
            tree_annual_crop_veto: 0.4,
            tree_grassland_min_confidence: 0.3,
            tree_season_veto: 0.0,
            tree_season_parcel_min: 0.7,
            abandonment_max_ndvi: 0.4,
            abandonment_max_amplitude: 0.25,
            abandonment_bare_grass_fraction: 0.0,
            abandonment_overgrown_min_ndvi: 0.6,
            abandonment_overgrown_grass_fraction: 0.6,
            abandonment_overgrown_min_days: 120,
            non_grain_min_confidence: 0.6,
            min_patch_mu: 0.5,
            min_pure_mu: BTreeMap::from([("tree_planting".to_string(), 0.5)]),
            cropland_classes: vec!["01".into()],
            smooth_patches: true,
            scl_not_clear: vec![0, 1, 3, 8, 9, 10, 11],
            cloud_blue_reflectance: 0.18,
            shadow_nir_reflectance: 0.04,
        }
    }
}

/// An NDVI threshold that turns a test off (no NDVI reaches it).
const OFF_NDVI: f32 = 2.0;

/// The season-cover class of perennial woody cover.
const PERENNIAL: &str = "perennial";

/// The crop-type (and season-cover) class of grassland.
const GRASSLAND: &str = "grassland";

/// Which season model made a season check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeasonModel {
    /// The crop-type model.
    CropType,
    /// The season-cover model.
    SeasonCover,
}

impl SeasonModel {
    /// Its name in evidence.
    pub fn name(self) -> &'static str {
        match self {
            SeasonModel::CropType => "crop-type",
            SeasonModel::SeasonCover => "season-cover",
        }
    }
}

/// Whether a crop-type class is an annual crop.
fn is_annual_crop(class: &str) -> bool {
    class == "grain" || class == "non_grain"
}

/// The rule decisions, next to their thresholds: every comparison of a measure against a
/// threshold of the configuration is one of these (the analysis only calls them).
impl RulesConfig {
    /// Whether the value of a Sentinel-2 scene-classification (SCL) band says a pixel is a
    /// clear view: its class is not in `scl_not_clear`.
    pub fn scl_clear(&self, class: u8) -> bool {
        !self.scl_not_clear.contains(&class)
    }

    /// Without a cloud-mask band, whether a pixel's reflectances (0–1) say it is a clear
    /// view: not a cloud (`blue`, when the stack has it, not above `cloud_blue_reflectance`)
    /// and not a shadow (`nir` not below `shadow_nir_reflectance`), except that a pixel dark
    /// in the NIR is still clear when it is water: water is dark too, and MNDWI (of
    /// `green_swir`, when the stack has both) above 0 tells them apart.
    pub fn spectral_clear(
        &self,
        blue: Option<f32>,
        nir: f32,
        green_swir: Option<(f32, f32)>,
    ) -> bool {
        if let Some(b) = blue {
            if b > self.cloud_blue_reflectance {
                return false;
            }
        }
        if nir < self.shadow_nir_reflectance {
            if let Some((gv, sv)) = green_swir {
                if gv + sv > 0.0 && (gv - sv) / (gv + sv) > 0.0 {
                    return true;
                }
            }
            return false;
        }
        true
    }

    /// Whether a season of `clear` dates is enough to decide on (`min_clear_dates`): for a
    /// pixel (fewer and it is `insufficient_observations`) and for the crop-type model's
    /// series of a parcel (fewer and the parcel gets no class).
    pub fn enough_clear_dates(&self, clear: usize) -> bool {
        clear >= self.min_clear_dates
    }

    /// Whether a parcel is reported as `insufficient_observations` rather than analysed:
    /// more than `max_insufficient_fraction` of its `pixels` are `insufficient` ones.
    pub fn too_few_observations(&self, insufficient: u64, pixels: u64) -> bool {
        insufficient as f64 / pixels.max(1) as f64 > self.max_insufficient_fraction
    }

    /// Whether a patch of `area_mu` reaches the minimum mapping unit (`min_patch_mu`).
    pub fn reaches_mapping_unit(&self, area_mu: f64) -> bool {
        area_mu >= self.min_patch_mu
    }

    /// Whether the season check drops a parcel's tree-planting patches: `class` and
    /// `confidence` are `model`'s call on the mean season of its tree-planting pixels. The
    /// crop-type model vetoes with an annual crop (a dense summer canopy;
    /// `tree_annual_crop_veto`) or a near-chance grassland call
    /// (`tree_grassland_min_confidence`), the season-cover model with anything but perennial
    /// cover (`tree_season_veto`).
    pub fn tree_planting_vetoed(&self, model: SeasonModel, class: &str, confidence: f32) -> bool {
        match model {
            SeasonModel::CropType => {
                (is_annual_crop(class) && confidence >= self.tree_annual_crop_veto)
                    || (class == GRASSLAND && confidence < self.tree_grassland_min_confidence)
            }
            SeasonModel::SeasonCover => class != PERENNIAL && confidence >= self.tree_season_veto,
        }
    }

    /// The evidence a tree-planting patch carries of the season check it passed.
    pub fn describe_tree_check(&self, model: SeasonModel, class: &str, confidence: f32) -> String {
        let verdict = match model {
            SeasonModel::CropType if is_annual_crop(class) => format!(
                "below the annual-crop veto's {:.2}",
                self.tree_annual_crop_veto
            ),
            SeasonModel::CropType if class == GRASSLAND => format!(
                "a clear grassland call (orchard understorey, rule >= {:.2})",
                self.tree_grassland_min_confidence
            ),
            SeasonModel::CropType => "not an annual crop".to_string(),
            SeasonModel::SeasonCover if class == PERENNIAL => "perennial cover".to_string(),
            SeasonModel::SeasonCover => {
                format!("below the season veto's {:.2}", self.tree_season_veto)
            }
        };
        format!(
            "; {} model on the season of the parcel's tree-planting pixels: \
             {class} ({confidence:.2}), {verdict}",
            model.name()
        )
    }

    /// Mixed pixels alone are no evidence: whether a patch of `kind` holds enough pure
    /// pixels (`min_pure_mu`; `pure_mu` is asked only when the kind has a threshold).
    pub fn enough_pure_pixels(&self, kind: PixelKind, pure_mu: impl FnOnce() -> f64) -> bool {
        let need = kind.min_pure_mu(self);
        need <= 0.0 || pure_mu() >= need
    }

    /// Non-grain use of a PBF parcel: the crop-type model's class of its cultivated season
    /// is non_grain with at least `non_grain_min_confidence`.
    pub fn non_grain_use(&self, class: &str, confidence: f32) -> bool {
        class == "non_grain" && confidence >= self.non_grain_min_confidence
    }

    /// A fishpond's dikes belong to it: the `abandonment` pixels within `fishpond_dike_px`
    /// steps (8-neighbourhood, step by step) of the `pond` pixels. Empty without a pond.
    /// They join the pond's patch instead of ringing it with abandonment.
    pub fn pond_dikes(
        &self,
        pond: impl IntoIterator<Item = (i32, i32)>,
        abandonment: &[(i32, i32)],
    ) -> HashSet<(i32, i32)> {
        pond_dikes(pond, abandonment, self.fishpond_dike_px)
    }

    /// The evidence a fishpond patch carries of the `dikes` pixels of it that were
    /// abandonment pixels on the pond's rim (`fishpond_dike_px`); empty without any.
    pub fn describe_dikes(&self, dikes: usize) -> String {
        if dikes == 0 {
            return String::new();
        }
        format!("; {dikes} px of it are the pond's dikes (bare or grassy rim, fishpond_dike_px)")
    }

    /// The evidence of a non-grain PBF patch: the crop-type model's `confidence` in
    /// non_grain over `dates` dates of the parcel's cultivated pixels, against
    /// `non_grain_min_confidence`.
    /// Whether the season-cover model's call on a whole parcel's season makes it tree
    /// planting (`tree_season_parcel_min`).
    pub fn perennial_parcel(&self, class: &str, confidence: f32) -> bool {
        class == PERENNIAL && confidence >= self.tree_season_parcel_min
    }

    /// The evidence of a whole-parcel tree-planting patch.
    pub fn describe_perennial_parcel(&self, confidence: f32, dates: usize) -> String {
        format!(
            "season-cover model: perennial with confidence {confidence:.2} (rule >= {:.2}) \
             on the mean spectra of all the parcel's clear pixels, {dates} dates",
            self.tree_season_parcel_min
        )
    }

    pub fn describe_non_grain(&self, confidence: f32, dates: usize) -> String {
        format!(
            "crop-type model: non_grain with confidence {confidence:.2} (rule >= {:.2}) \
             on the mean spectra of the parcel's cultivated pixels, {dates} dates",
            self.non_grain_min_confidence
        )
    }

    pub fn load(path: &Path) -> Result<RulesConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| InferenceError::Config {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let cfg: RulesConfig = toml::from_str(&text).map_err(|e| InferenceError::Config {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        cfg.validate().map_err(|reason| InferenceError::Config {
            what: path.display().to_string(),
            reason,
        })?;
        Ok(cfg)
    }

    /// Whether the pixel-level violations are reported on a parcel with this land class.
    pub fn monitors(&self, land_class: Option<&str>, pbf: bool) -> bool {
        let Some(class) = land_class.map(str::trim).filter(|c| !c.is_empty()) else {
            return true;
        };
        pbf || self.cropland_classes.is_empty()
            || self
                .cropland_classes
                .iter()
                .any(|prefix| class.starts_with(prefix.as_str()))
    }

    /// The rules for a batch of `dates`: as they are, but without the overgrown-abandonment
    /// test when the dated scenes span fewer than `abandonment_overgrown_min_days` days (or
    /// fewer than two scenes have a date).
    pub fn for_season(&self, dates: &[Option<chrono::NaiveDate>]) -> RulesConfig {
        let dated = dates.iter().flatten();
        let span = match (dated.clone().min(), dated.max()) {
            (Some(first), Some(last)) => (*last - *first).num_days(),
            _ => 0,
        };
        let mut rules = self.clone();
        if span < i64::from(self.abandonment_overgrown_min_days) {
            rules.abandonment_overgrown_min_ndvi = OFF_NDVI;
        }
        rules
    }

    /// Whether the overgrown-abandonment test is on.
    pub fn overgrown_abandonment(&self) -> bool {
        self.abandonment_overgrown_min_ndvi <= 1.0
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        let fractions = [
            ("max_insufficient_fraction", self.max_insufficient_fraction),
            ("fishpond_water_fraction", self.fishpond_water_fraction),
            (
                "construction_built_fraction",
                self.construction_built_fraction,
            ),
            ("tree_fraction", self.tree_fraction),
            (
                "abandonment_bare_grass_fraction",
                self.abandonment_bare_grass_fraction,
            ),
            (
                "abandonment_overgrown_grass_fraction",
                self.abandonment_overgrown_grass_fraction,
            ),
        ];
        for (name, v) in fractions {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} = {v} must be between 0 and 1"));
            }
        }
        for (name, v) in [
            ("fishpond_max_ndvi", self.fishpond_max_ndvi),
            ("abandonment_max_ndvi", self.abandonment_max_ndvi),
        ] {
            if !(-1.0..=1.0).contains(&v) {
                return Err(format!("{name} = {v} is not an NDVI (-1 to 1)"));
            }
        }
        for (name, v) in [
            ("tree_annual_crop_veto", self.tree_annual_crop_veto),
            (
                "tree_grassland_min_confidence",
                self.tree_grassland_min_confidence,
            ),
            ("tree_season_veto", self.tree_season_veto),
            ("tree_season_parcel_min", self.tree_season_parcel_min),
        ] {
            if v.is_nan() || v < 0.0 {
                return Err(format!(
                    "{name} = {v} must be a confidence (0 to 1; above 1 turns the check off)"
                ));
            }
        }
        let overgrown = self.abandonment_overgrown_min_ndvi;
        if overgrown.is_nan() || overgrown < -1.0 {
            return Err(format!(
                "abandonment_overgrown_min_ndvi = {overgrown} is not an NDVI (-1 to 1; above 1 turns it off)"
            ));
        }
        let site = self.construction_site_built_fraction;
        if site.is_nan() || site < 0.0 {
            return Err(format!(
                "construction_site_built_fraction = {site} must be a fraction (0 to 1; above 1 turns it off)"
            ));
        }
        if self.min_clear_dates == 0 {
            return Err("min_clear_dates must be at least 1".into());
        }
        if !(self.min_patch_mu >= 0.0 && self.min_patch_mu.is_finite()) {
            return Err(format!(
                "min_patch_mu = {} must be a non-negative number",
                self.min_patch_mu
            ));
        }
        for (kind, v) in &self.min_pure_mu {
            if !PixelKind::ALL_VIOLATIONS.iter().any(|k| k.name() == kind) {
                return Err(format!(
                    "min_pure_mu.{kind}: unknown kind (one of abandonment, tree_planting, fishpond, construction)"
                ));
            }
            if !(*v >= 0.0 && v.is_finite()) {
                return Err(format!(
                    "min_pure_mu.{kind} = {v} must be a non-negative number"
                ));
            }
        }
        Ok(())
    }
}

/// [`RulesConfig::pond_dikes`] with `dike_px` steps.
pub fn pond_dikes(
    pond: impl IntoIterator<Item = (i32, i32)>,
    abandonment: &[(i32, i32)],
    dike_px: usize,
) -> HashSet<(i32, i32)> {
    let mut pond: HashSet<(i32, i32)> = pond.into_iter().collect();
    let mut dikes: HashSet<(i32, i32)> = HashSet::new();
    if pond.is_empty() {
        return dikes;
    }
    for _ in 0..dike_px {
        let ring: Vec<(i32, i32)> = abandonment
            .iter()
            .copied()
            .filter(|p| !dikes.contains(p))
            .filter(|&(x, y)| {
                (-1..=1).any(|dy| (-1..=1).any(|dx| pond.contains(&(x + dx, y + dy))))
            })
            .collect();
        if ring.is_empty() {
            break;
        }
        pond.extend(ring.iter().copied());
        dikes.extend(ring);
    }
    dikes
}

/// What a pixel's season says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelKind {
    /// Not farmland, or not analysed.
    None = 0,
    /// A cultivation cycle or other normal farmland use.
    Cultivated = 1,
    InsufficientObservations = 2,
    Abandonment = 3,
    TreePlanting = 4,
    Fishpond = 5,
    Construction = 6,
}

impl PixelKind {
    /// The pixel-level violation kinds.
    pub const ALL_VIOLATIONS: [PixelKind; 4] = [
        PixelKind::Abandonment,
        PixelKind::TreePlanting,
        PixelKind::Fishpond,
        PixelKind::Construction,
    ];

    /// The pure-pixel area a patch of this kind needs under `rules` (0 = no test).
    pub fn min_pure_mu(self, rules: &RulesConfig) -> f64 {
        rules.min_pure_mu.get(self.name()).copied().unwrap_or(0.0)
    }

    pub fn name(self) -> &'static str {
        match self {
            PixelKind::None => "none",
            PixelKind::Cultivated => "cultivated",
            PixelKind::InsufficientObservations => "insufficient_observations",
            PixelKind::Abandonment => "abandonment",
            PixelKind::TreePlanting => "tree_planting",
            PixelKind::Fishpond => "fishpond",
            PixelKind::Construction => "construction",
        }
    }

    pub fn from_code(c: u8) -> PixelKind {
        match c {
            1 => PixelKind::Cultivated,
            2 => PixelKind::InsufficientObservations,
            3 => PixelKind::Abandonment,
            4 => PixelKind::TreePlanting,
            5 => PixelKind::Fishpond,
            6 => PixelKind::Construction,
            _ => PixelKind::None,
        }
    }

    /// Kinds that are violations when found on farmland.
    pub fn is_violation(self) -> bool {
        matches!(
            self,
            PixelKind::Abandonment
                | PixelKind::TreePlanting
                | PixelKind::Fishpond
                | PixelKind::Construction
        )
    }
}

/// The kind of a suspected-change patch: one of the pixel-level violations, or non-grain use
/// of a PBF parcel (the whole parcel). Serialised, displayed and parsed as its
/// [`name`](ChangeKind::name) (`abandonment`, `construction`, `fishpond`, `non_grain_pbf`,
/// `tree_planting`); the variants are in the alphabetical order of their names, so sorting
/// kinds sorts their names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Abandonment,
    Construction,
    Fishpond,
    /// Non-grain use on permanent basic farmland (crop-type model over the season).
    NonGrainPbf,
    TreePlanting,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Abandonment,
        ChangeKind::Construction,
        ChangeKind::Fishpond,
        ChangeKind::NonGrainPbf,
        ChangeKind::TreePlanting,
    ];

    /// The name in the outputs (as serialised).
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Abandonment => "abandonment",
            ChangeKind::Construction => "construction",
            ChangeKind::Fishpond => "fishpond",
            ChangeKind::NonGrainPbf => "non_grain_pbf",
            ChangeKind::TreePlanting => "tree_planting",
        }
    }

    /// The patch kind of a pixel-level violation (None for a kind that is no violation).
    pub fn of_pixel(kind: PixelKind) -> Option<ChangeKind> {
        match kind {
            PixelKind::Abandonment => Some(ChangeKind::Abandonment),
            PixelKind::TreePlanting => Some(ChangeKind::TreePlanting),
            PixelKind::Fishpond => Some(ChangeKind::Fishpond),
            PixelKind::Construction => Some(ChangeKind::Construction),
            PixelKind::None | PixelKind::Cultivated | PixelKind::InsufficientObservations => None,
        }
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ChangeKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<ChangeKind, String> {
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown change kind {s:?} (one of abandonment, construction, fishpond, non_grain_pbf, tree_planting)"
                )
            })
    }
}

impl PartialEq<str> for ChangeKind {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&str> for ChangeKind {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// The land-cover classes the rules know, by the model's class names.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassCodes {
    pub annual_crop: Option<u8>,
    pub orchard: Option<u8>,
    pub tree: Option<u8>,
    pub grass: Option<u8>,
    pub bare: Option<u8>,
    pub water: Option<u8>,
    pub built: Option<u8>,
}

impl ClassCodes {
    /// Codes (index + 1) of the classes in a model's class list.
    pub fn from_names(names: &[String]) -> ClassCodes {
        let find = |n: &str| names.iter().position(|x| x == n).map(|i| i as u8 + 1);
        ClassCodes {
            annual_crop: find("annual_crop"),
            orchard: find("orchard"),
            tree: find("tree"),
            grass: find("grass"),
            bare: find("bare"),
            water: find("water"),
            built: find("built"),
        }
    }
}

/// One pixel's clear observations over the season: land-cover code and NDVI per clear date.
#[derive(Clone, Debug, Default)]
pub struct PixelSeason {
    pub codes: Vec<u8>,
    pub ndvi: Vec<f32>,
}

/// What the rules look at in one pixel's season: clear dates, dates per class group, and the
/// NDVI extremes. A patch's evidence is the mean of these over its pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeasonMeasures {
    pub clear: u8,
    pub water: u8,
    pub built: u8,
    /// Tree or orchard.
    pub woody: u8,
    pub bare_grass: u8,
    pub ndvi_max: f32,
    pub ndvi_min: f32,
}

impl SeasonMeasures {
    pub fn of(season: &PixelSeason, classes: &ClassCodes) -> SeasonMeasures {
        let count = |wanted: &[Option<u8>]| {
            season
                .codes
                .iter()
                .filter(|c| wanted.contains(&Some(**c)))
                .count()
                .min(255) as u8
        };
        SeasonMeasures {
            clear: season.codes.len().min(255) as u8,
            water: count(&[classes.water]),
            built: count(&[classes.built]),
            woody: count(&[classes.tree, classes.orchard]),
            bare_grass: count(&[classes.bare, classes.grass]),
            ndvi_max: season
                .ndvi
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max),
            ndvi_min: season.ndvi.iter().copied().fold(f32::INFINITY, f32::min),
        }
    }
}

/// The kind of a pixel's season under `rules`.
pub fn pixel_kind(season: &PixelSeason, classes: &ClassCodes, rules: &RulesConfig) -> PixelKind {
    kind_of(&SeasonMeasures::of(season, classes), rules)
}

/// The kind of a season's measures under `rules`.
pub fn kind_of(m: &SeasonMeasures, rules: &RulesConfig) -> PixelKind {
    let n = usize::from(m.clear);
    if !rules.enough_clear_dates(n) {
        return PixelKind::InsufficientObservations;
    }
    let frac = |k: u8| f64::from(k) / n as f64;
    if frac(m.water) >= rules.fishpond_water_fraction && m.ndvi_max < rules.fishpond_max_ndvi {
        return PixelKind::Fishpond;
    }
    if frac(m.built) >= rules.construction_built_fraction {
        return PixelKind::Construction;
    }
    if frac(m.woody) >= rules.tree_fraction {
        return PixelKind::TreePlanting;
    }
    if m.ndvi_min >= rules.abandonment_overgrown_min_ndvi
        && frac(m.bare_grass) >= rules.abandonment_overgrown_grass_fraction
    {
        return PixelKind::Abandonment;
    }
    if m.ndvi_max < rules.abandonment_max_ndvi
        && m.ndvi_max - m.ndvi_min < rules.abandonment_max_amplitude
    {
        if frac(m.built) >= rules.construction_site_built_fraction {
            return PixelKind::Construction;
        }
        if frac(m.bare_grass) >= rules.abandonment_bare_grass_fraction {
            return PixelKind::Abandonment;
        }
    }
    PixelKind::Cultivated
}

/// The evidence behind a patch: the rules' measures summed over its pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PatchEvidence {
    pub pixels: u64,
    pub clear: u64,
    pub water: u64,
    pub built: u64,
    pub woody: u64,
    pub bare_grass: u64,
    pub ndvi_max: f64,
    pub amplitude: f64,
}

impl PatchEvidence {
    pub fn add(&mut self, m: &SeasonMeasures) {
        self.pixels += 1;
        self.clear += u64::from(m.clear);
        self.water += u64::from(m.water);
        self.built += u64::from(m.built);
        self.woody += u64::from(m.woody);
        self.bare_grass += u64::from(m.bare_grass);
        self.ndvi_max += f64::from(m.ndvi_max);
        self.amplitude += f64::from(m.ndvi_max - m.ndvi_min);
    }

    /// What triggered `kind`, in words, with the rule's threshold beside each measure (means
    /// over the patch's pixels; shares are of the clear dates).
    pub fn describe(&self, kind: PixelKind, rules: &RulesConfig) -> String {
        if self.pixels == 0 || self.clear == 0 {
            return String::new();
        }
        let pct = |k: u64| 100.0 * k as f64 / self.clear as f64;
        let n = self.pixels as f64;
        let what = match kind {
            PixelKind::Fishpond => format!(
                "open water on {:.0} % of clear dates (rule >= {:.0} %), NDVI max {:.2} (rule < {:.2})",
                pct(self.water),
                100.0 * rules.fishpond_water_fraction,
                self.ndvi_max / n,
                rules.fishpond_max_ndvi
            ),
            PixelKind::Construction => format!(
                "built-up on {:.0} % of clear dates (rule >= {:.0} %, or >= {:.0} % with no cultivation cycle: NDVI max < {:.2} and amplitude < {:.2}), NDVI max {:.2}",
                pct(self.built),
                100.0 * rules.construction_built_fraction,
                100.0 * rules.construction_site_built_fraction,
                rules.abandonment_max_ndvi,
                rules.abandonment_max_amplitude,
                self.ndvi_max / n
            ),
            PixelKind::TreePlanting => format!(
                "tree or orchard on {:.0} % of clear dates (rule >= {:.0} %)",
                pct(self.woody),
                100.0 * rules.tree_fraction
            ),
            PixelKind::Abandonment => {
                let ndvi_min = (self.ndvi_max - self.amplitude) / n;
                let overgrown = f64::from(rules.abandonment_overgrown_min_ndvi);
                if rules.overgrown_abandonment() && ndvi_min >= overgrown {
                    format!(
                        "no cultivation cycle (overgrown): NDVI min {ndvi_min:.2} (rule >= {:.2}), bare or grass on {:.0} % of clear dates (rule >= {:.0} %)",
                        rules.abandonment_overgrown_min_ndvi,
                        pct(self.bare_grass),
                        100.0 * rules.abandonment_overgrown_grass_fraction
                    )
                } else {
                    format!(
                        "no cultivation cycle: NDVI max {:.2} (rule < {:.2}), amplitude {:.2} (rule < {:.2}), bare or grass on {:.0} % of clear dates (rule >= {:.0} %)",
                        self.ndvi_max / n,
                        rules.abandonment_max_ndvi,
                        self.amplitude / n,
                        rules.abandonment_max_amplitude,
                        pct(self.bare_grass),
                        100.0 * rules.abandonment_bare_grass_fraction
                    )
                }
            }
            _ => return String::new(),
        };
        format!(
            "{what}; {:.1} clear dates per pixel, {} px",
            self.clear as f64 / n,
            self.pixels
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> ClassCodes {
        let names: Vec<String> = [
            "annual_crop",
            "orchard",
            "tree",
            "grass",
            "bare",
            "water",
            "built",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        ClassCodes::from_names(&names)
    }

    fn season(codes: &[u8], ndvi: &[f32]) -> PixelSeason {
        PixelSeason {
            codes: codes.to_vec(),
            ndvi: ndvi.to_vec(),
        }
    }

    #[test]
    fn the_look_alikes_of_the_domain_primer_are_not_flagged() {
        let (c, r) = (classes(), RulesConfig::default());
        // Rice: flooded in May (water), then a green canopy.
        let rice = season(&[6, 6, 1, 1, 1, 1], &[-0.1, 0.0, 0.6, 0.8, 0.8, 0.5]);
        assert_eq!(pixel_kind(&rice, &c, &r), PixelKind::Cultivated);
        // Spring wheat harvested in July: bare after a green peak.
        let wheat = season(&[5, 1, 1, 5, 5, 5], &[0.15, 0.5, 0.8, 0.2, 0.15, 0.15]);
        assert_eq!(pixel_kind(&wheat, &c, &r), PixelKind::Cultivated);
        // One cloudy-season pixel with two clear dates proves nothing.
        assert_eq!(
            pixel_kind(&season(&[5, 5], &[0.1, 0.1]), &c, &r),
            PixelKind::InsufficientObservations
        );
    }

    #[test]
    fn each_violation_is_recognised() {
        let (c, r) = (classes(), RulesConfig::default());
        assert_eq!(
            pixel_kind(&season(&[6, 6, 6, 6, 6], &[-0.2; 5]), &c, &r),
            PixelKind::Fishpond
        );
        assert_eq!(
            pixel_kind(&season(&[7, 7, 7, 5], &[0.05; 4]), &c, &r),
            PixelKind::Construction
        );
        assert_eq!(
            pixel_kind(&season(&[2, 2, 3, 2, 1], &[0.6; 5]), &c, &r),
            PixelKind::TreePlanting
        );
        assert_eq!(
            pixel_kind(
                &season(&[5, 5, 4, 5, 4, 5], &[0.12, 0.15, 0.25, 0.2, 0.22, 0.14]),
                &c,
                &r
            ),
            PixelKind::Abandonment
        );
    }

    #[test]
    fn a_building_site_with_no_cultivation_cycle_is_construction_not_abandonment() {
        let (c, r) = (classes(), RulesConfig::default());
        // Cleared bare ground (5) for four dates, then structures (7): built on 2 of 6.
        let ndvi = [0.1, 0.12, 0.08, 0.1, 0.09, 0.11];
        let site = season(&[5, 5, 5, 5, 7, 7], &ndvi);
        assert_eq!(pixel_kind(&site, &c, &r), PixelKind::Construction);
        // The same season never built: an abandoned field.
        let bare = season(&[5, 5, 5, 5, 5, 4], &ndvi);
        assert_eq!(pixel_kind(&bare, &c, &r), PixelKind::Abandonment);
        // One built date in six is under the default share (0.2): abandonment.
        let once = season(&[5, 5, 7, 5, 5, 4], &ndvi);
        assert_eq!(pixel_kind(&once, &c, &r), PixelKind::Abandonment);
        // Built on 2 of 6 dates of a field with a green-up is a cultivated field (a single
        // date's misclassification), not a building site.
        let crop = season(&[5, 7, 1, 1, 7, 5], &[0.1, 0.2, 0.7, 0.8, 0.3, 0.1]);
        assert_eq!(pixel_kind(&crop, &c, &r), PixelKind::Cultivated);
        // Turned off (above 1), the building site is abandonment again.
        let off = RulesConfig {
            construction_site_built_fraction: 1.5,
            ..RulesConfig::default()
        };
        assert_eq!(pixel_kind(&site, &c, &off), PixelKind::Abandonment);
        assert!(RulesConfig {
            construction_site_built_fraction: -0.1,
            ..RulesConfig::default()
        }
        .validate()
        .unwrap_err()
        .contains("construction_site_built_fraction"));
    }

    #[test]
    fn a_patch_s_evidence_is_the_mean_of_what_the_rules_saw() {
        let (c, r) = (classes(), RulesConfig::default());
        let mut e = PatchEvidence::default();
        // Two fishpond pixels: water on 4 of 5 and 5 of 5 clear dates.
        for (codes, ndvi) in [
            (&[6, 6, 6, 6, 5][..], &[-0.2, -0.1, -0.3, -0.2, 0.1][..]),
            (&[6, 6, 6, 6, 6][..], &[-0.2, -0.2, -0.2, -0.2, 0.3][..]),
        ] {
            let m = SeasonMeasures::of(&season(codes, ndvi), &c);
            assert_eq!(kind_of(&m, &r), PixelKind::Fishpond);
            e.add(&m);
        }
        assert_eq!((e.pixels, e.clear, e.water), (2, 10, 9));
        assert_eq!(
            e.describe(PixelKind::Fishpond, &r),
            "open water on 90 % of clear dates (rule >= 60 %), NDVI max 0.20 (rule < 0.50); \
             5.0 clear dates per pixel, 2 px"
        );
        let m = SeasonMeasures::of(&season(&[5, 5, 4, 5], &[0.12, 0.15, 0.25, 0.2]), &c);
        let mut a = PatchEvidence::default();
        a.add(&m);
        assert_eq!(
            a.describe(PixelKind::Abandonment, &r),
            "no cultivation cycle: NDVI max 0.25 (rule < 0.40), amplitude 0.13 (rule < 0.25), \
             bare or grass on 100 % of clear dates (rule >= 0 %); 4.0 clear dates per pixel, 1 px"
        );
        // An overgrown field: green on every date, grass on 3 of 4.
        let m = SeasonMeasures::of(&season(&[4, 4, 1, 4], &[0.7, 0.8, 0.85, 0.75]), &c);
        assert_eq!(kind_of(&m, &r), PixelKind::Abandonment);
        let mut o = PatchEvidence::default();
        o.add(&m);
        assert_eq!(
            o.describe(PixelKind::Abandonment, &r),
            "no cultivation cycle (overgrown): NDVI min 0.70 (rule >= 0.60), bare or grass on 75 % \
             of clear dates (rule >= 60 %); 4.0 clear dates per pixel, 1 px"
        );
        assert_eq!(
            PatchEvidence::default().describe(PixelKind::Fishpond, &r),
            ""
        );
    }

    #[test]
    fn a_field_green_all_season_is_overgrown_abandonment_only_over_a_whole_season() {
        let (c, r) = (classes(), RulesConfig::default());
        // Grass on 4 of 5 dates, never below NDVI 0.6: no sowing, no harvest.
        let field = season(&[4, 4, 4, 1, 4], &[0.65, 0.8, 0.85, 0.8, 0.7]);
        assert_eq!(pixel_kind(&field, &c, &r), PixelKind::Abandonment);
        // A crop canopy (annual crop on most dates) green all season is not.
        let canopy = season(&[1, 1, 4, 1, 1], &[0.65, 0.8, 0.85, 0.8, 0.7]);
        assert_eq!(pixel_kind(&canopy, &c, &r), PixelKind::Cultivated);
        // A meadow mown to bare soil once (NDVI 0.3) had a cycle.
        let mown = season(&[4, 4, 5, 4, 4], &[0.65, 0.8, 0.3, 0.8, 0.7]);
        assert_eq!(pixel_kind(&mown, &c, &r), PixelKind::Cultivated);
        // Trees come first: woody on 4 of 5 dates is tree planting.
        let trees = season(&[2, 3, 3, 3, 4], &[0.65, 0.8, 0.85, 0.8, 0.7]);
        assert_eq!(pixel_kind(&trees, &c, &r), PixelKind::TreePlanting);
        // Dates from April to September (158 days) keep the test; July to September (60 days)
        // turn it off: the field is then cultivated as far as the rules can tell.
        let day = |m, d| Some(chrono::NaiveDate::from_ymd_opt(2024, m, d).unwrap());
        let spring_to_autumn = r.for_season(&[day(4, 20), None, day(7, 15), day(9, 25)]);
        assert!(spring_to_autumn.overgrown_abandonment());
        assert_eq!(spring_to_autumn, r);
        let summer = r.for_season(&[day(7, 11), day(8, 20), day(9, 9)]);
        assert!(!summer.overgrown_abandonment());
        assert_eq!(pixel_kind(&field, &c, &summer), PixelKind::Cultivated);
        // Undated scenes say nothing of the season's length.
        assert!(!r.for_season(&[None, None, None]).overgrown_abandonment());
        assert!(RulesConfig {
            abandonment_overgrown_min_ndvi: f32::NAN,
            ..RulesConfig::default()
        }
        .validate()
        .unwrap_err()
        .contains("abandonment_overgrown_min_ndvi"));
    }

    #[test]
    fn the_clear_sky_parcel_and_patch_decisions_read_their_thresholds() {
        let r = RulesConfig::default();
        assert!(r.scl_clear(4) && r.scl_clear(6));
        assert!(!r.scl_clear(9) && !r.scl_clear(3));
        assert!(r.spectral_clear(Some(0.05), 0.3, None));
        assert!(!r.spectral_clear(Some(0.3), 0.3, None), "cloud");
        assert!(!r.spectral_clear(None, 0.01, None), "shadow");
        assert!(r.spectral_clear(None, 0.01, Some((0.06, 0.01))), "water");
        assert!(!r.spectral_clear(None, 0.01, Some((0.01, 0.06))));
        assert!(r.enough_clear_dates(3) && !r.enough_clear_dates(2));
        assert!(r.too_few_observations(6, 10) && !r.too_few_observations(5, 10));
        assert!(!r.too_few_observations(0, 0));
        assert!(r.reaches_mapping_unit(0.5) && !r.reaches_mapping_unit(0.49));
        assert!(r.non_grain_use("non_grain", 0.6) && !r.non_grain_use("non_grain", 0.59));
        assert!(!r.non_grain_use("grain", 0.9));
        let ct = SeasonModel::CropType;
        assert!(
            r.tree_planting_vetoed(ct, "grain", 0.4) && !r.tree_planting_vetoed(ct, "grain", 0.39)
        );
        assert!(!r.tree_planting_vetoed(ct, "orchard", 0.9));
        // Grassland is no annual crop to the crop-type check, but no perennial cover either: a
        // clear grassland call (an orchard's understorey) keeps the patches, a near-chance one
        // drops them.
        assert!(!r.tree_planting_vetoed(ct, "grassland", 0.9));
        assert!(!r.tree_planting_vetoed(ct, "grassland", 0.3));
        assert!(r.tree_planting_vetoed(ct, "grassland", 0.29));
        assert!(!r.tree_planting_vetoed(ct, "fallow", 0.29));
        assert!(!r.tree_planting_vetoed(ct, "non_grain", 0.39));
        let grass_off = RulesConfig {
            tree_grassland_min_confidence: 0.0,
            ..RulesConfig::default()
        };
        assert!(!grass_off.tree_planting_vetoed(ct, "grassland", 0.0));
        let sc = SeasonModel::SeasonCover;
        assert!(r.tree_planting_vetoed(sc, "grassland", 0.2));
        assert!(r.tree_planting_vetoed(sc, "annual_crop", 0.0));
        assert!(!r.tree_planting_vetoed(sc, "perennial", 0.2));
        let strict = RulesConfig {
            tree_season_veto: 0.5,
            ..RulesConfig::default()
        };
        assert!(!strict.tree_planting_vetoed(sc, "fallow", 0.49));
        assert!(strict.tree_planting_vetoed(sc, "fallow", 0.5));
        assert!(r.perennial_parcel("perennial", r.tree_season_parcel_min));
        assert!(!r.perennial_parcel("perennial", r.tree_season_parcel_min - 0.01));
        assert!(!r.perennial_parcel("grassland", 1.0));
        assert!(r.enough_pure_pixels(PixelKind::Abandonment, || 0.0));
        assert!(!r.enough_pure_pixels(PixelKind::TreePlanting, || 0.4));
        assert_eq!(r.describe_dikes(0), "");
        assert_eq!(
            r.describe_dikes(3),
            "; 3 px of it are the pond's dikes (bare or grassy rim, fishpond_dike_px)"
        );
        assert_eq!(
            r.describe_non_grain(0.734, 4),
            "crop-type model: non_grain with confidence 0.73 (rule >= 0.60) on the mean spectra \
             of the parcel's cultivated pixels, 4 dates"
        );
    }

    #[test]
    fn change_kinds_are_named_serialised_and_parsed_as_their_old_strings() {
        let names = [
            "abandonment",
            "construction",
            "fishpond",
            "non_grain_pbf",
            "tree_planting",
        ];
        for (k, name) in ChangeKind::ALL.into_iter().zip(names) {
            assert_eq!(k.name(), name);
            assert_eq!(k.to_string(), name);
            assert_eq!(k, name);
            assert_eq!(name.parse::<ChangeKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<ChangeKind>(&format!("\"{name}\"")).unwrap(),
                k
            );
        }
        let mut sorted = ChangeKind::ALL;
        sorted.sort_by_key(|k| k.name());
        assert_eq!(
            sorted,
            ChangeKind::ALL,
            "variants in the order of their names"
        );
        assert!("trees".parse::<ChangeKind>().is_err());
        for k in PixelKind::ALL_VIOLATIONS {
            assert_eq!(
                ChangeKind::of_pixel(k).map(ChangeKind::name),
                Some(k.name())
            );
        }
        assert_eq!(ChangeKind::of_pixel(PixelKind::Cultivated), None);
    }

    #[test]
    fn violations_are_reported_on_cropland_pbf_and_unclassed_parcels_only() {
        let r = RulesConfig::default();
        assert!(r.monitors(Some("0101"), false));
        assert!(r.monitors(Some("0103"), false));
        assert!(!r.monitors(Some("0201"), false), "a registered orchard");
        assert!(!r.monitors(Some("0404"), false), "a registered grassland");
        assert!(r.monitors(Some("0201"), true), "PBF is always monitored");
        assert!(r.monitors(None, false));
        assert!(r.monitors(Some("  "), false));
        let all = RulesConfig {
            cropland_classes: vec![],
            ..RulesConfig::default()
        };
        assert!(all.monitors(Some("2000"), false));
    }

    #[test]
    fn the_documented_rules_file_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/rules.toml");
        assert_eq!(RulesConfig::load(&path).unwrap(), RulesConfig::default());
        // … and it names every field, so it documents each one.
        let text = std::fs::read_to_string(&path).unwrap();
        let defaults = toml::to_string(&RulesConfig::default()).unwrap();
        for line in defaults.lines() {
            if let Some((name, _)) = line.split_once(" = ") {
                assert!(
                    text.lines().any(|l| l.starts_with(&format!("{name} = "))),
                    "docs/rules.toml lacks {name}"
                );
            }
        }
    }

    #[test]
    fn a_rules_file_may_set_any_subset_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rules.toml");
        std::fs::write(&p, "min_clear_dates = 4\nmin_patch_mu = 1.5\n").unwrap();
        let cfg = RulesConfig::load(&p).unwrap();
        assert_eq!(cfg.min_clear_dates, 4);
        assert_eq!(cfg.min_patch_mu, 1.5);
        assert_eq!(cfg.tree_fraction, RulesConfig::default().tree_fraction);
        std::fs::write(&p, "min_clear_date = 4\n").unwrap();
        let err = RulesConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("min_clear_date"), "{err}");
        assert_eq!(cfg.min_pure_mu["tree_planting"], 0.5);
        std::fs::write(&p, "[min_pure_mu]\nconstruction = 1.0\n").unwrap();
        let cfg = RulesConfig::load(&p).unwrap();
        assert_eq!(cfg.min_pure_mu.len(), 1, "a table replaces the default");
        assert_eq!(PixelKind::Construction.min_pure_mu(&cfg), 1.0);
        assert_eq!(PixelKind::TreePlanting.min_pure_mu(&cfg), 0.0);
        std::fs::write(&p, "[min_pure_mu]\ntrees = 1.0\n").unwrap();
        let err = RulesConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("min_pure_mu.trees: unknown kind"), "{err}");
        std::fs::write(&p, "[min_pure_mu]\nfishpond = -1.0\n").unwrap();
        let err = RulesConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("min_pure_mu.fishpond = -1"), "{err}");
        std::fs::write(&p, "tree_fraction = 1.5\n").unwrap();
        assert!(RulesConfig::load(&p)
            .unwrap_err()
            .to_string()
            .contains("tree_fraction"));
        std::fs::write(&p, "fishpond_max_ndvi = 5.0\n").unwrap();
        let err = RulesConfig::load(&p).unwrap_err().to_string();
        assert!(
            err.contains("fishpond_max_ndvi = 5 is not an NDVI"),
            "{err}"
        );
        std::fs::write(&p, "tree_annual_crop_veto = -0.5\n").unwrap();
        let err = RulesConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("tree_annual_crop_veto = -0.5"), "{err}");
    }
}
