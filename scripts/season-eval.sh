#!/usr/bin/env bash
# The shipped models and rules scored on generated seasons (issue 12, "an evaluation that
# cannot flatter"): every season is rendered only from WorldCereal samples and EuroSAT
# patches the active models never saw (their held-out groups, recomputed from the cards),
# analysed by `gengdi analyze` with the default rules, and scored by `gengdi-season score`;
# `gengdi-season summary` gives the mean and worst seed per kind, and the pooled precision
# and recall with a 90 % interval that resamples series (a series is shown on many parcels).
#
#   scripts/season-eval.sh [WORK_DIR]          # default target/season-eval
#
# Seeds: DEV_SEEDS are those the rules were tuned on (the default seed 20240420, on which
# the rules' thresholds were set, and 1–7, which earlier sessions looked at); REPORT_SEEDS
# (101–105) were used for nothing but this report. Scenes are SIZE_PX (default 1203: 3 × 3
# copies of the parcel block, about 1,700 parcels, at least 34 of each violation kind, so
# one parcel moves a recall by at most 3 %). GENGDI / GENGDI_SEASON: binaries to use
# (default: a dev build of the workspace's).
#
# Trying a change (the protocol the README's "Season analysis" follows): ANALYZE_ARGS adds
# arguments to every `gengdi analyze` (e.g. "--config my-rules.toml"; GENGDI_REGISTRY picks
# the models), and BASELINE, an earlier WORK_DIR of the same seeds, compares each half with
# it (`gengdi-season compare`: the change of pooled precision and recall, with a 90 %
# interval that resamples the same series on both sides). Decide on the development half;
# look at the report half once.
#
#   BASELINE=target/season-eval ANALYZE_ARGS="--config my-rules.toml" \
#       scripts/season-eval.sh target/season-eval-mine
#
# Disjoint series (SPLIT=1, the default): the held-out lists are split in two by line parity,
# as scripts/verdict-loop.sh does; development seeds are rendered from the odd lines, report
# seeds from the even lines, so a threshold fitted to the series of a development season
# cannot fit a report season's. With one pool for both (SPLIT=0, how this script ran until
# 2026-11-30), a scene of 1203 px renders every held-out series somewhere, so the report seeds
# showed the same 179 series as each development seed, only on other parcels.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-target/season-eval}
SIZE_PX=${SIZE_PX:-1203}
DEV_SEEDS=${DEV_SEEDS:-"20240420 1 2"}
REPORT_SEEDS=${REPORT_SEEDS:-"101 102 103 104 105"}
if [ -z "${GENGDI:-}" ] || [ -z "${GENGDI_SEASON:-}" ]; then
    . scripts/dev-bins.sh && dev_bins gengdi-server gengdi-fixtures
    GENGDI=${GENGDI:-$DEV_BIN_DIR/gengdi}
    GENGDI_SEASON=${GENGDI_SEASON:-$DEV_BIN_DIR/gengdi-season}
fi
read -r -a analyze_args <<< "${ANALYZE_ARGS:-}"
mkdir -p "$WORK"

active() { sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "models/weights/$1/active.json"; }
echo "== the active models' held-out groups: land cover $(active landcover), crop type $(active croptype)"
"$GENGDI" -q eval --model "$(active landcover)" --held-out --write-held-out "$WORK/landcover-held-out.txt" > /dev/null
"$GENGDI" -q eval --model "$(active croptype)" --held-out --write-held-out "$WORK/croptype-held-out.txt" > /dev/null
wc -l "$WORK"/*-held-out.txt
for task in landcover croptype; do
    if [ "${SPLIT:-1}" = 1 ]; then
        awk 'NR % 2 == 1' "$WORK/$task-held-out.txt" > "$WORK/$task-dev.txt"
        awk 'NR % 2 == 0' "$WORK/$task-held-out.txt" > "$WORK/$task-report.txt"
    else
        cp "$WORK/$task-held-out.txt" "$WORK/$task-dev.txt"
        cp "$WORK/$task-held-out.txt" "$WORK/$task-report.txt"
    fi
done

one_seed() { # seed half → $WORK/seed<seed>/score.json
    local seed=$1 half=$2 dir=$WORK/seed$1
    if [ ! -f "$dir/score.json" ]; then
        rm -rf "$dir"
        "$GENGDI_SEASON" --out "$dir" --seed "$seed" --size-px "$SIZE_PX" \
            --crop-series "$WORK/croptype-$half.txt" \
            --landcover-samples "$WORK/landcover-$half.txt" > "$dir.season.log"
        "$GENGDI" -q analyze --scenes "$dir"/S2_L2A_*.tif --farmland "$dir/farmland.gpkg" \
            --out "$dir/changes.geojson" "${analyze_args[@]}"
        "$GENGDI_SEASON" score --season "$dir" --changes "$dir/changes.geojson" \
            --json "$dir/score.json" > "$dir.score.md"
    fi
    echo "seed $seed:"
    tail -n +3 "$dir.score.md"
}

echo "== development seeds: $DEV_SEEDS"
dev=()
for s in $DEV_SEEDS; do one_seed "$s" dev; dev+=("$WORK/seed$s/score.json"); done
echo "== report seeds: $REPORT_SEEDS"
report=()
for s in $REPORT_SEEDS; do one_seed "$s" report; report+=("$WORK/seed$s/score.json"); done

echo "== development seeds ($DEV_SEEDS), mean (worst)"
"$GENGDI_SEASON" summary "${dev[@]}" | tee "$WORK/summary-dev.md"
echo "== report seeds ($REPORT_SEEDS), mean (worst)"
"$GENGDI_SEASON" summary "${report[@]}" | tee "$WORK/summary-report.md"

if [ -n "${BASELINE:-}" ]; then
    for half in dev report; do
        seeds=$DEV_SEEDS
        [ "$half" = report ] && seeds=$REPORT_SEEDS
        before=()
        after=()
        for s in $seeds; do
            before+=("$BASELINE/seed$s/score.json")
            after+=("$WORK/seed$s/score.json")
        done
        echo "== $half seeds ($seeds) against $BASELINE: the change, with its 90 % interval"
        "$GENGDI_SEASON" compare --before "${before[@]}" --after "${after[@]}" |
            tee "$WORK/compare-$half.md"
    done
fi
