#!/usr/bin/env bash
# Kiln's BERT training step vs Debian's python3-torch running the reference BERT of
# tests/golden/make_bert_golden.py: the same model size (PRESET, default mini: 4 layers, hidden 256,
# vocab 30522), batch (BATCH x SEQ, default 32 x 128), dropout 0, THREADS threads (default 2). One
# step = forward, cross-entropy, backward, clipping at norm 1, AdamW with weight decay off biases and
# LayerNorm weights; median of ROUNDS steps after two warm-up steps; peak RSS of the process.
#
# Systems (side by side, each run twice interleaved, keeping its better run):
#   kiln            bench/bert_train_step.cpp through build/kiln-env (Kiln's OpenBLAS core choice and
#                   OMP_WAIT_POLICY=PASSIVE, as `kiln train` runs)
#   torch-default   python3-torch as installed
#   torch-kiln-env  python3-torch started through build/kiln-env (the best-configured python3-torch
#                   on these CPUs in bench/bert_vs_torch.sh)
# and prints the step-time ratio best python3-torch / kiln (> 1: Kiln is faster) and the memory ratio.
#
# Usage: bench/bert_train_vs_torch.sh   env: BUILD (default ./build), THREADS, PY, CXX, PRESET, BATCH, SEQ, ROUNDS
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$BENCH_ROOT"
BUILD=${BUILD:-build}
PRESET=${PRESET:-mini}
BATCH=${BATCH:-32}
SEQ=${SEQ:-128}
ROUNDS=${ROUNDS:-5}
CXX=${CXX:-g++}
OUT="$BENCH_ROOT/bench/out/bert_train_vs_torch"
mkdir -p "$OUT"
[[ -x $PY ]] || die "$PY not found (apt-get install -y --no-install-recommends python3)"
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch (apt-get install -y --no-install-recommends python3-torch)"
for lib in "$BUILD/src/train/libkiln_train.a" "$BUILD/src/nn/libkiln_nn.a" "$BUILD/src/core/libkiln_core.a" "$BUILD/kiln-env"; do
  [[ -e $lib ]] || die "missing $lib; build it: cmake --build $BUILD --target kiln_train kiln_nn kiln-env (or set BUILD)"
done
command -v "$CXX" >/dev/null || die "$CXX not found (set CXX)"

BIN="$OUT/bert_train_step"
if [[ ! -x $BIN || bench/bert_train_step.cpp -nt $BIN || $BUILD/src/train/libkiln_train.a -nt $BIN || $BUILD/src/nn/libkiln_nn.a -nt $BIN ]]; then
  echo "compiling bench/bert_train_step.cpp ..." >&2
  "$CXX" -std=c++17 -O2 -DNDEBUG -Iinclude -I/usr/include/torch/csrc/api/include bench/bert_train_step.cpp \
    "$BUILD/src/train/libkiln_train.a" "$BUILD/src/nn/libkiln_nn.a" "$BUILD/src/core/libkiln_core.a" \
    -ltorch -ltorch_cpu -lc10 -lyaml-cpp -pthread -o "$BIN"
fi

echo "load: $(uptime)"
echo "cpus: $(nproc), threads per system: $THREADS, BERT-$PRESET, batch $BATCH x $SEQ"
results="$OUT/results.jsonl"
: >"$results"
args=("$PRESET" "$BATCH" "$SEQ" "$ROUNDS")
for pass in 1 2; do
  "$BUILD/kiln-env" "$BIN" "$THREADS" "${args[@]}" | tee -a "$results"
  env -u OPENBLAS_CORETYPE OMP_NUM_THREADS="$THREADS" "$PY" bench/lib/bert_train_torch.py "$THREADS" torch-default "${args[@]}" | tee -a "$results"
  "$BUILD/kiln-env" "$PY" bench/lib/bert_train_torch.py "$THREADS" torch-kiln-env "${args[@]}" | tee -a "$results"
done
echo "load: $(uptime)"
"$PY" - "$results" <<'PY'
import json, sys
rows = {}
for r in map(json.loads, open(sys.argv[1])):
    best = rows.setdefault(r["system"], dict(r))
    best["step_ms"] = min(best["step_ms"], r["step_ms"])
    best["peak_rss_mib"] = min(best["peak_rss_mib"], r["peak_rss_mib"])
for r in rows.values():
    print(f"{r['system']:15s} {r['step_ms']:9.1f} ms/step   peak RSS {r['peak_rss_mib']:6.0f} MiB")
kiln = rows["kiln"]
best = min((rows[k] for k in ("torch-default", "torch-kiln-env")), key=lambda r: r["step_ms"])
print(f"step-time ratio {best['system']} / kiln: {best['step_ms'] / kiln['step_ms']:.2f}x (> 1: kiln faster); "
      f"peak memory kiln / {best['system']}: {kiln['peak_rss_mib'] / best['peak_rss_mib']:.2f}x")
PY
