# Sourced by run.sh and test.sh: a virtual environment in .venv with the pinned packages.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CODA_VENV:-$ROOT/.venv}"
REQS="${1:-requirements.txt}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(basename "$REQS")"
if [ ! -f "$STAMP" ] || [ "$ROOT/$REQS" -nt "$STAMP" ] || [ "$ROOT/requirements.txt" -nt "$STAMP" ]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/$REQS"
    touch "$STAMP"
fi
