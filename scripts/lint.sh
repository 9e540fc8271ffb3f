#!/usr/bin/env bash
# Lint the app's code with ruff (settings in pyproject.toml). Formatting is not enforced.
set -euo pipefail
source "$(dirname "$0")/venv.sh" requirements-dev.txt
cd "$ROOT"
exec "$VENV/bin/ruff" check lib views components app.py ui.py "$@"
