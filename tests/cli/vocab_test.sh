#!/usr/bin/env bash
# kiln vocab on tiny corpora: the vocabulary derived by hand (tests/text/wordpiece_trainer_test.cpp
# derives the same one step by step), input forms (.txt lines, CSV/JSONL column, several files,
# stdin), kiln tokenize loading the result, and the message of each bad input.
# (The comparison against Hugging Face's trainer is vocab_golden_test.sh.)
# Usage: vocab_test.sh /path/to/kiln
set -euo pipefail
KILN=${1:?usage: vocab_test.sh /path/to/kiln}
TMP=$(mktemp -d)
trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Words hug x2, pug, hugs: specials, alphabet g h p s u, ##g ##s ##u, then merges ##ug (4
# occurrences), hug (3), pug and hugs (1 each; the tie goes to the pair of lower ids, p's).
want='[PAD] [UNK] [CLS] [SEP] [MASK] g h p s u ##g ##s ##u ##ug hug pug hugs'
printf 'Hug hug pug\nhugs\n' > "$TMP/hugs.txt"
out=$("$KILN" vocab --input "$TMP/hugs.txt" --out "$TMP/v.txt" 2>/dev/null)
[[ $out == "vocab: 17 tokens (5 special, 5 alphabet, 3 continuation, 4 merged) from 4 words (3 distinct, 2 texts) in "*" -> $TMP/v.txt" ]] ||
  fail "summary line: $out"
[[ $(tr '\n' ' ' < "$TMP/v.txt") == "$want " ]] || fail "vocab.txt: $(tr '\n' ' ' < "$TMP/v.txt")"

# The same texts as a CSV column, a JSONL key (--text-col), split over two files, and on stdin.
printf 'text,label\n"Hug hug pug",a\nhugs,b\n' > "$TMP/hugs.csv"
"$KILN" -q vocab --input "$TMP/hugs.csv" --out "$TMP/csv.txt" >/dev/null 2>&1
cmp -s "$TMP/v.txt" "$TMP/csv.txt" || fail "CSV input gave another vocabulary"
printf '{"body": "Hug hug"}\n{"body": "pug hugs"}\n' > "$TMP/a.jsonl"
"$KILN" -q vocab --input "$TMP/a.jsonl" --text-col body --out "$TMP/jsonl.txt" >/dev/null 2>&1
cmp -s "$TMP/v.txt" "$TMP/jsonl.txt" || fail "JSONL --text-col input gave another vocabulary"
printf 'Hug hug\n' > "$TMP/one.txt"
printf 'pug hugs\n' > "$TMP/two.txt"
"$KILN" -q vocab --input "$TMP/one.txt" "$TMP/two.txt" --out "$TMP/two_files.txt" >/dev/null 2>&1
cmp -s "$TMP/v.txt" "$TMP/two_files.txt" || fail "two input files gave another vocabulary"
"$KILN" -q vocab --input - --format text --out "$TMP/stdin.txt" < "$TMP/hugs.txt" >/dev/null 2>&1
cmp -s "$TMP/v.txt" "$TMP/stdin.txt" || fail "stdin input gave another vocabulary"

# Options: --size stops early, --min-frequency, --limit-alphabet, --cased.
"$KILN" -q vocab --input "$TMP/hugs.txt" --out "$TMP/s.txt" --size 15 >/dev/null
[[ $(tr '\n' ' ' < "$TMP/s.txt") == "[PAD] [UNK] [CLS] [SEP] [MASK] g h p s u ##g ##s ##u ##ug hug " ]] || fail "--size 15"
"$KILN" -q vocab --input "$TMP/hugs.txt" --out "$TMP/m.txt" --min-frequency 2 >/dev/null 2>&1
cmp -s "$TMP/s.txt" "$TMP/m.txt" || fail "--min-frequency 2: $(tr '\n' ' ' < "$TMP/m.txt")"
"$KILN" -q vocab --input "$TMP/hugs.txt" --out "$TMP/l.txt" --limit-alphabet 4 >/dev/null 2>&1
[[ $(tr '\n' ' ' < "$TMP/l.txt") == "[PAD] [UNK] [CLS] [SEP] [MASK] g h p u ##g ##u ##ug hug pug " ]] || fail "--limit-alphabet 4: $(tr '\n' ' ' < "$TMP/l.txt")"
printf 'Éa\n' > "$TMP/e.txt"
"$KILN" -q vocab --input "$TMP/e.txt" --out "$TMP/c.txt" --cased >/dev/null 2>&1
[[ $(tail -n +6 "$TMP/c.txt" | tr '\n' ' ') == "a É ##a Éa " ]] || fail "--cased: $(tail -n +6 "$TMP/c.txt" | tr '\n' ' ')"
# Fewer tokens than asked: a warning, not an error.
err=$("$KILN" -q vocab --input "$TMP/hugs.txt" --out "$TMP/w.txt" 2>&1 >/dev/null)
[[ $err == *"warning: the corpus gave only 17 of the 30000 tokens asked for (no pair left); a larger corpus gives more"* ]] ||
  fail "no warning for a short vocabulary: $err"

# kiln tokenize loads the result.
out=$("$KILN" -q tokenize --vocab "$TMP/v.txt" --input "$TMP/hugs.csv")
[[ $out == $'[CLS] hug hug pug [SEP]\n[CLS] hugs [SEP]' ]] || fail "kiln tokenize with the trained vocabulary: $out"

expect_error() {
  local code=$1 want=$2; shift 2
  set +e
  out=$("$KILN" vocab "$@" 2>&1)
  rc=$?
  set -e
  [[ $rc -eq $code ]] || fail "$* exited $rc, want $code ($out)"
  [[ $out == *"$want"* ]] || fail "$*: message '$out' lacks '$want'"
}
expect_error 1 "$TMP/nope.txt" --input "$TMP/nope.txt" --out "$TMP/o.txt"
expect_error 1 "not found" --input "$TMP/nope.txt" --out "$TMP/o.txt"
printf '\n  \n\t\n' > "$TMP/blank.txt"
expect_error 1 "$TMP/blank.txt (3 texts): no words to learn a vocabulary from: the texts are empty or only whitespace and control characters; check the input file and its text column" \
  --input "$TMP/blank.txt" --out "$TMP/o.txt"
: > "$TMP/empty.txt"
expect_error 1 "$TMP/empty.txt (0 texts): no words to learn a vocabulary from" --input "$TMP/empty.txt" --out "$TMP/o.txt"
expect_error 1 "$TMP/hugs.txt (2 texts): --size 12 is smaller than the 13 tokens every vocabulary of this corpus starts with (5 special tokens, 5 alphabet characters, 3 \"##\" pieces); ask for at least 13 tokens, or limit the alphabet to the most frequent characters (--limit-alphabet K)" \
  --input "$TMP/hugs.txt" --out "$TMP/o.txt" --size 12
[[ ! -e "$TMP/o.txt" ]] || fail "a failed run left $TMP/o.txt"
expect_error 2 "--size must be >= 1 (tokens in the vocabulary, special tokens included), got 0" --input "$TMP/hugs.txt" --out "$TMP/o.txt" --size 0
expect_error 2 "--min-frequency must be >= 0 (0 = merge every pair that occurs), got -3" --input "$TMP/hugs.txt" --out "$TMP/o.txt" --min-frequency -3
expect_error 2 "--limit-alphabet must be >= 1 (keep that many most frequent characters), got 0; omit it to keep every character" \
  --input "$TMP/hugs.txt" --out "$TMP/o.txt" --limit-alphabet 0
expect_error 2 "--format must be auto, text, csv, tsv, jsonl or json, got 'xml'" --input "$TMP/hugs.txt" --out "$TMP/o.txt" --format xml
expect_error 2 "--input is required" --out "$TMP/o.txt"
expect_error 2 "--out is required" --input "$TMP/hugs.txt"
expect_error 2 "--vocab-size" --input "$TMP/hugs.txt" --out "$TMP/o.txt" --vocab-size 5
expect_error 2 "--out $TMP is a directory; pass a file path such as $TMP/vocab.txt" --input "$TMP/hugs.txt" --out "$TMP"
expect_error 1 "hugs.csv:1: column 'body' not found in the header; columns found: 'text', 'label'" \
  --input "$TMP/hugs.csv" --out "$TMP/o.txt" --text-col body
printf 'ok\nbad \xff byte\n' > "$TMP/bad.txt"
expect_error 1 "$TMP/bad.txt:2:5: invalid UTF-8; convert the file to UTF-8 (iconv), or pass --on-bad-utf8 replace or skip" \
  --input "$TMP/bad.txt" --out "$TMP/o.txt"
"$KILN" -q vocab --input "$TMP/bad.txt" --out "$TMP/skip.txt" --on-bad-utf8 skip >/dev/null 2>&1 || fail "--on-bad-utf8 skip failed"
[[ $(tail -n +6 "$TMP/skip.txt" | tr '\n' ' ') == "k o ##k ok " ]] || fail "--on-bad-utf8 skip: $(tail -n +6 "$TMP/skip.txt" | tr '\n' ' ')"
# An unwritable output directory: a clear error, and an existing vocabulary is left as it was.
if [[ $(id -u) -ne 0 ]]; then
  mkdir "$TMP/ro" && chmod a-w "$TMP/ro"
  expect_error 1 "$TMP/ro/vocab.txt" --input "$TMP/hugs.txt" --out "$TMP/ro/vocab.txt"
fi
printf 'x\n' > "$TMP/file"
expect_error 1 "$TMP/file/vocab.txt" --input "$TMP/hugs.txt" --out "$TMP/file/vocab.txt"
cp "$TMP/v.txt" "$TMP/keep.txt"
expect_error 1 "no words to learn a vocabulary from" --input "$TMP/blank.txt" --out "$TMP/keep.txt"
cmp -s "$TMP/v.txt" "$TMP/keep.txt" || fail "a failed run changed the existing --out file"
echo "vocab_test: ok"
