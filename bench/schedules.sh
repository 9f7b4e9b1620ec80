#!/usr/bin/env bash
# Learning-rate schedule benchmark: Kiln's seed recipe (configs/seed_recipe.yaml: TF-IDF 5000 + MLP,
# AdamW) trained twice on the same split with the same epoch budget and no early stopping:
#   A: --schedule warmup_cosine --warmup-ratio 0.1      B: --schedule constant --warmup-ratio 0
# Reports, from each run's metrics.jsonl, the optimizer steps until the validation loss first
# reaches (A) the constant run's best validation loss and (B) the worse of the two runs' best
# validation losses (a target both reach), and each artifact's test accuracy / macro-F1 (computed
# from `kiln predict` output by bench/lib/metrics.py). Validation loss is measured once per epoch, so
# step counts are epoch ends (steps/epoch = ceil(train rows / batch size)).
#
# Usage: bench/schedules.sh [--dataset brown|spamassassin|fortunes] [--epochs N]
# Environment: KILN (default ./build/kiln), THREADS (default 2), PY (default /usr/bin/python3).
# Scratch and results: bench/out/schedules/<dataset>/ (results.json, logs, runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

DATASET=brown
EPOCHS=
while [[ $# -gt 0 ]]; do
  case $1 in
    --dataset) DATASET=${2:?--dataset needs a value}; shift 2 ;;
    --epochs) EPOCHS=${2:?--epochs needs a value}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
require_kiln
require_python

cd "$BENCH_ROOT"
W=bench/out/schedules/$DATASET
rm -rf "$W"; mkdir -p "$W"
csv=$(fetch_dataset "$DATASET")
split_dataset "$csv" "$W/split"
train="$W/split/train.csv"; val="$W/split/val.csv"; test="$W/split/test.csv"
epochs_flag=(); [[ -n $EPOCHS ]] && epochs_flag=(--epochs "$EPOCHS")
echo "== $DATASET: $(count_rows "$train") train, $(count_rows "$val") val, $(count_rows "$test") test rows; kiln: $KILN"

run() {  # run NAME SCHEDULE WARMUP
  local name=$1 t
  timed t "$KILN" --threads "$THREADS" train --config configs/seed_recipe.yaml "${epochs_flag[@]}" \
    --train "$train" --val "$val" --schedule "$2" --warmup-ratio "$3" --patience 0 --out "$W/$name" \
    > "$W/$name.train.log" 2>&1 ||
    { tail -n 20 "$W/$name.train.log" >&2; die "training $name failed (log: $W/$name.train.log)"; }
  "$KILN" --threads "$THREADS" -q predict "$W/$name/model" --input "$test" --format csv > "$W/$name.pred.jsonl" ||
    die "predicting with $name failed"
  echo "   $name: trained in ${t} s" >&2
  "$PY" "$LIB/metrics.py" score "$test" "$W/$name.pred.jsonl" kiln "$train"
}
wc_score=$(run warmup_cosine warmup_cosine 0.1)
const_score=$(run constant constant 0)
sched=$("$PY" "$LIB/metrics.py" schedule "$W/warmup_cosine" "$W/constant")
epochs=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["a"]["epochs"])' "$sched")

"$PY" - "$W" "$DATASET" "$epochs" "$sched" "$wc_score" "$const_score" <<'PY'
import json, sys
w, ds, epochs, sched, wc, const = sys.argv[1:]
wc, const = json.loads(wc), json.loads(const)
for name, score in (("warmup_cosine", wc), ("constant", const)):
    with open(f"{w}/{name}/model/kiln.json", encoding="utf-8") as f:
        score["best_epoch"] = (json.load(f).get("training") or {}).get("best_epoch")
with open(f"{w}/results.json", "w", encoding="utf-8") as f:
    json.dump({"dataset": ds, "epochs": int(epochs), "schedule": json.loads(sched),
               "warmup_cosine": wc, "constant": const}, f, indent=1)
PY
"$PY" "$LIB/tables.py" schedules "$W/results.json"
echo "results: $W/results.json"
