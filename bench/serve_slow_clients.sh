#!/usr/bin/env bash
# kiln serve under slow clients (slowloris): valid one-text predict requests at concurrency 16
# (wrk, keep-alive) while 0, 130 and 1,000 other connections are held open sending a partial request
# header, one byte per second, reconnecting whenever the server closes them (as an attacker would).
# Prints 2xx requests/s, P50/P99 latency and errors per cell, and the server's own ceiling
# (GET /healthz, same client) with no slow connections.
#
# Before/after in one run: KILN_BEFORE=path/to/older/kiln adds that server (e.g. a build of the
# thread-per-connection server at main) to every cell, measured side by side with KILN.
#
# Usage: bench/serve_slow_clients.sh
# Environment: KILN (default ./build/kiln), KILN_BEFORE (optional), THREADS (kiln --threads, default 2),
#   DURATION (seconds per cell, default 5), SLOW (slow-connection counts, default "0 130 1000").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
DURATION=${DURATION:-5}
SLOW=${SLOW:-0 130 1000}
OUT="$BENCH_ROOT/bench/out/serve_slow_clients"
require_kiln
[[ -x $PY ]] || die "$PY not found (apt-get install -y --no-install-recommends python3)"
command -v wrk >/dev/null || die "wrk not found (apt-get install -y --no-install-recommends wrk)"
if [[ -n ${KILN_BEFORE:-} ]]; then
  [[ -x $KILN_BEFORE ]] || die "KILN_BEFORE=$KILN_BEFORE is not an executable"
  KILN_BEFORE="$(cd "$(dirname "$KILN_BEFORE")" && pwd)/$(basename "$KILN_BEFORE")"
fi
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
[[ $(ulimit -n) -ge 4096 ]] || ulimit -n 4096 2>/dev/null || die "ulimit -n is $(ulimit -n); 1,000 slow clients need >= 4096"

# A small three-topic model (offline: no dataset download).
if [[ ! -f "$OUT/run/model/kiln.json" ]]; then
  "$PY" - "$OUT" <<'PY'
import csv, random, sys
random.seed(3)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
for name, n in (("train", 300), ("val", 60)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in range(n * 3):
            label = list(words)[i % 3]
            toks = random.sample(words[label], 4) + random.sample(common, 4)
            random.shuffle(toks); w.writerow([" ".join(toks), label])
PY
  "$KILN" -q train --model linear --train "$OUT/train.csv" --val "$OUT/val.csv" --epochs 5 --out "$OUT/run" \
    >"$OUT/train.log" 2>&1 || { tail "$OUT/train.log" >&2; die "kiln train failed"; }
fi
cat >"$OUT/predict.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"texts": ["the coach said the team will win the league this season"]}'
LUA

# The slow clients: N connections with a partial header, one more header byte per second each;
# a connection the server closes is opened again. Writes READY once N are connected.
cat >"$OUT/slow_clients.py" <<'PY'
import os, socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def open_one():
    s = socket.socket(); s.setblocking(True); s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    s.setblocking(False)
    return s
socks = []
while len(socks) < n:
    try: socks.append(open_one())
    except OSError: time.sleep(0.01)
open(ready, "w").write(str(len(socks)))
reopened = 0
while True:
    time.sleep(1)
    for i, s in enumerate(socks):
        try:
            s.send(b"a")
        except OSError:
            try: s.close()
            except OSError: pass
            try: socks[i] = open_one(); reopened += 1
            except OSError: pass
PY

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A url
systems=(after)
[[ -n ${KILN_BEFORE:-} ]] && systems=(before after)
for s in "${systems[@]}"; do
  bin=$KILN
  [[ $s == before ]] && bin=$KILN_BEFORE
  rm -f "$OUT/port-$s"
  "$bin" -q --threads "$THREADS" serve "$OUT/run/model" --port 0 --port-file "$OUT/port-$s" >"$OUT/serve-$s.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do [[ -s "$OUT/port-$s" ]] && break; sleep 0.1; done
  [[ -s "$OUT/port-$s" ]] || die "kiln serve ($s) did not start: $(tail -3 "$OUT/serve-$s.log")"
  url[$s]="http://127.0.0.1:$(cat "$OUT/port-$s")"
  for _ in $(seq 1 100); do curl -sf "${url[$s]}/readyz" >/dev/null && break; sleep 0.1; done
  wrk -t2 -c16 -d2s -s "$OUT/predict.lua" "${url[$s]}/v1/predict" >/dev/null 2>&1 || true  # warm-up
done

results="$OUT/results.jsonl"
: >"$results"
parse() {  # parse WRK_OUTPUT SYSTEM ROUTE SLOW
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
# No answer at all in the whole run: wrk reports 0 latencies; record them as missing, not as 0 ms.
print(json.dumps({"system": sys.argv[2], "route": sys.argv[3], "slow": int(sys.argv[4]), "requests": n,
                  "rps": (n - bad) / secs if secs else 0.0, "p50_ms": ms("50%") if n else None,
                  "p99_ms": ms("99%") if n else None,
                  "errors": bad + (sum(map(int, errors.groups())) if errors else 0), "load1": float(sys.argv[5])}))
PY
}

echo "wrk -t2 -c16 -d${DURATION}s, one text per request; kiln serve --threads $THREADS; nproc $(nproc); start: $(uptime)" >&2
for s in "${systems[@]}"; do
  port=${url[$s]##*:}
  echo "measuring $s: GET /healthz ceiling ..." >&2
  wrk -t2 -c16 -d"${DURATION}s" --latency "${url[$s]}/healthz" >"$OUT/wrk-$s-healthz.txt" 2>&1 || true
  parse "$OUT/wrk-$s-healthz.txt" "$s" healthz 0
  for n in $SLOW; do
    holder=""
    if ((n > 0)); then
      rm -f "$OUT/ready"
      "$PY" "$OUT/slow_clients.py" "$port" "$n" "$OUT/ready" &
      holder=$!
      pids+=("$holder")
      for _ in $(seq 1 600); do [[ -s "$OUT/ready" ]] && break; sleep 0.1; done
      [[ -s "$OUT/ready" ]] || die "the slow clients did not connect"
      sleep 1
    fi
    echo "measuring $s: predict with $n slow connections ..." >&2
    wrk -t2 -c16 -d"${DURATION}s" --latency -s "$OUT/predict.lua" "${url[$s]}/v1/predict" >"$OUT/wrk-$s-$n.txt" 2>&1 || true
    parse "$OUT/wrk-$s-$n.txt" "$s" predict "$n"
    if [[ -n $holder ]]; then kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true; fi
    sleep 1
  done
done
echo "end: $(uptime)" >&2

"$PY" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["system"], r["route"], r["slow"]): r for r in rows}
f = lambda v: "none" if v is None else f"{v:.2f}"
systems = [s for s in ("before", "after") if any(r["system"] == s for r in rows)]
print(f"\nvalid requests at concurrency 16 while N slow connections are held open (errors = non-2xx + socket errors;"
      f" 'none': not one request answered during the run)")
print(f"{'system':<7} {'route':<8} {'slow':>5} | {'2xx req/s':>9} {'P50 ms':>8} {'P99 ms':>8} {'errors':>6}")
for s in systems:
    for r in [x for x in rows if x["system"] == s]:
        print(f"{s:<7} {r['route']:<8} {r['slow']:>5} | {r['rps']:>9.0f} {f(r['p50_ms']):>8} {f(r['p99_ms']):>8} {r['errors']:>6}")
for s in systems:
    h, p = by.get((s, "healthz", 0)), by.get((s, "predict", 0))
    if h and p and h["rps"]:
        print(f"{s}: predict reaches {100 * p['rps'] / h['rps']:.0f}% of the /healthz ceiling")
    worst = by.get((s, "predict", max(r["slow"] for r in rows)))
    if worst:
        print(f"{s}: with {worst['slow']} slow connections P99 {f(worst['p99_ms'])} ms (target <= 5 ms), errors {worst['errors']}")
PY
