#!/usr/bin/env bash
# Study storage speed on SQLite: Kiln's SQL storage vs Optuna 3.1's RDBStorage (SQLAlchemy), the
# storage calls one trial costs: create it with 3 parameters (float log, int, categorical), report 3
# intermediate values, finish it with a value. Each system runs as it ships (Kiln: WAL journal,
# synchronous=NORMAL; Optuna: SQLAlchemy's SQLite defaults), on a fresh file on disk (bench/out/)
# and on tmpfs (/dev/shm), where fsync costs nothing and only the software's overhead remains.
# Optuna is timed two ways: as study.optimize() calls it (one transaction per parameter) and with
# the whole trial created in one call (create_new_trial with a template trial); the ratio uses the
# faster of the two. Times exclude process start-up, imports and schema creation.
#
# Usage: bench/storage_vs_optuna.sh            (TRIALS=200 REPEATS=1 BUILD=build; ~4 min, Optuna dominates)
# Needs a built kiln_tune (cmake --build "$BUILD" --target kiln_tune) and Debian's python3-optuna.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
TRIALS=${TRIALS:-200}
REPEATS=${REPEATS:-1}
PY=${PY:-/usr/bin/python3}
CXX=${CXX:-c++}

$PY -c 'import optuna' 2>/dev/null || { echo "needs $PY with Optuna (apt-get install python3-optuna)"; exit 2; }
for lib in "$BUILD/src/tune/libkiln_tune.a" "$BUILD/src/core/libkiln_core.a"; do
  [[ -f $lib ]] || { echo "missing $lib; build it: cmake --build $BUILD --target kiln_tune (or set BUILD)"; exit 2; }
done
command -v "$CXX" >/dev/null || { echo "needs a C++ compiler ($CXX)"; exit 2; }

OUT=bench/out/storage
mkdir -p "$OUT"
rm -f "$OUT"/*.db "$OUT"/*.db-wal "$OUT"/*.db-shm

cat >"$OUT/kiln_storage_bench.cpp" <<'CPP'
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kiln/tune/storage.h"

using namespace kiln::tune;

int main(int argc, char** argv) {
  const std::string url = argv[1];
  const int trials = std::atoi(argv[2]);
  auto s = open_storage(url);
  const auto study = s->create_or_load_study("bench", Direction::kMinimize);
  std::map<std::string, Distribution> d;
  d["lr"] = Distribution{Distribution::Kind::kFloat, 1e-5, 1e-1, true, std::nullopt, {}};
  d["layers"] = Distribution{Distribution::Kind::kInt, 1, 8, false, 1.0, {}};
  d["optimizer"] = Distribution{Distribution::Kind::kCategorical, 0, 1, false, std::nullopt, {"adam", "sgd", "adamw"}};
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < trials; ++i) {
    const Trial t = s->create_trial(study.id, {{"lr", 1e-3}, {"layers", 1 + i % 8}, {"optimizer", i % 3}}, d);
    for (int step = 0; step < 3; ++step) s->report(t.id, step, 1.0 / (step + 1 + i));
    if (!s->finish_trial(t.id, TrialState::kComplete, 0.5 / (i + 1))) return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (s->trials(study.id).size() != static_cast<std::size_t>(trials)) return 1;
  std::printf("%.6f\n", secs);
}
CPP
"$CXX" -std=c++17 -O2 -Iinclude "$OUT/kiln_storage_bench.cpp" -Wl,--start-group "$BUILD/src/tune/libkiln_tune.a" \
  "$BUILD/src/core/libkiln_core.a" -Wl,--end-group -lsqlite3 -lpq -lpthread -o "$OUT/kiln_storage_bench"

cat >"$OUT/optuna_storage_bench.py" <<'PY'
import sys, time, logging
import optuna
from optuna.distributions import FloatDistribution, IntDistribution, CategoricalDistribution
from optuna.trial import TrialState, create_trial
optuna.logging.set_verbosity(logging.WARNING)
url, trials, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = optuna.storages.RDBStorage(url)
sid = s.create_new_study([optuna.study.StudyDirection.MINIMIZE], "bench")
d = {"lr": FloatDistribution(1e-5, 1e-1, log=True), "layers": IntDistribution(1, 8),
     "optimizer": CategoricalDistribution(["adam", "sgd", "adamw"])}
t0 = time.perf_counter()
for i in range(trials):
    internal = {"lr": 1e-3, "layers": 1 + i % 8, "optimizer": i % 3}
    if mode == "template":
        template = create_trial(state=TrialState.RUNNING, distributions=d,
                                params={k: d[k].to_external_repr(v) for k, v in internal.items()})
        tid = s.create_new_trial(sid, template_trial=template)
    else:
        tid = s.create_new_trial(sid)
        for name, v in internal.items():
            s.set_trial_param(tid, name, v, d[name])
    for step in range(3):
        s.set_trial_intermediate_value(tid, step, 1.0 / (step + 1 + i))
    s.set_trial_state_values(tid, TrialState.COMPLETE, [0.5 / (i + 1)])
secs = time.perf_counter() - t0
assert len(s.get_all_trials(sid)) == trials
print(f"{secs:.6f}")
PY

# Best of REPEATS fresh files in directory $1, in seconds: best DIR CMD (URL and args after the file).
best() {
  local dir=$1 best_s="" t i
  shift
  for ((i = 0; i < REPEATS; ++i)); do
    rm -f "$dir"/run.db*
    t=$("$@")
    best_s=$(awk -v a="$t" -v b="${best_s:-1e9}" 'BEGIN { print (a < b ? a : b) }')
  done
  rm -f "$dir"/run.db*
  echo "$best_s"
}

# On disk (fsync costs included, each system with its own durability settings) and, where there is
# one, on tmpfs (no fsync cost: the software's own overhead).
dirs=("$OUT")
labels=("disk ($OUT)")
if [[ -d /dev/shm && -w /dev/shm ]]; then
  SHM=$(mktemp -d /dev/shm/kiln-storage-bench.XXXXXX)
  trap 'rm -rf "$SHM"' EXIT
  dirs+=("$SHM")
  labels+=("tmpfs (/dev/shm)")
fi
for i in "${!dirs[@]}"; do
  dir=${dirs[$i]}
  url="sqlite:///$(cd "$dir" && pwd)/run.db"
  kiln=$(best "$dir" "$OUT/kiln_storage_bench" "$url" "$TRIALS")
  optuna_suggest=$(best "$dir" "$PY" "$OUT/optuna_storage_bench.py" "$url" "$TRIALS" suggest)
  optuna_template=$(best "$dir" "$PY" "$OUT/optuna_storage_bench.py" "$url" "$TRIALS" template)
  awk -v n="$TRIALS" -v k="$kiln" -v os="$optuna_suggest" -v ot="$optuna_template" -v r="$REPEATS" -v where="${labels[$i]}" 'BEGIN {
    printf "SQLite study storage on %s: %d trials (create with 3 params, 3 reports, finish), best of %d\n", where, n, r
    printf "  %-44s %8.3f s  %8.3f ms/trial\n", "kiln SqlStorage (SQLite)", k, 1000 * k / n
    printf "  %-44s %8.3f s  %8.3f ms/trial\n", "optuna 3.1 RDBStorage (as optimize() calls)", os, 1000 * os / n
    printf "  %-44s %8.3f s  %8.3f ms/trial\n", "optuna 3.1 RDBStorage (template trial)", ot, 1000 * ot / n
    best_optuna = os < ot ? os : ot
    printf "  ratio optuna/kiln: %.1fx (against the faster Optuna way)\n", best_optuna / k
  }'
done
