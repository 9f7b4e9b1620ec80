#!/usr/bin/env bash
# Per-epoch training time of Kiln's `fasttext` preset (hashed words, bigrams and character 3-6-grams,
# 64 dimensions, 2^19 buckets, per-example SGD) against fastText itself with the same features and
# size (-wordNgrams 2 -minn 3 -maxn 6 -dim 64 -bucket 524288), on the same training rows.
# fastText runs on THREADS threads (hogwild); Kiln runs twice: with its default 1 thread (bit-
# reproducible) and with train.solver_threads = THREADS (hogwild, as fastText).
# Kiln's epoch time is the trainer's own (metrics.jsonl "seconds": the pass plus the validation
# pass, without featurizing); fastText's is its wall time for EPOCHS epochs over EPOCHS (it re-reads
# and re-hashes its input every epoch, so featurizing is inside), minus nothing.
#
# Usage: bench/embedbag_vs_fasttext.sh [--dataset brown]   env: KILN, THREADS (2), EPOCHS (5)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
DATASET=brown
EPOCHS=${EPOCHS:-5}
while [[ $# -gt 0 ]]; do
  case $1 in
    --dataset) DATASET=${2:?--dataset needs a value}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
require_kiln
require_python
require_fasttext
cd "$BENCH_ROOT"
OUT=bench/out/embedbag_vs_fasttext/$DATASET
rm -rf "$OUT"; mkdir -p "$OUT"
split_dataset "$(fetch_dataset "$DATASET")" "$OUT/split"
echo "$DATASET: $(count_rows "$OUT/split/train.csv") training rows; $EPOCHS epochs; load $(cut -d' ' -f1-3 /proc/loadavg)"

kiln_epoch() {  # NAME SOLVER_THREADS
  printf 'model: {family: fasttext}\ntrain: {epochs: %s, early_stopping_patience: 0, solver_threads: %s, calibrate: none}\n' \
    "$EPOCHS" "$2" > "$OUT/$1.yaml"
  "$KILN" --threads "$THREADS" -q train --config "$OUT/$1.yaml" --train "$OUT/split/train.csv" --val "$OUT/split/val.csv" \
    --out "$OUT/$1" > "$OUT/$1.log" 2>&1 || { tail "$OUT/$1.log" >&2; die "kiln train failed"; }
  "$PY" -c 'import json, sys
e = [json.loads(l) for l in open(sys.argv[1]) if "\"epoch\"" in l]
e = [r for r in e if r.get("type") == "epoch"]
print("%.3f" % (sum(r["seconds"] for r in e) / len(e)))' "$OUT/$1/metrics.jsonl"
}
k1=$(kiln_epoch kiln-1thread 1)
kt=$(kiln_epoch kiln-hogwild "$THREADS")
FT_PUNCT=1 "$PY" "$LIB/anchors.py" fasttext-format "$OUT/ft.train.txt" "$OUT/split/train.csv"
timed t fasttext supervised -input "$OUT/ft.train.txt" -output "$OUT/fasttext" -wordNgrams 2 -minn 3 -maxn 6 \
  -dim 64 -bucket 524288 -lr 0.1 -epoch "$EPOCHS" -thread "$THREADS" -verbose 0
ft=$(awk -v t="$t" -v e="$EPOCHS" 'BEGIN { printf "%.3f", t / e }')
printf '%-34s %8s s/epoch\n' "kiln fasttext preset, 1 thread" "$k1" "kiln fasttext preset, $THREADS threads" "$kt" \
  "fastText, $THREADS threads" "$ft"
awk -v a="$k1" -v b="$kt" -v f="$ft" 'BEGIN { printf "fastText / kiln: %.2fx (1 thread), %.2fx (hogwild)\n", f / a, f / b }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
