#!/usr/bin/env bash
# Every PromQL expression in deploy/ (the Grafana dashboard's panel queries and the alert rules) is
# checked against a real Prometheus server started here on 127.0.0.1: the dashboard's queries must
# run (HTTP API status "success"), and each rule must evaluate with health "ok".
set -euo pipefail
SRC="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp="$(mktemp -d)"
PROM_PID=""
cleanup() { [[ -n "$PROM_PID" ]] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
source "$SRC/tests/lib/prometheus.sh"

port="$(free_port)"
cp "$SRC/deploy/prometheus/kiln-alerts.yml" "$tmp/"
cat >"$tmp/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [kiln-alerts.yml]
scrape_configs:
  - job_name: kiln
    static_configs: [{targets: ["127.0.0.1:$port"]}]
YAML
start_prometheus "$tmp" "$port"
sleep 3  # a few rule evaluations

/usr/bin/python3 - "$SRC/deploy/grafana/kiln-dashboard.json" "$port" <<'PY'
import json, sys, urllib.parse, urllib.request

dash_path, port = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}/api/v1"

def get(path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)

dash = json.load(open(dash_path))
# Grafana's variables, as a dashboard user would have them.
subst = {"$__rate_interval": "1m", "$__interval": "15s", "$instance": ".*", "${instance}": ".*"}
bad, n = [], 0
for var in dash.get("templating", {}).get("list", []):
    q = var.get("query")
    if isinstance(q, dict) and q.get("query", "").startswith("label_values("):
        inner = q["query"][len("label_values("):].rsplit(",", 1)[0]
        n += 1
        res = get("/query", query=inner)
        if res.get("status") != "success":
            bad.append(f"variable {var['name']}: {inner}: {res.get('error')}")
for panel in dash["panels"]:
    for t in panel.get("targets", []):
        expr = t["expr"]
        for k, v in subst.items():
            expr = expr.replace(k, v)
        n += 1
        res = get("/query", query=expr)
        if res.get("status") != "success":
            bad.append(f"panel '{panel['title']}' {t['refId']}: {expr}: {res.get('error')}")
rules = [r for g in get("/rules")["data"]["groups"] for r in g["rules"]]
names = sorted(r["name"] for r in rules)
for r in rules:
    n += 1
    if r.get("health") != "ok" or r.get("lastError"):
        bad.append(f"rule {r['name']}: health {r.get('health')} {r.get('lastError', '')}")
if len(rules) < 6:
    bad.append(f"Prometheus loaded only {len(rules)} rules: {names}")
if bad:
    print("\n".join(bad))
    sys.exit(1)
print(f"{n} PromQL expressions checked against Prometheus ({len(rules)} rules: {', '.join(names)})")
PY
echo "promql: all checks passed"
