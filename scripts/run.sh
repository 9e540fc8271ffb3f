#!/usr/bin/env bash
# Run the app locally on http://127.0.0.1:8000 (no Databricks needed).
source "$(dirname "$0")/venv.sh" requirements.txt
cd "$ROOT"
exec "$VENV/bin/python" -m streamlit run app.py "$@"
