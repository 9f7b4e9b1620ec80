#!/usr/bin/env bash
# The flow's gradient-vanishing table, measured: each remedy (gradient clipping, residual
# connections, LayerNorm, weight initialisation) switched off one at a time from a model that has
# them all, and all four off, for a deep MLP (8 hidden layers of 256 over TF-IDF 5000) and for
# BERT-tiny (2 layers, hidden 128, from random init, WordPiece vocabulary learnt on the training
# texts), on a stratified sample of Brown (default 10,000 sentences; kiln prepare draws it, then
# splits it 70/10/20). Same seed, data, epochs and schedule for every arm; no early stopping.
#
#   remedy         on                                   off
#   clipping       train.grad_clip 1.0                  0
#   residual       mlp residual: true | bert residual_scale 1     false | 0 (no skip connections)
#   layernorm      mlp layer_norm: true | bert layer_norm: true   false (every LayerNorm removed)
#   init           mlp kaiming | bert init: bert (normal 0.02)    mlp normal(0, 0.02) | bert init: torch (LibTorch defaults)
#
# Printed per arm: test macro-F1 (the delta "full - arm" is what the remedy bought), seconds, and
# the per-layer gradient norms the trainer logs (metrics.jsonl layer_grad_norms, before clipping),
# averaged over the last epoch's logged steps, grouped by layer (first = the input embedding, last
# = the output head), with first/last: a vanishing gradient shows as a small ratio.
#
# Usage: bench/gradient_remedies.sh [--epochs N (3)] [--bert-epochs N (= --epochs)] [--sample N (10000)]
#                                   [--models mlp,bert] [--max-length N (64)] [--out DIR]
# Environment: KILN (default ./build/kiln), THREADS (default 2), PY (default /usr/bin/python3).
# Scratch and results: --out DIR, default bench/out/gradient_remedies/ (table.txt, results.jsonl, logs, runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

EPOCHS=3
BERT_EPOCHS=
SAMPLE=10000
MODELS=mlp,bert
MAX_LENGTH=64
W=bench/out/gradient_remedies
while [[ $# -gt 0 ]]; do
  case $1 in
    --epochs) EPOCHS=${2:?--epochs needs a value}; shift 2 ;;
    --bert-epochs) BERT_EPOCHS=${2:?--bert-epochs needs a value}; shift 2 ;;
    --sample) SAMPLE=${2:?--sample needs a value}; shift 2 ;;
    --models) MODELS=${2:?--models needs a value}; shift 2 ;;
    --max-length) MAX_LENGTH=${2:?--max-length needs a value}; shift 2 ;;
    --out) W=${2:?--out needs a value}; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $EPOCHS =~ ^[1-9][0-9]*$ ]] || die "--epochs must be a whole number >= 1, got '$EPOCHS'"
BERT_EPOCHS=${BERT_EPOCHS:-$EPOCHS}
[[ $BERT_EPOCHS =~ ^[1-9][0-9]*$ ]] || die "--bert-epochs must be a whole number >= 1, got '$BERT_EPOCHS'"
[[ $SAMPLE =~ ^[1-9][0-9]*$ ]] || die "--sample must be a whole number >= 1, got '$SAMPLE'"
for m in ${MODELS//,/ }; do [[ $m == mlp || $m == bert ]] || die "--models lists mlp and/or bert (comma-separated), got '$MODELS'"; done
require_kiln
require_python

cd "$BENCH_ROOT"
rm -rf "$W"; mkdir -p "$W"
echo "== machine: $(nproc) cores, load: $(uptime | sed 's/.*load average: //'); kiln: $KILN"
csv=$(fetch_dataset brown)
# The stratified sample is kiln prepare's test split of SAMPLE rows; then the usual 70/10/20 split.
"$KILN" -q prepare --input "$csv" --out "$W/sample" --test-size "$SAMPLE" --seed 7 --on-bad-utf8 replace \
  --rare-classes train-only > "$W/sample.log" 2>&1 || { cat "$W/sample.log" >&2; die "kiln prepare (sample) failed"; }
split_dataset "$W/sample/test.csv" "$W/split"
train="$W/split/train.csv"; val="$W/split/val.csv"; test="$W/split/test.csv"
echo "== brown sample: $(count_rows "$train") train, $(count_rows "$val") val, $(count_rows "$test") test rows"

# config FAMILY CLIP RESIDUAL LAYERNORM INIT -> a run config on stdout (INIT: on | off).
config() {
  local family=$1 clip=$2 residual=$3 ln=$4 init=$5
  if [[ $family == mlp ]]; then
    local init_name=kaiming; [[ $init == off ]] && init_name=normal
    cat <<YAML
featurizer: {type: tfidf, max_features: 5000}
model:
  family: mlp
  params: {hidden: [256, 256, 256, 256, 256, 256, 256, 256], activation: relu, dropout: 0.1,
           residual: $residual, layer_norm: $ln, init: $init_name}
train:
  epochs: $EPOCHS
  batch_size: 64
  seed: 42
  grad_clip: $clip
  early_stopping_patience: 0
  optimizer: {kind: adamw, lr: 0.001, weight_decay: 0.01}
  schedule: {kind: warmup_cosine, warmup_ratio: 0.1}
YAML
  else
    local scale=1.0 init_name=bert; [[ $residual == false ]] && scale=0; [[ $init == off ]] && init_name=torch
    cat <<YAML
featurizer: {type: wordpiece, max_length: $MAX_LENGTH, vocab_size: 8000}
model:
  family: bert
  params: {preset: tiny, residual_scale: $scale, layer_norm: $ln, init: $init_name}
train:
  epochs: $BERT_EPOCHS
  batch_size: 32
  seed: 42
  grad_clip: $clip
  early_stopping_patience: 0
  optimizer: {kind: adamw, lr: 0.0003, weight_decay: 0.01}
  schedule: {kind: warmup_cosine, warmup_ratio: 0.1}
YAML
  fi
}

arm() {  # arm FAMILY NAME CLIP RESIDUAL LAYERNORM INIT
  local family=$1 name=$2 dir="$W/$1-$2" t
  config "$family" "$3" "$4" "$5" "$6" > "$W/$family-$name.yaml"
  if ! timed t "$KILN" --threads "$THREADS" train --config "$W/$family-$name.yaml" --train "$train" --val "$val" \
      --calibrate none --out "$dir" > "$dir.train.log" 2>&1; then
    # A diverged arm is a result too (the remedy was needed): record it as failed.
    echo "   $family $name: training failed: $(grep -m1 'error' "$dir.train.log" || tail -n 1 "$dir.train.log")" >&2
    record "$W/results.jsonl" '{"failed": true}' family="$family" arm="$name" seconds="$t" run="$dir"
    return
  fi
  "$KILN" --threads "$THREADS" -q predict "$dir/model" --input "$test" --format csv > "$dir.pred.jsonl" ||
    die "predicting with $family $name failed"
  score=$("$PY" "$LIB/metrics.py" score "$test" "$dir.pred.jsonl" kiln "$train")
  record "$W/results.jsonl" "$score" family="$family" arm="$name" seconds="$t" run="$dir"
  echo "   $family $name: trained in $t s" >&2
}

for family in ${MODELS//,/ }; do
  echo "== $family: 6 arms"
  arm "$family" full 1.0 true true on
  arm "$family" no_clipping 0 true true on
  arm "$family" no_residual 1.0 false true on
  arm "$family" no_layernorm 1.0 true false on
  arm "$family" no_init 1.0 true true off
  arm "$family" none 0 false false off
done
echo "== load after: $(uptime | sed 's/.*load average: //')"
"$PY" "$LIB/gradient_table.py" "$W/results.jsonl" | tee "$W/table.txt"
