#!/usr/bin/env python3
"""How well do single spectral indices tell built-up surfaces from bare soil? (issue 12)

Built-up: the pixels of EuroSAT Residential / Industrial / Highway patches that the land-cover
model's training data labels built (NDVI < 0.3, MNDWI <= 0), as surface reflectance (the
table's 1st percentile per band minus 100 subtracted, as gengdi-season renders them).
Bare soil: WorldCereal L2A dates of temporary crops with NDVI < 0.15 and BSI > 0.05 (the
land-cover model's `bare` label). For each index: the 10th / 50th / 90th percentile of both,
and the best balanced accuracy any single threshold reaches (0.5 = no better than chance).

    python3 scripts/built-vs-bare.py      # needs pandas and numpy (pip install pandas)
"""
import os

import numpy as np
import pandas as pd

DATA = os.path.join(os.path.dirname(__file__), "..", "fixtures", "data")
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]


def indices(df):
    f = {b: df[b].astype(float) for b in BANDS}
    nd = lambda a, b: (a - b) / (a + b)
    return pd.DataFrame(
        {
            "NDVI": nd(f["B08"], f["B04"]),
            "NDBI (B11, B08)": nd(f["B11"], f["B08"]),
            "BSI": ((f["B11"] + f["B04"]) - (f["B08"] + f["B02"]))
            / ((f["B11"] + f["B04"]) + (f["B08"] + f["B02"])),
            "visible brightness": (f["B02"] + f["B03"] + f["B04"]) / 3e4,
            "SWIR1 B11": f["B11"] / 1e4,
            "B12 / B11": f["B12"] / f["B11"],
            "B02 / B04": f["B02"] / f["B04"],
            "MNDWI": nd(f["B03"], f["B11"]),
        }
    )


def best_balanced_accuracy(a, b):
    values = np.unique(np.concatenate([a, b]))
    best = 0.5
    for t in values:
        ra, rb = (a < t).mean(), (b < t).mean()
        best = max(best, (ra + 1 - rb) / 2, (rb + 1 - ra) / 2)
    return best


es = pd.read_csv(os.path.join(DATA, "eurosat-ms-samples", "eurosat_ms_pixels_16perimage.csv.gz"))
raw = indices(es)
for b in BANDS:
    es[b] = (es[b] - max(np.percentile(es[b], 1) - 100, 0)).clip(lower=1)
built = indices(es)[
    es["class"].isin(["Residential", "Industrial", "Highway"]).to_numpy()
    & (raw["NDVI"] < 0.3).to_numpy()
    & (raw["MNDWI"] <= 0).to_numpy()
]
wc = pd.read_csv(
    os.path.join(DATA, "worldcereal-s2-timeseries", "worldcereal_s2l2a_timeseries_long.csv.gz")
)
wc = wc[(wc[BANDS] < 60000).all(axis=1)]
wci = indices(wc)
bare = wci[(wc["lc10_class"] == "temporary_crops").to_numpy() & (wci["NDVI"] < 0.15) & (wci["BSI"] > 0.05)]

print(f"built-up pixels: {len(built)}, bare-soil dates: {len(bare)}\n")
print("| index | built-up p10 / p50 / p90 | bare soil p10 / p50 / p90 | best balanced accuracy |")
print("|---|---|---|---|")
for name in built.columns:
    if name in ("MNDWI",):
        continue
    a, b = built[name].to_numpy(), bare[name].to_numpy()
    q = lambda x: " / ".join(f"{v:.3f}" for v in np.percentile(x, [10, 50, 90]))
    print(f"| {name} | {q(a)} | {q(b)} | {best_balanced_accuracy(a, b):.2f} |")
