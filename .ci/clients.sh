#!/usr/bin/env bash
# Installs the real clients the servers are tested with: tritonclient (PyPI, HTTP client of the
# Open Inference Protocol) and the stock mlflow client with scikit-learn (for `mlship server`), in
# one venv; newman (npm, Postman's runner); and JPMML-Evaluator, which scores the PMML mlship
# writes. Prints `export` lines.
set -euo pipefail
VENV=${CLIENTS_VENV:-/tmp/mlship-clients}
NPMDIR=${CLIENTS_NPM:-/tmp/mlship-newman}
if ! "$VENV/bin/python" -c "import tritonclient.http, mlflow, sklearn, skops" 2>/dev/null; then
  [[ -x $VENV/bin/pip ]] || python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q "tritonclient[http]==2.73.0" numpy "mlflow==3.17.2" "scikit-learn==1.9.0" "skops==0.16.0" >&2
fi
if [[ ! -x $NPMDIR/node_modules/.bin/newman ]]; then
  mkdir -p "$NPMDIR"
  (cd "$NPMDIR" && npm install --silent --no-audit --no-fund newman@6.2.2 >&2)
fi
# JPMML-Evaluator (PyPI jpmml_evaluator, with its jars) checks the PMML mlship writes; it needs Java.
JPMML=${JPMML_VENV:-/tmp/mlship-jpmml}
if ! command -v java >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless >&2
fi
if ! "$JPMML/bin/python" -c "import jpmml_evaluator, pandas" 2>/dev/null; then
  python3 -m venv "$JPMML" >&2
  "$JPMML/bin/pip" install -q jpmml_evaluator==0.16.0 pandas >&2
fi
echo "export MLSHIP_TEST_TRITON_PYTHON=$VENV/bin/python"
echo "export MLSHIP_TEST_MLFLOW_PYTHON=$VENV/bin/python"
echo "export MLSHIP_TEST_JPMML_PYTHON=$JPMML/bin/python"
echo "export MLSHIP_TEST_NEWMAN=$NPMDIR/node_modules/.bin/newman"
