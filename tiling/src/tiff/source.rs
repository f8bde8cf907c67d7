//! Where the bytes of a TIFF come from: a file read with positioned reads (`pread`), so
//! that any number of threads read different chunks of one open file at once without a
//! lock; a remote object (`/vsis3/…`, `/vsicurl/…`) read through GDAL's virtual file layer,
//! which turns each read into HTTP range requests (signed with GDAL's `AWS_*` settings),
//! each reading thread on a handle of its own from a small pool; or a buffer in memory (used
//! by the fuzz target and tests).

use crate::error::{Result, TilingError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug)]
enum Backing {
    File(File),
    Remote(VsiFile),
    Memory(Arc<[u8]>),
}

/// GDAL's last error message on this thread (empty when none).
fn gdal_last_error() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a valid NUL-terminated string owned by GDAL (or
    // null), read before any other GDAL call on this thread.
    unsafe {
        let p = gdal_sys::CPLGetLastErrorMsg();
        if p.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// An open GDAL virtual file handle, used by one thread at a time.
struct VsiHandle(*mut gdal_sys::VSILFILE);

// SAFETY: a VSI handle may move between threads; the pool hands each to one thread at a time.
unsafe impl Send for VsiHandle {}

impl Drop for VsiHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was returned open by VSIFOpenL and is closed once, here.
        unsafe {
            gdal_sys::VSIFCloseL(self.0);
        }
    }
}

/// A remote object read through GDAL's virtual file layer: handles opened as reading
/// threads need them and kept for the next reads.
struct VsiFile {
    path: std::ffi::CString,
    idle: std::sync::Mutex<Vec<VsiHandle>>,
}

impl std::fmt::Debug for VsiFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VsiFile").field("path", &self.path).finish()
    }
}

impl VsiFile {
    fn handle(&self) -> std::io::Result<VsiHandle> {
        if let Some(h) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(h);
        }
        let mode = c"rb";
        // SAFETY: both strings are valid and NUL-terminated; a null result is an error.
        let fp = unsafe { gdal_sys::VSIFOpenL(self.path.as_ptr(), mode.as_ptr()) };
        if fp.is_null() {
            return Err(std::io::Error::other(format!(
                "GDAL cannot open it: {}",
                gdal_last_error()
            )));
        }
        Ok(VsiHandle(fp))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let h = self.handle()?;
        // SAFETY: `h` is an open handle used by this thread only; `buf` is valid for
        // `buf.len()` bytes.
        let got = unsafe {
            if gdal_sys::VSIFSeekL(h.0, offset as gdal_sys::vsi_l_offset, libc::SEEK_SET) != 0 {
                return Err(std::io::Error::other(format!("cannot seek to {offset}")));
            }
            gdal_sys::VSIFReadL(buf.as_mut_ptr().cast(), 1, buf.len(), h.0)
        };
        if got != buf.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{got} of {} bytes at {offset} read: {}",
                    buf.len(),
                    gdal_last_error()
                ),
            ));
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < 16 {
                idle.push(h);
            }
        }
        Ok(())
    }
}

/// A read-only, thread-safe source of bytes.
#[derive(Debug)]
pub struct ByteSource {
    path: PathBuf,
    len: u64,
    backing: Backing,
}

impl ByteSource {
    pub fn open(path: &Path) -> Result<Self> {
        let not_found = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::NotFound {
                TilingError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                TilingError::io(path, e)
            }
        };
        // Look before opening: opening a FIFO would block until someone writes to it.
        let meta = std::fs::metadata(path).map_err(not_found)?;
        if meta.is_dir() {
            return Err(TilingError::io(
                path,
                std::io::Error::other("is a directory, not a raster file"),
            ));
        }
        if !meta.is_file() {
            return Err(TilingError::io(
                path,
                std::io::Error::other("not a regular file"),
            ));
        }
        let file = File::open(path).map_err(not_found)?;
        let meta = file.metadata().map_err(|e| TilingError::io(path, e))?;
        Ok(ByteSource {
            path: path.to_path_buf(),
            len: meta.len(),
            backing: Backing::File(file),
        })
    }

    /// A remote object through GDAL's virtual file layer (`/vsis3/bucket/key`,
    /// `/vsicurl/https://…`; see [`crate::vsi::remote_path`]): its size from GDAL's stat (a
    /// HEAD request), its bytes by range requests as they are read.
    pub fn open_remote(path: &Path) -> Result<Self> {
        let c = path
            .to_str()
            .and_then(|s| std::ffi::CString::new(s).ok())
            .ok_or_else(|| TilingError::malformed(path, "the path is not valid UTF-8"))?;
        // SAFETY: `c` is a valid NUL-terminated string. GDAL's `VSIStatBufL` is the C
        // library's `struct stat64` (the bindings declare it opaque), so a `libc::stat64`
        // is the buffer VSIStatL fills; zeroed is a valid value for it.
        let size = unsafe {
            let mut stat: libc::stat64 = std::mem::zeroed();
            let buf = (&mut stat as *mut libc::stat64).cast::<gdal_sys::VSIStatBufL>();
            if gdal_sys::VSIStatL(c.as_ptr(), buf) != 0 {
                return Err(TilingError::NotFound {
                    path: path.to_path_buf(),
                });
            }
            stat.st_size
        };
        Ok(ByteSource {
            path: path.to_path_buf(),
            len: u64::try_from(size).unwrap_or(0),
            backing: Backing::Remote(VsiFile {
                path: c,
                idle: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// Bytes in memory; `name` stands in for the path in error messages.
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        ByteSource {
            path: name.into(),
            len: bytes.len() as u64,
            backing: Backing::Memory(bytes),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Exactly `n` bytes at `offset`, or a `Truncated` error naming `what` was being read.
    pub fn read_exact_at(&self, offset: u64, n: usize, what: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_into(offset, n, what, &mut buf)?;
        Ok(buf)
    }

    /// Like [`read_exact_at`](Self::read_exact_at), reusing `buf`'s allocation.
    pub fn read_into(&self, offset: u64, n: usize, what: &str, buf: &mut Vec<u8>) -> Result<()> {
        let end = offset.saturating_add(n as u64);
        if end > self.len {
            return Err(TilingError::Truncated {
                path: self.path.clone(),
                what: what.to_string(),
                offset,
                end,
                file_len: self.len,
            });
        }
        buf.clear();
        buf.resize(n, 0);
        match &self.backing {
            Backing::File(f) => f
                .read_exact_at(buf, offset)
                .map_err(|e| TilingError::io(&self.path, e)),
            Backing::Remote(v) => v
                .read_exact_at(buf, offset)
                .map_err(|e| TilingError::io(&self.path, e)),
            Backing::Memory(m) => {
                buf.copy_from_slice(&m[offset as usize..end as usize]);
                Ok(())
            }
        }
    }
}
