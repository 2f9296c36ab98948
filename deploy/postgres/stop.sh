#!/usr/bin/env bash
# Stop the cluster start.sh started (same JIGSAW_POSTGRES_STATE) and delete its data.
# Safe to run when nothing is running. --quiet: say nothing when there was nothing to stop.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

quiet=false
[[ "${1:-}" == "--quiet" ]] && quiet=true
base_file="$PG_STATE/base_dir"

if [[ ! -f "$base_file" ]]; then
    $quiet || echo "postgres: nothing to stop (no $base_file)"
    exit 0
fi
base="$(cat "$base_file")"
data="$base/data"
# Only ever delete what start.sh made: a jigsaw-postgres.* directory.
case "$(basename "$base")" in
    jigsaw-postgres.*) ;;
    *) echo "stop.sh: $base_file names $base, which start.sh did not make; leaving it" >&2; exit 1 ;;
esac
if [[ -f "$data/postmaster.pid" ]]; then
    if bindir="$(pg_bindir)"; then
        as_owner "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    # pg_ctl missing or stuck: end the postmaster this cluster recorded, and only it.
    pid="$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)"
    if [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$data"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
fi
rm -rf "$base"
rm -f "$base_file" "$PG_STATE/port" "$PG_STATE/dsn"
$quiet || echo "postgres: stopped and removed $base"
