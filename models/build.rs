//! Embeds the shipped model registry (`weights/`: every task's `active.json` and every model's
//! card and weights) into the crate, so a `gengdi` binary finds its models wherever it is
//! installed and run (`gengdi_models::registry::BUILT_IN_FILES`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let weights = manifest.join("weights");
    println!("cargo:rerun-if-changed={}", weights.display());
    let mut files = Vec::new();
    collect(&weights, &weights, &mut files);
    files.sort();
    let mut code = String::from(
        "/// The shipped registry's files: (path relative to the registry root, with `/`, bytes).\n\
         pub const BUILT_IN_FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        let _ = writeln!(code, "    ({rel:?}, include_bytes!({abs:?})),");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out.join("built_in_registry.rs"), code) {
        println!("cargo:warning=cannot write the embedded registry list: {e}");
        std::process::exit(1);
    }
}

/// Every file under `dir` (hidden files and folders, such as a training run's `.incoming-*`,
/// left out) as (path relative to `root` joined with `/`, absolute path).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((rel.join("/"), path.display().to_string()));
        }
    }
}
