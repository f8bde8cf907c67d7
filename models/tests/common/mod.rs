#![allow(dead_code, clippy::unwrap_used)]
//! Helpers shared by the integration tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use gengdi_models::samples::{
    load_croptype, load_landcover, load_season_cover, CropTypeSamples, LandCoverSamples,
    SeasonCoverSamples, SeriesSamples,
};

pub fn data_paths() -> Vec<PathBuf> {
    vec![
        gengdi_fixtures::fixture("eurosat-ms-samples/eurosat_ms_pixels_16perimage.csv.gz"),
        gengdi_fixtures::fixture(
            "worldcereal-s2-timeseries/worldcereal_s2l2a_timeseries_long.csv.gz",
        ),
        gengdi_fixtures::fixture(
            "worldcereal-s2-timeseries/worldcereal_public_extractions_ssd_wide.csv.gz",
        ),
    ]
}

pub fn landcover() -> LandCoverSamples {
    load_landcover(&data_paths()).unwrap()
}

pub fn croptype() -> CropTypeSamples {
    load_croptype(&data_paths()).unwrap()
}

pub fn season_cover() -> SeasonCoverSamples {
    load_season_cover(&data_paths()).unwrap()
}

/// Keep the first `per_stratum` groups (sorted by id) of every stratum.
pub fn tiny_landcover(all: &LandCoverSamples, per_stratum: usize) -> LandCoverSamples {
    let mut groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &all.samples {
        groups.entry(&s.stratum).or_default().insert(&s.group);
    }
    let keep: BTreeSet<&str> = groups
        .values()
        .flat_map(|g| g.iter().take(per_stratum).copied())
        .collect();
    LandCoverSamples {
        samples: all
            .samples
            .iter()
            .filter(|s| keep.contains(s.group.as_str()))
            .cloned()
            .collect(),
        fingerprint: all.fingerprint.clone(),
        rule_counts: all.rule_counts.clone(),
        label_rules: all.label_rules.clone(),
    }
}

pub fn tiny_croptype<C: Clone + std::fmt::Display>(
    all: &SeriesSamples<C>,
    per_class: usize,
) -> SeriesSamples<C> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let samples = all
        .samples
        .iter()
        .filter(|(s, c)| {
            let n = count.entry(format!("{}:{c}", s.source)).or_default();
            *n += 1;
            *n <= per_class
        })
        .cloned()
        .collect();
    SeriesSamples {
        samples,
        fingerprint: all.fingerprint.clone(),
        rule_counts: all.rule_counts.clone(),
        label_rules: all.label_rules.clone(),
    }
}
