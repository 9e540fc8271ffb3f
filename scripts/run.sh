#!/usr/bin/env bash
# Run the app locally on http://127.0.0.1:8000 (no Databricks needed).
# The first run creates .venv and installs the app's Python packages (a minute
# or two): it says so, and pip shows what it downloads and installs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${CODA_VENV:-$(dirname "$here")/.venv}"
stamp="$venv/.installed-requirements.txt"
installing=""
if [ ! -f "$stamp" ] || [ "$(dirname "$here")/requirements.txt" -nt "$stamp" ]; then
    installing=1
    [ -x "$venv/bin/pip" ] || echo "run.sh: creating the Python virtual environment in $venv"
    echo "run.sh: installing the app's Python packages from requirements.txt (Streamlit, databricks-sdk," \
         "ptyprocess, httpx) into $venv; the first time this takes a minute or two"
    # venv.sh runs `pip install --quiet`; one level of verbosity cancels it, so pip's own progress shows.
    export PIP_VERBOSE=1
fi
source "$here/venv.sh" requirements.txt
unset PIP_VERBOSE
[ -z "$installing" ] || echo "run.sh: packages installed"
cd "$ROOT"
echo "run.sh: starting the app: streamlit run app.py $* (http://127.0.0.1:8000 unless a port is given)"
exec "$VENV/bin/python" -m streamlit run app.py "$@"
