//! Embeds the web page (`web/static/**`) in the service: `$OUT_DIR/web_assets.rs` lists every
//! file with its path relative to `web/static` and its bytes (`include_bytes!`), sorted by
//! path, so `gengdi serve` carries the page and needs nothing beside the binary.

// A build script reports a failure by panicking: cargo prints the message and stops.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("web").join("static");
    println!("cargo:rerun-if-changed=web/static");
    let mut found = Vec::new();
    files(&root, &mut found);
    found.sort();
    let mut code = String::from("/// The web page's files: (path under `web/static`, bytes).\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for f in &found {
        let rel = f
            .strip_prefix(&root)
            .expect("found under the root")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("web_assets.rs");
    std::fs::write(out, code).expect("writing web_assets.rs");
}
