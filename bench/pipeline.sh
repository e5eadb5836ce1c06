#!/usr/bin/env bash
# Times a no-op `mlship run` beside a no-op `dvc repro` (dvc 3.67.1, installed by .ci/dvc.sh) on
# the same 3-stage pipeline, in one run: medians of TURNS (default 10) of each, after both have
# run the pipeline once. Prints milliseconds and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash .ci/dvc.sh)"
cargo build -q --release -p mlship
M="$PWD/target/release/mlship"
TURNS=${TURNS:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tool in mlship dvc; do
  d="$work/$tool"
  mkdir -p "$d/data"
  (cd "$d" && git init -q)
  printf 'x,y\n1,2\n3,4\n5,6\n7,8\n9,10\n' > "$d/data/raw.csv"
  printf 'prepare:\n  split: 0.8\ntrain:\n  lr: 0.1\nevaluate:\n  threshold: 0.5\n' > "$d/params.yaml"
  cat > "$d/dvc.yaml" <<'YAML'
stages:
  prepare:
    cmd: mkdir -p data/prepared && head -n 4 data/raw.csv > data/prepared/train.csv && tail -n 2 data/raw.csv > data/prepared/test.csv
    deps: [data/raw.csv]
    params: [prepare.split]
    outs: [data/prepared]
  train:
    cmd: cat params.yaml data/prepared/train.csv > model.json
    deps: [data/prepared]
    params: [train]
    outs: [model.json]
  evaluate:
    cmd: wc -l < data/prepared/test.csv > metrics.json
    deps: [model.json, data/prepared/test.csv]
    params: [evaluate.threshold]
    metrics:
    - metrics.json:
        cache: false
YAML
done
(cd "$work/mlship" && "$M" data init >/dev/null && "$M" run >/dev/null)
(cd "$work/dvc" && DVC_NO_ANALYTICS=1 "$MLSHIP_TEST_DVC" init -q && DVC_NO_ANALYTICS=1 "$MLSHIP_TEST_DVC" repro -q >/dev/null)
exec python3 - "$work" "$M" "$MLSHIP_TEST_DVC" "$TURNS" <<'PY'
import os, statistics, subprocess, sys, time
work, mlship, dvc, turns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
def med(cmd, cwd):
    ts = []
    for _ in range(turns):
        t = time.perf_counter()
        out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout
        ts.append((time.perf_counter() - t) * 1000)
        assert "Running stage" not in out, out
    return statistics.median(ts)
m = med([mlship, "run"], os.path.join(work, "mlship"))
d = med([dvc, "repro"], os.path.join(work, "dvc"))
print(f"no-op run of a 3-stage pipeline: mlship {m:.1f} ms, dvc repro {d:.1f} ms, {d / m:.0f}x (medians of {turns})")
PY
