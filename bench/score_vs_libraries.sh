#!/usr/bin/env bash
# Scores corpus files of other formats with their libraries' own predict (XGBoost, LightGBM,
# onnxruntime, JPMML-Evaluator; single-threaded) and with mlship pinned to one core, in one run,
# on 10,000 rows and on one row, and prints the ratios (medians of ROUNDS turns, 3 by default). Installs the libraries into
# bench/.venv-libs the first time (not needed by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-10000}
VENV=bench/.venv-libs
if [[ ! -x $VENV/bin/python ]] || ! $VENV/bin/python -c "import xgboost, lightgbm, onnxruntime, jpmml_evaluator" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "xgboost-cpu==3.2.0" "lightgbm==4.7.0" onnxruntime "jpmml_evaluator==0.16.0" pandas numpy
fi
MODELS="xgb_classifier/model.json lgbm_classifier/model.txt random_forest_classifier/model.onnx gradient_boosting_regressor/model.onnx random_forest_classifier/model.pmml logistic_binary/model.pmml"
cargo bench -q -p mlship-formats --bench score --no-run >/dev/null 2>&1
bin=$(ls -t target/release/deps/score-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The machine is noisy (its speed drifts by up to 2x over minutes): the libraries and mlship take
# turns, ROUNDS times, and each figure is the median of its rounds.
for _ in $(seq "${ROUNDS:-3}"); do
  OMP_NUM_THREADS=1 "$VENV/bin/python" bench/library_score.py fixtures/corpus "$ROWS" >>"$tmp/lib"
  ROWS=$ROWS MODELS=$MODELS taskset -c 0 "$bin" >>"$tmp/ml"
done
val() { grep " $2 " "$1" | sed -E "s/.*$3=([0-9.]+).*/\1/" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
printf '%-42s %-12s %12s %12s %8s %12s %12s %8s\n' file library "lib_us" "mlship_us" ratio "lib_1row_us" "ml_1row_us" ratio
for f in $MODELS; do
  lib=$(grep -m1 " $f " "$tmp/lib" | cut -d' ' -f1)
  l=$(val "$tmp/lib" "$f" batch_us); m=$(val "$tmp/ml" "$f" batch_us)
  l1=$(val "$tmp/lib" "$f" one_row_us); m1=$(val "$tmp/ml" "$f" one_row_us)
  awk -v f="$f" -v lib="$lib" -v l="$l" -v m="$m" -v l1="$l1" -v m1="$m1" 'BEGIN { printf "%-42s %-12s %12.0f %12.0f %7.1fx %12.1f %12.2f %7.0fx\n", f, lib, l, m, l/m, l1, m1, l1/m1 }'
done
