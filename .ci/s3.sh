#!/usr/bin/env bash
# Starts an S3-compatible server (moto, from PyPI) on 127.0.0.1:5599 for the tests and creates the
# test bucket. Prints the variables the tests read, as `export` lines.
set -euo pipefail
VENV=${MOTO_VENV:-/tmp/mlship-moto}
PORT=${MOTO_PORT:-5599}
if [[ ! -x $VENV/bin/moto_server ]]; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q "moto[server]==5.2.5" >&2
fi
if ! curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >/tmp/mlship-moto.log 2>&1 &
  for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
fi
curl -s -o /dev/null -X PUT "http://127.0.0.1:$PORT/mlship-test"
cat <<VARS
export MLSHIP_TEST_S3=s3://mlship-test
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
VARS
