#!/usr/bin/env bash
# kiln train / evaluate / predict end to end on a small generated dataset, plus bad-input messages.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Three topics with distinct vocabularies; the test split (300 rows) spans more than one forward chunk.
/usr/bin/python3 - "$tmp" <<'PY' 2>/dev/null || {
import csv, random, sys
random.seed(3)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
for name, n in (("train", 60), ("val", 15), ("test", 100)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = list(words)[i % 3]
            toks = random.sample(words[label], 4) + random.sample(common, 4)
            random.shuffle(toks); w.writerow([" ".join(toks), label])
PY
  fail "python3 is needed to generate the test data"
}

for model in linear mlp embedbag fasttext; do
  "$KILN" -q train --train "$tmp/train.csv" --val "$tmp/val.csv" --test "$tmp/test.csv" --model "$model" \
    --epochs 8 --out "$tmp/run-$model" >"$tmp/train-$model.out" 2>"$tmp/train-$model.err" \
    || { cat "$tmp/train-$model.err"; fail "kiln train --model $model failed"; }
  grep -q "artifact: $tmp/run-$model/model" "$tmp/train-$model.out" || fail "train did not print the artifact path"
  grep -q "macro avg" "$tmp/train-$model.out" || fail "train did not print the metrics table"
  test -s "$tmp/run-$model/metrics.jsonl" || fail "no metrics.jsonl"
  grep -q '"type":"epoch"' "$tmp/run-$model/metrics.jsonl" || fail "metrics.jsonl has no epoch records"

  "$KILN" evaluate "$tmp/run-$model/model" --data "$tmp/test.csv" --json "$tmp/eval-$model.json" >"$tmp/eval.out"
  /usr/bin/python3 - "$tmp/eval-$model.json" "$model" <<'PY' || fail "evaluate JSON for $model"
import json, sys
m = json.load(open(sys.argv[1]))
for k in ("accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix", "labels"):
    assert k in m, k
assert m["macro_f1"] > 0.8, (sys.argv[2], m["macro_f1"])
assert set(m["per_class"]) == {"cooking", "finance", "sports"}
PY
  # The test metrics kiln train printed and stored are exactly what kiln evaluate computes from the
  # saved artifact (one inference path), and the train output's table is evaluate's table.
  /usr/bin/python3 - "$tmp/run-$model/model/kiln.json" "$tmp/eval-$model.json" <<'PY' || fail "train --test metrics differ from evaluate for $model"
import json, sys
trained = json.load(open(sys.argv[1]))["metrics"]["test"]
evaluated = json.load(open(sys.argv[2]))
assert evaluated.pop("variant") == "fp32", evaluated  # the weights evaluate ran
assert trained == evaluated, (trained, evaluated)
PY
  sed -n '/^test set/,/^artifact:/p' "$tmp/train-$model.out" | sed '1d;$d' >"$tmp/train-table"
  grep -v '^metrics written' "$tmp/eval.out" >"$tmp/eval-table"
  cmp -s "$tmp/train-table" "$tmp/eval-table" || { diff "$tmp/train-table" "$tmp/eval-table"; fail "train and evaluate print different tables for $model"; }
  # The artifact records where its rows came from: the files, not a named dataset.
  /usr/bin/python3 - "$tmp/run-$model/model/kiln.json" "$tmp/train.csv" <<'PY' || fail "kiln.json data provenance for $model"
import json, os, sys
d = json.load(open(sys.argv[1]))["training"]["data"]
assert "dataset" not in d, d
assert d["train_file"] == os.path.realpath(sys.argv[2]) or d["train_file"] == os.path.abspath(sys.argv[2]), d
assert d["test_file"].endswith("/test.csv") and d["val_file"].endswith("/val.csv"), d
PY
done

# predict: stdin lines, top-k.
printf 'bake the butter in the oven\nthe team won the match\n' | "$KILN" predict "$tmp/run-linear/model" --top-k 2 >"$tmp/pred.jsonl"
test "$(wc -l <"$tmp/pred.jsonl")" -eq 2 || fail "predict should print one line per input"
head -1 "$tmp/pred.jsonl" | grep -q '"label":"cooking"' || fail "predict: wrong label: $(head -1 "$tmp/pred.jsonl")"
grep -q '"top_k":\[{"label"' "$tmp/pred.jsonl" || fail "predict: no top_k"
"$KILN" predict "$tmp/run-linear/model" --input "$tmp/test.csv" --format csv | wc -l | grep -qx 300 || fail "predict csv"

# resume continues an interrupted run directory.
"$KILN" -q train --train "$tmp/train.csv" --val "$tmp/val.csv" --model linear --epochs 3 --out "$tmp/run-linear" --resume \
  >/dev/null 2>"$tmp/resume.err" || { cat "$tmp/resume.err"; fail "resume of a finished run failed"; }

# Bad input.
expect_fail() {  # expected-exit-code expected-text command...
  local code="$1" text="$2"; shift 2
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
  [[ $rc -eq $code ]] || { cat "$tmp/err"; fail "expected exit $code, got $rc: $*"; }
  grep -qF -- "$text" "$tmp/err" || { cat "$tmp/err"; fail "expected '$text' in stderr: $*"; }
}
expect_fail 2 "--model: 'forest' is not a registered model family or preset; known: bert, cnn, embedbag, fasttext, linear, logreg, mlp, multimodal" \
  "$KILN" train --train "$tmp/train.csv" --model forest --out "$tmp/x"
expect_fail 2 "an ensemble is not trained from a preset: kiln train without --model selects among the candidates" \
  "$KILN" train --train "$tmp/train.csv" --model ensemble --out "$tmp/x"
# --help lists the families from the registry.
# (Into a file first: `grep -q` exits at the first match, and under pipefail the help's SIGPIPE failed
# the pipeline on a loaded machine.)
"$KILN" train --help >"$tmp/train_help.txt"
grep -qF "Model family or preset: bert | cnn | embedbag | fasttext | linear | logreg | mlp | multimodal" "$tmp/train_help.txt" \
  || fail "train --help does not list the model families"
# A run directory (the --out of train) works wherever an artifact is expected, and says which it used.
printf 'bake the butter in the oven\n' | "$KILN" predict "$tmp/run-linear" >"$tmp/pred-run.jsonl" 2>"$tmp/pred-run.err"
grep -q '"label":"cooking"' "$tmp/pred-run.jsonl" || fail "predict on a run directory: $(cat "$tmp/pred-run.jsonl")"
grep -qF "using the artifact $tmp/run-linear/model of run directory $tmp/run-linear" "$tmp/pred-run.err" \
  || { cat "$tmp/pred-run.err"; fail "predict did not say which artifact of the run directory it used"; }
"$KILN" evaluate "$tmp/run-linear" --data "$tmp/test.csv" >/dev/null 2>&1 || fail "evaluate on a run directory"
mkdir -p "$tmp/empty-run"
expect_fail 1 "$tmp/empty-run/kiln.json: missing, and so is $tmp/empty-run/model/kiln.json; this is not a Kiln artifact directory: pass the directory that holds kiln.json" \
  "$KILN" predict "$tmp/empty-run" --input "$tmp/test.csv" --format csv
expect_fail 2 "--epochs" "$KILN" train --train "$tmp/train.csv" --epochs 0 --out "$tmp/x"
expect_fail 1 "nope.csv" "$KILN" train --train "$tmp/nope.csv" --out "$tmp/x"
printf 'model:\n  family: mlp\n  params: {dropout: 1.5}\n' >"$tmp/bad.yaml"
expect_fail 2 "dropout" "$KILN" train --train "$tmp/train.csv" --config "$tmp/bad.yaml" --out "$tmp/x"
printf 'train:\n  epoch: 3\n' >"$tmp/typo.yaml"
expect_fail 2 "unknown key 'train.epoch'" "$KILN" train --train "$tmp/train.csv" --config "$tmp/typo.yaml" --out "$tmp/x"
printf 'model: {family: linear}\n' >"$tmp/lin.yaml"
expect_fail 2 "conflicts with" "$KILN" train --train "$tmp/train.csv" --config "$tmp/lin.yaml" --model mlp --out "$tmp/x"
expect_fail 1 "this is not a Kiln artifact" "$KILN" predict "$tmp" --input "$tmp/test.csv"
expect_fail 1 "no checkpoint to resume from" "$KILN" train --train "$tmp/train.csv" --resume --out "$tmp/fresh"
test ! -e "$tmp/x/model" || fail "a failed train left an artifact"

# No --model and no --config: model selection among the candidates, a table, the winner's recipe.
"$KILN" train --train "$tmp/train.csv" --val "$tmp/val.csv" --test "$tmp/test.csv" --epochs 4 --out "$tmp/sel" \
  >"$tmp/sel.out" 2>"$tmp/sel.err" || { cat "$tmp/sel.err"; fail "kiln train with model selection failed"; }
grep -qF "model selection among fasttext, logreg, mlp on validation macro-F1; budget 12 passes" "$tmp/sel.err" \
  || { cat "$tmp/sel.err"; fail "selection did not print its candidates and budget"; }
for c in fasttext logreg mlp; do
  grep -qE "^$c +(chosen|complete|pruned at epoch [0-9]+|stopped: budget|skipped: budget|ensemble member) " "$tmp/sel.out" \
    || { cat "$tmp/sel.out"; fail "the selection table has no row for $c"; }
done
# The ensemble of the two best comes last: chosen, or not better than the best single model.
grep -qE "^ensemble +(chosen|not better than [a-z]+) " "$tmp/sel.out" \
  || { cat "$tmp/sel.out"; fail "the selection table has no ensemble row"; }
chosen=$(sed -n 's/^chosen: \([a-z]*\) .*/\1/p' "$tmp/sel.out")
[[ -n "$chosen" ]] || { cat "$tmp/sel.out"; fail "selection did not say which candidate it chose"; }
/usr/bin/python3 - "$tmp/sel/model/kiln.json" "$chosen" <<'PY' || fail "the manifest does not record the selection"
import json, sys
m = json.load(open(sys.argv[1]))
sel = m["training"]["selection"]
assert sel["chosen"] == sys.argv[2], sel["chosen"]
assert [c["name"] for c in sel["candidates"]] == ["fasttext", "logreg", "mlp", "ensemble"], sel["candidates"]
assert sel["work_passes"] <= sel["budget_passes"] == 12, sel
ens = sel["ensemble"]
assert (m["model"]["family"] == "ensemble") == (sys.argv[2] == "ensemble") == ens["chosen"], (m["model"]["family"], ens)
assert ens["chosen"] == (ens["val_macro_f1"] > ens["best_single_val_macro_f1"]), ens
PY
# The written recipe trains the chosen model again: one model's config, or for an ensemble the
# selection that made it (the same candidates and budget give the same ensemble).
"$KILN" -q train --train "$tmp/train.csv" --val "$tmp/val.csv" --config "$tmp/sel/selected_config.yaml" --out "$tmp/again" \
  >"$tmp/again.out" 2>"$tmp/again.err" || { cat "$tmp/again.err"; fail "the selected recipe does not train"; }
if [[ $chosen == ensemble ]]; then
  grep -q "^chosen: ensemble " "$tmp/again.out" || { cat "$tmp/again.out"; fail "the ensemble's selection did not choose it again"; }
else
  grep -q "model selection" "$tmp/again.out" && fail "--config of the selected recipe ran a selection again"
fi
# A selection config with ensemble: always gives an ensemble artifact (two members, each with its
# own featurizer): predict, evaluate and explain run on it; ONNX export says it has no exporter.
cat > "$tmp/ens.yaml" <<'YAML'
selection:
  budget: 6
  ensemble: always
  candidates:
    - {name: logreg, config: {train: {epochs: 3}}}
    - {name: fasttext, config: {train: {epochs: 3}}}
YAML
"$KILN" train --train "$tmp/train.csv" --val "$tmp/val.csv" --config "$tmp/ens.yaml" --out "$tmp/ens" \
  >"$tmp/ens.out" 2>"$tmp/ens.err" || { cat "$tmp/ens.err"; fail "the ensemble selection config does not train"; }
grep -q "^chosen: ensemble " "$tmp/ens.out" || { cat "$tmp/ens.out"; fail "ensemble: always did not choose the ensemble"; }
grep -q '"always"' "$tmp/ens/selected_config.yaml" || fail "the ensemble's recipe lost ensemble: always"
grep -q '"keep_at_rungs": 2' "$tmp/ens/selected_config.yaml" || fail "the ensemble's recipe lost keep_at_rungs"
printf 'bake the butter in the oven\n' | "$KILN" predict "$tmp/ens" >"$tmp/ens-pred.jsonl" 2>/dev/null \
  || fail "predict on an ensemble artifact"
grep -q '"label":"cooking"' "$tmp/ens-pred.jsonl" || fail "the ensemble predicts: $(cat "$tmp/ens-pred.jsonl")"
"$KILN" evaluate "$tmp/ens" --data "$tmp/test.csv" >"$tmp/ens-eval.txt" 2>&1 || { cat "$tmp/ens-eval.txt"; fail "evaluate on an ensemble"; }
printf 'text\nbake the butter in the oven\n' > "$tmp/one.csv"
"$KILN" explain "$tmp/ens" --data "$tmp/one.csv" --json "$tmp/ens-explain.jsonl" >/dev/null 2>"$tmp/ens-explain.err" \
  || { cat "$tmp/ens-explain.err"; fail "explain on an ensemble"; }
grep -q '"method":"kernel"' "$tmp/ens-explain.jsonl" || fail "an ensemble is not explained with Kernel SHAP: $(head -c 300 "$tmp/ens-explain.jsonl")"
expect_fail 2 "family 'ensemble' has no ONNX exporter" "$KILN" export "$tmp/ens" --out "$tmp/ens.onnx"
# A selection config names what does not belong in it.
printf 'selection:\n  candidates: [{name: logreg, config: {}}]\nmodel: {family: mlp}\n' > "$tmp/badsel.yaml"
expect_fail 2 "model does not belong in a model selection's config" \
  "$KILN" train --train "$tmp/train.csv" --val "$tmp/val.csv" --config "$tmp/badsel.yaml" --out "$tmp/x"
printf 'selection:\n  candidates: logreg\n' > "$tmp/badsel.yaml"
expect_fail 2 "selection.candidates must be a list of {name, config}" \
  "$KILN" train --train "$tmp/train.csv" --val "$tmp/val.csv" --config "$tmp/badsel.yaml" --out "$tmp/x"
printf 'selection:\n  keep_at_rungs: 0\n  candidates: [{name: logreg, config: {}}]\n' > "$tmp/badsel.yaml"
expect_fail 2 "selection.keep_at_rungs must be a whole number >= 1 (how many of the best candidates at a pruning rung always go on), got 0" \
  "$KILN" train --train "$tmp/train.csv" --val "$tmp/val.csv" --config "$tmp/badsel.yaml" --out "$tmp/x"
expect_fail 2 "--budget applies to model selection, which --model turns off (it trains one model); drop --budget or --model" \
  "$KILN" train --train "$tmp/train.csv" --model linear --budget 5 --out "$tmp/x"
expect_fail 2 "--max-time applies to model selection, which --lr turns off" \
  "$KILN" train --train "$tmp/train.csv" --lr 0.1 --max-time 1m --out "$tmp/x"
expect_fail 2 "--max-time" "$KILN" train --train "$tmp/train.csv" --max-time soon --out "$tmp/x"
expect_fail 1 "give --val FILE or choose a model with --model NAME" \
  "$KILN" train --train <(printf 'text,label\na b,x\nc d,y\n') --out "$tmp/x"
echo "train CLI: all checks passed"
