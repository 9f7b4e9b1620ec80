#!/usr/bin/env bash
# Data-parallel training (kiln train --nproc, torchrun's environment): N processes take the same
# steps as one, for the bag model (SGD within 1e-6, AdamW within 1e-5) and BERT-tiny (SGD 1e-6,
# AdamW 1e-4), class weights on, and kiln pretrain (AdamW 1e-5); resume with another N,
# a killed rank stops the others with an error naming it, and every bad flag or variable says why.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 600 rows, imbalanced (sports 2x) so balanced class weights differ per class.
/usr/bin/python3 "$(dirname "$0")/../lib/topic_csv.py" "$tmp/train.csv" 600 3 5 sports || fail "python3 is needed to generate the test data"
# The largest absolute difference between two artifacts' weights (safetensors read with numpy).
cat >"$tmp/diff.py" <<'PY'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype={"F32": np.float32, "F64": np.float64, "I64": np.int64}[v["dtype"]])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), f"parameter names differ: {sorted(a)} vs {sorted(b)}"
print(max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a if a[k].size))
PY
# max |a - b| <= tol, or fail with the numbers.
close() {
  local d
  d="$(/usr/bin/python3 "$tmp/diff.py" "$1/model/model.safetensors" "$2/model/model.safetensors")"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('$d') <= float('$3') else 1)" || fail "$4: max |diff| $d > $3"
  echo "ok: $4: max |diff| $d <= $3"
}
far() {
  local d
  d="$(/usr/bin/python3 "$tmp/diff.py" "$1/model/model.safetensors" "$2/model/model.safetensors")"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('$d') > float('$3') else 1)" || fail "$4: max |diff| $d <= $3"
}

# The bag model (embedbag: row-sparse table gradients, dense output layer), balanced class weights.
# A global batch of 23 over 600 rows leaves a last batch of 2: with 3 processes one has no example.
cat >"$tmp/sgd.yaml" <<'EOF'
featurizer: {type: hashed_ngrams, ngram_range: [1, 2], buckets: 4096}
model: {family: embedbag, params: {dim: 16}}
train:
  epochs: 3
  batch_size: 23
  optimizer: {kind: sgd, lr: 0.5}
  calibrate: none
  loss: {class_weight: balanced}
EOF
sed 's/kind: sgd, lr: 0.5/kind: adamw, lr: 0.01/' "$tmp/sgd.yaml" >"$tmp/adamw.yaml"
sed 's/  epochs: 3/  epochs: 3\n  stop_after_epochs: 1/' "$tmp/sgd.yaml" >"$tmp/sgd_stop.yaml"
sed 's/  epochs: 3/  epochs: 1/' "$tmp/sgd.yaml" >"$tmp/sgd_1.yaml"
train() {  # train OUT CONFIG [flags...]
  local out="$1" cfg="$2"
  shift 2
  "$KILN" -q train --train "$tmp/train.csv" --config "$tmp/$cfg" --out "$tmp/$out" "$@" >"$tmp/$out.out" 2>"$tmp/$out.err" \
    || { cat "$tmp/$out.err"; fail "kiln train --out $out $* failed"; }
}

train one sgd.yaml
train one_epoch sgd_1.yaml
far "$tmp/one" "$tmp/one_epoch" 1e-3 "training moves the weights (3 epochs vs 1)"
train two sgd.yaml --nproc 2
close "$tmp/one" "$tmp/two" 1e-6 "SGD: 2 processes x 23/2 == 1 process x 23"
train three sgd.yaml --nproc 3
close "$tmp/one" "$tmp/three" 1e-6 "SGD: 3 processes (one idle in the last step) == 1 process"
train adamw_one adamw.yaml
train adamw_two adamw.yaml --nproc 2
close "$tmp/adamw_one" "$tmp/adamw_two" 1e-5 "AdamW: 2 processes == 1 process"

# BERT-tiny (dense gradients only; SGD in ~20 buckets of 50 KiB, AdamW in one; dropout off), WordPiece vocabulary learnt
# on the texts. AdamW's normalisation by sqrt(v) magnifies summation-order differences in tiny
# gradients: 1e-4 (the SGD run shows the gradients themselves agree to 1e-6).
cat >"$tmp/bert.yaml" <<'EOF'
featurizer: {type: wordpiece, vocab_size: 300, max_length: 32}
model:
  family: bert
  params: {preset: tiny, hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0, classifier_dropout: 0.0}
train:
  epochs: 1
  batch_size: 16
  optimizer: {kind: sgd, lr: 0.1}
  calibrate: none
  loss: {class_weight: balanced}
EOF
sed 's/kind: sgd, lr: 0.1/kind: adamw, lr: 0.001/' "$tmp/bert.yaml" >"$tmp/bert_adamw.yaml"
train bert_one bert.yaml
train bert_two bert.yaml --nproc 2 --bucket-mb 0.05
close "$tmp/bert_one" "$tmp/bert_two" 1e-6 "BERT-tiny SGD: 2 processes == 1 process"
train bert_adamw_one bert_adamw.yaml
train bert_adamw_two bert_adamw.yaml --nproc 2
close "$tmp/bert_adamw_one" "$tmp/bert_adamw_two" 1e-4 "BERT-tiny AdamW: 2 processes == 1 process"

# kiln pretrain --nproc: masked-LM batches are masked whole, then split; the loss weighs each part
# by its masked tokens. AdamW, 8 steps, dropout off: within 1e-5 of one process.
cut -d, -f1 "$tmp/train.csv" | tail -n +2 >"$tmp/corpus.txt"
vocab="$("$KILN" -q data fetch bert-base-uncased-vocab | tail -n 1)"
for n in 1 2; do
  "$KILN" -q pretrain --input "$tmp/corpus.txt" --vocab "$vocab" --preset tiny --seq-len 32 --steps 8 --batch-size 8 \
    --hidden-dropout 0 --attention-dropout 0 --nproc $n --out "$tmp/pretrain$n" >"$tmp/pretrain$n.out" 2>"$tmp/pretrain$n.err" \
    || { cat "$tmp/pretrain$n.err"; fail "kiln pretrain --nproc $n failed"; }
done
close "$tmp/pretrain1" "$tmp/pretrain2" 1e-5 "pretrain AdamW: 2 processes == 1 process"

# Rank 0 alone writes: one epoch record per epoch, the artifact, the data-parallel record.
test "$(grep -c '"type":"epoch"' "$tmp/two/metrics.jsonl")" = 3 || fail "metrics.jsonl should hold 3 epoch records (rank 0 only)"
grep -q '"type":"data_parallel"' "$tmp/two/metrics.jsonl" || fail "metrics.jsonl has no data_parallel record"
grep -q '"world_size":2' "$tmp/two/metrics.jsonl" || fail "the data_parallel record does not say world_size 2"
grep -q "artifact: $tmp/two/model" "$tmp/two.out" || fail "rank 0 did not print the artifact path"
grep -q "data-parallel: 2 processes" "$tmp/two.err" && fail "-q should silence the launcher's info line"

# Resume with another N: 1 epoch with 2 processes, the rest with 3, equals 3 epochs in one.
train resumed sgd_stop.yaml --nproc 2
train resumed sgd.yaml --nproc 3 --resume
close "$tmp/one" "$tmp/resumed" 1e-6 "resume: 2 processes then 3 == 1 process"

# torchrun's environment: two processes started by hand (as torchrun, Slurm or a job spec would).
port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
for r in 1 0; do
  env RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" \
    "$KILN" -q --threads 1 train --train "$tmp/train.csv" --config "$tmp/sgd.yaml" --out "$tmp/env" \
    >"$tmp/env$r.out" 2>"$tmp/env$r.err" &
  pids+=($!)
done
wait "${pids[0]}" || { cat "$tmp/env1.err"; fail "rank 1 under torchrun's variables failed"; }
wait "${pids[1]}" || { cat "$tmp/env0.err"; fail "rank 0 under torchrun's variables failed"; }
pids=()
close "$tmp/one" "$tmp/env" 1e-6 "torchrun environment: RANK/WORLD_SIZE/MASTER_* == 1 process"
test -s "$tmp/env1.out" && fail "rank 1 should print nothing on stdout"

# kill -9 of one rank: the launcher stops (never hangs) with an error naming that rank, and --resume
# continues from the last checkpoint.
cat >"$tmp/long.yaml" <<'EOF'
featurizer: {type: hashed_ngrams, ngram_range: [1, 2], buckets: 4096}
model: {family: embedbag, params: {dim: 16}}
train: {epochs: 100000, batch_size: 4, optimizer: {kind: sgd, lr: 0.1}, calibrate: none}
EOF
run_and_kill() {  # run_and_kill OUT RANK: kill -9 RANK once the first epoch is checkpointed
  local out="$1" victim="$2" launcher child
  timeout 150 "$KILN" train --train "$tmp/train.csv" --config "$tmp/long.yaml" --nproc 2 --dist-timeout 20 \
    --out "$tmp/$out" >"$tmp/$out.out" 2>"$tmp/$out.err" &
  launcher=$!
  pids+=($launcher)
  for _ in $(seq 600); do
    test -s "$tmp/$out/checkpoint.json" && break
    sleep 0.1
  done
  test -s "$tmp/$out/checkpoint.json" || { cat "$tmp/$out.err"; fail "$out: no checkpoint after 60 s"; }
  # timeout(1) runs kiln-ml as its child; the workers are kiln-ml's children.
  for child in $(pgrep -f -- "--out $tmp/$out" || true); do
    if tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | grep -qx "RANK=$victim"; then kill -9 "$child"; fi
  done
  local rc=0
  wait "$launcher" || rc=$?
  pids=()
  test "$rc" = 124 && fail "$out: the launcher hung after rank $victim was killed"
  test "$rc" = 1 || { cat "$tmp/$out.err"; fail "$out: the launcher should exit 1, got $rc"; }
}
run_and_kill kill1 1
grep -q "data-parallel run failed: rank 1 was killed by signal 9" "$tmp/kill1.err" \
  || { cat "$tmp/kill1.err"; fail "the launcher does not name the killed rank 1"; }
grep -q "rank 0 of 2: .* failed: rank 1 " "$tmp/kill1.err" \
  || { cat "$tmp/kill1.err"; fail "rank 0's error does not name rank 1"; }
run_and_kill kill0 0
grep -q "data-parallel run failed: rank 0 was killed by signal 9" "$tmp/kill0.err" || fail "the launcher does not name rank 0"
grep -q "\[rank 1\] kiln: error: data-parallel rank 1 of 2: .* failed: rank 0 " "$tmp/kill0.err" \
  || { cat "$tmp/kill0.err"; fail "rank 1's error does not name rank 0"; }
# Resume (one process, a few more epochs) from the checkpoint the killed run left.
epochs_done="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' "$tmp/kill1/checkpoint.json")"
sed "s/epochs: 100000/epochs: $((epochs_done + 1))/" "$tmp/long.yaml" >"$tmp/long_resume.yaml"
"$KILN" -q train --train "$tmp/train.csv" --config "$tmp/long_resume.yaml" --resume --out "$tmp/kill1" \
  >"$tmp/resume.out" 2>"$tmp/resume.err" || { cat "$tmp/resume.err"; fail "--resume after kill -9 failed"; }
test -s "$tmp/kill1/model/model.safetensors" || fail "--resume after kill -9 left no artifact"
# The resumed log reads as one run: whole records, each epoch once, steps increasing (the killed
# run's records after its checkpoint, and any torn last line, were dropped).
/usr/bin/python3 - "$tmp/kill1/metrics.jsonl" "$((epochs_done + 1))" <<'PY' || fail "metrics.jsonl after kill -9 and --resume"
import json, sys
recs = [json.loads(line) for line in open(sys.argv[1])]
epochs = [r["epoch"] for r in recs if r.get("type") == "epoch"]
assert epochs == list(range(1, int(sys.argv[2]) + 1)), epochs
steps = [r["step"] for r in recs if r.get("type") == "step"]
assert steps == sorted(set(steps)), "steps repeat or go back"
PY

# A rank whose peer never comes: the rendezvous gives up after --dist-timeout, naming the address.
rc=0
env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" timeout 60 "$KILN" train --train "$tmp/train.csv" \
  --config "$tmp/sgd.yaml" --dist-timeout 2 --out "$tmp/lonely" >/dev/null 2>"$tmp/lonely.err" || rc=$?
test "$rc" = 1 || fail "a rank without rank 0 should exit 1, got $rc"
grep -q "data-parallel rank 1: rendezvous at 127.0.0.1:$port failed: .*check that rank 0 runs" "$tmp/lonely.err" \
  || { cat "$tmp/lonely.err"; fail "rendezvous timeout message"; }

# Bad flags and variables: exit 2 and a message naming the flag and the fix.
expect() {  # expect MESSAGE [env VAR=..] kiln args...
  local msg="$1" rc=0
  shift
  "$@" >/dev/null 2>"$tmp/bad.err" || rc=$?
  test "$rc" = 2 || { cat "$tmp/bad.err"; fail "expected exit 2 for: $*"; }
  grep -qF -- "$msg" "$tmp/bad.err" || { cat "$tmp/bad.err"; fail "expected '$msg' for: $*"; }
}
T=(train --train "$tmp/train.csv" --out "$tmp/bad")
expect "--nproc: Value 0 not in range" "$KILN" "${T[@]}" --model embedbag --nproc 0
expect "without --model or --config kiln train selects among several" "$KILN" "${T[@]}" --nproc 2
expect "--node-rank 2 must be below --nnodes 2" "$KILN" "${T[@]}" --model embedbag --nproc 1 --nnodes 2 --node-rank 2
expect "--master-port applies to data-parallel training" "$KILN" "${T[@]}" --model embedbag --master-port 29555
expect "train.solver per_example runs in one process" "$KILN" "${T[@]}" --model fasttext --nproc 2
expect "--batch-size 1 is the global batch, split over 2 processes" "$KILN" "${T[@]}" --model embedbag --nproc 2 --batch-size 1
expect "data-parallel training runs on the CPU (Gloo)" "$KILN" "${T[@]}" --model embedbag --nproc 2 --device cuda
expect "RANK is set but WORLD_SIZE is not" env RANK=0 "$KILN" "${T[@]}" --model embedbag
expect "RANK=2 must be below WORLD_SIZE=2" env RANK=2 WORLD_SIZE=2 "$KILN" "${T[@]}" --model embedbag
expect "RANK='x' is not a non-negative integer" env RANK=x WORLD_SIZE=2 "$KILN" "${T[@]}" --model embedbag
expect "--nproc 2 conflicts with LOCAL_WORLD_SIZE=4" env RANK=0 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 "$KILN" "${T[@]}" --model embedbag --nproc 2
expect "--master-port 29555 conflicts with MASTER_PORT=29556" env MASTER_PORT=29556 "$KILN" "${T[@]}" --model embedbag --nproc 2 --master-port 29555
expect "--dist-timeout: Value 0 not in range" "$KILN" "${T[@]}" --model embedbag --nproc 2 --dist-timeout 0
echo "dist_train_test: all passed"
