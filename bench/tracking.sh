#!/usr/bin/env bash
# Runs one tracking workload against `mlship server` and `mlflow server` (MLflow 3.17.2 from PyPI,
# installed into bench/.venv-mlflow by this script), both on SQLite in fresh folders, and prints
# each line's wall time, the servers' own CPU time and the ratios (see bench/tracking.py for the
# lines and the sizes, which the environment can shrink: RUNS=100 SEARCH=10000 bench/tracking.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x bench/.venv-mlflow/bin/mlflow ]]; then
  python3 -m venv bench/.venv-mlflow
  bench/.venv-mlflow/bin/pip install -q "mlflow==3.17.2" "scikit-learn==1.9.0" "numpy==2.4.6" "pandas==3.1.1" "scipy==1.17.1" cloudpickle
fi
cargo build -q --release -p mlship
exec bench/.venv-mlflow/bin/python bench/tracking.py target/release/mlship bench/.venv-mlflow/bin/mlflow
