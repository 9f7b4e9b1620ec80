#!/usr/bin/env bash
# kiln serve vs the Python service a user would otherwise write (Flask + scikit-learn TF-IDF +
# LogisticRegression under gunicorn), both serving the same kind of model -- TF-IDF + a linear
# classifier: Kiln is trained with `kiln train --model linear` (not the plain `kiln train`, whose
# model selection may pick another family) -- on the same Brown training split, measured side by
# side with wrk on loopback: successful (2xx) requests/s and P50/P99 latency at concurrency 1, 16
# and 64, one text and 32 texts per request. Kiln runs twice: with dynamic batching (default) and
# with --max-batch 1 (batching off).
#
# Setup, the same care on both sides:
#   - gunicorn: 2 x cores + 1 workers (gunicorn's docs), threaded workers that keep connections
#     alive (-k gthread --threads PY_THREADS --keep-alive 5; the default sync worker closes every
#     connection, so each request would pay a TCP handshake), BLAS/OpenMP capped at 1 thread per
#     worker (OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1; many workers x many BLAS threads oversubscribe);
#     kiln serve: --threads THREADS.
#   - All three servers run at once and the cells are interleaved (python, kiln-batched,
#     kiln-unbatched for each texts x concurrency cell), so every system sees the same load.
#   - Warm-up: WARMUP seconds of load at concurrency 16 per server and body size, not measured.
#   - Only 2xx responses count: req/s = (requests - wrk's "Non-2xx or 3xx responses") / duration;
#     the errors column adds those and socket errors. wrk's latency percentiles cover every response.
#
# Usage: bench/serve_vs_python.sh
# Environment: KILN, THREADS (kiln serve --threads, default 2), PY, DURATION (seconds per cell,
#   default 5), WARMUP (seconds, default 3), PY_THREADS (gunicorn --threads per worker, default 4),
#   PY_WORKERS (default 2 x cores + 1).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-3}
PY_THREADS=${PY_THREADS:-4}
PY_WORKERS=${PY_WORKERS:-$((2 * $(nproc) + 1))}
OUT="$BENCH_ROOT/bench/out/serve_vs_python"
require_kiln
require_python
command -v wrk >/dev/null || die "wrk not found (apt-get install -y --no-install-recommends wrk)"
command -v gunicorn >/dev/null || die "gunicorn not found (apt-get install -y --no-install-recommends gunicorn python3-flask)"
"$PY" -c 'import flask' 2>/dev/null || die "python3-flask not found (apt-get install -y --no-install-recommends python3-flask)"
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 300); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "no answer from $1"
}

csv=$(fetch_dataset brown)
[[ -f "$OUT/split/train.csv" ]] || split_dataset "$csv" "$OUT/split"
if [[ ! -f "$OUT/kiln-linear/model/kiln.json" ]]; then
  echo "training Kiln's linear model (TF-IDF + linear, --model linear) on Brown ..." >&2
  "$KILN" -q --threads "$THREADS" train --model linear --train "$OUT/split/train.csv" --val "$OUT/split/val.csv" \
    --out "$OUT/kiln-linear" >"$OUT/kiln-train.log" 2>&1 || { tail "$OUT/kiln-train.log" >&2; die "kiln train failed"; }
fi
if [[ ! -f "$OUT/sklearn.pkl" ]]; then
  echo "training scikit-learn TF-IDF + LogisticRegression on Brown ..." >&2
  "$PY" "$LIB/flask_service.py" train "$OUT/split/train.csv" "$OUT/sklearn.pkl"
fi

# wrk request bodies: test-split sentences, 1 or 32 per request, rotating.
"$PY" - "$OUT/split/test.csv" "$OUT" <<'PY'
import csv, json, sys
csv.field_size_limit(1 << 30)
texts = [r["text"] for r in csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8"))][:2048]
for k in (1, 32):
    bodies = [json.dumps({"texts": texts[(i * k) % len(texts):(i * k) % len(texts) + k] or texts[:k]}) for i in range(64)]
    with open(f"{sys.argv[2]}/wrk-{k}.lua", "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nlocal bodies = {\n')
        for b in bodies:
            f.write("  " + json.dumps(b) + ",\n")
        f.write("}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n"
                "  return wrk.format(nil, nil, nil, bodies[i])\nend\n")
PY

results="$OUT/results.jsonl"
: >"$results"
measure() {  # measure SYSTEM URL TEXTS CONCURRENCY
  local system=$1 url=$2 k=$3 c=$4 threads
  threads=$((c < 2 ? 1 : 2))
  wrk -t"$threads" -c"$c" -d"${DURATION}s" --latency -s "$OUT/wrk-$k.lua" "$url/v1/predict" >"$OUT/wrk-$system-$k-$c.txt" 2>&1 || true
  "$PY" - "$OUT/wrk-$system-$k-$c.txt" "$system" "$k" "$c" "$(cut -d' ' -f1 /proc/loadavg)" >>"$results" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m: return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
n = int(done.group(1)) if done else 0
secs = float(done.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)] if done else 0.0
bad = int(non2xx.group(1)) if non2xx else 0
print(json.dumps({"system": sys.argv[2], "texts": int(sys.argv[3]), "concurrency": int(sys.argv[4]),
                  "requests": n, "seconds": secs, "rps": (n - bad) / secs if secs else 0.0,
                  "p50_ms": ms("50%"), "p99_ms": ms("99%"), "non2xx": bad,
                  "socket_errors": sum(map(int, errors.groups())) if errors else 0,
                  "load1": float(sys.argv[5])}))
PY
}
warm() {  # warm URL: WARMUP seconds of load per body size, not measured
  local k
  for k in 1 32; do
    wrk -t2 -c16 -d"${WARMUP}s" -s "$OUT/wrk-$k.lua" "$1/v1/predict" >/dev/null 2>&1 || true
  done
}

# Python service: gunicorn threaded (keep-alive) workers, BLAS capped at one thread per worker.
pport=$(free_port)
(cd "$LIB" && OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 exec gunicorn -w "$PY_WORKERS" \
  -k gthread --threads "$PY_THREADS" --keep-alive 5 -b "127.0.0.1:$pport" --log-level warning \
  "flask_service:create_app('$OUT/sklearn.pkl')") >"$OUT/gunicorn.log" 2>&1 &
pids+=($!)
declare -A url
url[python]="http://127.0.0.1:$pport"
wait_http "${url[python]}/healthz"

for variant in batched unbatched; do
  flags=()
  [[ $variant == unbatched ]] && flags=(--max-batch 1)
  rm -f "$OUT/port-$variant"
  "$KILN" -q --threads "$THREADS" serve "$OUT/kiln-linear/model" --port 0 --port-file "$OUT/port-$variant" "${flags[@]}" \
    >"$OUT/kiln-serve-$variant.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do [[ -s "$OUT/port-$variant" ]] && break; sleep 0.1; done
  url[kiln-$variant]="http://127.0.0.1:$(cat "$OUT/port-$variant")"
  wait_http "${url[kiln-$variant]}/readyz"
done

systems=(python kiln-batched kiln-unbatched)
echo "gunicorn -w $PY_WORKERS -k gthread --threads $PY_THREADS (BLAS 1 thread/worker); kiln serve --threads $THREADS;" \
  "DURATION ${DURATION}s per cell, WARMUP ${WARMUP}s; nproc $(nproc); start: $(uptime)" >&2
for s in "${systems[@]}"; do echo "warming up $s ..." >&2; warm "${url[$s]}"; done
for k in 1 32; do
  for c in 1 16 64; do
    for s in "${systems[@]}"; do
      echo "measuring $s: $k texts/request, concurrency $c ..." >&2
      measure "$s" "${url[$s]}" "$k" "$c"
    done
  done
done
echo "end: $(uptime)" >&2

"$PY" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["system"], r["texts"], r["concurrency"]): r for r in rows}
f = lambda v: "-" if v is None else f"{v:.2f}"
loads = [r["load1"] for r in rows]
print(f"\n2xx requests/s (non-2xx and socket errors counted apart); 1-minute load {min(loads):.1f} to {max(loads):.1f}")
print(f"{'texts/req':>9} {'conc':>4} | {'system':<15} {'2xx req/s':>9} {'P50 ms':>8} {'P99 ms':>8} {'errors':>6} | {'x Python':>8}")
for k in (1, 32):
    for c in (1, 16, 64):
        py = by.get(("python", k, c))
        for s in ("python", "kiln-batched", "kiln-unbatched"):
            r = by.get((s, k, c))
            if not r: continue
            ratio = r["rps"] / py["rps"] if py and py["rps"] else float("nan")
            print(f"{k:>9} {c:>4} | {s:<15} {r['rps']:>9.0f} {f(r['p50_ms']):>8} {f(r['p99_ms']):>8} "
                  f"{r['non2xx'] + r['socket_errors']:>6} | {ratio:>8.1f}")
        print()
one16 = by.get(("kiln-batched", 1, 16)); py16 = by.get(("python", 1, 16))
if one16 and py16:
    print(f"targets (1 text, concurrency 16): throughput {one16['rps'] / py16['rps']:.1f}x Python (target >= 10x), "
          f"P99 {f(one16['p99_ms'])} ms (target <= 5 ms)")
PY
