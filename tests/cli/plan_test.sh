#!/usr/bin/env bash
# kiln plan: the JSON fields and their arithmetic, the text report, the resource table, model
# specs from a run config and an artifact, and the message of each bad request.
# Usage: plan_test.sh /path/to/kiln
set -euo pipefail
KILN=${1:?usage: plan_test.sh /path/to/kiln}
SRC=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 8 A100s over PCIe: the parts sum to the total, efficiency = speed-up / N, N x batch / step = samples/s.
"$KILN" plan --model bert-base --gpu a100-80g --n 8 --interconnect pcie --batch 16 --json > "$TMP/p.json"
/usr/bin/python3 - "$TMP/p.json" <<'PY' || fail "plan --json fields: $(cat "$TMP/p.json")"
import json, sys
j = json.load(open(sys.argv[1]))
parts = j["memory_parts_bytes"]
assert abs(sum(parts.values()) - j["memory_per_gpu_bytes"]) < 1, parts
assert j["params"] == 109483778, j["params"]
assert 1 < j["speedup"] < 8, j["speedup"]
assert abs(j["scaling_efficiency"] - j["speedup"] / 8) < 1e-9
assert abs(j["samples_per_s"] - 8 * 16 / j["step_time_s"]) < 1e-6 * j["samples_per_s"]
assert j["interconnect"] == "pcie" and j["dtype"] == "bf16" and j["fits"] is True
assert j["exposed_comm_s"] <= j["allreduce_time_s"]
PY
nv=$("$KILN" plan --model bert-base --gpu a100-80g --n 8 --interconnect nvlink --batch 16 --json |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["speedup"])')
pc=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["speedup"])' "$TMP/p.json")
/usr/bin/python3 -c "import sys; sys.exit(0 if $nv > $pc else 1)" || fail "NVLink ($nv) should scale better than PCIe ($pc)"

out=$("$KILN" plan --model bert-tiny --no-measure)
[[ $out == *"kiln plan: bert-tiny (bert), training on 1 x cpu, fp32"* && $out == *"fits in"* && $out == *"time = FLOPs / (peak x MFU 0.40)"* ]] ||
  fail "text report: $out"
# --gpu cpu times the step's ops on this machine (through kiln-ml): the time and the activations are
# measured, the FLOP arithmetic is not used, and the front binary's answer is kiln-ml's.
"$KILN" --threads 1 plan --model bert-tiny --batch 4 --seq-len 32 --json > "$TMP/m.json"
/usr/bin/python3 - "$TMP/m.json" <<'PY' || fail "measured plan: $(cat "$TMP/m.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["time_source"] == "measured kernels", j["time_source"]
assert 0 < j["compute_time_s"] < 60 and j["step_time_s"] == j["compute_time_s"]
parts = j["memory_parts_bytes"]
assert parts["activations"] > 0 and parts["runtime"] > 50 * 2**20, parts
assert abs(sum(parts.values()) - j["memory_per_gpu_bytes"]) < 1, parts
assert any("timed on this machine" in a for a in j["assumptions"]), j["assumptions"]
PY
out=$("$KILN" --threads 1 plan --model bert-tiny --batch 4 --seq-len 32)
[[ $out == *"ops timed on this machine"* && $out != *"MFU 0.40"* ]] || fail "measured text report: $out"
out=$("$KILN" plan --model resnet18 --gpu h100 --batch 64 --inference)
[[ $out == *"resnet18 (cnn), inference on 1 x h100"* && $out == *"image 224x224, 3 channel(s)"* ]] || fail "inference report: $out"

table=$("$KILN" plan --table)
for want in "bert-small" "bert-base" "bert-large" "PCIe vs NVLink" "The flow's 6.8x"; do
  [[ $table == *"$want"* ]] || fail "--table lacks '$want': $table"
done

# A run config and an artifact directory (format 1: input_dim 520, three labels).
j=$("$KILN" plan --model "$SRC/configs/recommended.yaml" --features 1000 --json)
[[ $j == *'"family": "linear"'* && $j == *'"params": 2002'* ]] || fail "run config: $j"
j=$("$KILN" plan --model "$SRC/tests/fixtures/format1/linear" --json)
[[ $j == *'"params": 1563'* ]] || fail "artifact (520 x 3 + 3): $j"

# --data: kiln-ml reads the training file with the artifact's columns, fits its featurizer (the
# linear preset: TF-IDF 1-2-grams, min_df 2) and takes the sample count, the features per text
# (3 words + 2 bigrams = 5) and the distinct features of a batch from it.
{
  echo "text,label"
  for i in $(seq 20); do echo "red green blue,a"; echo "cat dog fish,b"; done
} > "$TMP/d.csv"
"$KILN" -q train --model linear --train "$TMP/d.csv" --out "$TMP/run" --epochs 1 > /dev/null 2>&1 || fail "training the --data fixture"
"$KILN" --threads 1 plan --model "$TMP/run/model" --data "$TMP/d.csv" --batch 4 --no-measure --json > "$TMP/d.json"
/usr/bin/python3 - "$TMP/d.json" <<'PY' || fail "plan --data: $(cat "$TMP/d.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["samples"] == 40, j["samples"]
assert j["seq_len"] == 5, j["seq_len"]
bag = [n for n in j["notes"] if n.startswith("bag input")][0]
rows = int(bag.split("gradients: ")[1].split(" a batch")[0])
assert 5 <= rows <= 10, bag  # a batch of 4 holds one kind of text or both
assert any(a.startswith("training data and featurizer: reading") for a in j["assumptions"]), j["assumptions"]
assert j["memory_parts_bytes"]["featurizer_fit_peak"] >= 0
PY

expect_error() {  # expect_error "message part" args...
  local want=$1
  shift
  local err
  if err=$("$KILN" plan "$@" 2>&1 >/dev/null); then fail "plan $* should fail"; fi
  [[ $err == *"$want"* ]] || fail "plan $*: message '$err' lacks '$want'"
}
expect_error "kiln plan needs --model"
expect_error "is not a preset (bert-tiny" --model gpt-9
expect_error "--gpu \"tpu\" is not in the device table" --model bert-tiny --gpu tpu
expect_error "l4 has pcie, ib; pick one of those" --model bert-tiny --gpu l4 --n 2 --interconnect nvlink
expect_error "--mfu must be in (0, 1]" --model bert-tiny --gpu h100 --mfu 2
expect_error "with --gpu cpu the step's ops are timed on this machine. Add --no-measure to use --mfu" --model bert-tiny --mfu 0.3
expect_error "--grad-dtype must be fp32 or bf16" --model bert-tiny --grad-dtype fp8
expect_error "times the step with one copy per rank, at most 256; add --no-measure" --model bert-tiny --n 300
expect_error "longer than the model's 512 position embeddings" --model bert-base --seq-len 1024
expect_error "no such file" --model "$TMP/missing.yaml"
mkdir "$TMP/empty"
expect_error "$TMP/empty/kiln.json: missing" --model "$TMP/empty"
printf 'model:\n  family: gru\n' > "$TMP/gru.yaml"
expect_error "$TMP/gru.yaml: kiln plan does not know the model family \"gru\"" --model "$TMP/gru.yaml"
expect_error "--data needs --model to name an artifact directory" --model bert-tiny --data "$TMP/d.csv"
expect_error "$TMP/nothing.csv" --model "$TMP/run/model" --data "$TMP/nothing.csv"
echo "plan_test: ok"
