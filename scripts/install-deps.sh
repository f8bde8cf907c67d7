#!/usr/bin/env bash
# Install what gengdi needs on Debian 12 that a machine with only the Rust toolchain lacks:
# GDAL (library, headers, command-line tools, Python bindings for the COG validator) and
# pkg-config. Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(libgdal-dev gdal-bin python3-gdal libsqlite3-dev pkg-config curl)
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
