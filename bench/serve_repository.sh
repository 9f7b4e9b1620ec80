#!/usr/bin/env bash
# kiln serve over a model repository with two models, both under load at once, side by side with the
# same model served alone: one-text predict requests, keep-alive (wrk). The repository server gets
# two wrk clients at once, each at concurrency C/2 on one model's route (/v1/models/{name}/predict);
# the single server one wrk at concurrency C on /v1/predict. Prints 2xx requests/s, P50/P99 and
# errors per model, and the repository's total as a share of the single server's throughput (each
# model has its own batcher and inference thread, so two models should cost no throughput).
#
# Usage: bench/serve_repository.sh
# Environment: KILN (default ./build/kiln), THREADS (kiln --threads, default 2), DURATION (seconds per
#   cell, default 5), C (total concurrency, default 16).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
DURATION=${DURATION:-5}
C=${C:-16}
OUT="$BENCH_ROOT/bench/out/serve_repository"
require_kiln
[[ -x $PY ]] || die "$PY not found (apt-get install -y --no-install-recommends python3)"
command -v wrk >/dev/null || die "wrk not found (apt-get install -y --no-install-recommends wrk)"
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Two small three-topic models (offline: no dataset download), different seeds.
for seed in 3 4; do
  if [[ ! -f "$OUT/run-$seed/model/kiln.json" ]]; then
    "$PY" - "$OUT" "$seed" <<'PY'
import csv, random, sys
random.seed(int(sys.argv[2]))
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
for name, n in (("train", 300), ("val", 60)):
    with open(f"{sys.argv[1]}/{name}-{sys.argv[2]}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = list(words)[i % 3]
            toks = random.sample(words[label], 4) + random.sample(common, 4)
            random.shuffle(toks); w.writerow([" ".join(toks), label])
PY
    "$KILN" -q train --model linear --train "$OUT/train-$seed.csv" --val "$OUT/val-$seed.csv" --epochs 5 --seed "$seed" \
      --out "$OUT/run-$seed" >"$OUT/train.log" 2>&1 || { tail "$OUT/train.log" >&2; die "kiln train failed"; }
  fi
done
rm -rf "$OUT/repo"
mkdir -p "$OUT/repo"
cp -r "$OUT/run-3/model" "$OUT/repo/alpha"
cp -r "$OUT/run-4/model" "$OUT/repo/beta"
cat >"$OUT/predict.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"texts": ["the coach said the team will win the league this season"]}'
LUA

declare -A url
start() {  # start NAME DIR FLAGS...
  local name=$1 dir=$2; shift 2
  rm -f "$OUT/port-$name"
  "$KILN" -q --threads "$THREADS" serve "$dir" --port 0 --port-file "$OUT/port-$name" "$@" >"$OUT/serve-$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do [[ -s "$OUT/port-$name" ]] && break; sleep 0.1; done
  [[ -s "$OUT/port-$name" ]] || die "kiln serve ($name) did not start: $(tail -3 "$OUT/serve-$name.log")"
  url[$name]="http://127.0.0.1:$(cat "$OUT/port-$name")"
  for _ in $(seq 1 100); do curl -sf "${url[$name]}/readyz" >/dev/null && break; sleep 0.1; done
}
start single "$OUT/repo/alpha"
start repository "$OUT/repo" --default-model alpha
half=$((C / 2))
wrk -t2 -c"$C" -d2s -s "$OUT/predict.lua" "${url[single]}/v1/predict" >/dev/null 2>&1 || true  # warm-up
for m in alpha beta; do wrk -t1 -c"$half" -d2s -s "$OUT/predict.lua" "${url[repository]}/v1/models/$m/predict" >/dev/null 2>&1 || true; done

results="$OUT/results.jsonl"
: >"$results"
parse() {  # parse WRK_OUTPUT CELL
  "$PY" - "$@" "$(cut -d' ' -f1 /proc/loadavg)" >>"$results" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else None
done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
n = int(done.group(1)) if done else 0
secs = float(done.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)] if done else 0.0
bad = int(non2xx.group(1)) if non2xx else 0
print(json.dumps({"cell": sys.argv[2], "requests": n, "rps": (n - bad) / secs if secs else 0.0,
                  "p50_ms": ms("50%") if n else None, "p99_ms": ms("99%") if n else None,
                  "errors": bad + (sum(map(int, errors.groups())) if errors else 0), "load1": float(sys.argv[3])}))
PY
}

echo "one text per request, total concurrency $C; kiln serve --threads $THREADS; nproc $(nproc); start: $(uptime)" >&2
wrk -t2 -c"$C" -d"${DURATION}s" --latency -s "$OUT/predict.lua" "${url[single]}/v1/predict" >"$OUT/wrk-single.txt" 2>&1 || true
parse "$OUT/wrk-single.txt" "single /v1/predict"
wrk_pids=()
for m in alpha beta; do
  wrk -t1 -c"$half" -d"${DURATION}s" --latency -s "$OUT/predict.lua" "${url[repository]}/v1/models/$m/predict" \
    >"$OUT/wrk-$m.txt" 2>&1 &
  wrk_pids+=($!)
done
wait "${wrk_pids[@]}" || true
for m in alpha beta; do parse "$OUT/wrk-$m.txt" "repository /v1/models/$m/predict"; done
curl -sf "${url[repository]}/metrics" | grep -E '^kiln_texts_total' >"$OUT/texts.txt" || true
echo "end: $(uptime)" >&2

"$PY" - "$results" "$OUT/texts.txt" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
f = lambda v: "-" if v is None else f"{v:.2f}"
print(f"\n{'cell':<34} {'2xx req/s':>9} {'P50 ms':>8} {'P99 ms':>8} {'errors':>6} {'load1':>6}")
for r in rows:
    print(f"{r['cell']:<34} {r['rps']:>9.0f} {f(r['p50_ms']):>8} {f(r['p99_ms']):>8} {r['errors']:>6} {r['load1']:>6.1f}")
single = rows[0]["rps"]
repo = sum(r["rps"] for r in rows[1:])
print(f"\nrepository, two models under load: {repo:.0f} req/s in total = {repo / single:.2f}x the single model's {single:.0f}")
print("per-model counters (kiln_texts_total):", " ".join(l.strip() for l in open(sys.argv[2])))
PY
