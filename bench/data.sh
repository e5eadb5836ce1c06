#!/usr/bin/env bash
# Times `mlship data` beside the real `dvc` (3.67.1 from PyPI, installed by .ci/dvc.sh into its own
# venv) on the same data in one run, and prints the ratios (see bench/data.py; smaller sizes:
# BIG_MIB=256 SMALL=2000 bench/data.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash .ci/dvc.sh)"
cargo build -q --release -p mlship
exec python3 bench/data.py "$PWD/target/release/mlship" "$MLSHIP_TEST_DVC"
