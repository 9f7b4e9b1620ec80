#!/usr/bin/env bash
# kiln serve's own page (GET / and /index.html): the served model's report (the classification
# numbers equal kiln.json, the top features equal a hand-written importance.json), strict HTML with
# one inline script allowed by its CSP hash, regenerated on reload (a malformed importance.json is
# then a stated skip naming the file), --no-page; and the live page in headless Chromium: no console
# errors, no request but same-origin /metrics, /v1/predict and /v1/explain, the live panel updating
# after requests, the try-it box answering a label, screenshots (light and dark).
set -euo pipefail
KILN="$1"
SRC="${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
tmp="$(mktemp -d)"
SERVER_PID=""
trap 'stop_server; rm -rf "$tmp"' EXIT
source "$SRC/tests/serve/serve_lib.sh"
source "$SRC/tests/lib/require_tools.sh"
command -v curl >/dev/null || { missing_tool curl curl "the server's page"; exit 77; }
CHECK="/usr/bin/python3 $SRC/tests/report/check_report.py"

make_artifact "$tmp/a" 3
A="$tmp/a/run/model"
# Global importances as `kiln explain --global` writes them: sports has 12 features (10 are drawn),
# out of order on purpose (the page sorts), and a label with markup characters.
cat >"$A/importance.json" <<'JSON'
{"method": "linear", "space": "logit", "rows": 45,
 "classes": [
  {"label": "sports", "features": [{"feature": "goal", "mean_abs": 0.9}, {"feature": "team", "mean_abs": 0.7},
    {"feature": "match", "mean_abs": 0.8}, {"feature": "score", "mean_abs": 0.6}, {"feature": "league", "mean_abs": 0.5},
    {"feature": "coach", "mean_abs": 0.45}, {"feature": "player", "mean_abs": 0.4}, {"feature": "win", "mean_abs": 0.35},
    {"feature": "season", "mean_abs": 0.3}, {"feature": "stadium", "mean_abs": 0.25}, {"feature": "the", "mean_abs": 0.02},
    {"feature": "<b>a</b>", "mean_abs": 0.01}]},
  {"label": "cooking", "features": [{"feature": "oven", "mean_abs": 0.6}, {"feature": "salt", "mean_abs": 0.5}]},
  {"label": "finance", "features": []}],
 "overall": [{"feature": "goal", "mean_abs": 0.31}, {"feature": "oven", "mean_abs": 0.2}]}
JSON

start_server "$A"
curl -s -D "$tmp/headers" -o "$tmp/page.html" "$BASE/" || fail "GET /"
grep -qi '^content-type: text/html; charset=utf-8' "$tmp/headers" || fail "GET / content type: $(cat "$tmp/headers")"
grep -qi '^cache-control: no-cache' "$tmp/headers" || fail "GET / has no Cache-Control: no-cache"
curl -sf -o "$tmp/index.html" "$BASE/index.html" || fail "GET /index.html"
cmp -s "$tmp/page.html" "$tmp/index.html" || fail "GET /index.html differs from GET /"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/" -d x)
[[ "$status" == 405 ]] || fail "POST / answered $status, expected 405"
$CHECK live "$tmp/page.html" || fail "the served page's structure"
/usr/bin/python3 - "$tmp/page.html" "$A" <<'PY' || fail "the served page's numbers"
import json, re, sys
page = open(sys.argv[1]).read()
data = json.loads(re.search(r'<script type="application/json" id="kiln-report-data">(.*?)</script>', page, re.S)[1])
manifest = json.load(open(sys.argv[2] + "/kiln.json"))
m = manifest["metrics"]["validation"]
rep = data["classification-report"]["data"]
assert rep["per_class"] == m["per_class"] and rep["macro_f1"] == m["macro_f1"], "classification report != kiln.json"
assert data["confusion-counts"]["data"]["values"] == [[float(v) for v in r] for r in m["confusion_matrix"]]
assert data["reliability"]["data"]["bins"] == m["reliability"]
imp = json.load(open(sys.argv[2] + "/importance.json"))
for i, c in enumerate(imp["classes"]):
    want = sorted(c["features"], key=lambda f: -f["mean_abs"])[:10]
    fig = data.get("importance-class-%d" % i)
    if not want:
        assert fig is None, "a class without features gets no chart"
        continue
    got = dict(zip(fig["data"]["labels"], fig["data"]["values"]))
    assert got == {f["feature"]: f["mean_abs"] for f in want}, (got, want)
    assert fig["data"]["values"] == sorted(fig["data"]["values"], reverse=True)
assert dict(zip(data["importance-overall"]["data"]["labels"], data["importance-overall"]["data"]["values"])) == {"goal": 0.31, "oven": 0.2}
assert "<b>a</b>" not in page, "a feature name's markup reached the page"
live = data["live"]
assert live["has_text"] and not live["has_image"] and live["top_k"] == 3 and live["predict_path"] == "/v1/predict", live
for fid in ("live-rate-chart", "live-latency-chart", "live-confidence", "live-labels", "live-drift"):
    assert fid in data["figures"], fid
PY

# In a browser: the page as a user sees it, against this live server.
page_loads=2
if command -v chromium >/dev/null && command -v node >/dev/null; then
  node "$SRC/tests/report/live_check.js" "$(command -v chromium)" "$tmp/shots" "$BASE/?poll_ms=300" \
    "goal match team score league" sports cooking finance >"$tmp/browser.out" 2>&1 \
    || { cat "$tmp/browser.out"; fail "the live page in a browser"; }
  cat "$tmp/browser.out"
  page_loads=3
  for p in live live-dark; do test -s "$tmp/shots/$p.png" || fail "no screenshot $p.png"; done
  if [[ -n "${KILN_SHOTS_DIR:-}" ]]; then mkdir -p "$KILN_SHOTS_DIR" && cp "$tmp"/shots/*.png "$KILN_SHOTS_DIR/"; fi
else
  missing_tool "chromium (and node)" "chromium nodejs" "the served page in a browser"
fi
# The page's own requests are counted under route "/" (/index.html too).
# (Read whole first: `curl | grep -q` under pipefail fails when grep quits before curl has written all.)
metrics="$(curl -sf "$BASE/metrics")"
grep -q "^kiln_requests_total{route=\"/\",code=\"200\"} $page_loads\$" <<<"$metrics" \
  || fail "GET / and /index.html not counted: $(grep 'route="/"' <<<"$metrics" || true)"

# A reload regenerates the page: now importance.json is malformed, a stated skip naming the file.
printf '{"method": "linear", "space": "odds", "rows": 3, "classes": []}\n' >"$A/importance.json"
kill -HUP "$SERVER_PID"
for _ in $(seq 1 100); do
  curl -sf -o "$tmp/page2.html" "$BASE/" && grep -q "Skipped: " "$tmp/page2.html" && break
  sleep 0.1
done
grep -qF "Skipped: $A/importance.json: &quot;space&quot; must be &quot;logit&quot; or &quot;probability&quot;, got &quot;odds&quot;; regenerate it with \`kiln explain ARTIFACT --global\`" "$tmp/page2.html" \
  || fail "after the reload the page should skip the malformed importance.json: $(grep -o 'Skipped[^<]*' "$tmp/page2.html" || echo none)"
$CHECK live "$tmp/page2.html" >/dev/null || fail "the regenerated page's structure"
# kiln report on the run says the same, and warns.
"$KILN" report "$tmp/a/run" --out "$tmp/run.html" >/dev/null 2>"$tmp/report.err" || { cat "$tmp/report.err"; fail "kiln report"; }
grep -qF "skipping the top features: $A/importance.json: \"space\" must be" "$tmp/report.err" || fail "kiln report did not warn: $(cat "$tmp/report.err")"
rm "$A/importance.json"
"$KILN" -q report "$tmp/a/run" --out "$tmp/run.html" >/dev/null || fail "kiln report without importance.json"
grep -qF "holds no importance.json. To see them, run \`kiln explain $A --global\`" "$tmp/run.html" \
  || fail "the run report does not say how to get the top features"
stop_server

# --no-page: GET / is an unknown route.
start_server "$A" --no-page
out=$(curl -s -w ' %{http_code}' "$BASE/")
[[ "$out" == *'"code":"not_found"'*'--no-page'*' 404' ]] || fail "--no-page: GET / answered: $out"
stop_server
echo "serve_page_test: ok"
