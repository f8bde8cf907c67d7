#!/usr/bin/env python3
"""Paired runs of `gengdi classify` against the peer (../shared/bench/peer/classify_peer.py)
on one season of GeoTIFFs: the commands alternate A B [C] round after round, each run under
`/usr/bin/time -v`; prints every run, the medians of wall time and peak RSS, the load, the
ratio of the medians and gengdi's own phase split of its median run. Figures in
docs/benchmarks.md ("classify against the peer") come from this script.

Usage (from the repository root, after `cargo build --release -p gengdi-server`):
    scripts/classify_vs_peer.py SCENE_DIR ROUNDS [--peer-python PY] [--peer SCRIPT]
        [--gengdi NAME=BINARY ...] [--out DIR]
SCENE_DIR holds the S2_L2A_*.tif of one season (gengdi-season --out SCENE_DIR). The default
gengdi is target/release/gengdi; give several --gengdi to compare builds in the same rounds.
"""
import argparse
import glob
import os
import re
import statistics as st
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("scene_dir")
ap.add_argument("rounds", type=int)
ap.add_argument("--peer-python", default=os.path.join(root, "target/peer-venv/bin/python"))
ap.add_argument("--peer", default=os.path.join(root, "../shared/bench/peer/classify_peer.py"))
ap.add_argument("--gengdi", action="append", default=[])
ap.add_argument("--out", default=os.path.join(root, "target/classify-vs-peer"))
a = ap.parse_args()
gengdis = [g.split("=", 1) for g in a.gengdi] or [["gengdi", os.path.join(root, "target/release/gengdi")]]
scenes = sorted(glob.glob(os.path.join(os.path.abspath(a.scene_dir), "S2_L2A_*.tif")))
if not scenes:
    sys.exit(f"no S2_L2A_*.tif in {a.scene_dir}")
os.makedirs(a.out, exist_ok=True)
runs = {name: [] for name, _ in gengdis}
runs["peer"] = []


def timed(cmd, cwd):
    load = float(open("/proc/loadavg").read().split()[0])
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", p.stderr).group(1).split(":")
    secs = float(wall[-1]) + 60 * float(wall[-2]) + (3600 * float(wall[-3]) if len(wall) > 2 else 0)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    phases = re.search(r"phases.*", p.stdout)
    return secs, rss, load, phases.group(0) if phases else ""


for r in range(a.rounds):
    for name, binary in gengdis + [["peer", None]]:
        for f in glob.glob(os.path.join(a.out, "*.tif")):
            os.remove(f)
        if binary is None:
            cmd = [a.peer_python, a.peer, os.path.join(a.out, "peer")] + scenes + ["--threads", "2"]
        else:
            cmd = [binary, "classify"] + scenes + ["--out", os.path.join(a.out, name + ".tif")]
        secs, rss, load, phases = timed(cmd, root)
        runs[name].append((secs, rss, load, phases))
        print(f"round {r + 1} {name}: {secs:.2f} s, {rss:.0f} MiB, load {load:.2f}", flush=True)

print(f"== {a.scene_dir}: {len(scenes)} dates, {a.rounds} rounds")
medians = {}
for name, rs in runs.items():
    walls = [x[0] for x in rs]
    medians[name] = st.median(walls)
    print(
        f"{name}: median {medians[name]:.2f} s [{', '.join(f'{w:.2f}' for w in walls)}], "
        f"peak RSS median {st.median(x[1] for x in rs):.0f} MiB (max {max(x[1] for x in rs):.0f}), "
        f"load1 {min(x[2] for x in rs):.2f}-{max(x[2] for x in rs):.2f}"
    )
    mid = sorted(rs)[len(rs) // 2]
    if mid[3]:
        print(f"   median run: {mid[3]}")
for name in medians:
    if name != "peer":
        print(f"peer / {name}: {medians['peer'] / medians[name]:.2f} x")
