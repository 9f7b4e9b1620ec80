#!/usr/bin/env bash
# Agreement of Kernel SHAP (default budget, 2M + 2048 coalitions over the words) with exact linear
# SHAP on Brown (`kiln data fetch brown`, genre of a sentence) with Kiln's logreg preset: per
# sentence, the top-5 words of each method for the predicted class, their overlap, and Spearman's
# rank correlation of the two methods' word scores over the union of both top-5 lists. Linear SHAP
# attributes features (words and bigrams); a word's score sums its features' values, a bigram's
# value split evenly over its two words. Kernel SHAP's word occurrences are summed per word.
#
# Usage: bench/explain_brown_agreement.sh [path/to/kiln]   Environment: ROWS (training rows, default
# 20000), SENTENCES (explained, default 200).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KILN=${1:-$ROOT/build/kiln}
ROWS=${ROWS:-20000}
SENTENCES=${SENTENCES:-200}
PY=/usr/bin/python3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores; $(uptime)"
BROWN=$("$KILN" data fetch brown)
$PY - "$BROWN" "$WORK" "$ROWS" "$SENTENCES" <<'PY'
import csv, random, sys
rows = list(csv.DictReader(open(sys.argv[1])))
random.seed(0); random.shuffle(rows)
n, k = int(sys.argv[3]), int(sys.argv[4])
for name, part in (("train", rows[:n]), ("val", rows[n:n + 2000])):
    with open(f"{sys.argv[2]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"]); [w.writerow([r["text"], r["label"]]) for r in part]
with open(f"{sys.argv[2]}/explain.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["text"])
    [w.writerow([r["text"]]) for r in rows[n + 2000:n + 2000 + k] if len(r["text"].split()) >= 5]
PY
"$KILN" -q train --train "$WORK/train.csv" --val "$WORK/val.csv" --model logreg --out "$WORK/run" >/dev/null
t0=$(date +%s.%N)
"$KILN" explain "$WORK/run/model" --data "$WORK/explain.csv" --method linear --json "$WORK/lin.jsonl" >/dev/null
t1=$(date +%s.%N)
"$KILN" explain "$WORK/run/model" --data "$WORK/explain.csv" --method kernel --json "$WORK/ker.jsonl" >/dev/null
t2=$(date +%s.%N)
echo "kiln explain: linear $(echo "$t1 - $t0" | bc -l | cut -c1-6) s, kernel $(echo "$t2 - $t1" | bc -l | cut -c1-6) s (whole runs)"
$PY - "$WORK/lin.jsonl" "$WORK/ker.jsonl" <<'PY'
import json, sys
from collections import defaultdict
import numpy as np
from scipy.stats import spearmanr
lin = [json.loads(l) for l in open(sys.argv[1])]
ker = [json.loads(l) for l in open(sys.argv[2])]
overlaps, rhos, same = [], [], 0
for a, b in zip(lin, ker):
    assert a["label"] == b["label"]
    wl, wk = defaultdict(float), defaultdict(float)
    for x in a["attributions"]:
        if x["start"] is None: continue
        words = x["feature"].split()
        for w in words: wl[w] += x["value"] / len(words)
    for x in b["attributions"]:
        wk[x["feature"].lower()] += x["value"]
    top_l = sorted(wl, key=lambda w: -abs(wl[w]))[:5]
    top_k = sorted(wk, key=lambda w: -abs(wk[w]))[:5]
    union = sorted(set(top_l) | set(top_k))
    overlaps.append(len(set(top_l) & set(top_k)) / 5)
    if len(union) >= 3:
        rho = spearmanr([wl.get(w, 0) for w in union], [wk.get(w, 0) for w in union]).correlation
        if np.isfinite(rho): rhos.append(rho)
    same += top_l[:1] == top_k[:1]
print(f"sentences {len(lin)}: top-5 overlap mean {np.mean(overlaps):.3f}; Spearman over the top-5 union "
      f"mean {np.mean(rhos):.3f} median {np.median(rhos):.3f}; same top word {same / len(lin):.3f}")
PY
echo "after: $(uptime)"
