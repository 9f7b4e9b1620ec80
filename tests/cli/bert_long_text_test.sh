#!/usr/bin/env bash
# kiln train --model bert --long-text window: the choice is persisted in the artifact; kiln predict
# gives a long text softmax(mean of its windows' logits), checked by hand from the predictions of
# each window alone (log-probabilities are logits up to a per-row constant, which softmax ignores);
# kiln serve agrees with kiln predict; each bad value gets its message.
# Usage: bert_long_text_test.sh /path/to/kiln
set -euo pipefail
KILN=${1:?usage: bert_long_text_test.sh /path/to/kiln}
tmp=$(mktemp -d)
trap '[[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

/usr/bin/python3 - "$tmp" <<'PY' || fail "python3 is needed to generate the test data"
import csv, random, sys
random.seed(7)
words = {"sports": "goal match team score league coach".split(), "cooking": "recipe oven salt butter flour bake".split()}
d = sys.argv[1]
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for ws in words.values() for w in ws]
open(f"{d}/vocab.txt", "w").write("\n".join(vocab) + "\n")
with open(f"{d}/train.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["text", "label"])
    for i in range(40):
        label = list(words)[i % 2]
        w.writerow([" ".join(random.choices(words[label], k=random.randint(3, 14))), label])
# Long texts of whole-word tokens: 13 words, windows of 6 (max_length 8), stride 2 -> [0,6) [4,10) [8,13).
with open(f"{d}/long.txt", "w") as f:
    for i in range(3):
        toks = random.choices(words["sports"] + words["cooking"], k=13)
        f.write(" ".join(toks) + "\n")
PY

"$KILN" -q train --model bert --preset tiny --vocab "$tmp/vocab.txt" --max-length 8 --long-text window --stride 2 \
  --epochs 1 --batch-size 8 --train "$tmp/train.csv" --calibrate none --out "$tmp/run" >"$tmp/train.out" 2>"$tmp/train.err" \
  || { cat "$tmp/train.err"; fail "train --long-text window failed"; }
/usr/bin/python3 - "$tmp/run/model/kiln.json" <<'PY' || fail "kiln.json does not persist long_text"
import json, sys
m = json.load(open(sys.argv[1]))
o = m["preprocessors"][0]["options"]
assert o["long_text"] == "window" and o["stride"] == 2 and o["max_length"] == 8, o
shape = [t["shape"] for t in m["inputs"] if t["name"] == "input_ids"][0]
assert shape == ["batch", "window", "sequence"], shape
PY

"$KILN" -q predict "$tmp/run" --input "$tmp/long.txt" --top-k 2 >"$tmp/long.jsonl" || fail "predict long texts"
/usr/bin/python3 - "$tmp/long.txt" "$tmp/windows.txt" <<'PY'
import sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        t = line.split()
        for a, b in ((0, 6), (4, 10), (8, 13)):
            out.write(" ".join(t[a:b]) + "\n")
PY
"$KILN" -q predict "$tmp/run" --input "$tmp/windows.txt" --top-k 2 >"$tmp/windows.jsonl" || fail "predict windows"
/usr/bin/python3 - "$tmp/long.jsonl" "$tmp/windows.jsonl" <<'PY' || fail "a long text's probabilities are not the softmax of its windows' mean logits"
import json, math, sys
longs = [json.loads(l) for l in open(sys.argv[1])]
wins = [json.loads(l) for l in open(sys.argv[2])]
assert len(longs) == 3 and len(wins) == 9, (len(longs), len(wins))
def probs(p): return {t["label"]: t["probability"] for t in p["top_k"]}
for i, p in enumerate(longs):
    labels = sorted(probs(p))
    mean = {l: sum(math.log(probs(w)[l]) for w in wins[3 * i:3 * i + 3]) / 3 for l in labels}
    z = sum(math.exp(v) for v in mean.values())
    for l in labels:
        want, got = math.exp(mean[l]) / z, probs(p)[l]
        assert abs(want - got) < 1e-4, (i, l, want, got)
PY

# kiln serve (batched, padded to the batch's longest windows and sequences) agrees with kiln predict.
if command -v curl >/dev/null && [[ -n ${KILN_SOURCE_DIR:-} ]]; then
  source "$KILN_SOURCE_DIR/tests/serve/serve_lib.sh"
  trap 'stop_server; [[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT
  start_server "$tmp/run"
  body=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"texts": [l.rstrip("\n") for l in open(sys.argv[1])] + ["goal"]}))' "$tmp/long.txt")
  curl -s -X POST "$BASE/v1/predict" -H 'Content-Type: application/json' --data-binary "$body" >"$tmp/served.json"
  stop_server
  echo goal | "$KILN" -q predict "$tmp/run" >>"$tmp/long.jsonl"
  /usr/bin/python3 - "$tmp/served.json" "$tmp/long.jsonl" <<'PY' || fail "kiln serve differs from kiln predict on long texts"
import json, sys
served = json.load(open(sys.argv[1]))["predictions"]
alone = [json.loads(l) for l in open(sys.argv[2])]
assert len(served) == 4 == len(alone), (served, alone)
for s, a in zip(served, alone):
    assert s["label"] == a["label"] and abs(s["probability"] - a["probability"]) < 1e-5, (s, a)
PY
fi

expect_fail() {
  local code=$1 want=$2; shift 2
  set +e
  out=$("$KILN" "$@" 2>&1)
  rc=$?
  set -e
  [[ $rc -eq $code ]] || fail "$* exited $rc, want $code ($out)"
  [[ $out == *"$want"* ]] || fail "$*: message '$out' lacks '$want'"
}
common=(train --model bert --preset tiny --vocab "$tmp/vocab.txt" --epochs 1 --train "$tmp/train.csv" --out "$tmp/bad")
expect_fail 2 "--long-text" "${common[@]}" --long-text slide
expect_fail 2 "featurizer.stride applies to long_text: window, but long_text is 'truncate'; drop stride or set long_text: window (--long-text window)" "${common[@]}" --stride 3
expect_fail 2 "featurizer.stride must be in [0, max_length - 2 = 6)" "${common[@]}" --max-length 8 --long-text window --stride 6
expect_fail 2 "onnx export: this artifact splits long texts into windows" export "$tmp/run" --out "$tmp/m.onnx"
expect_fail 2 "--long-text applies to --model bert" train --model linear --train "$tmp/train.csv" --long-text window --out "$tmp/bad"
echo "bert_long_text_test: ok"
