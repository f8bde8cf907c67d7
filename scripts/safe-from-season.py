#!/usr/bin/python3
"""Lay a generated season out as ESA delivers it: one Sentinel-2 L2A `.SAFE` product per date,
one JPEG 2000 file per band at its native resolution (10 m B02 B03 B04 B08; 20 m B05 B06 B07
B8A B11 B12 and SCL), with the real metadata XML of a processing-baseline 02.08 product
(fixtures/data/gdal-sentinel2-safe) given the date of the scene. 20 m bands are averaged from
the 10 m season (SCL by nearest neighbour); JPEG 2000 is lossless (GDAL's JP2OpenJPEG,
REVERSIBLE=YES), so the 10 m bands read back to the GeoTIFF's values exactly.

Used by the JPEG 2000 benchmark in docs/benchmarks.md:

    /usr/bin/python3 scripts/safe-from-season.py SEASON_DIR OUT_DIR [--jobs 2]

SEASON_DIR holds `gengdi-season`'s S2_L2A_YYYYMMDD.tif; OUT_DIR receives one .SAFE per date.
Needs Debian's python3-gdal (installed by scripts/install-deps.sh), hence /usr/bin/python3.
"""
import argparse
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor

from osgeo import gdal

gdal.UseExceptions()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "fixtures/data/gdal-sentinel2-safe/l2a_n0208_MTD_MSIL2A.xml")
NATIVE = {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B01": 60, "B09": 60}


def native(band):
    return NATIVE.get(band, 20)


def convert(job):
    src_path, band_index, band, dest, res = job
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    opts = dict(
        format="JP2OpenJPEG",
        bandList=[band_index],
        creationOptions=["REVERSIBLE=YES", "QUALITY=100"],
    )
    if res != 10:
        opts.update(xRes=res, yRes=res, resampleAlg="nearest" if band == "SCL" else "average")
    gdal.Translate(dest, src_path, **opts)
    return dest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("season")
    ap.add_argument("out")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    template = open(TEMPLATE).read()
    files = re.findall(r"<IMAGE_FILE>([^<]+)</IMAGE_FILE>", template)
    jobs = []
    scenes = sorted(f for f in os.listdir(a.season) if re.match(r"S2_L2A_\d{8}\.tif$", f))
    if not scenes:
        sys.exit(f"no S2_L2A_YYYYMMDD.tif in {a.season}")
    for name in scenes:
        d = name[7:15]
        date = f"{d[:4]}-{d[4:6]}-{d[6:8]}"
        safe = os.path.join(a.out, f"S2A_MSIL2A_{d}T094031_N0208_R036_T34VFJ_{d}T120345.SAFE")
        os.makedirs(safe, exist_ok=True)
        with open(os.path.join(safe, "MTD_MSIL2A.xml"), "w") as f:
            f.write(template.replace("2018-08-18", date))
        src_path = os.path.join(a.season, name)
        src = gdal.Open(src_path)
        names = {src.GetRasterBand(i).GetDescription(): i for i in range(1, src.RasterCount + 1)}
        for rel in files:
            m = re.search(r"_(B\d\d|B8A|SCL)_(\d+)m$", rel)
            if not m:
                continue
            band, res = m.group(1), int(m.group(2))
            if res != native(band) or band not in names:
                continue
            jobs.append((src_path, names[band], band, os.path.join(safe, rel + ".jp2"), res))
    with ProcessPoolExecutor(a.jobs) as pool:
        for done in pool.map(convert, jobs):
            print(done, flush=True)
    print(f"{len(jobs)} band files in {len(scenes)} products", file=sys.stderr)


if __name__ == "__main__":
    main()
