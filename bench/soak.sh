#!/usr/bin/env bash
# Soaks `mlship serve` (release build): mixed traffic (MLflow, KServe V1, Open Inference Protocol)
# on 64 keep-alive connections for SOAK_SECONDS (default 1800), the production alias of the
# model under traffic flipped every 100 ms (each flip a hot reload in the server), a second model
# beside it, and a third that panics on every request (the `fault-injection` build, never a release
# one). Prints requests, unexpected answers per model, and the server's resident memory after
# warm-up and at the end. Python 3's standard library only.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p mlship --features fault-injection
exec python3 bench/soak.py target/release/mlship "${SOAK_SECONDS:-1800}"
