#!/usr/bin/env bash
# Where dynamic int8 starts to pay for one Linear layer: Kiln fp32 vs Kiln's linear_int8_dynamic kernel
# (LibTorch's quantized engine) on a dense [batch, IN] input, batch 32 (throughput) and batch 1
# (latency), THREADS threads. kiln optimize's default --min-int8-weights (kMinInt8Weights in
# include/kiln/optimize/optimize.h) comes from this table: the smallest IN x OUT where int8 is not slower.
#
# Usage: bench/int8_threshold.sh   env: BUILD (default ./build), THREADS (default 2), ROUNDS (default 30),
#        LATENCY_ROUNDS (default 200), SIZES (default "256,4 256,64 256,256 512,128 512,512 768,768 1024,1024 2048,1024")
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/optimize_forward.sh"
cd "$BENCH_ROOT"
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-30}
LATENCY_ROUNDS=${LATENCY_ROUNDS:-200}
SIZES=${SIZES:-"256,4 256,64 256,256 512,128 512,512 768,768 1024,1024 2048,1024"}
OUT="$BENCH_ROOT/bench/out/int8_threshold"
mkdir -p "$OUT"
BIN=$(build_optimize_forward "$OUT")
echo "load: $(uptime)"
printf '%-12s %10s %12s %12s %14s %14s %10s\n' "in,out" weights "fp32 ex/s" "int8 ex/s" "fp32 b1 ms" "int8 b1 ms" "int8/fp32"
for size in $SIZES; do
  for pass in 1 2; do "$BUILD/kiln-env" "$BIN" "$THREADS" linear "$size" "$OUT" "$ROUNDS" "$LATENCY_ROUNDS"; done >"$OUT/run.jsonl"
  "$PY" - "$size" "$OUT/run.jsonl" <<'PY'
import json, sys
best = {}
for line in open(sys.argv[2]):
    r = json.loads(line)
    b = best.setdefault(r["system"], {"throughput": 0, "latency_ms": float("inf")})
    b["throughput"] = max(b["throughput"], r["throughput"]); b["latency_ms"] = min(b["latency_ms"], r["latency_ms"])
i, o = map(int, sys.argv[1].split(","))
f, q = best["kiln-fp32"], best["kiln-int8"]
print(f"{sys.argv[1]:<12} {i * o:>10} {f['throughput']:>12.0f} {q['throughput']:>12.0f} {f['latency_ms']:>14.4f} "
      f"{q['latency_ms']:>14.4f} {q['throughput'] / f['throughput']:>9.2f}x")
PY
done
