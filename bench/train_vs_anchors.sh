#!/usr/bin/env bash
# Side-by-side training benchmark: Kiln (seed recipe and recommended default) vs scikit-learn
# (TfidfVectorizer(max_features=5000) + LogisticRegression(max_iter=1000)) vs fastText
# (supervised, -wordNgrams 2 -epoch 10), on the same stratified split of each dataset.
#
# Usage: bench/train_vs_anchors.sh [--datasets brown,spamassassin,fortunes]
#                                  [--systems kiln-seed-recipe,kiln-default,sklearn,fasttext]
# Environment: KILN (default ./build/kiln), THREADS (default 2), PY (default /usr/bin/python3).
#
# Split: `kiln prepare --test-size 0.2 --val-size 0.1 --seed 42` (70/10/20, stratified). Kiln trains
# on train.csv and uses val.csv for early stopping / best epoch; the anchors train on train.csv +
# val.csv, so every system sees the same rows. All metrics come from each system's predictions on
# test.csv through one helper (bench/lib/metrics.py, sklearn.metrics). Times are wall clock, end to
# end: "train" from CSV files to a saved model (interpreter start-up, CSV parsing, fastText's text
# conversion included); "predict" from the test CSV to a predictions file.
# Scratch and results: bench/out/train_vs_anchors/ (results.jsonl, per-run logs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

DATASETS=brown,spamassassin,fortunes
SYSTEMS=kiln-seed-recipe,kiln-default,sklearn,fasttext
while [[ $# -gt 0 ]]; do
  case $1 in
    --datasets) DATASETS=${2:?--datasets needs a value}; shift 2 ;;
    --systems) SYSTEMS=${2:?--systems needs a value}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
has() { [[ ",$SYSTEMS," == *",$1,"* ]]; }
for s in ${SYSTEMS//,/ }; do
  case $s in kiln-seed-recipe|kiln-default|sklearn|fasttext) ;; *) die "unknown system '$s'" ;; esac
done

# Kiln fetches and splits the data, so it is needed even for anchors-only runs.
require_kiln
require_python
if has fasttext; then require_fasttext; fi

cd "$BENCH_ROOT"
OUT=bench/out/train_vs_anchors
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

echo "kiln: $KILN ($("$KILN" version 2>/dev/null | head -n 1)); threads: $THREADS; $(nproc) cores visible"
echo "sklearn: $("$PY" -c 'import sklearn; print(sklearn.__version__)')$(has fasttext && echo "; fastText: $(dpkg-query -W -f='${Version}' fasttext 2>/dev/null || echo '?')")"

for ds in ${DATASETS//,/ }; do
  W="$OUT/$ds"
  rm -rf "$W"; mkdir -p "$W"
  csv=$(fetch_dataset "$ds")
  split_dataset "$csv" "$W/split"
  train="$W/split/train.csv"; val="$W/split/val.csv"; test="$W/split/test.csv"
  n_train=$(count_rows "$train" "$val")
  n_test=$(count_rows "$test")
  echo "== $ds: $csv -> $n_train train+val rows, $n_test test rows"

  score() { "$PY" "$LIB/metrics.py" score "$test" "$1" "$2" "$train" "$val"; }

  for sys in ${SYSTEMS//,/ }; do
    case $sys in
      kiln-seed-recipe|kiln-default)
        cfg=(); [[ $sys == kiln-seed-recipe ]] && cfg=(--config configs/seed_recipe.yaml)
        timed t_train "$KILN" --threads "$THREADS" train "${cfg[@]}" --train "$train" --val "$val" \
          --out "$W/$sys" > "$W/$sys.train.log" 2>&1 ||
          { tail -n 20 "$W/$sys.train.log" >&2; die "$sys training failed on $ds (log: $W/$sys.train.log)"; }
        timed t_pred "$KILN" --threads "$THREADS" -q predict "$W/$sys/model" --input "$test" --format csv \
          > "$W/$sys.pred.jsonl" 2> "$W/$sys.pred.log" ||
          { cat "$W/$sys.pred.log" >&2; die "$sys prediction failed on $ds"; }
        s=$(score "$W/$sys.pred.jsonl" kiln) ;;
      sklearn)
        timed t_train env THREADS="$THREADS" "$PY" "$LIB/anchors.py" sklearn-train "$W/sklearn.pkl" "$train" "$val"
        timed t_pred env THREADS="$THREADS" "$PY" "$LIB/anchors.py" sklearn-predict "$W/sklearn.pkl" "$test" \
          "$W/sklearn.pred.txt"
        s=$(score "$W/sklearn.pred.txt" plain) ;;
      fasttext)
        ft_train() {
          "$PY" "$LIB/anchors.py" fasttext-format "$W/ft.train.txt" "$train" "$val" &&
            fasttext supervised -input "$W/ft.train.txt" -output "$W/fasttext" -wordNgrams 2 -epoch 10 \
              -thread "$THREADS" > "$W/fasttext.train.log" 2>&1
        }
        ft_predict() {
          "$PY" "$LIB/anchors.py" fasttext-text "$W/ft.test.txt" "$test" &&
            fasttext predict "$W/fasttext.bin" "$W/ft.test.txt" > "$W/fasttext.pred.txt"
        }
        timed t_train ft_train || { tail "$W/fasttext.train.log" >&2; die "fastText training failed on $ds"; }
        timed t_pred ft_predict
        s=$(score "$W/fasttext.pred.txt" fasttext) ;;
    esac
    record "$RESULTS" "$s" dataset="$ds" system="$sys" train_s="$t_train" predict_s="$t_pred" n_train="$n_train"
    printf '   %-17s train %8.1f s  predict %6.2f s  %s\n' "$sys" "$t_train" "$t_pred" \
      "$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("acc %.4f  macro-F1 %.4f  rare-q recall %.4f" % (d["accuracy"], d["macro_f1"], d["rare_recall"]))' "$s")"
  done
done

"$PY" "$LIB/tables.py" anchors "$RESULTS"
echo
echo "rare-q recall: mean test recall of the ceil(C/4) classes with the fewest training rows."
echo "results: $RESULTS"
