#!/usr/bin/env bash
# Class-imbalance benchmark on fortunes (43 classes, a long tail): Kiln's recommended default model
# trained three times on the same split, changing only the loss:
#   cross_entropy   --loss cross_entropy --class-weight none
#   balanced        --loss cross_entropy --class-weight balanced   (sklearn's n / (C * count))
#   focal           --loss focal --focal-gamma 2 --class-weight none
# Reports test accuracy, macro-F1 and the mean recall of the rarest quarter of classes (by training
# count), all from `kiln predict` output through bench/lib/metrics.py, plus the relative change of
# that rare-class recall vs plain cross-entropy.
#
# Usage: bench/imbalance.sh [--dataset fortunes] [--config YAML] [--epochs N]
#   --config: train a config's model instead of the default (e.g. configs/seed_recipe.yaml).
# Environment: KILN (default ./build/kiln), THREADS (default 2), PY (default /usr/bin/python3).
# Scratch and results: bench/out/imbalance/<dataset>/ (results.jsonl, logs, runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

DATASET=fortunes
EXTRA=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --dataset) DATASET=${2:?--dataset needs a value}; shift 2 ;;
    --config) EXTRA+=(--config "${2:?--config needs a value}"); shift 2 ;;
    --epochs) EXTRA+=(--epochs "${2:?--epochs needs a value}"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
require_kiln
require_python

cd "$BENCH_ROOT"
W=bench/out/imbalance/$DATASET
rm -rf "$W"; mkdir -p "$W"
csv=$(fetch_dataset "$DATASET")
split_dataset "$csv" "$W/split"
train="$W/split/train.csv"; val="$W/split/val.csv"; test="$W/split/test.csv"
RESULTS="$W/results.jsonl"
: > "$RESULTS"
echo "== $DATASET: $(count_rows "$train") train, $(count_rows "$val") val, $(count_rows "$test") test rows; kiln: $KILN"

for variant in cross_entropy balanced focal; do
  case $variant in
    cross_entropy) flags=(--loss cross_entropy --class-weight none) ;;
    balanced) flags=(--loss cross_entropy --class-weight balanced) ;;
    focal) flags=(--loss focal --focal-gamma 2 --class-weight none) ;;
  esac
  timed t "$KILN" --threads "$THREADS" train "${EXTRA[@]}" "${flags[@]}" --train "$train" --val "$val" \
    --test "$test" --out "$W/$variant" > "$W/$variant.train.log" 2>&1 ||
    { tail -n 20 "$W/$variant.train.log" >&2; die "training $variant failed (log: $W/$variant.train.log)"; }
  "$KILN" --threads "$THREADS" -q predict "$W/$variant/model" --input "$test" --format csv \
    > "$W/$variant.pred.jsonl" || die "predicting with $variant failed"
  s=$("$PY" "$LIB/metrics.py" score "$test" "$W/$variant.pred.jsonl" kiln "$train")
  # Consistency check: the artifact's own test metrics (from --test) must match ours.
  "$PY" - "$s" "$("$PY" "$LIB/metrics.py" manifest "$W/$variant/model")" "$variant" <<'PY'
import json, sys
ours, theirs, name = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
if theirs.get("accuracy") is not None and abs(ours["accuracy"] - theirs["accuracy"]) > 1e-6:
    print(f"   warning: {name}: accuracy from predictions {ours['accuracy']:.6f} != "
          f"kiln.json test accuracy {theirs['accuracy']:.6f}", file=sys.stderr)
PY
  record "$RESULTS" "$s" dataset="$DATASET" system="$variant" train_s="$t"
  echo "   $variant: trained in $t s"
done

"$PY" "$LIB/tables.py" imbalance "$RESULTS"
echo "rare-q recall: mean test recall of the ceil(C/4) classes with the fewest training rows."
echo "results: $RESULTS"
