#!/usr/bin/env bash
# How long `kiln report` takes and how large its pages are, for the two sizes the issue names:
#   run     a training run on Brown (57,340 rows after cleaning; linear model, 5 epochs: ~6,300 logged
#           steps, 15 classes), made with `kiln run` unless RUN=DIR names an existing run directory
#   study   a 200-trial study (3 parameters, median pruner: complete and pruned trials with 4
#           intermediate values each) from a /bin/sh command objective, so that making it is quick
# Each page is generated ROUNDS times (default 5); the script prints the best and the median wall
# time of the whole `kiln report` process and the in-process generation time kiln reports, the file
# size, and the target (under 1 s). When python3 has optuna and plotly, Optuna's own plots of the
# same study (history, importances, parallel coordinates, slice; written with write_html, plotly.js
# inlined so the file opens offline like Kiln's) are timed side by side and the ratio printed.
#
# Usage: bench/report_pages.sh     env: KILN (default ./build/kiln), RUN, ROUNDS, PY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
require_kiln
ROUNDS=${ROUNDS:-5}
OUT="$BENCH_ROOT/bench/out/report_pages"
mkdir -p "$OUT"
cd "$OUT"
echo "machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

# times LABEL CMD...: runs CMD ROUNDS times; prints best and median wall seconds and kiln's own timing.
times() {
  local label="$1"; shift
  local walls=() inner=()
  for ((i = 0; i < ROUNDS; i++)); do
    local t0 t1 err
    t0=$(date +%s.%N)
    err=$("$@" 2>&1 >/dev/null)
    t1=$(date +%s.%N)
    walls+=("$(echo "$t1 - $t0" | bc -l)")
    inner+=("$(sed -n 's/.* \([0-9.]*\) s)$/\1/p' <<<"$err" | tail -n 1)")
  done
  "$PY" - "$label" "${walls[*]}" "${inner[*]}" <<'PY'
import statistics, sys
label, walls, inner = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split() if x]
open("last_best.txt", "w").write(str(min(walls)))
print(f"{label:34s} wall best {min(walls):.3f} s  median {statistics.median(walls):.3f} s"
      + (f"   generation best {min(inner):.3f} s  median {statistics.median(inner):.3f} s" if inner else "")
      + f"   target < 1 s: {'met' if statistics.median(walls) < 1 else 'MISSED'}")
PY
}

# 1. The Brown run.
RUN=${RUN:-}
if [[ -z $RUN ]]; then
  RUN="$OUT/brown-run"
  if [[ ! -s $RUN/model/kiln.json ]]; then
    echo "training a linear model on brown (kiln run, 5 epochs) ..."
    "$KILN" -q run --dataset brown --model linear --epochs 5 --out "$RUN" >/dev/null
  fi
fi
steps=$(grep -c '"type":"step"' "$RUN/metrics.jsonl" || true)
echo "run: $RUN ($steps logged steps, $(wc -c <"$RUN/metrics.jsonl") bytes of metrics.jsonl)"
times "kiln report RUN" "$KILN" report "$RUN" --out "$OUT/run.html"
echo "run page: $(wc -c <"$OUT/run.html") bytes"

# 2. A 200-trial study.
rm -rf study && mkdir study
cat >study/tune.yaml <<'YAML'
direction: maximize
metric: score
space:
  x: {type: float, low: 0.0, high: 1.0}
  lr: {type: float, low: 0.0001, high: 0.1, log: true}
  k: {type: categorical, choices: [a, b, c]}
objective:
  command: "awk -v x={x} -v lr={lr} 'BEGIN { v = -(x - 0.3)^2 - (log(lr) + 6)^2 / 100; for (s = 1; s <= 4; s++) printf \"step %d value %.6f\\n\", s, v * s / 4; printf \"score=%.6f\\n\", v }'"
  metric_regex: "score=([-0-9.e]+)"
  intermediate_regex: "step (\\d+) value ([-0-9.e]+)"
YAML
echo "making a 200-trial study ..."
"$KILN" -q tune --config study/tune.yaml --study bench200 --out study/run --trials 200 --jobs 2 --sampler random \
  --pruner median --seed 1 >/dev/null
URL="sqlite:///$OUT/study/run/study.db"
times "kiln report --study (200 trials)" "$KILN" report --study bench200 --storage "$URL" --out "$OUT/study.html"
echo "study page: $(wc -c <"$OUT/study.html") bytes"

# 3. Optuna's plots of the same trials, when plotly is there.
if "$PY" -c 'import optuna, plotly' 2>/dev/null; then
  "$PY" - "$OUT/study/run/study.db" "$ROUNDS" "$(cat last_best.txt)" <<'PY'
import sqlite3, statistics, sys, time, json
import optuna
from optuna.distributions import FloatDistribution, CategoricalDistribution
optuna.logging.set_verbosity(optuna.logging.WARNING)
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT id, number, state, value FROM trials ORDER BY number").fetchall()
study = optuna.create_study(direction="maximize")
dists = {"x": FloatDistribution(0, 1), "lr": FloatDistribution(1e-4, 0.1, log=True), "k": CategoricalDistribution(["a", "b", "c"])}
for tid, number, state, value in rows:
    params = {n: v for n, v in db.execute("SELECT name, value FROM trial_params WHERE trial_id = ?", (tid,))}
    params["k"] = ["a", "b", "c"][int(params["k"])]
    inter = {s: v for s, v in db.execute("SELECT step, value FROM trial_intermediate_values WHERE trial_id = ?", (tid,))}
    st = {1: optuna.trial.TrialState.COMPLETE, 2: optuna.trial.TrialState.PRUNED}.get(state, optuna.trial.TrialState.FAIL)
    study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value if st == optuna.trial.TrialState.COMPLETE else None,
                                              intermediate_values=inter, state=st))
walls = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    v = optuna.visualization
    figs = [v.plot_optimization_history(study), v.plot_param_importances(study), v.plot_parallel_coordinate(study),
            v.plot_slice(study), v.plot_intermediate_values(study)]
    with open("optuna.html", "w") as f:
        for i, fig in enumerate(figs):
            f.write(fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False))
    walls.append(time.perf_counter() - t0)
import os
print(f"{'optuna.visualization (5 plots)':34s} in-process best {min(walls):.3f} s  median {statistics.median(walls):.3f} s"
      f"   page {os.path.getsize('optuna.html')} bytes")
print(f"optuna best / kiln best (whole kiln process): {min(walls) / float(sys.argv[3]):.1f}x")
PY
else
  echo "optuna.visualization: skipped (python3 lacks optuna or plotly: apt-get install python3-optuna python3-plotly)"
fi
