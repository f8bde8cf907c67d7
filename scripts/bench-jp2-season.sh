#!/usr/bin/env bash
# The full-tile season (10980² px, 6 dates) from JPEG 2000 products laid out as ESA delivers
# them, against the same season from single-file GeoTIFFs, and GDAL's own decode time of the
# JPEG 2000 files (docs/benchmarks.md, "Full tile from JPEG 2000 products").
#
#   scripts/bench-jp2-season.sh [WORK_DIR]        # default /work/bench; needs ~20 GB free
#   GENGDI=/path/to/gengdi scripts/bench-jp2-season.sh   # a given binary, no build
#
# Steps (each skipped when its output exists): a release build; the generated season
# (`gengdi-season`, ~2 min, 9.4 GB); the same season as six L2A .SAFE products
# (`scripts/safe-from-season.py`: 10 m B02 B03 B04 B08, 20 m B05 B06 B07 B8A B11 B12 SCL, JPEG
# 2000 by GDAL's JP2OpenJPEG driver, lossless; tens of minutes); then, on a machine left
# idle, `gengdi analyze` on each (phase split printed by gengdi, wall time and peak RSS by
# GNU time), and `gdal_translate` of every band file to a raw ENVI file, one after another.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/work/bench}
SEASON=$WORK/tile100v2
SAFE=$WORK/tile100v2-safe
mkdir -p "$WORK"

if [ -z "${GENGDI:-}" ]; then # GENGDI=path/to/gengdi measures that binary instead
    cargo build --release --locked -p gengdi-server -p gengdi-fixtures --bins
    GENGDI=$PWD/target/release/gengdi
fi
if [ ! -f "$SEASON/farmland.gpkg" ]; then
    target/release/gengdi-season --out "$SEASON" --size-px 10980 --farmland-fraction 1.0
fi
if [ "$(ls -d "$SAFE"/*.SAFE 2>/dev/null | wc -l)" -lt 6 ] || [ ! -f "$SAFE/.complete" ]; then
    /usr/bin/python3 scripts/safe-from-season.py "$SEASON" "$SAFE" --jobs 2 > "$WORK/safe.log"
    touch "$SAFE/.complete"
fi
du -sh "$SEASON"/S2_L2A_*.tif "$SAFE" | tail -7

run() { # name, scenes...
    local name=$1
    shift
    echo "== gengdi analyze: $name"
    /usr/bin/time -v "$GENGDI" analyze --scenes "$@" --farmland "$SEASON/farmland.gpkg" \
        --out "$WORK/changes-$name.gpkg" > "$WORK/analyze-$name.log" 2> "$WORK/time-$name.log"
    grep -E "phase|decode|warp|inference|aggregation|patches|tiles" "$WORK/analyze-$name.log" || true
    grep -E "Elapsed|Maximum resident" "$WORK/time-$name.log"
}
run gtiff "$SEASON"/S2_L2A_*.tif
run jp2 "$SAFE"/*.SAFE

echo "== gdal_translate of every band file to raw (GDAL's decode floor), one file at a time"
find "$SAFE" -name '*.jp2' | sort > "$WORK/jp2-files.txt"
/usr/bin/time -f "decode floor: %e s wall, %U s user + %S s system CPU, peak RSS %M KiB" \
    bash -c 'while read -r f; do
        gdal_translate -q -of ENVI "$f" "$0/decode.raw" && rm -f "$0"/decode.raw*
    done < "$0/jp2-files.txt"' "$WORK"
echo "($(wc -l < "$WORK/jp2-files.txt") band files)"
