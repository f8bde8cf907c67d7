//! Which model registry a command uses, wherever `gengdi` is installed and run from:
//!
//! 1. `--registry DIR` (`--out DIR` for `train`);
//! 2. else the environment variable `GENGDI_REGISTRY`;
//! 3. else a registry installed beside the executable: `<exe dir>/../share/gengdi/models`
//!    (`/usr/local/bin/gengdi` → `/usr/local/share/gengdi/models`) or `<exe dir>/models`
//!    (a folder holding a `landcover/` or `croptype/` task folder);
//! 4. else the models built into the binary (the shipped `models/weights`), unpacked into a
//!    content-addressed cache folder (`$XDG_CACHE_HOME/gengdi`, `~/.cache/gengdi`,
//!    `%LOCALAPPDATA%\gengdi`, else the temporary folder) and read-only: `train` and `models activate` refuse it and say to make
//!    a writable copy with `gengdi models export DIR`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use gengdi_models::{Registry, Task};

/// The environment variable naming the registry folder.
pub const REGISTRY_ENV: &str = "GENGDI_REGISTRY";

/// `--help` of every `--registry` option.
pub const REGISTRY_HELP: &str = "Model registry folder [default: $GENGDI_REGISTRY, else a registry installed beside the executable (<exe dir>/../share/gengdi/models or <exe dir>/models), else the models built into gengdi (read-only)]";

/// Where the registry in use came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--registry` (or `train --out`).
    Flag,
    /// `GENGDI_REGISTRY`.
    Env,
    /// Installed beside the executable.
    BesideExecutable,
    /// Built into the binary (an unpacked, read-only copy).
    BuiltIn,
}

/// A registry and where it came from.
#[derive(Clone, Debug)]
pub struct Located {
    pub registry: Registry,
    pub source: Source,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = self.registry.root().display();
        match self.source {
            Source::Flag => write!(f, "{root} (from --registry)"),
            Source::Env => write!(f, "{root} (from {REGISTRY_ENV})"),
            Source::BesideExecutable => {
                write!(f, "{root} (installed beside the gengdi executable)")
            }
            Source::BuiltIn => write!(
                f,
                "the models built into gengdi {} (read-only copy at {root})",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }
}

/// The registry to use: `flag`, else `GENGDI_REGISTRY`, else one beside the executable, else
/// the built-in models (see the module doc). Nothing is checked yet: see
/// [`Located::for_reading`] and [`Located::for_writing`].
pub fn locate(flag: Option<&Path>) -> anyhow::Result<Located> {
    if let Some(dir) = flag {
        return Ok(Located {
            registry: Registry::new(dir),
            source: Source::Flag,
        });
    }
    if let Some(dir) = std::env::var_os(REGISTRY_ENV).filter(|v| !v.is_empty()) {
        return Ok(Located {
            registry: Registry::new(PathBuf::from(dir)),
            source: Source::Env,
        });
    }
    if let Some(dir) = beside_executable() {
        return Ok(Located {
            registry: Registry::new(dir),
            source: Source::BesideExecutable,
        });
    }
    Ok(Located {
        registry: unpack_built_in()?,
        source: Source::BuiltIn,
    })
}

/// A registry installed beside the running executable, if any.
fn beside_executable() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?;
    [bin.join("../share/gengdi/models"), bin.join("models")]
        .into_iter()
        .find(|dir| Task::ALL.iter().any(|t| dir.join(t.name()).is_dir()))
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
}

/// Folders the built-in registry may be unpacked under, in order of preference.
fn cache_roots() -> Vec<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let mut roots = Vec::new();
    roots.extend(var("XDG_CACHE_HOME"));
    roots.extend(var("HOME").map(|h| h.join(".cache")));
    roots.extend(var("LOCALAPPDATA"));
    roots.push(std::env::temp_dir());
    roots
}

/// Unpack the built-in registry into the first cache folder that takes it.
fn unpack_built_in() -> anyhow::Result<Registry> {
    let name = format!("builtin-models-{}", Registry::built_in_digest());
    let mut failures = Vec::new();
    for root in cache_roots() {
        let dir = root.join("gengdi").join(&name);
        match Registry::unpack_built_in(&dir) {
            Ok(registry) => return Ok(registry),
            Err(e) => failures.push(e.to_string()),
        }
    }
    bail!(
        "cannot unpack the models built into gengdi ({}); set {REGISTRY_ENV} or pass --registry to a registry folder",
        failures.join("; ")
    )
}

impl Located {
    /// For reading models: a registry named by flag or environment must exist.
    pub fn for_reading(self) -> anyhow::Result<Located> {
        if matches!(self.source, Source::Flag | Source::Env) && !self.registry.root().is_dir() {
            bail!("model registry {self}: no such folder");
        }
        Ok(self)
    }

    /// For `what` (e.g. "gengdi train"), which writes into the registry: the built-in one is
    /// refused with where to put a writable one.
    pub fn for_writing(self, what: &str) -> anyhow::Result<Located> {
        if self.source == Source::BuiltIn {
            bail!(
                "{what} writes into the model registry, and the one in use is {self}. \
                 Make a writable copy with `gengdi models export DIR`, then pass --registry DIR \
                 (--out DIR to train) or set {REGISTRY_ENV}=DIR"
            );
        }
        Ok(self)
    }

    /// The folder of the active model of `task`.
    pub fn active_dir(&self, task: Task) -> anyhow::Result<PathBuf> {
        self.registry
            .active_dir(task)
            .with_context(|| format!("model registry {self}"))
    }

    /// The folder of the active model of `task`, or `None` when the task has no active model.
    pub fn active_dir_if_any(&self, task: Task) -> anyhow::Result<Option<PathBuf>> {
        self.registry
            .active_dir_if_any(task)
            .with_context(|| format!("model registry {self}"))
    }

    /// The folder of a model by id or unique id prefix.
    pub fn model_dir(&self, id: &str) -> anyhow::Result<PathBuf> {
        self.registry
            .model_dir(id)
            .with_context(|| format!("model registry {self}"))
    }
}

/// Copy the registry at `from` into `to`, which must not exist or be empty (hidden entries,
/// such as an interrupted training run's `.incoming-*`, are left out). Returns the number of
/// files copied.
pub fn copy_registry(from: &Path, to: &Path) -> anyhow::Result<usize> {
    if to.exists() {
        let mut entries =
            std::fs::read_dir(to).with_context(|| format!("cannot read {}", to.display()))?;
        if entries.next().is_some() {
            bail!("{} exists and is not empty", to.display());
        }
    }
    copy_dir(from, to)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut n = 0;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            n += copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
            n += 1;
        }
    }
    Ok(n)
}
