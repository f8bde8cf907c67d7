# shellcheck shell=bash
# Sourced by the scripts that run the workspace's own binaries (train-models.sh,
# season-eval.sh, holdout-sources.sh): `dev_bins PKG…` builds those packages' binaries in the
# dev profile and sets DEV_BIN_DIR to the folder they are in (the workspace's target dir,
# wherever CARGO_TARGET_DIR puts it). It builds them as the test command does (`cargo test
# --workspace --no-run`, which builds every binary too): `cargo build -p PKG --bins` unifies
# the dependencies' features otherwise and rebuilds Burn and the rest for minutes, twice (once
# for it, once for the next test run). The package names say which binaries are wanted.
dev_bins() {
    : "$@"
    cargo test --locked -q --workspace --no-run
    DEV_BIN_DIR=$(cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug
}
