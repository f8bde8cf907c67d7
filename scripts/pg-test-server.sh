#!/usr/bin/env bash
# A throwaway PostgreSQL 15 + PostGIS 3 server for the tests (Debian's postgresql-15 and
# postgresql-15-postgis-3, installed by scripts/install-deps.sh): a new cluster in DIR,
# listening on 127.0.0.1 on a free port (or $GENGDI_PG_PORT) and a socket in DIR, trust
# authentication for the local user `gengdi`, fsync off (a test database). Not a mock: the
# server the service talks to in production, started and removed by the test script.
#
#   scripts/pg-test-server.sh start DIR   # prints the database URL
#   scripts/pg-test-server.sh stop DIR    # stops it and removes DIR
#   scripts/pg-test-server.sh kill DIR    # SIGKILLs the server (tests of a lost database)
#   scripts/pg-test-server.sh restart DIR # starts it again on the same port after a kill
#
# With GENGDI_PG_TLS=1 at start, the server also speaks TLS, with a certificate for
# `localhost` (DNS name only) signed by a CA made for it: DIR/tls/ca.pem; DIR/tls/other-ca.pem
# is a second CA that signed nothing.
set -euo pipefail
cmd=${1:?usage: pg-test-server.sh start|stop|kill|restart DIR}
dir=${2:?usage: pg-test-server.sh start|stop|kill|restart DIR}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "PostgreSQL 15 is not installed: run scripts/install-deps.sh" >&2; exit 1; }
# initdb and postgres refuse to run as root: as root, the cluster belongs to `postgres`.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
start_server() {
    local port tls=""
    port=$(cat "$dir/port")
    if [ -f "$dir/tls/server.pem" ]; then
        tls="-c ssl=on -c ssl_cert_file=$dir/tls/server.pem -c ssl_key_file=$dir/tls/server.key"
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400 $tls" \
        start >/dev/null
}
make_certificates() {
    local t="$dir/tls"
    mkdir -p "$t"
    for ca in ca other-ca; do
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=gengdi test $ca" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$t/$ca.key" -out "$t/$ca.pem" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$t/server.key" \
        -out "$t/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$t/server.ext"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
        -days 2 -extfile "$t/server.ext" -out "$t/server.pem" 2>/dev/null
    chmod 600 "$t/server.key"
    [ "$(id -u)" -ne 0 ] || chown -R postgres "$t"
}
case "$cmd" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
    port=${GENGDI_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    echo "$port" >"$dir/port"
    as_pg "$bin/initdb" -D "$dir/data" -U gengdi --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    [ "${GENGDI_PG_TLS:-0}" != 1 ] || make_certificates
    start_server
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U gengdi gengdi
    as_pg psql -q -h 127.0.0.1 -p "$port" -U gengdi -d gengdi -c "CREATE EXTENSION postgis" >/dev/null
    echo "postgres://gengdi@127.0.0.1:$port/gengdi"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
kill)
    # The server and every backend at once (a crash, a pulled plug): the next start recovers.
    pid=$(head -1 "$dir/data/postmaster.pid")
    pkill -KILL -P "$pid" || true
    kill -KILL "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    ;;
restart)
    start_server
    ;;
*)
    echo "usage: pg-test-server.sh start|stop|kill|restart DIR" >&2
    exit 2
    ;;
esac
