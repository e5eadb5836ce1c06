#!/usr/bin/env bash
# Scores corpus files of other formats with their libraries' own predict (XGBoost, LightGBM,
# onnxruntime, JPMML-Evaluator; single-threaded) and with mlship pinned to one core, in one run,
# on 10,000 rows and on one row, and prints the ratios (medians over ROUNDS turns, 5 by default, of ratios taken within each turn). Installs the libraries into
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
# The machine is noisy (its speed drifts by up to 2x over minutes, for both sides alike): the
# libraries and mlship take turns, ROUNDS times; a ratio is taken within each turn, and the table
# gives medians over the turns (times and ratios), with the range of the ratios.
for _ in $(seq "${ROUNDS:-5}"); do
  OMP_NUM_THREADS=1 "$VENV/bin/python" bench/library_score.py fixtures/corpus "$ROWS" >>"$tmp/lib"
  ROWS=$ROWS MODELS=$MODELS taskset -c 0 "$bin" >>"$tmp/ml"
done
python3 bench/ratios.py "$tmp/lib" mlship="$tmp/ml"
