#!/usr/bin/env bash
# Integrated gradients on a BERT artifact end to end: kiln explain --method ig (per-token
# attributions with spans, delta = the completeness gap, within 1% of f(x) - f(baseline)),
# --ig-baseline zero, the messages of bad flags; POST /v1/explain with "method": "ig" and its
# refusals (unknown method, a method the model cannot take).
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "${KILN_SOURCE_DIR}/tests/serve/serve_lib.sh"

/usr/bin/python3 - "$tmp" <<'PY' || fail "python3 is needed to generate the test data"
import csv, random, sys
random.seed(7)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split()}
common = "the a of and to in is it was for".split()
d = sys.argv[1]
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + common + [w for ws in words.values() for w in ws] + ["##s", "##ing"]
open(f"{d}/vocab.txt", "w").write("\n".join(vocab) + "\n")
with open(f"{d}/train.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["text", "label"])
    for i in range(120):
        label = list(words)[i % 2]
        toks = random.sample(words[label], 4) + random.sample(common, 4)
        random.shuffle(toks); w.writerow([" ".join(toks), label])
with open(f"{d}/explain.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["text"])
    w.writerow(["The goals of the team, and the coach!"]); w.writerow(["bake the garlic sauce in a pan"])
PY

"$KILN" -q train --model bert --vocab "$tmp/vocab.txt" --max-length 32 --preset tiny --epochs 1 --batch-size 16 \
  --train "$tmp/train.csv" --out "$tmp/bert" >"$tmp/train.out" 2>"$tmp/train.err" \
  || { cat "$tmp/train.err"; fail "kiln train --model bert failed"; }
art="$tmp/bert/model"

check_ig() {  # check_ig JSONL: token spans, delta, completeness
/usr/bin/python3 - "$tmp/explain.csv" "$1" <<'PY' || fail "integrated gradients JSON lines ($1)"
import csv, json, sys
texts = [r["text"] for r in csv.DictReader(open(sys.argv[1]))]
lines = [json.loads(l) for l in open(sys.argv[2])]
assert len(lines) == 2
for text, e in zip(texts, lines):
    assert e["method"] == "ig" and e["space"] == "logit", e
    total = e["base_value"] + sum(a["value"] for a in e["attributions"])
    assert abs(abs(total - e["output"]) - e["delta"]) < 1e-6, (total, e["output"], e["delta"])
    assert e["delta"] <= 0.01 * max(abs(e["output"] - e["base_value"]), 1e-3), e["delta"]
    for a in e["attributions"]:
        piece = a["feature"][2:] if a["feature"].startswith("##") else a["feature"]
        if piece != "[UNK]":
            assert text[a["start"]:a["end"]].lower() == piece, (text[a["start"]:a["end"]], a)
    assert [a["feature"] for a in e["attributions"]][:3] == (["the", "goal", "##s"] if text.startswith("The") else ["bake", "the", "garlic"])
PY
}
"$KILN" explain "$art" --data "$tmp/explain.csv" --method ig --json "$tmp/ig.jsonl" >"$tmp/ig.out" 2>"$tmp/ig.err" \
  || { cat "$tmp/ig.err"; fail "kiln explain --method ig on BERT"; }
check_ig "$tmp/ig.jsonl"
grep -q "method ig" "$tmp/ig.out" || fail "no method in the text output: $(head -3 "$tmp/ig.out")"
"$KILN" explain "$art" --data "$tmp/explain.csv" --method ig --ig-baseline zero --steps 64 --json "$tmp/zero.jsonl" \
  >/dev/null 2>"$tmp/zero.err" || { cat "$tmp/zero.err"; fail "kiln explain --ig-baseline zero"; }
check_ig "$tmp/zero.jsonl"

# Bad flags: each message names the flag and the fix.
expect_error() {  # expect_error FRAGMENT ARGS...
  local frag="$1"; shift
  if "$KILN" explain "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"; then fail "kiln explain $* should fail"; fi
  grep -qF -- "$frag" "$tmp/bad.err" || fail "kiln explain $*: expected '$frag', got: $(cat "$tmp/bad.err")"
}
expect_error "--ig-baseline must be pad ([PAD] word embeddings) or zero (zero word embeddings), got 'mean'" \
  "$art" --data "$tmp/explain.csv" --method ig --ig-baseline mean
expect_error "--ig-baseline applies to --method ig, and this run explains with method partition" \
  "$art" --data "$tmp/explain.csv" --ig-baseline zero

# The server: "method": "ig" on the default (BERT) model.
start_server "$art"
post() { curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$BASE$1" -H 'Content-Type: application/json' --data-binary "$2"; printf ' '; cat "$tmp/body"; }
out=$(post /v1/explain '{"texts": ["The goals of the team, and the coach!"], "method": "ig"}')
[[ "$out" == "200 "* ]] || fail "explain with method ig: $out"
/usr/bin/python3 - "$tmp/body" "$tmp/ig.jsonl" <<'PY' || fail "/v1/explain ig answer"
import json, sys
r = json.load(open(sys.argv[1]))
e = r["explanations"][0]
cli = json.loads(open(sys.argv[2]).readline())
assert e["method"] == "ig" and "delta" in e, e
assert [a["feature"] for a in e["attributions"]] == [a["feature"] for a in cli["attributions"]]
assert max(abs(a["value"] - b["value"]) for a, b in zip(e["attributions"], cli["attributions"])) < 1e-5
PY
out=$(post /v1/explain '{"texts": ["the goal"]}')
[[ "$out" == "200 "* && "$out" == *'"method":"partition"'* ]] || fail "explain without method (auto = partition): $out"
out=$(post /v1/explain '{"texts": ["the goal"], "method": "shapley"}')
[[ "$out" == "400 "* && "$out" == *'"code":"bad_method"'* && "$out" == *"must be one of auto, linear, kernel, partition, ig, got 'shapley'"* ]] \
  || fail "unknown method: $out"
out=$(post /v1/explain '{"texts": ["the goal"], "method": 3}')
[[ "$out" == "400 "* && "$out" == *"field 'method' must be a string"* ]] || fail "method not a string: $out"
out=$(post /v1/explain '{"texts": ["the goal"], "method": "linear"}')
[[ "$out" == "400 "* && "$out" == *'"code":"bad_method"'* && "$out" == *"needs a model of family linear"* ]] \
  || fail "linear on BERT: $out"
out=$(post /v1/explain '{"texts": ["the goal"], "method": "ig", "colour": 1}')
[[ "$out" == "400 "* && "$out" == *'"code":"unknown_field"'* ]] || fail "other unknown fields still refused: $out"
echo "explain_bert_test: OK"
