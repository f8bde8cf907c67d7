//! What the tiles accumulate: per-parcel evidence in integers (fixed point) and the
//! violating pixels (candidates), and their merge across tiles.
//!
//! A tile's [`TileOut`] is a plain value: the sums of its pixels per parcel and its
//! candidates. Merging is addition of integers and concatenation of candidates (sorted
//! afterwards), so the result does not depend on the order the tiles finish in, nor on the
//! tile size. A `TileOut` depends only on its tile's pixels and the run's inputs
//! (`tile::analyze_tile`), so one kept from an earlier run merges the same as a fresh one.

use crate::rules::{PixelKind, SeasonMeasures};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Fixed-point scale of accumulated reflectance sums: Σ round(DN·Q).
pub(super) const Q: f64 = 16.0;
/// Fixed-point scale of accumulated NDVI and confidence sums: Σ round(v·QC).
pub(super) const QC: f64 = 1000.0;

/// One date of a parcel's sums.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct DateAcc {
    /// Clear pixels.
    pub clear: u64,
    /// Clear pixels per land-cover code (index 0: none).
    pub class_counts: Vec<u64>,
    /// Σ round(DN·Q) of the model bands over clear cultivated pixels, and their count.
    pub band_sums: Vec<i64>,
    /// Σ round(DN·Q) of the model bands over every clear pixel (the parcel's mean indices).
    pub clear_band_sums: Vec<i64>,
    pub cultivated: u64,
    /// Σ round(NDVI·QC) over the clear pixels.
    pub ndvi_sum: i64,
    /// Σ round(DN·Q) of the model bands over clear tree-planting pixels (empty until the
    /// parcel has one), and their count: the season the crop-type model checks.
    pub woody_band_sums: Vec<i64>,
    pub woody: u64,
}

/// A parcel's evidence, summed over its pixels (of one tile, or of all once merged).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct ParcelAcc {
    pub pixels: u64,
    /// Pixels with a value (model bands not nodata) on at least one date.
    pub observed: u64,
    /// Pixels per [`PixelKind`] code.
    pub kinds: [u64; 7],
    pub dates: Vec<DateAcc>,
    /// Σ round(confidence·QC) over the clear observations, and their count.
    pub conf_sum: i64,
    pub conf_n: u64,
    /// Clear baseline observations per land-cover code (empty without a baseline).
    pub baseline: Vec<u64>,
}

impl ParcelAcc {
    pub fn new(n_dates: usize, n_classes: usize, n_bands: usize) -> Self {
        ParcelAcc {
            dates: (0..n_dates)
                .map(|_| DateAcc {
                    class_counts: vec![0; n_classes + 1],
                    band_sums: vec![0; n_bands],
                    clear_band_sums: vec![0; n_bands],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Add another tile's sums of the same parcel.
    pub fn merge(&mut self, o: &ParcelAcc) {
        self.pixels += o.pixels;
        self.observed += o.observed;
        for (a, b) in self.kinds.iter_mut().zip(o.kinds) {
            *a += b;
        }
        for (a, b) in self.dates.iter_mut().zip(&o.dates) {
            a.clear += b.clear;
            a.cultivated += b.cultivated;
            a.ndvi_sum += b.ndvi_sum;
            for (x, y) in a.class_counts.iter_mut().zip(&b.class_counts) {
                *x += y;
            }
            for (x, y) in a.band_sums.iter_mut().zip(&b.band_sums) {
                *x += y;
            }
            for (x, y) in a.clear_band_sums.iter_mut().zip(&b.clear_band_sums) {
                *x += y;
            }
            a.woody += b.woody;
            if a.woody_band_sums.is_empty() {
                a.woody_band_sums = b.woody_band_sums.clone();
            } else {
                for (x, y) in a.woody_band_sums.iter_mut().zip(&b.woody_band_sums) {
                    *x += y;
                }
            }
        }
        self.conf_sum += o.conf_sum;
        self.conf_n += o.conf_n;
        if self.baseline.len() < o.baseline.len() {
            self.baseline.resize(o.baseline.len(), 0);
        }
        for (a, b) in self.baseline.iter_mut().zip(&o.baseline) {
            *a += b;
        }
    }
}

/// A pixel whose season is a violation.
#[derive(Serialize, Deserialize)]
pub(super) struct Candidate {
    /// The parcel's label ([`crate::farmland::Parcel::index`]).
    pub parcel: u32,
    /// Grid column and row (GDAL raster sizes are C ints, so i32 holds them).
    pub col: i32,
    pub row: i32,
    pub kind: PixelKind,
    /// Dominant land-cover code over the season's clear dates.
    pub class: u8,
    /// Mean confidence × 1000.
    pub conf: u16,
    /// Clear baseline observations per land-cover code (empty without a baseline).
    pub baseline: Box<[u16]>,
    /// What the rules saw.
    pub measures: SeasonMeasures,
}

// Candidates are held for every violating pixel until the parcels are merged (millions on a
// fully farmed 10980² tile); keep them as small as before the evidence was added.
const _: () = assert!(std::mem::size_of::<Candidate>() <= 48);

/// What one tile produced: its parcels' sums (by parcel label; a parcel split by tile
/// edges appears in several tiles), its violating pixels, and where its time went. The sums
/// and candidates are what a checkpoint keeps ([`crate::checkpoint`]); the timings are not (a
/// tile read back from a checkpoint took no time).
#[derive(Default, Serialize, Deserialize)]
pub(super) struct TileOut {
    pub parcels: HashMap<u32, ParcelAcc>,
    pub candidates: Vec<Candidate>,
    #[serde(skip)]
    pub decode: Duration,
    #[serde(skip)]
    pub warp: Duration,
    #[serde(skip)]
    pub inference: Duration,
    #[serde(skip)]
    pub aggregation: Duration,
}

/// Every tile's output, merged as soon as the tile is done (integer sums and a candidate list
/// sorted afterwards: the order of merging does not change the result), so no tile's output
/// waits in memory for the others.
#[derive(Default)]
pub(super) struct Merged {
    pub acc: BTreeMap<u32, ParcelAcc>,
    pub candidates: Vec<Candidate>,
    pub decode: Duration,
    pub warp: Duration,
    pub inference: Duration,
    pub aggregation: Duration,
}

impl Merged {
    /// Merge one tile's output.
    pub fn add(&mut self, out: TileOut) {
        self.decode += out.decode;
        self.warp += out.warp;
        self.inference += out.inference;
        self.aggregation += out.aggregation;
        for (k, v) in out.parcels {
            match self.acc.entry(k) {
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&v),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(v);
                }
            }
        }
        self.candidates.extend(out.candidates);
    }
}
