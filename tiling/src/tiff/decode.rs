//! Decoding one chunk: decompress into a buffer of exactly the expected size (so a
//! decompression bomb cannot make us allocate more), fix the byte order, undo the
//! predictor. The result is the chunk's samples as native-endian bytes.

use super::ifd::ByteOrder;
use super::layout::{Compression, ImageLayout, Predictor};
use crate::dtype::DataType;

/// Why a chunk failed to decode (wrapped into `TilingError::Decode` with path and chunk).
pub type DecodeError = String;

/// Decompressor state kept between chunks (one per thread): libdeflate's and zstd's
/// contexts are allocated once, not per chunk.
#[derive(Default)]
pub struct Decompressors {
    deflate: Option<libdeflater::Decompressor>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl std::fmt::Debug for Decompressors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decompressors")
    }
}

/// Decompress `raw` into exactly `expected` bytes.
#[cfg(test)]
pub fn decompress(comp: Compression, raw: &[u8], expected: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    decompress_into(comp, raw, &mut out, expected, &mut Decompressors::default())?;
    Ok(out)
}

/// Decompress `raw` into `out`, which ends up exactly `expected` bytes long (its
/// allocation is reused). Data that decodes to fewer bytes is an error; data that
/// decodes to more is cut at `expected`, as libtiff does.
pub fn decompress_into(
    comp: Compression,
    raw: &[u8],
    out: &mut Vec<u8>,
    expected: usize,
    ctx: &mut Decompressors,
) -> Result<(), DecodeError> {
    if comp == Compression::None && raw.len() < expected {
        // Known short before anything is allocated.
        return Err(short(comp, raw.len(), expected));
    }
    // No need to zero a reused buffer: every byte is overwritten or the chunk fails.
    out.resize(expected, 0);
    let out = &mut out[..];
    let written = match comp {
        Compression::None => {
            let n = raw.len().min(expected);
            out[..n].copy_from_slice(&raw[..n]);
            n
        }
        Compression::Deflate => {
            let d = ctx
                .deflate
                .get_or_insert_with(libdeflater::Decompressor::new);
            // libdeflate decodes a whole zlib stream at once (GDAL uses it too); a
            // stream that is longer than the chunk, damaged or truncated goes through the
            // streaming decoder, which cuts at the expected size and reports short data.
            match d.zlib_decompress(raw, out) {
                Ok(n) if n == expected => n,
                _ => inflate(raw, out)?,
            }
        }
        Compression::Lzw => unlzw(raw, out)?,
        Compression::Zstd => {
            if ctx.zstd.is_none() {
                ctx.zstd = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("ZSTD: {e}"))?);
            }
            match ctx.zstd.as_mut() {
                Some(d) => d
                    .decompress_to_buffer(raw, out)
                    .map_err(|e| format!("ZSTD: {e}"))?,
                None => return Err("ZSTD: no decompression context".into()),
            }
        }
        Compression::PackBits => unpackbits(raw, out)?,
    };
    if written < expected {
        return Err(short(comp, written, expected));
    }
    Ok(())
}

fn short(comp: Compression, written: usize, expected: usize) -> DecodeError {
    format!(
        "{} data decodes to {written} bytes, expected {expected}",
        comp.name()
    )
}

fn inflate(raw: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let mut d = flate2::Decompress::new(true);
    loop {
        let before_in = d.total_in();
        let before_out = d.total_out();
        let status = d
            .decompress(
                &raw[before_in as usize..],
                &mut out[before_out as usize..],
                flate2::FlushDecompress::Finish,
            )
            .map_err(|e| format!("DEFLATE: {e}"))?;
        let done = d.total_out() as usize;
        match status {
            flate2::Status::StreamEnd => return Ok(done),
            _ if done == out.len() => return Ok(done),
            _ if d.total_in() == before_in && d.total_out() == before_out => {
                return Ok(done);
            }
            _ => {}
        }
    }
}

fn unlzw(raw: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let mut d = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let (mut read, mut written) = (0usize, 0usize);
    while written < out.len() {
        let r = d.decode_bytes(&raw[read..], &mut out[written..]);
        read += r.consumed_in;
        written += r.consumed_out;
        match r.status {
            Ok(weezl::LzwStatus::Done) | Ok(weezl::LzwStatus::NoProgress) => break,
            Ok(weezl::LzwStatus::Ok) => {
                if r.consumed_in == 0 && r.consumed_out == 0 {
                    break;
                }
            }
            Err(e) => {
                // libtiff tolerates a missing end-of-information code; so do we once
                // the output is complete, but never a corrupt code mid-stream.
                if written == out.len() {
                    break;
                }
                return Err(format!("LZW: {e}"));
            }
        }
    }
    Ok(written)
}

fn unpackbits(raw: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let (mut i, mut o) = (0usize, 0usize);
    while i < raw.len() && o < out.len() {
        let n = raw[i] as i8;
        i += 1;
        if n >= 0 {
            let count = n as usize + 1;
            let avail = (raw.len() - i).min(out.len() - o);
            if count > avail {
                let take = avail;
                out[o..o + take].copy_from_slice(&raw[i..i + take]);
                o += take;
                break;
            }
            out[o..o + count].copy_from_slice(&raw[i..i + count]);
            i += count;
            o += count;
        } else if n != -128 {
            let count = (1 - n as isize) as usize;
            let Some(&b) = raw.get(i) else {
                return Err("PackBits: run without a value byte".into());
            };
            i += 1;
            let take = count.min(out.len() - o);
            out[o..o + take].fill(b);
            o += take;
        }
    }
    Ok(o)
}

/// Turn decompressed bytes into native-endian samples with the predictor undone.
/// `row_samples` is samples per chunk row (chunk width × samples per pixel in the chunk).
pub fn finish(
    layout: &ImageLayout,
    order: ByteOrder,
    bytes: &mut [u8],
    rows: usize,
    row_samples: usize,
) -> Result<(), DecodeError> {
    let size = layout.dtype.size();
    let stride = layout.samples_in_chunk();
    let row_bytes = row_samples * size;
    if bytes.len() < rows * row_bytes {
        return Err(format!(
            "chunk has {} bytes, expected {}",
            bytes.len(),
            rows * row_bytes
        ));
    }
    match layout.predictor {
        Predictor::FloatingPoint => {
            let mut tmp = vec![0u8; row_bytes];
            for row in bytes.chunks_exact_mut(row_bytes).take(rows) {
                for i in stride..row_bytes {
                    row[i] = row[i].wrapping_add(row[i - stride]);
                }
                tmp.copy_from_slice(row);
                for s in 0..row_samples {
                    for b in 0..size {
                        // Byte plane 0 holds the most significant bytes.
                        let v = tmp[b * row_samples + s];
                        let dst = if cfg!(target_endian = "little") {
                            size - 1 - b
                        } else {
                            b
                        };
                        row[s * size + dst] = v;
                    }
                }
            }
        }
        p => {
            let native = if cfg!(target_endian = "little") {
                ByteOrder::Little
            } else {
                ByteOrder::Big
            };
            if order != native && size > 1 {
                for s in bytes.chunks_exact_mut(size) {
                    s.reverse();
                }
            }
            if p == Predictor::Horizontal {
                for row in bytes.chunks_exact_mut(row_bytes).take(rows) {
                    match size {
                        1 => accumulate_typed::<u8, 1>(row, stride),
                        2 => accumulate_typed::<u16, 2>(row, stride),
                        4 => accumulate_typed::<u32, 4>(row, stride),
                        8 => accumulate_typed::<u64, 8>(row, stride),
                        _ => return Err(format!("horizontal predictor on {size}-byte samples")),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Integers the horizontal predictor adds up.
trait Wrapping: bytemuck::Pod {
    fn wrapping_sum(self, other: Self) -> Self;
}

macro_rules! impl_wrapping {
    ($($t:ty),*) => {$(
        impl Wrapping for $t {
            #[inline(always)]
            fn wrapping_sum(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
        }
    )*};
}
impl_wrapping!(u8, u16, u32, u64);

/// Undo horizontal differencing on one row, as typed integers where the row is aligned
/// for them (it is in practice: allocations are 16-byte aligned), else byte by byte.
fn accumulate_typed<W: Wrapping, const N: usize>(row: &mut [u8], stride: usize) {
    match bytemuck::try_cast_slice_mut::<u8, W>(row) {
        Ok(v) => {
            // Pixels of up to 16 samples (every multi-band scene in practice) as fixed-size
            // arrays: the additions of one pixel are independent and vectorise.
            macro_rules! fixed {
                ($($s:literal)*) => {
                    match stride {
                        $($s => return accumulate_pixels::<W, $s>(v),)*
                        _ => {}
                    }
                };
            }
            fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
            for i in stride..v.len() {
                v[i] = v[i].wrapping_sum(v[i - stride]);
            }
        }
        Err(_) => accumulate::<N>(row, stride),
    }
}

/// [`accumulate_typed`] for pixels of `S` samples.
#[inline(always)]
fn accumulate_pixels<W: Wrapping, const S: usize>(v: &mut [W]) {
    let whole = v.len() / S * S;
    let mut pixels = v[..whole].chunks_exact_mut(S);
    if let Some(first) = pixels.next() {
        let mut prev = [W::zeroed(); S];
        prev.copy_from_slice(first);
        for px in pixels {
            if let Ok(px) = <&mut [W; S]>::try_from(px) {
                for (c, p) in px.iter_mut().zip(prev.iter_mut()) {
                    *c = c.wrapping_sum(*p);
                    *p = *c;
                }
            }
        }
    }
    // A trailing partial pixel (a row that is not a whole number of pixels).
    for i in whole.max(S)..v.len() {
        v[i] = v[i].wrapping_sum(v[i - S]);
    }
}

/// Undo horizontal differencing on one row of `N`-byte native-endian integers.
fn accumulate<const N: usize>(row: &mut [u8], stride: usize) {
    let n = row.len() / N;
    let get = |row: &[u8], i: usize| -> u64 {
        let mut a = [0u8; 8];
        if cfg!(target_endian = "little") {
            a[..N].copy_from_slice(&row[i * N..i * N + N]);
            u64::from_le_bytes(a)
        } else {
            a[8 - N..].copy_from_slice(&row[i * N..i * N + N]);
            u64::from_be_bytes(a)
        }
    };
    for i in stride..n {
        let v = get(row, i).wrapping_add(get(row, i - stride));
        let b = if cfg!(target_endian = "little") {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        if cfg!(target_endian = "little") {
            row[i * N..i * N + N].copy_from_slice(&b[..N]);
        } else {
            row[i * N..i * N + N].copy_from_slice(&b[8 - N..]);
        }
    }
}

/// A chunk of `len` bytes whose every sample is `value` (sparse chunks, GDAL's convention).
pub fn filled(dtype: DataType, value: f64, len: usize) -> Vec<u8> {
    let one: Vec<u8> = match dtype {
        DataType::U8 => vec![value as u8],
        DataType::I8 => (value as i8).to_ne_bytes().to_vec(),
        DataType::U16 => (value as u16).to_ne_bytes().to_vec(),
        DataType::I16 => (value as i16).to_ne_bytes().to_vec(),
        DataType::U32 => (value as u32).to_ne_bytes().to_vec(),
        DataType::I32 => (value as i32).to_ne_bytes().to_vec(),
        DataType::U64 => (value as u64).to_ne_bytes().to_vec(),
        DataType::I64 => (value as i64).to_ne_bytes().to_vec(),
        DataType::F32 => (value as f32).to_ne_bytes().to_vec(),
        DataType::F64 => value.to_ne_bytes().to_vec(),
    };
    // Zeros come from the allocator; anything else by doubling copies, not byte by byte
    // (a sparse chunk may be as large as the budget).
    if one.iter().all(|b| *b == 0) {
        return vec![0u8; len];
    }
    let mut out = one.repeat(len.div_ceil(one.len()));
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_decodes_the_tiff_specification_example() {
        // Example from the TIFF 6.0 specification, section 9.
        let raw = [
            0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        let expected = [
            0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
        ];
        let out = decompress(Compression::PackBits, &raw, expected.len()).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_deflate_bomb_is_cut_at_the_expected_size() {
        use std::io::Write;
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![7u8; 50_000_000]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 100_000);
        let out = decompress(Compression::Deflate, &bomb, 4096).unwrap();
        assert_eq!(out.len(), 4096);
        assert!(out.iter().all(|b| *b == 7));
    }

    #[test]
    fn short_data_is_an_error_not_zero_padding() {
        let err = decompress(Compression::None, &[1, 2, 3], 8).unwrap_err();
        assert!(err.contains("3 bytes, expected 8"), "{err}");
    }

    #[test]
    fn a_reused_buffer_never_passes_stale_bytes_off_as_data() {
        use std::io::Write;
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[5u8; 100]).unwrap();
        let stream = enc.finish().unwrap();
        let mut ctx = Decompressors::default();
        let mut out = vec![0xFFu8; 200];
        decompress_into(Compression::Deflate, &stream, &mut out, 100, &mut ctx).unwrap();
        assert_eq!(out, vec![5u8; 100]);
        // The same buffer, now too short data: an error, not old bytes.
        out.resize(200, 0xFF);
        let err =
            decompress_into(Compression::Deflate, &stream, &mut out, 150, &mut ctx).unwrap_err();
        assert!(err.contains("100 bytes, expected 150"), "{err}");
        // A truncated stream fails on both decoders.
        let cut = &stream[..stream.len() / 2];
        assert!(decompress_into(Compression::Deflate, cut, &mut out, 100, &mut ctx).is_err());
    }

    #[test]
    fn filled_chunks_repeat_the_value_in_native_byte_order() {
        assert_eq!(filled(DataType::U8, 0.0, 5), vec![0u8; 5]);
        assert_eq!(filled(DataType::U8, 300.0, 3), vec![255u8; 3]);
        let v = filled(DataType::I16, -2.0, 6);
        assert_eq!(v, [(-2i16).to_ne_bytes(); 3].concat());
        let f = filled(DataType::F64, -9999.5, 24);
        assert_eq!(f, [(-9999.5f64).to_ne_bytes(); 3].concat());
        // A length that is not a whole number of samples is cut, as before.
        let b = 258u16.to_ne_bytes();
        assert_eq!(filled(DataType::U16, 258.0, 3), vec![b[0], b[1], b[0]]);
    }

    #[test]
    fn a_zstd_frame_larger_than_the_chunk_is_rejected() {
        let frame = zstd::bulk::compress(&vec![1u8; 10_000], 3).unwrap();
        assert!(decompress(Compression::Zstd, &frame, 100).is_err());
    }
}
