#!/usr/bin/env bash
# End-to-end TF-IDF benchmark, CSV in to matrix files out: `kiln tfidf` vs pandas.read_csv +
# scikit-learn TfidfVectorizer(max_features=5000), checking both give the same vocabulary and values
# (within 1e-6). Also times CSV reading alone (kiln's reader via --timings vs pandas.read_csv).
#
# Usage: bench/tfidf_vs_sklearn.sh [path/to/kiln] [CSV ...]
# Without CSV arguments the datasets come from `kiln data fetch brown` and
# `kiln data fetch spamassassin`; if fetching is unavailable a synthetic corpus is generated.
set -euo pipefail
KILN=${1:-build/kiln}
shift || true
THREADS=${THREADS:-2}
MAX_FEATURES=${MAX_FEATURES:-5000}
PY=/usr/bin/python3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

$PY -c 'import sklearn, pandas, scipy' 2>/dev/null || { echo "needs /usr/bin/python3 with python3-sklearn, python3-pandas, python3-scipy"; exit 2; }

datasets=("$@")
if [[ ${#datasets[@]} -eq 0 ]]; then
  for name in brown spamassassin; do
    if path=$("$KILN" -q data fetch "$name" 2>/dev/null | tail -n 1) && [[ -f $path ]]; then
      datasets+=("$path")
    else
      echo "note: 'kiln data fetch $name' unavailable; skipping it" >&2
    fi
  done
fi
if [[ ${#datasets[@]} -eq 0 ]]; then
  echo "note: no dataset fetched; benchmarking a synthetic corpus (200k rows)" >&2
  $PY - "$WORK/synthetic.csv" <<'PY'
import csv, random, sys
rng = random.Random(0)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 9))) for _ in range(30000)]
weights = [1.0 / (i + 1) for i in range(len(words))]  # Zipf-like
with open(sys.argv[1], 'w', newline='', encoding='utf-8') as f:
    w = csv.writer(f)
    w.writerow(['text', 'label'])
    for i in range(200000):
        toks = rng.choices(words, weights, k=rng.randint(5, 60))
        w.writerow([' '.join(t.capitalize() if rng.random() < 0.1 else t for t in toks) + '.', i % 3])
PY
  datasets=("$WORK/synthetic.csv")
fi

now() { date +%s.%N; }

SK_SCRIPT="$WORK/sk.py"
cat > "$SK_SCRIPT" <<'PY'
import sys, time
t0 = time.perf_counter()
import pandas as pd
import numpy as np
import scipy.io
from sklearn.feature_extraction.text import TfidfVectorizer
path, out, maxf, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
t = time.perf_counter()
df = pd.read_csv(path, dtype=str, keep_default_na=False)
read_s = time.perf_counter() - t
if mode == "read":
    print(f"{read_s:.3f}")
    sys.exit(0)
v = TfidfVectorizer(max_features=maxf)
X = v.fit_transform(df["text"].tolist())
import os
os.makedirs(out, exist_ok=True)
scipy.io.mmwrite(f"{out}/matrix.mtx", X, precision=9)
with open(f"{out}/vocabulary.txt", "w", encoding="utf-8") as f:
    f.write("".join(t + "\n" for t in v.get_feature_names_out()))
np.savetxt(f"{out}/idf.txt", v.idf_, fmt="%.9g")
PY

CHECK_SCRIPT="$WORK/check.py"
cat > "$CHECK_SCRIPT" <<'PY'
import sys
import numpy as np, scipy.io
a, b = sys.argv[1], sys.argv[2]
va = open(f"{a}/vocabulary.txt", encoding="utf-8").read().split("\n")
vb = open(f"{b}/vocabulary.txt", encoding="utf-8").read().split("\n")
assert va == vb, "vocabularies differ"
A = scipy.io.mmread(f"{a}/matrix.mtx").tocsr(); B = scipy.io.mmread(f"{b}/matrix.mtx").tocsr()
assert A.shape == B.shape, (A.shape, B.shape)
d = abs(A - B).max() if A.nnz else 0.0
assert d <= 1e-6, f"max abs diff {d}"
ia, ib = np.loadtxt(f"{a}/idf.txt"), np.loadtxt(f"{b}/idf.txt")
assert np.allclose(ia, ib, rtol=1e-6, atol=0)
print(f"identical: vocabulary {len(va) - 1} terms, nnz {A.nnz}, max |diff| {d:.2e}")
PY

for csv in "${datasets[@]}"; do
  rows=$($PY -c 'import pandas as pd, sys; print(len(pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)))' "$csv")
  size=$(du -h "$csv" | cut -f1)
  echo "== $csv ($rows rows, $size)"
  # Warm the page cache once.
  cat "$csv" > /dev/null
  t=$(now); "$KILN" --threads "$THREADS" tfidf --input "$csv" --max-features "$MAX_FEATURES" --timings \
      --out "$WORK/kiln" > "$WORK/kiln.log" 2> "$WORK/kiln.err"; kiln_s=$(echo "$(now) - $t" | bc -l)
  t=$(now); $PY "$SK_SCRIPT" "$csv" "$WORK/sk" "$MAX_FEATURES" full; sk_s=$(echo "$(now) - $t" | bc -l)
  $PY "$CHECK_SCRIPT" "$WORK/kiln" "$WORK/sk"
  kiln_read=$(sed -n 's/^timings: read \([0-9.]*\) s.*/\1/p' "$WORK/kiln.err")
  pandas_read=$($PY "$SK_SCRIPT" "$csv" "$WORK/sk" 0 read)
  printf "kiln  (--threads %s)  %8.3f s end to end   (%s)\n" "$THREADS" "$kiln_s" "$(cat "$WORK/kiln.err")"
  printf "sklearn               %8.3f s end to end   (python start-up and imports included)\n" "$sk_s"
  printf "speed-up              %8.1fx\n" "$(echo "$sk_s / $kiln_s" | bc -l)"
  printf "CSV read: kiln %s s, pandas.read_csv %s s (%.1fx)\n" "$kiln_read" "$pandas_read" \
    "$(echo "$pandas_read / $kiln_read" | bc -l)"
done
