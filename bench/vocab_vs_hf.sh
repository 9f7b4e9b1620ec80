#!/usr/bin/env bash
# WordPiece vocabulary training speed: `kiln vocab` vs Hugging Face tokenizers' WordPiece trainer
# (npm tokenizers@0.23.2, the Rust library's Node binding: Tokenizer.train(files) with BertNormalizer
# and BertPreTokenizer, vocab_size 30000 — the binding's only trainer settings), same text files,
# same thread count, side by side in one run, interleaved.
#   - HF: Tokenizer.train(files) in-process (reading the files, counting, merges),
#     RAYON_NUM_THREADS=$THREADS (its progress bar goes to /dev/null);
#   - kiln: the whole process (start-up, reading, counting, merges, writing vocab.txt),
#     `kiln --threads $THREADS vocab --size 30005` (5 special tokens + the same 30000 HF learns).
# Corpora: brown (57k texts, 1.2M words) and all four dev corpora together (brown, fortunes,
# foldoc, spamassassin: 85k texts, 12M words), as .txt files, one text a line.
# Prints seconds (best of REPEATS), words/s, kiln's speed over HF's and the share of HF's tokens
# kiln's vocabulary holds.
# Usage: bench/vocab_vs_hf.sh [path/to/kiln]   Environment: THREADS (default 2), REPEATS (1).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KILN=${KILN:-${1:-$ROOT/build/kiln}}
THREADS=${THREADS:-2}
REPEATS=${REPEATS:-1}
command -v node >/dev/null || { echo "vocab_vs_hf: node not found (Debian package nodejs)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "vocab_vs_hf: python3 not found" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
HF_TOKENIZERS=$(bash "$ROOT/tests/golden/hf_tokenizers.sh") || exit 2
export HF_TOKENIZERS
paths=()
for name in brown fortunes foldoc spamassassin; do paths+=("$("$KILN" -q data fetch "$name")"); done
python3 - "$TMP" "${paths[@]}" <<'PY'
import csv, sys
csv.field_size_limit(1 << 30)
out_dir, paths = sys.argv[1], sys.argv[2:]
for path in paths:
    name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    with open(path, newline="", encoding="utf-8") as f, open(f"{out_dir}/{name}.txt", "w", encoding="utf-8") as out:
        out.write("".join(r["text"].replace("\r", " ").replace("\n", " ") + "\n" for r in csv.DictReader(f)))
PY

# seconds of the best of REPEATS runs of a command that prints its own seconds on its last line
hf_train() {  # FILES...
  local best=1e9 s
  for _ in $(seq "$REPEATS"); do
    RAYON_NUM_THREADS=$THREADS node "$ROOT/tests/golden/hf_wordpiece_train.js" "$TMP/hf.txt" 0 "$@" \
      >/dev/null 2>"$TMP/hf.err" || { cat "$TMP/hf.err" >&2; exit 1; }
    s=$(grep -o 'in [0-9.]* s' "$TMP/hf.err" | tail -1 | awk '{ print $2 }')
    best=$(awk -v a="$best" -v b="$s" 'BEGIN { print (b < a) ? b : a }')
  done
  echo "$best"
}
kiln_train() {  # FILES...
  local best=1e9 s t0
  for _ in $(seq "$REPEATS"); do
    t0=$(date +%s.%N)
    "$KILN" -q --threads "$THREADS" vocab --input "$@" --size 30005 --out "$TMP/kiln.txt" > "$TMP/kiln.out"
    s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    best=$(awk -v a="$best" -v b="$s" 'BEGIN { print (b < a) ? b : a }')
  done
  echo "$best"
}

echo "vocab_vs_hf: kiln vocab vs HF tokenizers WordPiece trainer (npm tokenizers@0.23.2), $THREADS threads, best of $REPEATS"
echo "load: $(uptime)"
printf '%-8s %12s %10s %10s %12s %12s %8s %10s\n' corpus words "hf s" "kiln s" "hf w/s" "kiln w/s" ratio "shared"
for corpus in brown all; do
  if [[ $corpus == brown ]]; then files=("$TMP/brown.txt"); else files=("$TMP"/{brown,fortunes,foldoc,spamassassin}.txt); fi
  hf_s=$(hf_train "${files[@]}")
  kiln_s=$(kiln_train "${files[@]}")
  words=$(grep -o 'from [0-9,]* words' "$TMP/kiln.out" | tr -dc '0-9')
  shared=$(comm -12 <(LC_ALL=C sort "$TMP/hf.txt") <(tail -n +6 "$TMP/kiln.txt" | LC_ALL=C sort) | wc -l)
  awk -v c="$corpus" -v w="$words" -v h="$hf_s" -v k="$kiln_s" -v sh="$shared" 'BEGIN {
    printf "%-8s %12d %10.2f %10.2f %12.0f %12.0f %7.1fx %9.2f%%\n", c, w, h, k, w / h, w / k, h / k, sh / 300 }'
done
echo "(shared: HF's 30000 tokens in kiln's vocabulary; two HF runs share about 99.8% with each other, see tests/cli/vocab_golden_test.sh)"
echo "load: $(uptime)"
