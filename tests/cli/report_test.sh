#!/usr/bin/env bash
# kiln report: a training run's page (also written by kiln train), a comparison and a tuning study,
# each checked for strict HTML structure and for the numbers behind the figures (equal to
# metrics.jsonl, kiln.json, the data report, `kiln evaluate --json` and the study database), then
# opened in headless Chromium over the DevTools protocol (no console errors, no requests, every
# figure present and non-empty, a screenshot); a served model's /metrics snapshot; plus the bad-input
# messages.
set -euo pipefail
KILN="$1"
SRC="${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
source "$SRC/tests/lib/require_tools.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
CHECK="/usr/bin/python3 $SRC/tests/report/check_report.py"

/usr/bin/python3 - <<'PY' || fail "python3 is needed to generate the test data"
import csv, random
random.seed(5)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split(),
         "rare-<b>&'class\"": "quill parchment ink scroll".split()}
common = "the a of and to in is it was for".split()
with open("all.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["text", "label"])
    for i in range(400):
        label = list(words)[i % 3] if i % 20 else list(words)[3]
        toks = random.sample(words[label], 3) + random.sample(common, 4)
        random.shuffle(toks); w.writerow([" ".join(toks), label])
    w.writerow(["", "sports"])  # dropped by cleaning: missing text
PY
"$KILN" -q prepare --input all.csv --out prep --val-size 0.15 --test-size 0.25 >/dev/null || fail "kiln prepare"

# 1. kiln train writes RUN/report.html and says where.
"$KILN" -q train --train prep/train.csv --val prep/val.csv --test prep/test.csv --model linear --epochs 6 \
  --batch-size 8 --out run >train.out 2>train.err || { cat train.err; fail "kiln train"; }
grep -q "^report: run/report.html$" train.out || { cat train.out; fail "kiln train did not print the report path"; }
test -s run/report.html || fail "kiln train wrote no run/report.html"
"$KILN" -q evaluate run --data prep/test.csv --json eval.json >/dev/null || fail "kiln evaluate"
cp prep/report.json run/data_report.json  # the data report kiln run would write, for the golden check
"$KILN" report run --out run.html >report.out 2>report.err || { cat report.err; fail "kiln report RUN"; }
grep -q "^report: run.html$" report.out || fail "kiln report did not print the path: $(cat report.out)"
$CHECK run run.html run eval.json || fail "run report: structure or numbers"
# The class name with markup characters is escaped everywhere (no raw tag from data).
grep -q "rare-&lt;b&gt;&amp;&#39;class&quot;" run.html || fail "class label not escaped in the page"
if grep -q "rare-<b>" run.html; then fail "raw markup from a class label reached the page"; fi
# Written by train (without data_report.json) and by report (with it): both pass the structure check.
$CHECK html run/report.html >/dev/null || fail "the report kiln train wrote"
"$KILN" -q report run --out - >stdout.html || fail "kiln report --out -"
cmp -s stdout.html run.html || fail "--out - should print the same page"

# 2. Two runs side by side: per-class F1 deltas equal the difference of their kiln.json values.
"$KILN" -q train --train prep/train.csv --val prep/val.csv --test prep/test.csv --model mlp --epochs 3 \
  --out run2 >/dev/null 2>train2.err || { cat train2.err; fail "kiln train run2"; }
"$KILN" -q report run run2 --out cmp.html >/dev/null || fail "kiln report A B"
$CHECK html cmp.html >/dev/null || fail "comparison report structure"
/usr/bin/python3 - <<'PY' || fail "comparison numbers"
import json, re
page = open("cmp.html").read()
data = json.loads(re.search(r'<script type="application/json" id="kiln-report-data">(.*?)</script>', page, re.S)[1])
a = json.load(open("run/model/kiln.json"))["metrics"]["test"]
b = json.load(open("run2/model/kiln.json"))["metrics"]["test"]
d = data["f1-delta-1"]["data"]
got = dict(zip(d["labels"], d["values"]))
want = {k: b["per_class"][k]["f1"] - a["per_class"][k]["f1"] for k in a["per_class"]}
assert set(got) == set(want) and all(abs(got[k] - want[k]) < 1e-12 for k in want), (got, want)
m = data["metrics"]["data"]["metrics"]
assert m["macro_f1"] == [a["macro_f1"], b["macro_f1"]], m["macro_f1"]
PY

# 3. A tuning study: history, running best and pruned marks equal the study database.
cat >f.py <<'PYF'
import sys
x, k = float(sys.argv[1]), sys.argv[2]
value = -(x - 0.3) ** 2 + (0.1 if k == "b" else 0.0)
for s in range(1, 5):
    print(f"step {s} value {value * s / 4}", flush=True)
print(f"score={value}")
PYF
cat >quad.yaml <<YAML
direction: maximize
metric: score
space:
  x: {type: float, low: 0.0, high: 1.0}
  lr: {type: float, low: 0.0001, high: 0.1, log: true}
  k: {type: categorical, choices: [a, b]}
objective:
  command: "/usr/bin/python3 $tmp/f.py {x} {k}"
  metric_regex: "score=([-0-9.e]+)"
  intermediate_regex: "step (\\\\d+) value ([-0-9.e]+)"
YAML
"$KILN" -q tune --config quad.yaml --trials 14 --sampler random --seed 3 --pruner median >tune.out 2>&1 \
  || { cat tune.out; fail "kiln tune"; }
"$KILN" report --study quad --storage "sqlite:///$tmp/runs/tune/quad/study.db" --out study.html >study.out 2>study.err \
  || { cat study.err; fail "kiln report --study"; }
grep -q "^report: study.html$" study.out || fail "study report path: $(cat study.out)"
# Without --out, the page goes into the study's directory.
"$KILN" -q report --study quad >/dev/null || fail "kiln report --study (default storage)"
test -s runs/tune/quad/report.html || fail "no runs/tune/quad/report.html"
/usr/bin/python3 - <<'PY' >trials.json || fail "reading the study database"
import json, sqlite3
db = sqlite3.connect("runs/tune/quad/study.db")
sid, direction = db.execute("SELECT id, direction FROM studies WHERE name = 'quad'").fetchone()
states = {0: "running", 1: "complete", 2: "pruned", 3: "failed"}
trials = [{"number": n, "state": states[s], "value": v}
          for n, s, v in db.execute("SELECT number, state, value FROM trials WHERE study_id = ? ORDER BY number", (sid,))]
print(json.dumps({"direction": "maximize" if direction == 1 else "minimize", "trials": trials}))
PY
$CHECK study study.html trials.json || fail "study report: structure or numbers"

# 3b. A served model: a snapshot of its /metrics; the numbers equal what was sent, and the latency
# percentiles equal PromQL's histogram_quantile recomputed here from the page's own samples.
server_html=""
if command -v curl >/dev/null; then
  "$KILN" serve run --port 0 --port-file port.txt >serve.log 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 300); do [[ -s port.txt ]] && break; sleep 0.1; done
  [[ -s port.txt ]] || { kill "$serve_pid" 2>/dev/null || true; cat serve.log; fail "kiln serve did not start"; }
  port=$(cat port.txt)
  for i in 1 2 3 4 5; do
    curl -sf -X POST "http://127.0.0.1:$port/v1/predict" -H 'Content-Type: application/json' \
      -d '{"texts": ["goal match team score", "stock market bank rate"]}' >/dev/null || fail "predict request $i"
  done
  "$KILN" -q report --server "http://127.0.0.1:$port" --out server.html >/dev/null 2>server.err \
    || { kill "$serve_pid"; cat server.err; fail "kiln report --server"; }
  kill "$serve_pid"
  wait "$serve_pid" 2>/dev/null || true
  $CHECK html server.html >/dev/null || fail "server report structure"
  /usr/bin/python3 - <<'PY2' || fail "server report numbers"
import json, math, re
page = open("server.html").read()
data = json.loads(re.search(r'<script type="application/json" id="kiln-report-data">(.*?)</script>', page, re.S)[1])
samples = data["samples"]["data"]
def total(name):
    return sum(s["value"] for s in samples if s["name"] == name)
assert total("kiln_texts_total") == 10, total("kiln_texts_total")
assert total("kiln_requests_total") == 5, total("kiln_requests_total")
buckets = sorted(((float(s["labels"]["le"]), s["value"]) for s in samples
                  if s["name"] == "kiln_request_duration_seconds_bucket"), key=lambda b: b[0])
def quantile(q):  # PromQL histogram_quantile
    rank, prev_b, prev_c = q * buckets[-1][1], 0.0, 0.0
    for b, c in buckets:
        if c >= rank:
            if math.isinf(b): return prev_b
            return prev_b + (b - prev_b) * (rank - prev_c) / (c - prev_c) if c > prev_c else b
        prev_b, prev_c = b, c
fig = [k for k in data if k.startswith("kiln-request-duration-seconds")][0]
p = data[fig]["data"]["percentiles"]
for q, key in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
    assert abs(p[key] - 1000 * quantile(q)) < 1e-9, (key, p[key], 1000 * quantile(q))
assert sum(data["predictions-per-label"]["data"]["values"]) == 10
PY2
  server_html=server.html
else
  missing_tool curl curl "the served-model page"
fi

# 4. In a browser: no console errors, no requests, every figure drawn, a screenshot.
if command -v chromium >/dev/null && command -v node >/dev/null; then
  node "$SRC/tests/report/browser_check.js" "$(command -v chromium)" shots run.html cmp.html study.html $server_html \
    >browser.out 2>&1 || { cat browser.out; fail "browser check"; }
  cat browser.out
  for p in run cmp study; do test -s "shots/$p.png" || fail "no screenshot shots/$p.png"; done
else
  missing_tool "chromium (and node)" "chromium nodejs" "the pages in a browser"
fi

# 5. Bad input: exit code and message naming the place and the fix.
expect_fail() {  # code text command...
  local code="$1" text="$2"; shift 2
  set +e; "$@" >bad.out 2>bad.err; local rc=$?; set -e
  [[ $rc -eq $code ]] || { cat bad.err; fail "$* exited $rc, expected $code"; }
  grep -qF -- "$text" bad.err || { cat bad.err; fail "$*: message lacks: $text"; }
}
expect_fail 1 "nope: no such directory; give the --out directory of \`kiln train\` or \`kiln run\`" "$KILN" report nope
mkdir empty
expect_fail 1 "empty: not a run directory: it holds neither empty/model/kiln.json" "$KILN" report empty
cp -r run broken
sed -i '3s/.*/{"type":"step","epoch":1,"st/' broken/metrics.jsonl
expect_fail 1 "broken/metrics.jsonl:3: not a JSON record" "$KILN" report broken
sed -i '3s/.*/{"type":"step","epoch":1,"step":"x","loss":1}/' broken/metrics.jsonl
expect_fail 1 "broken/metrics.jsonl:3: \"step\" is \"x\", expected a number" "$KILN" report broken
echo '{"format_version": 2' >empty/kiln.json
expect_fail 1 "empty/kiln.json: the artifact manifest is not valid JSON" "$KILN" report empty
expect_fail 2 "needs --out FILE" "$KILN" report run run2
expect_fail 2 "--study reports a tuning study and takes no run directory" "$KILN" report run --study quad
expect_fail 2 "--storage applies with --study NAME only" "$KILN" report run --storage "sqlite:///x.db"
expect_fail 2 "give a run directory" "$KILN" report
expect_fail 2 "--server needs --out FILE" "$KILN" report --server "http://127.0.0.1:1"
expect_fail 2 "--server reports a running server and takes no run directory" "$KILN" report run --server x --out x.html
expect_fail 1 "--server http://127.0.0.1:1: cannot fetch /metrics (" "$KILN" report --server "http://127.0.0.1:1" --out x.html
expect_fail 1 "nothere.txt: cannot read; --server takes a server URL" "$KILN" report --server nothere.txt --out x.html
printf 'kiln_up 1\nkiln_texts_total{a="1} 2\n' >bad.prom
expect_fail 1 "bad.prom:2: unterminated label value of 'a' in kiln_texts_total" "$KILN" report --server bad.prom --out x.html
expect_fail 2 "no study 'nosuch'" "$KILN" report --study nosuch --storage "sqlite:///$tmp/runs/tune/quad/study.db"
echo "report_test: ok"
