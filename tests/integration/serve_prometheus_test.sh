#!/usr/bin/env bash
# kiln serve scraped by a real Prometheus (Debian package) on 127.0.0.1: after traffic, the request
# rate, the P99 latency and the confidence histogram are queryable through Prometheus' HTTP API,
# and the deploy/ alert rules load and evaluate against the live series.
set -euo pipefail
KILN="$1"
LOAD="$(dirname "$KILN")/kiln_serve_load"
tmp="$(mktemp -d)"
SERVER_PID=""
PROM_PID=""
cleanup() { stop_server; [[ -n "$PROM_PID" ]] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
source "${KILN_SOURCE_DIR}/tests/serve/serve_lib.sh"
source "${KILN_SOURCE_DIR}/tests/lib/prometheus.sh"
[[ -x "$LOAD" ]] || fail "$LOAD not built"

make_artifact "$tmp/a" 3
start_server "$tmp/a/run/model"
kport=$(cat "$tmp/port")
pport="$(free_port)"
cp "$KILN_SOURCE_DIR/deploy/prometheus/kiln-alerts.yml" "$tmp/"
cat >"$tmp/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [kiln-alerts.yml]
scrape_configs:
  - job_name: kiln
    static_configs: [{targets: ["127.0.0.1:$kport"]}]
YAML
start_prometheus "$tmp" "$pport"
wait_for_scrape "$pport" kiln  # the traffic below must fall between scrapes, not before the first

# Traffic over several scrapes: 6 rounds of 1,500 requests (1% malformed), one second apart.
for round in 1 2 3 4 5 6; do
  "$LOAD" --port "$kport" --requests 1500 --concurrency 4 --malformed-rate 0.01 --texts-file "$tmp/a/texts.txt" \
    >"$tmp/load.json" || { cat "$tmp/load.json"; fail "load round $round"; }
  sleep 1
done
sleep 2

/usr/bin/python3 - "$pport" <<'PY' || { tail -5 "$tmp/prometheus.log"; fail "Prometheus queries"; }
import json, math, sys, urllib.parse, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/api/v1"
def query(q):
    with urllib.request.urlopen(base + "/query?" + urllib.parse.urlencode({"query": q}), timeout=10) as r:
        res = json.load(r)
    assert res["status"] == "success", (q, res)
    return res["data"]["result"]
def scalar(q):
    r = query(q)
    assert r, f"no series for {q}"
    return float(r[0]["value"][1])

up = scalar('up{job="kiln"}')
assert up == 1, f"target not up: {up}"
rate = scalar('sum(rate(kiln_requests_total{job="kiln",route="/v1/predict",code="200"}[30s]))')
assert rate > 10, f"request rate {rate}"
errors = scalar('sum(rate(kiln_requests_total{job="kiln",route="/v1/predict",code=~"4.."}[30s]))')
assert 0 < errors < rate * 0.05, f"4xx rate {errors} vs {rate}"
p99 = scalar('histogram_quantile(0.99, sum by (le) (rate(kiln_request_duration_seconds_bucket{job="kiln",route="/v1/predict"}[30s])))')
assert math.isfinite(p99) and 0 < p99 < 1.0, f"P99 {p99}"
buckets = query('kiln_prediction_confidence_bucket{job="kiln"}')
assert len(buckets) >= 10, f"confidence buckets: {len(buckets)}"
inf = [b for b in buckets if b["metric"]["le"] == "+Inf"][0]
assert float(inf["value"][1]) >= 8000, f"confidence count {inf['value']}"
median = scalar('histogram_quantile(0.5, sum by (le) (rate(kiln_prediction_confidence_bucket{job="kiln"}[30s])))')
assert 0.3 < median <= 1, f"median confidence {median}"
by_label = query('sum by (label) (kiln_predictions_total{job="kiln"})')
assert {s["metric"]["label"] for s in by_label} == {"cooking", "finance", "sports"}, by_label
batch = scalar('sum(kiln_inference_batch_size_count{job="kiln"})')
assert batch > 0, batch
psi = scalar('kiln_drift_psi{job="kiln",signal="text_length"}')
assert math.isfinite(psi) and psi >= 0, psi
rss = scalar('process_resident_memory_bytes{job="kiln"}')
assert rss > 10e6, rss
with urllib.request.urlopen(base + "/rules", timeout=10) as r:
    groups = json.load(r)["data"]["groups"]
rules = [rule for g in groups for rule in g["rules"]]
assert len(rules) >= 6 and all(r["health"] == "ok" for r in rules), [(r["name"], r["health"], r.get("lastError")) for r in rules]
firing = [r["name"] for r in rules if r.get("state") == "firing"]
assert not firing, f"alerts firing on a healthy server: {firing}"
print(f"rate {rate:.0f}/s, 4xx {errors:.1f}/s, P99 {p99*1000:.2f} ms, median confidence {median:.2f}, rules {len(rules)} ok")
PY
echo "serve_prometheus_test: ok"
