#!/usr/bin/env bash
# Fetch mock-oauth2-server's runtime classpath from Maven Central into a cache
# outside the repository: ${JIGSAW_CACHE_DIR:-~/.cache/jigsaw}/mock-oauth2-server-<version>/lib.
#
# Idempotent, like deploy/kafka/fetch.sh: a complete copy made from this very
# pom.xml is kept; a new copy is made in a temporary directory and moved into
# place only once complete.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pom="$OIDC_DIR/pom.xml"
if ! grep -q "<oidc.version>$OIDC_VERSION</oidc.version>" "$pom"; then
    echo "fetch.sh: pom.xml does not pin mock-oauth2-server $OIDC_VERSION (common.sh does); make them agree" >&2
    exit 1
fi
stamp="$OIDC_HOME/.complete"
want="$(sha256sum "$pom" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$OIDC_LIB/mock-oauth2-server-$OIDC_VERSION.jar" ]]; then
    echo "mock-oauth2-server $OIDC_VERSION: jars already in $OIDC_LIB"
    exit 0
fi
for tool in mvn java; do
    if ! command -v "$tool" >/dev/null; then
        echo "fetch.sh: '$tool' is not installed; the OIDC provider needs Java 17+ and Maven" >&2
        exit 1
    fi
done
mkdir -p "$OIDC_HOME"
tmp="$(mktemp -d "$OIDC_HOME/lib.partial.XXXXXX")"
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
echo "mock-oauth2-server $OIDC_VERSION: fetching its jars from Maven Central into $OIDC_LIB"
if ! mvn -B -ntp -q -Dstyle.color=never -f "$pom" \
    -Dmaven.repo.local="$JIGSAW_CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    echo "fetch.sh: mvn could not fetch mock-oauth2-server $OIDC_VERSION's jars (is Maven Central reachable?)" >&2
    exit 1
fi
if [[ ! -f "$tmp/mock-oauth2-server-$OIDC_VERSION.jar" ]]; then
    echo "fetch.sh: mvn finished but mock-oauth2-server-$OIDC_VERSION.jar is missing from $tmp" >&2
    exit 1
fi
rm -rf "$OIDC_LIB"
mv "$tmp" "$OIDC_LIB"
echo "$want" >"$stamp"
echo "mock-oauth2-server $OIDC_VERSION: $(ls "$OIDC_LIB" | wc -l) jars in $OIDC_LIB"
