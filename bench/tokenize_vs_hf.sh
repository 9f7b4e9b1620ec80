#!/usr/bin/env bash
# WordPiece speed: `kiln tokenize` vs Hugging Face tokenizers (npm tokenizers@0.23.2, the Rust
# library's Node binding) on the same texts, same thread count, side by side in one run.
#   - HF: in-process encodeBatch over all texts (file reading and JSON output not timed),
#     RAYON_NUM_THREADS=$THREADS, best of REPEATS;
#   - kiln: the whole process (start-up, reading the JSONL, encoding, writing every encoding as
#     --jsonl to /dev/null), --threads $THREADS, best of REPEATS.
# Prints texts/s, tokens/s (tokens include [CLS]/[SEP]) and kiln's speed over HF's.
# Usage: bench/tokenize_vs_hf.sh [path/to/kiln]   Environment: THREADS (default 1), REPEATS (3).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KILN=${1:-$ROOT/build/kiln}
THREADS=${THREADS:-1}
REPEATS=${REPEATS:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
HF_TOKENIZERS=$(bash "$ROOT/tests/golden/hf_tokenizers.sh")
export HF_TOKENIZERS
VOCAB=$("$KILN" -q data fetch bert-base-uncased-vocab)
python3 - "$("$KILN" -q data fetch brown)" "$("$KILN" -q data fetch fortunes)" "$("$KILN" -q data fetch spamassassin)" \
  > "$TMP/texts.jsonl" <<'PY'
import csv, json, sys
csv.field_size_limit(1 << 30)
for path in sys.argv[1:]:
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            print(json.dumps({"text": r["text"]}, ensure_ascii=False))
PY
cat > "$TMP/hf.js" <<'JS'
const hf = require(process.env.HF_TOKENIZERS)
const fs = require('fs')
const [vocabPath, input, repeats] = process.argv.slice(2)
const vocab = {}
fs.readFileSync(vocabPath, 'utf8').split('\n').forEach((t, i) => { if (t) vocab[t] = i })
const tk = new hf.Tokenizer(hf.WordPiece.init(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 }))
tk.setNormalizer(hf.bertNormalizer({ lowercase: true }))
tk.setPreTokenizer(hf.bertPreTokenizer())
tk.setPostProcessor(hf.bertProcessing(['[SEP]', vocab['[SEP]']], ['[CLS]', vocab['[CLS]']]))
tk.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'])
const texts = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l).text)
;(async () => {
  let best = Infinity, tokens = 0
  for (let r = 0; r < Number(repeats); ++r) {
    const t0 = process.hrtime.bigint()
    const encs = await tk.encodeBatch(texts)
    const s = Number(process.hrtime.bigint() - t0) / 1e9
    if (s < best) best = s
    tokens = 0
    for (const e of encs) tokens += e.getLength()
  }
  console.log(`${texts.length} ${tokens} ${best}`)
})()
JS
read -r n hf_tokens hf_s < <(RAYON_NUM_THREADS=$THREADS node "$TMP/hf.js" "$VOCAB" "$TMP/texts.jsonl" "$REPEATS")
kiln_s=1e9
for _ in $(seq "$REPEATS"); do
  t0=$(date +%s.%N)
  "$KILN" -q --threads "$THREADS" tokenize --vocab "$VOCAB" --input "$TMP/texts.jsonl" --jsonl > "$TMP/kiln.jsonl"
  s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  kiln_s=$(awk -v a="$kiln_s" -v b="$s" 'BEGIN { print (b < a) ? b : a }')
done
kiln_tokens=$(python3 -c "import json,sys; print(sum(len(json.loads(l)['ids']) for l in open(sys.argv[1])))" "$TMP/kiln.jsonl")
[[ $kiln_tokens == "$hf_tokens" ]] || echo "WARNING: token counts differ: kiln $kiln_tokens, HF $hf_tokens" >&2
awk -v n="$n" -v tok="$hf_tokens" -v hs="$hf_s" -v ks="$kiln_s" -v th="$THREADS" 'BEGIN {
  printf "texts %d, tokens %d, threads %d (brown + fortunes + spamassassin)\n", n, tok, th
  printf "%-34s %10.3f s %12.0f texts/s %14.0f tokens/s\n", "HF tokenizers encodeBatch", hs, n / hs, tok / hs
  printf "%-34s %10.3f s %12.0f texts/s %14.0f tokens/s\n", "kiln tokenize --jsonl (whole run)", ks, n / ks, tok / ks
  printf "kiln / HF speed: %.2fx\n", hs / ks }'
