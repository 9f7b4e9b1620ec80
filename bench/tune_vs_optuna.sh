#!/usr/bin/env bash
# TPE quality and speed: Kiln's TpeSampler vs Optuna 3.1's TPESampler, both with their defaults
# (univariate, 10 random start-up trials, 24 candidates), both in-process, side by side in one run.
#
# Quality: Branin 2-D, Hartmann 6-D, Rosenbrock 4-D with every parameter on a log scale
# [0.01, 10], and a mixed space (a 4-way categorical that shifts a quadratic, two floats, an int);
# SEEDS seeds x TRIALS trials each, minimising; the median over seeds of the best value found.
# Overhead: seconds per suggestion (all 6 parameters of the Hartmann space) given a history of 100
# and 1,000 completed trials, both sides timed over the same scope, the sampler alone: Kiln's one
# TpeSampler::sample(space, history) call; Optuna's TPESampler calls that study.ask() and the six
# suggest_float() calls make (infer_relative_search_space, sample_relative, one sample_independent
# per parameter), its read of the history from the in-memory storage included, since that read is
# the sampler's own work (Kiln's history arrives as an argument). Trial creation and tell() are
# outside both clocks; Optuna's whole ask() + suggests + tell() round is printed beside, for
# context, not in the ratio. Times are process CPU seconds (steady on a loaded machine; both sides
# run one thread, OPENBLAS/OMP capped at 1), wall seconds printed next to them. Process start-up
# and imports are excluded.
#
# Usage: bench/tune_vs_optuna.sh      (SEEDS=30 TRIALS=50 BUILD=build; ~4 min, Optuna dominates;
#        QUALITY=0 skips the quality part and times the overhead only)
# Needs a built kiln_tune (cmake --build "$BUILD" --target kiln_tune) and Debian's python3-optuna.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
SEEDS=${SEEDS:-30}
TRIALS=${TRIALS:-50}
PY=${PY:-/usr/bin/python3}
CXX=${CXX:-c++}

$PY -c 'import optuna' 2>/dev/null || { echo "needs $PY with Optuna (apt-get install python3-optuna)"; exit 2; }
for lib in "$BUILD/src/tune/libkiln_tune.a" "$BUILD/src/core/libkiln_core.a"; do
  [[ -f $lib ]] || { echo "missing $lib; build it: cmake --build $BUILD --target kiln_tune (or set BUILD)"; exit 2; }
done
command -v "$CXX" >/dev/null || { echo "needs a C++ compiler ($CXX)"; exit 2; }

OUT=bench/out/tune
mkdir -p "$OUT"
"$CXX" -std=c++17 -O2 -DNDEBUG -Iinclude bench/tune_functions.cpp "$BUILD/src/tune/libkiln_tune.a" \
  "$BUILD/src/core/libkiln_core.a" -o "$OUT/tune_functions"

echo "TPE, Kiln vs Optuna $($PY -c 'import optuna; print(optuna.__version__)'): $SEEDS seeds x $TRIALS trials, minimising; nproc $(nproc), load $(cut -d' ' -f1 /proc/loadavg)"
if [[ ${QUALITY:-1} != 0 ]]; then
  printf '\n%-16s %14s %14s %10s   %s\n' function kiln_median optuna_median winner "kiln wins (seeds)"
  kiln_better=0
  for fn in branin hartmann6 rosenbrock4_log mixed; do
    "$OUT/tune_functions" quality "$fn" "$SEEDS" "$TRIALS" > "$OUT/kiln_$fn.txt"
    $PY bench/lib/tune_optuna.py quality "$fn" "$SEEDS" "$TRIALS" > "$OUT/optuna_$fn.txt"
    line=$($PY - "$OUT/kiln_$fn.txt" "$OUT/optuna_$fn.txt" <<'PY'
import statistics, sys
k = [float(l.split()[1]) for l in open(sys.argv[1])]
o = [float(l.split()[1]) for l in open(sys.argv[2])]
mk, mo = statistics.median(k), statistics.median(o)
wins = sum(a < b for a, b in zip(k, o))
winner = "kiln" if mk < mo else ("tie" if mk == mo else "optuna")
print(f"{mk:14.6g} {mo:14.6g} {winner:>10}   {wins}/{len(k)}")
PY
  )
    printf '%-16s %s\n' "$fn" "$line"
    [[ $line == *" optuna "* ]] || kiln_better=$((kiln_better + 1))
  done
  echo "Kiln as good or better on $kiln_better of 4 functions (median best value)"
fi

echo
echo "seconds per suggestion, sampler alone: process CPU seconds (wall in parentheses); load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-12s %22s %22s %12s   %s\n' "" "kiln sample()" "optuna sampler calls" "kiln/optuna" "optuna ask+suggests+tell (context)"
for n in 100 1000; do
  read -r k_cpu k_wall < <(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$OUT/tune_functions" overhead "$n" 200)
  read -r o_cpu o_wall r_cpu r_wall < <(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    $PY bench/lib/tune_optuna.py overhead "$n" $((n >= 1000 ? 10 : 30)))
  printf '%-12s %22s %22s %12s   %s\n' "history $n" \
    "$(printf '%.3g (%.3g)' "$k_cpu" "$k_wall")" "$(printf '%.3g (%.3g)' "$o_cpu" "$o_wall")" \
    "$(awk -v a="$k_cpu" -v b="$o_cpu" 'BEGIN { printf "1/%.0f", b / a }')" "$(printf '%.3g (%.3g)' "$r_cpu" "$r_wall")"
done
