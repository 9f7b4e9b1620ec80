#!/usr/bin/env bash
# kiln tune over BERT: a space of BERT's short names (layers, hidden_size, heads, lr, warmup_ratio,
# max_length, dropout, pooling) reaches the trial's run config and the trained model; 2 tiny trials.
# A BERT-only name in a study of another family is refused with the fix.
# Usage: tune_bert_test.sh /path/to/kiln
set -euo pipefail
KILN=${1:?usage: tune_bert_test.sh /path/to/kiln}
SRC="${KILN_SOURCE_DIR:?set KILN_SOURCE_DIR to the source tree}"
tmp=$(mktemp -d)
trap '[[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$tmp"

/usr/bin/python3 - <<'PY' || fail "python3 is needed to generate the test data"
import csv, random
random.seed(3)
words = {"sports": "goal match team score league coach".split(), "cooking": "recipe oven salt butter flour bake".split()}
open("vocab.txt", "w").write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sum(words.values(), [])) + "\n")
for name, n in (("train", 24), ("val", 8)):
    with open(f"{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n):
            label = list(words)[i % 2]
            w.writerow([" ".join(random.choices(words[label], k=5)), label])
PY
cat >bert.yaml <<YAML
base_config: $SRC/configs/bert_tiny.yaml
featurizer: {vocab: $tmp/vocab.txt}
train: {epochs: 1, batch_size: 8}
space:
  lr: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
  warmup_ratio: {type: float, low: 0.0, high: 0.2}
  layers: {type: int, low: 1, high: 2}
  hidden_size: {type: categorical, choices: [16, 32]}
  heads: {type: categorical, choices: [2, 4]}
  dropout: {type: float, low: 0.0, high: 0.2}
  max_length: {type: categorical, choices: [8, 16]}
  pooling: {type: categorical, choices: [cls, mean]}
objective: {train_file: train.csv, val_file: val.csv}
YAML
"$KILN" --threads 1 tune --config bert.yaml --trials 2 --sampler random --seed 4 --pruner none >out.txt 2>err.txt \
  || { cat err.txt; fail "kiln tune over bert"; }
[[ $(grep -c ' complete ' out.txt) -eq 2 ]] || { cat out.txt err.txt; fail "expected 2 complete trials"; }
/usr/bin/python3 - runs/tune/bert/trials <<'PY' || fail "the sampled BERT parameters did not reach the trained models"
import json, os, re, sys
root = sys.argv[1]
trials = sorted(os.listdir(root))
assert len(trials) == 2, trials
for t in trials:
    text = open(os.path.join(root, t, "config.yaml")).read()
    params = json.loads(re.match(r"# Trial \d+ of a kiln tune study: (.*)\n", text).group(1))
    m = json.load(open(os.path.join(root, t, "run", "model", "kiln.json")))
    p, o = m["model"]["params"], m["preprocessors"][0]["options"]
    assert p["num_hidden_layers"] == params["layers"], (p, params)
    assert p["hidden_size"] == params["hidden_size"] and p["intermediate_size"] == 4 * params["hidden_size"], (p, params)
    assert p["num_attention_heads"] == params["heads"], (p, params)
    assert abs(p["hidden_dropout_prob"] - params["dropout"]) < 1e-12, (p, params)
    assert abs(p["attention_probs_dropout_prob"] - params["dropout"]) < 1e-12, (p, params)
    assert p["pooling"] == params["pooling"], (p, params)
    assert o["max_length"] == params["max_length"], (o, params)
    tr = m["training"]["train"]
    assert abs(tr["optimizer"]["lr"] - params["lr"]) < 1e-12, tr
    assert abs(tr["schedule"]["warmup_ratio"] - params["warmup_ratio"]) < 1e-12, tr
PY

# A BERT-only short name in a study of another family.
printf 'space: {heads: {type: int, low: 1, high: 4}}\nobjective: {train_file: train.csv, val_file: val.csv}\n' >mlp.yaml
set +e
out=$("$KILN" tune --config mlp.yaml --trials 1 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "heads in a non-bert study exited $rc ($out)"
[[ $out == *"'heads' is a BERT parameter (model.params.num_attention_heads)"*"set model.family: bert"* ]] \
  || fail "heads in a non-bert study: $out"
echo "tune_bert_test: ok"
