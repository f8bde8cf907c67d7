//! A bounded cache of decoded chunks shared by every thread reading one file.
//!
//! Tiles with halos overlap their neighbours' chunks; without a cache each chunk on a tile
//! border would be decoded by every tile that touches it (up to nine times for a 512 px tile
//! on 512 px chunks with a 16 px halo). The cache holds at most `capacity` bytes and evicts
//! the least recently used chunk, so memory stays bounded whatever the scene size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<usize, (Arc<Vec<u8>>, u64)>,
    bytes: usize,
    /// The most bytes held at once.
    peak: usize,
    tick: u64,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
pub struct ChunkCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl ChunkCache {
    pub fn new(capacity: usize) -> Self {
        ChunkCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn get(&self, index: usize) -> Option<Arc<Vec<u8>>> {
        if self.capacity == 0 {
            return None;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.tick += 1;
        let tick = g.tick;
        match g.entries.get_mut(&index) {
            Some((data, t)) => {
                *t = tick;
                let d = Arc::clone(data);
                g.hits += 1;
                Some(d)
            }
            None => {
                g.misses += 1;
                None
            }
        }
    }

    pub fn insert(&self, index: usize, data: Arc<Vec<u8>>) {
        if data.len() > self.capacity {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.tick += 1;
        let tick = g.tick;
        let len = data.len();
        if let Some((old, _)) = g.entries.insert(index, (data, tick)) {
            g.bytes -= old.len();
        }
        g.bytes += len;
        while g.bytes > self.capacity {
            let Some(oldest) = g
                .entries
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((old, _)) = g.entries.remove(&oldest) {
                g.bytes -= old.len();
            }
        }
        g.peak = g.peak.max(g.bytes);
    }

    /// The entry under `index` without counting a hit or making it recent.
    pub fn peek(&self, index: usize) -> Option<Arc<Vec<u8>>> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.entries.get(&index).map(|(d, _)| Arc::clone(d))
    }

    /// Drop the entry under `index`, if there is one.
    pub fn remove(&self, index: usize) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((old, _)) = g.entries.remove(&index) {
            g.bytes -= old.len();
        }
    }

    /// Put `data` in place of the entry under `index` when that entry is still `old` (the
    /// same allocation), keeping its place in the eviction order: for an entry cut down to
    /// the part still wanted. Returns whether it was replaced.
    pub fn replace(&self, index: usize, old: &Arc<Vec<u8>>, data: Arc<Vec<u8>>) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some((cur, _)) = g.entries.get_mut(&index) else {
            return false;
        };
        if !Arc::ptr_eq(cur, old) {
            return false;
        }
        let (was, now) = (cur.len(), data.len());
        *cur = data;
        g.bytes = g.bytes - was + now;
        true
    }

    /// The most bytes held at once so far.
    pub fn peak_bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).peak
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (g.hits, g.misses)
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_never_holds_more_than_its_capacity_and_evicts_the_oldest() {
        let c = ChunkCache::new(100);
        for i in 0..10 {
            c.insert(i, Arc::new(vec![0u8; 30]));
            assert!(c.bytes() <= 100);
        }
        // 3 chunks of 30 bytes fit: 7, 8, 9.
        assert!(c.get(6).is_none());
        assert!(c.get(7).is_some());
        c.insert(10, Arc::new(vec![0u8; 30]));
        // 8 was the least recently used (7 was just read).
        assert!(c.get(8).is_none());
        assert!(c.get(7).is_some());
        assert_eq!(c.stats(), (2, 2));
        let off = ChunkCache::new(0);
        off.insert(1, Arc::new(vec![1]));
        assert!(off.get(1).is_none());
    }
}
