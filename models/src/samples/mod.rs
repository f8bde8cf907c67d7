//! Labelled samples from the real tables shipped in `fixtures/data`: EuroSAT pixels and
//! WorldCereal time series. Loaders return typed samples plus a fingerprint (sha256) of each
//! input table, and apply documented labelling rules (see [`rules`]).

pub mod eurosat;
pub mod rules;
pub mod worldcereal;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::classes::{CropTypeClass, LandCoverClass, SeasonCoverClass};
use crate::features::N_BANDS;
use crate::{ModelError, Result};

pub use eurosat::load_eurosat_pixels;
pub use worldcereal::{load_worldcereal, load_worldcereal_long, load_worldcereal_wide};

/// One labelled pixel at one date.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelSample {
    /// Data source, `family:detail` (e.g. `eurosat:l1c`, `worldcereal:dekad_2023_FRA`).
    pub source: String,
    /// The group this pixel belongs to (EuroSAT patch id, WorldCereal sample id): splits never
    /// separate a group.
    pub group: String,
    /// The group's original label (used to stratify the split), e.g. `eurosat:Forest`.
    pub stratum: String,
    /// Training label.
    pub class: LandCoverClass,
    /// Digital numbers (reflectance × 10000) in [`crate::features::BANDS`] order.
    pub dn: [f32; N_BANDS],
}

impl PixelSample {
    /// The source family: the part of `source` before `:`.
    pub fn source_family(&self) -> &str {
        source_family(&self.source)
    }
}

/// The part of a source name before `:`.
pub fn source_family(source: &str) -> &str {
    source.split(':').next().unwrap_or(source)
}

/// One clear observation of a time series.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Acquisition (or composite) date.
    pub date: NaiveDate,
    /// Digital numbers in [`crate::features::BANDS`] order.
    pub dn: [f32; N_BANDS],
}

/// One labelled point/parcel with its valid observations (clouds and nodata removed).
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSample {
    /// Data source, `worldcereal:<file>`.
    pub source: String,
    /// WorldCereal sample id (the split group).
    pub group: String,
    /// WorldCereal hierarchical legend code.
    pub ewoc_code: u64,
    /// WorldCereal LANDCOVER10 class name of `ewoc_code`.
    pub lc10_class: String,
    /// The labelled season (year of the reference dataset).
    pub season_year: i32,
    /// Valid observations, sorted by date.
    pub observations: Vec<Observation>,
    /// Number of observations dropped as nodata / cloud (any band 65535 or 0).
    pub invalid_observations: usize,
}

/// sha256 of one input table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// File name (no directory).
    pub name: String,
    /// Hex sha256 of the file bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Fingerprint of the training tables: each file's digest and one combined hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Per-file digests, sorted by name.
    pub files: Vec<FileDigest>,
    /// sha256 over the sorted `name:sha256` lines.
    pub sha256: String,
}

impl DataFingerprint {
    /// Combine digests.
    pub fn new(mut files: Vec<FileDigest>) -> Self {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files.dedup();
        let mut h = Sha256::new();
        for f in &files {
            h.update(format!("{}:{}\n", f.name, f.sha256));
        }
        Self {
            files,
            sha256: hex(&h.finalize()),
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of any input file (a vector label file, a scene), read in 1 MiB chunks.
pub fn file_digest(path: &Path) -> Result<FileDigest> {
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileDigest {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: hex(&h.finalize()),
        bytes,
    })
}

/// A table read into memory: its text (gunzipped when the name ends in `.gz`) and its digest.
pub(crate) fn read_table(path: &Path) -> Result<(String, FileDigest)> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    let digest = FileDigest {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: hex(&Sha256::digest(&bytes)),
        bytes: bytes.len() as u64,
    };
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_string(&mut s)
            .map_err(|e| ModelError::io(path, e))?;
        s
    } else {
        String::from_utf8(bytes).map_err(|e| {
            ModelError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?
    };
    Ok((text, digest))
}

/// Column positions of a CSV header.
pub(crate) struct Columns {
    path: PathBuf,
    index: BTreeMap<String, usize>,
}

impl Columns {
    pub(crate) fn new(path: &Path, header: &csv::StringRecord) -> Self {
        Self {
            path: path.to_path_buf(),
            index: header
                .iter()
                .enumerate()
                .map(|(i, h)| (h.trim().to_string(), i))
                .collect(),
        }
    }
    pub(crate) fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
    pub(crate) fn get(&self, name: &str) -> Result<usize> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| ModelError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
            })
    }
    pub(crate) fn parse<T: std::str::FromStr>(
        &self,
        record: &csv::StringRecord,
        col: usize,
        name: &str,
    ) -> Result<T> {
        let text = record.get(col).unwrap_or("").trim();
        text.parse::<T>().map_err(|_| ModelError::BadValue {
            path: self.path.clone(),
            line: record.position().map(|p| p.line()).unwrap_or(0),
            column: name.to_string(),
            value: text.to_string(),
        })
    }
}

/// What kind of table a file is, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TableKind {
    /// `eurosat_ms_pixels_16perimage.csv(.gz)`: one pixel per row.
    EuroSatPixels,
    /// `worldcereal_s2l2a_timeseries_long.csv(.gz)`: one (sample, date) per row.
    WorldCerealLong,
    /// `worldcereal_public_extractions_ssd_wide.csv(.gz)`: one sample per row.
    WorldCerealWide,
}

/// Sniff a table's kind from its header; `None` for tables no loader reads.
pub fn table_kind(path: &Path) -> Result<Option<TableKind>> {
    let (text, _) = read_table(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| ModelError::csv(path, e))?;
    let cols = Columns::new(path, header);
    Ok(if cols.has("image_id") && cols.has("B02") {
        Some(TableKind::EuroSatPixels)
    } else if cols.has("timestamp") && cols.has("ewoc_code") && cols.has("B02") {
        Some(TableKind::WorldCerealLong)
    } else if cols.has("ewoc_code") && cols.has("OPTICAL-B02-ts0-10m") {
        Some(TableKind::WorldCerealWide)
    } else {
        None
    })
}

/// Expand paths: files are kept (they must be known tables), directories are searched
/// recursively for `.csv` / `.csv.gz` tables of a known kind. Sorted, deduplicated.
pub fn find_tables(paths: &[PathBuf]) -> Result<Vec<(PathBuf, TableKind)>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir).map_err(|e| ModelError::io(&dir, e))?;
                for entry in entries {
                    let path = entry.map_err(|e| ModelError::io(&dir, e))?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else {
                        let name = path.to_string_lossy();
                        if name.ends_with(".csv") || name.ends_with(".csv.gz") {
                            if let Some(kind) = table_kind(&path)? {
                                out.push((path, kind));
                            }
                        }
                    }
                }
            }
        } else {
            match table_kind(p)? {
                Some(kind) => out.push((p.clone(), kind)),
                None => {
                    return Err(ModelError::UnknownLayout {
                        path: p.clone(),
                        reason: "expected the EuroSAT pixel table or a WorldCereal long/wide table"
                            .into(),
                    })
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The land-cover training set.
#[derive(Clone, Debug, Default)]
pub struct LandCoverSamples {
    /// Labelled pixels.
    pub samples: Vec<PixelSample>,
    /// Input tables.
    pub fingerprint: DataFingerprint,
    /// How many pixels each rule kept, relabelled or dropped.
    pub rule_counts: BTreeMap<String, u64>,
    /// Labelling rules of these samples beyond the built-in table rules (e.g. how a vector
    /// label file's class values were mapped); appended to the card's `training.label_rules`.
    pub label_rules: Vec<String>,
}

impl LandCoverSamples {
    /// Add another sample set: samples appended, fingerprints combined, counts summed.
    pub fn merge(&mut self, other: LandCoverSamples) {
        self.samples.extend(other.samples);
        self.fingerprint = merge_fingerprints(&self.fingerprint, &other.fingerprint);
        merge_counts(&mut self.rule_counts, other.rule_counts);
        self.label_rules.extend(other.label_rules);
    }
}

/// A training set of labelled season series (crop type, season cover).
#[derive(Clone, Debug)]
pub struct SeriesSamples<C> {
    /// Labelled series.
    pub samples: Vec<(SeriesSample, C)>,
    /// Input tables.
    pub fingerprint: DataFingerprint,
    /// How many series each rule kept or dropped.
    pub rule_counts: BTreeMap<String, u64>,
    /// Labelling rules beyond the built-in table rules (see [`LandCoverSamples::label_rules`]).
    pub label_rules: Vec<String>,
}

/// The crop-type training set.
pub type CropTypeSamples = SeriesSamples<CropTypeClass>;
/// The season-cover training set.
pub type SeasonCoverSamples = SeriesSamples<SeasonCoverClass>;

impl<C> Default for SeriesSamples<C> {
    fn default() -> Self {
        Self {
            samples: Vec::new(),
            fingerprint: DataFingerprint::default(),
            rule_counts: BTreeMap::new(),
            label_rules: Vec::new(),
        }
    }
}

impl<C: std::fmt::Display> SeriesSamples<C> {
    /// Keep a WorldCereal series with its class, or count why it is dropped: `unused` when it
    /// has no class, or no valid observation.
    fn push_labelled(&mut self, s: SeriesSample, class: Option<C>, unused: &str) {
        let key = match &class {
            Some(c) if !s.observations.is_empty() => format!("{}: {c}", s.source),
            Some(_) => format!("{}: dropped, no valid observation", s.source),
            None => format!("{}: dropped, {unused}", s.source),
        };
        *self.rule_counts.entry(key).or_default() += 1;
        if let Some(c) = class.filter(|_| !s.observations.is_empty()) {
            self.samples.push((s, c));
        }
    }
}

impl<C> SeriesSamples<C> {
    /// Add another sample set: series appended, fingerprints combined, counts summed.
    pub fn merge(&mut self, other: SeriesSamples<C>) {
        self.samples.extend(other.samples);
        self.fingerprint = merge_fingerprints(&self.fingerprint, &other.fingerprint);
        merge_counts(&mut self.rule_counts, other.rule_counts);
        self.label_rules.extend(other.label_rules);
    }
}

fn merge_fingerprints(a: &DataFingerprint, b: &DataFingerprint) -> DataFingerprint {
    DataFingerprint::new(a.files.iter().chain(&b.files).cloned().collect())
}

fn merge_counts(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

/// Load land-cover pixels from files or directories (EuroSAT pixel table, WorldCereal tables).
pub fn load_landcover(paths: &[PathBuf]) -> Result<LandCoverSamples> {
    let tables = find_tables(paths)?;
    if tables.is_empty() {
        return Err(ModelError::NotEnoughData(format!(
            "no EuroSAT or WorldCereal table found in {paths:?}"
        )));
    }
    let mut out = LandCoverSamples::default();
    let mut digests = Vec::new();
    for (path, kind) in tables {
        match kind {
            TableKind::EuroSatPixels => {
                let (pixels, digest) = load_eurosat_pixels(&path)?;
                digests.push(digest);
                for p in pixels {
                    let decision = rules::eurosat_pixel_label(&p.class_name, &p.dn);
                    push_pixel(
                        &mut out,
                        decision,
                        "eurosat:l1c",
                        &p.image_id,
                        &format!("eurosat:{}", p.class_name),
                        p.dn,
                    );
                }
            }
            TableKind::WorldCerealLong | TableKind::WorldCerealWide => {
                let (series, digest) = load_worldcereal(&path)?;
                digests.push(digest);
                for s in series {
                    for o in &s.observations {
                        let decision =
                            rules::worldcereal_pixel_label(&s.lc10_class, s.ewoc_code, &o.dn);
                        let stratum = format!(
                            "worldcereal:{}",
                            rules::worldcereal_stratum(&s.lc10_class, s.ewoc_code)
                        );
                        push_pixel(&mut out, decision, &s.source, &s.group, &stratum, o.dn);
                    }
                }
            }
        }
    }
    out.fingerprint = DataFingerprint::new(digests);
    Ok(out)
}

fn push_pixel(
    out: &mut LandCoverSamples,
    decision: rules::PixelDecision,
    source: &str,
    group: &str,
    stratum: &str,
    dn: [f32; N_BANDS],
) {
    let family = source_family(source);
    let key = match &decision {
        rules::PixelDecision::Keep(c) => format!("{family}: kept as {c}"),
        rules::PixelDecision::DerivedBare => format!("{family}: relabelled bare (spectral rule)"),
        rules::PixelDecision::Drop(reason) => format!("{family}: dropped, {reason}"),
    };
    *out.rule_counts.entry(key).or_default() += 1;
    let class = match decision {
        rules::PixelDecision::Keep(c) => c,
        rules::PixelDecision::DerivedBare => LandCoverClass::Bare,
        rules::PixelDecision::Drop(_) => return,
    };
    out.samples.push(PixelSample {
        source: source.to_string(),
        group: group.to_string(),
        stratum: stratum.to_string(),
        class,
        dn,
    });
}

/// Load crop-type series from WorldCereal tables (files or directories); other tables are
/// ignored. Series whose code maps to no crop-type class are dropped (counted by reason).
pub fn load_croptype(paths: &[PathBuf]) -> Result<CropTypeSamples> {
    let tables = find_tables(paths)?;
    let mut out = CropTypeSamples::default();
    let mut digests = Vec::new();
    for (path, kind) in tables {
        if kind == TableKind::EuroSatPixels {
            continue;
        }
        let (series, digest) = load_worldcereal(&path)?;
        digests.push(digest);
        for s in series {
            let class = rules::croptype_class(s.ewoc_code);
            out.push_labelled(s, class, "code not a crop-type class");
        }
    }
    if out.samples.is_empty() {
        return Err(ModelError::NotEnoughData(format!(
            "no WorldCereal crop-type series found in {paths:?}"
        )));
    }
    out.fingerprint = DataFingerprint::new(digests);
    Ok(out)
}

/// The season year of the season-cover pseudo-series made of single-date EuroSAT patches
/// (see [`load_season_cover`]).
pub const PSEUDO_SERIES_YEAR: i32 = 2018;

/// Load season-cover series: WorldCereal samples by [`rules::season_cover_class`], and, for
/// the two classes no season data has (water, built), one pseudo-series per EuroSAT River /
/// SeaLake or Highway / Industrial / Residential patch: the patch's pixels that pass the
/// land-cover label rule, one per calendar month from January (a cover that does not change
/// over the season, seen as it varies across the patch). Other EuroSAT classes are not used:
/// a single date cannot show a season.
pub fn load_season_cover(paths: &[PathBuf]) -> Result<SeasonCoverSamples> {
    let tables = find_tables(paths)?;
    let mut out = SeasonCoverSamples::default();
    let mut digests = Vec::new();
    for (path, kind) in tables {
        if kind == TableKind::EuroSatPixels {
            let (pixels, digest) = load_eurosat_pixels(&path)?;
            digests.push(digest);
            let mut patches: BTreeMap<String, (SeasonCoverClass, Vec<[f32; N_BANDS]>)> =
                BTreeMap::new();
            for p in pixels {
                let class = match rules::eurosat_pixel_label(&p.class_name, &p.dn) {
                    rules::PixelDecision::Keep(LandCoverClass::Water) => SeasonCoverClass::Water,
                    rules::PixelDecision::Keep(LandCoverClass::Built) => SeasonCoverClass::Built,
                    _ => continue,
                };
                patches
                    .entry(p.image_id.clone())
                    .or_insert_with(|| (class, Vec::new()))
                    .1
                    .push(p.dn);
            }
            for (image_id, (class, dns)) in patches {
                if dns.len() < 3 {
                    *out.rule_counts
                        .entry(
                            "eurosat: patch dropped, fewer than 3 pixels pass the label rule"
                                .into(),
                        )
                        .or_default() += 1;
                    continue;
                }
                let observations = dns
                    .iter()
                    .take(12)
                    .enumerate()
                    .filter_map(|(m, dn)| {
                        NaiveDate::from_ymd_opt(PSEUDO_SERIES_YEAR, m as u32 + 1, 15)
                            .map(|date| Observation { date, dn: *dn })
                    })
                    .collect();
                *out.rule_counts
                    .entry(format!("eurosat:l1c: {class} (pseudo-series of one patch)"))
                    .or_default() += 1;
                out.samples.push((
                    SeriesSample {
                        source: "eurosat:l1c".into(),
                        group: image_id,
                        ewoc_code: 0,
                        lc10_class: String::new(),
                        season_year: PSEUDO_SERIES_YEAR,
                        observations,
                        invalid_observations: 0,
                    },
                    class,
                ));
            }
            continue;
        }
        let (series, digest) = load_worldcereal(&path)?;
        digests.push(digest);
        for s in series {
            let class = rules::season_cover_class(&s.lc10_class, s.ewoc_code);
            out.push_labelled(s, class, "class not a season-cover class");
        }
    }
    if out.samples.is_empty() {
        return Err(ModelError::NotEnoughData(format!(
            "no season-cover series found in {paths:?}"
        )));
    }
    out.fingerprint = DataFingerprint::new(digests);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_digest_equals_the_table_digest_and_merge_combines_sets() {
        let path =
            gengdi_fixtures::fixture("eurosat-ms-samples/eurosat_ms_pixels_16perimage.csv.gz");
        let (_, from_table) = read_table(&path).unwrap();
        let streamed = file_digest(&path).unwrap();
        assert_eq!(streamed, from_table);
        assert_eq!(streamed.bytes, std::fs::metadata(&path).unwrap().len());

        let digest = |name: &str| FileDigest {
            name: name.into(),
            sha256: name.repeat(2),
            bytes: 1,
        };
        let pixel = |group: &str| PixelSample {
            source: "s:x".into(),
            group: group.into(),
            stratum: "s:a".into(),
            class: LandCoverClass::Grass,
            dn: [1.0; N_BANDS],
        };
        let mut a = LandCoverSamples {
            samples: vec![pixel("g1")],
            fingerprint: DataFingerprint::new(vec![digest("b"), digest("shared")]),
            rule_counts: BTreeMap::from([("k".to_string(), 2), ("only_a".to_string(), 1)]),
            label_rules: vec!["rule a".into()],
        };
        let b = LandCoverSamples {
            samples: vec![pixel("g2"), pixel("g3")],
            fingerprint: DataFingerprint::new(vec![digest("a"), digest("shared")]),
            rule_counts: BTreeMap::from([("k".to_string(), 3)]),
            label_rules: vec!["rule b".into()],
        };
        a.merge(b);
        let groups: Vec<&str> = a.samples.iter().map(|s| s.group.as_str()).collect();
        assert_eq!(groups, ["g1", "g2", "g3"]);
        assert_eq!(
            a.fingerprint,
            DataFingerprint::new(vec![digest("a"), digest("b"), digest("shared")])
        );
        assert_eq!(a.fingerprint.files.len(), 3);
        assert_eq!(a.rule_counts["k"], 5);
        assert_eq!(a.rule_counts["only_a"], 1);
        assert_eq!(a.label_rules, ["rule a", "rule b"]);
    }
}
