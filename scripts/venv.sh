# Sourced by run.sh, test.sh and lint.sh: a virtual environment in .venv with the pinned packages.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CODA_VENV:-$ROOT/.venv}"
REQS="${1:-requirements.txt}"
if [ ! -x "$VENV/bin/pip" ]; then
    if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then  # no python3, or Debian's without python3-venv
        source "$ROOT/scripts/system-deps.sh"
        coda_apt_install "a virtual environment" python3-venv
    fi
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(basename "$REQS")"
if [ ! -f "$STAMP" ] || [ "$ROOT/$REQS" -nt "$STAMP" ] || [ "$ROOT/requirements.txt" -nt "$STAMP" ]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/$REQS"
    touch "$STAMP"
fi
