//! Per-tile checkpoints: an analysis that stops (killed, cancelled, the machine restarted)
//! resumes from the tiles it finished.
//!
//! Each finished tile's output (its per-parcel sums and candidate pixels, the whole of what
//! the tile contributes to the result) is written to `DIR/tile-<index>.bin` — to a temporary
//! name first, flushed to disk, then renamed, so a file that exists is complete. A resumed
//! run merges those files instead of reading and classifying their tiles again. Tile
//! outputs are integer sums and a candidate list sorted before use, so the order in which
//! they are merged, and whether they come from disk or not, cannot change the result: a
//! resumed analysis gives exactly the patches of an uninterrupted one.
//!
//! `DIR/fingerprint` names the analysis the files belong to (a digest of the request and the
//! models): a directory left by another analysis is emptied, never merged. A tile file that
//! cannot be read back (truncated by a full disk, written by another build) is logged and
//! its tile analysed again.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{InferenceError, Result};

/// Bumped whenever what a tile file holds changes shape.
const FORMAT: &str = "gengdi-tile-checkpoint-1";

/// Where the finished tiles of one analysis are kept: a directory ([`TileCheckpoints`]), or
/// memory ([`MemoryTiles`]: a distributed worker moves the bytes to and from its database).
/// A tile's output is opaque bytes here; [`save`] and [`load`] encode and decode it.
pub trait TileStore: Sync {
    /// The tiles with a finished output.
    fn finished(&self) -> Result<BTreeSet<usize>>;
    /// Tile `index`'s bytes, `None` when there are none or they cannot be read back.
    fn load_bytes(&self, index: usize) -> Option<Vec<u8>>;
    /// Keep tile `index`'s bytes (complete or not at all).
    fn save_bytes(&self, index: usize, bytes: &[u8]) -> Result<()>;
    /// Tile `index`'s bytes could not be decoded: forget them, so that it is analysed again.
    fn discard(&self, index: usize);
    /// Where they are, for messages.
    fn describe(&self) -> String;
}

/// Encode tile `index`'s output and keep it in `store`.
pub fn save<T: Serialize>(store: &dyn TileStore, index: usize, value: &T) -> Result<()> {
    let bytes = rmp_serde::to_vec(value).map_err(|e| InferenceError::Config {
        what: "checkpoint".into(),
        reason: format!("cannot encode tile {index}: {e}"),
    })?;
    store.save_bytes(index, &bytes)
}

/// Tile `index`'s output from `store`, or `None` (logged, and the bytes discarded) when it
/// cannot be decoded.
pub fn load<T: DeserializeOwned>(store: &dyn TileStore, index: usize) -> Option<T> {
    let bytes = store.load_bytes(index)?;
    match rmp_serde::from_slice::<T>(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(
                "checkpoints: tile {index} of {} cannot be read back ({e}): it is analysed again",
                store.describe()
            );
            store.discard(index);
            None
        }
    }
}

/// Finished tiles held in memory.
#[derive(Debug, Default)]
pub struct MemoryTiles(Mutex<BTreeMap<usize, Vec<u8>>>);

impl MemoryTiles {
    /// Tiles already finished (read from elsewhere).
    pub fn with(tiles: impl IntoIterator<Item = (usize, Vec<u8>)>) -> MemoryTiles {
        MemoryTiles(Mutex::new(tiles.into_iter().collect()))
    }

    /// Every tile's bytes, by tile index.
    pub fn into_inner(self) -> BTreeMap<usize, Vec<u8>> {
        self.0.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl TileStore for MemoryTiles {
    fn finished(&self) -> Result<BTreeSet<usize>> {
        Ok(self
            .0
            .lock()
            .map_err(|_| InferenceError::Poisoned {
                what: "the tiles in memory",
            })?
            .keys()
            .copied()
            .collect())
    }

    fn load_bytes(&self, index: usize) -> Option<Vec<u8>> {
        self.0.lock().ok()?.get(&index).cloned()
    }

    fn save_bytes(&self, index: usize, bytes: &[u8]) -> Result<()> {
        self.0
            .lock()
            .map_err(|_| InferenceError::Poisoned {
                what: "the tiles in memory",
            })?
            .insert(index, bytes.to_vec());
        Ok(())
    }

    fn discard(&self, index: usize) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&index);
        }
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// A directory of finished tiles of one analysis.
#[derive(Clone, Debug)]
pub struct TileCheckpoints {
    dir: PathBuf,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> InferenceError {
    InferenceError::Config {
        what: "checkpoint directory".into(),
        reason: format!("cannot {what} {}: {e}", path.display()),
    }
}

impl TileCheckpoints {
    /// Open (creating it) the checkpoint directory of the analysis `fingerprint` names
    /// (any text that differs between analyses that must not share tiles). Tiles left by an
    /// analysis with another fingerprint are removed.
    pub fn open(dir: &Path, fingerprint: &str) -> Result<TileCheckpoints> {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, "create", e))?;
        let stamp = format!("{FORMAT}\n{fingerprint}\n");
        let fp_path = dir.join("fingerprint");
        let same = fs::read_to_string(&fp_path).is_ok_and(|s| s == stamp);
        let cp = TileCheckpoints {
            dir: dir.to_path_buf(),
        };
        if !same {
            let mut removed = 0usize;
            for entry in fs::read_dir(dir).map_err(|e| io_error(dir, "list", e))? {
                let entry = entry.map_err(|e| io_error(dir, "list", e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("tile-") {
                    fs::remove_file(entry.path())
                        .map_err(|e| io_error(&entry.path(), "remove", e))?;
                    removed += 1;
                }
            }
            if removed > 0 {
                tracing::info!(
                    "checkpoints: {removed} tile file(s) in {} belong to another analysis: removed",
                    dir.display()
                );
            }
            write_atomic(&fp_path, stamp.as_bytes())?;
        }
        Ok(cp)
    }

    /// The checkpoint directory `dir`, as it is (to [`TileCheckpoints::remove`] it).
    pub fn at(dir: &Path) -> TileCheckpoints {
        TileCheckpoints {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("tile-{index}.bin"))
    }

    /// The tiles with a finished file.
    pub fn finished(&self) -> Result<BTreeSet<usize>> {
        let mut out = BTreeSet::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, "list", e))? {
            let entry = entry.map_err(|e| io_error(&self.dir, "list", e))?;
            let name = entry.file_name();
            let Some(index) = name
                .to_str()
                .and_then(|n| n.strip_prefix("tile-"))
                .and_then(|n| n.strip_suffix(".bin"))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            out.insert(index);
        }
        Ok(out)
    }

    /// Remove the directory and everything in it (the analysis finished and its result is
    /// kept elsewhere).
    pub fn remove(self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&self.dir, "remove", e)),
        }
    }
}

impl TileStore for TileCheckpoints {
    fn finished(&self) -> Result<BTreeSet<usize>> {
        TileCheckpoints::finished(self)
    }

    fn load_bytes(&self, index: usize) -> Option<Vec<u8>> {
        let path = self.path(index);
        match fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(
                    "checkpoints: {} cannot be read ({e}): tile {index} is analysed again",
                    path.display()
                );
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    fn save_bytes(&self, index: usize, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path(index), bytes)
    }

    fn discard(&self, index: usize) {
        let _ = fs::remove_file(self.path(index));
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Write `bytes` to `path` so that `path` holds either its old content or all of `bytes`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error(path, "write", e)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn saved_tiles_come_back_and_another_analysis_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let cp = TileCheckpoints::open(dir.path(), "a").unwrap();
        assert!(cp.finished().unwrap().is_empty());
        save(&cp, 3, &vec![1u64, 2, 3]).unwrap();
        save(&cp, 11, &vec![7u64]).unwrap();
        assert_eq!(
            cp.finished().unwrap().into_iter().collect::<Vec<_>>(),
            [3, 11]
        );
        assert_eq!(load::<Vec<u64>>(&cp, 3), Some(vec![1, 2, 3]));
        // No temporary file is left behind.
        let names: BTreeSet<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["fingerprint", "tile-11.bin", "tile-3.bin"]
                .map(String::from)
                .into()
        );

        // The same analysis reopened keeps its tiles; another one does not see them.
        let again = TileCheckpoints::open(dir.path(), "a").unwrap();
        assert_eq!(again.finished().unwrap().len(), 2);
        let other = TileCheckpoints::open(dir.path(), "b").unwrap();
        assert!(other.finished().unwrap().is_empty());
        let back = TileCheckpoints::open(dir.path(), "a").unwrap();
        assert!(back.finished().unwrap().is_empty());
    }

    #[test]
    fn a_damaged_tile_file_is_dropped_not_merged() {
        let dir = tempfile::tempdir().unwrap();
        let cp = TileCheckpoints::open(dir.path(), "a").unwrap();
        save(&cp, 5, &vec![1u64; 100]).unwrap();
        let path = dir.path().join("tile-5.bin");
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(load::<Vec<u64>>(&cp, 5), None);
        assert!(cp.finished().unwrap().is_empty());
        cp.remove().unwrap();
        assert!(!dir.path().exists());
    }

    #[test]
    fn tiles_in_memory_come_back_and_damaged_ones_are_dropped() {
        let m = MemoryTiles::default();
        save(&m, 2, &vec![4u64, 5]).unwrap();
        assert_eq!(load::<Vec<u64>>(&m, 2), Some(vec![4, 5]));
        m.save_bytes(3, &[0xc1]).unwrap(); // 0xc1: never used in MessagePack
        assert_eq!(
            m.finished().unwrap().into_iter().collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(load::<Vec<u64>>(&m, 3), None);
        assert_eq!(m.into_inner().into_keys().collect::<Vec<_>>(), [2]);
    }
}
