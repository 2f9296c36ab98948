#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for tests and benchmarks: the distribution's server
# (initdb, pg_ctl), a fresh data directory under $TMPDIR, listening on 127.0.0.1 only, on a
# free port (or JIGSAW_POSTGRES_PORT). Waits at most JIGSAW_POSTGRES_START_TIMEOUT s (default
# 30) until it accepts connections, then prints the DSN as its last line:
#
#   postgresql://postgres@127.0.0.1:PORT/postgres
#
# As root (CI), the server runs as the `postgres` user, which owns the data directory; if the
# server is not installed and we are root, it is installed with apt-get. Trust authentication
# on loopback and fsync off: this cluster holds test data only and is deleted by stop.sh.
# A cluster this state directory started earlier is stopped first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

timeout_s="${JIGSAW_POSTGRES_START_TIMEOUT:-30}"

if ! bindir="$(pg_bindir)"; then
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
        echo "postgres: initdb not found; installing the distribution's postgresql package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
    fi
    bindir="$(pg_bindir)" || { echo "start.sh: no PostgreSQL server (initdb, pg_ctl); install the postgresql package" >&2; exit 1; }
fi
if [[ "$(id -u)" == "0" ]] && ! id postgres >/dev/null 2>&1; then
    echo "start.sh: running as root needs a 'postgres' user to own the cluster (the package creates it)" >&2
    exit 1
fi

"$PG_DIR/stop.sh" --quiet

free_port() {
    local py
    for py in python3 python; do
        if command -v "$py" >/dev/null; then
            "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
            return 0
        fi
    done
    echo 55432
}
port="${JIGSAW_POSTGRES_PORT:-$(free_port)}"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "start.sh: something already listens on 127.0.0.1:$port; set JIGSAW_POSTGRES_PORT to another port" >&2
    exit 1
fi

mkdir -p "$PG_STATE"
base="$(mktemp -d "${TMPDIR:-/tmp}/jigsaw-postgres.XXXXXX")"
echo "$base" >"$PG_STATE/base_dir"
data="$base/data"
sockets="$base/sockets"
log_file="$base/postgres.log"
mkdir -p "$data" "$sockets"
: >"$log_file"
if [[ "$(id -u)" == "0" ]]; then
    chown -R postgres: "$base"
    chmod 700 "$base"
fi

if ! as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >>"$log_file" 2>&1; then
    if ! as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >>"$log_file" 2>&1; then
        echo "start.sh: initdb failed:" >&2
        cat "$log_file" >&2
        exit 1
    fi
fi

options="-p $port -k $sockets -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
# pg_ctl -w waits for the server itself, bounded by -t.
if ! as_owner "$bindir/pg_ctl" -D "$data" -l "$log_file" -o "$options" -w -t "$timeout_s" start >/dev/null; then
    echo "start.sh: the server did not start within ${timeout_s}s; its log ($log_file) ends:" >&2
    tail -n 60 "$log_file" >&2
    "$PG_DIR/stop.sh" --quiet || true
    exit 1
fi

start=$SECONDS
until as_owner "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do
    if (( SECONDS - start >= timeout_s )); then
        echo "start.sh: no connection to 127.0.0.1:$port within ${timeout_s}s; its log ($log_file) ends:" >&2
        tail -n 60 "$log_file" >&2
        "$PG_DIR/stop.sh" --quiet || true
        exit 1
    fi
    sleep 0.2
done

dsn="postgresql://postgres@127.0.0.1:$port/postgres"
echo "$port" >"$PG_STATE/port"
echo "$dsn" >"$PG_STATE/dsn"
version="$(as_owner "$bindir/postgres" --version)"
echo "postgres: $version ready on 127.0.0.1:$port (data $data, log $log_file)" >&2
echo "$dsn"
