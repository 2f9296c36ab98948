# Shared settings for deploy/kafka/*.sh (sourced, not run).
#
# Kafka 3.9.1 is pinned: the conservative choice with aiokafka 0.14 (the last
# 3.x line, still serving the older protocol versions Kafka 4.0 removed;
# aiokafka's maintainer says 4.x works too, but nothing here needs it). It runs
# on Java 17. See README.md. The version lives in
# pom.xml as well; fetch.sh refuses to run if the two disagree.

KAFKA_VERSION="3.9.1"
KAFKA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JIGSAW_CACHE="${JIGSAW_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/jigsaw}"
KAFKA_HOME="$JIGSAW_CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIB="$KAFKA_HOME/lib"
KAFKA_STATE="${JIGSAW_KAFKA_STATE:-$JIGSAW_CACHE/run}"
KAFKA_PORT="${JIGSAW_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${JIGSAW_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
