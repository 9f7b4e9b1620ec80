#!/usr/bin/env bash
# The flow's before/after table (throughput, latency, memory, size, accuracy) reproduced with
# kiln optimize for each family, on small synthetic data trained here (one run, THREADS threads):
#   mlp (bag of features, the default model) int8 dynamic (every layer: --min-int8-weights 0) and the
#     default refusal; artifact and weight-file sizes
#   bert (preset tiny, max length 32) int8 dynamic (every layer) and bf16 (CPUs with bf16)
#   cnn (preset small, 32x32 synthetic images) fused fp32 (default), int8 static and bf16 (CPUs with bf16)
#   multimodal (the same images with a text column that names the colour half of the time; bag text
#     side, small cnn trunk, cross-attention) int8 static (every layer) and bf16 (CPUs with bf16)
# Prints `uptime` before each table. Usage: bench/optimize_flow.sh   env: KILN (default ./build/kiln),
# BENCH_SECONDS (default 1)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
require_kiln
BENCH_SECONDS=${BENCH_SECONDS:-1}
OUT="$BENCH_ROOT/bench/out/optimize_flow"
rm -rf "$OUT"; mkdir -p "$OUT"
"$PY" - "$OUT" <<'PY'
import csv, os, random, struct, sys, zlib
random.seed(1)
out = sys.argv[1]
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for on with as by at from this that".split()
for name, n in (("train", 400), ("val", 100)):
    with open(f"{out}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = list(words)[i % 3]
            toks = random.sample(words[label], 3) + random.sample(common, 6)
            random.shuffle(toks); w.writerow([" ".join(toks), label])
def png(path, pixels, side):
    raw = b"".join(b"\0" + bytes(pixels[y * side * 3:(y + 1) * side * 3]) for y in range(side))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
side = 32
for label, (r, g, b) in {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}.items():
    os.makedirs(f"{out}/images/{label}", exist_ok=True)
    for i in range(80):
        px = []
        for _ in range(side * side):
            px += [max(0, min(255, c + random.randint(-60, 60))) for c in (r, g, b)]
        png(f"{out}/images/{label}/{i}.png", px, side)
PY
table() { echo; echo "== $1 (load: $(uptime))"; shift; "$KILN" optimize "$@" --bench-seconds "$BENCH_SECONDS" 2>&1 | grep -v "^kiln: running"; }
size() { du -sb "$1" | cut -f1; }

"$KILN" -q train --train "$OUT/train.csv" --val "$OUT/val.csv" --model mlp --epochs 5 --out "$OUT/mlp" >/dev/null
table "mlp (default model), default flags: refused" "$OUT/mlp/model" --out "$OUT/mlp-default" || true
table "mlp (default model), int8 dynamic on every layer" "$OUT/mlp/model" --out "$OUT/mlp-int8" --min-int8-weights 0 \
  --json "$OUT/mlp-int8.json"
echo "sizes (bytes): artifact fp32 $(size "$OUT/mlp/model"), optimized artifact $(size "$OUT/mlp-int8")" \
  "(= fp32 + variants/int8.safetensors $(size "$OUT/mlp-int8/variants/int8.safetensors")), model.safetensors" \
  "$(size "$OUT/mlp/model/model.safetensors")"

"$KILN" -q train --model bert --preset tiny --max-length 32 --epochs 2 --batch-size 16 --train "$OUT/train.csv" \
  --val "$OUT/val.csv" --out "$OUT/bert" >/dev/null
table "bert tiny, int8 dynamic on every layer" "$OUT/bert/model" --out "$OUT/bert-int8" --min-int8-weights 0
if grep -qwE "avx512_bf16|amx_bf16" /proc/cpuinfo; then
  table "bert tiny, bf16" "$OUT/bert/model" --out "$OUT/bert-bf16" --bf16 || true
fi

"$KILN" -q prepare --input "$OUT/images" --val-size 0.2 --out "$OUT/prep" >/dev/null
# Absolute image paths: the artifact's held-out sample keeps the paths as given, and a relative one
# would be read against the artifact's directory later.
"$PY" - "$OUT/prep" <<'PY'
import csv, os, sys
for name in ("train.csv", "val.csv"):
    path = os.path.join(sys.argv[1], name)
    rows = list(csv.DictReader(open(path)))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0])); w.writeheader()
        for r in rows:
            r["image"] = os.path.abspath(os.path.join(sys.argv[1], r["image"])); w.writerow(r)
PY
"$KILN" -q train --train "$OUT/prep/train.csv" --val "$OUT/prep/val.csv" --model cnn --epochs 2 --out "$OUT/cnn" >/dev/null
table "cnn small, Conv+BN folded + ReLU fused (fp32)" "$OUT/cnn/model" --out "$OUT/cnn-fused"
table "cnn small, folded + int8 static convolutions" "$OUT/cnn/model" --out "$OUT/cnn-int8" --int8 static
if grep -qwE "avx512_bf16|amx_bf16" /proc/cpuinfo; then
  table "cnn small, folded bf16 convolutions" "$OUT/cnn/model" --out "$OUT/cnn-bf16" --bf16
fi

# multimodal: a text column that names the colour in half of the rows (the rest say nothing).
"$PY" - "$OUT/prep" <<'PY'
import csv, os, random, sys
random.seed(2)
for name in ("train.csv", "val.csv"):
    rows = list(csv.DictReader(open(os.path.join(sys.argv[1], name))))
    with open(os.path.join(sys.argv[1], "mm_" + name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "image", "label"]); w.writeheader()
        for r in rows:
            said = r["label"] if random.random() < 0.5 else random.choice(["picture", "image", "photo"])
            w.writerow({"text": f"a {said} square", "image": r["image"], "label": r["label"]})
PY
"$KILN" -q train --train "$OUT/prep/mm_train.csv" --val "$OUT/prep/mm_val.csv" --model multimodal --epochs 2 \
  --out "$OUT/mm" >/dev/null
table "multimodal (bag text, small cnn, cross-attention), int8 static on every layer" "$OUT/mm/model" \
  --out "$OUT/mm-int8" --int8 static --min-int8-weights 0
if grep -qwE "avx512_bf16|amx_bf16" /proc/cpuinfo; then
  table "multimodal, bf16" "$OUT/mm/model" --out "$OUT/mm-bf16" --bf16
fi
