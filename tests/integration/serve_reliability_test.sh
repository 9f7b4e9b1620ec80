#!/usr/bin/env bash
# kiln serve under load: 100,000 requests with 1% malformed (bad JSON, wrong types, empty, oversize)
# -> no crash, every valid request 200, every malformed one a 4xx JSON error, resident memory growth
# under 5% after warm-up, while 10,000 keep-alive connections are opened and closed; hot reloads
# during load drop nothing; SIGTERM during load answers every
# request in flight and exits 0.
set -euo pipefail
KILN="$1"
LOAD="$(dirname "$KILN")/kiln_serve_load"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "${KILN_SOURCE_DIR}/tests/serve/serve_lib.sh"
[[ -x "$LOAD" ]] || fail "$LOAD not built"
REQUESTS="${KILN_RELIABILITY_REQUESTS:-100000}"

make_artifact "$tmp/a" 3
make_artifact "$tmp/b" 4
A="$tmp/a/run/model"; B="$tmp/b/run/model"
start_server "$A" --max-body-bytes 65536 --model-root "$tmp"
port=$(cat "$tmp/port")
load() { "$LOAD" --port "$port" --texts-file "$tmp/a/texts.txt" --oversize-bytes 70000 "$@"; }

load --requests 5000 --concurrency 8 --malformed-rate 0.01 >"$tmp/warm.json" || { cat "$tmp/warm.json"; fail "warm-up"; }
rss0=$(rss_kib "$SERVER_PID")
# Meanwhile 10,000 keep-alive connections are opened and closed: every other one sends a request
# first, the rest close without a word (as load balancers' health checks and port scanners do).
/usr/bin/python3 - "$port" >"$tmp/churn.out" 2>&1 <<'PY' &
import socket, sys
port, ok = int(sys.argv[1]), 0
for i in range(10000):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    if i % 2 == 0:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk: break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data
        ok += 1
    s.close()
print(f"churn: 10000 connections opened and closed, {ok} answered")
PY
churn=$!
load --requests "$REQUESTS" --concurrency 8 --malformed-rate 0.01 >"$tmp/main.json" || { cat "$tmp/main.json"; fail "main load"; }
wait "$churn" || { cat "$tmp/churn.out"; fail "connection churn during the main load"; }
cat "$tmp/churn.out"
kill -0 "$SERVER_PID" || fail "server died under load"
rss1=$(rss_kib "$SERVER_PID")
/usr/bin/python3 - "$tmp/main.json" "$rss0" "$rss1" "$REQUESTS" <<'PY' || fail "main load results"
import json, sys
r = json.load(open(sys.argv[1])); rss0, rss1, n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = r["counts"]
valid = c.get("valid:200", 0)
malformed = sum(v for k, v in c.items() if not k.startswith("valid"))
assert r["sent"] == n and r["unexpected"] == 0 and r["lost"] == 0, r
assert valid == n - malformed and malformed == n // 100, c
for kind, code in (("bad_json", 400), ("wrong_type", 400), ("empty", 400), ("oversize", 413)):
    assert c.get(f"{kind}:{code}", 0) > 0, (kind, c)
growth = (rss1 - rss0) / rss0
print(f"{n} requests in {r['seconds']:.1f} s ({r['requests_per_second']:.0f}/s), malformed {malformed}, "
      f"RSS {rss0} -> {rss1} KiB ({growth * 100:+.2f}%)")
assert growth < 0.05, f"resident memory grew {growth * 100:.1f}% (limit 5%)"
PY
metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
grep -q 'kiln_requests_total{route="/v1/predict",code="5' <<<"$metrics" && fail "5xx answers under load"

# Hot reloads while 20,000 requests run: nothing dropped, nothing refused.
load --requests 20000 --concurrency 8 >"$tmp/reload.json" &
lp=$!
for m in "$B" "$A" "$B" "$A" "$B"; do
  sleep 0.3
  out=$(curl -s -X POST "http://127.0.0.1:$port/v1/admin/reload" -d "{\"artifact\": \"$m\"}")
  [[ "$out" == *reloaded* ]] || fail "reload during load: $out"
done
wait "$lp" || { cat "$tmp/reload.json"; fail "requests failed during reloads"; }
echo "reloads under load: $(cat "$tmp/reload.json")"

# SIGTERM during load: every request in flight gets its answer. Clients stop sending once answers
# carry `Connection: close` (the drain), as a load balancer stops on readyz 503.
load --requests 1 --concurrency 8 --until-refused >"$tmp/term.json" &
lp=$!
sleep 1
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"; rc=$?
SERVER_PID=""
[[ $rc -eq 0 ]] || fail "exit code after SIGTERM under load: $rc"
wait "$lp" || { cat "$tmp/term.json"; fail "a request accepted before SIGTERM went unanswered"; }
echo "SIGTERM under load: $(cat "$tmp/term.json")"
echo "serve_reliability_test: ok"
