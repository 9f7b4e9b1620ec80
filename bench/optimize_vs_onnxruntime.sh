#!/usr/bin/env bash
# kiln optimize's int8 against ONNX Runtime on the same weights, side by side in one run:
#   kiln-fp32   Kiln's forward (op by op, through build/kiln-env: Kiln's OpenBLAS core and OpenMP policy)
#   kiln-int8   the same model with kiln optimize's dynamic int8 Linear kernels (LibTorch's quantized
#               engine: onednn in Debian's LibTorch 1.13), weights int8 per output channel
#   ort-fp32    ONNX Runtime 1.30 (npm onnxruntime-node) on kiln export's ONNX graph of those weights
#   ort-int8    ONNX Runtime on that graph with each weight MatMul replaced by com.microsoft
#               DynamicQuantizeMatMul (int8 symmetric weights, one scale per tensor, bias folded in;
#               bench/lib/ort_quantize.py, python3-onnx) — how the issue's anchors were made
#   kiln-bf16   (CPUs with bf16; bert and mlp only with KILN_BENCH_BF16=1) kiln optimize --bf16's kernels: bf16 weights, LibTorch bf16 linear; cnn: folded bf16 convolutions
#   kiln-fused  (cnn) BatchNorm folded into the convolutions, ReLU fused, fp32 (kiln optimize's conv_bn_fp32)
#   kiln-int8   (cnn) the folded convolutions in int8: per-channel weights, activations calibrated
#               (entropy) on random images, ReLU fused into quantized::conv2d_relu, the quint8 output
#               handed to the next convolution as it is
# Models (random weights): mlp (50000 sparse features, hidden 3 x 512; batch 32, latency batch 1;
# ONNX gets the dense [batch, 50000] input), bert-mini and bert-base (batch 8 x 128 tokens, latency
# batch 1 x 128), cnn:64 and cnn:224 (the resnet18 layout at 64x64 and 224x224, batch 8, latency
# batch 1; ONNX Runtime runs kiln export's graph, whose BatchNorms are folded too; no ort-int8 for cnn:
# DynamicQuantizeMatMul covers MatMul only, and ONNX Runtime's static QDQ quantizer is Python-only).
# THREADS threads each (default 2). Prints throughput (examples/s), batch-1 latency (ms) and ratios
# kiln-int8 / ort-int8, kiln-fp32 / ort-fp32, kiln-int8 / kiln-fp32 and kiln-fused / kiln-fp32.
#
# Usage: bench/optimize_vs_onnxruntime.sh   env: BUILD (default ./build), THREADS, ROUNDS (default 5),
#        LATENCY_ROUNDS (default 15), MODELS (default "mlp:512 bert:mini bert:base cnn:64 cnn:224"), CXX (default g++)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/optimize_forward.sh"
cd "$BENCH_ROOT"
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
LATENCY_ROUNDS=${LATENCY_ROUNDS:-15}
MODELS=${MODELS:-"mlp:512 bert:mini bert:base cnn:64 cnn:224"}
CXX=${CXX:-g++}
OUT="$BENCH_ROOT/bench/out/optimize_vs_onnxruntime"
mkdir -p "$OUT"
"$PY" -c 'import onnx' 2>/dev/null || die "$PY cannot import onnx (apt-get install -y --no-install-recommends python3-onnx)"
ORT=$(bash tests/golden/onnxruntime_node.sh) || die "onnxruntime-node@1.30.0 unavailable (npm registry?)"
BIN=$(build_optimize_forward "$OUT")

echo "load: $(uptime)"
echo "cpus: $(nproc), threads per system: $THREADS"
results="$OUT/results.jsonl"
: >"$results"
for spec in $MODELS; do
  family=${spec%%:*} size=${spec#*:}
  dir="$OUT/$family-$size"
  mkdir -p "$dir"
  "$BUILD/kiln-env" "$BIN" "$THREADS" "$family" "$size" "$dir" "$ROUNDS" "$LATENCY_ROUNDS" >"$dir/kiln.jsonl"
  [[ $family == cnn ]] || "$PY" bench/lib/ort_quantize.py "$dir/model.onnx" "$dir/model.int8.onnx"
  for pass in 1 2; do  # interleaved, each system keeps its better run
    if [[ $pass == 2 ]]; then "$BUILD/kiln-env" "$BIN" "$THREADS" "$family" "$size" "$dir" "$ROUNDS" "$LATENCY_ROUNDS" >>"$dir/kiln.jsonl"; fi
    node bench/lib/ort_bench.js "$ORT" "$dir/model.onnx" "$dir/inputs.json" "$THREADS" ort-fp32 "$ROUNDS" "$LATENCY_ROUNDS" >>"$dir/ort.jsonl"
    [[ $family == cnn ]] || node bench/lib/ort_bench.js "$ORT" "$dir/model.int8.onnx" "$dir/inputs.json" "$THREADS" ort-int8 "$ROUNDS" "$LATENCY_ROUNDS" >>"$dir/ort.jsonl"
  done
  "$PY" - "$family-$size" "$dir/kiln.jsonl" "$dir/ort.jsonl" <<'PY' | tee -a "$results"
import json, sys
best = {}
for f in sys.argv[2:]:
    for line in open(f):
        r = json.loads(line)
        b = best.setdefault(r["system"], {"throughput": 0, "latency_ms": float("inf")})
        b["throughput"] = max(b["throughput"], r["throughput"])
        b["latency_ms"] = min(b["latency_ms"], r["latency_ms"])
print(json.dumps({"model": sys.argv[1], **{k: v for k, v in sorted(best.items())}}))
PY
done
"$PY" - "$results" <<'PY'
import json, sys
print(f"\n{'model':<12} {'system':<10} {'examples/s':>11} {'batch-1 ms':>11}")
for line in open(sys.argv[1]):
    r = json.loads(line)
    for s in ("kiln-fp32", "kiln-fused", "kiln-int8", "kiln-bf16", "ort-fp32", "ort-int8"):
        if s in r:
            print(f"{r['model']:<12} {s:<10} {r[s]['throughput']:>11.1f} {r[s]['latency_ms']:>11.2f}")
    for a, b in (("kiln-int8", "ort-int8"), ("kiln-fp32", "ort-fp32"), ("kiln-int8", "kiln-fp32"),
                 ("kiln-fused", "kiln-fp32"), ("kiln-int8", "ort-fp32"), ("kiln-bf16", "kiln-fp32")):
        if a in r and b in r:
            print(f"{'':<12} {a} / {b}: throughput x{r[a]['throughput'] / r[b]['throughput']:.2f}, "
                  f"latency x{r[a]['latency_ms'] / r[b]['latency_ms']:.2f} (lower is better)")
PY
