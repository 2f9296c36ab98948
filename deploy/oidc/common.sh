# Shared settings for deploy/oidc/*.sh (sourced, not run).
#
# NAV's mock-oauth2-server: a real OpenID Connect provider (discovery, JWKS,
# authorization code with PKCE, signed ID tokens) that runs on Java 17 from
# Maven Central jars. Only the web sign-in tests use it; it listens on
# 127.0.0.1 only. The version lives in pom.xml as well.

OIDC_VERSION="2.1.10"
OIDC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JIGSAW_CACHE="${JIGSAW_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/jigsaw}"
OIDC_HOME="$JIGSAW_CACHE/mock-oauth2-server-$OIDC_VERSION"
OIDC_LIB="$OIDC_HOME/lib"
OIDC_STATE="${JIGSAW_OIDC_STATE:-$JIGSAW_CACHE/oidc-run}"
OIDC_PORT="${JIGSAW_OIDC_PORT:-18080}"
