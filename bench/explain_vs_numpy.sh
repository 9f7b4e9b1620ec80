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
# BERT-mini rows (BERT_M, default "20 50 200"; empty skips them): a bert artifact (preset mini,
# max_length 512, one epoch on the same texts, every word one WordPiece token) explained by `kiln
# explain --method kernel` (words become [MASK]) against bench/lib/kernel_shap_bert.py: the same
# numpy Kernel SHAP whose model outputs come from Debian's python3-torch running the artifact's
# weights in the reference BERT of tests/golden/make_bert_golden.py (batches of 512 coalitions,
# inference mode, in Kiln's environment through kiln-env: the same OpenBLAS kernels and OpenMP
# policy). One text per M on each side; Kiln's time is the CPU time of the whole `kiln explain` run
# (start-up and loading included, against it), python's the process CPU time of the explanation.
# Their distance is max |φ_kiln − φ_python| / max |φ_kiln| (both sample, with different generators;
# an exact reference is out of reach for BERT: 2^20 forward passes at M = 20).
#
# Usage: bench/explain_vs_numpy.sh [path/to/kiln]      Environment: N (numpy explains N·200/M texts
# at M, default 12; the distances are over the first 3), KILN_TEXTS (Kiln explains KILN_TEXTS·N·200/M
# texts, default 4, so that every Kiln run is long next to its start-up), REPEATS (default 3: each
# Kiln run is repeated and the least CPU time taken, since one run's start-up varies by more than a
# short text's explanation), BERT_M.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KILN=${1:-$ROOT/build/kiln}
N=${N:-12}
KILN_TEXTS=${KILN_TEXTS:-4}
REPEATS=${REPEATS:-3}
BERT_M=${BERT_M-20 50 200}
PY=/usr/bin/python3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores; $(uptime)"

$PY - "$WORK" "$N" "$KILN_TEXTS" <<'PY'
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
    rows = [" ".join(random.sample(vocab, m)) for _ in range(int(sys.argv[3]) * int(sys.argv[2]) * 200 // m)]
    for n, part in (("all", rows), ("one", rows[:1]), ("ref", rows[:3])):
        with open(f"{sys.argv[1]}/m{m}_{n}.csv", "w", newline="") as f:
            w = csv.writer(f); w.writerow(["text"]); [w.writerow([r]) for r in part]
    open(f"{sys.argv[1]}/m{m}.txt", "w").write("\n".join(rows[:int(sys.argv[2]) * 200 // m]) + "\n")
    open(f"{sys.argv[1]}/m{m}_one.txt", "w").write(rows[0] + "\n")
PY

"$KILN" -q train --train "$WORK/train.csv" --model logreg --out "$WORK/lin" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
"$KILN" -q train --train "$WORK/train.csv" --model mlp --epochs 3 --out "$WORK/mlp" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }

# CPU seconds (user + system, all threads) of a command: steadier than wall time on a shared machine.
secs1() { local TIMEFORMAT='%U + %S'; { time "$@" >/dev/null 2>&1; } 2>&1 | bc -l; }
# The least over REPEATS runs (other processes only ever add to it).
secs() { for ((r = 0; r < REPEATS; r++)); do secs1 "$@"; done | sort -g | head -1; }
texts() { echo $((KILN_TEXTS * N * 200 / $1)); }  # texts Kiln explains at M words
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

if [[ -n $BERT_M ]]; then
  "$KILN" -q train --train "$WORK/train.csv" --model bert --preset mini --max-length 512 --epochs 1 --out "$WORK/bert" \
    >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
  printf '%-6s %4s %12s %12s %8s %11s\n' model M "kiln CPU s" "torch CPU s" ratio "distance"
  for m in $BERT_M; do
    kiln=$(secs1 "$KILN" explain "$WORK/bert/model" --data "$WORK/m${m}_one.csv" --method kernel --json "$WORK/b$m.jsonl")
    "$(dirname "$KILN")/kiln-env" $PY "$ROOT/bench/lib/kernel_shap_bert.py" "$WORK/bert/model" "$WORK/m${m}_one.txt" >"$WORK/bn$m.jsonl"
    read -r torch dist < <($PY - "$WORK/b$m.jsonl" "$WORK/bn$m.jsonl" "$WORK/bert/model/kiln.json" <<'PY'
import json, sys
import numpy as np
labels = json.load(open(sys.argv[3]))["labels"]
k, n = json.loads(open(sys.argv[1]).readline()), json.loads(open(sys.argv[2]).readline())
pk = np.array([x["value"] for x in k["attributions"]])
pn = np.array(n["phi"])[:, labels.index(k["label"])]
assert len(pk) == len(pn), (len(pk), len(pn))
print(n["seconds"], np.abs(pk - pn).max() / np.abs(pk).max())
PY
)
    printf '%-6s %4d %12.3f %12.3f %7.2fx %11.4f\n' bert-mini "$m" "$kiln" "$torch" "$(echo "$torch / $kiln" | bc -l)" "$dist"
  done
  echo "(bert: one text per M; kiln's CPU time includes its start-up; distance: max |phi_kiln - phi_torch| / max |phi_kiln|, both sampled)"
fi
echo "after: $(uptime)"
