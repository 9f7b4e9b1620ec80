#!/usr/bin/env bash
# Data-parallel throughput on this machine: the same cores used as 2 processes x 1 thread
# (`kiln train --nproc 2 --threads 1`, Gloo all-reduce over loopback) or as 1 process x 2 threads
# (`--nproc 1 --threads 2`), for the bag model (embedbag on hashed word n-grams: row-sparse table
# gradients gathered, the output layer all-reduced) and BERT-mini (4 layers, hidden 256,
# bert-base-uncased's 30,522-token vocabulary: every gradient dense, ~11M parameters all-reduced per
# step). Both settings take the same steps (the global batch is split, see docs/training.md).
#
# Per system: training seconds (the artifact's training.train_seconds, rank 0), examples/s, and
# the exposed communication per step (metrics.jsonl's data_parallel record: time rank 0 waited for
# the reductions after its backward, and within it for a row-sparse table's row ids, i.e. what
# bucketed overlap did not hide). Each setting runs
# ROUNDS times interleaved, keeping its best. Prints the ratio 2x1 / 1x2 of examples/s
# (> 1: two processes are faster).
#
# Usage: bench/dist_throughput.sh   env: KILN, ROUNDS (2), BAG_EPOCHS (2), BERT_ROWS (1500), BATCH (64)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
require_kiln
ROUNDS=${ROUNDS:-2}
BAG_EPOCHS=${BAG_EPOCHS:-2}
BERT_ROWS=${BERT_ROWS:-1500}
BATCH=${BATCH:-64}
OUT="$BENCH_ROOT/bench/out/dist_throughput"
mkdir -p "$OUT"
[[ -x $PY ]] || die "$PY not found (apt-get install -y --no-install-recommends python3)"

csv=$(fetch_dataset fortunes)
split_dataset "$csv" "$OUT/split"
vocab_dir=$("$KILN" -q data fetch bert-base-uncased-vocab | tail -n 1)
[[ -f $vocab_dir/vocab.txt ]] || vocab_dir=$(dirname "$vocab_dir")
"$PY" - "$OUT/split/train.csv" "$OUT/bert_train.csv" "$BERT_ROWS" << 'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
with open(sys.argv[2], "w", newline="") as f:
    csv.writer(f).writerows(rows[: int(sys.argv[3]) + 1])
PY

cat > "$OUT/bag.yaml" << EOF
featurizer: {type: hashed_ngrams, ngram_range: [1, 2], buckets: 262144}
model: {family: embedbag, params: {dim: 100, pooling: mean}}
train: {epochs: $BAG_EPOCHS, batch_size: $BATCH, optimizer: {kind: adamw, lr: 0.01}, calibrate: none}
EOF
cat > "$OUT/bert.yaml" << EOF
featurizer: {type: wordpiece, vocab: $vocab_dir/vocab.txt, max_length: 64}
model: {family: bert, params: {preset: mini}}
train: {epochs: 1, batch_size: 32, optimizer: {kind: adamw, lr: 0.0001}, calibrate: none}
EOF

# run MODEL NPROC THREADS ROUND -> prints "seconds examples_per_s comm_ms_per_step"
run() {
  local model=$1 nproc=$2 threads=$3 round=$4 data
  data=$OUT/split/train.csv
  [[ $model == bert ]] && data=$OUT/bert_train.csv
  local dir="$OUT/run-$model-$nproc-$threads-$round"
  rm -rf "$dir"
  "$KILN" -q --threads "$threads" train --train "$data" --config "$OUT/$model.yaml" --nproc "$nproc" \
    --out "$dir" > "$dir.log" 2>&1 || { cat "$dir.log" >&2; die "kiln train ($model, --nproc $nproc) failed"; }
  "$PY" - "$dir" << 'PY'
import json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/model/kiln.json"))["training"]
secs, rows, epochs = m["train_seconds"], m["train_rows"], m["epochs_run"]
comm = [json.loads(l) for l in open(f"{d}/metrics.jsonl") if '"data_parallel"' in l]
per_step = 1000 * comm[-1]["exposed_comm_seconds"] / max(1, comm[-1]["steps"]) if comm else 0.0
print(f"{secs:.2f} {rows * epochs / secs:.1f} {per_step:.2f}")
PY
}

echo "load before: $(uptime)"
printf '%-6s %-22s %10s %12s %18s\n' model setting train_s examples/s "exposed comm ms/step"
for model in bag bert; do
  best1="" best2=""
  for round in $(seq "$ROUNDS"); do
    r1=$(run "$model" 1 2 "$round")
    r2=$(run "$model" 2 1 "$round")
    [[ -z $best1 || $(awk -v a="$r1" -v b="$best1" 'BEGIN { split(a, x, " "); split(b, y, " "); print (x[2] > y[2]) }') == 1 ]] && best1=$r1
    [[ -z $best2 || $(awk -v a="$r2" -v b="$best2" 'BEGIN { split(a, x, " "); split(b, y, " "); print (x[2] > y[2]) }') == 1 ]] && best2=$r2
  done
  read -r s1 e1 c1 <<< "$best1"
  read -r s2 e2 c2 <<< "$best2"
  printf '%-6s %-22s %10s %12s %18s\n' "$model" "--nproc 1 --threads 2" "$s1" "$e1" "-"
  printf '%-6s %-22s %10s %12s %18s\n' "$model" "--nproc 2 --threads 1" "$s2" "$e2" "$c2"
  awk -v a="$e2" -v b="$e1" -v m="$model" 'BEGIN { printf "%-6s ratio examples/s (2x1 / 1x2): %.2f\n", m, a / b }'
done
echo "load after: $(uptime)"
