#!/usr/bin/env bash
# Feedback for an image model (a CNN on scikit-learn's 8x8 digits). Offline: `kiln learn --stream`
# reads image paths relative to the stream file's folder, from any working directory, and its
# updates train on them beside the artifact's held-out images. In the server: POST /v1/feedback takes
# items with "image" (base64 PNG, checked as /v1/predict checks it: missing or unexpected modality,
# bad base64, a file that does not decode), stores each image beside the log before it answers,
# learns from them in the background (an update runs and does not fail) and keeps them across a
# kill -9 and restart.
set -euo pipefail
KILN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
SRC="${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; [[ -n "${KEEP:-}" ]] || rm -rf "$tmp"' EXIT
source "$SRC/tests/serve/serve_lib.sh"
source "$SRC/tests/lib/require_tools.sh"
command -v curl >/dev/null || { missing_tool curl curl "the feedback route"; exit 77; }
DIGITS=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
[[ -f "$DIGITS" ]] || { missing_tool "digits.csv.gz" python3-sklearn "an image model's feedback"; exit 77; }

/usr/bin/python3 "$SRC/tests/lib/digits_png.py" "$DIGITS" "$tmp/digits" 3
"$KILN" -q prepare --input "$tmp/digits" --val-size 0.2 --test-size 0.3 --out "$tmp/prep" >/dev/null || fail "prepare"
"$KILN" -q train --train "$tmp/prep/train.csv" --val "$tmp/prep/val.csv" --model cnn --epochs 2 --out "$tmp/run" \
  >/dev/null 2>"$tmp/train.err" || { cat "$tmp/train.err"; fail "kiln train --model cnn"; }
model="$tmp/run/model"

# The test split as feedback: a stream whose paths are relative to its own folder, and request bodies.
mkdir -p "$tmp/stream"
/usr/bin/python3 - "$tmp" <<'PY'
import base64, csv, json, os, sys
tmp = sys.argv[1]
rows = list(csv.DictReader(open(f"{tmp}/prep/test.csv")))
with open(f"{tmp}/stream/feedback.jsonl", "w") as f:
    for i, r in enumerate(rows):
        path = os.path.normpath(os.path.join(f"{tmp}/prep", r["image"]))
        f.write(json.dumps({"id": i, "image": os.path.relpath(path, f"{tmp}/stream"), "label": r["label"]}) + "\n")
for b in range(0, len(rows), 60):
    items = []
    for i, r in enumerate(rows[b:b + 60], b):
        data = open(os.path.join(f"{tmp}/prep", r["image"]), "rb").read()
        items.append({"id": f"i{i}", "image": base64.b64encode(data).decode(), "label": r["label"]})
    json.dump({"items": items}, open(f"{tmp}/batch_{b // 60}.json", "w"))
print(len(rows))
PY
first_image="$(/usr/bin/python3 -c "import json,os,sys; l=json.loads(open(sys.argv[1]).readline()); print(os.path.normpath(os.path.join(os.path.dirname(sys.argv[1]), l['image'])))" "$tmp/stream/feedback.jsonl")"

# Offline, from another working directory.
(cd / && "$KILN" learn "$model" --stream "$tmp/stream/feedback.jsonl" --out "$tmp/learn" --update-every 60 \
  --max-regression 100 >"$tmp/learn.out" 2>"$tmp/learn.err") || { cat "$tmp/learn.err"; fail "kiln learn on images"; }
/usr/bin/python3 - "$tmp/learn.out" "$tmp/learn.err" <<'PY' || fail "kiln learn's updates on images"
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert s["items"] >= 150 and s["updates"] >= 2 and s["failed"] == 0, (s, open(sys.argv[2]).read())
PY

printf 'feedback-token-%s\n' 0123456789abcdef >"$tmp/token"
chmod 600 "$tmp/token"
token="$(cat "$tmp/token")"
start_server "$model" --feedback-token-file "$tmp/token" --update-every 60 --max-regression 100 --no-page
post() { curl -s -w ' %{http_code}' -X POST -H "Authorization: Bearer $token" "$BASE/v1/feedback" "$@"; }
expect() {  # expect WHAT BODY CODE STATUS FRAGMENT
  local out; out="$(post -d "$2")"
  [[ "$out" == *"\"code\":\"$3\""*"$5"*" $4" ]] || fail "$1 answered: $out"
}
png64="$(base64 -w0 "$first_image")"
expect "a text for an image model" '{"items": [{"text": "seven", "label": "7"}]}' unexpected_modality 400 \
  'items[0] has a \"text\"; this model reads an image only; send \"image\"'
expect "no image" '{"items": [{"label": "7"}]}' missing_modality 400 \
  'items[0] has no \"image\"; this model reads an image per item (base64 PNG/JPEG bytes)'
expect "bad base64" '{"items": [{"image": "ab$d", "label": "7"}]}' invalid_base64 400 \
  'items[0].image is not base64 at character 2'
expect "a file that is no image" '{"items": [{"image": "bm90IGFuIGltYWdl", "label": "7"}]}' invalid_image 400 'items[0].image: '
expect "an image of the wrong type" '{"items": [{"image": 7, "label": "7"}]}' invalid_request 400 \
  'items[0].image must be a string of base64 PNG/JPEG bytes'
expect "a bad item after a good one" "{\"items\": [{\"image\": \"$png64\", \"label\": \"7\"}, {\"image\": \"\", \"label\": \"7\"}]}" \
  invalid_image 400 'items[1].image: empty; send a PNG or JPEG file'
[[ ! -e "$model.learn/images" ]] || fail "a refused request left images behind: $(ls "$model.learn/images")"

accepted=0
for f in "$tmp"/batch_*.json; do
  out="$(post --data-binary @"$f")"
  [[ "$out" == *'"accepted":'*' 200' ]] || fail "image feedback answered: $out"
  accepted=$((accepted + $(sed 's/.*"accepted":\([0-9]*\).*/\1/' <<<"$out")))
done
cmp "$first_image" "$model.learn/images/1.png" || fail "the first item's image is not stored as sent"
# The background learner predicts, buffers and trains on the stored images.
for _ in $(seq 1 600); do
  st="$(curl -s -H "Authorization: Bearer $token" "$BASE/v1/feedback")"
  /usr/bin/python3 -c "import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s['items'] >= $accepted and s['updates'] >= 2 else 1)" "$st" \
    && break
  sleep 0.2
done
/usr/bin/python3 - "$st" "$accepted" <<'PY' || { cat "$tmp/serve.err"; fail "the server's learning from images"; }
import json, sys
s = json.loads(sys.argv[1])
assert s["items"] == int(sys.argv[2]) and s["log_items"] == int(sys.argv[2]), s
assert s["updates"] >= 2 and s["failed"] == 0, s
PY

# kill -9 and restart: the log, its images and the learnt state come back.
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
start_server "$model" --feedback-token-file "$tmp/token" --update-every 60 --max-regression 100 --no-page
st="$(curl -s -H "Authorization: Bearer $token" "$BASE/v1/feedback")"
/usr/bin/python3 -c "import json,sys; s=json.loads(sys.argv[1]); assert s['log_items'] == $accepted, s" "$st" \
  || fail "after kill -9: $st"
[[ "$(find "$model.learn/images" -name '*.png' | wc -l)" -eq "$accepted" ]] || fail "images lost after kill -9"
out="$(curl -s -w ' %{http_code}' -X POST "$BASE/v1/predict" -d "{\"inputs\": [{\"image\": \"$png64\"}]}")"
[[ "$out" == *'"label":'*' 200' ]] || fail "predict after restart answered: $out"
stop_server
echo "serve_feedback_image_test: ok"
