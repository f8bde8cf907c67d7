#!/usr/bin/env bash
# Quick start, command 2: the whole test suite (installs what is missing first).
#
# Then the service's API and store tests a second time against a real PostgreSQL 15 +
# PostGIS 3 server this script starts on a free loopback port in a temporary directory
# (scripts/pg-test-server.sh) and removes afterwards, with the PostgreSQL-only tests that
# the plain run skips (`#[ignore]`d there).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Doctests first (nextest does not run them), so the suite's summary is the last word.
cargo test --locked --workspace --doc
status=0
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast || status=$?
else
    echo "cargo-nextest not found: using cargo test" >&2
    cargo test --locked --workspace --no-fail-fast --lib --bins --tests || status=$?
fi

echo "== the service's tests against PostgreSQL/PostGIS"
pgdir=$(mktemp -d -t gengdi-pg.XXXXXX)
trap 'scripts/pg-test-server.sh stop "$pgdir"' EXIT
GENGDI_TEST_POSTGRES=$(scripts/pg-test-server.sh start "$pgdir")
export GENGDI_TEST_POSTGRES
# The test binaries whose stores come from tests/common (the API over a store); the
# end-to-end analyses (e2e, batch_options, training) open their own SQLite store and
# store.rs tests the SQLite file itself, so they are not repeated.
pg_tests=(router stats sort store_backends export photos openapi metrics upload jobs limits map_layers)
if cargo nextest --version >/dev/null 2>&1; then
    filter=$(printf 'binary(%s) | ' "${pg_tests[@]}")
    # --workspace (not -p): the same feature set as the run above, so nothing is rebuilt.
    cargo nextest run --locked --workspace --no-fail-fast --run-ignored all \
        -E "package(gengdi-service) & (${filter% | })" || status=$?
else
    args=()
    for t in "${pg_tests[@]}"; do args+=(--test "$t"); done
    cargo test --locked --workspace --no-fail-fast "${args[@]}" -- --include-ignored || status=$?
fi
exit "$status"
