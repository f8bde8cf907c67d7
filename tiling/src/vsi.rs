//! GDAL's virtual file systems (`/vsizip/`, `/vsimem/` …): files inside archives are read
//! through GDAL, never unpacked.

use crate::error::{Result, TilingError};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Whether `path` names a GDAL virtual file (`/vsizip/…`, `/vsimem/…`, `/vsicurl/…`).
pub fn is_vsi_path(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with("/vsi"))
}

/// The path of `inner` (relative, `/`-separated) inside a zip archive.
pub fn in_zip(zip: &Path, inner: &str) -> PathBuf {
    let inner = inner.trim_matches('/');
    if inner.is_empty() {
        PathBuf::from(format!("/vsizip/{}", zip.display()))
    } else {
        PathBuf::from(format!("/vsizip/{}/{inner}", zip.display()))
    }
}

/// Every file and folder below `dir` (a real or virtual folder), relative to it.
pub fn list_recursive(dir: &Path) -> Result<Vec<PathBuf>> {
    gdal::vsi::read_dir(dir, true).map_err(|e| TilingError::gdal(dir, e))
}

/// Whether a (real or virtual) file exists.
pub fn exists(path: &Path) -> bool {
    if !is_vsi_path(path) {
        return path.exists();
    }
    let Some(c) = path.to_str().and_then(|s| CString::new(s).ok()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string; the stat buffer is plain data that
    // VSIStatL fills (zeroed is a valid value for it).
    unsafe {
        let mut stat: gdal_sys::VSIStatBufL = std::mem::zeroed();
        gdal_sys::VSIStatL(c.as_ptr(), &mut stat) == 0
    }
}

/// The whole content of a (real or virtual) file, at most `max_bytes`.
pub fn read_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    if !is_vsi_path(path) {
        let meta = std::fs::metadata(path).map_err(|e| TilingError::io(path, e))?;
        if meta.len() > max_bytes {
            return Err(TilingError::malformed(
                path,
                format!("{} bytes, more than the {max_bytes} expected", meta.len()),
            ));
        }
        return std::fs::read(path).map_err(|e| TilingError::io(path, e));
    }
    let c = path
        .to_str()
        .and_then(|s| CString::new(s).ok())
        .ok_or_else(|| TilingError::malformed(path, "the path is not valid UTF-8"))?;
    let mode = CString::new("rb").unwrap_or_default();
    // SAFETY: the strings are valid and NUL-terminated; the handle is closed and the buffer
    // VSIIngestFile allocated is freed exactly once, after copying it out.
    unsafe {
        let fp = gdal_sys::VSIFOpenL(c.as_ptr(), mode.as_ptr());
        if fp.is_null() {
            return Err(TilingError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let mut buf: *mut gdal_sys::GByte = std::ptr::null_mut();
        let mut size: gdal_sys::vsi_l_offset = 0;
        let ok = gdal_sys::VSIIngestFile(
            fp,
            c.as_ptr(),
            &mut buf,
            &mut size,
            max_bytes.min(i64::MAX as u64) as i64,
        );
        gdal_sys::VSIFCloseL(fp);
        if ok == 0 || buf.is_null() {
            if !buf.is_null() {
                gdal_sys::VSIFree(buf.cast());
            }
            return Err(TilingError::malformed(
                path,
                format!("cannot be read through GDAL (or is over {max_bytes} bytes)"),
            ));
        }
        let out = std::slice::from_raw_parts(buf, size as usize).to_vec();
        gdal_sys::VSIFree(buf.cast());
        Ok(out)
    }
}
