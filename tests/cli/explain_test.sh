#!/usr/bin/env bash
# kiln explain end to end: a linear (logreg) artifact gets importance.json at train time; exact
# linear SHAP, Kernel SHAP and Owen values on its texts (JSON lines, text, HTML), additivity and
# spans checked in Python; integrated gradients on an mlp; --global; every bad-input message.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

/usr/bin/python3 - "$tmp" <<'PY' || fail "python3 is needed to generate the test data"
import csv, random, sys
random.seed(20)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
for name, n in (("train", 40), ("val", 10), ("explain", 1)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = list(words)[i % 3]
            toks = random.sample(words[label], 4) + random.sample(common, 3)
            random.shuffle(toks); w.writerow([" ".join(toks).capitalize() + ", " + toks[0] + "!", label])
with open(f"{sys.argv[1]}/empty.csv", "w") as f: f.write("text,label\n")
PY

"$KILN" -q train --train "$tmp/train.csv" --val "$tmp/val.csv" --model logreg --out "$tmp/lin" \
  >"$tmp/train.out" 2>"$tmp/train.err" || { cat "$tmp/train.err"; fail "kiln train (logreg) failed"; }
art="$tmp/lin/model"
test -s "$art/importance.json" || fail "kiln train wrote no importance.json for a linear-family artifact"
check_importance() {
/usr/bin/python3 - "$1" "$2" <<'PY' || fail "importance.json schema ($2 rows)"
import json, sys
g = json.load(open(sys.argv[1]))
assert g["method"] == "linear" and g["space"] == "logit" and g["rows"] == int(sys.argv[2]), g
assert [c["label"] for c in g["classes"]] == ["cooking", "finance", "sports"], g["classes"]
for lst in [c["features"] for c in g["classes"]] + [g["overall"]]:
    assert 0 < len(lst) <= 100
    v = [f["mean_abs"] for f in lst]
    assert v == sorted(v, reverse=True) and v[0] > 0, v
top = [f["feature"] for f in g["classes"][2]["features"][:5]]
assert set(top) & set("goal match team score league coach player win season stadium".split()), top
PY
}
check_importance "$art/importance.json" 30

# Exact linear SHAP (auto): text, JSON lines, HTML.
"$KILN" explain "$art" --data "$tmp/explain.csv" --top 3 --json "$tmp/lin.jsonl" --html "$tmp/lin.html" \
  >"$tmp/lin.out" 2>"$tmp/lin.err" || { cat "$tmp/lin.err"; fail "kiln explain (linear)"; }
grep -q "^example 3: .* (logit .*, method linear)" "$tmp/lin.out" || { cat "$tmp/lin.out"; fail "no per-example header"; }
grep -q "base .* + sum(phi) .* vs f(x) .* (error " "$tmp/lin.out" || fail "no additivity line"
test "$(grep -cE '^ +[+-][0-9]' "$tmp/lin.out")" = 9 || fail "--top 3 should print 3 attributions per example"
check_jsonl() {
/usr/bin/python3 - "$tmp/explain.csv" "$1" "$2" <<'PY' || fail "JSON lines of $2"
import csv, json, sys
texts = [r["text"] for r in csv.DictReader(open(sys.argv[1]))]
lines = [json.loads(l) for l in open(sys.argv[2])]
assert len(lines) == len(texts) == 3
for text, e in zip(texts, lines):
    assert e["method"] == sys.argv[3] and e["space"] == "logit" and e["label"] in ("cooking", "finance", "sports")
    total = e["base_value"] + sum(a["value"] for a in e["attributions"])
    assert abs(total - e["output"]) < 1e-6, (total, e["output"])
    for a in e["attributions"]:
        if a["start"] is None:
            assert a["feature"] == "(absent features)", a
            continue
        for s, t in a.get("spans", [[a["start"], a["end"]]]):
            assert text[s:t].lower() == a["feature"].lower(), (text[s:t], a)
    if sys.argv[3] == "linear":
        assert e["attributions"][-1]["feature"] == "(absent features)"
        assert any(len(a.get("spans", [])) >= 2 for a in e["attributions"]), "a repeated word lists every span"
        assert len(e["attributions"]) > 4, "JSON keeps every attribution whatever --top says"
PY
}
check_jsonl "$tmp/lin.jsonl" linear
grep -q "<span style=\"background:rgba(220,40,40" "$tmp/lin.html" || fail "HTML highlights no word red"
if grep -Eq "<link|<img|src=" "$tmp/lin.html"; then fail "HTML is not self-contained"; fi

for m in kernel partition; do
  "$KILN" explain "$art" --data "$tmp/explain.csv" --method "$m" --json - >"$tmp/$m.jsonl" 2>"$tmp/$m.err" \
    || { cat "$tmp/$m.err"; fail "kiln explain --method $m"; }
  check_jsonl "$tmp/$m.jsonl" "$m"
done

# Kernel SHAP with a background (hidden features take the background's values): on this linear
# model it equals exact linear SHAP with the same background; summarised by k-means it still adds
# up. L1 selection keeps at most K features.
"$KILN" explain "$art" --data "$tmp/explain.csv" --background "$tmp/val.csv" --json "$tmp/bl.jsonl" >/dev/null 2>"$tmp/bl.err" \
  || { cat "$tmp/bl.err"; fail "kiln explain --background (linear)"; }
"$KILN" explain "$art" --data "$tmp/explain.csv" --background "$tmp/val.csv" --method kernel --json "$tmp/bk.jsonl" \
  >/dev/null 2>"$tmp/bk.err" || { cat "$tmp/bk.err"; fail "kiln explain --method kernel --background"; }
"$KILN" explain "$art" --data "$tmp/explain.csv" --background "$tmp/train.csv" --background-k 4 --method kernel \
  --json "$tmp/bkm.jsonl" >/dev/null 2>"$tmp/bkm.err" || { cat "$tmp/bkm.err"; fail "kiln explain --background-k"; }
"$KILN" explain "$art" --data "$tmp/explain.csv" --method kernel --l1 "num_features(2)" --json "$tmp/l1.jsonl" \
  >/dev/null 2>"$tmp/l1.err" || { cat "$tmp/l1.err"; fail "kiln explain --l1"; }
/usr/bin/python3 - "$tmp" <<'PY' || fail "Kernel SHAP with a background / --l1"
import json, sys
d = sys.argv[1]
load = lambda n: [json.loads(l) for l in open(f"{d}/{n}.jsonl")]
for lin, ker in zip(load("bl"), load("bk")):
    assert ker["method"] == "kernel" and ker["attributions"][-1]["feature"] == "(absent features)", ker
    assert [a["feature"] for a in lin["attributions"]] == [a["feature"] for a in ker["attributions"]]
    assert [a.get("spans") for a in lin["attributions"]] == [a.get("spans") for a in ker["attributions"]]
    assert max(abs(a["value"] - b["value"]) for a, b in zip(lin["attributions"], ker["attributions"])) < 1e-4
    assert abs(lin["base_value"] - ker["base_value"]) < 1e-4
for e in load("bkm") + load("l1"):
    assert abs(e["base_value"] + sum(a["value"] for a in e["attributions"]) - e["output"]) < 1e-6, e
for e in load("l1"):
    assert sum(1 for a in e["attributions"] if a["value"] != 0) <= 2, e["attributions"]
PY

# --global: over --data, then the held-out sample again.
"$KILN" explain "$art" --global --data "$tmp/train.csv" 2>"$tmp/g.err" || { cat "$tmp/g.err"; fail "--global --data"; }
check_importance "$art/importance.json" 120
"$KILN" explain "$art" --global 2>"$tmp/g.err" || { cat "$tmp/g.err"; fail "--global"; }
check_importance "$art/importance.json" 30

# Integrated gradients on an mlp; linear SHAP refused there.
"$KILN" -q train --train "$tmp/train.csv" --model mlp --epochs 2 --out "$tmp/mlp" >/dev/null 2>"$tmp/mlp.err" \
  || { cat "$tmp/mlp.err"; fail "kiln train (mlp)"; }
"$KILN" explain "$tmp/mlp" --data "$tmp/explain.csv" --method ig --json - >"$tmp/ig.jsonl" 2>"$tmp/ig.err" \
  || { cat "$tmp/ig.err"; fail "kiln explain --method ig"; }
/usr/bin/python3 - "$tmp/ig.jsonl" <<'PY' || fail "IG completeness"
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    assert e["method"] == "ig" and "delta" in e
    assert e["delta"] <= 0.01 * max(abs(e["output"] - e["base_value"]), 1e-3), e["delta"]
PY

expect_error() {  # expect_error "message" args...
  local want="$1"; shift
  if "$KILN" "$@" >"$tmp/err.out" 2>"$tmp/err.txt"; then fail "kiln $* should fail"; fi
  grep -qF -- "$want" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "kiln $*: expected '$want'"; }
}
expect_error "needs a model of family linear (or the logreg preset), this artifact's family is 'mlp'" \
  explain "$tmp/mlp" --data "$tmp/explain.csv" --method linear
expect_error "--method must be one of auto, linear, kernel, partition, ig, got 'shapley'" \
  explain "$art" --data "$tmp/explain.csv" --method shapley
expect_error "--top must be >= 1" explain "$art" --data "$tmp/explain.csv" --top 0
expect_error "--nsamples must be >= 0" explain "$art" --data "$tmp/explain.csv" --nsamples -5
expect_error "kiln explain needs --data FILE" explain "$art"
expect_error "no rows to explain (--data is empty)" explain "$art" --data "$tmp/empty.csv"
expect_error "nope" explain "$art" --data "$tmp/explain.csv" --text-col nope
expect_error "missing.csv" explain "$art" --data "$tmp/missing.csv"
expect_error "--global writes ARTIFACT/importance.json only" explain "$art" --global --json "$tmp/x.jsonl"
expect_error "additive in logits only" explain "$art" --data "$tmp/explain.csv" --method linear --space probability
expect_error "--space must be logit or probability, got 'odds'" explain "$art" --data "$tmp/explain.csv" --space odds
expect_error "--l1 must be none, num_features(K) with K >= 1, aic or bic, got 'lasso'" \
  explain "$art" --data "$tmp/explain.csv" --method kernel --l1 lasso
expect_error "--l1 selects features for Kernel SHAP, and this run explains with method linear" \
  explain "$art" --data "$tmp/explain.csv" --l1 aic
expect_error "--background-k must be >= 0" explain "$art" --data "$tmp/explain.csv" --method kernel --background-k -1
expect_error "--background-k summarises Kernel SHAP's background, and this run explains with method linear" \
  explain "$art" --data "$tmp/explain.csv" --background "$tmp/val.csv" --background-k 2
expect_error "--background-k summarises --background, and no background was given" \
  explain "$art" --data "$tmp/explain.csv" --method kernel --background-k 2
expect_error "--background applies to --method linear (E[x]) and kernel" \
  explain "$art" --data "$tmp/explain.csv" --method partition --background "$tmp/val.csv"
expect_error "--ig-baseline applies to integrated gradients on BERT (token) models, and this artifact reads no tokens" \
  explain "$tmp/mlp" --data "$tmp/explain.csv" --method ig --ig-baseline zero
echo "explain CLI: ok"
