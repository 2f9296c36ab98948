#!/usr/bin/env bash
# Fetch the Kafka broker's runtime classpath from Maven Central into a cache
# outside the repository: ${JIGSAW_CACHE_DIR:-~/.cache/jigsaw}/kafka-<version>/lib.
#
# Idempotent: when the cache already holds a complete copy made from this very
# pom.xml it does nothing. A copy is made in a temporary directory and moved into
# place only once complete, so an interrupted fetch never leaves a half cache.
# Maven's own repository also lives in the cache (m2/), so deleting
# ~/.cache/jigsaw starts from nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pom="$KAFKA_DIR/pom.xml"
if ! grep -q "<kafka.version>$KAFKA_VERSION</kafka.version>" "$pom"; then
    echo "fetch.sh: pom.xml does not pin kafka $KAFKA_VERSION (common.sh does); make them agree" >&2
    exit 1
fi
stamp="$KAFKA_HOME/.complete"
want="$(sha256sum "$pom" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$KAFKA_LIB/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    echo "kafka $KAFKA_VERSION: jars already in $KAFKA_LIB"
    exit 0
fi

for tool in mvn java; do
    if ! command -v "$tool" >/dev/null; then
        echo "fetch.sh: '$tool' is not installed; Kafka needs Java 17+ and Maven (apt-get install openjdk-17-jdk-headless maven)" >&2
        exit 1
    fi
done

mkdir -p "$KAFKA_HOME"
tmp="$(mktemp -d "$KAFKA_HOME/lib.partial.XXXXXX")"
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
echo "kafka $KAFKA_VERSION: fetching the broker's jars from Maven Central into $KAFKA_LIB"
# Maven's output goes to a file, shown only when it fails (its quiet mode still prints colour codes).
if ! mvn -B -ntp -q -Dstyle.color=never -f "$pom" \
    -Dmaven.repo.local="$JIGSAW_CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    echo "fetch.sh: mvn could not fetch Kafka $KAFKA_VERSION's jars (is Maven Central reachable?)" >&2
    exit 1
fi
if [[ ! -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" || ! -f "$tmp/slf4j-reload4j-1.7.36.jar" ]]; then
    echo "fetch.sh: mvn finished but the broker or logging jar is missing from $tmp" >&2
    exit 1
fi
rm -rf "$KAFKA_LIB"
mv "$tmp" "$KAFKA_LIB"
echo "$want" >"$stamp"
echo "kafka $KAFKA_VERSION: $(ls "$KAFKA_LIB" | wc -l) jars in $KAFKA_LIB"
