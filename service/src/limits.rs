//! Limits on what a request may make the service read: the rasters a batch names (their
//! claimed dimensions, before a pixel is decoded) and the zip archives a request names (their
//! claimed unpacked size and compression ratio, from the central directory, before a byte is
//! inflated). A file over a limit is refused when it is named, with what it claims and the
//! limit, so a decompression bomb never reaches GDAL's decoders.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Result, ServiceError};

/// Default: most pixels per band of one scene (a Sentinel-2 tile is 10,980² = 120.6 M).
pub const DEFAULT_MAX_SCENE_PIXELS: u64 = 500_000_000;
/// Default: most bytes one archive may unpack to (a Sentinel-2 L2A product is about 1.2 GB).
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 4 << 30;
/// Most an archive member may inflate per compressed byte (real data stays far below: zipped
/// Shapefiles ~3–10, JPEG 2000 ~1; a bomb of zeros reaches ~1,000).
pub const MAX_COMPRESSION_RATIO: u64 = 200;

/// The limits in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_scene_pixels: u64,
    pub max_unpacked_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_scene_pixels: DEFAULT_MAX_SCENE_PIXELS,
            max_unpacked_bytes: DEFAULT_MAX_UNPACKED_BYTES,
        }
    }
}

fn too_large(path: &Path, reason: String) -> ServiceError {
    ServiceError::TooLarge {
        path: path.to_path_buf(),
        reason,
    }
}

/// What a zip archive's central directory claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZipClaims {
    pub entries: u64,
    pub unpacked_bytes: u64,
    /// The largest unpacked / packed ratio of a member over 1 MiB unpacked.
    pub worst_ratio: u64,
}

fn le16(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le32(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        b.get(at..at + 4)?.try_into().ok()?,
    )))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Read a zip archive's central directory (ZIP64 included) and sum what it claims.
pub fn zip_claims(path: &Path) -> Result<ZipClaims> {
    let io = |source| ServiceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad =
        |why: &str| ServiceError::Invalid(format!("{}: not a zip archive ({why})", path.display()));
    let mut f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    // The end-of-central-directory record: 22 bytes, then a comment of up to 65,535.
    let tail_len = len.min(22 + 65_535 + 20);
    f.seek(SeekFrom::Start(len - tail_len)).map_err(io)?;
    let mut tail = vec![0u8; tail_len as usize];
    f.read_exact(&mut tail).map_err(io)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| bad("no end-of-central-directory record"))?;
    let mut entries = le16(&tail, eocd + 10).ok_or_else(|| bad("short record"))?;
    let mut cd_size = le32(&tail, eocd + 12).ok_or_else(|| bad("short record"))?;
    let mut cd_offset = le32(&tail, eocd + 16).ok_or_else(|| bad("short record"))?;
    if entries == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        // ZIP64: a locator just before the record points at the ZIP64 record.
        let loc = eocd
            .checked_sub(20)
            .filter(|&l| tail[l..l + 4] == [0x50, 0x4b, 0x06, 0x07])
            .ok_or_else(|| bad("ZIP64 locator missing"))?;
        let at = le64(&tail, loc + 8).ok_or_else(|| bad("short ZIP64 locator"))?;
        let mut rec = [0u8; 56];
        f.seek(SeekFrom::Start(at)).map_err(io)?;
        f.read_exact(&mut rec).map_err(io)?;
        if rec[..4] != [0x50, 0x4b, 0x06, 0x06] {
            return Err(bad("ZIP64 record missing"));
        }
        entries = le64(&rec, 32).ok_or_else(|| bad("short ZIP64 record"))?;
        cd_size = le64(&rec, 40).ok_or_else(|| bad("short ZIP64 record"))?;
        cd_offset = le64(&rec, 48).ok_or_else(|| bad("short ZIP64 record"))?;
    }
    if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) || cd_size > 256 << 20 {
        return Err(bad("its central directory lies outside the file"));
    }
    let mut cd = vec![0u8; cd_size as usize];
    f.seek(SeekFrom::Start(cd_offset)).map_err(io)?;
    f.read_exact(&mut cd).map_err(io)?;
    let mut claims = ZipClaims {
        entries: 0,
        unpacked_bytes: 0,
        worst_ratio: 0,
    };
    let mut at = 0usize;
    while claims.entries < entries {
        if cd.get(at..at + 4) != Some(&[0x50, 0x4b, 0x01, 0x02]) {
            return Err(bad("a central directory entry is damaged"));
        }
        let short = || bad("a central directory entry is cut short");
        let mut packed = le32(&cd, at + 20).ok_or_else(short)?;
        let mut unpacked = le32(&cd, at + 24).ok_or_else(short)?;
        let name_len = le16(&cd, at + 28).ok_or_else(short)? as usize;
        let extra_len = le16(&cd, at + 30).ok_or_else(short)? as usize;
        let comment_len = le16(&cd, at + 32).ok_or_else(short)? as usize;
        let extra_at = at + 46 + name_len;
        let extra = cd.get(extra_at..extra_at + extra_len).ok_or_else(short)?;
        if unpacked == 0xFFFF_FFFF || packed == 0xFFFF_FFFF {
            // The ZIP64 extra field (id 1) holds the 8-byte sizes that did not fit.
            let mut e = 0usize;
            while e + 4 <= extra.len() {
                let id = le16(extra, e).ok_or_else(short)?;
                let size = le16(extra, e + 2).ok_or_else(short)? as usize;
                if id == 1 {
                    let mut k = e + 4;
                    if unpacked == 0xFFFF_FFFF {
                        unpacked = le64(extra, k).ok_or_else(short)?;
                        k += 8;
                    }
                    if packed == 0xFFFF_FFFF {
                        packed = le64(extra, k).ok_or_else(short)?;
                    }
                    break;
                }
                e += 4 + size;
            }
        }
        claims.entries += 1;
        claims.unpacked_bytes = claims.unpacked_bytes.saturating_add(unpacked);
        if unpacked > 1 << 20 {
            claims.worst_ratio = claims.worst_ratio.max(unpacked / packed.max(1));
        }
        at = extra_at + extra_len + comment_len;
    }
    Ok(claims)
}

/// Refuse a zip archive that claims to unpack to more than the limit, or holds a member
/// compressed past [`MAX_COMPRESSION_RATIO`].
pub fn check_zip(path: &Path, limits: &Limits) -> Result<ZipClaims> {
    let claims = zip_claims(path)?;
    if claims.unpacked_bytes > limits.max_unpacked_bytes {
        return Err(too_large(
            path,
            format!(
                "the archive unpacks to {} bytes, over the limit of {} (max_unpacked_bytes)",
                claims.unpacked_bytes, limits.max_unpacked_bytes
            ),
        ));
    }
    if claims.worst_ratio > MAX_COMPRESSION_RATIO {
        return Err(too_large(
            path,
            format!(
                "a member of the archive inflates {}-fold, more than the {MAX_COMPRESSION_RATIO}-fold real data reaches (a decompression bomb)",
                claims.worst_ratio
            ),
        ));
    }
    Ok(claims)
}

/// Refuse a raster whose header claims more pixels per band than the limit (GDAL reads only
/// the header here). Files GDAL does not open as a raster (STAC JSON, folders) are left to
/// the analysis, which checks every scene it opens against the same limit.
pub fn check_raster(path: &Path, limits: &Limits) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let Ok(ds) = gdal::Dataset::open_ex(
        path,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_RASTER,
            ..Default::default()
        },
    ) else {
        return Ok(());
    };
    let (w, h) = ds.raster_size();
    let pixels = (w as u64).saturating_mul(h as u64);
    if pixels > limits.max_scene_pixels {
        return Err(too_large(
            path,
            format!(
                "the raster claims {w} x {h} = {pixels} pixels per band, over the limit of {} (max_scene_pixels)",
                limits.max_scene_pixels
            ),
        ));
    }
    Ok(())
}

/// [`check_zip`] for `.zip` files, [`check_raster`] for the rest.
pub fn check_input(path: &Path, limits: &Limits) -> Result<()> {
    let is_zip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if is_zip {
        check_zip(path, limits).map(|_| ())
    } else {
        check_raster(path, limits)
    }
}
