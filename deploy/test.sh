#!/usr/bin/env bash
# The whole test suite, from a fresh clone: `bash deploy/test.sh`.
#
#   1. creates .venv (python3 -m venv) if missing and installs jigsaw with its test tools;
#   2. fetches Kafka's jars (cached outside the repo) and starts a real single-node broker,
#      unless JIGSAW_TEST_KAFKA_BOOTSTRAP already names one;
#   2b. installs Debian's chromium and chromium-driver if missing, the web pages' front-end packages
#      (deploy/web/fetch.sh) and starts an OpenID Connect provider (deploy/oidc) for the browser tests;
#   3. runs ruff, mypy and pytest (the Kafka contract tests run against that broker and must
#      not skip), then the review scenarios through `jigsaw simulate` when both the command
#      and ../shared/tools/check_scenario.py exist;
#   4. stops the broker and the OIDC provider, whatever happened.
#
# Exits non-zero on any failure, including a pytest run that collected no tests.
# Needs Python 3.11+, Java 17 and Maven. CI runs it through .ci/run with CI=true.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started_at=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/jigsaw-test.XXXXXX")"
kafka_started=false
oidc_started=false

step() { printf '\n==> [%3ss] %s\n' "$((SECONDS - started_at))" "$*"; }
die() { printf '\ndeploy/test.sh: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    if $kafka_started; then
        "$root/deploy/kafka/stop.sh" --quiet || true
    fi
    if $oidc_started; then
        "$root/deploy/oidc/stop.sh" --quiet || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -- 1. the virtual environment -------------------------------------------------
step "the virtual environment (.venv)"
# shellcheck source=deploy/venv.sh
source "$root/deploy/venv.sh"
ensure_venv "$root" "[test]"
python="$root/.venv/bin/python"

# -- 2. a real Kafka broker -----------------------------------------------------
if [[ -n "${JIGSAW_TEST_KAFKA_BOOTSTRAP:-}" ]]; then
    step "using the Kafka broker at $JIGSAW_TEST_KAFKA_BOOTSTRAP (JIGSAW_TEST_KAFKA_BOOTSTRAP)"
else
    step "fetching Kafka's jars (cached outside the repo)"
    "$root/deploy/kafka/fetch.sh"
    # A broker of this run's own: its own state dir, and the usual ports unless they are taken
    # (another checkout's test run, a developer's broker).
    export JIGSAW_KAFKA_STATE="$work/kafka"
    free_port() {
        "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    }
    port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
    if port_free 19092 && port_free 19093; then
        export JIGSAW_KAFKA_PORT=19092 JIGSAW_KAFKA_CONTROLLER_PORT=19093
    else
        JIGSAW_KAFKA_PORT="$(free_port)"
        JIGSAW_KAFKA_CONTROLLER_PORT="$(free_port)"
        export JIGSAW_KAFKA_PORT JIGSAW_KAFKA_CONTROLLER_PORT
    fi
    step "starting Kafka on 127.0.0.1:$JIGSAW_KAFKA_PORT"
    kafka_started=true
    "$root/deploy/kafka/start.sh"
    export JIGSAW_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$JIGSAW_KAFKA_PORT"
fi

# -- 3. checks ------------------------------------------------------------------
step "ruff check ."
"$root/.venv/bin/ruff" check .

step "mypy (strict on broker and adapters, see pyproject.toml)"
"$root/.venv/bin/mypy"

# -- 2b. the web pages' browser tests: Chromium, front-end packages, an OIDC provider --
# Debian's chromium and chromium-driver (Selenium is given their paths: nothing downloads a
# browser), govuk-frontend and axe-core from the npm registry (deploy/web/fetch.sh, cached outside
# the repo), and NAV's mock-oauth2-server from Maven Central on 127.0.0.1 (deploy/oidc/). The
# browser tests (pytest -m browser) read the addresses exported here and never skip in CI.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    step "installing chromium and chromium-driver (Debian packages) for the browser tests"
    apt_get=(apt-get)
    [[ "$(id -u)" -eq 0 ]] || apt_get=(sudo -n apt-get)
    "${apt_get[@]}" update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q chromium chromium-driver >/dev/null
fi
export JIGSAW_TEST_CHROMIUM="$(command -v chromium)" JIGSAW_TEST_CHROMEDRIVER="$(command -v chromedriver)"
step "front-end packages for the web pages (govuk-frontend, axe-core; cached outside the repo)"
web_assets="$("$root/deploy/web/fetch.sh" | tail -n 1)"
export JIGSAW_WEB_ASSETS_DIR="$web_assets" JIGSAW_TEST_AXE_JS="$web_assets/axe-core/axe.min.js"
step "fetching mock-oauth2-server's jars (the OpenID Connect provider for the browser tests)"
"$root/deploy/oidc/fetch.sh"
export JIGSAW_OIDC_STATE="$work/oidc"
if (exec 3<>"/dev/tcp/127.0.0.1/18080") 2>/dev/null; then
    JIGSAW_OIDC_PORT="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
else
    JIGSAW_OIDC_PORT=18080
fi
export JIGSAW_OIDC_PORT
step "starting mock-oauth2-server on 127.0.0.1:$JIGSAW_OIDC_PORT"
oidc_started=true
"$root/deploy/oidc/start.sh"
export JIGSAW_TEST_OIDC_ISSUER="http://127.0.0.1:$JIGSAW_OIDC_PORT/default"

step "pytest"
pytest_rc=0
"$root/.venv/bin/pytest" --junitxml="$work/junit.xml" 2>&1 | tee "$work/pytest.out" || pytest_rc=${PIPESTATUS[0]}
if [[ $pytest_rc -eq 5 ]]; then
    die "pytest collected no tests"
elif [[ $pytest_rc -ne 0 ]]; then
    die "pytest failed (exit $pytest_rc)"
fi
read -r tests_passed tests_failed tests_skipped < <("$python" - "$work/junit.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
failed = count["failures"] + count["errors"]
print(count["tests"] - failed - count["skipped"], failed, count["skipped"])
PY
)
kafka_line="$(grep -E '^kafka-marked tests' "$work/pytest.out" || true)"
kafka_passed="$(sed -nE 's/^kafka-marked tests against a real broker .*: ([0-9]+) passed.*/\1/p' <<<"$kafka_line")"
if [[ -z "$kafka_passed" || "$kafka_passed" -eq 0 ]]; then
    die "no Kafka contract test ran against the real broker (${kafka_line:-no kafka-marked tests found})"
fi

scenario_line="skipped"
checker="$root/../shared/tools/check_scenario.py"
if [[ ! -f "$root/broker/commands/simulate.py" ]]; then
    step "scenarios: skipped (broker/commands/simulate.py does not exist yet)"
    scenario_line="skipped: no jigsaw simulate yet"
elif [[ ! -f "$checker" ]]; then
    step "scenarios: skipped ($checker is missing: ../shared is not beside this checkout)"
    scenario_line="skipped: no ../shared beside this checkout"
else
    step "scenarios: ../shared/tools/check_scenario.py ../shared/scenarios/*.expected.json"
    JIGSAW_SIMULATE="$root/.venv/bin/jigsaw simulate" \
        "$python" "$checker" "$root"/../shared/scenarios/*.expected.json | tee "$work/scenarios.out"
    scenario_line="$(tail -n 1 "$work/scenarios.out")"
fi

# -- summary --------------------------------------------------------------------
step "summary ($((SECONDS - started_at))s)"
echo "ruff: clean; mypy: clean"
echo "$kafka_line"
echo "scenarios: $scenario_line"
echo "pytest: $tests_passed passed, $tests_failed failed, $tests_skipped skipped"
