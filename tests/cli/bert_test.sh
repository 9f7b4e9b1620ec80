#!/usr/bin/env bash
# BERT end to end on a small generated dataset with a generated vocabulary: kiln pretrain (tiny, a
# few steps) -> kiln train --model bert --init -> evaluate / predict / embed; kiln train --model
# bert from random init with --vocab; and the message of each bad input.
# Usage: bert_test.sh /path/to/kiln
set -euo pipefail
KILN=${1:?usage: bert_test.sh /path/to/kiln}
tmp=$(mktemp -d)
trap '[[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

/usr/bin/python3 - "$tmp" <<'PY' || fail "python3 is needed to generate the test data"
import csv, random, sys
random.seed(5)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split()}
common = "the a of and to in is it was for".split()
d = sys.argv[1]
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + common + [w for ws in words.values() for w in ws] + ["##s", "##ing"]
open(f"{d}/vocab.txt", "w").write("\n".join(vocab) + "\n")
for name, n in (("train", 100), ("val", 20), ("test", 40)):
    with open(f"{d}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 2):
            label = list(words)[i % 2]
            toks = random.sample(words[label], 4) + random.sample(common, 4)
            random.shuffle(toks); w.writerow([" ".join(toks), label])
with open(f"{d}/corpus.txt", "w") as f:
    for i in range(300):
        label = list(words)[i % 2]
        toks = random.sample(words[label], 5) + random.sample(common, 5)
        random.shuffle(toks); f.write(" ".join(toks) + "\n")
with open(f"{d}/long.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["text", "label"])
    for i in range(20):
        w.writerow([" ".join(["goal"] * (80 if i == 0 else 5)), list(words)[i % 2]])
PY
tiny=(--preset tiny --epochs 1 --batch-size 16)

# Pretraining from scratch writes a Hugging Face-layout directory.
"$KILN" -q pretrain --input "$tmp/corpus.txt" --vocab "$tmp/vocab.txt" --preset tiny --seq-len 32 --steps 12 \
  --batch-size 8 --checkpoint-every 5 --out "$tmp/pre" >"$tmp/pre.out" 2>"$tmp/pre.err" \
  || { cat "$tmp/pre.err"; fail "kiln pretrain failed"; }
grep -q "pretrained model: $tmp/pre/model" "$tmp/pre.out" || fail "pretrain did not print the model directory: $(cat "$tmp/pre.out")"
for f in config.json model.safetensors vocab.txt; do test -s "$tmp/pre/model/$f" || fail "pretrain wrote no $f"; done
grep -q '"BertForMaskedLM"' "$tmp/pre/model/config.json" || fail "config.json does not name BertForMaskedLM"
[[ $(grep -c '"type":"step"' "$tmp/pre/metrics.jsonl") -eq 12 ]] || fail "metrics.jsonl lacks 12 step records"
grep -q '"tokens_per_second"' "$tmp/pre/metrics.jsonl" || fail "metrics.jsonl lacks tokens/s"
cmp -s "$tmp/vocab.txt" "$tmp/pre/model/vocab.txt" || fail "the model's vocab.txt differs from --vocab"

# Fine-tuning from it (the run directory works as --init too), then the other verbs on the artifact.
"$KILN" -q train --model bert --init "$tmp/pre" --train "$tmp/train.csv" --val "$tmp/val.csv" --test "$tmp/test.csv" \
  --epochs 1 --batch-size 16 --out "$tmp/ft" >"$tmp/ft.out" 2>"$tmp/ft.err" || { cat "$tmp/ft.err"; fail "train --init failed"; }
grep -q "macro avg" "$tmp/ft.out" || fail "train --init printed no metrics table"
cmp -s "$tmp/vocab.txt" "$tmp/ft/model/wordpiece.vocab.txt" || fail "the artifact holds no vocab.txt"
/usr/bin/python3 - "$tmp/ft/model/kiln.json" <<'PY' || fail "kiln.json of the --init run"
import json, sys
m = json.load(open(sys.argv[1]))
p = m["model"]["params"]
assert m["model"]["family"] == "bert", m["model"]
assert p["hidden_size"] == 128 and p["num_hidden_layers"] == 2, p
assert m["preprocessors"][0]["type"] == "wordpiece", m["preprocessors"]
assert m["training"]["model"]["init"].endswith("/pre"), m["training"]["model"]
PY
"$KILN" -q evaluate "$tmp/ft/model" --data "$tmp/test.csv" >"$tmp/eval.out" || fail "evaluate on a bert artifact"
grep -q "macro avg" "$tmp/eval.out" || fail "evaluate printed no table"
printf 'goal match team\nbake the salt\n' | "$KILN" -q predict "$tmp/ft" >"$tmp/pred.out" || fail "predict on a bert artifact"
[[ $(grep -c '"label"' "$tmp/pred.out") -eq 2 ]] || fail "predict: $(cat "$tmp/pred.out")"

# kiln serve batches token tensors padded to the batch's longest: a batch of texts of different
# lengths gets the probabilities each text gets alone (kiln predict, one text at a time).
if command -v curl >/dev/null && [[ -n ${KILN_SOURCE_DIR:-} ]]; then
  source "$KILN_SOURCE_DIR/tests/serve/serve_lib.sh"
  trap 'stop_server; [[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT
  start_server "$tmp/ft"
  curl -s -X POST "$BASE/v1/predict" -H 'Content-Type: application/json' \
    --data-binary '{"texts": ["goal", "bake the salt oven flour garlic pan sauce", "team win"]}' >"$tmp/served.json"
  stop_server
  for t in "goal" "bake the salt oven flour garlic pan sauce" "team win"; do
    echo "$t" | "$KILN" -q predict "$tmp/ft"
  done >"$tmp/alone.jsonl"
  /usr/bin/python3 - "$tmp/served.json" "$tmp/alone.jsonl" <<'PY' || fail "served batch differs from predictions one at a time"
import json, sys
served = json.load(open(sys.argv[1]))["predictions"]
alone = [json.loads(l) for l in open(sys.argv[2])]
assert len(served) == 3, served
for s, a in zip(served, alone):
    assert s["label"] == a["label"] and abs(s["probability"] - a["probability"]) < 1e-5, (s, a)
PY
fi

# kiln embed: artifact (jsonl) and the pretrained directory (.npy).
printf 'goal match\nbake the salt oven\nthe\n' > "$tmp/texts.txt"
"$KILN" -q embed "$tmp/ft" --input "$tmp/texts.txt" --out "$tmp/emb.jsonl" || fail "embed an artifact"
"$KILN" -q embed "$tmp/pre/model" --input "$tmp/texts.txt" --pooling mean --out "$tmp/emb.npy" || fail "embed a HF directory"
/usr/bin/python3 - "$tmp/emb.jsonl" "$tmp/emb.npy" <<'PY' || fail "embed outputs"
import json, sys
import numpy as np
rows = [json.loads(l)["embedding"] for l in open(sys.argv[1])]
assert len(rows) == 3 and all(len(r) == 128 for r in rows), [len(r) for r in rows]
a = np.load(sys.argv[2])
assert a.shape == (3, 128) and a.dtype == np.float32, (a.shape, a.dtype)
assert np.isfinite(a).all() and abs(a[0] - a[1]).max() > 1e-4
PY

# Random init with --vocab.
"$KILN" -q train --model bert --vocab "$tmp/vocab.txt" --max-length 32 "${tiny[@]}" --train "$tmp/train.csv" \
  --out "$tmp/rand" >"$tmp/rand.out" 2>"$tmp/rand.err" || { cat "$tmp/rand.err"; fail "train --model bert --vocab failed"; }
/usr/bin/python3 - "$tmp/rand/model/kiln.json" <<'PY' || fail "kiln.json of the random-init run"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["model"]["params"]["preset"] == "tiny", m["model"]
assert m["preprocessors"][0]["options"]["max_length"] == 32, m["preprocessors"]
t = m["training"]["train"]
assert t["optimizer"]["kind"] == "adamw" and t["schedule"]["kind"] == "warmup_cosine", t
PY

expect_fail() {
  local code=$1 want=$2; shift 2
  set +e
  out=$("$KILN" "$@" 2>&1)
  rc=$?
  set -e
  [[ $rc -eq $code ]] || fail "$* exited $rc, want $code ($out)"
  [[ $out == *"$want"* ]] || fail "$*: message '$out' lacks '$want'"
}
t=(--train "$tmp/train.csv" --out "$tmp/bad")
# No --vocab and no --init: a WordPiece vocabulary is learnt on the training texts.
"$KILN" -q train --model bert --max-length 32 --vocab-size 60 "${tiny[@]}" --train "$tmp/train.csv" \
  --out "$tmp/learnt" >"$tmp/learnt.out" 2>"$tmp/learnt.err" || { cat "$tmp/learnt.err"; fail "train --model bert without a vocabulary failed"; }
head -5 "$tmp/learnt/model/wordpiece.vocab.txt" | tr '\n' ' ' | grep -qx "\[PAD\] \[UNK\] \[CLS\] \[SEP\] \[MASK\] " \
  || fail "the learnt vocabulary does not start with the special tokens"
(( $(wc -l <"$tmp/learnt/model/wordpiece.vocab.txt") <= 60 )) || fail "the learnt vocabulary exceeds --vocab-size 60"
expect_fail 2 "--vocab-size sizes the vocabulary learnt on the training texts, but --vocab or --init brings one" \
  train --model bert --vocab "$tmp/vocab.txt" --vocab-size 100 "${t[@]}"
expect_fail 2 "--vocab applies to --model bert, but this run trains 'linear'" train --model linear --vocab "$tmp/vocab.txt" "${t[@]}"
expect_fail 2 "--preset applies to --model bert, but this run trains 'mlp'" train --model mlp --preset tiny "${t[@]}"
expect_fail 2 "--max-features applies to the tfidf featurizer, but this run uses 'wordpiece'" \
  train --model bert --vocab "$tmp/vocab.txt" --max-features 10 "${t[@]}"
expect_fail 2 "--preset tiny conflicts with --init $tmp/pre" train --model bert --init "$tmp/pre" --preset tiny "${t[@]}"
expect_fail 2 "--vocab $tmp/vocab.txt conflicts with --init $tmp/pre" train --model bert --init "$tmp/pre" --vocab "$tmp/vocab.txt" "${t[@]}"
mkdir -p "$tmp/noconf" "$tmp/novocab"
expect_fail 1 "$tmp/noconf/config.json is missing; expected a Hugging Face BERT directory" train --model bert --init "$tmp/noconf" "${t[@]}"
cp "$tmp/pre/model/config.json" "$tmp/pre/model/model.safetensors" "$tmp/novocab/"
expect_fail 1 "$tmp/novocab/vocab.txt is missing; the checkpoint's vocabulary must come with it" \
  train --model bert --init "$tmp/novocab" "${t[@]}"
# Wrong shapes: config.json says a wider feed-forward layer than the weights hold.
mkdir -p "$tmp/wide" && cp "$tmp/pre/model/"* "$tmp/wide/"
sed -i 's/"intermediate_size": 512/"intermediate_size": 256/' "$tmp/wide/config.json"
expect_fail 1 "tensor 'bert.encoder.layer.0.intermediate.dense.bias' has shape [512], expected [256]" \
  train --model bert --init "$tmp/wide" "${t[@]}"
# A text longer than max_position_embeddings, truncation off.
cat > "$tmp/long.yaml" <<EOF
featurizer: {type: wordpiece, vocab: $tmp/vocab.txt, max_length: 100, truncation: false}
model: {family: bert, params: {preset: tiny, max_position_embeddings: 64}}
train: {epochs: 1}
EOF
expect_fail 1 "input_ids has sequences of 82 tokens but the model's max_position_embeddings is 64" \
  train --config "$tmp/long.yaml" --train "$tmp/long.csv" --out "$tmp/bad"
expect_fail 1 "holds neither kiln.json (a Kiln artifact" embed "$tmp/noconf" --input "$tmp/texts.txt"
expect_fail 2 "--steps 5 conflicts with --epochs 2" pretrain --input "$tmp/corpus.txt" --vocab "$tmp/vocab.txt" --steps 5 --epochs 2 --out "$tmp/bad"
expect_fail 2 "--vocab is required" pretrain --input "$tmp/corpus.txt" --out "$tmp/bad"
echo "bert_test: ok"
