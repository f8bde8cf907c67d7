//! What one TIFF image is made of: size, samples, data type, chunk grid, compression.

use super::ifd::{Ifd, TagValue};
use crate::dtype::DataType;
use crate::error::{Result, TilingError};
use std::path::Path;

pub mod tag {
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    pub const IMAGE_WIDTH: u16 = 256;
    pub const IMAGE_LENGTH: u16 = 257;
    pub const BITS_PER_SAMPLE: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    pub const PLANAR_CONFIGURATION: u16 = 284;
    pub const PREDICTOR: u16 = 317;
    pub const TILE_WIDTH: u16 = 322;
    pub const TILE_LENGTH: u16 = 323;
    pub const TILE_OFFSETS: u16 = 324;
    pub const TILE_BYTE_COUNTS: u16 = 325;
    pub const SAMPLE_FORMAT: u16 = 339;
    pub const MODEL_PIXEL_SCALE: u16 = 33550;
    pub const MODEL_TIEPOINT: u16 = 33922;
    pub const MODEL_TRANSFORMATION: u16 = 34264;
    pub const GEO_KEY_DIRECTORY: u16 = 34735;
    pub const GEO_DOUBLE_PARAMS: u16 = 34736;
    pub const GEO_ASCII_PARAMS: u16 = 34737;
    pub const GDAL_METADATA: u16 = 42112;
    pub const GDAL_NODATA: u16 = 42113;
}

/// Most pixels a side of an image (ImageWidth and ImageLength are 32-bit in libtiff).
pub const MAX_SIDE: u64 = u32::MAX as u64;

/// Compression schemes the fast reader decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Lzw,
    Deflate,
    PackBits,
    Zstd,
}

impl Compression {
    fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Compression::None,
            5 => Compression::Lzw,
            8 | 32946 => Compression::Deflate,
            32773 => Compression::PackBits,
            50000 => Compression::Zstd,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lzw => "LZW",
            Compression::Deflate => "DEFLATE",
            Compression::PackBits => "PackBits",
            Compression::Zstd => "ZSTD",
        }
    }
}

fn compression_name(code: u64) -> String {
    match code {
        2 => "CCITT RLE".into(),
        3 | 4 => "CCITT fax".into(),
        6 | 7 => "JPEG".into(),
        34887 => "LERC".into(),
        34925 => "LZMA".into(),
        50001 => "WebP".into(),
        c => format!("code {c}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Predictor {
    None,
    Horizontal,
    FloatingPoint,
}

/// How the image is cut into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkShape {
    Tiles { width: usize, height: usize },
    Strips { rows_per_strip: usize },
}

/// Everything needed to locate and decode any chunk of one image.
#[derive(Clone, Debug)]
pub struct ImageLayout {
    pub width: usize,
    pub height: usize,
    pub samples_per_pixel: usize,
    pub dtype: DataType,
    /// Band-interleaved (PlanarConfiguration = 2): each chunk holds one band.
    pub planar_separate: bool,
    pub compression: Compression,
    pub predictor: Predictor,
    pub shape: ChunkShape,
    pub offsets: Vec<u64>,
    pub byte_counts: Vec<u64>,
    /// NewSubfileType: bit 0 reduced resolution (overview), bit 2 transparency mask.
    pub subfile_type: u64,
}

impl ImageLayout {
    /// Read the layout from an IFD; every reason the fast reader cannot decode the image
    /// is an `Unsupported` error, every inconsistency a `Malformed` one.
    pub fn from_ifd(path: &Path, ifd: &Ifd) -> Result<Self> {
        let req = |t: u16, name: &str| {
            ifd.u64_of(t)
                .ok_or_else(|| TilingError::malformed(path, format!("missing tag {name} ({t})")))
        };
        let width = req(tag::IMAGE_WIDTH, "ImageWidth")?;
        let height = req(tag::IMAGE_LENGTH, "ImageLength")?;
        if width == 0 || height == 0 {
            return Err(TilingError::malformed(
                path,
                format!("image is {width} x {height}"),
            ));
        }
        // libtiff keeps both in 32 bits; so do we, which keeps every size product far from
        // overflowing and every pixel offset inside i64.
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(TilingError::malformed(
                path,
                format!("image is {width} x {height}, more than {MAX_SIDE} pixels a side"),
            ));
        }
        let (width, height) = (width as usize, height as usize);
        let spp = ifd.u64_of(tag::SAMPLES_PER_PIXEL).unwrap_or(1) as usize;
        if spp == 0 || spp > 65535 {
            return Err(TilingError::malformed(
                path,
                format!("{spp} samples per pixel"),
            ));
        }
        let bits: Vec<u64> = ifd
            .get(tag::BITS_PER_SAMPLE)
            .and_then(TagValue::as_u64s)
            .map(|v| v.to_vec())
            .unwrap_or_else(|| vec![1]);
        let bps = bits.first().copied().unwrap_or(1);
        if bits.iter().any(|b| *b != bps) {
            return Err(TilingError::unsupported(
                path,
                format!("mixed bits per sample {bits:?}"),
            ));
        }
        let format = ifd
            .get(tag::SAMPLE_FORMAT)
            .and_then(TagValue::as_u64s)
            .and_then(|v| v.first().copied())
            .unwrap_or(1);
        let dtype = match (format, bps) {
            (1, 8) => DataType::U8,
            (1, 16) => DataType::U16,
            (1, 32) => DataType::U32,
            (1, 64) => DataType::U64,
            (2, 8) => DataType::I8,
            (2, 16) => DataType::I16,
            (2, 32) => DataType::I32,
            (2, 64) => DataType::I64,
            (3, 32) => DataType::F32,
            (3, 64) => DataType::F64,
            _ => {
                return Err(TilingError::unsupported(
                    path,
                    format!("sample format {format} with {bps} bits per sample"),
                ))
            }
        };
        let comp_code = ifd.u64_of(tag::COMPRESSION).unwrap_or(1);
        let compression = Compression::from_code(comp_code).ok_or_else(|| {
            TilingError::unsupported(path, format!("{} compression", compression_name(comp_code)))
        })?;
        let photometric = ifd.u64_of(tag::PHOTOMETRIC).unwrap_or(1);
        if photometric == 6 {
            return Err(TilingError::unsupported(
                path,
                "YCbCr photometric interpretation",
            ));
        }
        let predictor = match ifd.u64_of(tag::PREDICTOR).unwrap_or(1) {
            1 => Predictor::None,
            2 => Predictor::Horizontal,
            3 => Predictor::FloatingPoint,
            p => return Err(TilingError::unsupported(path, format!("predictor {p}"))),
        };
        if predictor == Predictor::FloatingPoint && !dtype.is_float() {
            return Err(TilingError::malformed(
                path,
                "floating-point predictor on integer samples",
            ));
        }
        let planar_separate = match ifd.u64_of(tag::PLANAR_CONFIGURATION).unwrap_or(1) {
            1 => false,
            2 => spp > 1,
            p => {
                return Err(TilingError::malformed(
                    path,
                    format!("planar configuration {p}"),
                ))
            }
        };

        let (shape, off_tag, cnt_tag) = if ifd.get(tag::TILE_WIDTH).is_some() {
            let tw = req(tag::TILE_WIDTH, "TileWidth")? as usize;
            let th = req(tag::TILE_LENGTH, "TileLength")? as usize;
            if tw == 0 || th == 0 || tw > 1 << 16 || th > 1 << 16 {
                return Err(TilingError::malformed(
                    path,
                    format!("tile size {tw} x {th}"),
                ));
            }
            (
                ChunkShape::Tiles {
                    width: tw,
                    height: th,
                },
                tag::TILE_OFFSETS,
                tag::TILE_BYTE_COUNTS,
            )
        } else {
            let rps = ifd
                .u64_of(tag::ROWS_PER_STRIP)
                .unwrap_or(height as u64)
                .clamp(1, height as u64) as usize;
            (
                ChunkShape::Strips {
                    rows_per_strip: rps,
                },
                tag::STRIP_OFFSETS,
                tag::STRIP_BYTE_COUNTS,
            )
        };
        let offsets = ifd
            .get(off_tag)
            .and_then(TagValue::as_u64s)
            .ok_or_else(|| TilingError::malformed(path, "missing chunk offsets"))?
            .to_vec();
        let byte_counts = ifd
            .get(cnt_tag)
            .and_then(TagValue::as_u64s)
            .ok_or_else(|| TilingError::malformed(path, "missing chunk byte counts"))?
            .to_vec();
        let layout = ImageLayout {
            width,
            height,
            samples_per_pixel: spp,
            dtype,
            planar_separate,
            compression,
            predictor,
            shape,
            offsets,
            byte_counts,
            subfile_type: ifd.u64_of(tag::NEW_SUBFILE_TYPE).unwrap_or(0),
        };
        let (across, down) = layout.chunks_across_down();
        // At most 2^32 x 2^32 x 65535: cannot overflow u128, but checked all the same.
        let expected = (across as u128)
            .checked_mul(down as u128)
            .and_then(|n| n.checked_mul(layout.planes() as u128))
            .unwrap_or(u128::MAX);
        if layout.offsets.len() as u128 != expected || layout.byte_counts.len() as u128 != expected
        {
            return Err(TilingError::malformed(
                path,
                format!(
                    "{} chunk offsets and {} byte counts, but a {}x{} image in this layout has {expected} chunks",
                    layout.offsets.len(),
                    layout.byte_counts.len(),
                    width,
                    height
                ),
            ));
        }
        Ok(layout)
    }

    /// Chunk width and height (full size; edge tiles are padded, the last strip is short).
    pub fn chunk_size(&self) -> (usize, usize) {
        match self.shape {
            ChunkShape::Tiles { width, height } => (width, height),
            ChunkShape::Strips { rows_per_strip } => (self.width, rows_per_strip),
        }
    }

    /// Chunks across and down.
    pub fn chunks_across_down(&self) -> (usize, usize) {
        let (cw, ch) = self.chunk_size();
        (self.width.div_ceil(cw), self.height.div_ceil(ch))
    }

    /// Number of planes of chunks: the band count when band-interleaved, else 1.
    pub fn planes(&self) -> usize {
        if self.planar_separate {
            self.samples_per_pixel
        } else {
            1
        }
    }

    /// Samples per pixel inside one chunk.
    pub fn samples_in_chunk(&self) -> usize {
        if self.planar_separate {
            1
        } else {
            self.samples_per_pixel
        }
    }

    /// Number of chunks (equal to the number of offsets of a layout `from_ifd` accepted).
    pub fn chunk_count(&self) -> usize {
        let (a, d) = self.chunks_across_down();
        a.saturating_mul(d).saturating_mul(self.planes())
    }

    /// Index of the chunk at chunk column `cx`, chunk row `cy`, in `plane`.
    pub fn chunk_index(&self, plane: usize, cx: usize, cy: usize) -> usize {
        let (a, d) = self.chunks_across_down();
        plane * a * d + cy * a + cx
    }

    /// Rows actually stored in the chunk at chunk row `cy` (strips: the last is short;
    /// none past the last).
    pub fn stored_rows(&self, cy: usize) -> usize {
        match self.shape {
            ChunkShape::Tiles { height, .. } => height,
            ChunkShape::Strips { rows_per_strip } => rows_per_strip.min(
                self.height
                    .saturating_sub(cy.saturating_mul(rows_per_strip)),
            ),
        }
    }

    /// Decoded bytes of the chunk at chunk row `cy` (at most 2^32 x 2^32 x 65535 x 8,
    /// well inside u128).
    pub fn decoded_len(&self, cy: usize) -> u128 {
        let (cw, _) = self.chunk_size();
        (cw as u128)
            .saturating_mul(self.stored_rows(cy) as u128)
            .saturating_mul(self.samples_in_chunk() as u128)
            .saturating_mul(self.dtype.size() as u128)
    }

    pub fn is_tiled(&self) -> bool {
        matches!(self.shape, ChunkShape::Tiles { .. })
    }
}
