#!/usr/bin/env bash
# Run the whole test suite (unit, integration against a fake workspace, browser).
# Installs what it needs first: Debian's chromium, git, nodejs, npm (apt-get,
# when missing) and the pinned Python packages in .venv.
set -euo pipefail
source "$(dirname "$0")/system-deps.sh"
coda_ensure_test_packages
source "$(dirname "$0")/venv.sh" requirements-dev.txt
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
