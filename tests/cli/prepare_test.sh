#!/usr/bin/env bash
# CLI tests for `kiln prepare`: outputs, report, and one test per bad-input path (exit code and message).
# Usage: prepare_test.sh /path/to/kiln
set -euo pipefail

KILN="${1:?usage: prepare_test.sh /path/to/kiln}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kiln_prepare_test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

fail() {
  echo "FAIL: $*" >&2
  if [[ -f stderr.txt ]]; then echo "--- stderr:" >&2; cat stderr.txt >&2; fi
  if [[ -f stdout.txt ]]; then echo "--- stdout:" >&2; cat stdout.txt >&2; fi
  exit 1
}

# run EXPECTED_RC ARGS...: runs kiln prepare, captures stdout/stderr, checks the exit code.
run() {
  local want="$1"
  shift
  local rc=0
  "$KILN" prepare "$@" >stdout.txt 2>stderr.txt || rc=$?
  [[ "$rc" == "$want" ]] || fail "kiln prepare $* exited $rc, expected $want"
}

stderr_has() { grep -qF -- "$1" stderr.txt || fail "stderr lacks: $1"; }
stdout_has() { grep -qF -- "$1" stdout.txt || fail "stdout lacks: $1"; }

# A failed run must leave neither the output directory nor a temporary sibling.
no_output() {
  [[ ! -e "$1" ]] || fail "failed run left $1"
  local left
  left="$(find "$(dirname "$1")" -maxdepth 1 -name ".$(basename "$1").tmp-*" | head -1)"
  [[ -z "$left" ]] || fail "failed run left temporary $left"
}

# --- a good input: 2 classes x 30 rows, one empty text, one duplicate, one other label.
{
  echo 'id,text,label'
  for i in $(seq 1 30); do
    echo "$i,\"positive, number $i\",pos"
    echo "$((i + 100)),negative number $i,neg"
  done
  echo '200,,neg'
  echo '201,negative number 1,neg'
  echo '202,"multi',
  echo 'line ""quoted""",other'
} >good.csv

run 0 --input good.csv --out out --dedupe --rare-classes train-only
for f in train.csv test.csv report.json; do [[ -f out/$f ]] || fail "missing out/$f"; done
[[ ! -e out/val.csv ]] || fail "val.csv written without --val-size"
head -1 out/train.csv | grep -qx 'text,label' || fail "train.csv header is not text,label"
train_rows=$(/usr/bin/python3 -c 'import csv,sys; csv.field_size_limit(1 << 30); print(sum(1 for _ in csv.DictReader(open("out/train.csv"))))')
test_rows=$(/usr/bin/python3 -c 'import csv,sys; csv.field_size_limit(1 << 30); print(sum(1 for _ in csv.DictReader(open("out/test.csv"))))')
[[ "$train_rows" == 49 && "$test_rows" == 12 ]] || fail "split sizes train=$train_rows test=$test_rows, expected 49/12"
/usr/bin/python3 - <<'EOF' || fail "report.json content"
import json
r = json.load(open("out/report.json"))
assert r["rows_read"] == 63, r["rows_read"]
assert r["rows_kept"] == 61, r["rows_kept"]
assert r["dropped"] == {"missing_text": 1, "missing_label": 0, "label_not_allowed": 0, "duplicate": 1, "bad_utf8": 0}, r["dropped"]
assert r["class_counts_before"] == {"pos": 30, "neg": 32, "other": 1}, r["class_counts_before"]
assert r["splits"]["train"]["rows"] == 49 and r["splits"]["test"]["rows"] == 12, r["splits"]
assert r["splits"]["train"]["class_counts"]["other"] == 1, r["splits"]
for k in ("min", "max", "mean", "p50", "p90", "p99"):
    assert k in r["text_length"], k
EOF
stdout_has "rows read      63"
stdout_has "duplicate"
stdout_has "imbalance"
stdout_has "wrote out"
grep -qE '^pos +30 +30 +[0-9]+ +[0-9]+$' stdout.txt || fail "class table row for pos"
[[ -z "$(find . -maxdepth 1 -name '.out.tmp-*')" ]] || fail "temporary sibling left after success"

# Same seed, same split; rerun replaces the earlier output.
cp out/train.csv train_first.csv
run 0 --input good.csv --out out --dedupe --rare-classes train-only
cmp -s train_first.csv out/train.csv || fail "same seed gave a different split"

# Validation split, labels filter, stdin, JSONL.
run 0 --input good.csv --out out_val --val-size 0.2 --labels pos,neg
[[ -f out_val/val.csv ]] || fail "--val-size 0.2 wrote no val.csv"
stdout_has "val"
/usr/bin/python3 -c 'import json; r=json.load(open("out_val/report.json")); assert r["dropped"]["label_not_allowed"] == 1; assert r["splits"]["val"]["rows"] > 0' \
  || fail "val report"
printf '{"text": "a", "label": 1}\n{"text": "b", "label": 1}\n{"text": "c", "label": 2}\n{"text": "d", "label": 2}\n' >nums.jsonl
run 0 --input - --format jsonl --test-size 2 --out out_stdin <nums.jsonl
grep -q '^a,1$\|^b,1$' out_stdin/train.csv || fail "numeric labels not written as text"
stdout_has "<stdin>"

# --help shows every flag with its default.
"$KILN" prepare --help >stdout.txt 2>&1 || fail "--help failed"
for flag in "--input" "--format TEXT=auto" "--text-col TEXT=text" "--label-col TEXT=label" "--labels" \
  "--test-size FLOAT=0.2" "--val-size FLOAT=0" "--seed UINT=42" "--dedupe" "--on-bad-utf8 TEXT=error" \
  "--rare-classes TEXT=error" "--out"; do
  stdout_has "$flag"
done

# --- bad input: each names where, what, and how to fix; no output is left behind.
run 1 --input missing.csv --out bad
stderr_has "missing.csv: input file not found"
no_output "$WORK/bad"

# A directory is read as an image data set (a folder per class); an empty one says so.
mkdir adir
run 1 --input adir --out bad
stderr_has "adir: no class folders; an image data set is a folder holding one folder per class"
no_output "$WORK/bad"

: >empty.csv
run 1 --input empty.csv --out bad
stderr_has "empty.csv: empty file: no header row"
no_output "$WORK/bad"

echo 'text,label' >header_only.csv
run 1 --input header_only.csv --out bad
stderr_has "header_only.csv: no data rows"
no_output "$WORK/bad"

run 1 --input good.csv --text-col body --out bad
stderr_has "good.csv:1: column 'body' not found in the header; columns found: 'id', 'text', 'label'"
no_output "$WORK/bad"

{ echo 'text,label'; for i in $(seq 1 5); do echo "row $i,a"; done; echo '"never closed,b'; echo 'x,y'; } >unterminated.csv
run 1 --input unterminated.csv --out bad
stderr_has "unterminated.csv:9:1: unterminated quoted field (opened at 7:1)"
no_output "$WORK/bad"

printf 'text,label\na,b\nc,d,e\n' >ragged.csv
run 1 --input ragged.csv --out bad
stderr_has "ragged.csv:3:1: row 2 has 3 fields, expected 2"
no_output "$WORK/bad"

printf 'text,label\nok,a\ncaf\xe9,b\n' >latin1.csv
run 1 --input latin1.csv --out bad
stderr_has "latin1.csv:3:1: invalid UTF-8 in row 2, field 'text', at byte 3 of the value"
stderr_has "--on-bad-utf8"
no_output "$WORK/bad"
{ printf 'text,label\n'; for i in $(seq 1 6); do echo "ok $i,a"; echo "fine $i,b"; done; printf 'caf\xe9,b\n'; } >latin1b.csv
run 0 --input latin1b.csv --on-bad-utf8 skip --out out_skip
/usr/bin/python3 -c 'import json; assert json.load(open("out_skip/report.json"))["dropped"]["bad_utf8"] == 1' || fail "bad_utf8 count"

printf '{"text": "a", "label": "b"}\n{"text": "a" "label": "b"}\n' >syntax.jsonl
run 1 --input syntax.jsonl --out bad
stderr_has "syntax.jsonl:2:14: JSON syntax error: expected ',' or '}'"
no_output "$WORK/bad"

echo '{"rows": [{"text": "a", "label": "b"}]}' >object.json
run 1 --input object.json --out bad
stderr_has "object.json:1:1: the top level is an object, expected an array of objects"
no_output "$WORK/bad"

printf '{"text": {"t": "a"}, "label": "b"}\n' >nested.jsonl
run 1 --input nested.jsonl --out bad
stderr_has "nested.jsonl:1:10: key 'text' holds an object"
no_output "$WORK/bad"

run 1 --input good.csv --labels spam,ham --out bad
stderr_has "every row was dropped (63 read: missing_text 1, label_not_allowed 62)"
stderr_has "labels found: 'neg', 'other', 'pos'"
no_output "$WORK/bad"

# Bad flag values: exit 2.
run 2 --input good.csv --test-size 1.5 --out bad
stderr_has "--test-size must be a proportion in (0, 1) or a whole row count >= 1"
no_output "$WORK/bad"

run 2 --input good.csv --format xml --out bad
stderr_has "format: unknown value 'xml'; choose one of auto, csv, tsv, jsonl, json"
no_output "$WORK/bad"

run 2 --input good.csv --on-bad-utf8 ignore --out bad
stderr_has "on_bad_utf8: unknown value 'ignore'"

run 2 --input good.csv --rare-classes keep --out bad
stderr_has "--rare-classes must be one of error, drop, train-only"

run 2 --input good.csv --test-size abc --out bad
stderr_has "--test-size"

run 2 --input good.csv
stderr_has "--out is required"

echo "not a dir" >afile
run 2 --input good.csv --out afile
stderr_has "afile: exists and is not a directory"
mkdir -p precious && echo keep >precious/notes.txt
run 2 --input good.csv --out precious
stderr_has "exists and is not the output of kiln prepare"
[[ -f precious/notes.txt ]] || fail "prepare touched an unrelated directory"

# Split errors come from stratified_split: a one-row class, and a test size too small for the classes.
run 1 --input good.csv --out bad
stderr_has "1 class has only 1 row, too few to stratify"
stderr_has "'other'"
stderr_has "--rare-classes drop|train-only"
no_output "$WORK/bad"

run 2 --input good.csv --labels pos,neg --test-size 1 --out bad
stderr_has "each class needs at least one test row"
no_output "$WORK/bad"

# --- an image column: paths relative to the input's folder are rewritten relative to --out; absolute
# paths stay; a row without an image is dropped as missing_image; image-only data has no text column.
# prepare checks that every image decodes: write real (1x1 gray) PNGs.
mkdir -p photos/img abs
png() {
  /usr/bin/python3 - "$@" <<'EOF2'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)) + \
    chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")
for path in sys.argv[1:]:
    open(path, "wb").write(png)
EOF2
}
{
  echo 'caption,image,label'
  for i in $(seq 1 10); do
    echo "cat $i,img/cat$i.png,cat"
    echo "dog $i,$WORK/abs/dog$i.png,dog"
    png "photos/img/cat$i.png" "abs/dog$i.png"
  done
  echo 'no picture,,dog'
} >photos/both.csv
run 0 --input photos/both.csv --text-col caption --image-col image --out splits/both
head -1 splits/both/train.csv | grep -qx 'text,image,label' || fail "train.csv header is not text,image,label"
grep -q '^cat 1,\.\./\.\./photos/img/cat1\.png,cat$' splits/both/train.csv splits/both/test.csv \
  || fail "relative image path not rewritten relative to --out"
grep -qF "dog 1,$WORK/abs/dog1.png,dog" splits/both/train.csv splits/both/test.csv || fail "absolute image path changed"
stdout_has "missing_image"
/usr/bin/python3 - <<'EOF2' || fail "report.json with an image column"
import json
r = json.load(open("splits/both/report.json"))
assert r["dropped"]["missing_image"] == 1, r["dropped"]
assert r["options"]["image_col"] == "image", r["options"]
EOF2

{
  echo '{"image": "img/a1.png", "label": "a"}'
  echo '{"image": "img/a2.png", "label": "a"}'
  echo '{"image": "img/b1.png", "label": "b"}'
  echo '{"image": "img/b2.png", "label": "b"}'
} >photos/only.jsonl
png photos/img/a1.png photos/img/a2.png photos/img/b1.png photos/img/b2.png
run 0 --input photos/only.jsonl --text-col '' --image-col image --test-size 2 --out photos/split
head -1 photos/split/train.csv | grep -qx 'image,label' || fail "image-only train.csv header is not image,label"
grep -q '^\.\./img/a1\.png,a$' photos/split/train.csv photos/split/test.csv || fail "image-only path not relative to --out"
if grep -q 'text length' stdout.txt; then fail "image-only report prints a text length"; fi

run 1 --input good.csv --image-col photo --out bad
stderr_has "good.csv:1: column 'photo' not found in the header; columns found: 'id', 'text', 'label'"
no_output "$WORK/bad"

run 2 --input photos/only.jsonl --text-col '' --out bad
stderr_has "text_col is empty; name the column that holds the text (or set image_col for images)"

echo "prepare_test: all passed"
