//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong when loading data, training, saving, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV table could not be parsed.
    #[error("CSV error in {path}: {source}")]
    Csv {
        /// The table.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },
    /// A JSON file could not be parsed or written.
    #[error("JSON error in {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A table lacks a column this loader needs.
    #[error("{path}: missing column {column:?}")]
    MissingColumn {
        /// The table.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// A value in a table could not be parsed.
    #[error("{path}, line {line}: bad value {value:?} in column {column:?}")]
    BadValue {
        /// The table.
        path: PathBuf,
        /// 1-based line number (header = 1).
        line: u64,
        /// The column.
        column: String,
        /// The text found.
        value: String,
    },
    /// A data file is of a layout no loader knows.
    #[error("{path}: unknown table layout ({reason})")]
    UnknownLayout {
        /// The file.
        path: PathBuf,
        /// What was expected.
        reason: String,
    },
    /// The input bands do not contain the bands the model card expects.
    #[error("band mismatch: model {model_id} expects bands {expected:?}, input has {got:?} (missing {missing:?})")]
    BandMismatch {
        /// The model.
        model_id: String,
        /// Bands named in the model card.
        expected: Vec<String>,
        /// Bands of the input.
        got: Vec<String>,
        /// Expected bands absent from the input.
        missing: Vec<String>,
    },
    /// An input array has the wrong shape.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Which input.
        what: String,
        /// Expected shape, in words.
        expected: String,
        /// Shape found.
        got: String,
    },
    /// A model card describes a different task than the caller asked for.
    #[error("model {model_id} is a {found} model, expected {expected}")]
    WrongTask {
        /// The model.
        model_id: String,
        /// Task asked for.
        expected: String,
        /// Task in the card.
        found: String,
    },
    /// A weights file does not match its card (hash) or could not be applied to the network.
    #[error("weights {path}: {reason}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Not enough samples to do what was asked.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A string does not name a known value.
    #[error("unknown {kind} {value:?}; expected one of {expected}")]
    UnknownName {
        /// What kind of name (task, device, class...).
        kind: &'static str,
        /// The text given.
        value: String,
        /// The accepted values.
        expected: String,
    },
    /// No model with this id in the registry.
    #[error("no model {id:?} in registry {registry}")]
    ModelNotFound {
        /// The id or prefix asked for.
        id: String,
        /// Registry root.
        registry: PathBuf,
    },
    /// An id prefix matches several models.
    #[error("model id prefix {id:?} is ambiguous in registry {registry}: {matches:?}")]
    AmbiguousId {
        /// The prefix.
        id: String,
        /// Registry root.
        registry: PathBuf,
        /// The ids it matches.
        matches: Vec<String>,
    },
    /// No model is active for a task.
    #[error("no active {task} model in registry {registry}")]
    NoActiveModel {
        /// The task.
        task: String,
        /// Registry root.
        registry: PathBuf,
    },
    /// A write into the built-in registry (an unpacked copy of the shipped models).
    #[error("the registry {registry} is the built-in one, a read-only copy of the shipped models")]
    ReadOnlyRegistry {
        /// Where it is unpacked.
        registry: PathBuf,
    },
    /// A tensor computation failed (backend error).
    #[error("tensor backend error: {0}")]
    Backend(String),
    /// A [`crate::training_config::TrainObserver`] asked the training to stop.
    #[error("training cancelled")]
    Cancelled,
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn csv(path: impl Into<PathBuf>, source: csv::Error) -> Self {
        Self::Csv {
            path: path.into(),
            source,
        }
    }
}
