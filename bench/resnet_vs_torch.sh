#!/usr/bin/env bash
# Inference of the `cnn` family's resnet18 preset (torchvision's layout and names) at 64x64 and
# 224x224, batch 8, on the same random weights: Kiln (bench/cnn_forward.cpp) vs python3-torch's
# torchvision resnet18 loading Kiln's safetensors, same threads, best of ROUNDS, two interleaved passes.
# ONNX Runtime (npm onnxruntime-node@1.30.0) runs too once `kiln export` writes the cnn family
# (cnn_forward writes OUT/model.onnx then; until then the ORT column says why it is missing).
# Usage: bench/resnet_vs_torch.sh [build dir] [threads] [rounds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD="${1:-build}"
THREADS="${2:-2}"
ROUNDS="${3:-10}"
CXX="${CXX:-g++}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
BIN="$BUILD/bench/cnn_forward"
mkdir -p "$BUILD/bench"
if [[ ! -x $BIN || bench/cnn_forward.cpp -nt $BIN || $BUILD/src/nn/libkiln_nn.a -nt $BIN ]]; then
  echo "compiling bench/cnn_forward.cpp ..." >&2
  "$CXX" -std=c++17 -O2 -DNDEBUG -Iinclude -I/usr/include/torch/csrc/api/include bench/cnn_forward.cpp \
    "$BUILD/src/export/libkiln_export.a" "$BUILD/src/artifact/libkiln_artifact.a" "$BUILD/src/prep/libkiln_prep.a" \
    "$BUILD/src/text/libkiln_text.a" "$BUILD/src/data/libkiln_data.a" "$BUILD/src/nn/libkiln_nn.a" \
    "$BUILD/src/core/libkiln_core.a" -ltorch -ltorch_cpu -lc10 -lyaml-cpp -lpng -ljpeg -lutf8proc -pthread -o "$BIN"
fi
echo "load: $(uptime)"
echo "threads per system: $THREADS, batch 8, best of $ROUNDS"
ORT=""
if command -v node >/dev/null && [[ -f tests/golden/onnxruntime_node.sh ]]; then ORT=$(bash tests/golden/onnxruntime_node.sh 2>/dev/null || true); fi
printf '%-8s %14s %14s %14s %10s\n' size "kiln img/s" "torch img/s" "ORT img/s" kiln/torch
for size in 64 224; do
  mkdir -p "$OUT/$size"
  kiln_best=0 torch_best=0
  for pass in 1 2; do  # interleaved under a changing load: each system keeps its better pass
    kiln=$("$BUILD/kiln-env" "$BIN" "$THREADS" resnet18 "$size" "$OUT/$size" 8 "$ROUNDS" 2>"$OUT/$size/kiln.err")
    kiln_best=$(/usr/bin/python3 -c "import json,sys; print(max(float(sys.argv[1]), json.loads(sys.argv[2])['images_per_second']))" "$kiln_best" "$kiln")
    torch=$(/usr/bin/python3 - "$OUT/$size" "$THREADS" "$size" "$ROUNDS" <<'PY'
import json, struct, sys, time
import torch, torchvision
d, threads, size, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
raw = open(f"{d}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]; header = json.loads(raw[8:8 + n]); base = 8 + n
state = {k: torch.frombuffer(bytearray(raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]]), dtype=torch.float32).reshape(v["shape"])
         for k, v in header.items() if k != "__metadata__"}
m = torchvision.models.resnet18(num_classes=10)
missing, unexpected = m.load_state_dict(state, strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
m.eval()
x = torch.randn(8, 3, size, size)
best = 0.0
with torch.inference_mode():
    m(x)
    for _ in range(rounds):
        t0 = time.perf_counter(); m(x); best = max(best, 8 / (time.perf_counter() - t0))
print(best)
PY
)
    torch_best=$(/usr/bin/python3 -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$torch_best" "$torch")
  done
  ort="-"
  if [[ ! -s $OUT/$size/model.onnx ]]; then ort="(no export)"
  elif [[ -z $ORT ]]; then ort="(no ORT)"
  else
    ort=$(node bench/lib/ort_bench.js "$ORT" "$OUT/$size/model.onnx" "$OUT/$size/inputs.json" "$THREADS" ort-fp32 "$ROUNDS" 1 \
      | /usr/bin/python3 -c "import json,sys; print('%.1f' % json.loads(sys.stdin.readline())['throughput'])" || echo "(ORT failed)")
  fi
  /usr/bin/python3 - "$size" "$kiln_best" "$torch_best" "$ort" <<'PY'
import json, sys
size, kiln, torch_, ort = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"{size + 'x' + size:8} {kiln:14.1f} {torch_:14.1f} {ort:>14} {kiln / torch_:9.2f}x")
PY
done
