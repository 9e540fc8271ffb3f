#!/usr/bin/env bash
# Run the whole test suite (unit, integration against a fake workspace, browser).
source "$(dirname "$0")/venv.sh" requirements-dev.txt
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
