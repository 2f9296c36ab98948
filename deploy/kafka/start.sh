#!/usr/bin/env bash
# Start a single-node Apache Kafka (KRaft: broker and controller in one JVM) on
# 127.0.0.1:19092 (controller 19093) from the jars fetch.sh cached, with a fresh
# data directory, and wait (at most JIGSAW_KAFKA_START_TIMEOUT s, default 60)
# until a client can list topics. On failure it prints the broker's log and
# exits non-zero. A broker this script started earlier is stopped first.
#
# State (pid, log, config) lives in ${JIGSAW_KAFKA_STATE:-~/.cache/jigsaw/run};
# stop.sh stops the broker and removes its data directory.
#
# --resume: start the broker that `stop.sh --keep-data` stopped, on its kept
# data and config (same cluster id, same records), instead of a fresh one.
#
# JIGSAW_KAFKA_SECURE=1: the client port is a SASL_SSL listener (TLS, SCRAM-SHA-512
# users) instead of PLAINTEXT; with JIGSAW_KAFKA_SSL_PORT also an SSL listener that
# requires a client certificate. secure.sh makes the certificates and passwords
# (a throwaway CA) in the state dir's secure/ and writes secure/client.env, the
# JIGSAW_KAFKA_* variables a client needs; start.sh prints where it is.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

resume=false
for arg in "$@"; do
    case "$arg" in
        --resume) resume=true ;;
        *) echo "start.sh: unknown option $arg (--resume)" >&2; exit 2 ;;
    esac
done

timeout_s="${JIGSAW_KAFKA_START_TIMEOUT:-60}"
bootstrap="127.0.0.1:$KAFKA_PORT"

if [[ ! -f "$KAFKA_HOME/.complete" ]]; then
    echo "start.sh: no Kafka $KAFKA_VERSION jars in $KAFKA_LIB; run deploy/kafka/fetch.sh first" >&2
    exit 1
fi
if ! command -v java >/dev/null; then
    echo "start.sh: 'java' is not installed; Kafka $KAFKA_VERSION needs Java 11+ (17 recommended)" >&2
    exit 1
fi

if $resume; then
    [[ -f "$KAFKA_STATE/data_dir" && -d "$(cat "$KAFKA_STATE/data_dir")" && -f "$KAFKA_STATE/server.properties" ]] \
        || { echo "start.sh --resume: no kept broker in $KAFKA_STATE (stop it with stop.sh --keep-data)" >&2; exit 1; }
    "$KAFKA_DIR/stop.sh" --quiet --keep-data
else
    "$KAFKA_DIR/stop.sh" --quiet
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
secure=false
case "${JIGSAW_KAFKA_SECURE:-0}" in
    1|true|yes) secure=true ;;
    0|false|no|"") ;;
    *) echo "start.sh: JIGSAW_KAFKA_SECURE takes 1 or 0, not '$JIGSAW_KAFKA_SECURE'" >&2; exit 1 ;;
esac
ssl_port="${JIGSAW_KAFKA_SSL_PORT:-}"
if [[ -n "$ssl_port" ]] && ! $secure; then
    echo "start.sh: JIGSAW_KAFKA_SSL_PORT needs JIGSAW_KAFKA_SECURE=1" >&2
    exit 1
fi
for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" $ssl_port; do
    if port_open "$port"; then
        echo "start.sh: something else already listens on 127.0.0.1:$port; stop it or set JIGSAW_KAFKA_PORT/JIGSAW_KAFKA_CONTROLLER_PORT" >&2
        exit 1
    fi
done

mkdir -p "$KAFKA_STATE"
config="$KAFKA_STATE/server.properties"
log_file="$KAFKA_STATE/kafka.log"
if $resume; then
    data_dir="$(cat "$KAFKA_STATE/data_dir")"
else
    data_dir="$(mktemp -d "${TMPDIR:-/tmp}/jigsaw-kafka-data.XXXXXX")"
    echo "$data_dir" >"$KAFKA_STATE/data_dir"
fi

format_args=()
client_env=""
if $secure; then
    # Certificates, SCRAM users and the listener settings (secure.sh sets listener_props, format_args, client_env).
    source "$KAFKA_DIR/secure.sh"
else
    listener_props="listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
fi

(umask 077; : >"$config")  # it may hold keystore and SCRAM passwords
cat >"$config" <<PROPS
# Written by deploy/kafka/start.sh: a single-node KRaft broker for development and tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
$listener_props
log.dirs=$data_dir
num.partitions=1
# Jigsaw creates its topics itself (with the replication it is configured for); a typo must not make one.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
# One partition for the internal topics: creating 50 of them on the first commit is slow on a small box.
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
PROPS

cat >"$KAFKA_STATE/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
PROPS

jvm=(java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
     "-Dlog4j.configuration=file:$KAFKA_STATE/log4j.properties" -cp "$KAFKA_LIB/*")

if ! $resume; then  # a fresh broker: format its storage (a resumed one keeps its cluster id and records)
# A cluster id is 16 random bytes, URL-safe base64 without padding; never one that starts with "-",
# which the storage tool reads as an option (its format then fails, once in 64 starts).
cluster_id=""
while [[ -z $cluster_id || $cluster_id == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
done
if ! "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$config" "${format_args[@]}" >"$log_file" 2>&1; then
    echo "start.sh: formatting the storage in $data_dir failed:" >&2
    cat "$log_file" >&2
    exit 1
fi
fi

# setsid: the broker outlives this shell and a Ctrl-C in it; stop.sh ends it.
setsid "${jvm[@]}" kafka.Kafka "$config" >>"$log_file" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$KAFKA_STATE/kafka.pid"
echo "kafka $KAFKA_VERSION: starting on $bootstrap (pid $pid, log $log_file, data $data_dir)"

repo="$(cd "$KAFKA_DIR/../.." && pwd)"
python="${JIGSAW_PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python="python3"; fi
fi
ready() {
    local rc=0
    "$python" "$KAFKA_DIR/ready.py" "$bootstrap" $client_env 2>/dev/null || rc=$?
    if [[ $rc -eq 3 || $rc -eq 127 ]]; then  # no aiokafka at hand: ask with Kafka's own admin client
        rc=0
        java -cp "$KAFKA_LIB/*" "$KAFKA_DIR/Ready.java" "$bootstrap" $client_env 2>/dev/null || rc=$?
    fi
    return "$rc"
}

fail() {
    echo "start.sh: $1; the broker's log ($log_file) ends:" >&2
    tail -n 80 "$log_file" >&2
    if $resume; then "$KAFKA_DIR/stop.sh" --quiet --keep-data || true; else "$KAFKA_DIR/stop.sh" --quiet || true; fi
    exit 1
}

start=$SECONDS
while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
        fail "the broker exited during start-up"
    fi
    if port_open "$KAFKA_PORT" && ready; then
        break
    fi
    if (( SECONDS - start >= timeout_s )); then
        fail "no client could list topics on $bootstrap within ${timeout_s}s"
    fi
    sleep 0.5
done
if $secure; then
    echo "kafka $KAFKA_VERSION: ready on $bootstrap (SASL_SSL, SCRAM-SHA-512${ssl_port:+; SSL with client certificates on 127.0.0.1:$ssl_port}) after $((SECONDS - start))s"
    echo "kafka: client settings in $client_env (set -a; . $client_env; set +a); CA $secure_dir/ca.pem"
else
    echo "kafka $KAFKA_VERSION: ready on $bootstrap after $((SECONDS - start))s"
fi
