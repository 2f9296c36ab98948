#!/usr/bin/env bash
# Jigsaw's main job on the embedded log, from a fresh clone: `bash deploy/demo.sh`.
# Creates .venv and installs Jigsaw if needed (no Kafka, no Java), then runs `jigsaw demo`:
# the review's three cases published through the HTTP gateway, and what every professional
# received and why. Arguments go to `jigsaw demo` (e.g. --no-wait to print and exit).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=deploy/venv.sh
source "$root/deploy/venv.sh"
ensure_venv "$root" "" >&2
exec "$root/.venv/bin/jigsaw" demo "$@"
