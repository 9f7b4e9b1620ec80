#!/usr/bin/env bash
# Images end to end: scikit-learn's 8x8 digits (python3-sklearn's digits.csv.gz, written here as a
# folder of PNGs per class) → kiln prepare --input DIR → kiln train --model cnn → evaluate → predict;
# plus bad images (error naming row and file, --on-bad-image skip counted) and bad flags.
set -euo pipefail
KILN="$1"
source "$KILN_SOURCE_DIR/tests/lib/require_tools.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DIGITS=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
if [[ ! -f "$DIGITS" ]]; then
  missing_tool "digits.csv.gz" python3-sklearn "the image pipeline on digits"
  exit 77
fi
# 8x8 gray PNGs, one folder per digit; every third image is kept (599 images) to keep the test short.
/usr/bin/python3 "$KILN_SOURCE_DIR/tests/lib/digits_png.py" "$DIGITS" "$tmp/digits" 3

"$KILN" -q prepare --input "$tmp/digits" --val-size 0.15 --test-size 0.25 --out "$tmp/prep" >"$tmp/prep.out" \
  || fail "prepare --input DIR"
head -1 "$tmp/prep/train.csv" | grep -qx "image,label" || fail "train.csv header: $(head -1 "$tmp/prep/train.csv")"
first="$(sed -n 2p "$tmp/prep/train.csv" | cut -d, -f1)"
[[ -f "$tmp/prep/$first" ]] || fail "image path '$first' does not resolve from the split file's folder"

"$KILN" -q train --train "$tmp/prep/train.csv" --val "$tmp/prep/val.csv" --test "$tmp/prep/test.csv" --model cnn \
  --epochs 6 --out "$tmp/run" >"$tmp/train.out" 2>"$tmp/train.err" || { cat "$tmp/train.err"; fail "train --model cnn"; }
grep -q "artifact: $tmp/run/model" "$tmp/train.out" || fail "no artifact path"
test -s "$tmp/run/model/image.json" || fail "the artifact has no image.json"
"$KILN" evaluate "$tmp/run/model" --data "$tmp/prep/test.csv" --json "$tmp/eval.json" >/dev/null || fail "evaluate"
/usr/bin/python3 - "$tmp/eval.json" <<'PY' || fail "digits test accuracy too low"
import json, sys
m = json.load(open(sys.argv[1]))
print("digits cnn test accuracy", m["accuracy"])
assert m["accuracy"] >= 0.85, m["accuracy"]
PY
# predict: from the CSV's image column, and from a list of paths (one per line).
"$KILN" predict "$tmp/run/model" --input "$tmp/prep/test.csv" --format csv >"$tmp/pred.jsonl" || fail "predict csv"
[[ $(wc -l <"$tmp/pred.jsonl") -eq $(($(wc -l <"$tmp/prep/test.csv") - 1)) ]] || fail "predict: one line per row"
grep -q '"label":"[0-9]"' "$tmp/pred.jsonl" || fail "predict output: $(head -1 "$tmp/pred.jsonl")"
echo "$tmp/prep/$first" | "$KILN" predict "$tmp/run/model" >"$tmp/one.jsonl" || fail "predict lines"
grep -q '"probability"' "$tmp/one.jsonl" || fail "predict lines output"

# Bad images: a corrupt and a missing file.
cp "$tmp/prep/train.csv" "$tmp/prep/bad.csv"
printf 'not a png' >"$tmp/prep/broken.png"
printf 'broken.png,3\nnowhere.png,4\n' >>"$tmp/prep/bad.csv"
set +e
"$KILN" -q train --train "$tmp/prep/bad.csv" --model cnn --epochs 1 --out "$tmp/bad" 2>"$tmp/bad.err"
rc=$?
set -e
[[ $rc -eq 1 ]] || fail "a corrupt image: exit $rc"
grep -q "bad.csv: example [0-9]* (label '3'), image 'broken.png': not a PNG or JPEG file" "$tmp/bad.err" \
  || fail "corrupt image message: $(cat "$tmp/bad.err")"
"$KILN" -q train --train "$tmp/prep/bad.csv" --model cnn --epochs 1 --on-bad-image skip --out "$tmp/skip" \
  >/dev/null 2>"$tmp/skip.err" || fail "--on-bad-image skip"
grep -q "skipped 2 row(s) with an unreadable image (bad_image)" "$tmp/skip.err" || fail "skip count: $(cat "$tmp/skip.err")"
set +e
"$KILN" -q train --train "$tmp/prep/train.csv" --model cnn --on-bad-image ignore --out "$tmp/x" 2>"$tmp/flag.err"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "bad --on-bad-image: exit $rc"
grep -q "on-bad-image must be 'error' or 'skip', got 'ignore'" "$tmp/flag.err" || fail "flag message: $(cat "$tmp/flag.err")"
# prepare counts skipped images in report.json.
mkdir -p "$tmp/digits/3" && printf 'junk' >"$tmp/digits/3/zz.png"
"$KILN" -q prepare --input "$tmp/digits" --on-bad-image skip --out "$tmp/prep2" >/dev/null || fail "prepare skip"
/usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['dropped']['bad_image'] == 1, r['dropped']" \
  "$tmp/prep2/report.json" || fail "report.json bad_image count"
# Text + image: a text column (the digit's parity, a weak hint) beside the image; the multimodal preset
# reads both (featurizer [tfidf, image], cross-attention fusion).
for split in train val test; do
  /usr/bin/python3 "$KILN_SOURCE_DIR/tests/lib/digits_text_csv.py" "$tmp/prep/$split.csv" "$tmp/prep/mm_$split.csv"
done
"$KILN" -q train --train "$tmp/prep/mm_train.csv" --val "$tmp/prep/mm_val.csv" --test "$tmp/prep/mm_test.csv" \
  --model multimodal --epochs 3 --out "$tmp/mm" >"$tmp/mm.out" 2>"$tmp/mm.err" || { cat "$tmp/mm.err"; fail "train --model multimodal"; }
grep -q '"family": "multimodal"' "$tmp/mm/model/kiln.json" || fail "the multimodal artifact's model family"
"$KILN" evaluate "$tmp/mm/model" --data "$tmp/prep/mm_test.csv" >/dev/null || fail "evaluate multimodal"
"$KILN" predict "$tmp/mm/model" --input "$tmp/prep/mm_test.csv" --format csv >"$tmp/mm_pred.jsonl" || fail "predict multimodal"
[[ $(wc -l <"$tmp/mm_pred.jsonl") -eq $(($(wc -l <"$tmp/prep/mm_test.csv") - 1)) ]] || fail "multimodal predict: one line per row"
echo "image_test: ok"
