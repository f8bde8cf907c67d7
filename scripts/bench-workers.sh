#!/usr/bin/env bash
# Shared-run throughput (issue 14): one batch of a generated season (SIZE x SIZE px, default
# 1203: three by three parcel blocks, six dates) analysed by `gengdi worker` processes through PostgreSQL/PostGIS, timed from
# submission to the stored patches; tiles per second = tiles with farmland / that time.
#
# Runs, in order: 1 worker running 1 task at a time; 1 worker running one task per core
# (the default); 2 workers (cores split between them); 1 worker (one task per core) reading
# the scenes from an S3-compatible server (moto's, see scripts/install-deps.sh)
# through GDAL's /vsis3/. Each run's patches are compared with the first run's (they must be
# the same). Throwaway PostgreSQL and S3 servers on free loopback ports; the dev build
# (GENGDI=path to use another binary); TILE (default 256) and THREADS (default: the cores)
# may be set. Results: target/bench-workers/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
tile=${TILE:-256}
threads=${THREADS:-$(nproc)}
out=target/bench-workers
gengdi=${GENGDI:-target/debug/gengdi}
# The build the test suite makes (one feature set: `--bins` alone would unify features
# differently and rebuild Burn).
[ -n "${GENGDI:-}" ] || cargo test --workspace --no-run >/dev/null
scripts/install-deps.sh >/dev/null
rm -rf "$out"
mkdir -p "$out/import"
target/debug/gengdi-season --out "$out/import/season" --size-px "${SIZE:-1203}" >/dev/null

pg=$(mktemp -d -t gengdi-pg.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/pg-test-server.sh stop "$pg"
}
trap cleanup EXIT
db=$(scripts/pg-test-server.sh start "$pg")
s3_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
venv=${CARGO_TARGET_DIR:-target}/s3-test-venv
"$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$out/s3.log" 2>&1 &
pids+=($!)
export AWS_S3_ENDPOINT=127.0.0.1:$s3_port AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$s3_port") 2>/dev/null && break; sleep 0.2; done
"$venv/bin/python" - "$out/import/season" "$s3_port" <<'EOF'
import boto3, pathlib, sys
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[2]}", region_name="us-east-1")
s3.create_bucket(Bucket="scenes")
for f in sorted(pathlib.Path(sys.argv[1]).glob("S2_L2A_*.tif")):
    s3.upload_file(str(f), "scenes", f"season/{f.name}")
EOF

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
token=$($gengdi token create --data-dir "$out/data" --database "$db" --role centre --name bench | tail -n 1)
printf 'rate_limit = 0\ntile = %s\n' "$tile" >"$out/gengdi.toml"
$gengdi serve --data-dir "$out/data" --database "$db" --workers 0 --import-root "$out/import" \
    --listen "127.0.0.1:$port" --config "$out/gengdi.toml" --allow-remote s3://scenes/season/ \
    >"$out/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.2; done
api() { curl -sSf -X "$1" "$url$2" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
json() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }
farmland=$(api POST /api/v1/farmland '{"path": "season/farmland.gpkg"}' | json 'v["id"]')
local_scenes=$(cd "$out/import" && ls season/S2_L2A_*.tif | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')
s3_scenes=$(echo "$local_scenes" | python3 -c 'import json,sys; print(json.dumps(["s3://scenes/" + s for s in json.load(sys.stdin)]))')

# run NAME WORKERS THREADS_EACH TASKS_AT_ONCE_EACH SCENES_JSON
run() {
    local name=$1 n=$2 each=$3 conc=$4 scenes=$5 wpids=()
    local start end id
    for i in $(seq "$n"); do
        $gengdi --threads "$each" worker --database "$db" --data-dir "$out/data" --concurrency "$conc" \
            --allow-remote s3://scenes/season/ >"$out/$name-worker-$i.log" 2>&1 &
        wpids+=($!)
    done
    sleep 3 # the workers load their models
    start=$(date +%s.%N)
    id=$(api POST /api/v1/batches "{\"scenes\": $scenes, \"farmland\": $farmland, \"name\": \"$name\"}" | json 'v["id"]')
    while :; do
        status=$(api GET "/api/v1/batches/$id" | json 'v["status"]')
        [ "$status" = done ] && break
        [ "$status" = queued ] || [ "$status" = running ] || { echo "batch $id $status" >&2; exit 1; }
        sleep 0.2
    done
    end=$(date +%s.%N)
    for p in "${wpids[@]}"; do kill -TERM "$p"; wait "$p" || true; done
    tiles=$(api GET "/api/v1/batches/$id" | json 'v["progress"]["tiles_total"]')
    api GET "/api/v1/changes?batch=$id&format=geojson" |
        python3 -c 'import json,sys; v=json.load(sys.stdin); [(f.pop("id", None), [f["properties"].pop(k, None) for k in ("id","batch","created_at")]) for f in v["features"]]; print(json.dumps(v["features"], sort_keys=True))' \
        >"$out/$name.patches.json"
    python3 - "$name" "$n" "$each" "$conc" "$tiles" "$start" "$end" <<'EOF' | tee -a "$out/results.txt"
import sys
name, n, each, conc, tiles, start, end = sys.argv[1:]
s = float(end) - float(start)
print(f"{name:<26} {n} worker(s) x {each} thread(s) x {conc} task(s) at once: {tiles} tiles in {s:6.1f} s = {int(tiles)/s:5.2f} tiles/s")
EOF
}

echo "tile $tile px, $(nproc) cores, $gengdi" | tee "$out/results.txt"
half=$(( (threads + 1) / 2 ))
run local-1-worker-1-task 1 "$threads" 1 "$local_scenes"
run local-1-worker 1 "$threads" "$threads" "$local_scenes"
run local-2-workers 2 "$half" "$half" "$local_scenes"
run s3-1-worker 1 "$threads" "$threads" "$s3_scenes"
for r in local-1-worker local-2-workers s3-1-worker; do
    cmp -s "$out/local-1-worker-1-task.patches.json" "$out/$r.patches.json" ||
        { echo "$r: patches differ from local-1-worker-1-task" >&2; exit 1; }
done
echo "every run stored the same patches ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$out/local-1-worker-1-task.patches.json"))" | tee -a "$out/results.txt"
