#!/usr/bin/env bash
# Stop the mock-oauth2-server that start.sh started (its pid file only; nothing else).
#   --quiet   say nothing when none is running
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pidfile="$OIDC_STATE/oidc.pid"
if [[ ! -f "$pidfile" ]]; then
    [[ "${1:-}" == "--quiet" ]] || echo "stop.sh: no OIDC provider was started from $OIDC_STATE"
    exit 0
fi
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
fi
rm -f "$pidfile"
[[ "${1:-}" == "--quiet" ]] || echo "mock-oauth2-server stopped (pid $pid)"
