#!/usr/bin/env bash
# The process environment Kiln chooses at start-up (core::prepare_process) against the alternatives,
# side by side in one run: OpenBLAS kernel core (OpenBLAS's own choice vs Kiln's), LibTorch's ATen
# kernel level (ATEN_CPU_CAPABILITY avx2 vs avx512), and the OpenMP wait policy (ACTIVE vs PASSIVE).
# For each setting: fp32 GEMM GFLOP/s and int8 GOP/s (kiln doctor, best of its runs), seed-recipe
# training wall time and macro-F1 on Brown (TF-IDF 5,000 + MLP 512, 10 epochs, same split), and
# `kiln predict` texts/s on 10,000 texts. Prints each setting's ratio to OpenBLAS's own choice.
#
# Usage: bench/cpu_kernels.sh [--dataset brown] [--repeats 2]
# Environment: KILN (default ./build/kiln), THREADS (default 2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
DATASET=brown
REPEATS=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --dataset) DATASET=${2:?}; shift 2 ;;
    --repeats) REPEATS=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
require_kiln
require_python
cd "$BENCH_ROOT"
out="bench/out/cpu_kernels"
mkdir -p "$out"
csv=$(fetch_dataset "$DATASET")
[[ -d "$out/$DATASET" ]] || split_dataset "$csv" "$out/$DATASET"
"$PY" - "$out/$DATASET/test.csv" "$out/texts.txt" <<'PY'
import csv, sys
csv.field_size_limit(1 << 30)
rows = [r["text"].replace("\n", " ") for r in csv.DictReader(open(sys.argv[1]))]
with open(sys.argv[2], "w") as f:
    for i in range(10000):
        f.write(rows[i % len(rows)] + "\n")
PY
"$KILN" doctor | sed 's/^/  /'

unset OPENBLAS_CORETYPE OMP_WAIT_POLICY ATEN_CPU_CAPABILITY
# name|environment (KILN_NO_TUNE_ENV=1 gives the libraries' own defaults)
settings=(
  "libraries' defaults|KILN_NO_TUNE_ENV=1"
  "kiln (default)|"
  "kiln + OMP ACTIVE|OMP_WAIT_POLICY=ACTIVE"
  "kiln + ATen avx512|ATEN_CPU_CAPABILITY=avx512"
  "OpenBLAS Haswell|OPENBLAS_CORETYPE=Haswell"
)
printf '\n%-22s %10s %10s %10s %8s %12s\n' setting "fp32 GF/s" "int8 GOP/s" "train s" "macroF1" "predict t/s"
base_train=""
base_pred=""
for s in "${settings[@]}"; do
  name=${s%%|*}
  envs=${s#*|}
  best_train=999999
  best_pred=0
  for r in $(seq 1 "$REPEATS"); do
    env $envs "$KILN" --threads "$THREADS" doctor --json --seconds 1 >"$out/doctor.json"
    rm -rf "$out/run"
    timed t env $envs "$KILN" -q --threads "$THREADS" train --train "$out/$DATASET/train.csv" \
      --val "$out/$DATASET/val.csv" --test "$out/$DATASET/test.csv" --config configs/seed_recipe.yaml \
      --out "$out/run" >"$out/train.out" 2>"$out/train.err" || { cat "$out/train.err"; die "train failed ($name)"; }
    best_train=$(awk -v a="$best_train" -v b="$t" 'BEGIN { print (b < a ? b : a) }')
    timed p env $envs "$KILN" -q --threads "$THREADS" predict "$out/run/model" --input "$out/texts.txt" >/dev/null
    best_pred=$(awk -v a="$best_pred" -v b="$p" 'BEGIN { r = 10000 / b; print (r > a ? r : a) }')
  done
  f1=$(awk '/macro avg/ {print $5}' "$out/train.out")
  read -r gf gi < <("$PY" -c "import json; d=json.load(open('$out/doctor.json')); print('%.1f %.1f' % (d['gemm_fp32_gflops'], d['gemm_int8_gops'] or 0))")
  [[ -n $base_train ]] || { base_train=$best_train; base_pred=$best_pred; }
  printf '%-22s %10s %10s %10.2f %8s %12.0f   train x%.2f, predict x%.2f\n' "$name" "$gf" "$gi" "$best_train" "$f1" \
    "$best_pred" "$(awk -v a="$base_train" -v b="$best_train" 'BEGIN { print a / b }')" \
    "$(awk -v a="$base_pred" -v b="$best_pred" 'BEGIN { print b / a }')"
done
