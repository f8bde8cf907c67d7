# shellcheck shell=bash
# Sourced by the scripts that run the workspace's own binaries (train-models.sh,
# season-eval.sh, holdout-sources.sh): `dev_bins PKG…` builds those packages' binaries in the
# dev profile and sets DEV_BIN_DIR to the folder they are in (the workspace's target dir,
# wherever CARGO_TARGET_DIR puts it).
dev_bins() {
    local args=()
    for p in "$@"; do args+=(-p "$p"); done
    cargo build --locked -q "${args[@]}" --bins
    DEV_BIN_DIR=$(cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug
}
