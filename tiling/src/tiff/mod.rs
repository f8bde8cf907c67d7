//! The fast reader: pure-Rust decoding of GeoTIFF tiles and strips.
//!
//! One [`TiffReader`] is `Sync`: any number of threads read windows of the same open file
//! at once (positioned reads, no shared cursor, no lock), which GDAL's GTiff driver cannot
//! do with one dataset. A window read touches only the chunks it intersects.

pub(crate) mod cache;
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
use ndarray::{s, Array3, ArrayViewMut3, Axis};
use rayon::prelude::*;
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

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
    cache: cache::ChunkCache,
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
            cache: cache::ChunkCache::new(0),
        })
    }

    /// Set the most bytes one read may allocate.
    pub fn with_budget(mut self, bytes: u64) -> Self {
        self.budget = bytes;
        self
    }

    /// Keep up to `bytes` of decoded chunks for reuse by later reads (0, the default,
    /// disables the cache). Tiles with halos share border chunks with their neighbours.
    pub fn with_chunk_cache(mut self, bytes: usize) -> Self {
        self.cache = cache::ChunkCache::new(bytes);
        self
    }

    /// Replace the chunk cache by an empty one of `bytes` (0 disables it).
    pub fn set_chunk_cache(&mut self, bytes: usize) {
        self.cache = cache::ChunkCache::new(bytes);
    }

    /// (hits, misses) of the chunk cache.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.stats()
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
        let mut scratch = Scratch::default();
        self.decode_chunk_into(index, cy, &mut scratch)?;
        Ok(scratch.decoded)
    }

    /// Decode chunk `index` into `scratch.decoded`, reusing the scratch buffers and
    /// decompressor state.
    fn decode_chunk_into(&self, index: usize, cy: usize, scratch: &mut Scratch) -> Result<()> {
        let l = &self.layout;
        let expected = self.check_budget(l.decoded_len(cy), "a decoded chunk")?;
        let rows = l.stored_rows(cy);
        let (cw, _) = l.chunk_size();
        if !self.read_raw_into(index, &mut scratch.raw)? {
            scratch.decoded = decode::filled(l.dtype, self.nodata.unwrap_or(0.0), expected);
            return Ok(());
        }
        let err = |reason: String| TilingError::Decode {
            path: self.path().to_path_buf(),
            chunk: index,
            reason,
        };
        decode::decompress_into(
            l.compression,
            &scratch.raw,
            &mut scratch.decoded,
            expected,
            &mut scratch.ctx,
        )
        .map_err(err)?;
        decode::finish(
            l,
            self.order,
            &mut scratch.decoded,
            rows,
            cw * l.samples_in_chunk(),
        )
        .map_err(err)
    }

    /// The compressed bytes of chunk `index` into `buf`; false for a sparse chunk.
    fn read_raw_into(&self, index: usize, buf: &mut Vec<u8>) -> Result<bool> {
        let l = &self.layout;
        let (Some(&offset), Some(&count)) = (l.offsets.get(index), l.byte_counts.get(index)) else {
            return Err(self.no_such_chunk(index));
        };
        if count == 0 {
            return Ok(false);
        }
        let n = self.check_budget(count as u128, "a compressed chunk")?;
        self.src
            .read_into(offset, n, &format!("chunk {index}"), buf)?;
        Ok(true)
    }

    /// Read and decompress chunk `index` without converting it, with the same buffers and
    /// decompressor state as a window read: what "raw decompression speed of the same
    /// bytes" means in the benchmarks. Returns the decompressed length.
    pub fn decompress_only(&self, index: usize, cy: usize) -> Result<usize> {
        self.check_chunk(index, cy)?;
        with_scratch(|scratch| {
            let l = &self.layout;
            let expected = self.check_budget(l.decoded_len(cy), "a decoded chunk")?;
            if !self.read_raw_into(index, &mut scratch.raw)? {
                return Ok(expected);
            }
            decode::decompress_into(
                l.compression,
                &scratch.raw,
                &mut scratch.decoded,
                expected,
                &mut scratch.ctx,
            )
            .map_err(|reason| TilingError::Decode {
                path: self.path().to_path_buf(),
                chunk: index,
                reason,
            })?;
            Ok(scratch.decoded.len())
        })
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
        self.fill_window(window, bands, out.view_mut(), parallel, None)?;
        Ok(out)
    }

    /// Read `bands` (0-based) of `window` as `T` into `out`, shape (bands, rows, cols) —
    /// e.g. a part of a larger array, without an intermediate one — on this thread.
    pub fn read_window_into<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
        out: ArrayViewMut3<'_, T>,
    ) -> Result<()> {
        self.read_window_into_with(window, bands, out, None)
    }

    /// As [`read_window_into`](Self::read_window_into), calling `row_hook(k, values)` on
    /// every row segment of output band `k` as soon as it is written (while it is still
    /// in the cache): a per-band conversion costs no extra pass over the window.
    pub fn read_window_into_with<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
        out: ArrayViewMut3<'_, T>,
        row_hook: Option<&RowHook<'_, T>>,
    ) -> Result<()> {
        self.validate(window, bands)?;
        if out.dim() != (bands.len(), window.rows, window.cols) {
            return Err(TilingError::malformed(
                self.path(),
                format!(
                    "reading {} bands of {window} into an array of shape {:?}",
                    bands.len(),
                    out.shape()
                ),
            ));
        }
        self.fill_window(window, bands, out, false, row_hook)
    }

    fn fill_window<T: Sample>(
        &self,
        window: &PixelWindow,
        bands: &[usize],
        out: ArrayViewMut3<'_, T>,
        parallel: bool,
        row_hook: Option<&RowHook<'_, T>>,
    ) -> Result<()> {
        if window.is_empty() || bands.is_empty() {
            return Ok(());
        }
        let plan = self.band_plan(bands);
        let cells = self.cells(window, out);
        // Each cell (the part of the window one chunk covers) is decoded and copied by one
        // task straight into its own disjoint part of the output: no buffer of decoded
        // chunks, memory bounded by one chunk per thread.
        let fill = |cell: Cell<'_, T>| {
            with_scratch(|scratch| self.fill_cell(cell, &plan, scratch, row_hook))
        };
        if parallel {
            cells.into_par_iter().try_for_each(fill)
        } else {
            cells.into_iter().try_for_each(fill)
        }
    }

    /// Which planes to decode, and for each the (output band, sample in chunk) it feeds.
    fn band_plan(&self, bands: &[usize]) -> Vec<(usize, Vec<(usize, usize)>)> {
        if !self.layout.planar_separate {
            return vec![(0, bands.iter().copied().enumerate().collect())];
        }
        let mut planes: Vec<usize> = bands.to_vec();
        planes.sort_unstable();
        planes.dedup();
        planes
            .into_iter()
            .map(|p| {
                let targets = (0..bands.len())
                    .filter(|&bi| bands[bi] == p)
                    .map(|bi| (bi, 0))
                    .collect();
                (p, targets)
            })
            .collect()
    }

    /// Cut `out` (the whole window) into one disjoint view per chunk it touches.
    fn cells<'a, T>(&self, window: &PixelWindow, out: ArrayViewMut3<'a, T>) -> Vec<Cell<'a, T>> {
        let (cw, ch) = self.layout.chunk_size();
        let (c_start, c_end) = (window.col_off as usize, window.col_end() as usize);
        let (mut r, r_end) = (window.row_off as usize, window.row_end() as usize);
        let mut cells = Vec::new();
        let mut rest_rows = out;
        while r < r_end {
            let cy = r / ch;
            let next_r = ((cy + 1) * ch).min(r_end);
            let (band_of_rows, rest) = rest_rows.split_at(Axis(1), next_r - r);
            rest_rows = rest;
            let mut rest_cols = band_of_rows;
            let mut c = c_start;
            while c < c_end {
                let cx = c / cw;
                let next_c = ((cx + 1) * cw).min(c_end);
                let (view, rest) = rest_cols.split_at(Axis(2), next_c - c);
                rest_cols = rest;
                cells.push(Cell {
                    cx,
                    cy,
                    part: PixelWindow::new(c as i64, r as i64, next_c - c, next_r - r),
                    view,
                });
                c = next_c;
            }
            r = next_r;
        }
        cells
    }

    fn fill_cell<T: Sample>(
        &self,
        mut cell: Cell<'_, T>,
        plan: &[(usize, Vec<(usize, usize)>)],
        scratch: &mut Scratch,
        row_hook: Option<&RowHook<'_, T>>,
    ) -> Result<()> {
        for (plane, targets) in plan {
            let index = self.layout.chunk_index(*plane, cell.cx, cell.cy);
            let cached;
            let bytes: &[u8] = if self.cache.is_enabled() {
                cached = match self.cache.get(index) {
                    Some(c) => c,
                    None => {
                        self.decode_chunk_into(index, cell.cy, scratch)?;
                        let c = Arc::new(std::mem::take(&mut scratch.decoded));
                        self.cache.insert(index, Arc::clone(&c));
                        c
                    }
                };
                &cached
            } else {
                self.decode_chunk_into(index, cell.cy, scratch)?;
                &scratch.decoded
            };
            self.copy_cell(bytes, &mut cell, targets, row_hook)
                .map_err(|reason| TilingError::Decode {
                    path: self.path().to_path_buf(),
                    chunk: index,
                    reason,
                })?;
        }
        Ok(())
    }

    fn copy_cell<T: Sample>(
        &self,
        bytes: &[u8],
        cell: &mut Cell<'_, T>,
        targets: &[(usize, usize)],
        row_hook: Option<&RowHook<'_, T>>,
    ) -> std::result::Result<(), String> {
        macro_rules! go {
            ($n:ty, $conv:ident) => {
                copy_typed::<T, $n>(&self.layout, bytes, cell, targets, T::$conv, row_hook)
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

/// Called on each row segment of an output band as soon as it is written: (output band,
/// values).
pub type RowHook<'a, T> = dyn Fn(usize, &mut [T]) + Sync + 'a;

/// The part of a window that one chunk covers, with its disjoint view of the output.
struct Cell<'a, T> {
    cx: usize,
    cy: usize,
    /// In raster pixel coordinates.
    part: PixelWindow,
    /// (bands, part rows, part cols).
    view: ArrayViewMut3<'a, T>,
}

/// Buffers and decompressor state reused from chunk to chunk on one thread.
#[derive(Debug, Default)]
struct Scratch {
    raw: Vec<u8>,
    decoded: Vec<u8>,
    ctx: decode::Decompressors,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Run `f` with this thread's scratch (a fresh one if it is already in use).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Copy one decoded chunk's samples of `cell.part` into the cell's view, converting
/// native `N` to `T`. `targets` lists (output band, sample within the chunk's pixels).
fn copy_typed<T: Sample, N: bytemuck::Pod>(
    l: &ImageLayout,
    bytes: &[u8],
    cell: &mut Cell<'_, T>,
    targets: &[(usize, usize)],
    conv: impl Fn(N) -> T,
    row_hook: Option<&RowHook<'_, T>>,
) -> std::result::Result<(), String> {
    let (cw, ch) = l.chunk_size();
    let spc = l.samples_in_chunk();
    let size = std::mem::size_of::<N>();
    let part = cell.part;
    let r0 = part.row_off as usize - cell.cy * ch;
    let c0 = part.col_off as usize - cell.cx * cw;
    let row_len = part.cols * spc;
    let short = || {
        format!(
            "decoded chunk has {} bytes, too few for rows {}..{} of width {cw}",
            bytes.len(),
            r0,
            r0 + part.rows
        )
    };
    // Samples as `N` where the buffer is aligned for it (always, in practice), else a
    // per-sample byte copy.
    let typed: Option<&[N]> = bytemuck::try_cast_slice(bytes).ok();
    // The common case, pixel-interleaved chunks read whole-pixel (every sample, in
    // order): one pass over each chunk row, de-interleaving into the band rows.
    let all_in_order = spc > 1
        && targets.len() == spc
        && targets
            .iter()
            .enumerate()
            .all(|(i, &(bi, s))| bi == i && s == i);
    if let (Some(samples), true) = (typed, all_in_order) {
        let mut band_views: Vec<_> = cell.view.axis_iter_mut(Axis(0)).collect();
        for r in 0..part.rows {
            let start = ((r0 + r) * cw + c0) * spc;
            let src = samples.get(start..start + row_len).ok_or_else(short)?;
            let mut rows: Vec<&mut [T]> = Vec::with_capacity(spc);
            for v in band_views.iter_mut() {
                match v.row_mut(r).into_slice() {
                    Some(row) => rows.push(row),
                    None => return Err("output row not contiguous".into()),
                }
            }
            deinterleave(src, &mut rows, &conv);
            if let Some(hook) = row_hook {
                for (k, row) in rows.iter_mut().enumerate() {
                    hook(k, row);
                }
            }
        }
        return Ok(());
    }
    for r in 0..part.rows {
        let start = ((r0 + r) * cw + c0) * spc;
        for &(bi, sample) in targets {
            let mut dst = cell.view.slice_mut(s![bi, r, ..]);
            match typed {
                Some(samples) => {
                    let src = samples.get(start..start + row_len).ok_or_else(short)?;
                    let src = src.iter().skip(sample).step_by(spc);
                    match dst.as_slice_mut() {
                        Some(d) => d.iter_mut().zip(src).for_each(|(d, v)| *d = conv(*v)),
                        None => dst.iter_mut().zip(src).for_each(|(d, v)| *d = conv(*v)),
                    }
                }
                None => {
                    let src = bytes
                        .get(start * size..(start + row_len) * size)
                        .ok_or_else(short)?;
                    for (d, px) in dst.iter_mut().zip(src.chunks_exact(spc * size)) {
                        let v: N = bytemuck::pod_read_unaligned(&px[sample * size..][..size]);
                        *d = conv(v);
                    }
                }
            }
            if let Some(hook) = row_hook {
                match dst.as_slice_mut() {
                    Some(d) => hook(bi, d),
                    None => {
                        let mut tmp: Vec<T> = dst.iter().copied().collect();
                        hook(bi, &mut tmp);
                        dst.iter_mut().zip(tmp).for_each(|(d, v)| *d = v);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Split pixel-interleaved `src` (rows.len() samples per pixel) into one row per band.
#[inline]
fn deinterleave<T: Copy, N: Copy>(src: &[N], rows: &mut [&mut [T]], conv: &impl Fn(N) -> T) {
    let spc = rows.len();
    macro_rules! fixed {
        ($n:literal) => {{
            if let Ok(dst) = <&mut [&mut [T]; $n]>::try_from(&mut *rows) {
                for (k, px) in src.chunks_exact($n).enumerate() {
                    for b in 0..$n {
                        if let Some(d) = dst[b].get_mut(k) {
                            *d = conv(px[b]);
                        }
                    }
                }
                return;
            }
        }};
    }
    match spc {
        2 => fixed!(2),
        3 => fixed!(3),
        4 => fixed!(4),
        6 => fixed!(6),
        _ => {}
    }
    for (k, px) in src.chunks_exact(spc).enumerate() {
        for (row, v) in rows.iter_mut().zip(px) {
            if let Some(d) = row.get_mut(k) {
                *d = conv(*v);
            }
        }
    }
}
