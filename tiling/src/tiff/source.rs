//! Where the bytes of a TIFF come from: a file read with positioned reads (`pread`), so
//! that any number of threads read different chunks of one open file at once without a
//! lock, or a buffer in memory (used by the fuzz target and tests).

use crate::error::{Result, TilingError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug)]
enum Backing {
    File(File),
    Memory(Arc<[u8]>),
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
            Backing::Memory(m) => {
                buf.copy_from_slice(&m[offset as usize..end as usize]);
                Ok(())
            }
        }
    }
}
