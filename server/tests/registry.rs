//! The shipped models are found wherever gengdi is run from: `--registry`, else
//! `GENGDI_REGISTRY`, else a registry installed beside the executable, else the models built
//! into the binary (read-only; `gengdi models export` makes a writable copy).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn shipped() -> PathBuf {
    root().join("models/weights")
}

const SCENE: &str = "fixtures/data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif";

/// Run `exe` in `cwd` with `args`; `GENGDI_REGISTRY` is unset unless `env` sets it, and the
/// built-in models unpack under `cache` (never the user's own cache).
fn run_exe(exe: &Path, cwd: &Path, cache: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut c = Command::new(exe);
    c.args(args)
        .current_dir(cwd)
        .env_remove("GENGDI_REGISTRY")
        .env("XDG_CACHE_HOME", cache);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn gengdi(cwd: &Path, cache: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    run_exe(
        Path::new(env!("CARGO_BIN_EXE_gengdi")),
        cwd,
        cache,
        env,
        args,
    )
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file of a registry folder: relative path → bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// (task, id, active) of every shipped model, read from the folder.
fn shipped_models() -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for task in ["landcover", "croptype"] {
        let dir = shipped().join(task);
        let active = std::fs::read_to_string(dir.join("active.json")).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.join("card.json").is_file() {
                let id = p.file_name().unwrap().to_string_lossy().into_owned();
                let is_active = active.contains(&format!("\"{id}\""));
                out.push((task.to_string(), id, is_active));
            }
        }
    }
    assert!(out.len() >= 2 && out.iter().filter(|m| m.2).count() == 2);
    out
}

/// The table rows of `gengdi models list` (after its `registry:` line and header).
fn rows(stdout: &str) -> Vec<String> {
    stdout.lines().skip(2).map(str::to_string).collect()
}

/// The class-share lines of `gengdi classify` (`  3 tree  1234 px  12.34 %`).
fn shares(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("  ") && l.ends_with('%'))
        .map(str::to_string)
        .collect()
}

fn class_band(path: &Path) -> Vec<u8> {
    let ds = gdal::Dataset::open(path).unwrap();
    let band = ds.rasterband(1).unwrap();
    band.read_band_as::<u8>().unwrap().data().to_vec()
}

#[test]
fn models_list_in_a_foreign_folder_shows_the_shipped_models_and_says_where_they_come_from() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = ok(&gengdi(cwd.path(), cache.path(), &[], &["models", "list"]));
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("registry: the models built into gengdi"),
        "{out}"
    );
    for (task, id, active) in shipped_models() {
        let line = out
            .lines()
            .find(|l| l.contains(&id))
            .unwrap_or_else(|| panic!("{id} not listed: {out}"));
        assert!(line.contains(&task), "{line}");
        assert_eq!(line.starts_with('*'), active, "{line}");
    }
    // The same rows as the repository's registry folder gives.
    let repo = ok(&gengdi(
        &root(),
        cache.path(),
        &[],
        &["models", "list", "--registry", "models/weights"],
    ));
    assert!(
        repo.starts_with("registry: models/weights (from --registry)"),
        "{repo}"
    );
    assert_eq!(rows(&out), rows(&repo));
    // Unpacked, byte for byte, under the cache folder.
    let unpacked: Vec<PathBuf> = std::fs::read_dir(cache.path().join("gengdi"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(unpacked.len(), 1, "{unpacked:?}");
    assert!(
        first.contains(&unpacked[0].display().to_string()),
        "{first}"
    );
    assert_eq!(files(&unpacked[0]), files(&shipped()));
}

#[test]
fn classify_in_a_foreign_folder_gives_the_class_shares_it_gives_in_the_repository() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let scene = root().join(SCENE);
    let scene = scene.to_str().unwrap();
    let away = cwd.path().join("x.tif");
    let out = ok(&gengdi(
        cwd.path(),
        cache.path(),
        &[],
        &[
            "classify",
            scene,
            "--out",
            away.to_str().unwrap(),
            "--tile",
            "64",
        ],
    ));
    let home = cwd.path().join("repo.tif");
    let repo = ok(&gengdi(
        &root(),
        cache.path(),
        &[],
        &[
            "classify",
            SCENE,
            "--registry",
            "models/weights",
            "--out",
            home.to_str().unwrap(),
            "--tile",
            "64",
        ],
    ));
    assert_eq!(shares(&out).len(), 8, "{out}");
    assert_eq!(shares(&out), shares(&repo));
    let model = |s: &str| {
        s.lines()
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(model(&out), model(&repo));
    assert_eq!(class_band(&away), class_band(&home));
}

#[test]
fn an_empty_registry_named_by_gengdi_registry_is_an_error_naming_it() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let empty = tempfile::tempdir().unwrap();
    let scene = root().join(SCENE);
    let out = gengdi(
        cwd.path(),
        cache.path(),
        &[("GENGDI_REGISTRY", empty.path())],
        &["classify", scene.to_str().unwrap(), "--out", "x.tif"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let dir = empty.path().display().to_string();
    assert!(
        err.contains(&format!("model registry {dir} (from GENGDI_REGISTRY)"))
            && err.contains("no active landcover model"),
        "{err}"
    );
    // A folder that does not exist is named too.
    let missing = empty.path().join("nope");
    let out = gengdi(
        cwd.path(),
        cache.path(),
        &[("GENGDI_REGISTRY", &missing)],
        &["models", "list"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} (from GENGDI_REGISTRY): no such folder",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn the_registry_flag_overrides_gengdi_registry() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let empty = tempfile::tempdir().unwrap();
    let env = [("GENGDI_REGISTRY", empty.path())];
    let registry = shipped();
    let registry = registry.to_str().unwrap();
    let out = ok(&gengdi(
        cwd.path(),
        cache.path(),
        &env,
        &["models", "list", "--registry", registry],
    ));
    assert!(
        out.starts_with(&format!("registry: {registry} (from --registry)")),
        "{out}"
    );
    assert_eq!(rows(&out).len(), shipped_models().len(), "{out}");
    let scene = root().join(SCENE);
    ok(&gengdi(
        cwd.path(),
        cache.path(),
        &env,
        &[
            "classify",
            scene.to_str().unwrap(),
            "--registry",
            registry,
            "--out",
            "x.tif",
            "--tile",
            "64",
        ],
    ));
    assert!(cwd.path().join("x.tif").is_file());
    // Without the flag the (empty) registry of the environment is the one used.
    let out = ok(&gengdi(cwd.path(), cache.path(), &env, &["models", "list"]));
    assert!(
        out.contains("(from GENGDI_REGISTRY)") && rows(&out).is_empty(),
        "{out}"
    );
}

#[test]
fn the_built_in_registry_is_read_only_and_models_export_makes_a_writable_copy() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let other = shipped_models()
        .into_iter()
        .find(|(task, _, active)| task == "landcover" && !active)
        .unwrap()
        .1;
    for args in [
        vec!["models", "activate", other.as_str()],
        vec!["train", "--task", "landcover", "--epochs", "1"],
    ] {
        let out = gengdi(cwd.path(), cache.path(), &[], &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("built into gengdi")
                && err.contains("gengdi models export DIR")
                && err.contains("GENGDI_REGISTRY=DIR"),
            "{args:?}: {err}"
        );
    }
    let mine = cwd.path().join("mine");
    ok(&gengdi(
        cwd.path(),
        cache.path(),
        &[],
        &["models", "export", mine.to_str().unwrap()],
    ));
    assert_eq!(files(&mine), files(&shipped()));
    // A second export into the now non-empty folder is refused.
    let again = gengdi(
        cwd.path(),
        cache.path(),
        &[],
        &["models", "export", mine.to_str().unwrap()],
    );
    assert!(!again.status.success());
    let env = [("GENGDI_REGISTRY", mine.as_path())];
    ok(&gengdi(
        cwd.path(),
        cache.path(),
        &env,
        &["models", "activate", &other],
    ));
    let out = ok(&gengdi(cwd.path(), cache.path(), &env, &["models", "list"]));
    let line = out.lines().find(|l| l.contains(&other)).unwrap();
    assert!(line.starts_with('*'), "{out}");
    // The built-in registry is unchanged.
    let out = ok(&gengdi(cwd.path(), cache.path(), &[], &["models", "list"]));
    let line = out.lines().find(|l| l.contains(&other)).unwrap();
    assert!(!line.starts_with('*'), "{out}");
}

#[test]
fn a_registry_installed_beside_the_executable_is_used_before_the_built_in_one() {
    let (cwd, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // An install prefix: PREFIX/bin/gengdi and PREFIX/share/gengdi/models.
    let prefix = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bin = prefix.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("gengdi");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_gengdi"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_gengdi"), &exe).unwrap();
    }
    let models = prefix.path().join("share/gengdi/models");
    ok(&gengdi(
        cwd.path(),
        cache.path(),
        &[],
        &["models", "export", models.to_str().unwrap()],
    ));
    let other = shipped_models()
        .into_iter()
        .find(|(task, _, active)| task == "landcover" && !active)
        .unwrap()
        .1;
    ok(&gengdi(
        cwd.path(),
        cache.path(),
        &[],
        &[
            "models",
            "--registry",
            models.to_str().unwrap(),
            "activate",
            &other,
        ],
    ));
    let out = ok(&run_exe(
        &exe,
        cwd.path(),
        cache.path(),
        &[],
        &["models", "list"],
    ));
    assert!(
        out.lines()
            .next()
            .unwrap()
            .ends_with("(installed beside the gengdi executable)"),
        "{out}"
    );
    let line = out.lines().find(|l| l.contains(&other)).unwrap();
    assert!(line.starts_with('*'), "{out}");
}
