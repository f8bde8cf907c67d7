//! Paths that requests name: files under the import root, and nowhere else.

use std::path::{Component, Path, PathBuf};

use crate::error::{Result, ServiceError};

/// The import root, canonicalised once.
#[derive(Clone, Debug)]
pub struct ImportRoot {
    root: PathBuf,
}

impl ImportRoot {
    /// `root` must exist (it is created if missing) and is resolved to its canonical path.
    pub fn new(root: &Path) -> Result<ImportRoot> {
        std::fs::create_dir_all(root).map_err(|source| ServiceError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let root = std::fs::canonicalize(root).map_err(|source| ServiceError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(ImportRoot { root })
    }

    /// The canonical root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The canonical file a request names: relative to the root, or absolute inside it.
    /// Refused ([`ServiceError::OutsideImportRoot`]): `..` components, absolute paths
    /// elsewhere, and paths whose symbolic links lead out of the root. A path under the
    /// root that does not exist is [`ServiceError::NotUnderImportRoot`].
    pub fn resolve(&self, requested: &str) -> Result<PathBuf> {
        let outside = || ServiceError::OutsideImportRoot {
            path: requested.to_string(),
        };
        if requested.is_empty() || requested.contains('\0') {
            return Err(outside());
        }
        let p = Path::new(requested);
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(outside());
        }
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        };
        if !joined.starts_with(&self.root) {
            return Err(outside());
        }
        let canonical =
            std::fs::canonicalize(&joined).map_err(|_| ServiceError::NotUnderImportRoot {
                path: requested.to_string(),
            })?;
        if !canonical.starts_with(&self.root) {
            return Err(outside());
        }
        Ok(canonical)
    }

    /// `path` (canonical, under the root) relative to the root, for display.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_leading_out_of_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let r = ImportRoot::new(&root).unwrap();
        std::fs::write(root.join("a.txt"), "x").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link")).unwrap();
        assert!(r.resolve("a.txt").is_ok());
        let abs = root.join("a.txt").display().to_string();
        assert!(r.resolve(&abs).is_ok());
        for bad in [
            "../secret.txt",
            "x/../../secret.txt",
            "/etc/passwd",
            "link",
            "",
        ] {
            assert!(
                matches!(r.resolve(bad), Err(ServiceError::OutsideImportRoot { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            r.resolve("missing.tif"),
            Err(ServiceError::NotUnderImportRoot { .. })
        ));
    }
}
