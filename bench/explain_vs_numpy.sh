#!/usr/bin/env bash
# Kernel SHAP speed: `kiln explain --method kernel` vs the same algorithm in numpy
# (bench/lib/kernel_shap.py: shap's KernelExplainer steps, scikit-learn's TfidfVectorizer and a numpy
# matmul for the model, words dropped as Kiln drops them) on the same linear-family artifact, at
# M = 20, 50, 200 words per text and the default budget (2M + 2048 coalitions). Kiln's time per text
# is (CPU time for N texts − CPU time for 1 text) / (N − 1) of whole `kiln explain` runs (start-up
# and artifact loading cancel); numpy's is its process CPU time per text, measured in-process, with
# its BLAS at one thread (as `kiln explain` runs a bag model's: no CPU spent spin-waiting). CPU
# time (user + system, every thread) rather than wall time: the machine is shared. The same on an mlp
# artifact (numpy runs its forward pass: bench/lib/kernel_shap.py). Each implementation's distance to
# reference values at the default budget (exact enumeration at M = 20, Kiln with 20000 coalitions at
# M = 50 and 200): max |φ − φ_ref| / max |φ_ref|.
#
# Usage: bench/explain_vs_numpy.sh [path/to/kiln]      Environment: N (texts at M = 200, default 12;
# N·200/M texts at M, so that every Kiln run is long next to its start-up; the distances are over
# the first 3), REPEATS (default 3: each Kiln run is repeated and the least CPU time taken, since
# one run's start-up varies by more than a short text's explanation).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KILN=${1:-$ROOT/build/kiln}
N=${N:-12}
REPEATS=${REPEATS:-3}
PY=/usr/bin/python3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores; $(uptime)"

$PY - "$WORK" "$N" <<'PY'
import csv, random, sys
random.seed(1)
vocab = [f"w{i}x" for i in range(900)]
classes = {c: vocab[i * 300:(i + 1) * 300] for i, c in enumerate(("alpha", "beta", "gamma"))}
with open(f"{sys.argv[1]}/train.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["text", "label"])
    for i in range(1500):
        c = list(classes)[i % 3]
        toks = random.sample(classes[c], 12) + random.sample(vocab, 12)
        random.shuffle(toks); w.writerow([" ".join(toks), c])
for m in (20, 50, 200):
    rows = [" ".join(random.sample(vocab, m)) for _ in range(int(sys.argv[2]) * 200 // m)]
    for n, part in (("all", rows), ("one", rows[:1]), ("ref", rows[:3])):
        with open(f"{sys.argv[1]}/m{m}_{n}.csv", "w", newline="") as f:
            w = csv.writer(f); w.writerow(["text"]); [w.writerow([r]) for r in part]
    open(f"{sys.argv[1]}/m{m}.txt", "w").write("\n".join(rows) + "\n")
PY

"$KILN" -q train --train "$WORK/train.csv" --model logreg --out "$WORK/lin" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
"$KILN" -q train --train "$WORK/train.csv" --model mlp --epochs 3 --out "$WORK/mlp" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }

# CPU seconds (user + system, all threads) of a command: steadier than wall time on a shared machine.
secs1() { local TIMEFORMAT='%U + %S'; { time "$@" >/dev/null 2>&1; } 2>&1 | bc -l; }
# The least over REPEATS runs (other processes only ever add to it).
secs() { for ((r = 0; r < REPEATS; r++)); do secs1 "$@"; done | sort -g | head -1; }
texts() { echo $((N * 200 / $1)); }  # texts explained at M words: N at M = 200, more for short texts
printf '%-6s %4s %12s %12s %8s %11s %11s\n' model M "kiln CPU s" "numpy CPU s" ratio "kiln err" "numpy err"
for model in lin mlp; do
for m in 20 50 200; do
  all=$(secs "$KILN" explain "$WORK/$model/model" --data "$WORK/m${m}_all.csv" --method kernel --json "$WORK/k$m.jsonl")
  one=$(secs "$KILN" explain "$WORK/$model/model" --data "$WORK/m${m}_one.csv" --method kernel --json "$WORK/k1.jsonl")
  kiln=$(echo "($all - $one) / ($(texts $m) - 1)" | bc -l)
  # Reference values: every coalition at M = 20 (exact), 20000 sampled coalitions above.
  ref=20000; [[ $m == 20 ]] && ref=$(( (1 << 20) - 2 ))
  "$KILN" explain "$WORK/$model/model" --data "$WORK/m${m}_ref.csv" --method kernel --nsamples $ref --seed 99 \
    --json "$WORK/r$m.jsonl" >/dev/null
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $PY "$ROOT/bench/lib/kernel_shap.py" "$WORK/$model/model" "$WORK/m$m.txt" >"$WORK/n$m.jsonl"
  read -r numpy ekiln enumpy < <($PY - "$WORK/k$m.jsonl" "$WORK/n$m.jsonl" "$WORK/r$m.jsonl" "$WORK/$model/model/kiln.json" <<'PY'
import json, sys
import numpy as np
labels = json.load(open(sys.argv[4]))["labels"]
k = [json.loads(l) for l in open(sys.argv[1])]
n = [json.loads(l) for l in open(sys.argv[2])]
r = [json.loads(l) for l in open(sys.argv[3])]
secs = np.mean([x["seconds"] for x in n])
ek, en = [], []
for a, b, ref in zip(k, n, r):
    c = labels.index(a["label"])
    pk = np.array([x["value"] for x in a["attributions"]])
    pr = np.array([x["value"] for x in ref["attributions"]])
    pn = np.array(b["phi"])[:, c]
    assert len(pk) == len(pn) == len(pr), (len(pk), len(pn), len(pr))
    ek.append(np.abs(pk - pr).max() / np.abs(pr).max())
    en.append(np.abs(pn - pr).max() / np.abs(pr).max())
print(secs, np.mean(ek), np.mean(en))
PY
)
  printf '%-6s %4d %12.4f %12.4f %7.1fx %11.3f %11.3f\n' "${model/lin/linear}" "$m" "$kiln" "$numpy" "$(echo "$numpy / $kiln" | bc -l)" "$ekiln" "$enumpy"
done
done
echo "(err: max |phi - reference| / max |reference|, mean over the first 3 texts; reference: exact at M = 20, 20000 coalitions above)"
echo "after: $(uptime)"
