//! The fast reader: pure-Rust decoding of GeoTIFF tiles and strips.
//!
//! One [`TiffReader`] is `Sync`: any number of threads read windows of the same open file
//! at once (positioned reads, no shared cursor, no lock), which GDAL's GTiff driver cannot
//! do with one dataset. A window read touches only the chunks it intersects.

mod decode;
pub mod geo;
pub mod ifd;
pub mod layout;
pub mod source;

pub use ifd::ByteOrder;
pub use layout::{ChunkShape, Compression, ImageLayout, Predictor};
pub use source::ByteSource;

use crate::dtype::{DataType, Sample};
use crate::error::{Result, TilingError};
use crate::window::PixelWindow;
use ifd::Ifd;
use ndarray::Array3;
use rayon::prelude::*;
use std::path::Path;

/// Default memory budget of one read: no window or chunk allocation may exceed it.
pub const DEFAULT_BUDGET_BYTES: u64 = 2 << 30;

/// A GeoTIFF opened for fast, parallel window reads of its full-resolution image.
#[derive(Debug)]
pub struct TiffReader {
    src: ByteSource,
    order: ByteOrder,
    big_tiff: bool,
    layout: ImageLayout,
    ifds: Vec<Ifd>,
    nodata: Option<f64>,
    budget: u64,
}

impl TiffReader {
    /// Open a file. Fails with `NotTiff` for other formats and `Unsupported` for TIFFs the
    /// fast reader does not decode (JPEG, YCbCr, 1-bit …); callers fall back to GDAL then.
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_source(ByteSource::open(path)?)
    }

    pub fn from_source(src: ByteSource) -> Result<Self> {
        let header = ifd::parse(&src)?;
        let first = &header.ifds[0];
        let layout = ImageLayout::from_ifd(src.path(), first)?;
        let nodata = first
            .get(layout::tag::GDAL_NODATA)
            .and_then(|v| v.as_str())
            .and_then(|s| s.trim().parse::<f64>().ok());
        Ok(TiffReader {
            order: header.byte_order,
            big_tiff: header.big_tiff,
            layout,
            ifds: header.ifds,
            nodata,
            src,
            budget: DEFAULT_BUDGET_BYTES,
        })
    }

    /// Set the most bytes one read may allocate.
    pub fn with_budget(mut self, bytes: u64) -> Self {
        self.budget = bytes;
        self
    }

    pub fn path(&self) -> &Path {
        self.src.path()
    }
    pub fn layout(&self) -> &ImageLayout {
        &self.layout
    }
    pub fn width(&self) -> usize {
        self.layout.width
    }
    pub fn height(&self) -> usize {
        self.layout.height
    }
    pub fn band_count(&self) -> usize {
        self.layout.samples_per_pixel
    }
    pub fn dtype(&self) -> DataType {
        self.layout.dtype
    }
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }
    pub fn is_big_tiff(&self) -> bool {
        self.big_tiff
    }
    /// The GDAL_NODATA tag, if the file has one.
    pub fn nodata(&self) -> Option<f64> {
        self.nodata
    }
    /// The first (full-resolution) IFD, for georeferencing tags.
    pub fn first_ifd(&self) -> &Ifd {
        &self.ifds[0]
    }
    /// How many reduced-resolution images (overviews) follow the main one.
    pub fn overview_count(&self) -> usize {
        self.ifds[1..]
            .iter()
            .filter(|i| i.u64_of(layout::tag::NEW_SUBFILE_TYPE).unwrap_or(0) & 0b101 == 1)
            .count()
    }

    /// Raw (still compressed) bytes of chunk `index`; `None` for a sparse chunk.
    pub fn raw_chunk(&self, index: usize) -> Result<Option<Vec<u8>>> {
        let l = &self.layout;
        let (Some(&offset), Some(&count)) = (l.offsets.get(index), l.byte_counts.get(index)) else {
            return Err(self.no_such_chunk(index));
        };
        if count == 0 {
            return Ok(None);
        }
        let n = self.check_budget(count as u128, "a compressed chunk")?;
        self.src
            .read_exact_at(offset, n, &format!("chunk {index}"))
            .map(Some)
    }

    fn no_such_chunk(&self, index: usize) -> TilingError {
        TilingError::Decode {
            path: self.path().to_path_buf(),
            chunk: index,
            reason: format!(
                "no such chunk (the image has {})",
                self.layout.offsets.len()
            ),
        }
    }

    /// Check that `index` names a chunk and `cy` is its chunk row.
    fn check_chunk(&self, index: usize, cy: usize) -> Result<()> {
        let l = &self.layout;
        let (across, down) = l.chunks_across_down();
        if index >= l.offsets.len() || index >= l.byte_counts.len() {
            return Err(self.no_such_chunk(index));
        }
        let row = (index % across.saturating_mul(down).max(1)) / across.max(1);
        if row != cy {
            return Err(TilingError::Decode {
                path: self.path().to_path_buf(),
                chunk: index,
                reason: format!("chunk {index} is in chunk row {row}, not {cy}"),
            });
        }
        Ok(())
    }

    fn check_budget(&self, bytes: u128, what: &str) -> Result<usize> {
        // No allocation may exceed isize::MAX bytes, whatever budget was set.
        if bytes > self.budget as u128 || bytes > isize::MAX as u128 {
            return Err(TilingError::OverBudget {
                path: self.path().to_path_buf(),
                what: what.to_string(),
                requested: bytes,
                budget: self.budget,
            });
        }
        Ok(bytes as usize)
    }

    /// Decode chunk `index` (at chunk row `cy`) into native-endian sample bytes.
    pub fn decode_chunk(&self, index: usize, cy: usize) -> Result<Vec<u8>> {
        self.check_chunk(index, cy)?;
        let l = &self.layout;
        let expected = self.check_budget(l.decoded_len(cy), "a decoded chunk")?;
        let rows = l.stored_rows(cy);
        let (cw, _) = l.chunk_size();
        let err = |reason: String| TilingError::Decode {
            path: self.path().to_path_buf(),
            chunk: index,
            reason,
        };
        let Some(raw) = self.raw_chunk(index)? else {
            return Ok(decode::filled(
                l.dtype,
                self.nodata.unwrap_or(0.0),
                expected,
            ));
        };
        let mut bytes = decode::decompress(l.compression, &raw, expected).map_err(err)?;
        decode::finish(l, self.order, &mut bytes, rows, cw * l.samples_in_chunk()).map_err(err)?;
        Ok(bytes)
    }

    /// Decompress chunk `index` without converting it: what "raw decompression speed of the
    /// same bytes" means in the benchmarks.
    pub fn decompress_only(&self, index: usize, cy: usize) -> Result<usize> {
        self.check_chunk(index, cy)?;
        let l = &self.layout;
        let expected = self.check_budget(l.decoded_len(cy), "a decoded chunk")?;
        match self.raw_chunk(index)? {
            None => Ok(expected),
            Some(raw) => decode::decompress(l.compression, &raw, expected)
                .map(|b| b.len())
                .map_err(|reason| TilingError::Decode {
                    path: self.path().to_path_buf(),
                    chunk: index,
                    reason,
                }),
        }
    }

    fn validate(&self, window: &PixelWindow, bands: &[usize]) -> Result<()> {
        if !window.is_inside(self.width(), self.height()) {
            return Err(TilingError::WindowOutOfBounds {
                path: self.path().to_path_buf(),
                window: window.to_string(),
                width: self.width(),
                height: self.height(),
            });
        }
        if let Some(&b) = bands.iter().find(|b| **b >= self.band_count()) {
            return Err(TilingError::NoSuchBand {
                path: self.path().to_path_buf(),
                band: b + 1,
                count: self.band_count(),
            });
        }
        Ok(())
    }

    /// The chunks a window needs, as (chunk index, chunk column, chunk row, plane).
    fn chunks_for(
        &self,
        window: &PixelWindow,
        bands: &[usize],
    ) -> Vec<(usize, usize, usize, usize)> {
        let l = &self.layout;
        let (cw, ch) = l.chunk_size();
        if window.is_empty() {
            return Vec::new();
        }
        let cx0 = window.col_off as usize / cw;
        let cx1 = (window.col_end() as usize - 1) / cw;
        let cy0 = window.row_off as usize / ch;
        let cy1 = (window.row_end() as usize - 1) / ch;
        let planes: Vec<usize> = if l.planar_separate {
            let mut p = bands.to_vec();
            p.sort_unstable();
            p.dedup();
            p
        } else {
            vec![0]
        };
        let mut out = Vec::new();
        for &plane in &planes {
            for cy in cy0..=cy1 {
                for cx in cx0..=cx1 {
                    out.push((l.chunk_index(plane, cx, cy), cx, cy, plane));
                }
            }
        }
        out
    }

    /// Read `bands` (0-based) of `window` as `T`, shape (bands, rows, cols), on this thread.
    pub fn read_window<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
    ) -> Result<Array3<T>> {
        self.read_window_impl(window, bands, false)
    }

    /// Like [`read_window`](Self::read_window), decoding the chunks on the rayon pool.
    pub fn read_window_par<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
    ) -> Result<Array3<T>> {
        self.read_window_impl(window, bands, true)
    }

    fn read_window_impl<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
        parallel: bool,
    ) -> Result<Array3<T>> {
        self.validate(window, bands)?;
        self.check_budget(
            bands.len() as u128
                * window.cols as u128
                * window.rows as u128
                * std::mem::size_of::<T>() as u128,
            &format!("reading {} bands of {window}", bands.len()),
        )?;
        let mut out = Array3::<T>::default((bands.len(), window.rows, window.cols));
        let chunks = self.chunks_for(window, bands);
        let Some(out_slice) = out.as_slice_mut() else {
            return Err(TilingError::malformed(
                self.path(),
                "output array not contiguous",
            ));
        };
        if parallel {
            // Decode in batches whose decoded chunks together fit the budget (and at least
            // one chunk each), so that a small window over many large chunks never holds
            // more than one budget of decoded chunks at once.
            let mut rest = &chunks[..];
            while !rest.is_empty() {
                let mut held = 0u128;
                let take = rest
                    .iter()
                    .take_while(|&&(_, _, cy, _)| {
                        held = held.saturating_add(self.layout.decoded_len(cy));
                        held <= self.budget as u128
                    })
                    .count()
                    .max(1);
                let (batch, later) = rest.split_at(take);
                let decoded: Vec<Vec<u8>> = batch
                    .par_iter()
                    .map(|&(idx, _, cy, _)| self.decode_chunk(idx, cy))
                    .collect::<Result<_>>()?;
                for (bytes, &(_, cx, cy, plane)) in decoded.iter().zip(batch) {
                    self.copy_chunk(bytes, cx, cy, plane, window, bands, out_slice);
                }
                rest = later;
            }
        } else {
            for &(idx, cx, cy, plane) in &chunks {
                let bytes = self.decode_chunk(idx, cy)?;
                self.copy_chunk(&bytes, cx, cy, plane, window, bands, out_slice);
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_chunk<T: Sample>(
        &self,
        bytes: &[u8],
        cx: usize,
        cy: usize,
        plane: usize,
        window: &PixelWindow,
        bands: &[usize],
        out: &mut [T],
    ) {
        macro_rules! go {
            ($n:ty, $conv:ident) => {
                copy_typed::<T, $n>(
                    &self.layout,
                    bytes,
                    cx,
                    cy,
                    plane,
                    window,
                    bands,
                    out,
                    |b| <$n>::from_ne_bytes(b.try_into().unwrap_or_default()),
                    T::$conv,
                )
            };
        }
        match self.layout.dtype {
            DataType::U8 => go!(u8, from_u8),
            DataType::I8 => go!(i8, from_i8),
            DataType::U16 => go!(u16, from_u16),
            DataType::I16 => go!(i16, from_i16),
            DataType::U32 => go!(u32, from_u32),
            DataType::I32 => go!(i32, from_i32),
            DataType::U64 => go!(u64, from_u64),
            DataType::I64 => go!(i64, from_i64),
            DataType::F32 => go!(f32, from_f32),
            DataType::F64 => go!(f64, from_f64),
        }
    }
}

/// Copy the part of one decoded chunk that falls in `window` into `out`
/// (bands × window rows × window cols, row-major).
#[allow(clippy::too_many_arguments)]
#[inline]
fn copy_typed<T: Sample, N: Copy>(
    l: &ImageLayout,
    bytes: &[u8],
    cx: usize,
    cy: usize,
    plane: usize,
    window: &PixelWindow,
    bands: &[usize],
    out: &mut [T],
    read: impl Fn(&[u8]) -> N,
    conv: impl Fn(N) -> T,
) {
    let (cw, ch) = l.chunk_size();
    let size = std::mem::size_of::<N>();
    let spc = l.samples_in_chunk();
    let chunk = PixelWindow::new((cx * cw) as i64, (cy * ch) as i64, cw, l.stored_rows(cy));
    let part = chunk.intersection(window);
    if part.is_empty() {
        return;
    }
    let (wr, wc) = (window.rows, window.cols);
    for (bi, &band) in bands.iter().enumerate() {
        let sample = if l.planar_separate {
            if band != plane {
                continue;
            }
            0
        } else {
            band
        };
        for r in part.row_off..part.row_end() {
            let row_in_chunk = (r - chunk.row_off) as usize;
            let row_in_window = (r - window.row_off) as usize;
            let src_row = row_in_chunk * cw * spc;
            let dst_row = bi * wr * wc + row_in_window * wc;
            let c_in_chunk0 = (part.col_off - chunk.col_off) as usize;
            let c_in_window0 = (part.col_off - window.col_off) as usize;
            let dst = &mut out[dst_row + c_in_window0..dst_row + c_in_window0 + part.cols];
            for (k, d) in dst.iter_mut().enumerate() {
                let s = (src_row + (c_in_chunk0 + k) * spc + sample) * size;
                *d = conv(read(&bytes[s..s + size]));
            }
        }
    }
}
