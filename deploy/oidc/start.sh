#!/usr/bin/env bash
# Start mock-oauth2-server on 127.0.0.1:${JIGSAW_OIDC_PORT:-18080} in the background
# and wait until its discovery document answers. Run fetch.sh first.
#
# Interactive login is on: the provider shows a sign-in form where a test types
# the user (the ID token's subject) and, optionally, extra claims as JSON; it
# then redirects back with an authorization code as a real provider does. The
# issuer is http://127.0.0.1:PORT/default.
# The pid and the server's output go to $OIDC_STATE (JIGSAW_OIDC_STATE).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ ! -f "$OIDC_LIB/mock-oauth2-server-$OIDC_VERSION.jar" ]]; then
    echo "start.sh: no jars in $OIDC_LIB; run deploy/oidc/fetch.sh first" >&2
    exit 1
fi
mkdir -p "$OIDC_STATE"
pidfile="$OIDC_STATE/oidc.pid"
if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "start.sh: the OIDC provider is already running (pid $(cat "$pidfile"))" >&2
    exit 1
fi
discovery="http://127.0.0.1:$OIDC_PORT/default/.well-known/openid-configuration"
SERVER_HOSTNAME=127.0.0.1 SERVER_PORT="$OIDC_PORT" \
    JSON_CONFIG='{"interactiveLogin": true, "httpServer": "NettyWrapper"}' \
    nohup java -Xms64m -Xmx256m -cp "$OIDC_LIB/*" no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt \
    >"$OIDC_STATE/oidc.out" 2>&1 </dev/null &
echo $! >"$pidfile"
for _ in $(seq 1 120); do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        tail -n 30 "$OIDC_STATE/oidc.out" >&2
        echo "start.sh: the OIDC provider exited during start-up" >&2
        rm -f "$pidfile"
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$OIDC_PORT") 2>/dev/null \
        && curl -fsS -o /dev/null "$discovery" 2>/dev/null; then
        echo "mock-oauth2-server $OIDC_VERSION: up at http://127.0.0.1:$OIDC_PORT/default (pid $(cat "$pidfile"))"
        exit 0
    fi
    sleep 0.5
done
echo "start.sh: the OIDC provider did not answer $discovery within 60 s" >&2
exit 1
