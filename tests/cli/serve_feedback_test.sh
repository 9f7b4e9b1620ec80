#!/usr/bin/env bash
# kiln serve --feedback-token-file: the flags' errors, then kill -9 of the server right after
# feedback was acknowledged, while updates train and promote in the background, three times: every
# acknowledged item is in the log after the restart, the served model is the original or a complete
# promoted version, and no half-written version is left.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "${KILN_SOURCE_DIR}/tests/serve/serve_lib.sh"

make_artifact "$tmp/a" 3
model="$tmp/a/run/model"
printf 'feedback-token-%s\n' 0123456789abcdef >"$tmp/token"
chmod 600 "$tmp/token"
printf 'short\n' >"$tmp/short"
chmod 600 "$tmp/short"

# start_fails WHAT FRAGMENT ARGS...: kiln serve exits 2 with FRAGMENT on stderr.
start_fails() {
  local what="$1" frag="$2"; shift 2
  set +e
  "$KILN" serve "$@" --port 0 >/dev/null 2>"$tmp/err"; local rc=$?
  set -e
  [[ $rc -eq 2 ]] && grep -qF -- "$frag" "$tmp/err" || fail "$what: rc=$rc (want 2), stderr: $(cat "$tmp/err")"
}
start_fails "a learning flag without the token" \
  "--update-every configures the feedback loop, which is off; add --feedback-token-file FILE to turn it on" \
  "$model" --update-every 10
start_fails "a short token" "the token has 5 characters; use at least 16" "$model" --feedback-token-file "$tmp/short"
mkdir -p "$tmp/repo"
cp -r "$model" "$tmp/repo/topics"
start_fails "a state directory inside the repository" \
  "lies inside the model repository $tmp/repo, whose every subdirectory is served as a model; put it outside" \
  "$tmp/repo" --feedback-token-file "$tmp/token" --state-dir "$tmp/repo/learn"
start_fails "a bad improvement alpha" "improvement alpha must be in (0, 1]" \
  "$model" --feedback-token-file "$tmp/token" --improvement-alpha 0

# batch FIRST N: N feedback items with ids FIRST.. (sports, cooking, finance, mostly right labels).
batch() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, random, sys
first, n = int(sys.argv[1]), int(sys.argv[2])
random.seed(first)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
items = []
for i in range(first, first + n):
    label = list(words)[i % 3]
    toks = random.sample(words[label], 3) + random.sample(common, 3)
    items.append({"id": f"f{i}", "text": " ".join(toks), "label": label})
print(json.dumps({"items": items}))
PY
}

token="$(cat "$tmp/token")"
# Many short updates, each trained long enough that the kill lands while one runs.
flags=(--feedback-token-file "$tmp/token" --update-every 20 --gate-fraction 0.2 --update-epochs 100 --no-page)
in_flight=0
state="$tmp/a/run/model.learn"
acked=0
for round in 1 2 3; do
  start_server "$model" "${flags[@]}"
  if ((round > 1)); then
    got=$(curl -sf -H "Authorization: Bearer $token" "$BASE/v1/feedback" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["log_items"])')
    [[ "$got" == "$acked" ]] || fail "round $round: the log holds $got items after kill -9, $acked were acknowledged"
    # Items logged after the last saved state (an update was running or waiting) are learnt again.
    grep -q "logged items after the saved state again" "$tmp/serve.err" && in_flight=$((in_flight + 1))
  fi
  for k in 1 2 3; do
    first=$(( (round - 1) * 300 + (k - 1) * 100 ))
    batch "$first" 100 >"$tmp/body.json"
    answer=$(curl -s -X POST -H "Authorization: Bearer $token" --data-binary @"$tmp/body.json" "$BASE/v1/feedback")
    [[ "$answer" == '{"accepted":100,"duplicates":0}' ]] || fail "round $round: feedback answered $answer"
    acked=$((acked + 100))
  done
  # Updates are training and promoting in the background: kill -9 now.
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  for v in "$state"/versions/*; do
    [[ -e "$v" ]] || continue
    case "$(basename "$v")" in
      v[0-9][0-9][0-9][0-9]) [[ -f "$v/kiln.json" && -f "$v/model.safetensors" ]] || fail "round $round: $v is incomplete" ;;
      .*tmp-*) ;;  # the atomic writer's temporary: removed on the next start
      *) fail "round $round: unexpected $v" ;;
    esac
  done
done

# After the last restart: every item acknowledged is logged, the served model is a complete
# version, predictions work, a repeated id is a duplicate, and the temporaries are gone.
start_server "$model" "${flags[@]}"
grep -q "logged items after the saved state again" "$tmp/serve.err" && in_flight=$((in_flight + 1))
((in_flight >= 1)) || fail "no kill -9 landed while learning was under way; the test did not test what it says"
updates=$(grep -c '"event":"update"' "$state/curve.jsonl" || true)
((updates >= 1)) || fail "no update ran before the kills"
status=$(curl -sf -H "Authorization: Bearer $token" "$BASE/v1/feedback")
/usr/bin/python3 - "$status" "$acked" "$state" <<'PY' || fail "status after the restarts: $status"
import json, os, sys
s, acked, state = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
assert s["log_items"] == acked, (s["log_items"], acked)
v = s["served_version"]
assert v == "original" or os.path.isfile(os.path.join(state, "versions", v, "kiln.json")), v
assert not [n for n in os.listdir(os.path.join(state, "versions")) if n.startswith(".")], os.listdir(os.path.join(state, "versions"))
PY
curl -sf -X POST -d '{"texts": ["goal match team"]}' "$BASE/v1/predict" | grep -q '"label"' || fail "predict after the restarts"
batch 0 1 >"$tmp/body.json"
answer=$(curl -s -X POST -H "Authorization: Bearer $token" --data-binary @"$tmp/body.json" "$BASE/v1/feedback")
[[ "$answer" == '{"accepted":0,"duplicates":1}' ]] || fail "a logged id sent again answered $answer"
stop_server
echo "serve_feedback: ok ($acked items over 3 kill -9 restarts; $in_flight of 3 killed mid-learning; $updates updates recorded)"
