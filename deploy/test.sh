#!/usr/bin/env bash
# The whole test suite, from a fresh clone: `bash deploy/test.sh`.
#
#   1. creates .venv (python3 -m venv) if missing and installs jigsaw with its test tools;
#   2. fetches Kafka's jars (cached outside the repo) and starts a real single-node broker,
#      unless JIGSAW_TEST_KAFKA_BOOTSTRAP already names one;
#   2a. starts a second, secure broker (SASL_SSL with SCRAM users, an SSL listener requiring client
#      certificates, a throwaway CA made by openssl) in the background for tests/contract/test_kafka_secure.py,
#      unless JIGSAW_TEST_KAFKA_SECURE_ENV already names one's client.env;
#   2b. installs Debian's chromium and chromium-driver if missing, the web pages' front-end packages
#      (deploy/web/fetch.sh) and starts an OpenID Connect provider (deploy/oidc) for the browser tests;
#   3. runs ruff, mypy and pytest (the Kafka contract tests run against that broker and must
#      not skip), then the shared scenarios (../shared/scenarios/*.expected.json and next/)
#      through `jigsaw simulate` and ../shared/tools/check_scenario.py, which must exist
#      (JIGSAW_SHARED names ../shared when it is elsewhere);
#   3b. builds the wheel, installs it into a clean venv outside the checkout and runs a scenario
#      through the installed `jigsaw simulate`;
#   4. stops the brokers, PostgreSQL and the OIDC provider, whatever happened.
#
# Exits non-zero on any failure, including a pytest run that collected no tests.
# Needs Python 3.11+, Java 17 and Maven. CI runs it through .ci/run with CI=true.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started_at=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/jigsaw-test.XXXXXX")"
kafka_started=false
kafka_secure_started=false
kafka_secure_pid=""
postgres_started=false
oidc_started=false

step() { printf '\n==> [%3ss] %s\n' "$((SECONDS - started_at))" "$*"; }
die() { printf '\ndeploy/test.sh: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    if $kafka_started; then
        "$root/deploy/kafka/stop.sh" --quiet || true
    fi
    if $kafka_secure_started; then
        if [[ -n "$kafka_secure_pid" ]]; then wait "$kafka_secure_pid" 2>/dev/null || true; fi  # still starting
        JIGSAW_KAFKA_STATE="$work/kafka-secure" "$root/deploy/kafka/stop.sh" --quiet || true
    fi
    if $postgres_started; then
        "$root/deploy/postgres/stop.sh" --quiet || true
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

# -- 2a. a secure Kafka broker (SASL_SSL + SCRAM, SSL with client certificates) -----
# Started in the background (its state and ports its own) while the checks below run; pytest waits
# for it. tests/contract/test_kafka_secure.py reads its client.env and, under CI=true, fails without it.
if [[ -n "${JIGSAW_TEST_KAFKA_SECURE_ENV:-}" ]]; then
    step "using the secure Kafka broker in $JIGSAW_TEST_KAFKA_SECURE_ENV (JIGSAW_TEST_KAFKA_SECURE_ENV)"
else
    "$root/deploy/kafka/fetch.sh" >/dev/null
    secure_ports=()
    for _ in 1 2 3; do
        secure_ports+=("$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')")
    done
    step "starting a secure Kafka (SASL_SSL on 127.0.0.1:${secure_ports[0]}, SSL on ${secure_ports[2]}) in the background"
    kafka_secure_started=true
    # A longer wait than the plain broker's: it starts while mypy and the other servers take the CPUs.
    JIGSAW_KAFKA_SECURE=1 JIGSAW_KAFKA_STATE="$work/kafka-secure" JIGSAW_KAFKA_PORT="${secure_ports[0]}" \
        JIGSAW_KAFKA_START_TIMEOUT="${JIGSAW_KAFKA_START_TIMEOUT:-120}" \
        JIGSAW_KAFKA_CONTROLLER_PORT="${secure_ports[1]}" JIGSAW_KAFKA_SSL_PORT="${secure_ports[2]}" \
        "$root/deploy/kafka/start.sh" >"$work/kafka-secure.out" 2>&1 &
    kafka_secure_pid=$!
    export JIGSAW_TEST_KAFKA_SECURE_ENV="$work/kafka-secure/secure/client.env"
fi

# -- 2b. a real PostgreSQL server (the store's tests marked `postgres`) ------------
if [[ -n "${JIGSAW_TEST_POSTGRES_DSN:-}" ]]; then
    step "using the PostgreSQL server in JIGSAW_TEST_POSTGRES_DSN"
else
    # A throwaway cluster of this run's own (its state in $work), on a free loopback port.
    export JIGSAW_POSTGRES_STATE="$work/postgres"
    step "starting PostgreSQL (deploy/postgres/start.sh)"
    postgres_started=true
    JIGSAW_TEST_POSTGRES_DSN="$("$root/deploy/postgres/start.sh" | tail -n 1)"
    [[ "$JIGSAW_TEST_POSTGRES_DSN" == postgresql://* ]] || die "deploy/postgres/start.sh printed no DSN"
    export JIGSAW_TEST_POSTGRES_DSN
fi

# -- 3. checks ------------------------------------------------------------------
step "ruff check ."
"$root/.venv/bin/ruff" check .

step "mypy (strict on broker and adapters, see pyproject.toml)"
"$root/.venv/bin/mypy"

# -- 2c. the web pages' browser tests: Chromium, front-end packages, an OIDC provider --
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

if [[ -n "$kafka_secure_pid" ]]; then
    step "waiting for the secure Kafka broker"
    secure_rc=0
    wait "$kafka_secure_pid" || secure_rc=$?
    kafka_secure_pid=""
    cat "$work/kafka-secure.out"
    [[ $secure_rc -eq 0 ]] || die "the secure Kafka broker did not start (deploy/kafka/start.sh exit $secure_rc)"
fi

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

# The shared scenarios (the review's cases and next/, the rules of the spec's next version) through
# the partnership's own checker. ../shared beside the checkout (or JIGSAW_SHARED) is required: a run
# without them fails, it never passes by skipping them.
shared="${JIGSAW_SHARED:-$root/../shared}"
checker="$shared/tools/check_scenario.py"
[[ -f "$root/broker/commands/simulate.py" ]] || die "scenarios: broker/commands/simulate.py is missing"
[[ -f "$checker" ]] || die "scenarios: $checker is missing (put ../shared beside this checkout, or set JIGSAW_SHARED)"
shopt -s nullglob
expected=("$shared"/scenarios/*.expected.json "$shared"/scenarios/next/*.expected.json)
shopt -u nullglob
[[ ${#expected[@]} -gt 0 ]] || die "scenarios: no *.expected.json in $shared/scenarios or its next/"
step "scenarios: check_scenario.py over ${#expected[@]} expectation files in $shared/scenarios and next/"
scenario_rc=0
JIGSAW_SIMULATE="$root/.venv/bin/jigsaw simulate" \
    "$python" "$checker" "${expected[@]}" | tee "$work/scenarios.out" || scenario_rc=${PIPESTATUS[0]}
scenario_line="$(tail -n 1 "$work/scenarios.out")"
[[ $scenario_rc -eq 0 ]] || die "scenarios failed (check_scenario.py exit $scenario_rc: $scenario_line)"

# -- 3b. the wheel, installed as an integrator would ----------------------------
# Builds the wheel from the checkout's files (tracked and new, not ignored ones such as build/),
# installs it into a clean virtual environment outside the checkout, and runs a scenario through
# the installed `jigsaw simulate` from there: its output must match the checkout's own run.
step "the wheel: build, install into a clean venv outside the checkout, jigsaw simulate"
wheel_dir="$work/wheel"
mkdir -p "$wheel_dir/src" "$wheel_dir/dist" "$wheel_dir/run"
git -C "$root" ls-files -z --cached --others --exclude-standard \
    | (cd "$root" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) \
    | tar -C "$root" --null -T - -cf - | tar -C "$wheel_dir/src" -xf -
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$wheel_dir/dist" "$wheel_dir/src" \
    || die "the wheel did not build"
wheel_file="$(ls "$wheel_dir"/dist/jigsaw-*.whl)"
"$python" -m venv "$wheel_dir/venv"
"$wheel_dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel_file" \
    || die "the wheel $(basename "$wheel_file") did not install into a clean venv"
scenario="$root/tests/scenarios/data/family-a.json"
(cd "$wheel_dir/run" && env -u PYTHONPATH "$wheel_dir/venv/bin/jigsaw" simulate "$scenario") \
    >"$wheel_dir/installed.out" || die "the installed jigsaw simulate failed on $scenario"
"$root/.venv/bin/jigsaw" simulate "$scenario" >"$wheel_dir/checkout.out" \
    || die "the checkout's jigsaw simulate failed on $scenario"
[[ -s "$wheel_dir/installed.out" ]] || die "the installed jigsaw simulate printed nothing for $scenario"
if ! cmp -s "$wheel_dir/installed.out" "$wheel_dir/checkout.out"; then
    diff "$wheel_dir/checkout.out" "$wheel_dir/installed.out" | head -n 20 >&2 || true
    die "the installed wheel and the checkout disagree on $scenario (diff above: < checkout, > wheel)"
fi
echo "wheel: $(basename "$wheel_file") installed outside the checkout;" \
    "jigsaw simulate $(basename "$scenario"): $(wc -l <"$wheel_dir/installed.out") lines, as from the checkout"

# -- summary --------------------------------------------------------------------
step "summary ($((SECONDS - started_at))s)"
echo "ruff: clean; mypy: clean"
echo "$kafka_line"
echo "scenarios: $scenario_line"
echo "pytest: $tests_passed passed, $tests_failed failed, $tests_skipped skipped"
