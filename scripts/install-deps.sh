#!/usr/bin/env bash
# Install what gengdi needs on Debian 12 that a machine with only the Rust toolchain lacks:
# GDAL (library, headers, command-line tools, Python bindings for the COG validator),
# pkg-config, and for the web map's browser test Debian's Chromium, a CJK font (Chinese
# place and class names in its screenshots) and the test's npm packages (playwright-core,
# pinned by service/web/test/package-lock.json; no browser is downloaded), and PostgreSQL 15
# with PostGIS 3 for the shared store's tests (scripts/pg-test-server.sh starts a throwaway
# server; the packaged cluster service is not used), and an S3-compatible server for the
# object-storage test (moto[server] from PyPI, in a virtual environment). Idempotent: does
# nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libgdal-dev gdal-bin python3-gdal libsqlite3-dev pkg-config curl chromium fonts-wqy-microhei
          postgresql-15 postgresql-15-postgis-3 python3-venv)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The S3-compatible server the object-storage test starts (moto's, from PyPI), in a virtual
# environment under the build directory.
s3_venv="${CARGO_TARGET_DIR:-target}/s3-test-venv"
if [ ! -x "$s3_venv/bin/moto_server" ]; then
    echo "installing the S3 test server (moto[server], PyPI) into $s3_venv" >&2
    rm -rf "$s3_venv"
    python3 -m venv "$s3_venv"
    "$s3_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5"
fi

# The browser test's driver (playwright-core only: it drives /usr/bin/chromium).
web_test=service/web/test
if [ ! -d "$web_test/node_modules/playwright-core" ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "installing the web map test's npm packages ($web_test)" >&2
        (cd "$web_test" && npm ci --no-audit --no-fund --loglevel=error)
    else
        # gengdi builds and runs without it; only the browser test needs it (and fails saying so).
        echo "npm is missing: install Node.js 20 or later for the web map's browser test" >&2
    fi
fi
