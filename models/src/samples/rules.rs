//! The documented labelling rules. EuroSAT labels are per patch and WorldCereal labels are per
//! parcel and season, so single pixels/dates that contradict their label are dropped; `bare` has
//! no real labels anywhere and is derived from real cropland pixels by a spectral rule.
//!
//! Thresholds are on indices of reflectance (DN / 10000), see [`crate::features`].

use crate::classes::{CropTypeClass, LandCoverClass, SeasonCoverClass};
use crate::features::{index, reflectance, spectral_indices, N_BANDS};

/// NDVI below this and BSI above [`BARE_BSI_MIN`] makes a cropland/fallow pixel `bare`.
pub const BARE_NDVI_MAX: f32 = 0.15;
/// See [`BARE_NDVI_MAX`].
pub const BARE_BSI_MIN: f32 = 0.05;

/// What a rule decided for one pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PixelDecision {
    /// Keep with this class.
    Keep(LandCoverClass),
    /// A cropland / fallow pixel that passes the bare-soil rule: labelled `bare`.
    DerivedBare,
    /// Drop, with the reason.
    Drop(&'static str),
}

/// The rules as sentences, written into model cards.
pub fn landcover_rule_descriptions() -> Vec<String> {
    vec![
        format!("bare (no real labels exist): a pixel of an annual-crop label (EuroSAT AnnualCrop patch, WorldCereal temporary_crops) or a WorldCereal fallow code (1115000000, 1600000000) at a date with NDVI < {BARE_NDVI_MAX} and BSI > {BARE_BSI_MIN} is labelled bare"),
        "EuroSAT patch consistency: River/SeaLake pixels are water only if MNDWI > 0 (else dropped); Forest pixels need NDVI >= 0.5; Pasture/HerbaceousVegetation need NDVI >= 0.2; PermanentCrop needs NDVI >= 0.15; Highway/Industrial/Residential pixels with NDVI >= 0.3 are dropped; any non-water patch pixel with MNDWI > 0 is dropped".into(),
        "EuroSAT mapping: AnnualCrop->annual_crop, PermanentCrop->orchard, Forest->tree, Pasture/HerbaceousVegetation->grass, River/SeaLake->water, Highway/Industrial/Residential->built".into(),
        "WorldCereal mapping (LANDCOVER10 of ewoc_code): temporary_crops->annual_crop, permanent_crops->orchard, trees->tree, grasslands/temporary_grasses->grass, water->water, built_up->built; every valid date (no band 65535/0) of a sample is one pixel sample, grouped by sample_id".into(),
        "WorldCereal date consistency: grass dates with NDVI < 0.15, tree dates with NDVI < 0.2, built dates with NDVI >= 0.35, water dates with MNDWI <= 0, fallow dates that are not bare, and non-water dates with MNDWI > 0 are dropped; shrubland, wetlands and 'ignore' codes are not used".into(),
    ]
}

/// Label rule for one EuroSAT pixel of a patch of class `class_name`.
pub fn eurosat_pixel_label(class_name: &str, dn: &[f32; N_BANDS]) -> PixelDecision {
    let idx = spectral_indices(&reflectance(dn));
    let ndvi = idx[index::NDVI];
    let mndwi = idx[index::MNDWI];
    let bsi = idx[index::BSI];
    let is_bare = ndvi < BARE_NDVI_MAX && bsi > BARE_BSI_MIN;
    match class_name {
        "River" | "SeaLake" => {
            if mndwi > 0.0 {
                PixelDecision::Keep(LandCoverClass::Water)
            } else {
                PixelDecision::Drop("land pixel in a water patch (MNDWI <= 0)")
            }
        }
        _ if mndwi > 0.0 => PixelDecision::Drop("water-like pixel in a land patch (MNDWI > 0)"),
        "AnnualCrop" => {
            if is_bare {
                PixelDecision::DerivedBare
            } else {
                PixelDecision::Keep(LandCoverClass::AnnualCrop)
            }
        }
        "PermanentCrop" => {
            if ndvi < 0.15 {
                PixelDecision::Drop("unvegetated pixel in an orchard patch (NDVI < 0.15)")
            } else {
                PixelDecision::Keep(LandCoverClass::Orchard)
            }
        }
        "Forest" => {
            if ndvi < 0.5 {
                PixelDecision::Drop("sparse pixel in a forest patch (NDVI < 0.5)")
            } else {
                PixelDecision::Keep(LandCoverClass::Tree)
            }
        }
        "Pasture" | "HerbaceousVegetation" => {
            if ndvi < 0.2 {
                PixelDecision::Drop("unvegetated pixel in a grass patch (NDVI < 0.2)")
            } else {
                PixelDecision::Keep(LandCoverClass::Grass)
            }
        }
        "Highway" | "Industrial" | "Residential" => {
            if ndvi >= 0.3 {
                PixelDecision::Drop("vegetated pixel in a built-up patch (NDVI >= 0.3)")
            } else {
                PixelDecision::Keep(LandCoverClass::Built)
            }
        }
        _ => PixelDecision::Drop("unknown EuroSAT class"),
    }
}

/// True for the WorldCereal codes treated as fallow: 1115000000 (fallow within temporary
/// crops: CROPTYPE24 `no_crop`, LANDCOVER10 `ignore`) and 1600000000 (fallow land).
pub fn is_fallow_code(ewoc_code: u64) -> bool {
    matches!(ewoc_code, 1_115_000_000 | 1_600_000_000)
}

/// The stratum name of a WorldCereal sample: its LANDCOVER10 class, or `fallow`.
pub fn worldcereal_stratum(lc10: &str, ewoc_code: u64) -> String {
    if is_fallow_code(ewoc_code) {
        "fallow".into()
    } else {
        lc10.to_string()
    }
}

/// Label rule for one valid date of a WorldCereal sample.
pub fn worldcereal_pixel_label(lc10: &str, ewoc_code: u64, dn: &[f32; N_BANDS]) -> PixelDecision {
    let idx = spectral_indices(&reflectance(dn));
    let ndvi = idx[index::NDVI];
    let mndwi = idx[index::MNDWI];
    let bsi = idx[index::BSI];
    let is_bare = ndvi < BARE_NDVI_MAX && bsi > BARE_BSI_MIN;
    if is_fallow_code(ewoc_code) {
        return if is_bare {
            PixelDecision::DerivedBare
        } else {
            PixelDecision::Drop("fallow date that is not bare")
        };
    }
    if lc10 == "water" {
        return if mndwi > 0.0 {
            PixelDecision::Keep(LandCoverClass::Water)
        } else {
            PixelDecision::Drop("water sample at a date with MNDWI <= 0")
        };
    }
    let class = match lc10 {
        "temporary_crops" => LandCoverClass::AnnualCrop,
        "permanent_crops" => LandCoverClass::Orchard,
        "trees" => LandCoverClass::Tree,
        "grasslands" | "temporary_grasses" => LandCoverClass::Grass,
        "built_up" => LandCoverClass::Built,
        _ => {
            return PixelDecision::Drop("LANDCOVER10 class not used (ignore, shrubland, wetlands)")
        }
    };
    if mndwi > 0.0 {
        return PixelDecision::Drop("water-like date of a land sample (MNDWI > 0)");
    }
    match class {
        LandCoverClass::AnnualCrop if is_bare => PixelDecision::DerivedBare,
        LandCoverClass::Grass if ndvi < 0.15 => PixelDecision::Drop("grass date with NDVI < 0.15"),
        LandCoverClass::Tree if ndvi < 0.2 => PixelDecision::Drop("tree date with NDVI < 0.2"),
        LandCoverClass::Built if ndvi >= 0.35 => {
            PixelDecision::Drop("built date with NDVI >= 0.35")
        }
        c => PixelDecision::Keep(c),
    }
}

/// The crop-type mapping, as sentences, written into model cards.
pub fn croptype_rule_descriptions() -> Vec<String> {
    vec![
        "WorldCereal ewoc_code (10-digit hierarchical legend, class_mappings.json) -> crop-type class by prefix:".into(),
        "  grain as China counts it (粮食: cereals, beans, tubers): 1101xxxxxx cereals (wheat, barley, rye, oats, triticale, maize, sorghum, millet, rice), 1105xxxxxx dry pulses, 1106000020 soybean, 1107000010..1107000029 and 1107000040..1107000059 potatoes and other roots/tubers (not sugar beet) -> grain".into(),
        "  every other code of 1103..1110xxxxxx and 1112..1113xxxxxx (vegetables, oilseeds but soybean, sugar beet, fibre, herbs/spices, flowers) -> non_grain".into(),
        "  1111xxxxxx (temporary grasses, grass fodder) and 20xx/25xx (grasslands) -> grassland".into(),
        "  1115000000 and 1600000000 (fallow) -> fallow".into(),
        "  12xxxxxxxx (permanent crops: vineyards, orchards, olives, nuts) -> permanent_crop".into(),
        "  not used: 1000000000/1100000000 (unspecified cropland), 1102 and 1114 (unknown/mixed arable), 13xx-19xx, 3xxx and above (shrubs, trees, built-up, water)".into(),
    ]
}

/// Grain as Chinese statistics and the non-grain (非粮化) policy count it: cereals (谷物),
/// beans (豆类: dry pulses and soybean) and tubers (薯类: potatoes, sweet potato, cassava,
/// yam). Soybean sits under oilseeds in WorldCereal's legend and sugar beet under roots.
fn is_grain_code(ewoc_code: u64) -> bool {
    let l2 = ewoc_code / 1_000_000;
    matches!(l2, 1101 | 1105)
        || ewoc_code == 1_106_000_020
        || (1_107_000_010..=1_107_000_029).contains(&ewoc_code)
        || (1_107_000_040..=1_107_000_059).contains(&ewoc_code)
}

/// The crop-type class of a WorldCereal code, or `None` when the code is not used.
pub fn croptype_class(ewoc_code: u64) -> Option<CropTypeClass> {
    if is_fallow_code(ewoc_code) {
        return Some(CropTypeClass::Fallow);
    }
    let l1 = ewoc_code / 100_000_000; // two leading digits
    let l2 = ewoc_code / 1_000_000; // four leading digits
    if is_grain_code(ewoc_code) {
        return Some(CropTypeClass::Grain);
    }
    match (l1, l2) {
        (11, 1111) => Some(CropTypeClass::Grassland),
        (11, 1103..=1110) | (11, 1112..=1113) => Some(CropTypeClass::NonGrain),
        (12, _) => Some(CropTypeClass::PermanentCrop),
        (20, _) | (25, _) => Some(CropTypeClass::Grassland),
        _ => None,
    }
}

/// The season-cover mapping, as sentences, written into model cards.
pub fn season_cover_rule_descriptions() -> Vec<String> {
    vec![
        "WorldCereal: fallow codes 1115000000 and 1600000000 -> fallow; then LANDCOVER10 of ewoc_code: temporary_crops -> annual_crop, permanent_crops and trees -> perennial, grasslands and temporary_grasses -> grassland, water -> water, built_up -> built; shrubland, wetlands and 'ignore' codes are not used".into(),
        "EuroSAT (single dates, L1C): one pseudo-series per River/SeaLake (water) or Highway/Industrial/Residential (built) patch, made of the patch's pixels that pass the land-cover label rule (water: MNDWI > 0; built: NDVI < 0.3 and MNDWI <= 0), one per calendar month from January of 2018, at most 12; patches with fewer than 3 such pixels are dropped; other EuroSAT classes are not used".into(),
        "every series is grouped by its sample (WorldCereal sample_id, EuroSAT image id), the same groups as the land-cover and crop-type models, so a group-hash split with the same seed and fractions holds out the same samples".into(),
    ]
}

/// The season-cover class of a WorldCereal sample, or `None` when it is not used.
pub fn season_cover_class(lc10: &str, ewoc_code: u64) -> Option<SeasonCoverClass> {
    if is_fallow_code(ewoc_code) {
        return Some(SeasonCoverClass::Fallow);
    }
    match lc10 {
        "temporary_crops" => Some(SeasonCoverClass::AnnualCrop),
        "permanent_crops" | "trees" => Some(SeasonCoverClass::Perennial),
        "grasslands" | "temporary_grasses" => Some(SeasonCoverClass::Grassland),
        "water" => Some(SeasonCoverClass::Water),
        "built_up" => Some(SeasonCoverClass::Built),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_map_to_the_documented_crop_type_classes() {
        assert_eq!(croptype_class(1_101_010_011), Some(CropTypeClass::Grain)); // winter wheat
        assert_eq!(croptype_class(1_101_060_000), Some(CropTypeClass::Grain)); // maize
        assert_eq!(croptype_class(1_106_000_010), Some(CropTypeClass::NonGrain)); // sunflower
        assert_eq!(croptype_class(1_105_010_022), Some(CropTypeClass::Grain)); // pulses
        assert_eq!(croptype_class(1_106_000_020), Some(CropTypeClass::Grain)); // soybean
        assert_eq!(croptype_class(1_106_000_031), Some(CropTypeClass::NonGrain)); // rapeseed
        assert_eq!(croptype_class(1_107_000_010), Some(CropTypeClass::Grain)); // potatoes
        assert_eq!(croptype_class(1_107_000_031), Some(CropTypeClass::NonGrain)); // sugar beet
        assert_eq!(croptype_class(1_103_080_010), Some(CropTypeClass::NonGrain)); // sugar beet
        assert_eq!(
            croptype_class(1_111_020_010),
            Some(CropTypeClass::Grassland)
        );
        assert_eq!(
            croptype_class(2_001_020_022),
            Some(CropTypeClass::Grassland)
        );
        assert_eq!(croptype_class(1_115_000_000), Some(CropTypeClass::Fallow));
        assert_eq!(croptype_class(1_600_000_000), Some(CropTypeClass::Fallow));
        assert_eq!(
            croptype_class(1_201_000_010),
            Some(CropTypeClass::PermanentCrop)
        ); // grapes
        assert_eq!(croptype_class(1_000_000_000), None);
        assert_eq!(croptype_class(4_000_000_000), None);
    }

    #[test]
    fn season_cover_classes_follow_fallow_codes_then_landcover10() {
        use SeasonCoverClass as S;
        assert_eq!(season_cover_class("ignore", 1_115_000_000), Some(S::Fallow));
        assert_eq!(season_cover_class("ignore", 1_600_000_000), Some(S::Fallow));
        assert_eq!(
            season_cover_class("temporary_crops", 1_101_010_011),
            Some(S::AnnualCrop)
        );
        assert_eq!(
            season_cover_class("permanent_crops", 1_201_000_010),
            Some(S::Perennial)
        );
        assert_eq!(
            season_cover_class("trees", 3_000_000_000),
            Some(S::Perennial)
        );
        assert_eq!(
            season_cover_class("temporary_grasses", 1_111_000_000),
            Some(S::Grassland)
        );
        assert_eq!(
            season_cover_class("grasslands", 2_000_000_000),
            Some(S::Grassland)
        );
        assert_eq!(season_cover_class("water", 5_000_000_000), Some(S::Water));
        assert_eq!(
            season_cover_class("built_up", 6_000_000_000),
            Some(S::Built)
        );
        assert_eq!(season_cover_class("shrubland", 2_500_000_000), None);
        assert_eq!(season_cover_class("ignore", 1_000_000_000), None);
    }

    #[test]
    fn bare_rule_relabels_bright_unvegetated_cropland_only() {
        // Bright soil: red .20, NIR .22, SWIR1 .30, blue .10 -> NDVI .048, BSI .18
        let soil = [
            1000.0, 1400.0, 2000.0, 2100.0, 2150.0, 2180.0, 2200.0, 3000.0, 2500.0,
        ];
        assert_eq!(
            eurosat_pixel_label("AnnualCrop", &soil),
            PixelDecision::DerivedBare
        );
        assert_eq!(
            worldcereal_pixel_label("temporary_crops", 1_101_010_011, &soil),
            PixelDecision::DerivedBare
        );
        assert_eq!(
            worldcereal_pixel_label("", 1_115_000_000, &soil),
            PixelDecision::DerivedBare
        );
        // The same pixel in a grass parcel is dropped, not relabelled.
        assert!(matches!(
            worldcereal_pixel_label("grasslands", 2_000_000_000, &soil),
            PixelDecision::Drop(_)
        ));
        // Green canopy stays annual crop.
        let green = [
            300.0, 600.0, 300.0, 900.0, 2500.0, 3500.0, 4000.0, 2000.0, 900.0,
        ];
        assert_eq!(
            eurosat_pixel_label("AnnualCrop", &green),
            PixelDecision::Keep(LandCoverClass::AnnualCrop)
        );
    }
}
