#!/usr/bin/env bash
# kiln optimize end to end: train a small mlp, make its int8 variants (dynamic, static entropy) and
# its bf16 variant (where the CPU has bf16), predict/evaluate the optimized artifact unchanged, and
# every bad-input message. The mlp's layers are small: --min-int8-weights 0 quantizes them anyway
# (by default they stay fp32 and optimize refuses to write a variant that would be slower).
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

/usr/bin/python3 - "$tmp" <<'PY' || fail "python3 is needed to generate the test data"
import csv, random, sys
random.seed(5)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
for name, n in (("train", 60), ("val", 20), ("calib", 20)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = list(words)[i % 3]
            toks = random.sample(words[label], 4) + random.sample(common, 4)
            random.shuffle(toks); w.writerow([" ".join(toks), label])
PY

"$KILN" -q train --train "$tmp/train.csv" --val "$tmp/val.csv" --model mlp --epochs 6 --out "$tmp/run" \
  >"$tmp/train.out" 2>"$tmp/train.err" || { cat "$tmp/train.err"; fail "kiln train failed"; }
art="$tmp/run/model"
test -s "$art/heldout.jsonl" || fail "the trained artifact keeps no heldout.jsonl"

# Dynamic int8 (the default): table, JSON report, the variant as the default.
"$KILN" optimize "$art" --out "$tmp/int8" --json "$tmp/report.json" --bench-seconds 0.05 --min-int8-weights 0 \
  >"$tmp/opt.out" 2>"$tmp/opt.err" || { cat "$tmp/opt.err"; fail "kiln optimize failed"; }
grep -q "variant 'int8' on engine [a-z]*: [0-9]* linear_int8_dynamic; not reduced: none" "$tmp/opt.err" \
  || { cat "$tmp/opt.err"; fail "no layer report"; }
grep -qE "^verdict +(faster|SLOWER)" "$tmp/opt.out" || { cat "$tmp/opt.out"; fail "no verdict row"; }
grep -q "accuracy gate on .*heldout.jsonl" "$tmp/opt.err" || fail "no accuracy gate line"
grep -q "throughput (ex/s, batch 32)" "$tmp/opt.out" || { cat "$tmp/opt.out"; fail "no before/after table"; }
grep -q "latency batch 1 P99 (ms)" "$tmp/opt.out" || fail "no latency row"
grep -q "optimized artifact written to $tmp/int8 (default variant: int8)" "$tmp/opt.out" || fail "no written line"
/usr/bin/python3 - "$tmp/report.json" "$tmp/int8/kiln.json" <<'PY' || fail "optimize report / manifest"
import json, sys
r = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))
assert r["accuracy"]["checked"] and r["accuracy"]["passed"], r["accuracy"]
assert abs(r["accuracy"]["drop_points"]) <= 1.0, r["accuracy"]
for side in ("before", "after"):
    b = r["benchmark"][side]
    for k in ("examples_per_second", "latency_batch1_p50_ms", "latency_batch1_p99_ms", "weight_bytes", "peak_rss_mib"):
        assert b[k] > 0, (side, k, b)
assert r["benchmark"]["after"]["weight_bytes"] < r["benchmark"]["before"]["weight_bytes"]
assert isinstance(r["benchmark"]["slower_than_fp32"], bool)
assert [l["op"] for l in r["layers"]] == ["linear_int8_dynamic"] * len(r["layers"]), r["layers"]
assert m["default_variant"] == "int8"
v = m["variants"]["int8"]
assert v["ops"] == ["linear_int8_dynamic"] and v["file"] == "variants/int8.safetensors"
assert v["details"]["accuracy"]["passed"] is True
PY

# predict / evaluate run the optimized artifact without flags.
printf 'goal match team score\nrecipe oven salt butter\n' >"$tmp/in.txt"
"$KILN" predict "$tmp/int8" --input "$tmp/in.txt" >"$tmp/pred.out" 2>"$tmp/pred.err" \
  || { cat "$tmp/pred.err"; fail "predict on the optimized artifact"; }
test "$(wc -l <"$tmp/pred.out")" = 2 || fail "predict printed $(wc -l <"$tmp/pred.out") lines"
grep -q '"label":"sports"' "$tmp/pred.out" || { cat "$tmp/pred.out"; fail "int8 predict lost the obvious label"; }
"$KILN" evaluate "$tmp/int8" --data "$tmp/val.csv" --json "$tmp/eval.json" >"$tmp/eval.out" 2>"$tmp/eval.err" \
  || fail "evaluate on the optimized artifact"
grep -q "macro avg" "$tmp/eval.out" || fail "evaluate printed no table"
grep -q "running variant int8" "$tmp/eval.err" || fail "evaluate did not say which variant it runs"
grep -q '"variant": "int8"' "$tmp/eval.json" || fail "evaluate --json lacks the variant: $(cat "$tmp/eval.json")"
"$KILN" evaluate "$tmp/int8" --data "$tmp/val.csv" --variant fp32 --json "$tmp/eval32.json" >/dev/null 2>&1
grep -q '"variant": "fp32"' "$tmp/eval32.json" || fail "evaluate --variant fp32 --json: $(cat "$tmp/eval32.json")"

# Static int8 with the entropy calibrator.
"$KILN" optimize "$art" --out "$tmp/static" --int8 static --calibration "$tmp/calib.csv" --calibrator entropy \
  --calibration-size 40 --no-bench --min-int8-weights 0 >"$tmp/static.out" 2>"$tmp/static.err" || { cat "$tmp/static.err"; fail "static optimize"; }
/usr/bin/python3 - "$tmp/static/kiln.json" <<'PY' || fail "static manifest"
import json, sys
d = json.load(open(sys.argv[1]))["variants"]["int8"]["details"]
assert d["int8"] == "static" and d["calibrator"] == "entropy" and d["calibration_examples"] == 40, d
PY

# The gate: no drop is allowed at --max-drop 0 only when int8 loses nothing; a negative drop is refused.
expect_error() {  # expect_error CODE MESSAGE args...
  local code="$1" msg="$2"; shift 2
  set +e; "$KILN" optimize "$@" >"$tmp/err.out" 2>"$tmp/err.txt"; local rc=$?; set -e
  test "$rc" = "$code" || { cat "$tmp/err.txt"; fail "expected exit $code, got $rc for: $*"; }
  grep -qF -- "$msg" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "expected '$msg' for: $*"; }
}
expect_error 2 "--int8 must be dynamic or static, got 'int4'" "$art" --out "$tmp/x" --int8 int4
expect_error 2 "--calibrator must be entropy, percentile or minmax, got 'kl'" "$art" --out "$tmp/x" --calibrator kl
expect_error 2 "--int8 static needs --calibration FILE" "$art" --out "$tmp/x" --int8 static
expect_error 2 "--calibration is for --int8 static" "$art" --out "$tmp/x" --calibration "$tmp/calib.csv"
expect_error 2 "optimize.max_drop (--max-drop) must be >= 0" "$art" --out "$tmp/x" --max-drop -1
expect_error 2 "optimize.calibration_size (--calibration-size) must be >= 1, got 0" "$art" --out "$tmp/x" --calibration-size 0
expect_error 2 "--keep-fp32: module 'nope' is not a Linear or Conv+BN layer" "$art" --out "$tmp/x" --keep-fp32 nope
# The default mlp's only Linear (output, hidden x 3) is below the int8 threshold: refused, not slower.
expect_error 2 "nothing would be faster than fp32: lower --min-int8-weights" "$art" --out "$tmp/x"
grep -qE "output: small: [0-9]+ x 3 = [0-9]+ weights < --min-int8-weights 131072 \(int8 is slower" "$tmp/err.txt" \
  || { cat "$tmp/err.txt"; fail "the refusal does not name the small layer"; }
expect_error 2 "--bf16 and --int8 choose two precisions" "$art" --out "$tmp/x" --bf16 --int8 static
expect_error 2 "--min-int8-weights applies to int8 only" "$art" --out "$tmp/x" --bf16 --min-int8-weights 10
expect_error 2 "optimize.min_int8_weights (--min-int8-weights) must be >= 0, got -1" "$art" --out "$tmp/x" --min-int8-weights -1
expect_error 2 "--calibration is for --int8 static (dynamic int8 and bf16" "$art" --out "$tmp/x" --bf16 --calibration "$tmp/calib.csv"
expect_error 2 "is the input artifact itself" "$art" --out "$art" --no-bench
expect_error 1 "artifact directory not found" "$tmp/none" --out "$tmp/x"
test ! -e "$tmp/x" || fail "a failed optimize left $tmp/x behind"
# bf16 where the CPU has it (AVX-512 BF16 or AMX-BF16), a clear refusal elsewhere.
if grep -qwE "avx512_bf16|amx_bf16" /proc/cpuinfo; then
  "$KILN" optimize "$art" --out "$tmp/bf16" --bf16 --no-bench >"$tmp/bf16.out" 2>"$tmp/bf16.err" \
    || { cat "$tmp/bf16.err"; fail "bf16 optimize"; }
  grep -q "default variant: bf16" "$tmp/bf16.out" || fail "no bf16 variant"
  "$KILN" predict "$tmp/bf16" --input "$tmp/in.txt" | grep -q '"label":"sports"' || fail "bf16 predict lost the obvious label"
else
  expect_error 2 "--bf16 needs a CPU with AVX-512 BF16 or AMX-BF16" "$art" --out "$tmp/x" --bf16
fi
# --variant chooses the weights; a name the artifact lacks is refused.
"$KILN" predict "$tmp/int8" --input "$tmp/in.txt" >/dev/null 2>"$tmp/v.err"
grep -q "running variant int8" "$tmp/v.err" || fail "predict did not say which variant it runs"
"$KILN" predict "$tmp/int8" --input "$tmp/in.txt" --variant fp32 >"$tmp/fp32.out"
"$KILN" predict "$art" --input "$tmp/in.txt" >"$tmp/orig.out"
cmp -s "$tmp/fp32.out" "$tmp/orig.out" || fail "--variant fp32 differs from the original artifact"
set +e; "$KILN" predict "$tmp/int8" --input "$tmp/in.txt" --variant int4 >/dev/null 2>"$tmp/err.txt"; rc=$?; set -e
test "$rc" = 2 || fail "predict --variant int4 exited $rc"
grep -qF "variant 'int4' is not in artifact" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "predict --variant int4 message"; }
echo "optimize_test: ok"
