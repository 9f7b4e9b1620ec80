#!/usr/bin/env bash
# POST /v1/explain: the answer's shape (the JSON-lines objects of kiln explain under
# "explanations"), additivity, and the refusals it shares with /v1/predict.
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

start_server "$tmp/a/run/model" --max-texts 4 --max-text-bytes 200
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
echo "serve explain: ok"
