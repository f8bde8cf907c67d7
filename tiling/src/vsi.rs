//! GDAL's virtual file systems (`/vsizip/`, `/vsimem/` …): files inside archives are read
//! through GDAL, never unpacked.

use crate::error::{Result, TilingError};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Whether `path` names a GDAL virtual file (`/vsizip/…`, `/vsimem/…`, `/vsicurl/…`).
pub fn is_vsi_path(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with("/vsi"))
}

/// Whether `path` is a remote GDAL virtual file (`/vsis3/…`, `/vsicurl/…`, …), which the
/// fast reader reads with range requests through GDAL's virtual file layer.
pub fn is_remote_vsi_path(path: &Path) -> bool {
    path.to_str().is_some_and(|s| {
        [
            "/vsis3/",
            "/vsicurl/",
            "/vsigs/",
            "/vsiaz/",
            "/vsiadls/",
            "/vsioss/",
            "/vsiswift/",
        ]
        .iter()
        .any(|p| s.starts_with(p))
    })
}

/// The GDAL virtual path of a remote scene: `s3://bucket/key` → `/vsis3/bucket/key`,
/// `http(s)://…` → `/vsicurl/http(s)://…`; `None` when `href` is not one of those. GDAL
/// reads them with range requests, with its usual settings from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_S3_ENDPOINT` and `AWS_HTTPS=NO` for an S3-compatible server, …).
pub fn remote_path(href: &str) -> Option<PathBuf> {
    let (scheme, rest) = href.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "s3" => Some(PathBuf::from(format!("/vsis3/{rest}"))),
        "http" | "https" => Some(PathBuf::from(format!("/vsicurl/{href}"))),
        _ => None,
    }
}

/// Whether `href` (remote) lies under one of `prefixes` (`s3://bucket/folder/`,
/// `https://host/path/`): the remote equivalent of the import root. A prefix names whole
/// path segments (`s3://bucket` allows `s3://bucket/…`, not `s3://bucket-2/…`), and an href
/// with a `..` segment is never allowed.
pub fn remote_allowed(href: &str, prefixes: &[String]) -> bool {
    if href.split('/').any(|seg| seg == ".." || seg == ".") || href.contains('\\') {
        return false;
    }
    prefixes.iter().any(|p| {
        let p = p.trim();
        if p.is_empty() {
            return false;
        }
        let dir = if p.ends_with('/') {
            p.to_string()
        } else {
            format!("{p}/")
        };
        href.starts_with(&dir)
    })
}

/// A scene href: `Ok(None)` when it is not remote, the virtual path when it is remote and
/// allowed by `prefixes`, an error naming it otherwise.
pub fn resolve_remote(href: &str, prefixes: &[String]) -> Result<Option<PathBuf>> {
    let Some(vsi) = remote_path(href) else {
        return Ok(None);
    };
    if !remote_allowed(href, prefixes) {
        return Err(TilingError::unsupported(
            href,
            if prefixes.is_empty() {
                "remote scenes are read only under allowed prefixes, and none is allowed \
                 (gengdi analyze --allow-remote PREFIX; the service's remote_prefixes)"
                    .to_string()
            } else {
                format!("not under an allowed prefix ({})", prefixes.join(", "))
            },
        ));
    }
    Ok(Some(vsi))
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
    // SAFETY: `c` is a valid NUL-terminated string. GDAL's `VSIStatBufL` is the C library's
    // `struct stat64`, which the bindings declare opaque (zero-sized): a `libc::stat64` is
    // the buffer VSIStatL fills (a zero-sized one would be overrun); zeroed is valid for it.
    unsafe {
        let mut stat: libc::stat64 = std::mem::zeroed();
        let buf = (&mut stat as *mut libc::stat64).cast::<gdal_sys::VSIStatBufL>();
        gdal_sys::VSIStatL(c.as_ptr(), buf) == 0
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn remote_hrefs_become_gdal_paths_only_under_allowed_prefixes() {
        assert_eq!(
            remote_path("s3://scenes/t50/a.tif"),
            Some(PathBuf::from("/vsis3/scenes/t50/a.tif"))
        );
        assert_eq!(
            remote_path("HTTPS://h.example/a.tif"),
            Some(PathBuf::from("/vsicurl/HTTPS://h.example/a.tif"))
        );
        assert_eq!(remote_path("/data/a.tif"), None);
        assert_eq!(remote_path("file:///data/a.tif"), None);
        let allowed = vec!["s3://scenes/t50".to_string(), "https://h.example/c/".into()];
        for ok in ["s3://scenes/t50/a.tif", "https://h.example/c/d/e.tif"] {
            assert!(remote_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "s3://scenes/t500/a.tif",
            "s3://scenes/t50/../secret/a.tif",
            "s3://scenes/t50/./a.tif",
            "s3://other/t50/a.tif",
            "https://h.example/cc/a.tif",
            "http://h.example/c/a.tif",
        ] {
            assert!(!remote_allowed(bad, &allowed), "{bad}");
        }
        assert!(!remote_allowed("s3://scenes/t50/a.tif", &[]));
        let err = resolve_remote("s3://x/a.tif", &[]).unwrap_err().to_string();
        assert!(err.contains("none is allowed"), "{err}");
        let err = resolve_remote("s3://x/a.tif", &allowed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://scenes/t50"), "{err}");
        assert_eq!(resolve_remote("/data/a.tif", &[]).unwrap(), None);
    }
}
