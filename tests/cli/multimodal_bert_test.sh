#!/usr/bin/env bash
# A multimodal model whose text side is a BERT (--text-encoder bert), end to end on scikit-learn's
# 8x8 digits with a text column: train (a WordPiece vocabulary learnt on the texts, the tiny preset),
# evaluate, predict, explain, optimize (the image trunk's Conv+BN folded, int8 static / bf16 through
# both sides); a BERT pretrained by `kiln pretrain` starting the text side (--init);
# and the messages for the flags that do not fit.
set -euo pipefail
KILN="$1"
source "$KILN_SOURCE_DIR/tests/lib/require_tools.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DIGITS=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
if [[ ! -f "$DIGITS" ]]; then
  missing_tool "digits.csv.gz" python3-sklearn "the multimodal bert pipeline on digits"
  exit 77
fi
/usr/bin/python3 "$KILN_SOURCE_DIR/tests/lib/digits_png.py" "$DIGITS" "$tmp/digits" 3
"$KILN" -q prepare --input "$tmp/digits" --val-size 0.15 --test-size 0.25 --out "$tmp/prep" >/dev/null || fail "prepare"
# The text: the digit's parity (a weak hint beside the image).
for split in train val test; do
  /usr/bin/python3 "$KILN_SOURCE_DIR/tests/lib/digits_text_csv.py" "$tmp/prep/$split.csv" "$tmp/prep/mm_$split.csv"
done
data=(--train "$tmp/prep/mm_train.csv" --val "$tmp/prep/mm_val.csv")

"$KILN" -q train "${data[@]}" --test "$tmp/prep/mm_test.csv" --model multimodal --text-encoder bert --preset tiny \
  --vocab-size 60 --epochs 3 --out "$tmp/mm" >"$tmp/mm.out" 2>"$tmp/mm.err" || { cat "$tmp/mm.err"; fail "train --text-encoder bert"; }
/usr/bin/python3 - "$tmp/mm/model/kiln.json" <<'PY' || fail "kiln.json of the bert multimodal model"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["model"]["family"] == "multimodal", m["model"]
assert m["model"]["params"]["text_encoder"] == "bert", m["model"]["params"]
assert m["model"]["params"]["bert"] == {"preset": "tiny"}, m["model"]["params"]
types = [f["type"] for f in m["training"]["featurizer"]]
assert types == ["wordpiece", "image"], types
PY
test -s "$tmp/mm/model/wordpiece.vocab.txt" || fail "the artifact has no WordPiece vocabulary"
"$KILN" evaluate "$tmp/mm/model" --data "$tmp/prep/mm_test.csv" --json "$tmp/eval.json" >/dev/null || fail "evaluate"
/usr/bin/python3 -c "import json,sys; a=json.load(open(sys.argv[1]))['accuracy']; print('multimodal bert digits accuracy', a); assert a > 0.3, a" \
  "$tmp/eval.json" || fail "accuracy no better than chance"
"$KILN" predict "$tmp/mm/model" --input "$tmp/prep/mm_test.csv" --format csv >"$tmp/pred.jsonl" || fail "predict"
# kiln optimize reaches the nested image trunk and BERT text side (their layers are "image.*", "text.*").
"$KILN" optimize "$tmp/mm/model" --out "$tmp/opt" --int8 static --min-int8-weights 0 --max-drop 100 --no-bench \
  >"$tmp/opt.out" 2>"$tmp/opt.err" || { cat "$tmp/opt.err"; fail "optimize --int8 static on a multimodal model"; }
grep -q "default variant: int8" "$tmp/opt.out" || { cat "$tmp/opt.out"; fail "no int8 variant"; }
/usr/bin/python3 - "$tmp/opt/kiln.json" <<'PY' || fail "the int8 variant of the multimodal model"
import json, sys
mods = json.load(open(sys.argv[1]))["variants"]["int8"]["details"]["modules"]
assert mods["image.conv1"] == "conv_bn_int8_static", mods
assert mods["text.encoder.layer.0.intermediate.dense"] == "linear_int8_static", mods
assert mods["output"] == "linear_int8_static", mods
PY
"$KILN" evaluate "$tmp/opt" --data "$tmp/prep/mm_test.csv" --json "$tmp/opt_eval.json" >/dev/null 2>&1 || fail "evaluate int8"
grep -q '"variant": *"int8"' "$tmp/opt_eval.json" || fail "evaluate did not run the int8 variant"
if grep -qwE "avx512_bf16|amx_bf16" /proc/cpuinfo; then
  "$KILN" optimize "$tmp/mm/model" --out "$tmp/bf16" --bf16 --max-drop 100 --no-bench >"$tmp/bf16.out" 2>"$tmp/bf16.err" \
    || { cat "$tmp/bf16.err"; fail "optimize --bf16 on a multimodal model"; }
  grep -q "conv_bn_bf16" "$tmp/bf16/kiln.json" || fail "bf16 left the image trunk's convolutions out"
  "$KILN" predict "$tmp/bf16" --input "$tmp/prep/mm_test.csv" --format csv >/dev/null 2>&1 || fail "predict bf16"
fi
[[ $(wc -l <"$tmp/pred.jsonl") -eq $(($(wc -l <"$tmp/prep/mm_test.csv") - 1)) ]] || fail "predict: one line per row"
head -3 "$tmp/prep/mm_test.csv" >"$tmp/prep/two.csv"  # beside the images it names
"$KILN" explain "$tmp/mm/model" --data "$tmp/prep/two.csv" --json "$tmp/explain.jsonl" >/dev/null 2>"$tmp/explain.err" \
  || { cat "$tmp/explain.err"; fail "explain"; }
[[ $(wc -l <"$tmp/explain.jsonl") -eq 2 ]] || fail "explain: one line per row"

# --init: a BERT pretrained on the texts starts the text side; the image side starts new.
/usr/bin/python3 -c "import csv,sys; print('\n'.join(r['text'] for r in csv.DictReader(open(sys.argv[1]))))" \
  "$tmp/prep/mm_train.csv" >"$tmp/corpus.txt"
"$KILN" -q pretrain --input "$tmp/corpus.txt" --vocab "$tmp/mm/model/wordpiece.vocab.txt" --preset tiny --epochs 1 \
  --out "$tmp/pre" >/dev/null 2>"$tmp/pre.err" || { cat "$tmp/pre.err"; fail "pretrain"; }
"$KILN" -q train "${data[@]}" --model multimodal --text-encoder bert --init "$tmp/pre" --epochs 1 --out "$tmp/mm2" \
  >/dev/null 2>"$tmp/mm2.err" || { cat "$tmp/mm2.err"; fail "train --init"; }
/usr/bin/python3 - "$tmp/mm2/model/kiln.json" "$tmp/pre/model/config.json" <<'PY' || fail "--init did not size the text side"
import json, sys
m, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
b = m["model"]["params"]["bert"]
assert b["hidden_size"] == c["hidden_size"] and b["num_hidden_layers"] == c["num_hidden_layers"], (b, c)
PY

# Flags that do not fit, each with its message.
expect_error() {  # expected-text flags...
  local want="$1"; shift
  set +e
  "$KILN" -q train "${data[@]}" --out "$tmp/bad" "$@" >/dev/null 2>"$tmp/bad.err"
  local rc=$?
  set -e
  [[ $rc -ne 0 ]] || fail "expected an error for: $*"
  grep -qF -- "$want" "$tmp/bad.err" || fail "message for $*: $(cat "$tmp/bad.err")"
  [[ ! -e "$tmp/bad/model" ]] || fail "a refused run left a model behind: $*"
}
expect_error "--text-encoder applies to --model multimodal, but this run trains 'linear'" --model linear --text-encoder bert
expect_error "--preset applies to --model bert, but this run trains 'multimodal' with a bag text side; drop --preset or use --model bert (or --model multimodal --text-encoder bert)" \
  --model multimodal --preset tiny
expect_error "--init applies to --model bert, but this run trains 'multimodal' with a bag text side" --model multimodal --init "$tmp/pre"
expect_error "--preset tiny conflicts with --init" --model multimodal --text-encoder bert --init "$tmp/pre" --preset tiny
echo "multimodal_bert_test: ok"
