//! GDAL datasets kept open for reuse by whichever worker reads next.
//!
//! A GDAL `Dataset` is `Send` but not `Sync`: one thread at a time. Opening one per window
//! read costs a file open, header and (for a warped VRT) an XML parse and a new warper with
//! its coordinate transformation, and it throws away the blocks GDAL cached for the
//! previous window. A pool hands each reader a dataset of its own for the duration of one
//! read and takes it back afterwards, so there are never more open datasets per key than
//! threads reading at once, and they close when the pool (the scene or stack) is dropped.

use crate::error::Result;
use gdal::Dataset;
use std::sync::Mutex;

/// Idle datasets, each under a key naming what was opened (a file, a warped view of it).
#[derive(Default)]
pub(crate) struct DatasetPool {
    idle: Mutex<Vec<(u64, Dataset)>>,
}

impl std::fmt::Debug for DatasetPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.idle.lock().map(|g| g.len()).unwrap_or(0);
        f.debug_struct("DatasetPool").field("idle", &n).finish()
    }
}

impl DatasetPool {
    /// Run `f` with an idle dataset of `key`, or one `open` makes; it goes back to the
    /// pool afterwards unless `f` failed (a dataset in an unknown state is closed).
    pub(crate) fn with<R>(
        &self,
        key: u64,
        open: impl FnOnce() -> Result<Dataset>,
        f: impl FnOnce(&Dataset) -> Result<R>,
    ) -> Result<R> {
        let pooled = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.iter()
                .position(|(k, _)| *k == key)
                .map(|i| idle.swap_remove(i).1)
        };
        let ds = match pooled {
            Some(ds) => ds,
            None => open()?,
        };
        let result = f(&ds);
        if result.is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((key, ds));
        }
        result
    }

    /// Datasets open and idle now.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().map(|g| g.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pooled_dataset_is_reused_and_one_that_failed_is_closed() {
        let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/data/geotiff-reader-fixtures/gdal-generated-variants/s2_u16_bigendian_lzw.tif");
        let pool = DatasetPool::default();
        let opens = std::cell::Cell::new(0);
        let open = || {
            opens.set(opens.get() + 1);
            Dataset::open(&file).map_err(|e| crate::error::TilingError::gdal(&file, e))
        };
        for _ in 0..3 {
            let size = pool.with(7, open, |ds| Ok(ds.raster_size()));
            assert!(size.is_ok());
        }
        assert_eq!(opens.get(), 1, "opened once, reused twice");
        assert_eq!(pool.idle(), 1);
        let failed: Result<()> = pool.with(7, open, |_| {
            Err(crate::error::TilingError::malformed(&file, "test"))
        });
        assert!(failed.is_err());
        assert_eq!(pool.idle(), 0, "a dataset whose read failed is not kept");
    }
}
