#!/usr/bin/env bash
# WordPiece vocabulary training speed: `kiln vocab` vs Hugging Face tokenizers' WordPiece trainer
# (npm tokenizers@0.23.2, the Rust library's Node binding: Tokenizer.train(files) with BertNormalizer
# and BertPreTokenizer, vocab_size 30000 — the binding's only trainer settings), same text files,
# same thread count, side by side in one run (per corpus: HF, then kiln).
#   - HF: Tokenizer.train(files) in-process (reading the files, counting, merges),
#     RAYON_NUM_THREADS=$THREADS (its progress bar goes to /dev/null);
#   - kiln: the whole process (start-up, reading, counting, merges, writing vocab.txt),
#     `kiln --threads $THREADS vocab --size 30005` (5 special tokens + the same 30000 HF learns).
# Corpora: brown (57k texts, 1.2M words) and all four dev corpora together (brown, fortunes,
# foldoc, spamassassin: 85k texts, 12M words), as .txt files, one text a line.
# Prints wall seconds (best of REPEATS), words/s, kiln's speed over HF's, the CPU seconds each used
# (user + system: less sensitive to a loaded machine than wall time) and their ratio, and the share
# of HF's tokens kiln's vocabulary holds.
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
hf_train() {  # FILES...; prints "WALL CPU" of the run with the best wall time
  local best=1e9 cpu=0 s c
  for _ in $(seq "$REPEATS"); do
    RAYON_NUM_THREADS=$THREADS node "$ROOT/tests/golden/hf_wordpiece_train.js" "$TMP/hf.txt" 0 "$@" \
      >/dev/null 2>"$TMP/hf.err" || { cat "$TMP/hf.err" >&2; exit 1; }
    read -r s c < <(grep -a 'hf wordpiece train' "$TMP/hf.err" | tail -1 | sed 's/.* in \([0-9.]*\) s (cpu \([0-9.]*\) s)/\1 \2/')
    if awk -v a="$best" -v b="$s" 'BEGIN { exit !(b < a) }'; then best=$s; cpu=$c; fi
  done
  echo "$best $cpu"
}
kiln_train() {  # FILES...; prints "WALL CPU" of the run with the best wall time
  local best=1e9 cpu=0 s c
  for _ in $(seq "$REPEATS"); do
    /usr/bin/env time -f '%e %U %S' -o "$TMP/time" \
      "$KILN" -q --threads "$THREADS" vocab --input "$@" --size 30005 --out "$TMP/kiln.txt" > "$TMP/kiln.out"
    read -r s c < <(awk '{ print $1, $2 + $3 }' "$TMP/time")
    if awk -v a="$best" -v b="$s" 'BEGIN { exit !(b < a) }'; then best=$s; cpu=$c; fi
  done
  echo "$best $cpu"
}

echo "vocab_vs_hf: kiln vocab vs HF tokenizers WordPiece trainer (npm tokenizers@0.23.2), $THREADS threads, best of $REPEATS"
echo "load: $(uptime)"
printf '%-8s %10s %8s %8s %11s %11s %7s %8s %8s %7s %8s\n' corpus words "hf s" "kiln s" "hf w/s" "kiln w/s" ratio \
  "hf cpu" "kiln cpu" "ratio" "shared"
for corpus in brown all; do
  if [[ $corpus == brown ]]; then files=("$TMP/brown.txt"); else files=("$TMP"/{brown,fortunes,foldoc,spamassassin}.txt); fi
  read -r hf_s hf_cpu < <(hf_train "${files[@]}")
  read -r kiln_s kiln_cpu < <(kiln_train "${files[@]}")
  words=$(grep -o 'from [0-9,]* words' "$TMP/kiln.out" | tr -dc '0-9')
  shared=$(comm -12 <(LC_ALL=C sort "$TMP/hf.txt") <(tail -n +6 "$TMP/kiln.txt" | LC_ALL=C sort) | wc -l)
  awk -v c="$corpus" -v w="$words" -v h="$hf_s" -v k="$kiln_s" -v hc="$hf_cpu" -v kc="$kiln_cpu" -v sh="$shared" 'BEGIN {
    printf "%-8s %10d %8.2f %8.2f %11.0f %11.0f %6.1fx %8.2f %8.2f %6.1fx %7.2f%%\n", c, w, h, k, w / h, w / k, h / k,
      hc, kc, hc / kc, sh / 300 }'
done
echo "(shared: HF's 30000 tokens in kiln's vocabulary; two HF runs share about 99.8% with each other, see tests/cli/vocab_golden_test.sh)"
echo "load: $(uptime)"
