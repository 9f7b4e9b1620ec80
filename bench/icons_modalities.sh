#!/usr/bin/env bash
# Text-only vs image-only vs text+image models on `kiln data fetch icons` (Debian's Oxygen icons:
# text = icon name, label = context folder), same split, 3 seeds: test macro-F1 mean ± std.
#   text      --model linear        (TF-IDF words + bigrams, the recommended text model)
#   image     --model cnn           (the small ResNet-style CNN, 64x64 RGB)
#   concat    multimodal, fusion concat           [TF-IDF bag ; mean of the CNN's patches]
#   xattn     multimodal, fusion cross_attention  (the text vector attends over the CNN's patch grid)
#   xattn4    multimodal, fusion cross_attention with 4 heads (multi-head, residual + LayerNorm)
# The multimodal models train at the multimodal preset's rate (3e-3, chosen on this split's validation
# rows: see src/train/run_config.cpp) with AdamW, weight decay 0.01, warmup + cosine.
# The split (test 20%, val 10%) is fixed (seed 1); the seeds change init, shuffling and augmentation.
# Epochs are chosen per model on validation macro-F1 by early stopping (patience 5 of EPOCHS).
# IMAGE_SIZE (default 64, the icons' own size) resizes the images of the three image models.
# Usage: bench/icons_modalities.sh [path/to/kiln] [threads] [epochs] [seeds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KILN="${1:-build/kiln}"
THREADS="${2:-2}"
EPOCHS="${3:-30}"
SEEDS="${4:-1 2 3}"
IMAGE_SIZE="${IMAGE_SIZE:-64}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "machine load (uptime): $(uptime)"
csv="$("$KILN" -q data fetch icons)"
"$KILN" -q prepare --input "$csv" --image-col image --val-size 0.1 --test-size 0.2 --seed 1 --out "$tmp/prep" >/dev/null
for fusion in concat cross_attention cross_attention4; do
  heads=1; [[ $fusion == cross_attention4 ]] && heads=4
  cat >"$tmp/$fusion.yaml" <<YAML
data: {text_col: text, image_col: image}
featurizer:
  - {type: tfidf, ngram_range: [1, 2], min_df: 1, sublinear_tf: true}
  - {type: image}
model: {family: multimodal, params: {fusion: ${fusion%4}, heads: $heads}}
train:
  epochs: $EPOCHS
  batch_size: 32
  early_stopping_patience: 5
  optimizer: {kind: adamw, lr: 0.003, weight_decay: 0.01}
  schedule: {kind: warmup_cosine, warmup_ratio: 0.1}
YAML
done
common=(--train "$tmp/prep/train.csv" --val "$tmp/prep/val.csv" --epochs "$EPOCHS" --patience 5)
run() {  # run NAME SEED ARGS...
  local name="$1" seed="$2"; shift 2
  "$KILN" -q --threads "$THREADS" train "${common[@]}" --seed "$seed" "$@" --out "$tmp/$name-$seed" >"$tmp/$name-$seed.out" 2>&1 \
    || { tail -5 "$tmp/$name-$seed.out"; echo "error: $name seed $seed failed" >&2; exit 1; }
  "$KILN" -q evaluate "$tmp/$name-$seed/model" --data "$tmp/prep/test.csv" --json "$tmp/$name-$seed.json" >/dev/null
  /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['macro_f1'])" "$tmp/$name-$seed.json" >>"$tmp/$name.f1"
}
for seed in $SEEDS; do
  run text "$seed" --model linear --text-col text --image-col ''
  run image "$seed" --model cnn --text-col '' --image-col image --image-size "$IMAGE_SIZE"
  run concat "$seed" --config "$tmp/concat.yaml" --image-size "$IMAGE_SIZE"
  run xattn "$seed" --config "$tmp/cross_attention.yaml" --image-size "$IMAGE_SIZE"
  run xattn4 "$seed" --config "$tmp/cross_attention4.yaml" --image-size "$IMAGE_SIZE"
done
/usr/bin/python3 - "$tmp" "$(($(wc -l <"$tmp/prep/train.csv") - 1))" "$(($(wc -l <"$tmp/prep/test.csv") - 1))" <<'PY'
import statistics as st, sys
d, ntrain, ntest = sys.argv[1], sys.argv[2], sys.argv[3]
print(f"icons: {ntrain} training / {ntest} test icons; test macro-F1 over seeds (mean ± population std)")
res = {}
for name in ("text", "image", "concat", "xattn", "xattn4"):
    v = [float(x) for x in open(f"{d}/{name}.f1")]
    res[name] = v
    print(f"{name:8} {st.mean(v):.4f} ± {st.pstdev(v):.4f}   ({', '.join(f'{x:.4f}' for x in v)})")
best_single = max(st.mean(res["text"]), st.mean(res["image"]))
for name in ("concat", "xattn", "xattn4"):
    print(f"{name} - best single modality: {st.mean(res[name]) - best_single:+.4f}")
PY
