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
//!
//! A run that knows its reads in advance (a stack's tiles, see
//! `SceneStack::try_par_map_tiles`) plans them: each planned block then leaves the cache
//! as soon as its last planned read is done, and its top rows as soon as no planned read
//! still needs them (the tiles go down the grid, so a block's lower part may be wanted by
//! the next strip of tiles long after its upper part was last read). The cache then holds
//! what the coming tiles need rather than what was read last.

use crate::error::Result;
use crate::tiff::cache::ChunkCache;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    distinct: Mutex<HashSet<usize>>,
    /// Planned reads not yet done, by block.
    plan: Mutex<HashMap<usize, Planned>>,
}

/// The planned reads of one block still to come.
#[derive(Debug, Default)]
struct Planned {
    /// How many, by the first row of the block each needs.
    from_row: BTreeMap<usize, usize>,
    /// Bytes of one row of the block, and its rows.
    row_bytes: usize,
    rows: usize,
}

/// Where a block's rows are: how a block is laid out in the cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockShape {
    /// Bytes of one row.
    pub row_bytes: usize,
    /// Rows of the whole block.
    pub rows: usize,
}

impl BlockShape {
    /// Bytes to cut from the top of data holding the rows from `first` on when no read
    /// needs a row above `lowest`: only when that frees a quarter of the block or more
    /// (a copy for every row or two is not worth it).
    fn rows_to_drop(&self, first: usize, lowest: usize) -> Option<usize> {
        (lowest >= first + (self.rows / 4).max(1)).then(|| (lowest - first) * self.row_bytes)
    }

    /// The first row of the block that `data` holds: a block whose top rows no planned
    /// read needs any more is kept without them.
    pub fn first_row(&self, data: &[u8]) -> usize {
        self.rows.saturating_sub(data.len() / self.row_bytes.max(1))
    }
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
            distinct: Mutex::new(HashSet::new()),
            plan: Mutex::new(HashMap::new()),
        }
    }

    /// The block under `key` (of `shape`) holding at least its rows from `from_row` on,
    /// from the cache or decoded by `decode` (once, whichever threads ask for it at the
    /// same time). The data may lack the block's top rows (see [`BlockShape::first_row`]),
    /// never those from `from_row` on.
    pub(crate) fn get_or_decode(
        &self,
        key: usize,
        shape: BlockShape,
        from_row: usize,
        decode: impl Fn() -> Result<Vec<u8>>,
    ) -> Result<Arc<Vec<u8>>> {
        let holds = |d: &Arc<Vec<u8>>| shape.first_row(d) <= from_row;
        if let Some(d) = self.cache.get(key).filter(holds) {
            return Ok(d);
        }
        if !self.cache.is_enabled() {
            self.decoded.fetch_add(1, Ordering::Relaxed);
            return decode().map(Arc::new);
        }
        let slot: Slot = {
            let mut g = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            // Decoded (and cached) while this thread waited for the lock?
            if let Some(d) = self.cache.get(key).filter(holds) {
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
                // Kept without the rows above every planned read of it, and not at all
                // when no planned read wants it any more.
                let planned = self.plan.lock().unwrap_or_else(|p| p.into_inner());
                match planned.get(&key).map(|p| p.from_row.keys().next()) {
                    None => self.cache.insert(key, Arc::clone(&data)),
                    Some(None) => {}
                    Some(Some(&lowest)) => {
                        let keep = match shape.rows_to_drop(0, lowest) {
                            Some(cut) => data.get(cut..).map(|rest| Arc::new(rest.to_vec())),
                            None => None,
                        };
                        self.cache
                            .insert(key, keep.unwrap_or_else(|| Arc::clone(&data)));
                    }
                }
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

    /// A read of block `key` (of `shape`) from its row `from_row` on is coming.
    pub(crate) fn plan_read(&self, key: usize, shape: BlockShape, from_row: usize) {
        let mut plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        let p = plan.entry(key).or_default();
        p.row_bytes = shape.row_bytes;
        p.rows = shape.rows;
        *p.from_row.entry(from_row).or_default() += 1;
    }

    /// A read of block `key` from its row `from_row` on is done: when it was the block's
    /// last planned read the block leaves the cache; when the reads left all start at
    /// least a quarter of the block lower than the rows kept, the rows above them leave.
    /// A read that was not planned changes nothing.
    pub(crate) fn read_done(&self, key: usize, from_row: usize) {
        let mut plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = plan.get_mut(&key) else {
            return;
        };
        let Some(n) = p.from_row.get_mut(&from_row) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            p.from_row.remove(&from_row);
        }
        let Some(&lowest) = p.from_row.keys().next() else {
            // Kept (empty) until the plan ends, so that a decode in flight for this
            // block does not put it back.
            self.cache.remove(key);
            return;
        };
        let Some(data) = self.cache.peek(key) else {
            return;
        };
        let shape = BlockShape {
            row_bytes: p.row_bytes,
            rows: p.rows,
        };
        if let Some(rest) = shape
            .rows_to_drop(shape.first_row(&data), lowest)
            .and_then(|cut| data.get(cut..))
        {
            self.cache.replace(key, &data, Arc::new(rest.to_vec()));
        }
    }

    /// Forget the planned reads of `keys` (a run that ends, done or not): their blocks go
    /// back to being kept while there is room.
    pub(crate) fn end_plan(&self, keys: impl IntoIterator<Item = usize>) {
        let mut plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            plan.remove(&k);
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

    /// The most bytes of decoded blocks the cache held at once so far.
    pub fn peak_bytes(&self) -> usize {
        self.cache.peak_bytes()
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
                "block cache: {decoded} block decodes of {} different blocks, at most {:.0} MiB held",
                self.distinct_blocks(),
                self.peak_bytes() as f64 / (1 << 20) as f64
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Blocks of one row of any length.
    const WHOLE: BlockShape = BlockShape {
        row_bytes: usize::MAX,
        rows: 1,
    };

    #[test]
    fn a_block_wanted_by_several_threads_at_once_is_decoded_once() {
        let cache = BlockCache::new(1 << 20);
        let calls = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let d = cache
                        .get_or_decode(7, WHOLE, 0, || {
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
        assert!(cache.get_or_decode(1, WHOLE, 0, fail).is_err());
        assert!(cache.get_or_decode(1, WHOLE, 0, fail).is_err());
        let d = cache.get_or_decode(1, WHOLE, 0, || Ok(vec![9])).unwrap();
        assert_eq!(*d, vec![9]);
        assert_eq!(cache.blocks_decoded(), 1);
    }

    #[test]
    fn without_capacity_every_read_decodes() {
        let cache = BlockCache::new(0);
        for _ in 0..3 {
            cache
                .get_or_decode(1, WHOLE, 0, || Ok(vec![0u8; 4]))
                .unwrap();
        }
        assert_eq!(cache.blocks_decoded(), 3);
    }

    #[test]
    fn a_planned_block_loses_its_top_rows_when_no_read_needs_them_and_leaves_after_its_last_read() {
        // Blocks of 8 rows of 4 bytes; rows numbered in their bytes.
        let shape = BlockShape {
            row_bytes: 4,
            rows: 8,
        };
        let block = || Ok((0..8u8).flat_map(|r| [r; 4]).collect::<Vec<u8>>());
        let cache = BlockCache::new(1 << 20);
        // Two reads from row 0, one from row 3, one from row 6.
        for from in [0, 0, 3, 6] {
            cache.plan_read(5, shape, from);
        }
        let d = cache.get_or_decode(5, shape, 0, block).unwrap();
        assert_eq!((d.len(), shape.first_row(&d)), (32, 0));
        cache.read_done(5, 0);
        cache.get_or_decode(5, shape, 0, block).unwrap();
        cache.read_done(5, 0);
        // Only reads from row 3 on are left: rows 0-2 are dropped.
        let d = cache.get_or_decode(5, shape, 3, block).unwrap();
        assert_eq!(shape.first_row(&d), 3);
        assert_eq!(&d[..4], &[3; 4]);
        cache.read_done(5, 3);
        // Rows 3-5 go only when that frees a quarter of the block or more (it does).
        let d = cache.get_or_decode(5, shape, 6, block).unwrap();
        assert_eq!((shape.first_row(&d), d[0]), (6, 6));
        assert_eq!(cache.cache.peek(5).map(|d| d.len()), Some(8));
        cache.read_done(5, 6);
        // The last planned read is done: the block is gone, and was decoded once.
        assert!(cache.cache.peek(5).is_none());
        assert_eq!(cache.blocks_decoded(), 1);
        // A block whose planned reads all start lower is kept without the rows above
        // them from the start; a read that was not planned, of rows it lacks, decodes
        // the block again.
        cache.plan_read(7, shape, 6);
        cache.plan_read(7, shape, 6);
        let d = cache.get_or_decode(7, shape, 6, block).unwrap();
        assert_eq!(shape.first_row(&d), 0);
        assert_eq!(cache.cache.peek(7).map(|d| d.len()), Some(8));
        cache.read_done(7, 6);
        let unplanned = cache.get_or_decode(7, shape, 0, block).unwrap();
        assert_eq!(shape.first_row(&unplanned), 0);
        assert_eq!(cache.blocks_decoded(), 3);
        // Ending the plan leaves what is cached to the capacity alone.
        cache.end_plan([7]);
        cache.read_done(7, 6);
        assert!(cache.cache.peek(7).is_some());
    }
}
