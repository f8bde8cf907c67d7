#!/usr/bin/env python3
"""The NDVI part of the overgrown-abandonment rule on real imagery (issue 12).

The rule (docs/rules.toml, `abandonment_overgrown_*`) calls a pixel overgrown when its NDVI
stays at or above a threshold on every clear date of a season from spring to autumn. Its
default (0.6) was chosen on generated seasons whose abandoned fields are real French fallow
series. This script measures how often real pixels pass it, per land-use class of the
Slovenian agricultural register (RABA), on the eo-learn Slovenia patch's 68-date NDVI series
with its s2cloudless cloud masks (fixtures/data/eolearn-slovenia-s2): every clear date from
April to September of 2016 (13 dates from 26 April) and of 2017 (22 dates from 1 April), for
pixels with at least 3 clear dates. RABA 1410 is "agricultural land being overgrown"
(abandoned farmland), 1300 permanent grassland, 1100 arable land, 2000 forest.

    python3 scripts/overgrown-slovenia.py     # needs numpy and rasterio (pip install rasterio)
"""
import json
import os
from collections import defaultdict

import numpy as np
import rasterio
from rasterio import features

DIR = os.path.join(os.path.dirname(__file__), "..", "fixtures", "data", "eolearn-slovenia-s2")
THRESHOLDS = [0.3, 0.45, 0.6]

with rasterio.open(os.path.join(DIR, "ndvi_68dates.tif")) as src:
    ndvi = src.read()
    transform, shape = src.transform, (src.height, src.width)
with rasterio.open(os.path.join(DIR, "cloudmask_68dates.tif")) as src:
    cloud = src.read()
with open(os.path.join(DIR, "lulc_raba_polygons.geojson")) as f:
    polygons = json.load(f)["features"]  # EPSG:32633, the grid's CRS
raba = features.rasterize(
    ((p["geometry"], p["properties"]["RABA_ID"]) for p in polygons),
    out_shape=shape,
    transform=transform,
    fill=0,
    dtype="int32",
)
with open(os.path.join(DIR, "timestamps.json")) as f:
    days = [t["time"][:10] for t in json.load(f)]

print("share of pixels whose NDVI is >= the threshold on every clear date, April–September\n")
print("| season | RABA class | pixels | " + " | ".join(f">= {t}" for t in THRESHOLDS) + " |")
print("|---|---|---:|" + "---:|" * len(THRESHOLDS))
for year in ("2016", "2017"):
    dates = [i for i, d in enumerate(days) if d.startswith(year) and "04" <= d[5:7] <= "09"]
    minima = defaultdict(list)
    for r, c in zip(*np.nonzero(raba)):
        clear = [ndvi[i, r, c] for i in dates if cloud[i, r, c] == 0]
        if len(clear) >= 3:
            minima[int(raba[r, c])].append(min(clear))
    for cls in sorted(minima):
        m = np.array(minima[cls])
        shares = " | ".join(f"{(m >= t).mean():.2f}" for t in THRESHOLDS)
        print(f"| {year} ({len(dates)} dates from {days[dates[0]][5:]}) | {cls} | {len(m)} | {shares} |")
