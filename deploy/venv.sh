# Sourced by deploy/demo.sh and deploy/test.sh: make sure .venv exists and has Jigsaw installed.
#   ensure_venv ROOT EXTRAS   (EXTRAS: "" for the service alone, "[test]" for the test tools too)
# Reinstalls only when pyproject.toml (or the extras asked for) changed: the install is editable,
# so code changes need none.
ensure_venv() {
    local root="$1" extras="$2"
    local python="$root/.venv/bin/python"
    if [[ ! -x "$python" ]]; then
        echo "==> creating .venv"
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || { echo "Jigsaw needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)" >&2; return 1; }
        python3 -m venv "$root/.venv"
    fi
    local stamp="$root/.venv/.jigsaw-install"
    local want
    want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)$extras"
    # A stamp for "[test]" covers a plain install too.
    if [[ -f "$stamp" ]] && { [[ "$(cat "$stamp")" == "$want" ]] || [[ -z "$extras" && "$(cat "$stamp")" == "${want}[test]" ]]; }; then
        return 0
    fi
    echo "==> installing jigsaw${extras:+ with its test tools} into .venv"
    "$python" -m pip install --quiet --disable-pip-version-check -e "$root$extras"
    echo "$want" >"$stamp"
}
