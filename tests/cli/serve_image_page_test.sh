#!/usr/bin/env bash
# kiln serve's own page for an image model (a CNN on scikit-learn's 8x8 digits) in headless
# Chromium: the try-it box takes an image through its file input as a user chooses one, answers a
# label with probability bars, and an explanation (integrated gradients per image patch) is drawn as
# a heat map over the chosen image; no console errors, no request but same-origin /metrics,
# /v1/predict and /v1/explain. The page's data says the model reads an image and no text, and
# /v1/explain refuses a text or a broken image for this model as /v1/predict does.
set -euo pipefail
KILN="$1"
SRC="${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "$SRC/tests/serve/serve_lib.sh"
source "$SRC/tests/lib/require_tools.sh"
command -v curl >/dev/null || { missing_tool curl curl "the server's page"; exit 77; }
DIGITS=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
[[ -f "$DIGITS" ]] || { missing_tool "digits.csv.gz" python3-sklearn "an image model's page"; exit 77; }
if ! command -v chromium >/dev/null || ! command -v node >/dev/null; then
  missing_tool "chromium (and node)" "chromium nodejs" "an image model's page in a browser"
  exit 77
fi

# Every sixth digit (300 PNGs), one epoch of the small CNN: the page needs a model, not a good one.
/usr/bin/python3 "$SRC/tests/lib/digits_png.py" "$DIGITS" "$tmp/digits" 6
"$KILN" -q prepare --input "$tmp/digits" --val-size 0.2 --test-size 0.2 --out "$tmp/prep" >/dev/null || fail "prepare"
"$KILN" -q train --train "$tmp/prep/train.csv" --val "$tmp/prep/val.csv" --model cnn --epochs 1 --out "$tmp/run" \
  >/dev/null 2>"$tmp/train.err" || { cat "$tmp/train.err"; fail "kiln train --model cnn"; }
A="$tmp/run/model"
start_server "$A"
curl -sf "$BASE/" -o "$tmp/page.html" || fail "GET / failed"
/usr/bin/python3 - "$tmp/page.html" <<'PY' || fail "the page's data for an image model"
import json, re, sys
page = open(sys.argv[1]).read()
data = json.loads(re.search(r'<script type="application/json" id="kiln-report-data">(.*?)</script>', page, re.S).group(1))
live = data["live"]
assert live["has_image"] and not live["has_text"], live
assert 'id="try-image"' in page and 'id="try-text"' not in page
PY
image="$(find "$tmp/digits/7" -name '*.png' | sort | head -1)"
# /v1/explain checks the inputs as /v1/predict does: a text for an image model is refused, naming the fix.
out="$(curl -s -w ' %{http_code}' -X POST "$BASE/v1/explain" -d '{"texts": ["seven"]}')"
[[ "$out" == *'"code":"missing_modality"'*"inputs[0] has no 'image'; this model reads an image only per input"*' 400' ]] \
  || fail "/v1/explain with a text for an image model answered: $out"
out="$(curl -s -w ' %{http_code}' -X POST "$BASE/v1/explain" -d '{"inputs": [{"image": "bm90IGFuIGltYWdl"}]}')"
[[ "$out" == *'"code":"invalid_image"'*'inputs[0].image: '*' 400' ]] || fail "/v1/explain with a broken image answered: $out"
TRY_IMAGE="$image" node "$SRC/tests/report/live_check.js" "$(command -v chromium)" "$tmp/shots" "$BASE/?poll_ms=300" \
  - 0 1 2 3 4 5 6 7 8 9 >"$tmp/browser.out" 2>&1 || { cat "$tmp/browser.out"; fail "the image model's page in a browser"; }
cat "$tmp/browser.out"
grep -q "^heat map: [0-9]* patches over the chosen image" "$tmp/browser.out" || fail "no heat map was checked"
for p in live live-dark explain-image; do test -s "$tmp/shots/$p.png" || fail "no screenshot $p.png"; done
if [[ -n "${KILN_SHOTS_DIR:-}" ]]; then mkdir -p "$KILN_SHOTS_DIR" && cp "$tmp"/shots/*.png "$KILN_SHOTS_DIR/"; fi
stop_server
echo "serve_image_page_test: ok"
