#!/usr/bin/env bash
# API load benchmark (issue 10): GET /api/v1/changes over a store holding N patches
# (default 100,000), at a fixed rate of R requests per second (default 200) for D (default
# 60s), measured with oha (installed into target/tools by `cargo install` when missing).
# Two URLs: the first page filtered by region and kind, and a deep keyset page (cursor) of
# the same filter. Uses the dev build (GENGDI=path to use another gengdi binary). Run it on
# an idle machine; the rate limit is turned off for the run (one token sends everything).
# PG=1: the same against a throwaway PostgreSQL/PostGIS server (scripts/pg-test-server.sh)
# instead of the embedded SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-100000}
rate=${R:-200}
duration=${D:-60s}
port=${PORT:-18181}
out=target/bench-api
# The test suite's build (one feature set; `--bins --examples` alone would rebuild Burn).
cargo test --workspace --no-run >/dev/null
gengdi=${GENGDI:-target/debug/gengdi}
oha=$(command -v oha || true)
if [ -z "$oha" ]; then
    [ -x target/tools/bin/oha ] || cargo install oha --locked --root target/tools
    oha=target/tools/bin/oha
fi
rm -rf "$out"
mkdir -p "$out"
pgdir=""
if [ "${PG:-0}" = 1 ]; then
    pgdir=$(mktemp -d -t gengdi-pg.XXXXXX)
    GENGDI_DATABASE=$(scripts/pg-test-server.sh start "$pgdir")
    export GENGDI_DATABASE
fi
target/debug/examples/seed_patches "$out/data" "$n"
token=$($gengdi token create --data-dir "$out/data" --role centre --name bench | tail -n 1)
printf 'rate_limit = 0\n' >"$out/gengdi.toml"
$gengdi serve --data-dir "$out/data" --listen "127.0.0.1:$port" --config "$out/gengdi.toml" \
    >"$out/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true; [ -z "$pgdir" ] || scripts/pg-test-server.sh stop "$pgdir"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
first="http://127.0.0.1:$port/api/v1/changes?region=640503&kind=abandonment&limit=50"
deep_id=$((n * 9 / 10))
deep="$first&cursor=$deep_id"
for url in "$first" "$deep"; do
    echo "== $url"
    curl -sf -H "Authorization: Bearer $token" "$url" |
        python3 -c 'import json,sys; v=json.load(sys.stdin); print("  total %d, page %d, next_cursor %s" % (v["total"], len(v["items"]), v["next_cursor"]))'
    "$oha" --no-tui -q "$rate" -z "$duration" -H "Authorization: Bearer $token" "$url" |
        grep -E "Success rate|Total:|Requests/sec|Slowest|Fastest|Average|50.00%|90.00%|99.00%|99.90%|\[200\]|\[[0-9]{3}\]"
done
echo "peak RSS of gengdi serve: $(grep VmHWM /proc/$server/status | awk '{print $2/1024 " MiB"}')"
