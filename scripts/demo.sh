#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run gengdi on the shipped
# demo data: scene metadata and tiling on real Sentinel-2 scenes, a land-cover map, and the
# season analysis on a generated season scene (with ground truth) and on the real Slovenia
# scene with its land-use register polygons as the farmland layer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Build exactly what the test suite builds (every package of the workspace, its tests, the
# same features and profile), so that scripts/test.sh afterwards reuses this build instead
# of compiling Burn and most dependencies a second time with another feature set.
cargo test --locked --workspace --no-run
gengdi=target/debug/gengdi
data=fixtures/data
out=target/demo
mkdir -p $out

echo "== gengdi info (one scene, with per-band statistics)"
$gengdi info $data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif --stats
echo
echo "== gengdi tiles (five dates on one grid, read tile by tile in parallel)"
$gengdi tiles $data/eolearn-slovenia-s2/s2l1c_2015*_13band.tif --tile 64 --halo 8
echo
echo "== gengdi tiles (one date, 20 m and 60 m bands warped onto the 10 m grid)"
$gengdi tiles $data/bigearthnet-tiny-s2/s2/S2B_MSIL2A_20180421T114349_47_56 --tile 64 --halo 4
echo
echo "== gengdi classify (land-cover COG with the shipped Burn model)"
$gengdi classify $data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif --out $out/slovenia_landcover.tif --tile 64
echo
echo "== a generated season scene (6 dates, 193 real parcels, ground truth) and its analysis"
target/debug/gengdi-season --out $out/season
$gengdi analyze --scenes $out/season/S2_L2A_*.tif --farmland $out/season/farmland.gpkg \
    --out $out/season_changes.geojson --maps $out/season_maps --tile 128
echo
echo "== the real Slovenia scene with its land-use register as the farmland layer"
$gengdi analyze --scenes $data/eolearn-slovenia-s2/s2l1c_2015*_13band.tif \
    --farmland $data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg --farmland-fields land_class=RABA_ID \
    --config fixtures/slovenia-rules.toml \
    --out $out/slovenia_changes.geojson --maps $out/slovenia_maps --tile 64
echo
echo "== the same season from a STAC ItemCollection, with an administrative-boundary layer, a"
echo "   baseline date and class-map COGs (landcover_DATE.tif, season_kind.tif) in $out/slovenia_stac_maps"
$gengdi analyze --scenes docs/examples/slovenia.stac.json \
    --farmland $data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg --farmland-fields land_class=RABA_ID \
    --config fixtures/slovenia-rules.toml \
    --admin docs/examples/slovenia-admin.geojson --baseline $data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif \
    --out $out/slovenia_changes.gpkg --maps $out/slovenia_stac_maps --tile 64
echo
echo "== the service: gengdi serve on the demo season, the batch submitted through the API"
echo "   (scripts/serve-demo.sh; keeps serving until Ctrl-C when run from a terminal)"
scripts/serve-demo.sh
