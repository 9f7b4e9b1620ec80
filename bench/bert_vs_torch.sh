#!/usr/bin/env bash
# Kiln's BERT forward vs Debian's python3-torch running the reference BERT of
# tests/golden/make_bert_golden.py (the model Kiln's parity test checks against), both at BERT-base
# size with random weights, eval mode, THREADS threads (default 2): throughput (sequences/s, batch 8
# x 128 tokens, best of 5) and latency (ms, batch 1 x 128 tokens, median of 15).
#
# Systems (all in one run, side by side):
#   kiln            bench/bert_forward.cpp run through build/kiln-env, which sets the OpenBLAS kernel
#                   core Kiln picks for this CPU and OMP_WAIT_POLICY=PASSIVE, as `kiln` does (op by op,
#                   Kiln's default)
#   kiln-fused      the same through LibTorch's fused encoder-layer kernel (set_fused_inference)
#   torch-default   python3-torch as installed (OpenBLAS picks its own kernels)
#   torch-skylakex  python3-torch with OPENBLAS_CORETYPE=SkylakeX
#   torch-kiln-env  python3-torch started through build/kiln-env: the very environment Kiln runs in
#                   (its OpenBLAS core and OMP_WAIT_POLICY=PASSIVE, which spares python3-torch's OpenMP
#                   threads from spinning against a loaded machine)
# and prints kiln / the best python3-torch configuration.
#
# Usage: bench/bert_vs_torch.sh    env: BUILD (default ./build), THREADS, PY, CXX (default g++),
#                                       ROUNDS (batch-8 timings, default 5), LATENCY_ROUNDS (default 15)
# Each system runs twice, interleaved (kiln, torch, torch, kiln, ...), and keeps its better run, so
# that load from other processes hits all systems alike; still, check the printed load.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$BENCH_ROOT"
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
LATENCY_ROUNDS=${LATENCY_ROUNDS:-15}
CXX=${CXX:-g++}
OUT="$BENCH_ROOT/bench/out/bert_vs_torch"
mkdir -p "$OUT"
[[ -x $PY ]] || die "$PY not found (apt-get install -y --no-install-recommends python3)"
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch (apt-get install -y --no-install-recommends python3-torch)"
for lib in "$BUILD/src/nn/libkiln_nn.a" "$BUILD/src/core/libkiln_core.a" "$BUILD/kiln-env"; do
  [[ -e $lib ]] || die "missing $lib; build it: cmake --build $BUILD --target kiln_nn kiln-env (or set BUILD)"
done
command -v "$CXX" >/dev/null || die "$CXX not found (set CXX)"

BIN="$OUT/bert_forward"
if [[ ! -x $BIN || bench/bert_forward.cpp -nt $BIN || $BUILD/src/nn/libkiln_nn.a -nt $BIN ]]; then
  echo "compiling bench/bert_forward.cpp ..." >&2
  "$CXX" -std=c++17 -O2 -DNDEBUG -Iinclude -I/usr/include/torch/csrc/api/include bench/bert_forward.cpp \
    "$BUILD/src/nn/libkiln_nn.a" "$BUILD/src/core/libkiln_core.a" -ltorch -ltorch_cpu -lc10 -lyaml-cpp -pthread \
    -o "$BIN"
fi

echo "load: $(uptime)"
echo "cpus: $(nproc), threads per system: $THREADS"
results="$OUT/results.jsonl"
: >"$results"
run_kiln() { "$BUILD/kiln-env" "$BIN" "$THREADS" "$1" "$ROUNDS" "$LATENCY_ROUNDS"; }
run_torch() {  # LABEL [VAR=VALUE]
  local label=$1; shift
  env -u OPENBLAS_CORETYPE OMP_NUM_THREADS="$THREADS" "$@" "$PY" bench/lib/bert_torch.py "$THREADS" "$label" "$ROUNDS" "$LATENCY_ROUNDS"
}
for pass in 1 2; do
  run_kiln default | tee -a "$results"
  run_torch torch-default | tee -a "$results"
  run_torch torch-skylakex OPENBLAS_CORETYPE=SkylakeX | tee -a "$results"
  "$BUILD/kiln-env" "$PY" bench/lib/bert_torch.py "$THREADS" torch-kiln-env "$ROUNDS" "$LATENCY_ROUNDS" | tee -a "$results"
  run_kiln fused | tee -a "$results"
done
echo "kiln-env set: $("$BUILD/kiln-env" sh -c 'echo "$KILN_ENV_SET"')"
echo "load: $(uptime)"
"$PY" - "$results" <<'PY'
import json, sys
rows = {}
for r in map(json.loads, open(sys.argv[1])):  # each system's better pass
    best = rows.setdefault(r["system"], dict(r))
    best["throughput_seq_s"] = max(best["throughput_seq_s"], r["throughput_seq_s"])
    best["latency_ms"] = min(best["latency_ms"], r["latency_ms"])
for r in rows.values():
    print(f"{r['system']:15s} {r['throughput_seq_s']:8.2f} sequences/s   {r['latency_ms']:9.2f} ms")
kiln = rows["kiln"]
torches = [rows[k] for k in ("torch-default", "torch-skylakex", "torch-kiln-env")]
torch_best = max(torches, key=lambda r: r["throughput_seq_s"])
print(f"throughput ratio kiln / {torch_best['system']}: {kiln['throughput_seq_s'] / torch_best['throughput_seq_s']:.2f}x "
      f"({kiln['throughput_seq_s']} vs {torch_best['throughput_seq_s']} sequences/s, batch 8 x 128)")
lat_best = min(torches, key=lambda r: r["latency_ms"])
print(f"latency ratio {lat_best['system']} / kiln: {lat_best['latency_ms'] / kiln['latency_ms']:.2f}x "
      f"({kiln['latency_ms']} vs {lat_best['latency_ms']} ms, batch 1 x 128)")
PY
