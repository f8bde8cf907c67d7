//! EuroSAT multispectral pixel table (Sentinel-2 L1C, labels per 64×64 patch).

use std::path::Path;

use super::{read_table, Columns, FileDigest};
use crate::features::{BANDS, N_BANDS};
use crate::{ModelError, Result};

/// One row of the EuroSAT pixel table.
#[derive(Clone, Debug, PartialEq)]
pub struct EuroSatPixel {
    /// Patch id, e.g. `AnnualCrop_1412` (the split group).
    pub image_id: String,
    /// EuroSAT class name of the patch.
    pub class_name: String,
    /// DNs in [`BANDS`] order.
    pub dn: [f32; N_BANDS],
}

/// Read `eurosat_ms_pixels_16perimage.csv(.gz)` (columns `image_id,class,...,B01..B12,B8A`).
pub fn load_eurosat_pixels(path: &Path) -> Result<(Vec<EuroSatPixel>, FileDigest)> {
    let (text, digest) = read_table(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| ModelError::csv(path, e))?
        .clone();
    let cols = Columns::new(path, &header);
    let id_col = cols.get("image_id")?;
    let class_col = cols.get("class")?;
    let band_cols = BANDS
        .iter()
        .map(|b| cols.get(b))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ModelError::csv(path, e))?;
        let mut dn = [0.0; N_BANDS];
        for (i, (&c, name)) in band_cols.iter().zip(BANDS).enumerate() {
            dn[i] = cols.parse::<f32>(&record, c, name)?;
        }
        out.push(EuroSatPixel {
            image_id: record.get(id_col).unwrap_or("").to_string(),
            class_name: record.get(class_col).unwrap_or("").to_string(),
            dn,
        });
    }
    Ok((out, digest))
}
