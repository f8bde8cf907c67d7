//! The model registry: a folder with one sub-folder per task, one folder per model version
//! (named by its id) holding `card.json` + `weights.bpk`, and `<task>/active.json` naming the
//! active version.
//!
//! ```text
//! models/weights/
//!   landcover/active.json          {"id": "3f2a..."}
//!   landcover/3f2a.../card.json
//!   landcover/3f2a.../weights.bpk
//!   croptype/...
//! ```
//!
//! The shipped registry (`models/weights`) is also built into the crate (see `build.rs`):
//! [`Registry::unpack_built_in`] writes it into a folder and opens it read-only, so a binary
//! finds its models wherever it is installed and run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::card::{ModelCard, CARD_FILE};
use crate::classes::Task;
use crate::{ModelError, Result};

/// File naming the active version of a task.
pub const ACTIVE_FILE: &str = "active.json";

// BUILT_IN_FILES: the shipped registry's files, listed by build.rs.
include!(concat!(env!("OUT_DIR"), "/built_in_registry.rs"));

/// A registry rooted at a folder.
#[derive(Clone, Debug)]
pub struct Registry {
    root: PathBuf,
    /// An unpacked copy of the built-in registry: read-only.
    built_in: bool,
}

/// One line of `gengdi models list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// Model id.
    pub id: String,
    /// Task.
    pub task: Task,
    /// Whether it is the active version of its task.
    pub active: bool,
    /// Creation time.
    pub created: String,
    /// Held-out overall accuracy.
    pub overall_accuracy: f64,
    /// Held-out samples.
    pub n_test: u64,
    /// Folder.
    pub dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Active {
    id: String,
}

impl Registry {
    /// A registry at `root` (the folder need not exist yet; it is created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            built_in: false,
        }
    }

    /// The registry built into this crate (the shipped `models/weights`), written into `dir`
    /// (files already there with the same bytes are kept; others are replaced atomically) and
    /// opened read-only. Give each build its own folder, e.g. named by
    /// [`Registry::built_in_digest`].
    pub fn unpack_built_in(dir: &Path) -> Result<Self> {
        for (rel, bytes) in BUILT_IN_FILES {
            let path = dir.join(rel);
            if std::fs::read(&path).is_ok_and(|b| b == *bytes) {
                continue;
            }
            let parent = path.parent().unwrap_or(dir);
            std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, bytes).map_err(|e| ModelError::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| ModelError::io(&path, e))?;
        }
        Ok(Self {
            root: dir.to_path_buf(),
            built_in: true,
        })
    }

    /// The first 16 hex digits of the sha256 of the built-in registry (paths and bytes).
    pub fn built_in_digest() -> String {
        let mut h = Sha256::new();
        for (rel, bytes) in BUILT_IN_FILES {
            h.update((rel.len() as u64).to_le_bytes());
            h.update(rel.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The built-in registry's files: (path relative to the root, with `/`, bytes).
    pub fn built_in_files() -> &'static [(&'static str, &'static [u8])] {
        BUILT_IN_FILES
    }

    /// Whether this is the (read-only) built-in registry.
    pub fn is_built_in(&self) -> bool {
        self.built_in
    }

    /// Refuse to write into the built-in registry.
    pub fn ensure_writable(&self) -> Result<()> {
        if self.built_in {
            return Err(ModelError::ReadOnlyRegistry {
                registry: self.root.clone(),
            });
        }
        Ok(())
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn task_dir(&self, task: Task) -> PathBuf {
        self.root.join(task.name())
    }

    /// All model versions, by task then creation time.
    pub fn list(&self) -> Result<Vec<RegistryEntry>> {
        let mut out = Vec::new();
        for task in Task::ALL {
            let dir = self.task_dir(task);
            if !dir.is_dir() {
                continue;
            }
            let active = self.active_id(task)?;
            let entries = std::fs::read_dir(&dir).map_err(|e| ModelError::io(&dir, e))?;
            for entry in entries {
                let path = entry.map_err(|e| ModelError::io(&dir, e))?.path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !path.join(CARD_FILE).is_file() || name.starts_with('.') {
                    continue;
                }
                let card = ModelCard::load(&path)?;
                out.push(RegistryEntry {
                    active: active.as_deref() == Some(card.id.as_str()),
                    id: card.id.clone(),
                    task: card.task,
                    created: card.created.clone(),
                    overall_accuracy: card.metrics.overall.overall_accuracy,
                    n_test: card.metrics.overall.n,
                    dir: path,
                });
            }
        }
        out.sort_by(|a, b| (a.task, &a.created, &a.id).cmp(&(b.task, &b.created, &b.id)));
        Ok(out)
    }

    /// The folder of a model, by id or unique id prefix.
    pub fn model_dir(&self, id: &str) -> Result<PathBuf> {
        let matches: Vec<RegistryEntry> = self
            .list()?
            .into_iter()
            .filter(|e| e.id.starts_with(id))
            .collect();
        match matches.len() {
            0 => Err(ModelError::ModelNotFound {
                id: id.into(),
                registry: self.root.clone(),
            }),
            1 => Ok(matches[0].dir.clone()),
            _ => {
                if let Some(exact) = matches.iter().find(|e| e.id == id) {
                    return Ok(exact.dir.clone());
                }
                Err(ModelError::AmbiguousId {
                    id: id.into(),
                    registry: self.root.clone(),
                    matches: matches.into_iter().map(|e| e.id).collect(),
                })
            }
        }
    }

    /// The card of a model, by id or unique id prefix.
    pub fn show(&self, id: &str) -> Result<ModelCard> {
        ModelCard::load(&self.model_dir(id)?)
    }

    /// Make a model the active version of its task.
    pub fn activate(&self, id: &str) -> Result<ModelCard> {
        self.ensure_writable()?;
        let card = self.show(id)?;
        let path = self.task_dir(card.task).join(ACTIVE_FILE);
        let text = serde_json::to_string_pretty(&Active {
            id: card.id.clone(),
        })
        .map_err(|e| ModelError::json(&path, e))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(|e| ModelError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| ModelError::io(&path, e))?;
        Ok(card)
    }

    /// The active id of a task, if any.
    pub fn active_id(&self, task: Task) -> Result<Option<String>> {
        let path = self.task_dir(task).join(ACTIVE_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let a: Active = serde_json::from_str(&text).map_err(|e| ModelError::json(&path, e))?;
        Ok(Some(a.id))
    }

    /// The folder of the active model of a task.
    pub fn active_dir(&self, task: Task) -> Result<PathBuf> {
        self.active_dir_if_any(task)?
            .ok_or_else(|| ModelError::NoActiveModel {
                task: task.to_string(),
                registry: self.root.clone(),
            })
    }

    /// The folder of the active model of a task, or `None` when the task has no active model
    /// (an optional model, such as a season-cover model).
    pub fn active_dir_if_any(&self, task: Task) -> Result<Option<PathBuf>> {
        let Some(id) = self.active_id(task)? else {
            return Ok(None);
        };
        let dir = self.task_dir(task).join(&id);
        if dir.join(CARD_FILE).is_file() {
            Ok(Some(dir))
        } else {
            Err(ModelError::ModelNotFound {
                id,
                registry: self.root.clone(),
            })
        }
    }
}
