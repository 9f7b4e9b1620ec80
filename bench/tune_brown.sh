#!/usr/bin/env bash
# "Real use" benchmark of kiln tune: the seed recipe's space (configs/tune_seed.yaml: lr log
# 1e-5..1e-3, batch size {32, 64, 128}, dropout 0.1..0.5) on the Brown corpus, TRIALS trials with
# TPE, once with median pruning and once without. Reports
#   - validation macro-F1 of the untuned default (configs/seed_recipe.yaml) and of each study's best
#     trial, and the test macro-F1 of both (the best config retrained on the same split);
#   - wall time of each study, how many trials were pruned, and the time pruning saved.
# The split is fixed (seeded, stratified 70/10/20), so every run trains on the same rows.
#
#   bash bench/tune_brown.sh [build/kiln]
# Environment: TRIALS (30), JOBS (1; trials at once), THREADS (all cores; split over JOBS),
#   EPOCHS (the recipe's 10), ROWS (0 = all 57,340 sentences; else a stratified sample of ROWS),
#   SEED (1, the sampler's), OUT (runs/bench/tune_brown).
set -euo pipefail
KILN="$(realpath "${1:-build/kiln}")"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRIALS="${TRIALS:-30}" JOBS="${JOBS:-1}" EPOCHS="${EPOCHS:-10}" ROWS="${ROWS:-0}" SEED="${SEED:-1}"
THREADS="${THREADS:-$(nproc)}"
OUT="$(realpath -m "${OUT:-runs/bench/tune_brown}")"
mkdir -p "$OUT"
say() { printf '[tune_brown] %s\n' "$*" >&2; }

csv="$("$KILN" -q data fetch brown)"
/usr/bin/python3 - "$csv" "$OUT" "$ROWS" <<'PY'
import csv, random, sys, collections
csv.field_size_limit(1 << 30)
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
n = int(sys.argv[3])
rng = random.Random(42)
by = collections.defaultdict(list)
for r in rows: by[r["label"]].append(r)
splits = {"train": [], "val": [], "test": []}
for label, rs in sorted(by.items()):
    rng.shuffle(rs)
    if n: rs = rs[: max(10, round(len(rs) * n / len(rows)))]
    a, b = int(len(rs) * 0.7), int(len(rs) * 0.8)
    splits["train"] += rs[:a]; splits["val"] += rs[a:b]; splits["test"] += rs[b:]
for name, rs in splits.items():
    rng.shuffle(rs)
    with open(f"{sys.argv[2]}/{name}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"]); w.writeheader(); w.writerows(rs)
print(f"[tune_brown] split: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()), file=sys.stderr)
PY

cat >"$OUT/tune.yaml" <<EOF
base_config: $SRC/configs/seed_recipe.yaml
train: {epochs: $EPOCHS}
metric: val_macro_f1
space:
  lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
  batch_size: {type: categorical, choices: [32, 64, 128]}
  dropout: {type: float, low: 0.1, high: 0.5}
objective: {train_file: $OUT/train.csv, val_file: $OUT/val.csv}
EOF

# The macro-F1 on validation and test of a run config trained on the split.
train_eval() {  # config run_dir
  "$KILN" -q --threads "$THREADS" train --config "$1" --epochs "$EPOCHS" --train "$OUT/train.csv" --val "$OUT/val.csv" \
    --test "$OUT/test.csv" --out "$2" >/dev/null
  /usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["metrics"]; print(m["validation"]["macro_f1"], m["test"]["macro_f1"])' \
    "$2/model/kiln.json"
}

say "untuned default (configs/seed_recipe.yaml, $EPOCHS epochs)"
t0=$(date +%s.%N)
read -r default_val default_test < <(train_eval "$SRC/configs/seed_recipe.yaml" "$OUT/default")
default_s=$(echo "$(date +%s.%N) - $t0" | bc)

declare -A wall best_val best_test pruned
for pruner in median none; do
  rm -rf "$OUT/$pruner"
  say "tuning: $TRIALS trials, pruner $pruner, $JOBS at once"
  t0=$(date +%s.%N)
  "$KILN" --threads "$THREADS" tune --config "$OUT/tune.yaml" --study "$pruner" --out "$OUT/$pruner" --trials "$TRIALS" \
    --jobs "$JOBS" --pruner "$pruner" --seed "$SEED" | tee "$OUT/$pruner.txt"
  wall[$pruner]=$(echo "$(date +%s.%N) - $t0" | bc)
  best_val[$pruner]=$(tail -n 1 "$OUT/$pruner.txt" | awk '{print $3}')
  pruned[$pruner]=$(grep -c ' pruned ' "$OUT/$pruner.txt" || true)
  say "retraining the best config of pruner $pruner for its test macro-F1"
  read -r _ best_test[$pruner] < <(train_eval "$OUT/$pruner/best.yaml" "$OUT/$pruner-best")
done

{
  echo "kiln tune on Brown ($(( $(wc -l <"$OUT/train.csv") - 1 )) training rows), $TRIALS trials, TPE seed $SEED, $EPOCHS epochs max, $JOBS job(s), $THREADS threads"
  printf '%-22s %10s %10s %10s %8s\n' run val_F1 test_F1 wall_s pruned
  printf '%-22s %10.4f %10.4f %10.1f %8s\n' "untuned default" "$default_val" "$default_test" "$default_s" -
  for p in median none; do
    printf '%-22s %10.4f %10.4f %10.1f %8s\n' "tuned, pruner $p" "${best_val[$p]}" "${best_test[$p]}" "${wall[$p]}" "${pruned[$p]}"
  done
  echo "macro-F1 gain over the default (test, median pruning): $(echo "${best_test[median]} - $default_test" | bc -l)"
  echo "time saved by pruning: $(echo "${wall[none]} - ${wall[median]}" | bc) s ($(echo "100 * (${wall[none]} - ${wall[median]}) / ${wall[none]}" | bc) %)"
} | tee "$OUT/report.txt"
