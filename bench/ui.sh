#!/usr/bin/env bash
# Times the web UI with 100,000 runs in one experiment (server answer, headless Chromium, a chart
# of 100,000 points) beside MLflow's UI on the same rows: MLflow 3.17.2 in bench/.venv-mlflow,
# Chromium and playwright-core as the UI tests install them (.ci/browser.sh). Sizes from the
# environment: RUNS=10000 POINTS=10000 TURNS=3 bench/ui.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x bench/.venv-mlflow/bin/mlflow ]]; then
  python3 -m venv bench/.venv-mlflow
  bench/.venv-mlflow/bin/pip install -q "mlflow==3.17.2" "scikit-learn==1.9.0" "numpy==2.4.6" "pandas==3.1.1" "scipy==1.17.1" cloudpickle
fi
eval "$(bash .ci/browser.sh)"
cargo build -q --release -p mlship
exec bench/.venv-mlflow/bin/python bench/ui.py target/release/mlship bench/.venv-mlflow/bin/mlflow "$MLSHIP_TEST_PLAYWRIGHT/node_modules"
