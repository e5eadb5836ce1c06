#!/usr/bin/env bash
# Runs every fuzz target (fuzz/Cargo.toml: load, onnx, pmml, unpickle) for SECONDS each (default
# 300), two at a time, each seeded with the fixtures of its format, and prints per target the
# runs made, the coverage reached and whether anything crashed. Not part of CI.
#
# The toolchain here is stable, so this builds what `cargo fuzz` builds without its nightly-only
# address sanitizer: libFuzzer with SanitizerCoverage (stable `-C passes`/`-C llvm-args` flags),
# debug assertions and overflow checks on. A crash leaves its input in fuzz/artifacts/TARGET/.
#
#   bench/fuzz.sh          # 5 minutes per target
#   SECONDS_EACH=30 bench/fuzz.sh load pmml
set -euo pipefail
cd "$(dirname "$0")/.."
each=${SECONDS_EACH:-300}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(load onnx pmml unpickle)

export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# An explicit target keeps the flags off build scripts and proc macros, as `cargo fuzz` does.
triple=$(rustc -vV | sed -n 's/^host: //p')
target_dir=fuzz/target/stable
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target-dir "$target_dir" \
    --target "$triple" --bins 2>&1 | tail -1
bin=$target_dir/$triple/release

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seed() { # target, then the file name patterns of its format
    local t=$1
    shift
    mkdir -p "$work/$t"
    for p in "$@"; do
        find fixtures -name "$p" -size -2M -exec cp {} "$work/$t/" \; 2>/dev/null || true
    done
}
run() {
    local t=$1
    case $t in
    load) seed "$t" '*.pkl' '*.joblib' '*.skops' '*.pmml' '*.onnx' '*.json' '*.txt' '*.ubj' ;;
    onnx) seed "$t" '*.onnx' ;;
    pmml) seed "$t" '*.pmml' ;;
    unpickle) seed "$t" '*.pkl' '*.joblib' ;;
    esac
    mkdir -p "fuzz/artifacts/$t"
    "$bin/$t" "$work/$t" -max_total_time="$each" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$work/$t.log" 2>&1
    local rc=$?
    local runs cov
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -1 | grep -o '[0-9]*' || echo '?')
    if [ $rc -eq 0 ]; then
        printf '%-9s %4ss  %10s runs  coverage %6s  no crash\n' "$t" "$each" "$runs" "$cov"
    else
        printf '%-9s CRASHED (exit %s); input in fuzz/artifacts/%s/\n' "$t" "$rc" "$t"
        grep -m5 -E 'panicked|ERROR' "$work/$t.log" || true
        return 1
    fi
}

status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pids=()
    for t in "${targets[@]:i:2}"; do
        run "$t" >"$work/$t.out" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || status=1; done
    for t in "${targets[@]:i:2}"; do cat "$work/$t.out"; done
done
exit $status
