#!/usr/bin/env bash
# Serves the corpus random forest with mlship, with `mlflow models serve` (installed into
# bench/.venv-mlflow by this script) and with a bare axum endpoint that only parses the JSON
# (the machine's HTTP+JSON ceiling), loads each with wrk at 1, 8 and 64 connections for
# $SECONDS_PER_RUN seconds, and prints throughput, p50/p99, start-up time, memory and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECONDS_PER_RUN:-10}
command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
if [[ ! -x bench/.venv-mlflow/bin/mlflow ]]; then
  python3 -m venv bench/.venv-mlflow
  bench/.venv-mlflow/bin/pip install -q "mlflow==3.17.2" "scikit-learn==1.9.0" "numpy==2.4.6" "pandas==3.1.1" "scipy==1.17.1" cloudpickle
fi
cargo build -q --release -p mlship
cargo build -q --release -p mlship-server --example bare
MODEL=fixtures/corpus/random_forest_classifier
BODY='{"dataframe_split": {"columns": ["f0","f1","f2","f3","f4","f5","f6","f7"], "data": [[0.5,-1.0,2.0,0.3,-0.7,1.5,0.0,4.0]]}}'
LUA=$(mktemp --suffix .lua)
cat >"$LUA" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
LUA
now() { date +%s.%N; }
wait_up() { for _ in $(seq 1 1800); do curl -sf -o /dev/null -X POST "http://127.0.0.1:$1/invocations" -H 'Content-Type: application/json' -d "$BODY" && return 0; sleep 0.05; done; return 1; }
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$1/status" 2>/dev/null || echo "?"; }
declare -A RPS P50 P99
run() { # name port
  for c in 1 8 64; do
    local t=$([[ $c == 1 ]] && echo 1 || echo 2)
    out=$(wrk -t"$t" -c"$c" -d"${SECS}s" --latency -s "$LUA" "http://127.0.0.1:$2/invocations")
    RPS[$1,$c]=$(awk '/Requests\/sec/ {print int($2)}' <<<"$out")
    P50[$1,$c]=$(awk '$1=="50%" {print $2}' <<<"$out")
    P99[$1,$c]=$(awk '$1=="99%" {print $2}' <<<"$out")
  done
}
start=$(now); target/release/mlship serve fraud="$MODEL/model.pkl" --port 18081 >/dev/null 2>&1 & ML=$!; wait_up 18081; ML_START=$(echo "$(now) - $start" | bc); ML_RSS=$(rss $ML)
run mlship 18081; kill $ML
target/release/examples/bare 18082 >/dev/null & BARE=$!; wait_up 18082
run bare 18082; kill $BARE
start=$(now); PATH="$PWD/bench/.venv-mlflow/bin:$PATH" bench/.venv-mlflow/bin/mlflow models serve -m "$MODEL/mlflow_model_cloudpickle" --env-manager local -p 18083 -w 2 >/dev/null 2>&1 & MF=$!; wait_up 18083; MF_START=$(echo "$(now) - $start" | bc)
MF_RSS=$(ps -o rss= --ppid $MF --pid $MF | awk '{s+=$1} END {print int(s/1024)}')
run mlflow 18083; pkill -P $MF || true; kill $MF || true
printf '%-7s %-6s %12s %10s %10s\n' conns server req/s p50 p99
for c in 1 8 64; do for s in mlship mlflow bare; do printf '%-7s %-6s %12s %10s %10s\n' "$c" "$s" "${RPS[$s,$c]}" "${P50[$s,$c]}" "${P99[$s,$c]}"; done; done
for c in 1 8 64; do
  echo "c=$c: mlship/mlflow = $(echo "scale=0; ${RPS[mlship,$c]} / ${RPS[mlflow,$c]}" | bc)x, mlship/bare = $(echo "scale=2; ${RPS[mlship,$c]} / ${RPS[bare,$c]}" | bc)"
done
echo "start-up until the first answer: mlship ${ML_START}s, mlflow ${MF_START}s; resident memory after start: mlship ${ML_RSS} MiB, mlflow ${MF_RSS} MiB"
rm -f "$LUA"
