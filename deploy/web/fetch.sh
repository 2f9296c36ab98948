#!/usr/bin/env bash
# Install the web pages' front-end packages from the npm registry into a cache outside
# the repository: ${JIGSAW_CACHE_DIR:-~/.cache/jigsaw}/web-assets/node_modules
# (govuk-frontend, served by Jigsaw as static files; axe-core, injected by the browser tests).
#
# `npm ci` installs exactly what the committed package-lock.json pins, with install
# scripts off. Idempotent: a complete install made from this very lock file is kept.
# Prints the node_modules path on its last line (what JIGSAW_WEB_ASSETS_DIR takes).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${JIGSAW_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/jigsaw}"
target="$cache/web-assets"
stamp="$target/.complete"
want="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$target/node_modules/govuk-frontend/dist" ]]; then
    echo "web assets: already in $target/node_modules" >&2
    echo "$target/node_modules"
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "fetch.sh: 'npm' is not installed (apt-get install npm)" >&2
    exit 1
fi
mkdir -p "$cache"
tmp="$(mktemp -d "$cache/web-assets.partial.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$tmp/"
echo "web assets: npm ci (govuk-frontend, axe-core) into $target" >&2
if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2); then
    echo "fetch.sh: npm ci failed (is the npm registry reachable?)" >&2
    exit 1
fi
for need in govuk-frontend/dist/govuk/govuk-frontend.min.css axe-core/axe.min.js; do
    [[ -f "$tmp/node_modules/$need" ]] || { echo "fetch.sh: $need is missing after npm ci" >&2; exit 1; }
done
echo "$want" >"$tmp/.complete"
rm -rf "$target"
mv "$tmp" "$target"
trap - EXIT
echo "$target/node_modules"
