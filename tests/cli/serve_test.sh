#!/usr/bin/env bash
# kiln serve: the HTTP API, every refusal with its JSON message, /metrics accepted by promtool,
# bearer-token admin routes, hot reload (HTTP and SIGHUP), SIGTERM drain, startup errors.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "${KILN_SOURCE_DIR}/tests/serve/serve_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/require_tools.sh"  # missing_tool

make_artifact "$tmp/a" 3
make_artifact "$tmp/b" 4
A="$tmp/a/run/model"
B="$tmp/b/run/model"

# post PATH BODY -> prints "STATUS BODY"
post() { curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$BASE$1" -H 'Content-Type: application/json' --data-binary "$2"; printf ' '; cat "$tmp/body"; }
expect() {  # expect WHAT STATUS CODE MESSAGE-FRAGMENT OUTPUT
  local what="$1" status="$2" code="$3" frag="$4" out="$5"
  [[ "$out" == "$status "* ]] || fail "$what: expected HTTP $status, got: $out"
  [[ "$out" == *"\"code\":\"$code\""* ]] || fail "$what: expected error code $code, got: $out"
  [[ "$out" == *"$frag"* ]] || fail "$what: expected message with '$frag', got: $out"
}

start_server "$A" --max-texts 4 --max-text-bytes 200 --max-body-bytes 4096 --model-root "$tmp"
out=$(post /v1/predict '{"texts": ["goal match team score league", "recipe oven salt butter flour"], "top_k": 2}')
[[ "$out" == "200 "* ]] || fail "valid predict: $out"
/usr/bin/python3 - "$tmp/body" <<'PY' || fail "predict response shape"
import json, sys
r = json.load(open(sys.argv[1]))
p = r["predictions"]
assert [x["label"] for x in p] == ["sports", "cooking"], p
for x in p:
    assert len(x["top_k"]) == 2 and x["top_k"][0]["label"] == x["label"], x
    assert 0 < x["top_k"][1]["probability"] <= x["probability"] <= 1, x
assert r["model_version"]
PY

expect "invalid JSON" 400 invalid_json "at byte 12" "$(post /v1/predict '{"texts": [')"
expect "wrong type" 400 wrong_type "list of strings" "$(post /v1/predict '{"texts": 7}')"
expect "empty body" 400 empty_body "" "$(post /v1/predict '')"
expect "unknown field" 400 unknown_field "text" "$(post /v1/predict '{"texts": ["a"], "txt": 1}')"
expect "missing texts" 400 missing_field "texts" "$(post /v1/predict '{"top_k": 1}')"
expect "empty texts" 400 empty_texts "" "$(post /v1/predict '{"texts": []}')"
expect "too many texts" 413 too_many_texts "4" "$(post /v1/predict '{"texts": ["a","b","c","d","e"]}')"
long=$(printf 'x%.0s' $(seq 1 300))
expect "text too long" 413 text_too_long "200" "$(post /v1/predict "{\"texts\": [\"$long\"]}")"
big=$(printf 'y%.0s' $(seq 1 5000))
expect "body too large" 413 body_too_large "4096" "$(post /v1/predict "{\"texts\": [\"$big\"]}")"
expect "nesting" 400 nesting_too_deep "" "$(post /v1/predict '{"texts": [[[[[[[[[[[[[[[[[[["a"]]]]]]]]]]]]]]]]]]]}')"
expect "bad top_k" 400 invalid_top_k "top_k" "$(post /v1/predict '{"texts": ["a"], "top_k": 0}')"
out=$(curl -s -o "$tmp/body" -w '%{http_code}' "$BASE/v1/predict"); out="$out $(cat "$tmp/body")"
expect "GET predict" 405 method_not_allowed "use POST /v1/predict" "$out"
out=$(curl -s -o "$tmp/body" -w '%{http_code}' "$BASE/v2/nothing"); out="$out $(cat "$tmp/body")"
expect "unknown route" 404 not_found "routes: POST /v1/predict" "$out"
# A valid request right after all the bad ones on the same server still works.
[[ "$(post /v1/predict '{"texts": ["stock market bank rate"]}')" == "200 "*finance* ]] || fail "valid after invalid"

curl -sf "$BASE/v1/model" >"$tmp/model.json" || fail "GET /v1/model"
/usr/bin/python3 -c "import json,sys; m=json.load(open(sys.argv[1])); assert m['labels']==['cooking','finance','sports'], m; assert m['model']['family']=='linear'; assert 'metrics' in m and m['version']; assert m['variant']=='fp32', m.get('variant')" "$tmp/model.json" \
  || fail "/v1/model body: $(cat "$tmp/model.json")"
[[ "$(curl -sf "$BASE/healthz")" == *ok* ]] || fail "healthz"
curl -sf "$BASE/metrics" >"$tmp/metrics.txt" || fail "GET /metrics"
for m in 'kiln_requests_total{route="/v1/predict",code="200"}' 'kiln_requests_total{route="/v1/predict",code="413"}' \
         'kiln_request_errors_total{reason="invalid_json"} 1' kiln_request_duration_seconds_bucket kiln_inference_batch_size_count \
         kiln_prediction_confidence_bucket 'kiln_predictions_total{model="model",label="sports"}' kiln_texts_total kiln_queue_depth \
         'kiln_drift_psi{model="model",signal="text_length"}' kiln_drift_oov_rate 'kiln_model_info{' process_resident_memory_bytes \
         process_cpu_seconds_total process_open_fds kiln_open_connections kiln_connections_accepted_total \
         kiln_connections_rejected_total 'kiln_connection_timeouts_total{phase="header"}'; do
  grep -qF "$m" "$tmp/metrics.txt" || fail "/metrics lacks $m"
done
if command -v promtool >/dev/null; then
  promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.out" 2>&1 || { cat "$tmp/promtool.out"; fail "promtool rejects /metrics"; }
else
  missing_tool promtool prometheus "/metrics against promtool check metrics"
fi

# Hot reload without a token configured: POST swaps in B; a bad artifact keeps B serving.
v_a=$(curl -sf "$BASE/readyz" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"])')
out=$(post /v1/admin/reload "{\"artifact\": \"$B\"}")
[[ "$out" == "200 "*reloaded* ]] || fail "reload to B: $out"
v_b=$(curl -sf "$BASE/readyz" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"])')
[[ "$v_a" != "$v_b" ]] || fail "version did not change after reload ($v_a)"
expect "reload of a missing artifact" 422 reload_failed "previous model keeps serving" "$(post /v1/admin/reload "{\"artifact\": \"$tmp/nowhere\"}")"
expect "reload with a bad body" 400 invalid_request "artifact" "$(post /v1/admin/reload '{"artifact": 3}')"
expect "reload outside --model-root" 403 forbidden "--model-root" "$(post /v1/admin/reload '{"artifact": "/etc/ssl"}')"
[[ "$(post /v1/predict '{"texts": ["goal match team"]}')" == "200 "*"$v_b"* ]] || fail "B must still serve after a failed reload"
kill -HUP "$SERVER_PID"
reloaded=""
for i in $(seq 1 100); do
  metrics=$(curl -sf "$BASE/metrics")
  if grep -qF 'kiln_model_reloads_total{model="model",result="success"} 2' <<<"$metrics"; then reloaded=1; break; fi
  sleep 0.1
done
[[ -n "$reloaded" ]] || fail "SIGHUP did not reload"

# 300 slow clients (partial headers, partial bodies, idle) hold connections: valid requests on other
# connections are still answered, each one (no latency asserted).
/usr/bin/python3 - "$(cat "$tmp/port")" <<'PY' || fail "valid requests while 300 slow clients hold connections"
import http.client, socket, sys
port = int(sys.argv[1])
held = []
for i in range(300):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 3 == 0: s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Le")
    if i % 3 == 1: s.sendall(b"POST /v1/predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"texts\"")
    held.append(s)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for i in range(50):
    c.request("POST", "/v1/predict", body='{"texts": ["goal match team"]}', headers={"Content-Type": "application/json"})
    r = c.getresponse(); body = r.read()
    assert r.status == 200 and b"sports" in body, (r.status, body)
c.request("GET", "/metrics"); m = c.getresponse().read().decode()
open_now = [l for l in m.splitlines() if l.startswith("kiln_open_connections ")]
assert open_now and float(open_now[0].split()[1]) >= 300, open_now
PY

# Admin routes off loopback need a token: refused at start, naming the fix.
set +e
"$KILN" serve "$A" --host 0.0.0.0 --port 0 >/dev/null 2>"$tmp/err"; rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q -- "--auth-token-file" "$tmp/err" || fail "0.0.0.0 without a token: rc=$rc $(cat "$tmp/err")"

# SIGTERM with a grace period: readyz turns 503 first while predictions are still answered; then exit 0.
stop_server
start_server "$A" --drain-grace-s 2
kill -TERM "$SERVER_PID"
sleep 0.5
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")
[[ "$code" == 503 ]] || fail "readyz during drain: $code"
[[ "$(post /v1/predict '{"texts": ["goal match"]}')" == "200 "* ]] || fail "predict during drain grace"
wait "$SERVER_PID"; rc=$?
SERVER_PID=""
[[ $rc -eq 0 ]] || fail "kiln serve exit code after SIGTERM: $rc"
grep -q "draining" "$tmp/serve.err" || fail "no drain message"

# Bearer token on admin routes.
head -c 24 /dev/urandom | base64 >"$tmp/token"; chmod 600 "$tmp/token"
start_server "$A" --auth-token-file "$tmp/token"
expect "reload without token" 401 unauthorized "Authorization: Bearer" "$(post /v1/admin/reload '')"
out=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$BASE/v1/admin/reload" -d "" -H "Authorization: Bearer wrong-token-000000"); out="$out $(cat "$tmp/body")"
expect "reload with a wrong token" 401 unauthorized "does not match" "$out"
out=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$BASE/v1/admin/reload" -d "" -H "Authorization: Bearer $(cat "$tmp/token")"); out="$out $(cat "$tmp/body")"
[[ "$out" == "200 "*reloaded* ]] || fail "reload with the token: $out"
[[ "$(post /v1/predict '{"texts": ["goal"]}')" == "200 "* ]] || fail "predict needs no token"
port_in_use=$(cat "$tmp/port")

# Startup errors: exit codes and messages.
set +e
"$KILN" serve "$tmp/nowhere" --port 0 >/dev/null 2>"$tmp/err"; rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q "nowhere" "$tmp/err" || fail "missing artifact: rc=$rc $(cat "$tmp/err")"
set +e
"$KILN" serve "$A" --port "$port_in_use" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q "cannot listen on 127.0.0.1:$port_in_use" "$tmp/err" || fail "port in use: rc=$rc $(cat "$tmp/err")"
echo short >"$tmp/short"; chmod 600 "$tmp/short"
set +e
"$KILN" serve "$A" --port 0 --auth-token-file "$tmp/short" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q "at least 16" "$tmp/err" || fail "short token: rc=$rc $(cat "$tmp/err")"
set +e
"$KILN" serve "$A" --max-batch 0 >/dev/null 2>"$tmp/err"; rc=$?
set -e
[[ $rc -eq 2 ]] || fail "--max-batch 0 must be a usage error: rc=$rc $(cat "$tmp/err")"
stop_server
echo "serve_test: ok"
