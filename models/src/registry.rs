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

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::card::{ModelCard, CARD_FILE};
use crate::classes::Task;
use crate::{ModelError, Result};

/// File naming the active version of a task.
pub const ACTIVE_FILE: &str = "active.json";

/// A registry rooted at a folder.
#[derive(Clone, Debug)]
pub struct Registry {
    root: PathBuf,
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
        Self { root: root.into() }
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
        match self.active_id(task)? {
            Some(id) => {
                let dir = self.task_dir(task).join(&id);
                if dir.join(CARD_FILE).is_file() {
                    Ok(dir)
                } else {
                    Err(ModelError::ModelNotFound {
                        id,
                        registry: self.root.clone(),
                    })
                }
            }
            None => Err(ModelError::NoActiveModel {
                task: task.to_string(),
                registry: self.root.clone(),
            }),
        }
    }
}
