#!/usr/bin/env bash
# Lint with ruff (settings in pyproject.toml). Formatting is not enforced.
set -euo pipefail
source "$(dirname "$0")/venv.sh" requirements-dev.txt
cd "$ROOT"
"$VENV/bin/ruff" check lib views components app.py ui.py "$@"
# Tests and benchmarks: errors, imports and likely bugs only (their style is looser).
exec "$VENV/bin/ruff" check tests bench --select F,E9,I,B "$@"
