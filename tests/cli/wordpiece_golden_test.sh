#!/usr/bin/env bash
# kiln tokenize --jsonl against Hugging Face tokenizers (npm tokenizers@0.23.2, the Rust library's
# Node binding) on the same inputs: >= 20,000 texts from the dev corpora (brown, fortunes,
# spamassassin via `kiln data fetch`, cached) and an adversarial list (tests/text/wordpiece_inputs.py),
# single texts and pairs, uncased and cased, at several max lengths, with padding, and long texts
# cut into overlapping windows (--long-text window). Every id, type id, attention mask, offset and
# token must match. Skips (exit 77) when node, npm tokenizers or the
# corpora cannot be fetched, unless CI or KILN_REQUIRE_TOOLS=1 (tests/lib/require_tools.sh).
# Usage: wordpiece_golden_test.sh /path/to/kiln
set -euo pipefail
KILN=${1:?usage: wordpiece_golden_test.sh /path/to/kiln}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/require_tools.sh"  # missing_tool, tools_required
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() {
  if tools_required; then fail "$* (CI and KILN_REQUIRE_TOOLS=1 require the reference)"; fi
  echo "SKIP: $*; not checked: kiln tokenize against Hugging Face tokenizers" >&2
  exit 77
}

command -v node >/dev/null || { missing_tool node nodejs "kiln tokenize against Hugging Face tokenizers"; exit 77; }
command -v python3 >/dev/null || { missing_tool python3 python3 "kiln tokenize against Hugging Face tokenizers"; exit 77; }
HF_TOKENIZERS="$(bash "$HERE/../golden/hf_tokenizers.sh" 2>"$TMP/err")" || skip "npm tokenizers@0.23.2 unavailable: $(cat "$TMP/err")"
export HF_TOKENIZERS
for name in brown fortunes spamassassin bert-base-uncased-vocab; do
  path="$("$KILN" -q data fetch "$name" 2>"$TMP/err")" || skip "kiln data fetch $name failed: $(tail -3 "$TMP/err")"
  declare "path_${name//-/_}=$path"
done
VOCAB=$path_bert_base_uncased_vocab
python3 "$HERE/../text/wordpiece_inputs.py" "$path_brown" "$path_spamassassin" "$path_fortunes" "$TMP"
head -3000 "$TMP/texts.jsonl" > "$TMP/texts3k.jsonl"

total=0
# compare NAME INPUT MAX_LENGTH PAD CASED PAIRS [STRIDE: --long-text window --stride STRIDE]
compare() {
  local name=$1 input=$2 max=$3 pad=$4 cased=$5 pairs=$6 stride=${7:-}
  local flags=(--vocab "$VOCAB" --input "$input" --jsonl --max-length "$max")
  [[ $pad == 1 ]] && flags+=(--pad)
  [[ $cased == 1 ]] && flags+=(--cased)
  [[ $pairs == 1 ]] && flags+=(--pair-col pair)
  [[ -n $stride ]] && flags+=(--long-text window --stride "$stride")
  node "$HERE/../text/wordpiece_reference.js" "$VOCAB" "$input" "$max" "$pad" "$cased" $stride > "$TMP/ref.jsonl" &
  local node_pid=$!
  "$KILN" -q tokenize "${flags[@]}" > "$TMP/kiln.jsonl" || fail "$name: kiln tokenize ${flags[*]} failed"
  wait "$node_pid" || fail "$name: the node reference failed"
  local n
  n=$(wc -l < "$input")
  [[ $(wc -l < "$TMP/ref.jsonl") == "$n" ]] || fail "$name: the reference wrote $(wc -l < "$TMP/ref.jsonl") lines for $n inputs"
  if ! cmp -s "$TMP/ref.jsonl" "$TMP/kiln.jsonl"; then
    echo "FAIL: $name: kiln differs from HF tokenizers; first differences (input line, HF, kiln):" >&2
    diff <(nl -ba "$TMP/ref.jsonl") <(nl -ba "$TMP/kiln.jsonl") | grep '^[<>]' | head -6 | while read -r side line rest; do
      [[ $side == "<" ]] && echo "  input $line: $(sed -n "${line}p" "$input" | cut -c1-300)" >&2
      echo "  $side ${rest:0:600}" >&2
    done
    exit 1
  fi
  total=$((total + n))
  echo "$name: $n encodings identical"
}

start=$(date +%s)
compare "single uncased" "$TMP/texts.jsonl" 0 0 0 0
compare "single uncased max 32 padded" "$TMP/texts3k.jsonl" 32 1 0 0
compare "single cased max 128" "$TMP/texts3k.jsonl" 128 0 1 0
compare "pairs uncased max 64 padded" "$TMP/pairs.jsonl" 64 1 0 1
compare "pairs cased max 128" "$TMP/pairs.jsonl" 128 0 1 1
# Long texts in overlapping windows (what --long-text window feeds a BERT).
compare "windows uncased max 32 stride 7 padded" "$TMP/texts3k.jsonl" 32 1 0 0 7
compare "windows cased max 16 stride 0" "$TMP/texts3k.jsonl" 16 0 1 0 0
echo "wordpiece golden: $total encodings ($(wc -l < "$TMP/texts.jsonl") distinct texts) identical to HF tokenizers in $(( $(date +%s) - start )) s"
