#!/usr/bin/env bash
# Generalisation to a region / campaign never seen (issue 12): for each WorldCereal source,
# train both models with the repository's configs plus `test_sources: [that source]` (every
# sample of it goes to test, the rest is split as usual), then print, per source, the held-out
# source's figures beside the shipped model's figures on that source's randomly held-out
# groups (in-distribution).
#
#   scripts/holdout-sources.sh [WORK_DIR]     # default target/holdout-sources; ~2.5 min on 2 cores
#
# GENGDI: the binary to use (default: a dev build of the workspace's).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-target/holdout-sources}
SOURCES=${SOURCES:-"dekad_2023_FRA month_2022_FRA private_dummy worldcereal_public_extractions_ssd_wide"}
if [ -z "${GENGDI:-}" ]; then
    . scripts/dev-bins.sh && dev_bins gengdi-server
    GENGDI=$DEV_BIN_DIR/gengdi
fi
rm -rf "$WORK"
mkdir -p "$WORK"
for src in $SOURCES; do
    for task in landcover croptype; do
        /usr/bin/python3 - "models/configs/$task.json" "worldcereal:$src" "$WORK/$task-$src.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["test_sources"] = [sys.argv[2]]
json.dump(config, open(sys.argv[3], "w"))
PY
        "$GENGDI" train --task "$task" --config "$WORK/$task-$src.json" --out "$WORK/$src" \
            --quiet > "$WORK/$task-$src.log"
    done
done
/usr/bin/python3 - "$WORK" $SOURCES <<'PY'
import glob, json, sys
work, sources = sys.argv[1], sys.argv[2:]
def active(task):
    ident = json.load(open(f"models/weights/{task}/active.json"))["id"]
    return json.load(open(f"models/weights/{task}/{ident}/card.json"))
for task in ["landcover", "croptype"]:
    shipped = active(task)
    print(f"\n{task}: held-out source (model trained without it) vs in-distribution "
          f"(shipped {shipped['id']}, that source's random held-out groups)\n")
    print("| source | held out: n | OA | macro F1 | in-distribution: n | OA | macro F1 | class F1, held out / in-distribution |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for src in sources:
        card = json.load(open(glob.glob(f"{work}/{src}/{task}/*/card.json")[0]))
        key = f"worldcereal:{src}"
        out, ind = card["metrics"]["per_source"][key], shipped["metrics"]["per_source"].get(key)
        f1 = lambda m: {c["class"]: c["f1"] for c in m["per_class"] if c["support"] > 0} if m else {}
        a, b = f1(out), f1(ind)
        classes = ", ".join(f"{c} {a[c]:.2f} / {b[c]:.2f}" if c in b else f"{c} {a[c]:.2f} / —" for c in a)
        ind_cols = f"{ind['n']} | {ind['overall_accuracy']:.3f} | {ind['macro_f1']:.3f}" if ind else "— | — | —"
        print(f"| {src} | {out['n']} | {out['overall_accuracy']:.3f} | {out['macro_f1']:.3f} | {ind_cols} | {classes} |")
PY
