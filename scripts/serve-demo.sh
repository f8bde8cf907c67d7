#!/usr/bin/env bash
# The service on the demo data (run by scripts/demo.sh after its build, or alone once built):
# a data dir under target/demo/service, one token per role, `gengdi serve` on
# 127.0.0.1:${GENGDI_DEMO_PORT:-8080}, the generated season's farmland layer and batch submitted
# through the API, followed to the end, the web map's address and a few curl calls to try.
# Interactive: it keeps serving until Ctrl-C. Not interactive (CI, a pipe) or
# GENGDI_DEMO_STOP=1: it stops the server (SIGTERM) once the batch is done.
set -euo pipefail
cd "$(dirname "$0")/.."
gengdi=target/debug/gengdi
port=${GENGDI_DEMO_PORT:-8080}
url=http://127.0.0.1:$port
demo=target/demo/service
rm -rf "$demo"
mkdir -p "$demo/import"

echo "== the generated demo season, put under the service's import root"
target/debug/gengdi-season --out "$demo/import/season" >/dev/null
ls "$demo/import/season"

echo
echo "== one token per role (stored hashed in $demo/data; printed once, here)"
token() { $gengdi token create --data-dir "$demo/data" "$@" | tail -n 1; }
admin=$(token --role admin --name "demo admin")
centre=$(token --role centre --name "monitoring centre")
inspector=$(token --role inspector --region 640502 --name "county 640502 inspector")
researcher=$(token --role researcher --name "researcher")
printf '  %-11s %s\n' admin "$admin" centre "$centre" "inspector" "$inspector (region 640502)" researcher "$researcher"

echo
echo "== gengdi serve on $url (log: $demo/serve.log)"
$gengdi serve --data-dir "$demo/data" --import-root "$demo/import" --listen "127.0.0.1:$port" \
    >"$demo/serve.log" 2>&1 &
server=$!
stop() { kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 100); do
    curl -sf "$url/healthz" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$demo/serve.log"; exit 1; }
    sleep 0.2
done
curl -sf "$url/healthz"; echo

json() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }
api() { # METHOD PATH TOKEN [JSON]
    if [ $# -ge 4 ]; then
        curl -sS -X "$1" "$url$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' -d "$4"
    else
        curl -sS -X "$1" "$url$2" -H "Authorization: Bearer $3"
    fi
}

echo
echo "== the centre registers the farmland layer"
farmland=$(api POST /api/v1/farmland "$centre" '{"path": "season/farmland.gpkg", "name": "demo season"}')
echo "$farmland" | json '{k: v[k] for k in ("id", "parcels", "used", "repaired", "rejected", "area_mu", "pbf_area_mu")}'
farmland_id=$(echo "$farmland" | json 'v["id"]')

echo
echo "== the centre submits the batch (six dates) and follows it"
scenes=$(cd "$demo/import" && ls season/S2_L2A_*.tif | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')
batch=$(api POST /api/v1/batches "$centre" "{\"scenes\": $scenes, \"farmland\": $farmland_id, \"name\": \"demo season\"}")
batch_id=$(echo "$batch" | json 'v["id"]')
last=""
while :; do
    b=$(api GET "/api/v1/batches/$batch_id" "$centre")
    line=$(echo "$b" | json '"%-8s %-16s tiles %d/%d" % (v["status"], v["progress"]["stage"], v["progress"]["tiles_done"], v["progress"]["tiles_total"])')
    [ "$line" != "$last" ] && echo "  $line" && last=$line
    status=$(echo "$b" | json 'v["status"]')
    case $status in
        done) echo "  $(echo "$b" | json 'v["patches"]') patches stored"; break ;;
        failed|cancelled) echo "$b"; exit 1 ;;
    esac
    sleep 0.5
done

echo
echo "== the county inspector's list (first 3 of their region)"
api GET "/api/v1/changes?limit=3" "$inspector" | json '"total %d; " % v["total"] + "; ".join("#%d %s %.2f mu %s" % (p["id"], p["kind"], p["area_mu"], p["admin"]["location_code"]) for p in v["items"])'
first=$(api GET "/api/v1/changes?limit=1" "$inspector" | json 'v["items"][0]["id"]')

echo
echo "== the inspector records a field verdict on patch $first"
api POST "/api/v1/changes/$first/verdicts" "$inspector" '{"verdict": "confirmed", "note": "demo: seen in the field"}' | json 'v'

cat <<EOF

The web map: $url/  (sign in with a token above, e.g. the inspector's)

The service is at $url. Try:
  curl -s $url/healthz
  curl -s -H "Authorization: Bearer $centre" "$url/api/v1/batches/$batch_id"
  curl -s -H "Authorization: Bearer $inspector" "$url/api/v1/changes?kind=abandonment&limit=5"
  curl -s -H "Authorization: Bearer $inspector" "$url/api/v1/changes/$first"
  curl -s -H "Authorization: Bearer $researcher" "$url/api/v1/models"
EOF
if [ -t 0 ] && [ "${GENGDI_DEMO_STOP:-0}" != 1 ]; then
    echo "Serving until Ctrl-C."
    wait "$server"
else
    echo "Not interactive: stopping the server (SIGTERM)."
fi
