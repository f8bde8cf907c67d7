#!/usr/bin/env bash
# The verdict loop, measured (issue 12, part 3): do inspectors' verdicts make the models
# better? On a generated development season, gengdi's patches get verdicts from the truth as
# an inspector would give them (`gengdi-season verdicts`: flagged patches confirmed or false
# positives, plus a quarter on missed violations); the active land-cover and crop-type models
# are fine-tuned on the shipped tables plus N verdicts (`gengdi train --task … --verdicts …
# --fine-tune active`, which keeps the base's split); the report seasons are analysed before
# and after and scored by `gengdi-season score`.
#
#   scripts/verdict-loop.sh [WORK_DIR]          # default target/verdict-loop
#
# Disjoint series: the active models' held-out WorldCereal samples and EuroSAT patches (the
# only ones any season here is rendered from) are split in two by line parity; the
# development season is rendered from one half, the report seasons from the other, so no
# series behind a verdict is behind a scored parcel. Nothing is tuned here: the fine-tuning
# settings are fixed below, before any score was seen.
#
# Two kinds of verdicts (LABELS): `register`, what the service's verdicts carry today (a false
# positive labels its pixels with the parcel's register class), and `found`, verdicts that also
# record the land-cover class the inspector saw on the parcel (`class_found`).
#
# Which model learns from them (TASKS, default both: `landcover croptype`): `landcover`
# fine-tunes the active land-cover model on the verdicts' pixels; `croptype` fine-tunes the
# active crop-type model on one season per verdict patch (`gengdi train --task croptype
# --verdicts`: confirmed non-grain → non_grain, tree planting → permanent_crop, abandonment →
# fallow, a false non-grain flag → grain, other false positives by the class found), the model
# behind non-grain use on PBF and the tree-planting season check. Cells of `croptype` are
# named `<n>-<labels>-croptype`.
#
# Settings: DEV_SEED (default 1), DEV_SIZE_PX (2406: 36 parcel blocks, enough patches for 400
# verdicts), REPORT_SEEDS (101–105), SIZE_PX of the report seasons (1203), VERDICTS
# (25 100 400), LABELS (register found), FT_EPOCHS (20), FT_SEEDS (1 2 3: each cell is
# fine-tuned once per seed, which seeds the initialisation order and augmentation, not the
# split; its summary is over every seed's report seasons). GENGDI / GENGDI_SEASON: binaries (default: a
# dev build).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-target/verdict-loop}
DEV_SEED=${DEV_SEED:-1}
DEV_SIZE_PX=${DEV_SIZE_PX:-2406}
SIZE_PX=${SIZE_PX:-1203}
REPORT_SEEDS=${REPORT_SEEDS:-"101 102 103 104 105"}
VERDICTS=${VERDICTS:-"25 100 400"}
LABELS=${LABELS:-"register found"}
FT_SEEDS=${FT_SEEDS:-"1 2 3"}
FT_EPOCHS=${FT_EPOCHS:-20}
TASKS=${TASKS:-"landcover croptype"}
if [ -z "${GENGDI:-}" ] || [ -z "${GENGDI_SEASON:-}" ]; then
    . scripts/dev-bins.sh && dev_bins gengdi-server gengdi-fixtures
    GENGDI=${GENGDI:-$DEV_BIN_DIR/gengdi}
    GENGDI_SEASON=${GENGDI_SEASON:-$DEV_BIN_DIR/gengdi-season}
fi
mkdir -p "$WORK"

active() { sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "models/weights/$1/active.json"; }
echo "== held-out samples of the active models, split in two halves (development / report)"
for task in landcover croptype; do
    "$GENGDI" -q eval --model "$(active $task)" --held-out --write-held-out "$WORK/$task-held-out.txt" > /dev/null
    awk 'NR % 2 == 1' "$WORK/$task-held-out.txt" > "$WORK/$task-dev.txt"
    awk 'NR % 2 == 0' "$WORK/$task-held-out.txt" > "$WORK/$task-report.txt"
done
wc -l "$WORK"/*-dev.txt "$WORK"/*-report.txt

season() { # dir seed size half
    [ -f "$1/truth_parcels.csv" ] && return
    rm -rf "$1"
    "$GENGDI_SEASON" --out "$1" --seed "$2" --size-px "$3" \
        --crop-series "$WORK/croptype-$4.txt" --landcover-samples "$WORK/landcover-$4.txt" > "$1.season.log"
}

score_all() { # registry label → $WORK/scores-<label>/seed<s>.json
    local registry=$1 label=$2 out=$WORK/scores-$2
    mkdir -p "$out"
    for s in $REPORT_SEEDS; do
        if [ ! -f "$out/seed$s.json" ]; then
            GENGDI_REGISTRY=$registry "$GENGDI" -q analyze --scenes "$WORK/report$s"/S2_L2A_*.tif \
                --farmland "$WORK/report$s/farmland.gpkg" --out "$out/seed$s.geojson" > /dev/null
            "$GENGDI_SEASON" score --season "$WORK/report$s" --changes "$out/seed$s.geojson" \
                --json "$out/seed$s.json" > "$out/seed$s.md"
        fi
    done
}

summarise() { # label score-dir… → $WORK/summary-<label>.md
    local label=$1
    shift
    local files=()
    for d in "$@"; do files+=("$d"/seed*.json); done
    "$GENGDI_SEASON" summary "${files[@]}" > "$WORK/summary-$label.md"
    echo "== $label: ${#files[@]} report seasons, mean (worst)"
    cat "$WORK/summary-$label.md"
}

echo "== development season (seed $DEV_SEED, $DEV_SIZE_PX px) and its analysis by the active models"
dev=$WORK/dev$DEV_SEED
season "$dev" "$DEV_SEED" "$DEV_SIZE_PX" dev
[ -f "$dev/changes.geojson" ] || "$GENGDI" -q analyze --scenes "$dev"/S2_L2A_*.tif \
    --farmland "$dev/farmland.gpkg" --out "$dev/changes.geojson"
"$GENGDI_SEASON" score --season "$dev" --changes "$dev/changes.geojson" | tail -n +3

echo "== report seasons (seeds $REPORT_SEEDS, $SIZE_PX px)"
for s in $REPORT_SEEDS; do season "$WORK/report$s" "$s" "$SIZE_PX" report; done

base=$WORK/registry-base
[ -d "$base/landcover" ] || "$GENGDI" -q models export "$base" > /dev/null
score_all "$base" before
summarise before "$WORK/scores-before"

for labels in $LABELS; do
    flag=""
    [ "$labels" = found ] && flag=--class-found
    for n in $VERDICTS; do
        v=$n-$labels
        [ -f "$WORK/verdicts-$v.geojson" ] ||
            "$GENGDI_SEASON" verdicts --season "$dev" --changes "$dev/changes.geojson" --n "$n" \
                --seed "$DEV_SEED" $flag --out "$WORK/verdicts-$v.geojson" | tee "$WORK/verdicts-$v.txt"
        for task in $TASKS; do
            cell=$v
            [ "$task" = landcover ] || cell=$v-$task
            dirs=()
            for ft in $FT_SEEDS; do
                reg=$WORK/registry-$cell-s$ft
                if [ ! -f "$reg/trained.txt" ]; then
                    rm -rf "$reg"
                    "$GENGDI" -q models export "$reg" > /dev/null
                    "$GENGDI" train --task "$task" --verdicts "$WORK/verdicts-$v.geojson" \
                        --scenes "$dev"/S2_L2A_*.tif --fine-tune active --epochs "$FT_EPOCHS" \
                        --seed "$ft" --activate --out "$reg" --quiet > "$WORK/train-$cell-s$ft.log"
                    tail -1 "$WORK/train-$cell-s$ft.log" | tee "$reg/trained.txt"
                fi
                score_all "$reg" "$cell-s$ft"
                dirs+=("$WORK/scores-$cell-s$ft")
            done
            summarise "$cell" "${dirs[@]}"
        done
    done
done
