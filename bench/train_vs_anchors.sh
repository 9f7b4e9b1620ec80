#!/usr/bin/env bash
# Side-by-side training benchmark: Kiln (its default, --model linear, the seed recipe) vs
# scikit-learn (TfidfVectorizer + LogisticRegression, as shipped and with class_weight="balanced")
# vs fastText (fixed settings, and tuned on the validation split: an lr x epoch grid by default, or
# its own -autotune-validation),
# on the same stratified splits of each dataset, repeated over split seeds: mean +- std.
#
# Usage: bench/train_vs_anchors.sh [--datasets brown,spamassassin,fortunes]
#          [--systems kiln-default,kiln-linear,kiln-seed-recipe,sklearn,sklearn-balanced,fasttext,fasttext-tuned]
# Environment: KILN (default ./build/kiln), THREADS (default 2), PY (default /usr/bin/python3),
#   SEEDS (split seeds, default 1,2,3), FT_TUNE (grid, the default: FT_GRID_LR x FT_GRID_EPOCH, default
#   0.1,0.5,1.0 x 5,25, with -wordNgrams 2, best validation accuracy from `fasttext test`; or
#   autotune: -autotune-validation with -autotune-duration FT_AUTOTUNE_S, default 60 -- Debian's
#   fastText 0.9.2 overran a 60 s budget by over 15 minutes on a loaded 2-core machine here),
#   MAX_ROWS (0 = all; else a fixed random sample of that many rows of each dataset, for short runs),
#   SKB_MAX_FEATURES (sklearn-balanced's max_features, default 0 = all), SKB_NGRAM_MAX (default 1).
#
# Split: `kiln prepare --test-size 0.2 --val-size 0.1 --seed SEED` (70/10/20, stratified), one per
# seed, the same for every system. Systems that choose something on data choose it on val.csv only
# and train on train.csv (kiln-*: early stopping, best epoch and, for kiln-default, the model family;
# fasttext-tuned: its grid or autotune search); the systems with fixed settings (sklearn, sklearn-balanced,
# fasttext) train on train.csv + val.csv, so every system sees the same labelled rows. All metrics
# come from each system's predictions on test.csv through one helper (bench/lib/metrics.py,
# sklearn.metrics). Times are wall clock, end to end: "train" from CSV files to a saved model
# (interpreter start-up, CSV parsing, fastText's text conversion, Kiln's model selection and
# fastText-tuned's whole search included); "predict" from the test CSV to a predictions file.
# Scratch and results: bench/out/train_vs_anchors/ (results.jsonl, per-run logs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

DATASETS=brown,spamassassin,fortunes
SYSTEMS=kiln-default,kiln-linear,kiln-seed-recipe,sklearn,sklearn-balanced,fasttext,fasttext-tuned
SEEDS=${SEEDS:-1,2,3}
FT_TUNE=${FT_TUNE:-grid}
FT_GRID_LR=${FT_GRID_LR:-0.1,0.5,1.0}
FT_GRID_EPOCH=${FT_GRID_EPOCH:-5,25}
FT_AUTOTUNE_S=${FT_AUTOTUNE_S:-60}
MAX_ROWS=${MAX_ROWS:-0}
SKB_MAX_FEATURES=${SKB_MAX_FEATURES:-0}
SKB_NGRAM_MAX=${SKB_NGRAM_MAX:-1}
while [[ $# -gt 0 ]]; do
  case $1 in
    --datasets) DATASETS=${2:?--datasets needs a value}; shift 2 ;;
    --systems) SYSTEMS=${2:?--systems needs a value}; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
has() { [[ ",$SYSTEMS," == *",$1,"* ]]; }
for s in ${SYSTEMS//,/ }; do
  case $s in
    kiln-default|kiln-linear|kiln-seed-recipe|sklearn|sklearn-balanced|fasttext|fasttext-tuned) ;;
    *) die "unknown system '$s'" ;;
  esac
done

# Kiln fetches and splits the data, so it is needed even for anchors-only runs.
require_kiln
require_python
if has fasttext || has fasttext-tuned; then require_fasttext; fi

cd "$BENCH_ROOT"
OUT=bench/out/train_vs_anchors
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

echo "kiln: $KILN ($("$KILN" version 2>/dev/null | head -n 1)); threads: $THREADS; $(nproc) cores visible"
echo "sklearn: $("$PY" -c 'import sklearn; print(sklearn.__version__)'); fastText: $(dpkg-query -W -f='${Version}' fasttext 2>/dev/null || echo '?')"
[[ $FT_TUNE == grid || $FT_TUNE == autotune ]] || die "FT_TUNE must be grid or autotune, got '$FT_TUNE'"
echo "split seeds: $SEEDS; fasttext-tuned: $([[ $FT_TUNE == grid ]] && echo "grid lr {$FT_GRID_LR} x epoch {$FT_GRID_EPOCH}" || echo "autotune ${FT_AUTOTUNE_S} s"); rows: $([[ $MAX_ROWS == 0 ]] && echo all || echo "sample of $MAX_ROWS")"
echo "start: $(uptime)"

for ds in ${DATASETS//,/ }; do
  csv=$(fetch_dataset "$ds")
  mkdir -p "$OUT/$ds"
  if [[ $MAX_ROWS != 0 ]]; then
    # One fixed sample (seed 0) per dataset, shared by every seed and system.
    "$PY" - "$csv" "$OUT/$ds/sample.csv" "$MAX_ROWS" <<'PY'
import csv, random, sys
csv.field_size_limit(sys.maxsize)
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    header, rows = next(reader), list(reader)
n = int(sys.argv[3])
if n < len(rows):
    rows = [rows[i] for i in sorted(random.Random(0).sample(range(len(rows)), n))]
with open(sys.argv[2], "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
PY
    csv="$OUT/$ds/sample.csv"
  fi
  for seed in ${SEEDS//,/ }; do
    W="$OUT/$ds/seed$seed"
    rm -rf "$W"; mkdir -p "$W"
    split_dataset "$csv" "$W/split" "$seed"
    train="$W/split/train.csv"; val="$W/split/val.csv"; test="$W/split/test.csv"
    n_train=$(count_rows "$train" "$val")
    n_test=$(count_rows "$test")
    echo "== $ds, split seed $seed: $csv -> $n_train train+val rows, $n_test test rows; load $(cut -d' ' -f1-3 /proc/loadavg)"

    score() { "$PY" "$LIB/metrics.py" score "$test" "$1" "$2" "$train" "$val"; }

    for sys in ${SYSTEMS//,/ }; do
      case $sys in
        kiln-*)
          cfg=()
          case $sys in
            kiln-seed-recipe) cfg=(--config configs/seed_recipe.yaml) ;;
            kiln-linear) cfg=(--model linear) ;;
          esac
          timed t_train "$KILN" --threads "$THREADS" train "${cfg[@]}" --train "$train" --val "$val" \
            --out "$W/$sys" > "$W/$sys.train.log" 2>&1 ||
            { tail -n 20 "$W/$sys.train.log" >&2; die "$sys training failed on $ds (log: $W/$sys.train.log)"; }
          timed t_pred "$KILN" --threads "$THREADS" -q predict "$W/$sys/model" --input "$test" --format csv \
            > "$W/$sys.pred.jsonl" 2> "$W/$sys.pred.log" ||
            { cat "$W/$sys.pred.log" >&2; die "$sys prediction failed on $ds"; }
          s=$(score "$W/$sys.pred.jsonl" kiln) ;;
        sklearn|sklearn-balanced)
          sk_env=(THREADS="$THREADS")
          [[ $sys == sklearn-balanced ]] &&
            sk_env+=(SK_CLASS_WEIGHT=balanced MAX_FEATURES="$SKB_MAX_FEATURES" SK_NGRAM_MAX="$SKB_NGRAM_MAX")
          timed t_train env "${sk_env[@]}" "$PY" "$LIB/anchors.py" sklearn-train "$W/$sys.pkl" "$train" "$val"
          timed t_pred env THREADS="$THREADS" "$PY" "$LIB/anchors.py" sklearn-predict "$W/$sys.pkl" "$test" \
            "$W/$sys.pred.txt"
          s=$(score "$W/$sys.pred.txt" plain) ;;
        fasttext|fasttext-tuned)
          ft_train() {
            if [[ $sys == fasttext ]]; then
              "$PY" "$LIB/anchors.py" fasttext-format "$W/ft.train+val.txt" "$train" "$val" &&
                fasttext supervised -input "$W/ft.train+val.txt" -output "$W/$sys" -wordNgrams 2 -epoch 10 \
                  -thread "$THREADS" > "$W/$sys.train.log" 2>&1
              return
            fi
            "$PY" "$LIB/anchors.py" fasttext-format "$W/ft.train.txt" "$train" &&
              "$PY" "$LIB/anchors.py" fasttext-format "$W/ft.val.txt" "$val" || return 1
            if [[ $FT_TUNE == autotune ]]; then
              # fastText's own hyperparameter search, scored on the validation split (its F1), within
              # the time budget; the final model is trained on train.txt with the best settings found.
              fasttext supervised -input "$W/ft.train.txt" -output "$W/$sys" -autotune-validation "$W/ft.val.txt" \
                -autotune-duration "$FT_AUTOTUNE_S" -thread "$THREADS" > "$W/$sys.train.log" 2>&1
              return
            fi
            # lr x epoch grid (the two settings fastText's tutorial tunes, with -wordNgrams 2), each
            # model trained on train.txt and scored on val.txt (`fasttext test`: P@1 = accuracy); the
            # best one is kept as is. A setting that fails (fastText stops on a NaN loss) is skipped.
            local lr ep acc best_acc=-1
            : > "$W/$sys.train.log"
            for lr in ${FT_GRID_LR//,/ }; do
              for ep in ${FT_GRID_EPOCH//,/ }; do
                if ! fasttext supervised -input "$W/ft.train.txt" -output "$W/ft-grid" -wordNgrams 2 -lr "$lr" \
                  -epoch "$ep" -thread "$THREADS" >> "$W/$sys.train.log" 2>&1; then
                  echo "grid: lr $lr epoch $ep failed" >> "$W/$sys.train.log"
                  continue
                fi
                acc=$(fasttext test "$W/ft-grid.bin" "$W/ft.val.txt" | awk '$1 == "P@1" { print $2 }')
                echo "grid: lr $lr epoch $ep validation accuracy $acc" >> "$W/$sys.train.log"
                if awk -v a="$acc" -v b="$best_acc" 'BEGIN { exit !(a > b) }'; then
                  best_acc=$acc
                  mv "$W/ft-grid.bin" "$W/$sys.bin"
                  echo "-lr $lr -epoch $ep -wordNgrams 2 (validation accuracy $acc)" > "$W/$sys.chosen"
                fi
              done
            done
            rm -f "$W/ft-grid.bin" "$W/ft-grid.vec"
            [[ -f $W/$sys.bin ]]
          }
          ft_predict() {
            "$PY" "$LIB/anchors.py" fasttext-text "$W/ft.test.txt" "$test" &&
              fasttext predict "$W/$sys.bin" "$W/ft.test.txt" > "$W/$sys.pred.txt"
          }
          timed t_train ft_train || { tail "$W/$sys.train.log" >&2; die "$sys training failed on $ds"; }
          timed t_pred ft_predict
          s=$(score "$W/$sys.pred.txt" fasttext) ;;
      esac
      record "$RESULTS" "$s" dataset="$ds" seed="$seed" system="$sys" train_s="$t_train" predict_s="$t_pred" \
        n_train="$n_train" load1="$(cut -d' ' -f1 /proc/loadavg)"
      printf '   %-17s train %8.1f s  predict %6.2f s  %s\n' "$sys" "$t_train" "$t_pred" \
        "$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("acc %.4f  macro-F1 %.4f  rare-q recall %.4f" % (d["accuracy"], d["macro_f1"], d["rare_recall"]))' "$s")"
    done
    if [[ -f $W/kiln-default/model/kiln.json ]]; then
      echo "   kiln-default chose: $("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print((m.get("model") or {}).get("family", "?"))' "$W/kiln-default/model/kiln.json")"
    fi
    if [[ -f $W/fasttext-tuned.chosen ]]; then
      echo "   fasttext-tuned chose: $(cat "$W/fasttext-tuned.chosen")"
    elif [[ -f $W/fasttext-tuned.bin ]]; then
      echo "   fasttext-tuned chose: $(fasttext dump "$W/fasttext-tuned.bin" args 2>/dev/null |
        awk '$1 ~ /^(lr|dim|epoch|wordNgrams|minn|maxn|bucket|loss)$/ { printf "%s %s  ", $1, $2 }')"
    fi
  done
done

echo "end: $(uptime)"
"$PY" "$LIB/tables.py" anchors "$RESULTS"
echo
echo "rare-q recall: mean test recall of the ceil(C/4) classes with the fewest training rows."
echo "results: $RESULTS"
