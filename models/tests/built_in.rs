//! The shipped registry built into the crate is `models/weights`, byte for byte, and the
//! unpacked copy is read-only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gengdi_models::error::ModelError;
use gengdi_models::{Registry, Task};

fn weights() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights")
}

/// Every (non-hidden) file under `dir`: path relative to it, with `/` → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap();
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(rel.join("/"), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn the_built_in_registry_is_the_shipped_folder_byte_for_byte() {
    let built_in: BTreeMap<String, Vec<u8>> = Registry::built_in_files()
        .iter()
        .map(|(p, b)| (p.to_string(), b.to_vec()))
        .collect();
    assert_eq!(built_in, files(&weights()));
    assert!(built_in.keys().any(|p| p.ends_with("weights.bpk")));
    assert_eq!(Registry::built_in_digest().len(), 16);
}

#[test]
fn the_unpacked_built_in_registry_lists_and_loads_like_the_folder_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let unpacked = Registry::unpack_built_in(dir.path()).unwrap();
    assert!(unpacked.is_built_in());
    assert_eq!(files(dir.path()), files(&weights()));
    let folder = Registry::new(weights());
    let strip = |r: &Registry| {
        r.list()
            .unwrap()
            .into_iter()
            .map(|e| (e.task, e.id, e.active))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&unpacked), strip(&folder));
    for task in Task::ALL {
        assert_eq!(
            unpacked.active_id(task).unwrap(),
            folder.active_id(task).unwrap()
        );
    }
    let id = folder.active_id(Task::LandCover).unwrap().unwrap();
    assert!(matches!(
        unpacked.activate(&id),
        Err(ModelError::ReadOnlyRegistry { .. })
    ));
    assert!(unpacked.ensure_writable().is_err() && folder.ensure_writable().is_ok());
    // A damaged copy is repaired by the next unpack; intact files are left as they are.
    let active = dir.path().join("landcover").join("active.json");
    std::fs::write(&active, "{}").unwrap();
    Registry::unpack_built_in(dir.path()).unwrap();
    assert_eq!(files(dir.path()), files(&weights()));
}
