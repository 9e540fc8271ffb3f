# shellcheck shell=bash
# Sourced by test.sh and venv.sh: Debian packages the scripts need, installed
# with apt-get when missing and permitted (running as root, or passwordless
# sudo); otherwise one line says what to run and the script exits 1. When
# nothing is missing nothing runs (no apt-get at all).

# Debian packages the test suite needs that are missing here, space-separated.
coda_missing_test_packages() {
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)  # tests/browser.py launches this exact path
    command -v git >/dev/null 2>&1 || missing+=(git)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    echo "${missing[*]}"
}

# coda_apt_install PURPOSE PACKAGE...: install the packages, or say what to run and exit 1.
coda_apt_install() {
    local purpose=$1 me
    shift
    [ $# -gt 0 ] || return 0
    me=$(basename "$0")
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
            echo "$me: $purpose needs Debian packages $*; run: sudo apt-get update && sudo apt-get install -y $*" >&2
            exit 1
        elif command -v apt-get >/dev/null 2>&1; then
            echo "$me: $purpose needs Debian packages $*; run as root: apt-get update && apt-get install -y $*" >&2
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$me: $purpose needs Debian packages $* (no apt-get here: install their equivalents)" >&2
        exit 1
    fi
    echo "$me: installing $* with apt-get ($purpose)" >&2
    local log rc=0
    log=$(mktemp)
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    } >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2
        echo "$me: apt-get install $* failed (exit $rc, output above)" >&2
    fi
    rm -f "$log"
    [ "$rc" -eq 0 ] || exit 1
}

# Install what the test suite needs, then check it is really there.
coda_ensure_test_packages() {
    local missing
    missing=$(coda_missing_test_packages)
    [ -n "$missing" ] || return 0
    # shellcheck disable=SC2086  # one word per package
    coda_apt_install "the test suite" $missing
    missing=$(coda_missing_test_packages)
    if [ -n "$missing" ]; then
        echo "$(basename "$0"): still missing after apt-get: $missing (the browser tests need /usr/bin/chromium)" >&2
        exit 1
    fi
}
