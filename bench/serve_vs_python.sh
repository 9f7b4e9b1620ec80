#!/usr/bin/env bash
# kiln serve vs the Python service a user would otherwise write (Flask + scikit-learn TF-IDF +
# LogisticRegression under gunicorn, 2 x cores + 1 sync workers as gunicorn's docs advise), both
# trained on the same Brown training split, measured side by side with wrk on loopback:
# requests/s and P50/P99 latency at concurrency 1, 16 and 64, one text and 32 texts per request.
# Kiln runs twice: with dynamic batching (default) and with --max-batch 1 (batching off).
#
# Usage: bench/serve_vs_python.sh          env: KILN, THREADS, PY, DURATION (seconds per cell, default 10)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
DURATION=${DURATION:-10}
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
if [[ ! -f "$OUT/kiln/model/kiln.json" ]]; then
  echo "training Kiln's recommended model on Brown ..." >&2
  "$KILN" -q --threads "$THREADS" train --train "$OUT/split/train.csv" --val "$OUT/split/val.csv" \
    --out "$OUT/kiln" >"$OUT/kiln-train.log" 2>&1 || { tail "$OUT/kiln-train.log" >&2; die "kiln train failed"; }
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
measure() {  # measure SYSTEM URL
  local system=$1 url=$2 k c threads
  for k in 1 32; do
    for c in 1 16 64; do
      threads=$((c < 2 ? 1 : 2))
      wrk -t"$threads" -c"$c" -d"${DURATION}s" --latency -s "$OUT/wrk-$k.lua" "$url/v1/predict" >"$OUT/wrk-$system-$k-$c.txt" 2>&1 || true
      "$PY" - "$OUT/wrk-$system-$k-$c.txt" "$system" "$k" "$c" >>"$results" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m: return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
print(json.dumps({"system": sys.argv[2], "texts": int(sys.argv[3]), "concurrency": int(sys.argv[4]),
                  "rps": float(rps.group(1)) if rps else 0.0, "p50_ms": ms("50%"), "p99_ms": ms("99%"),
                  "non2xx": int(non2xx.group(1)) if non2xx else 0,
                  "socket_errors": sum(map(int, errors.groups())) if errors else 0}))
PY
    done
  done
}

# Python service: gunicorn sync workers, 2 x cores + 1.
cores=$(nproc)
pport=$(free_port)
(cd "$LIB" && exec gunicorn -w $((2 * cores + 1)) -b "127.0.0.1:$pport" --log-level warning \
  "flask_service:create_app('$OUT/sklearn.pkl')") >"$OUT/gunicorn.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$pport/healthz"
echo "measuring the Flask + scikit-learn service (gunicorn -w $((2 * cores + 1))) ..." >&2
measure python "http://127.0.0.1:$pport"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

for variant in batched unbatched; do
  flags=()
  [[ $variant == unbatched ]] && flags=(--max-batch 1)
  rm -f "$OUT/port"
  "$KILN" -q --threads "$THREADS" serve "$OUT/kiln/model" --port 0 --port-file "$OUT/port" "${flags[@]}" \
    >"$OUT/kiln-serve-$variant.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do [[ -s "$OUT/port" ]] && break; sleep 0.1; done
  wait_http "http://127.0.0.1:$(cat "$OUT/port")/readyz"
  echo "measuring kiln serve ($variant) ..." >&2
  measure "kiln-$variant" "http://127.0.0.1:$(cat "$OUT/port")"
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done

"$PY" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["system"], r["texts"], r["concurrency"]): r for r in rows}
f = lambda v: "-" if v is None else f"{v:.2f}"
print(f"\n{'texts/req':>9} {'conc':>4} | {'system':<15} {'req/s':>9} {'P50 ms':>8} {'P99 ms':>8} {'errors':>6} | {'x Python':>8}")
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
