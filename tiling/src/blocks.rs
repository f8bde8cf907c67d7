//! Decoded blocks of the scenes GDAL reads (a JPEG 2000 file's 1024² tiles, a tiled
//! GeoTIFF the fast reader does not take …), kept for every thread and every scene of a
//! stack in one bounded cache.
//!
//! GDAL decodes a whole block for any window that touches it, and a GDAL dataset serves one
//! thread at a time: two workers reading neighbouring tiles through their own datasets
//! would each decode the blocks they share, and a tile needing one row past a block's edge
//! (bilinear resampling of a 20 m band) would decode the neighbouring block again for
//! every such tile. Here each block is decoded once — by the first reader that needs it,
//! the others waiting for that decode instead of repeating it — and cut into every
//! window that needs it while it stays in the cache (least recently used evicted first,
//! at most `capacity` bytes, stored in the file's own data type).

use crate::error::Result;
use crate::tiff::cache::ChunkCache;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

type Slot = Arc<OnceLock<Option<Arc<Vec<u8>>>>>;

/// One cache of decoded blocks, shared by the scenes given it.
#[derive(Debug)]
pub struct BlockCache {
    cache: ChunkCache,
    /// Blocks being decoded now: readers of the same block wait for the first one.
    in_flight: Mutex<HashMap<usize, Slot>>,
    decoded: AtomicUsize,
    /// Every block decoded at least once.
    distinct: Mutex<std::collections::HashSet<usize>>,
}

/// Bits of a cache key below a scene's own number: band (12 bits) and block (32 bits).
pub(crate) const SCENE_SHIFT: u32 = 44;
pub(crate) const BAND_SHIFT: u32 = 32;

static NEXT_SCENE: AtomicUsize = AtomicUsize::new(1);

/// A number no other scene opened by this process has, placed above a key's band and
/// block bits.
pub(crate) fn scene_key() -> usize {
    (NEXT_SCENE.fetch_add(1, Ordering::Relaxed) & ((1 << (usize::BITS - SCENE_SHIFT)) - 1))
        << SCENE_SHIFT
}

impl BlockCache {
    pub fn new(capacity: usize) -> BlockCache {
        BlockCache {
            cache: ChunkCache::new(capacity),
            in_flight: Mutex::new(HashMap::new()),
            decoded: AtomicUsize::new(0),
            distinct: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// The block under `key`, from the cache or decoded by `decode` (once, whichever
    /// threads ask for it at the same time).
    pub(crate) fn get_or_decode(
        &self,
        key: usize,
        decode: impl Fn() -> Result<Vec<u8>>,
    ) -> Result<Arc<Vec<u8>>> {
        if let Some(d) = self.cache.get(key) {
            return Ok(d);
        }
        if !self.cache.is_enabled() {
            self.decoded.fetch_add(1, Ordering::Relaxed);
            return decode().map(Arc::new);
        }
        let slot: Slot = {
            let mut g = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            // Decoded (and cached) while this thread waited for the lock?
            if let Some(d) = self.cache.get(key) {
                return Ok(d);
            }
            Arc::clone(g.entry(key).or_default())
        };
        let mut error = None;
        let got = slot.get_or_init(|| match decode() {
            Ok(data) => {
                self.decoded.fetch_add(1, Ordering::Relaxed);
                self.distinct
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key);
                let data = Arc::new(data);
                self.cache.insert(key, Arc::clone(&data));
                Some(data)
            }
            Err(e) => {
                error = Some(e);
                None
            }
        });
        let got = got.clone();
        {
            let mut g = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if g.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                g.remove(&key);
            }
        }
        match (got, error) {
            (_, Some(e)) => Err(e),
            (Some(d), None) => Ok(d),
            // Another thread's decode failed: decode here to report the error.
            (None, None) => {
                self.decoded.fetch_add(1, Ordering::Relaxed);
                decode().map(Arc::new)
            }
        }
    }

    /// Blocks decoded so far (every decode, whether or not the block stayed cached).
    pub fn blocks_decoded(&self) -> usize {
        self.decoded.load(Ordering::Relaxed)
    }

    /// Different blocks decoded so far (with a cache; `blocks_decoded` over this is how
    /// many times the average block was decoded).
    pub fn distinct_blocks(&self) -> usize {
        self.distinct
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// (hits, misses) of the cache so far.
    pub fn stats(&self) -> (u64, u64) {
        self.cache.stats()
    }
}

impl Drop for BlockCache {
    fn drop(&mut self) {
        let decoded = self.blocks_decoded();
        if decoded > 0 {
            tracing::info!(
                "block cache: {decoded} block decodes of {} different blocks",
                self.distinct_blocks()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_block_wanted_by_several_threads_at_once_is_decoded_once() {
        let cache = BlockCache::new(1 << 20);
        let calls = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let d = cache
                        .get_or_decode(7, || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(vec![1, 2, 3])
                        })
                        .unwrap();
                    assert_eq!(*d, vec![1, 2, 3]);
                });
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.blocks_decoded(), 1);
        assert_eq!(cache.distinct_blocks(), 1);
    }

    #[test]
    fn a_failed_decode_is_an_error_for_each_reader_and_is_not_cached() {
        let cache = BlockCache::new(1 << 20);
        let fail = || {
            Err(crate::error::TilingError::Alignment {
                reason: "broken block".into(),
            })
        };
        assert!(cache.get_or_decode(1, fail).is_err());
        assert!(cache.get_or_decode(1, fail).is_err());
        let d = cache.get_or_decode(1, || Ok(vec![9])).unwrap();
        assert_eq!(*d, vec![9]);
        assert_eq!(cache.blocks_decoded(), 1);
    }

    #[test]
    fn without_capacity_every_read_decodes() {
        let cache = BlockCache::new(0);
        for _ in 0..3 {
            cache.get_or_decode(1, || Ok(vec![0u8; 4])).unwrap();
        }
        assert_eq!(cache.blocks_decoded(), 3);
    }
}
