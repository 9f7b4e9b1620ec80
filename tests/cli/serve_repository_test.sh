#!/usr/bin/env bash
# kiln serve DIR over a model repository (one artifact per subdirectory): start-up errors (an empty
# directory, several models without --default-model, a corrupt model), each model on its own routes
# and metrics label, /metrics accepted by promtool, load/unload by API, SIGHUP reloading every model,
# and --model-name for a single artifact.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "${KILN_SOURCE_DIR}/tests/serve/serve_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/require_tools.sh"  # missing_tool

make_artifact "$tmp/a" 3
make_artifact "$tmp/b" 4
repo="$tmp/repo"
mkdir -p "$repo"
cp -r "$tmp/a/run/model" "$repo/topics"
cp -r "$tmp/b/run" "$repo/news"  # a run directory works too (news/model/kiln.json)

# start_fails WHAT RC FRAGMENT ARGS...: kiln serve exits RC with FRAGMENT on stderr.
start_fails() {
  local what="$1" want="$2" frag="$3"; shift 3
  set +e
  "$KILN" serve "$@" --port 0 >/dev/null 2>"$tmp/err"; local rc=$?
  set -e
  [[ $rc -eq $want ]] && grep -qF -- "$frag" "$tmp/err" || fail "$what: rc=$rc (want $want), stderr: $(cat "$tmp/err")"
}
mkdir -p "$tmp/empty"
start_fails "an empty directory" 2 "holds no kiln.json, and none of its subdirectories does" "$tmp/empty"
start_fails "several models, no default" 2 "holds 2 models (news, topics); choose the one /v1/predict serves with --default-model NAME" "$repo"
start_fails "an unknown default" 2 "--default-model sport: no such model" "$repo" --default-model sport
start_fails "--model-name on a repository" 2 "drop --model-name" "$repo" --default-model news --model-name x
cp -r "$repo" "$tmp/bad-repo"
echo '{"format_version": 2,' >"$tmp/bad-repo/topics/kiln.json"
start_fails "a corrupt model" 1 "model 'topics' of the repository" "$tmp/bad-repo" --default-model news
grep -qF "$tmp/bad-repo/topics/kiln.json" "$tmp/err" || fail "the corrupt model's file is not named: $(cat "$tmp/err")"

start_server "$repo" --default-model topics
post() { curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$BASE$1" -H 'Content-Type: application/json' --data-binary "${2:-}"; printf ' '; cat "$tmp/body"; }
v_topics=$(curl -sf "$BASE/v1/models/topics" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
v_news=$(curl -sf "$BASE/v1/models/news" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
[[ "$v_topics" != "$v_news" ]] || fail "two artifacts, one version: $v_topics"
[[ "$(post /v1/predict '{"texts": ["goal match team"]}')" == "200 "*"$v_topics"* ]] || fail "/v1/predict is the default model's"
[[ "$(post /v1/models/news/predict '{"texts": ["goal match team", "stock bank"]}')" == "200 "*"$v_news"* ]] || fail "/v1/models/news/predict"
out=$(post /v2/models/news/infer '{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["recipe oven"]}]}')
[[ "$out" == "200 "*'"model_name":"news"'* ]] || fail "/v2/models/news/infer: $out"
out=$(post /v2/models/sport/infer '{"inputs": []}')
[[ "$out" == "404 "* && "$out" == *"unknown model 'sport'; this server serves 'news', 'topics'"* ]] || fail "unknown v2 model: $out"

curl -sf "$BASE/metrics" >"$tmp/metrics.txt"
for m in 'kiln_texts_total{model="topics"} 1' 'kiln_texts_total{model="news"} 3' 'kiln_queue_depth{model="news"} 0' \
         'kiln_predictions_total{model="news",label="sports"}' 'kiln_inference_batch_size_count{model="topics"} 1' \
         'kiln_drift_psi{model="news",signal="text_length"}' "kiln_model_info{model=\"news\",version=\"$v_news\"" \
         'kiln_prediction_confidence_count{model="news"} 3'; do
  grep -qF "$m" "$tmp/metrics.txt" || fail "/metrics lacks $m"
done
if command -v promtool >/dev/null; then
  promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.out" 2>&1 || { cat "$tmp/promtool.out"; fail "promtool rejects /metrics"; }
else
  missing_tool promtool prometheus "/metrics against promtool check metrics"
fi

# Load and unload by API, Triton's way; a model copied in while serving.
[[ "$(post /v2/repository/models/news/unload)" == "200 "* ]] || fail "unload news"
[[ "$(post /v1/models/news/predict '{"texts": ["x"]}')" == "404 "*model_not_found* ]] || fail "news still served after unload"
post /v2/repository/index >/dev/null
/usr/bin/python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); assert [(m["name"], m["state"]) for m in i] == [("news", "UNAVAILABLE"), ("topics", "READY")], i' "$tmp/body" \
  || fail "repository index: $(cat "$tmp/body")"
cp -r "$tmp/a/run/model" "$repo/fresh"
[[ "$(post /v2/repository/models/fresh/load)" == "200 "* ]] || fail "load a model copied in"
[[ "$(post /v1/models/fresh/predict '{"texts": ["goal"]}')" == "200 "* ]] || fail "predict on the loaded model"
[[ "$(post /v2/repository/models/topics/unload)" == "409 "* ]] || fail "the default model must stay loaded"
out=$(post /v1/admin/load "{\"model\": \"x\", \"artifact\": \"/etc/ssl\"}")
[[ "$out" == "403 "*forbidden* ]] || fail "load outside the root: $out"

# SIGHUP reloads every loaded model.
kill -HUP "$SERVER_PID"
reloaded=""
for i in $(seq 1 100); do
  metrics=$(curl -sf "$BASE/metrics")
  if grep -qF 'kiln_model_reloads_total{model="topics",result="success"} 1' <<<"$metrics" &&
     grep -qF 'kiln_model_reloads_total{model="fresh",result="success"} 1' <<<"$metrics"; then reloaded=1; break; fi
  sleep 0.1
done
[[ -n "$reloaded" ]] || fail "SIGHUP did not reload every model"
stop_server

# One artifact: named by its directory, or --model-name.
start_server "$repo/topics" --model-name sport
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v2/models/sport/ready")" == 200 ]] || fail "--model-name"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v2/models/topics/ready")" == 404 ]] || fail "--model-name keeps the directory's name"
stop_server
echo "serve_repository_test: ok"
