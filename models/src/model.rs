//! Loading a model from its folder (card + weights) and running it. Inference takes arrays of
//! DNs with band names and a validity mask, batches internally, and returns class codes
//! (0 = nodata) and confidence (max softmax probability).

use std::path::Path;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use chrono::NaiveDate;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::card::{Architecture, ModelCard};
use crate::classes::{CropTypeClass, SeasonCoverClass, SeriesClass, Task};
use crate::features::{pixel_features, N_BANDS, N_PIXEL_FEATURES};
use crate::kernel::PixelKernel;
use crate::metrics::{EvaluationReport, Metrics};
use crate::nets::{CropTemporalNet, LandCoverMlp};
use crate::samples::{hex, Observation, PixelSample, SeriesSample};
use crate::season::series_tensors;
use crate::season::{monthly_composite, series_channels, SeasonWindow};
use crate::{ModelError, Result};

/// Pixels per forward pass unless changed with `with_batch_size`.
pub const DEFAULT_INFERENCE_BATCH: usize = 16_384;

/// Pixels per kernel call (one rayon task): 9 band planes of it fit in a core's L2 cache.
const KERNEL_CHUNK: usize = 16_384;

/// Per-pixel (or per-series) result: class code (index + 1, 0 = nodata) and confidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    /// Class codes.
    pub codes: Array1<u8>,
    /// Max softmax probability (0 for nodata).
    pub confidence: Array1<f32>,
}

/// Per-pixel result on an image grid.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassMap {
    /// Class codes `[rows, cols]`.
    pub codes: Array2<u8>,
    /// Confidence `[rows, cols]`.
    pub confidence: Array2<f32>,
}

/// Positions of the card's bands in the caller's band list, exactly [`N_BANDS`] of them (the
/// kernel's input), or a typed error.
fn kernel_band_positions(card: &ModelCard, band_names: &[&str]) -> Result<Vec<usize>> {
    let pos = band_positions(card, band_names)?;
    if pos.len() != N_BANDS {
        return Err(ModelError::ShapeMismatch {
            what: format!("the bands of model {}", card.id),
            expected: format!("{N_BANDS} bands"),
            got: format!("{} ({})", pos.len(), card.input.bands.join(", ")),
        });
    }
    Ok(pos)
}

/// Positions of the card's bands in the caller's band list, or a typed error naming the missing
/// ones. Extra input bands are ignored; order does not matter.
pub fn band_positions(card: &ModelCard, band_names: &[&str]) -> Result<Vec<usize>> {
    let mut positions = Vec::with_capacity(card.input.bands.len());
    let mut missing = Vec::new();
    for b in &card.input.bands {
        match band_names
            .iter()
            .position(|n| n.trim().eq_ignore_ascii_case(b))
        {
            Some(p) => positions.push(p),
            None => missing.push(b.clone()),
        }
    }
    if missing.is_empty() {
        Ok(positions)
    } else {
        Err(ModelError::BandMismatch {
            model_id: card.id.clone(),
            expected: card.input.bands.clone(),
            got: band_names.iter().map(|s| s.to_string()).collect(),
            missing,
        })
    }
}

fn check_weights(dir: &Path, card: &ModelCard) -> Result<std::path::PathBuf> {
    let path = dir.join(&card.weights.file);
    let bytes = std::fs::read(&path).map_err(|e| ModelError::io(&path, e))?;
    let sha = hex(&Sha256::digest(&bytes));
    if sha != card.weights.sha256 {
        return Err(ModelError::Weights {
            path,
            reason: format!(
                "sha256 {sha} does not match the card ({})",
                card.weights.sha256
            ),
        });
    }
    Ok(path)
}

/// Softmax, argmax and max probability of logits, row by row.
fn decide(logits: Tensor<2>) -> Result<(Vec<u8>, Vec<f32>)> {
    let [_, k] = logits.dims();
    let probs = softmax(logits, 1)
        .try_into_data()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
    let mut codes = Vec::with_capacity(probs.len() / k.max(1));
    let mut conf = Vec::with_capacity(probs.len() / k.max(1));
    for row in probs.chunks_exact(k.max(1)) {
        let (arg, p) = row
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |acc, (i, &v)| {
                if v > acc.1 {
                    (i, v)
                } else {
                    acc
                }
            });
        codes.push(arg as u8 + 1);
        conf.push(p);
    }
    Ok((codes, conf))
}

// ---------------------------------------------------------------- land cover

/// How a [`LandCoverModel`] classifies pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InferencePath {
    /// The fused CPU kernel ([`PixelKernel`]) with the Burn network's weights: the default.
    #[default]
    Kernel,
    /// Burn's forward on the model's device: the reference.
    Burn,
}

/// A loaded land-cover model.
#[derive(Debug)]
pub struct LandCoverModel {
    card: ModelCard,
    net: LandCoverMlp,
    kernel: PixelKernel,
    path: InferencePath,
    device: Device,
    batch_size: usize,
}

impl LandCoverModel {
    /// Load `dir/card.json` and `dir/weights.bpk` onto `device`; the network is rebuilt from the
    /// architecture config in the card, and the weights' sha256 is checked against the card.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let card = ModelCard::load(dir)?;
        card.expect_task(Task::LandCover)?;
        let Architecture::LandCoverMlp(arch) = &card.architecture else {
            return Err(ModelError::InvalidConfig(format!(
                "model {} has a land-cover task but a {:?} architecture",
                card.id, card.architecture
            )));
        };
        let path = check_weights(dir, &card)?;
        let net = arch
            .init_seeded(0, device)
            .try_load_file(&path)
            .map_err(|e| ModelError::Weights {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Self::from_parts(card, net, device.clone())
    }

    pub(crate) fn from_parts(card: ModelCard, net: LandCoverMlp, device: Device) -> Result<Self> {
        let norm = &card.input.normalisation;
        let kernel = PixelKernel::new(&net, &norm.means, &norm.stds)?;
        Ok(Self {
            card,
            net,
            kernel,
            path: InferencePath::default(),
            device,
            batch_size: DEFAULT_INFERENCE_BATCH,
        })
    }

    pub(crate) fn into_parts(self) -> (ModelCard, LandCoverMlp) {
        (self.card, self.net)
    }

    /// Pixels per forward pass (Burn path).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Classify with the kernel (default) or with Burn's forward.
    pub fn with_path(mut self, path: InferencePath) -> Self {
        self.path = path;
        self
    }

    /// How [`classify_pixels`](Self::classify_pixels) and
    /// [`classify_image`](Self::classify_image) run.
    pub fn path(&self) -> InferencePath {
        self.path
    }

    /// The fused kernel (the network's weights copied out of Burn when the model was loaded).
    pub fn kernel(&self) -> &PixelKernel {
        &self.kernel
    }

    /// The card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The Burn network (for benchmarks and the reference implementation).
    pub fn net(&self) -> &LandCoverMlp {
        &self.net
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Normalised features of pixels given as DN rows in the card's band order.
    pub fn features(&self, dn_rows: &[[f32; N_BANDS]]) -> Vec<f32> {
        let norm = &self.card.input.normalisation;
        let mut out = vec![0f32; dn_rows.len() * N_PIXEL_FEATURES];
        out.par_chunks_mut(N_PIXEL_FEATURES * 1024)
            .zip(dn_rows.par_chunks(1024))
            .for_each(|(o, rows)| {
                for (dst, dn) in o.chunks_exact_mut(N_PIXEL_FEATURES).zip(rows) {
                    let mut f = pixel_features(dn);
                    norm.apply(&mut f);
                    dst.copy_from_slice(&f);
                }
            });
        out
    }

    /// Class codes and confidence of normalised feature rows (`n × 14`, row-major). Batches
    /// run in parallel on the rayon pool (one forward pass each), so a large call uses every
    /// core; inside a one-thread pool (or a worker already busy with other tiles) they run
    /// one after the other.
    pub fn predict_features(&self, features: &[f32]) -> Result<(Vec<u8>, Vec<f32>)> {
        let n = features.len() / N_PIXEL_FEATURES;
        let batches: Vec<Result<(Vec<u8>, Vec<f32>)>> = features
            .par_chunks(self.batch_size * N_PIXEL_FEATURES)
            .map(|chunk| {
                let rows = chunk.len() / N_PIXEL_FEATURES;
                let x = Tensor::<2>::from_data(
                    TensorData::new(chunk.to_vec(), [rows, N_PIXEL_FEATURES]),
                    &self.device,
                );
                decide(self.net.forward(x))
            })
            .collect();
        let mut codes = Vec::with_capacity(n);
        let mut conf = Vec::with_capacity(n);
        for batch in batches {
            let (c, p) = batch?;
            codes.extend(c);
            conf.extend(p);
        }
        Ok((codes, conf))
    }

    /// Classify pixels: `dn` is `pixels × bands` (DN = reflectance × 10000) with `band_names`
    /// naming its columns; `valid` marks pixels to classify (others get code 0). Pixels with a
    /// non-finite DN are treated as invalid. Runs the kernel or Burn as [`Self::path`] says;
    /// large calls use the rayon pool.
    pub fn classify_pixels(
        &self,
        band_names: &[&str],
        dn: ArrayView2<f32>,
        valid: ArrayView1<bool>,
    ) -> Result<Classification> {
        if self.path == InferencePath::Burn {
            return self.classify_pixels_burn(band_names, dn, valid);
        }
        let pos = kernel_band_positions(&self.card, band_names)?;
        check_pixels_shape(band_names, dn, valid)?;
        let n = dn.nrows();
        let mut codes = vec![0u8; n];
        let mut confidence = vec![0f32; n];
        codes
            .par_chunks_mut(KERNEL_CHUNK)
            .zip(confidence.par_chunks_mut(KERNEL_CHUNK))
            .enumerate()
            .try_for_each(|(c, (codes, conf))| {
                let start = c * KERNEL_CHUNK;
                let len = codes.len();
                // Pixel rows → band planes (the kernel's layout), for this chunk only.
                let mut planes = vec![0f32; N_BANDS * len];
                let mut mask = vec![false; len];
                for i in 0..len {
                    let row = dn.row(start + i);
                    for (k, &p) in pos.iter().enumerate() {
                        planes[k * len + i] = row[p];
                    }
                    mask[i] = valid[start + i];
                }
                let views: [&[f32]; N_BANDS] =
                    std::array::from_fn(|k| &planes[k * len..(k + 1) * len]);
                self.kernel
                    .classify_planes(&views, Some(&mask), codes, conf)
            })?;
        Ok(Classification {
            codes: Array1::from(codes),
            confidence: Array1::from(confidence),
        })
    }

    /// Classify an image: `dn` is `bands × rows × cols` with `band_names` naming its bands,
    /// `valid` is `rows × cols`. Runs the kernel or Burn as [`Self::path`] says; the kernel
    /// reads the band planes where they are (rows are copied only when a plane's rows are
    /// not contiguous) and large images use the rayon pool.
    pub fn classify_image(
        &self,
        band_names: &[&str],
        dn: ArrayView3<f32>,
        valid: ArrayView2<bool>,
    ) -> Result<ClassMap> {
        if self.path == InferencePath::Burn {
            return self.classify_image_burn(band_names, dn, valid);
        }
        let (_, rows, cols) = dn.dim();
        check_image_shape(band_names, dn, valid)?;
        let pos = kernel_band_positions(&self.card, band_names)?;
        let mut codes = Array2::<u8>::zeros((rows, cols));
        let mut confidence = Array2::<f32>::zeros((rows, cols));
        if rows == 0 || cols == 0 {
            return Ok(ClassMap { codes, confidence });
        }
        let planes: Vec<ArrayView2<f32>> = pos.iter().map(|&p| dn.index_axis(Axis(0), p)).collect();
        let rows_per_task = (KERNEL_CHUNK / cols).max(1);
        let (Some(codes_flat), Some(conf_flat)) = (codes.as_slice_mut(), confidence.as_slice_mut())
        else {
            return Err(ModelError::Backend("a new array is not contiguous".into()));
        };
        codes_flat
            .par_chunks_mut(rows_per_task * cols)
            .zip(conf_flat.par_chunks_mut(rows_per_task * cols))
            .enumerate()
            .try_for_each(|(t, (codes, conf))| {
                let r0 = t * rows_per_task;
                let r1 = r0 + codes.len() / cols;
                let direct: Option<Vec<&[f32]>> = planes
                    .iter()
                    .map(|a| a.to_slice().map(|s| &s[r0 * cols..r1 * cols]))
                    .collect();
                let mask: Option<&[bool]> = valid.as_slice().map(|s| &s[r0 * cols..r1 * cols]);
                match direct {
                    Some(views) => {
                        let views: [&[f32]; N_BANDS] = std::array::from_fn(|k| views[k]);
                        match mask {
                            Some(m) => self.kernel.classify_planes(&views, Some(m), codes, conf),
                            None => {
                                let m: Vec<bool> = valid
                                    .slice(ndarray::s![r0..r1, ..])
                                    .iter()
                                    .copied()
                                    .collect();
                                self.kernel.classify_planes(&views, Some(&m), codes, conf)
                            }
                        }
                    }
                    None => {
                        // Strided planes: copy this task's rows.
                        let n = codes.len();
                        let mut buf = vec![0f32; N_BANDS * n];
                        for (k, p) in planes.iter().enumerate() {
                            for (d, s) in buf[k * n..(k + 1) * n]
                                .iter_mut()
                                .zip(p.slice(ndarray::s![r0..r1, ..]).iter())
                            {
                                *d = *s;
                            }
                        }
                        let m: Vec<bool> = valid
                            .slice(ndarray::s![r0..r1, ..])
                            .iter()
                            .copied()
                            .collect();
                        let views: [&[f32]; N_BANDS] =
                            std::array::from_fn(|k| &buf[k * n..(k + 1) * n]);
                        self.kernel.classify_planes(&views, Some(&m), codes, conf)
                    }
                }
            })?;
        Ok(ClassMap { codes, confidence })
    }

    /// [`classify_pixels`](Self::classify_pixels) with Burn's forward (the reference).
    pub fn classify_pixels_burn(
        &self,
        band_names: &[&str],
        dn: ArrayView2<f32>,
        valid: ArrayView1<bool>,
    ) -> Result<Classification> {
        let pos = band_positions(&self.card, band_names)?;
        check_pixels_shape(band_names, dn, valid)?;
        let mut rows = Vec::new();
        let mut idx = Vec::new();
        for (i, (row, &v)) in dn.axis_iter(Axis(0)).zip(valid.iter()).enumerate() {
            if !v {
                continue;
            }
            let mut px = [0f32; N_BANDS];
            for (k, &p) in pos.iter().enumerate() {
                px[k] = row[p];
            }
            if px.iter().all(|x| x.is_finite()) {
                rows.push(px);
                idx.push(i);
            }
        }
        let (c, p) = self.predict_features(&self.features(&rows))?;
        let mut codes = Array1::<u8>::zeros(dn.nrows());
        let mut confidence = Array1::<f32>::zeros(dn.nrows());
        for ((i, c), p) in idx.into_iter().zip(c).zip(p) {
            codes[i] = c;
            confidence[i] = p;
        }
        Ok(Classification { codes, confidence })
    }

    /// [`classify_image`](Self::classify_image) with Burn's forward (the reference).
    pub fn classify_image_burn(
        &self,
        band_names: &[&str],
        dn: ArrayView3<f32>,
        valid: ArrayView2<bool>,
    ) -> Result<ClassMap> {
        let (b, rows, cols) = dn.dim();
        check_image_shape(band_names, dn, valid)?;
        let pixels = dn
            .to_shape((b, rows * cols))
            .map_err(|e| ModelError::ShapeMismatch {
                what: "image".into(),
                expected: "contiguous".into(),
                got: e.to_string(),
            })?
            .t()
            .to_owned();
        let mask = valid
            .to_shape(rows * cols)
            .map_err(|e| ModelError::ShapeMismatch {
                what: "mask".into(),
                expected: "contiguous".into(),
                got: e.to_string(),
            })?
            .to_owned();
        let c = self.classify_pixels_burn(band_names, pixels.view(), mask.view())?;
        let shape_err = |e: ndarray::ShapeError| ModelError::ShapeMismatch {
            what: "class map".into(),
            expected: format!("[{rows}, {cols}]"),
            got: e.to_string(),
        };
        Ok(ClassMap {
            codes: c
                .codes
                .into_shape_with_order((rows, cols))
                .map_err(shape_err)?,
            confidence: c
                .confidence
                .into_shape_with_order((rows, cols))
                .map_err(shape_err)?,
        })
    }
}

/// `dn` is `pixels × bands` with one column per name and `valid` one flag per pixel.
fn check_pixels_shape(
    band_names: &[&str],
    dn: ArrayView2<f32>,
    valid: ArrayView1<bool>,
) -> Result<()> {
    if dn.ncols() != band_names.len() || valid.len() != dn.nrows() {
        return Err(ModelError::ShapeMismatch {
            what: "pixels × bands DN array and validity mask".into(),
            expected: format!("[n, {}] and [n]", band_names.len()),
            got: format!("{:?} and [{}]", dn.shape(), valid.len()),
        });
    }
    Ok(())
}

/// `dn` is `bands × rows × cols` with one band per name and `valid` is `rows × cols`.
fn check_image_shape(
    band_names: &[&str],
    dn: ArrayView3<f32>,
    valid: ArrayView2<bool>,
) -> Result<()> {
    let (b, rows, cols) = dn.dim();
    if b != band_names.len() || valid.dim() != (rows, cols) {
        return Err(ModelError::ShapeMismatch {
            what: "bands × rows × cols DN array and validity mask".into(),
            expected: format!("[{}, r, c] and [r, c]", band_names.len()),
            got: format!("{:?} and {:?}", dn.shape(), valid.shape()),
        });
    }
    Ok(())
}

/// Evaluate a land-cover model on labelled pixels: overall and per source.
pub fn evaluate_landcover(
    model: &LandCoverModel,
    samples: &[PixelSample],
) -> Result<EvaluationReport> {
    let rows: Vec<[f32; N_BANDS]> = samples.iter().map(|s| s.dn).collect();
    let (codes, _) = model.predict_features(&model.features(&rows))?;
    let triples: Vec<(String, usize, usize)> = samples
        .iter()
        .zip(codes)
        .map(|(s, c)| (s.source.clone(), s.class.index(), c as usize - 1))
        .collect();
    let names = model.card().class_names();
    Ok(EvaluationReport::from_triples(&names, &triples))
}

// ---------------------------------------------------------------- crop type

/// One season of one pixel or parcel: clear observations (DN in [`crate::features::BANDS`]
/// order) and the season year.
#[derive(Clone, Debug, PartialEq)]
pub struct SeasonSeries {
    /// Season (calendar year of the window).
    pub season_year: i32,
    /// Clear observations, any number, any dates.
    pub observations: Vec<Observation>,
}

/// A loaded season model: crop type or season cover (the same network on other classes).
#[derive(Debug)]
pub struct SeriesModel {
    card: ModelCard,
    net: CropTemporalNet,
    window: SeasonWindow,
    device: Device,
    batch_size: usize,
}

impl SeriesModel {
    /// Load `dir/card.json` and `dir/weights.bpk` onto `device` (sha256 checked); the card
    /// must be of `task` (crop type or season cover).
    pub fn load(dir: &Path, device: &Device, task: Task) -> Result<Self> {
        let card = ModelCard::load(dir)?;
        card.expect_task(task)?;
        let Architecture::CropTemporal(arch) = &card.architecture else {
            return Err(ModelError::InvalidConfig(format!(
                "model {} has a {} task but a {:?} architecture",
                card.id, card.task, card.architecture
            )));
        };
        let path = check_weights(dir, &card)?;
        let net = arch
            .init_seeded(0, device)
            .try_load_file(&path)
            .map_err(|e| ModelError::Weights {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self::from_parts(card, net, device.clone()))
    }

    pub(crate) fn from_parts(card: ModelCard, net: CropTemporalNet, device: Device) -> Self {
        let window = card.input.season.unwrap_or_default();
        Self {
            card,
            net,
            window,
            device,
            batch_size: 4096,
        }
    }

    pub(crate) fn into_parts(self) -> (ModelCard, CropTemporalNet) {
        (self.card, self.net)
    }

    /// Series per forward pass.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The season window.
    pub fn window(&self) -> SeasonWindow {
        self.window
    }

    /// Classify seasons (observations in the card's band order). A series with no observation
    /// inside the window gets code 0.
    pub fn classify_series(&self, series: &[SeasonSeries]) -> Result<Classification> {
        let norm = &self.card.input.normalisation;
        let prepared: Vec<(Vec<f32>, Vec<f32>)> = series
            .par_iter()
            .map(|s| {
                let (comp, valid) = monthly_composite(&s.observations, s.season_year, &self.window);
                series_channels(&comp, &valid, norm, &self.window)
            })
            .collect();
        let mut codes = Array1::<u8>::zeros(series.len());
        let mut confidence = Array1::<f32>::zeros(series.len());
        let has_data: Vec<usize> = (0..series.len())
            .filter(|&i| prepared[i].1.iter().any(|m| *m > 0.0))
            .collect();
        for chunk in has_data.chunks(self.batch_size) {
            let inputs: Vec<(Vec<f32>, Vec<f32>)> =
                chunk.iter().map(|&i| prepared[i].clone()).collect();
            let (x, m) = series_tensors(&inputs, self.window.n_slots, &self.device);
            let (c, p) = decide(self.net.forward(x, m))?;
            for ((&i, c), p) in chunk.iter().zip(c).zip(p) {
                codes[i] = c;
                confidence[i] = p;
            }
        }
        Ok(Classification { codes, confidence })
    }

    /// Classify a stack: `dn` is `pixels × dates × bands` with `band_names` naming the last axis,
    /// `valid` is `pixels × dates` (false = cloud / nodata), `dates` the acquisition dates.
    pub fn classify_stack(
        &self,
        band_names: &[&str],
        dates: &[NaiveDate],
        season_year: i32,
        dn: ArrayView3<f32>,
        valid: ArrayView2<bool>,
    ) -> Result<Classification> {
        let pos = band_positions(&self.card, band_names)?;
        let (n, t, b) = dn.dim();
        if b != band_names.len() || t != dates.len() || valid.dim() != (n, t) {
            return Err(ModelError::ShapeMismatch {
                what: "pixels × dates × bands stack, dates and validity mask".into(),
                expected: format!(
                    "[n, {}, {}] and [n, {}]",
                    dates.len(),
                    band_names.len(),
                    dates.len()
                ),
                got: format!(
                    "{:?}, {} dates, {:?}",
                    dn.shape(),
                    dates.len(),
                    valid.shape()
                ),
            });
        }
        let series: Vec<SeasonSeries> = (0..n)
            .map(|i| SeasonSeries {
                season_year,
                observations: (0..t)
                    .filter(|&d| valid[(i, d)])
                    .filter_map(|d| {
                        let mut px = [0f32; N_BANDS];
                        for (k, &p) in pos.iter().enumerate() {
                            px[k] = dn[(i, d, p)];
                        }
                        px.iter().all(|v| v.is_finite()).then_some(Observation {
                            date: dates[d],
                            dn: px,
                        })
                    })
                    .collect(),
            })
            .collect();
        self.classify_series(&series)
    }
}

/// Thresholds of the confidence sweeps in crop-type evaluations.
pub const CONFIDENCE_STEPS: [f32; 6] = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Evaluate a crop-type model on labelled series (see [`evaluate_series`]).
pub fn evaluate_croptype(
    model: &SeriesModel,
    samples: &[(SeriesSample, CropTypeClass)],
) -> Result<EvaluationReport> {
    evaluate_series(model, samples)
}

/// Evaluate a season model on labelled series: overall, per source, and derived binary
/// views — crop type: `grain_vs_rest` (grain against every other class) and
/// `grain_vs_non_grain` (temporary crops only); season cover: `perennial_vs_rest`.
pub fn evaluate_series<C: SeriesClass>(
    model: &SeriesModel,
    samples: &[(SeriesSample, C)],
) -> Result<EvaluationReport> {
    model.card().expect_task(C::TASK)?;
    let series: Vec<SeasonSeries> = samples
        .iter()
        .map(|(s, _)| SeasonSeries {
            season_year: s.season_year,
            observations: s.observations.clone(),
        })
        .collect();
    let c = model.classify_series(&series)?;
    let names = model.card().class_names();
    // A series with no valid month in the window (code 0) is not classified; it is left out.
    let triples: Vec<(String, usize, usize)> = samples
        .iter()
        .zip(c.codes.iter())
        .filter(|(_, &code)| code > 0)
        .map(|((s, class), &code)| (s.source.clone(), class.class_index(), code as usize - 1))
        .collect();
    let mut report = EvaluationReport::from_triples(&names, &triples);
    match C::TASK {
        Task::CropType => {
            let mapping: Vec<usize> = CropTypeClass::ALL
                .iter()
                .map(|c| usize::from(*c != CropTypeClass::Grain))
                .collect();
            let binary: Metrics = report.overall.collapse(&["grain", "not_grain"], &mapping);
            report.derived.insert("grain_vs_rest".into(), binary);
            // Temporary crops only: true grain or non-grain parcels; any prediction other
            // than grain counts as non-grain.
            let grain = CropTypeClass::Grain.index();
            let non_grain = CropTypeClass::NonGrain.index();
            let temporary = triples
                .iter()
                .filter(|(_, t, _)| *t == grain || *t == non_grain)
                .map(|(_, t, p)| (usize::from(*t != grain), usize::from(*p != grain)));
            report.derived.insert(
                "grain_vs_non_grain".into(),
                Metrics::from_pairs(&["grain", "non_grain"], temporary),
            );
        }
        Task::SeasonCover => {
            let mapping: Vec<usize> = SeasonCoverClass::ALL
                .iter()
                .map(|c| usize::from(*c != SeasonCoverClass::Perennial))
                .collect();
            let binary = report
                .overall
                .collapse(&["perennial", "not_perennial"], &mapping);
            report.derived.insert("perennial_vs_rest".into(), binary);
        }
        Task::LandCover => {}
    }
    let scored: Vec<(usize, usize, f32)> = samples
        .iter()
        .zip(c.codes.iter().zip(c.confidence.iter()))
        .filter(|(_, (&code, _))| code > 0)
        .map(|((_, class), (&code, &conf))| (class.class_index(), code as usize - 1, conf))
        .collect();
    for (k, name) in names.iter().enumerate() {
        report.confidence_sweeps.insert(
            name.to_string(),
            crate::metrics::confidence_sweep(k, &scored, &CONFIDENCE_STEPS),
        );
    }
    Ok(report)
}
