#!/usr/bin/env bash
# Install what gengdi needs on Debian 12 that a machine with only the Rust toolchain lacks:
# GDAL (library, headers, command-line tools, Python bindings for the COG validator),
# pkg-config, and for the web map's browser test Debian's Chromium, a CJK font (Chinese
# place and class names in its screenshots) and the test's npm packages (playwright-core,
# pinned by service/web/test/package-lock.json; no browser is downloaded). Idempotent: does
# nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libgdal-dev gdal-bin python3-gdal libsqlite3-dev pkg-config curl chromium fonts-wqy-microhei)
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
