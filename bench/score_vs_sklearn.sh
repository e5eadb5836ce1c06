#!/usr/bin/env bash
# Scores the corpus forest and gradient-boosting models on 10,000 rows and on one row with
# scikit-learn (single-threaded) and with mlship (all cores, and pinned to one core), in one run,
# and prints the ratios (medians of ROUNDS turns each, 3 by default). Installs scikit-learn into bench/.venv the first time (not needed by CI).
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
# The machine is noisy (its speed drifts by up to 2x over minutes): the libraries and mlship take
# turns, ROUNDS times, and each figure is the median of its rounds.
for _ in $(seq "${ROUNDS:-3}"); do
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 bench/.venv/bin/python bench/sklearn_score.py fixtures/corpus "$ROWS" >>"$tmp/sk"
  ROWS=$ROWS "$bin" >>"$tmp/ml"
  ROWS=$ROWS taskset -c 0 "$bin" >>"$tmp/ml1"
done
val() { grep " $2 " "$1" | sed -E "s/.*$3=([0-9.]+).*/\1/" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
printf '%-30s %12s %12s %7s %12s %7s %12s %12s %7s\n' model "sklearn_us" "mlship_us" ratio "1core_us" ratio "sk_1row_us" "ml_1row_us" ratio
for c in random_forest_classifier random_forest_regressor gradient_boosting_classifier gradient_boosting_regressor; do
  sk=$(val "$tmp/sk" $c batch_us); ml=$(val "$tmp/ml" $c batch_us); m1=$(val "$tmp/ml1" $c batch_us)
  s1=$(val "$tmp/sk" $c one_row_us); o1=$(val "$tmp/ml" $c one_row_us)
  awk -v c=$c -v sk=$sk -v ml=$ml -v m1=$m1 -v s1=$s1 -v o1=$o1 'BEGIN { printf "%-30s %12.0f %12.0f %6.1fx %12.0f %6.1fx %12.1f %12.2f %6.0fx\n", c, sk, ml, sk/ml, m1, sk/m1, s1, o1, s1/o1 }'
done
rm -rf "$tmp"
