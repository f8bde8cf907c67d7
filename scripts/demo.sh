#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run gengdi on the shipped
# demo data (a real 5-date Sentinel-2 stack over Slovenia and a BigEarthNet patch with
# 10/20/60 m bands).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --locked -p gengdi-server
gengdi=target/debug/gengdi
data=fixtures/data

echo "== gengdi info (one scene, with per-band statistics)"
$gengdi info $data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif --stats
echo
echo "== gengdi tiles (five dates on one grid, read tile by tile in parallel)"
$gengdi tiles $data/eolearn-slovenia-s2/s2l1c_2015*_13band.tif --tile 64 --halo 8
echo
echo "== gengdi tiles (one date, 20 m and 60 m bands warped onto the 10 m grid)"
$gengdi tiles $data/bigearthnet-tiny-s2/s2/S2B_MSIL2A_20180421T114349_47_56 --tile 64 --halo 4
