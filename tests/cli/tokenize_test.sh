#!/usr/bin/env bash
# kiln tokenize on a tiny vocabulary: output forms, and the message of each bad input.
# (The comparison against Hugging Face tokenizers is wordpiece_golden_test.sh.)
# Usage: tokenize_test.sh /path/to/kiln
set -euo pipefail
KILN=${1:?usage: tokenize_test.sh /path/to/kiln}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n,\n' > "$TMP/vocab.txt"
printf 'text,other\n"Hello, worlds",hello\nhéllo [MASK],x\n' > "$TMP/in.csv"

out=$("$KILN" -q tokenize --vocab "$TMP/vocab.txt" --input "$TMP/in.csv")
[[ $out == $'[CLS] hello , world ##s [SEP]\n[CLS] hello [MASK] [SEP]' ]] || fail "plain output: $out"
out=$("$KILN" -q tokenize --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --pair-col other --max-length 6 --pad --jsonl | head -1)
want='{"ids":[2,5,8,3,5,3],"type_ids":[0,0,0,0,1,1],"attention_mask":[1,1,1,1,1,1],"offsets":[[0,0],[0,5],[5,6],[0,0],[0,5],[0,0]],"tokens":["[CLS]","hello",",","[SEP]","hello","[SEP]"]}'
[[ $out == "$want" ]] || fail "jsonl output: $out"
# Windows: "Hello, worlds" is 4 content tokens; --max-length 4 (2 a window) --stride 1 gives windows
# [0,2), [1,3), [2,4); plain output separates windows with tabs.
out=$("$KILN" -q tokenize --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --max-length 4 --long-text window --stride 1 | head -1)
[[ $out == $'[CLS] hello , [SEP]\t[CLS] , world [SEP]\t[CLS] world ##s [SEP]' ]] || fail "window plain output: $out"
out=$("$KILN" -q tokenize --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --max-length 5 --long-text window --stride 0 --pad --jsonl | head -1)
want='{"ids":[2,5,8,6,3],"type_ids":[0,0,0,0,0],"attention_mask":[1,1,1,1,1],"offsets":[[0,0],[0,5],[5,6],[7,12],[0,0]],"tokens":["[CLS]","hello",",","world","[SEP]"],"overflowing":[{"ids":[2,7,3,0,0],"type_ids":[0,0,0,0,0],"attention_mask":[1,1,1,0,0],"offsets":[[0,0],[12,13],[0,0],[0,0],[0,0]],"tokens":["[CLS]","##s","[SEP]","[PAD]","[PAD]"]}]}'
[[ $out == "$want" ]] || fail "window jsonl output: $out"

expect_error() {
  local code=$1 want=$2; shift 2
  set +e
  out=$("$KILN" tokenize "$@" 2>&1)
  rc=$?
  set -e
  [[ $rc -eq $code ]] || fail "$* exited $rc, want $code ($out)"
  [[ $out == *"$want"* ]] || fail "$*: message '$out' lacks '$want'"
}
expect_error 1 "--vocab $TMP/nope.txt: cannot open the vocabulary file; pass a BERT vocab.txt" \
  --vocab "$TMP/nope.txt" --input "$TMP/in.csv"
: > "$TMP/empty.txt"
expect_error 1 "--vocab $TMP/empty.txt: the vocabulary is empty" --vocab "$TMP/empty.txt" --input "$TMP/in.csv"
printf 'hello\n[PAD]\n' > "$TMP/plain.txt"
expect_error 1 "--vocab $TMP/plain.txt: the vocabulary lacks [UNK], [CLS], [SEP] (2 tokens read)" \
  --vocab "$TMP/plain.txt" --input "$TMP/in.csv"
expect_error 2 "--max-length must be >= 3 (room for [CLS], [SEP] and one token; pairs need [SEP] twice), got 2" \
  --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --max-length 2
expect_error 2 "--pad pads to --max-length: add --max-length N" --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --pad
expect_error 1 "in.csv:1: column 'body' not found in the header; columns found: 'text', 'other'" --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --text-col body
expect_error 2 "--long-text must be truncate or window, got 'slide'" --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" \
  --max-length 8 --long-text slide
expect_error 2 "--stride applies to --long-text window (windows overlap by --stride tokens); add --long-text window or drop --stride" \
  --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --max-length 8 --stride 2
expect_error 2 "--long-text window cuts texts into windows of --max-length tokens: add --max-length N" \
  --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --long-text window
expect_error 2 "--long-text window cuts single texts; with --pair-col, pairs are truncated (longest_first)" \
  --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --max-length 8 --long-text window --pair-col other
expect_error 2 "--stride must be in [0, --max-length - 2 = 6) tokens (windows overlap by --stride and advance by --max-length - 2 - --stride), got 6" \
  --vocab "$TMP/vocab.txt" --input "$TMP/in.csv" --max-length 8 --long-text window --stride 6
echo "tokenize_test: ok"
