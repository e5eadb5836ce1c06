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
python3 - "$tmp" <<'PY'
import re, statistics, sys
tmp = sys.argv[1]
def rounds(name, case, key):
    return [float(re.search(key + r"=([0-9.]+)", l).group(1)) for l in open(f"{tmp}/{name}") if f" {case} " in l]
med = statistics.median
print(f"{'model':30} {'sklearn_us':>10} {'mlship_us':>10} {'ratio':>6} {'(range)':>12} {'1core_us':>9} {'ratio':>6} {'(range)':>12} {'sk_1row_us':>10} {'ml_1row_us':>10} {'ratio':>6}")
for c in ["random_forest_classifier", "random_forest_regressor", "gradient_boosting_classifier", "gradient_boosting_regressor"]:
    sk, ml, m1 = rounds("sk", c, "batch_us"), rounds("ml", c, "batch_us"), rounds("ml1", c, "batch_us")
    s1, o1 = rounds("sk", c, "one_row_us"), rounds("ml", c, "one_row_us")
    r, r1 = [a / b for a, b in zip(sk, ml)], [a / b for a, b in zip(sk, m1)]
    span = lambda v: f"({min(v):.1f}-{max(v):.1f})"
    print(f"{c:30} {med(sk):10.0f} {med(ml):10.0f} {med(r):5.1f}x {span(r):>12} {med(m1):9.0f} {med(r1):5.1f}x {span(r1):>12} {med(s1):10.1f} {med(o1):10.2f} {med(s1) / med(o1):5.0f}x")
PY
rm -rf "$tmp"
