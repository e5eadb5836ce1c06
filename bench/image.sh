#!/usr/bin/env bash
# Size and build time of `mlship image build` for the corpus random forest, with the release
# binary: the median of 5 builds, and the sizes of the archive, its layers and the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p mlship -q
BIN=target/release/mlship
MODEL=fixtures/corpus/random_forest_classifier/model.pkl
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
ms=()
for _ in 1 2 3 4 5; do
  start=$(date +%s%N)
  "$BIN" image build "$MODEL" -t fraud:1 --name fraud -o "$OUT/fraud.tar" --format json > "$OUT/report.json"
  ms+=($(( ($(date +%s%N) - start) / 1000000 )))
done
median=$(printf '%s\n' "${ms[@]}" | sort -n | sed -n 3p)
python3 - "$OUT/report.json" "$BIN" "$MODEL" "$median" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
mib = lambda b: b / 1048576
print(f"image (archive):   {mib(r['size']):6.1f} MiB   digest {r['digest']}")
print(f"  runtime layer:   {mib(r['layer_sizes'][0]):6.1f} MiB (gzip)")
print(f"  model layer:     {mib(r['layer_sizes'][1]):6.3f} MiB (gzip)")
print(f"mlship binary:     {mib(os.path.getsize(sys.argv[2])):6.1f} MiB")
print(f"model file:        {mib(os.path.getsize(sys.argv[3])):6.3f} MiB")
print(f"build time:        {int(sys.argv[4]):6d} ms (median of 5)")
print(f"target < 30 MiB:   {'met' if r['size'] < 30 * 1048576 else 'MISSED'}")
PY
