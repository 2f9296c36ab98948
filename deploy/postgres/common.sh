# Sourced by deploy/postgres/start.sh and stop.sh: where the throwaway cluster's state lives
# and where the PostgreSQL binaries are.
#
#   JIGSAW_POSTGRES_STATE  directory for the pid, port, DSN and the path of the data directory
#                          (default ~/.cache/jigsaw/postgres); one cluster per state directory.
#   JIGSAW_POSTGRES_PORT   the loopback port (default: a free one, chosen by start.sh).
PG_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG_STATE="${JIGSAW_POSTGRES_STATE:-${HOME:-/root}/.cache/jigsaw/postgres}"

# The directory holding initdb and pg_ctl: PATH first, then the distribution's versioned directories.
pg_bindir() {
    local found
    if found="$(command -v initdb 2>/dev/null)" && [[ -n "$found" ]]; then
        dirname "$(readlink -f "$found")"
        return 0
    fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# Run a PostgreSQL program as the cluster's owner: the server refuses to run as root,
# so as root (CI) it runs as the `postgres` user; otherwise as the caller.
as_owner() {
    if [[ "$(id -u)" == "0" ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
