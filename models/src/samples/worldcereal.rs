//! WorldCereal Sentinel-2 L2A time series (long table: one row per sample and date; wide table:
//! one row per sample with `OPTICAL-<band>-ts<i>-<res>` columns). 65535 = nodata / cloud.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Months, NaiveDate};

use super::{read_table, Columns, FileDigest, Observation, SeriesSample, TableKind};
use crate::features::{BANDS, N_BANDS};
use crate::{ModelError, Result};

/// WorldCereal's nodata value.
pub const NODATA: f32 = 65535.0;

/// True when every band holds a real measurement (not 65535, not 0, finite).
pub fn is_valid_dn(dn: &[f32; N_BANDS]) -> bool {
    dn.iter().all(|v| v.is_finite() && *v > 0.0 && *v < NODATA)
}

/// Load either layout, sniffed from the header.
pub fn load_worldcereal(path: &Path) -> Result<(Vec<SeriesSample>, FileDigest)> {
    match super::table_kind(path)? {
        Some(TableKind::WorldCerealLong) => load_worldcereal_long(path),
        Some(TableKind::WorldCerealWide) => load_worldcereal_wide(path),
        _ => Err(ModelError::UnknownLayout {
            path: path.to_path_buf(),
            reason: "not a WorldCereal long or wide table".into(),
        }),
    }
}

fn season_year(ref_id: &str) -> Option<i32> {
    ref_id.get(0..4).and_then(|y| y.parse().ok())
}

fn source_name(source_file: &str) -> String {
    let stem = source_file
        .trim_end_matches(".geoparquet")
        .trim_end_matches(".parquet");
    format!("worldcereal:{stem}")
}

/// Long layout: `source_file,sample_id,ref_id,...,timestamp,ewoc_code,lc10_class,B02..B12`.
pub fn load_worldcereal_long(path: &Path) -> Result<(Vec<SeriesSample>, FileDigest)> {
    let (text, digest) = read_table(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| ModelError::csv(path, e))?
        .clone();
    let cols = Columns::new(path, &header);
    let c_source = cols.get("source_file")?;
    let c_id = cols.get("sample_id")?;
    let c_ref = cols.get("ref_id")?;
    let c_time = cols.get("timestamp")?;
    let c_code = cols.get("ewoc_code")?;
    let c_lc10 = cols.get("lc10_class")?;
    let band_cols = BANDS
        .iter()
        .map(|b| cols.get(b))
        .collect::<Result<Vec<_>>>()?;
    let mut by_id: BTreeMap<String, SeriesSample> = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| ModelError::csv(path, e))?;
        let id = record.get(c_id).unwrap_or("").to_string();
        let ref_id = record.get(c_ref).unwrap_or("");
        let time_text = record.get(c_time).unwrap_or("");
        let date = NaiveDate::parse_from_str(time_text.get(0..10).unwrap_or(""), "%Y-%m-%d")
            .map_err(|_| ModelError::BadValue {
                path: path.to_path_buf(),
                line: record.position().map(|p| p.line()).unwrap_or(0),
                column: "timestamp".into(),
                value: time_text.into(),
            })?;
        let mut dn = [0.0; N_BANDS];
        for (i, (&c, name)) in band_cols.iter().zip(BANDS).enumerate() {
            dn[i] = cols.parse::<f32>(&record, c, name)?;
        }
        let entry = match by_id.get_mut(&id) {
            Some(e) => e,
            None => {
                let year = season_year(ref_id).ok_or_else(|| ModelError::BadValue {
                    path: path.to_path_buf(),
                    line: record.position().map(|p| p.line()).unwrap_or(0),
                    column: "ref_id".into(),
                    value: ref_id.into(),
                })?;
                by_id.entry(id.clone()).or_insert(SeriesSample {
                    source: source_name(record.get(c_source).unwrap_or("")),
                    group: id.clone(),
                    ewoc_code: cols.parse::<u64>(&record, c_code, "ewoc_code")?,
                    lc10_class: record.get(c_lc10).unwrap_or("").to_string(),
                    season_year: year,
                    observations: Vec::new(),
                    invalid_observations: 0,
                })
            }
        };
        if is_valid_dn(&dn) {
            entry.observations.push(Observation { date, dn });
        } else {
            entry.invalid_observations += 1;
        }
    }
    let mut out: Vec<SeriesSample> = by_id.into_values().collect();
    for s in &mut out {
        s.observations.sort_by_key(|o| o.date);
    }
    Ok((out, digest))
}

/// Wide layout: `sample_id,ref_id,...,start_date,end_date,ewoc_code,lc10_class,
/// OPTICAL-<band>-ts<i>-<10m|20m>`; step `i` is the month `start_date + i`.
pub fn load_worldcereal_wide(path: &Path) -> Result<(Vec<SeriesSample>, FileDigest)> {
    let (text, digest) = read_table(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| ModelError::csv(path, e))?
        .clone();
    let cols = Columns::new(path, &header);
    let c_id = cols.get("sample_id")?;
    let c_ref = cols.get("ref_id")?;
    let c_start = cols.get("start_date")?;
    let c_code = cols.get("ewoc_code")?;
    let c_lc10 = cols.get("lc10_class")?;
    // band -> step -> column
    let mut steps = 0usize;
    let mut band_step_col: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new(); N_BANDS];
    for (col, name) in header.iter().enumerate() {
        let parts: Vec<&str> = name.split('-').collect();
        if parts.len() == 4 && parts[0] == "OPTICAL" {
            if let (Some(b), Some(step)) = (
                BANDS.iter().position(|x| *x == parts[1]),
                parts[2]
                    .strip_prefix("ts")
                    .and_then(|s| s.parse::<usize>().ok()),
            ) {
                band_step_col[b].insert(step, col);
                steps = steps.max(step + 1);
            }
        }
    }
    for (b, m) in band_step_col.iter().enumerate() {
        if m.len() != steps {
            return Err(ModelError::MissingColumn {
                path: path.to_path_buf(),
                column: format!("OPTICAL-{}-ts*", BANDS[b]),
            });
        }
    }
    let file_stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file_stem = file_stem.split('.').next().unwrap_or("wide").to_string();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ModelError::csv(path, e))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let ref_id = record.get(c_ref).unwrap_or("");
        let start_text = record.get(c_start).unwrap_or("");
        let start = NaiveDate::parse_from_str(start_text.get(0..10).unwrap_or(""), "%Y-%m-%d")
            .map_err(|_| ModelError::BadValue {
                path: path.to_path_buf(),
                line,
                column: "start_date".into(),
                value: start_text.into(),
            })?;
        let year = season_year(ref_id).ok_or_else(|| ModelError::BadValue {
            path: path.to_path_buf(),
            line,
            column: "ref_id".into(),
            value: ref_id.into(),
        })?;
        let mut sample = SeriesSample {
            source: format!("worldcereal:{file_stem}"),
            group: record.get(c_id).unwrap_or("").to_string(),
            ewoc_code: cols.parse::<u64>(&record, c_code, "ewoc_code")?,
            lc10_class: record.get(c_lc10).unwrap_or("").to_string(),
            season_year: year,
            observations: Vec::new(),
            invalid_observations: 0,
        };
        for step in 0..steps {
            let mut dn = [0.0; N_BANDS];
            for b in 0..N_BANDS {
                let col = band_step_col[b].get(&step).copied().unwrap_or(0);
                dn[b] = cols.parse::<f32>(&record, col, BANDS[b])?;
            }
            let date = start
                .checked_add_months(Months::new(step as u32))
                .ok_or_else(|| ModelError::BadValue {
                    path: path.to_path_buf(),
                    line,
                    column: "start_date".into(),
                    value: start_text.into(),
                })?;
            if is_valid_dn(&dn) {
                sample.observations.push(Observation { date, dn });
            } else {
                sample.invalid_observations += 1;
            }
        }
        out.push(sample);
    }
    Ok((out, digest))
}
