#!/usr/bin/env bash
# Scores the corpus forest and gradient-boosting models on 10,000 rows and on one row with
# scikit-learn (single-threaded) and with mlship (all cores, and pinned to one core), in one run,
# and prints the ratios (medians over ROUNDS turns, 5 by default, of ratios taken within each turn). Installs scikit-learn into bench/.venv the first time (not needed by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-10000}
if [[ ! -x bench/.venv/bin/python ]]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q "scikit-learn==1.9.0" "numpy==2.4.6" "pandas==3.1.1" "scipy==1.17.1"
fi
cargo bench -q -p mlship-formats --bench score --no-run >/dev/null 2>&1
bin=$(ls -t target/release/deps/score-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
# The machine is noisy (its speed drifts by up to 2x over minutes, for both sides alike): the
# libraries and mlship take turns, ROUNDS times; a ratio is taken within each round, and the table
# gives medians over the rounds (times and ratios), with the range of the ratios.
for _ in $(seq "${ROUNDS:-5}"); do
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 bench/.venv/bin/python bench/sklearn_score.py fixtures/corpus "$ROWS" >>"$tmp/sk"
  ROWS=$ROWS "$bin" >>"$tmp/ml"
  ROWS=$ROWS taskset -c 0 "$bin" >>"$tmp/ml1"
done
python3 bench/ratios.py "$tmp/sk" mlship="$tmp/ml" 1core="$tmp/ml1"
rm -rf "$tmp"
