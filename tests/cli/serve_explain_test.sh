#!/usr/bin/env bash
# POST /v1/explain: the answer's shape (the JSON-lines objects of kiln explain under
# "explanations"), additivity, and the refusals it shares with /v1/predict. Then
# kiln_feature_importance_shift: small for traffic like the training data, larger once the drift
# window holds only texts made of one class's words.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "${KILN_SOURCE_DIR}/tests/serve/serve_lib.sh"

make_artifact "$tmp/a" 3
post() { curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$BASE$1" -H 'Content-Type: application/json' --data-binary "$2"; printf ' '; cat "$tmp/body"; }
expect() {  # expect WHAT STATUS CODE MESSAGE-FRAGMENT OUTPUT
  local what="$1" status="$2" code="$3" frag="$4" out="$5"
  [[ "$out" == "$status "* ]] || fail "$what: expected HTTP $status, got: $out"
  [[ "$out" == *"\"code\":\"$code\""* ]] || fail "$what: expected error code $code, got: $out"
  [[ "$out" == *"$frag"* ]] || fail "$what: expected message with '$frag', got: $out"
}

test -s "$tmp/a/run/model/importance.json" || fail "kiln train wrote no importance.json"
start_server "$tmp/a/run/model" --max-texts 4 --max-text-bytes 200 --drift-window 40
out=$(post /v1/explain '{"texts": ["goal match team score league goal", "recipe oven salt butter flour"]}')
[[ "$out" == "200 "* ]] || fail "valid explain: $out"
/usr/bin/python3 - "$tmp/body" <<'PY' || fail "explain response shape"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model_version"]
ex = r["explanations"]
assert [e["label"] for e in ex] == ["sports", "cooking"], ex
for e in ex:
    assert e["method"] == "linear" and e["space"] == "logit"
    assert abs(e["base_value"] + sum(a["value"] for a in e["attributions"]) - e["output"]) < 1e-6
goal = [a for a in ex[0]["attributions"] if a["feature"] == "goal"][0]
assert goal["spans"] == [[0, 4], [29, 33]], goal
PY
expect "invalid JSON" 400 invalid_json "at byte 12" "$(post /v1/explain '{"texts": [')"
expect "missing texts" 400 missing_field "texts" "$(post /v1/explain '{"top_k": 1}')"
expect "too many texts" 413 too_many_texts "4" "$(post /v1/explain '{"texts": ["a","b","c","d","e"]}')"
out=$(curl -s -o "$tmp/body" -w '%{http_code}' "$BASE/v1/explain"); out="$out $(cat "$tmp/body")"
expect "GET explain" 405 method_not_allowed "use POST /v1/explain" "$out"
# post_all FILE: posts every line of FILE to /v1/predict, 4 texts per request.
post_all() {
  local texts=() line
  while IFS= read -r line; do texts+=("$line"); done <"$1"
  for ((i = 0; i < ${#texts[@]}; i += 4)); do
    body=$(/usr/bin/python3 -c 'import json, sys; print(json.dumps({"texts": sys.argv[1:]}))' "${texts[@]:i:4}")
    [[ "$(post /v1/predict "$body")" == "200 "* ]] || fail "predict for the shift"
  done
}
# wait_metrics CONDITION: polls /metrics (the drift worker runs off the request path) until the
# Python CONDITION on `shift` and `window` holds, then prints the shift; fails after 60 s.
wait_metrics() {
  local n
  for n in $(seq 1 600); do
    curl -sf "$BASE/metrics" >"$tmp/metrics" || true
    if /usr/bin/python3 - "$tmp/metrics" "$1" <<'PY'; then return; fi
import sys
m = {}
for line in open(sys.argv[1]):
    if line.startswith(("kiln_feature_importance_shift{", "kiln_drift_window_texts{")):
        k, v = line.rsplit(None, 1)  # one model: the series' name without its labels
        m[k.split("{")[0]] = float(v)
shift, window = m.get("kiln_feature_importance_shift"), m.get("kiln_drift_window_texts", 0)
ok = shift is not None and eval(sys.argv[2])
if ok:
    print(shift)
sys.exit(0 if ok else 1)
PY
    sleep 0.1
  done
  cat "$tmp/metrics" | grep -E "importance_shift|drift_window" >&2 || true
  fail "metrics never satisfied: $1"
}
head -40 "$tmp/a/texts.txt" >"$tmp/like_training.txt"
for i in $(seq 1 40); do echo "goal goal goal goal match"; done >"$tmp/one_class.txt"
post_all "$tmp/like_training.txt"
low=$(wait_metrics "window >= 40 and 0 <= shift <= 1")
post_all "$tmp/one_class.txt"
high=$(wait_metrics "shift > $low + 0.1 and shift <= 1")
echo "serve explain: ok (importance shift $low like training, $high on one class's words)"
