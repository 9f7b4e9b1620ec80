#!/usr/bin/env bash
# kiln tune with command objectives (a tiny python function): the live table and the best line,
# --show, resuming a study, bad tune.yaml files, a kill -9 of a running `kiln tune` then resume
# (no completed trial lost, none run twice, the dead worker's trial failed after the heartbeat
# timeout), and two worker processes sharing one PostgreSQL study (when PostgreSQL is installed).
set -euo pipefail
KILN="$1"
SRC="${KILN_SOURCE_DIR:?set KILN_SOURCE_DIR to the source tree}"
tmp="$(mktemp -d)"
cleanup() {
  [[ -n "${bg_pid:-}" ]] && kill -9 "$bg_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
[[ -n "${KEEP_TMP:-}" ]] && trap - EXIT && echo "tmp: $tmp" >&2
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/../lib/require_tools.sh"  # missing_tool
cd "$tmp"

# The objective: -(x - 0.3)^2 (+ 0.1 for k=b), reported over 3 steps, with a log of every start and
# end so the test can tell which trials ran. SLEEP seconds per step.
cat >f.py <<'PY'
import os, sys, time
x, k = float(sys.argv[1]), sys.argv[2]
assert os.environ["KILN_PARAM_X"] == sys.argv[1], (os.environ["KILN_PARAM_X"], sys.argv[1])
assert os.environ["KILN_PARAM_K"] == k
n = os.environ["KILN_TRIAL_NUMBER"]
log = os.environ["TUNE_LOG"]
with open(log, "a") as f: f.write(f"start {n} {x!r} {k}\n")
value = -(x - 0.3) ** 2 + (0.1 if k == "b" else 0.0)
for s in range(1, 4):
    time.sleep(float(os.environ.get("SLEEP", "0")))
    print(f"step {s} value {value * s / 3}", flush=True)
print(f"score={value}")
with open(log, "a") as f: f.write(f"end {n}\n")
PY
write_config() {  # file [extra yaml]
  cat >"$1" <<EOF
direction: maximize
metric: score
space:
  x: {type: float, low: 0.0, high: 1.0}
  k: {type: categorical, choices: [a, b]}
objective:
  command: "/usr/bin/python3 $tmp/f.py {x} {k}"
  metric_regex: "score=([-0-9.e]+)"
  intermediate_regex: "step (\\\\d+) value ([-0-9.e]+)"
${2:-}
EOF
}
write_config quad.yaml
export TUNE_LOG="$tmp/quad.log"

# 1. A study of 6 trials: the table, the best line last, the best parameters file.
"$KILN" tune --config quad.yaml --trials 6 --sampler random --seed 7 --pruner none >out.txt 2>err.txt \
  || { cat err.txt; fail "kiln tune failed"; }
last="$(tail -n 1 out.txt)"
[[ "$last" =~ ^best\ value\ -?[0-9.e-]+\ at\ trial\ [0-9]+:\ k=[ab]\ x=[0-9.e-]+$ ]] || { cat out.txt; fail "last line: $last"; }
head -n 1 out.txt | grep -q "^trial *state *score *duration *params" || fail "no table header: $(head -n 1 out.txt)"
test "$(grep -c ' complete ' out.txt)" -eq 6 || { cat out.txt; fail "expected 6 complete rows"; }
test -s runs/tune/quad/best_params.yaml || fail "no best_params.yaml"
test -e runs/tune/quad/study.db || fail "the default storage is not runs/tune/quad/study.db"
test "$(grep -c '^start' quad.log)" -eq 6 || fail "6 trials should have run"
# The best line agrees with the log: the best value is the maximum of what the function returned.
/usr/bin/python3 - "$last" quad.log <<'PY' || fail "best line does not match the trials run"
import re, sys
m = re.match(r"best value (\S+) at trial (\d+): k=(\w) x=(\S+)", sys.argv[1])
v, k, x = float(m[1]), m[3], float(m[4])
runs = [l.split() for l in open(sys.argv[2]) if l.startswith("start")]
vals = [-(float(r[2]) - 0.3) ** 2 + (0.1 if r[3] == "b" else 0) for r in runs]
assert abs(max(vals) - v) < 1e-9, (vals, v)
assert abs(-(x - 0.3) ** 2 + (0.1 if k == "b" else 0) - v) < 1e-9
PY

# 2. --show, then resume to 8 trials: only 2 more run.
"$KILN" tune --show --study quad --out runs/tune/quad >show.txt || fail "--show failed"
grep -q "^6 trials: 6 complete, 0 pruned, 0 failed, 0 running" show.txt || { cat show.txt; fail "--show counts"; }
grep -q "^importance (share of variance explained by marginal means): " show.txt || { cat show.txt; fail "--show importances"; }
tail -n 1 show.txt | grep -q "^$last\$" || fail "--show best line differs: $(tail -n 1 show.txt)"
"$KILN" -q tune --config quad.yaml --trials 8 --sampler tpe --seed 1 >out2.txt 2>err2.txt || { cat err2.txt; fail "resume failed"; }
test "$(grep -c '^start' quad.log)" -eq 8 || fail "resume should run exactly 2 more trials"
"$KILN" tune --show --storage "sqlite:///$tmp/runs/tune/quad/study.db" --study quad >show2.txt
grep -Eq "^8 trials: [0-9]+ complete, [0-9]+ pruned, 0 failed, 0 running" show2.txt \
  || { cat show2.txt; fail "after resume the study should hold 8 complete or pruned trials"; }

# --jobs 3: three trials at once, each number run once, exactly the requested count.
export TUNE_LOG="$tmp/par.log" SLEEP=0.1
"$KILN" -q tune --config quad.yaml --study par --jobs 3 --trials 6 --pruner none >par.txt 2>&1 || { cat par.txt; fail "--jobs 3"; }
unset SLEEP
export TUNE_LOG="$tmp/quad.log"
test "$(grep -c '^start' par.log)" -eq 6 || fail "--jobs 3 --trials 6 should start 6 trials"
test "$(grep '^start' par.log | awk '{print $2}' | sort -u | wc -l)" -eq 6 || fail "--jobs 3: a trial number ran twice"

# 3. Bad configurations: exit 2 and the message.
expect_fail() {  # expected-exit-code expected-text command...
  local code="$1" text="$2"; shift 2
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
  [[ $rc -eq $code ]] || { cat "$tmp/err"; fail "expected exit $code, got $rc: $*"; }
  grep -qF -- "$text" "$tmp/err" || { cat "$tmp/err"; fail "expected '$text' in stderr: $*"; }
}
printf 'spcae: {}\n' >typo.yaml
expect_fail 2 "typo.yaml: unknown key 'spcae'" "$KILN" tune --config typo.yaml
printf 'direction: minimize\nspace: {x: {type: float, low: 0, high: 1}}\nobjective: {command: "echo {x}"}\n' >noregex.yaml
expect_fail 2 "objective.metric_regex is missing" "$KILN" tune --config noregex.yaml
printf 'direction: minimize\nspace: {x: {type: flot, low: 0, high: 1}}\nobjective: {command: "echo {x}", metric_regex: "(.*)"}\n' >badtype.yaml
expect_fail 2 "space.x.type must be float, int or categorical" "$KILN" tune --config badtype.yaml
expect_fail 2 "--timeout: 'soon' is not a duration" "$KILN" tune --config quad.yaml --timeout soon
expect_fail 2 "--trials does not apply with --show" "$KILN" tune --show --study quad --trials 3
expect_fail 2 "no study 'nope'" "$KILN" tune --show --study nope --out runs/tune/quad
# A regex that never matches: every trial fails with the reason; the run stops after 5 in a row.
printf 'direction: minimize\nspace: {x: {type: float, low: 0, high: 1}}\nobjective: {command: "echo accuracy {x}", metric_regex: "loss=([0-9.]+)"}\n' >nomatch.yaml
expect_fail 1 "too many trials failed in a row" "$KILN" tune --config nomatch.yaml --trials 3
grep -q "failed .*(metric_regex 'loss=(\[0-9.\]+)' matched no line of the output of: echo accuracy" "$tmp/out" \
  || { cat "$tmp/out"; fail "the failed trial's reason is not in the table"; }
# --show gives each failed trial its stored reason on its row: the first line and the last line of
# output the reason quotes.
"$KILN" tune --show --study nomatch >nomatch_show.txt || fail "--show of a study of failed trials"
test "$(grep -Ec "^[0-9]+ +failed .*\(metric_regex 'loss=.* matched no line of the output of: echo accuracy [0-9.e-]+ \| last output: accuracy [0-9.e-]+\)$" nomatch_show.txt)" -eq 5 \
  || { cat nomatch_show.txt; fail "--show should print each failed trial's reason compactly on its row"; }

# Grid values from the config (`grid:` per parameter): each listed point runs once, then the grid
# is exhausted; a value outside its parameter's domain is a configuration error.
cat >grid.yaml <<EOF
direction: maximize
metric: score
space:
  x: {type: float, low: 0.0, high: 1.0, grid: [0.1, 0.3]}
  k: {type: categorical, choices: [a, b, c], grid: [b, a]}
objective:
  command: "/usr/bin/python3 $tmp/f.py {x} {k}"
  metric_regex: "score=([-0-9.e]+)"
EOF
TUNE_LOG="$tmp/grid.log" "$KILN" tune --config grid.yaml --sampler grid --trials 10 --pruner none >grid.txt 2>&1 \
  || { cat grid.txt; fail "--sampler grid with grid values"; }
test "$(grep '^start' grid.log | awk '{print $3, $4}' | sort | tr '\n' ,)" = "0.1 a,0.1 b,0.3 a,0.3 b," \
  || { cat grid.log; fail "the grid should be x in {0.1, 0.3} times k in {a, b}, each point once"; }
grep -q "stopped: the grid is exhausted" grid.txt || { cat grid.txt; fail "the grid should be exhausted"; }
sed 's/grid: \[0.1, 0.3\]/grid: [0.1, 1.5]/' grid.yaml >badgrid.yaml
expect_fail 2 "badgrid.yaml: space.x.grid holds 1.5, outside the parameter's domain; list numbers in [0.0, 1.0]" \
  "$KILN" tune --config badgrid.yaml --sampler grid

# 4. kill -9 of a running kiln tune, then resume.
write_config crash.yaml
export TUNE_LOG="$tmp/crash.log" SLEEP=0.25
"$KILN" -q tune --config crash.yaml --trials 5 --heartbeat-timeout 2 --sampler random --seed 3 --pruner none >crash1.txt 2>&1 &
bg_pid=$!
for _ in $(seq 1 200); do  # until trial 2 has started and is running
  grep -q "^start 2 " crash.log 2>/dev/null && break
  sleep 0.05
done
grep -q "^start 2 " crash.log || { cat crash1.txt; fail "trial 2 never started"; }
kill -9 "$bg_pid"
wait "$bg_pid" 2>/dev/null || true
bg_pid=""
sleep 1.2  # a child that outlived its tuner would log "end 2" by now
grep -q "^end 2" crash.log && fail "the trial kept running after its tuner was killed"
ended_before="$(grep -c '^end' crash.log)"
t0=$(date +%s.%N)
"$KILN" -q tune --config crash.yaml --trials 5 --heartbeat-timeout 2 --sampler random --seed 4 --pruner none >crash2.txt 2>&1 \
  || { cat crash2.txt; fail "resume after kill -9 failed"; }
"$KILN" tune --show --study crash >crash_show.txt
grep -q "^6 trials: 5 complete, 0 pruned, 1 failed, 0 running" crash_show.txt || { cat crash_show.txt; fail "after resume"; }
grep -q "^2 .*failed.*no heartbeat for more than 2 s" crash_show.txt || { cat crash_show.txt; fail "trial 2 should be failed as stale"; }
/usr/bin/python3 - crash.log "$ended_before" <<'PY' || fail "a trial ran twice or a completed one was lost"
import collections, sys
lines = [l.split() for l in open(sys.argv[1])]
starts = collections.Counter(l[1] for l in lines if l[0] == "start")
ends = [l[1] for l in lines if l[0] == "end"]
assert all(c == 1 for c in starts.values()), starts          # no trial number ran twice
assert sorted(starts) == [str(i) for i in range(6)], starts   # 0..5: trial 2 died, 5 replaced it
assert "2" not in ends and len(ends) == 5, ends
assert int(sys.argv[2]) == 2, sys.argv[2]                    # trials 0 and 1 finished before the kill
PY

# SIGINT: the running trial is stopped and failed as "interrupted", exit 130, and a rerun resumes.
export TUNE_LOG="$tmp/int.log" SLEEP=2
write_config int.yaml
"$KILN" -q tune --config int.yaml --trials 2 --pruner none >int.txt 2>&1 &
bg_pid=$!
for _ in $(seq 1 100); do grep -q "^start 0 " int.log 2>/dev/null && break; sleep 0.05; done
kill -INT "$bg_pid"
set +e; wait "$bg_pid"; rc=$?; set -e
bg_pid=""
[[ $rc -eq 130 ]] || { cat int.txt; fail "SIGINT should exit 130, got $rc"; }
grep -q "^0 .*failed.*(interrupted)" int.txt || { cat int.txt; fail "the interrupted trial should be failed as interrupted"; }
unset SLEEP

# 5. Training objective: each trial trains in a kiln-ml child; per-epoch validation macro-F1 is
# stored; the best run config trains as is; a parameter the model lacks stops the study (exit 2).
/usr/bin/python3 - "$tmp" <<'PY'
import csv, random, sys
random.seed(3)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
for name, n in (("train", 40), ("val", 15)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = list(words)[i % 3]
            toks = random.sample(words[label], 2) + random.sample(common, 6)
            random.shuffle(toks); w.writerow([" ".join(toks), label])
PY
printf '%s\n' 'model: {family: mlp, params: {hidden: [16]}}' 'train: {epochs: 3, early_stopping_patience: 0}' \
  'space:' '  lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}' '  layers: {type: int, low: 1, high: 2}' \
  'objective: {train_file: train.csv, val_file: val.csv}' >mlp.yaml
"$KILN" --threads 1 tune --config mlp.yaml --trials 3 --seed 5 >mlp.txt 2>mlp.err || { cat mlp.err; fail "training objective"; }
test "$(grep -c ' complete ' mlp.txt)" -eq 3 || { cat mlp.txt mlp.err; fail "3 training trials should complete"; }
tail -n 1 mlp.txt | grep -Eq "^best value [0-9.e-]+ at trial [0-2]: layers=[12] lr=" || fail "training best line: $(tail -n 1 mlp.txt)"
test -s runs/tune/mlp/trials/trial-00000/config.yaml || fail "no trial config"
test -s runs/tune/mlp/trials/trial-00000/run/model/kiln.json || fail "no trial artifact"
/usr/bin/python3 - runs/tune/mlp/study.db <<'PY' || fail "per-epoch values were not reported"
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("select count(*) from trial_intermediate_values").fetchone()[0]
assert n == 9, n   # 3 trials x 3 epochs
PY
"$KILN" -q train --config runs/tune/mlp/best.yaml --train train.csv --val val.csv --out best-run >/dev/null \
  || fail "the best config does not train"
printf '%s\n' 'model: {family: linear}' 'train: {epochs: 2}' 'space: {dropout: {type: float, low: 0.1, high: 0.5}}' \
  'objective: {train_file: train.csv, val_file: val.csv}' >lin.yaml
expect_fail 2 "trial 0: kiln-ml exited with status 2: model.params.dropout is not a parameter of model family" \
  "$KILN" --threads 1 tune --config lin.yaml --trials 3

# 6. Two worker processes on one PostgreSQL study.
if [[ -x "$SRC/tests/tune/with_postgres.sh" || -f "$SRC/tests/tune/with_postgres.sh" ]]; then
  write_config pg.yaml
  export TUNE_LOG="$tmp/pg.log" SLEEP=0.02 KILN
  set +e
  bash "$SRC/tests/tune/with_postgres.sh" bash -c '
    set -e
    "$KILN" -q tune --config pg.yaml --storage "$KILN_TEST_POSTGRES_URL" --out w1 --trials 10 >w1.txt 2>&1 &
    a=$!
    "$KILN" -q tune --config pg.yaml --storage "$KILN_TEST_POSTGRES_URL" --out w2 --trials 10 >w2.txt 2>&1 &
    b=$!
    wait $a; wait $b
    "$KILN" tune --show --storage "$KILN_TEST_POSTGRES_URL" --study pg >pg_show.txt' 2>pg_err.txt
  rc=$?
  set -e
  if [[ $rc -eq 77 ]]; then  # with_postgres.sh fails instead (exit 1) where tools are required
    missing_tool "PostgreSQL server binaries" postgresql "two tune workers sharing a PostgreSQL study"
  else
    [[ $rc -eq 0 ]] || { cat pg_err.txt w1.txt w2.txt 2>/dev/null; fail "two PostgreSQL workers failed (exit $rc)"; }
    /usr/bin/python3 - pg.log pg_show.txt <<'PY' || { cat pg_show.txt; fail "two workers: a trial ran twice or the total is wrong"; }
import collections, re, sys
lines = [l.split() for l in open(sys.argv[1])]
starts = [l for l in lines if l[0] == "start"]
numbers = collections.Counter(l[1] for l in starts)
assert all(c == 1 for c in numbers.values()), numbers            # no trial number run twice
params = collections.Counter((l[2], l[3]) for l in starts)
assert all(c == 1 for c in params.values()), params              # no parameter set run twice
show = open(sys.argv[2]).read()
m = re.search(r"^(\d+) trials: (\d+) complete, (\d+) pruned, (\d+) failed, 0 running", show, re.M)
assert m, show
total, complete, pruned, failed = map(int, m.groups())
assert complete + pruned == 10, show                              # exactly the requested trials
assert len(starts) == 10, len(starts)                             # surplus trials (if any) never ran
rows = [r for r in show.splitlines() if re.match(r"^\d+ +(complete|pruned|failed|running) ", r)]
assert {r.split()[0] for r in rows} == {str(i) for i in range(total)}, rows  # unique, gap-free numbers
PY
    grep -q . w1.txt && grep -q . w2.txt || fail "both workers should have printed"
    echo "two PostgreSQL workers: ok" >&2
  fi
else
  fail "tests/tune/with_postgres.sh missing from the source tree"
fi
echo "tune CLI: all checks passed"
