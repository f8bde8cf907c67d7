#!/usr/bin/env bash
# Quick start, command 2: the whole test suite (installs what is missing first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Doctests first (nextest does not run them), so the suite's summary is the last word.
cargo test --locked --workspace --doc
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast
else
    echo "cargo-nextest not found: using cargo test" >&2
    cargo test --locked --workspace --no-fail-fast --lib --bins --tests
fi
