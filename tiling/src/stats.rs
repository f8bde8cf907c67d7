//! Per-band statistics computed by streaming the scene through its reader, strip by strip
//! in parallel, so memory stays at a few strips whatever the scene size.

use crate::error::Result;
use crate::scene::Scene;
use crate::window::PixelWindow;
use rayon::prelude::*;
use serde::Serialize;

/// Statistics of one band over its valid pixels (nodata and NaN excluded).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BandStats {
    pub band: usize,
    pub name: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub sum: f64,
    pub valid_count: u64,
}

#[derive(Clone, Copy)]
struct Acc {
    min: f64,
    max: f64,
    sum: f64,
    n: u64,
}

impl Acc {
    const EMPTY: Acc = Acc {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        n: 0,
    };
    fn merge(self, o: Acc) -> Acc {
        Acc {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            sum: self.sum + o.sum,
            n: self.n + o.n,
        }
    }
}

/// Rows per strip: the file's chunk height where it has one, so each strip decodes each
/// chunk once.
fn strip_rows(scene: &Scene) -> usize {
    scene
        .fast_reader()
        .map(|r| r.layout().chunk_size().1)
        .unwrap_or(256)
        .clamp(1, 1024)
}

/// Min, max, mean, sum and valid-pixel count of every band.
pub fn band_stats(scene: &Scene) -> Result<Vec<BandStats>> {
    let bands: Vec<usize> = (0..scene.band_count()).collect();
    let rows = strip_rows(scene);
    let strips: Vec<PixelWindow> = (0..scene.height.div_ceil(rows))
        .map(|i| {
            let r0 = i * rows;
            PixelWindow::new(0, r0 as i64, scene.width, rows.min(scene.height - r0))
        })
        .collect();
    let nodata: Vec<Option<f64>> = scene.bands.iter().map(|b| b.nodata).collect();
    let per_strip: Vec<Vec<Acc>> = strips
        .par_iter()
        .map(|w| {
            let data = scene.read_window::<f64>(w, &bands)?;
            Ok(data
                .outer_iter()
                .enumerate()
                .map(|(b, plane)| {
                    let mut a = Acc::EMPTY;
                    for &v in plane.iter() {
                        if v.is_nan() || Some(v) == nodata[b] {
                            continue;
                        }
                        a.min = a.min.min(v);
                        a.max = a.max.max(v);
                        a.sum += v;
                        a.n += 1;
                    }
                    a
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    Ok(bands
        .iter()
        .map(|&b| {
            let a = per_strip.iter().fold(Acc::EMPTY, |acc, s| acc.merge(s[b]));
            let some = |v: f64| (a.n > 0).then_some(v);
            BandStats {
                band: b + 1,
                name: scene.bands[b].name.clone(),
                min: some(a.min),
                max: some(a.max),
                mean: some(a.sum / a.n.max(1) as f64),
                sum: a.sum,
                valid_count: a.n,
            }
        })
        .collect())
}
