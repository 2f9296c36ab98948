#!/usr/bin/env bash
# Stop the broker start.sh started and remove its data directory. Safe to run
# when nothing is running. --quiet: say nothing when there was nothing to stop.
# --keep-data: stop the broker but keep its data (and config), so that
# `start.sh --resume` starts the same broker again with every record it held.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

quiet=false
keep=false
for arg in "$@"; do
    case "$arg" in
        --quiet) quiet=true ;;
        --keep-data) keep=true ;;
        *) echo "stop.sh: unknown option $arg (--quiet, --keep-data)" >&2; exit 2 ;;
    esac
done
pid_file="$KAFKA_STATE/kafka.pid"

is_our_broker() {  # the pid is alive and is still a Kafka JVM (pids get reused)
    [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'kafka\.Kafka'
}

if [[ -f "$pid_file" ]]; then
    pid="$(cat "$pid_file")"
    if [[ -n "$pid" ]] && is_our_broker "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        # A controlled shutdown of one node takes a few seconds; then stop asking.
        for _ in $(seq 1 150); do
            is_our_broker "$pid" || break
            sleep 0.2
        done
        if is_our_broker "$pid"; then
            echo "stop.sh: kafka (pid $pid) ignored SIGTERM for 30s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
        echo "kafka: stopped (pid $pid)"
    elif ! $quiet; then
        echo "kafka: not running (stale pid file removed)"
    fi
    rm -f "$pid_file"
elif ! $quiet; then
    echo "kafka: not running"
fi

if ! $keep && [[ -f "$KAFKA_STATE/data_dir" ]]; then
    data_dir="$(cat "$KAFKA_STATE/data_dir")"
    # Only ever remove a directory start.sh made.
    if [[ "$data_dir" == */jigsaw-kafka-data.* && -d "$data_dir" ]]; then
        rm -rf "$data_dir"
    fi
    rm -f "$KAFKA_STATE/data_dir"
fi
if $keep && [[ -f "$KAFKA_STATE/data_dir" ]] && ! $quiet; then
    echo "kafka: data kept in $(cat "$KAFKA_STATE/data_dir") (start.sh --resume starts it again)"
fi
