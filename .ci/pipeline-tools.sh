#!/usr/bin/env bash
# Installs the engines the exported pipelines are checked with, from PyPI into one venv: Airflow 3
# (imports the DAG, then `airflow dags test` runs it) and Hera (Argo Workflows' models, for the
# CronWorkflow). Prints `export` lines.
set -euo pipefail
VENV=${PIPELINE_VENV:-/tmp/mlship-airflow}
if ! "$VENV/bin/python" -c "import airflow, hera" 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q "apache-airflow==3.3.2" "hera==7.1.0" >&2
fi
echo "export MLSHIP_TEST_AIRFLOW_PYTHON=$VENV/bin/python"
