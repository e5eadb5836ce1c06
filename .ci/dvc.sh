#!/usr/bin/env bash
# Installs the real `dvc` (with dvc-s3) from PyPI into its own venv, for the tests that check
# `mlship data` against it both ways. Prints `export` lines.
set -euo pipefail
VENV=${DVC_VENV:-/tmp/mlship-dvc}
if ! "$VENV/bin/dvc" --version >/dev/null 2>&1; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q "dvc==3.67.1" "dvc-s3==3.3.0" >&2
fi
echo "export MLSHIP_TEST_DVC=$VENV/bin/dvc"
