#!/usr/bin/env bash
# deploy/prometheus: the config and alert rules are valid for Prometheus, and the rules' unit tests
# (each alert fires when it should and stays quiet when it should not) pass under promtool.
set -euo pipefail
SRC="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus; scripts/setup.sh installs it with KILN_TEST_TOOLS=1)"
cd "$SRC/deploy/prometheus"
promtool check rules kiln-alerts.yml || fail "promtool check rules kiln-alerts.yml"
promtool check config --syntax-only prometheus.yml || fail "promtool check config prometheus.yml"
promtool test rules kiln-alerts.test.yml || fail "promtool test rules kiln-alerts.test.yml"

# The seed's rule is there as specified: GPU utilization above 90% for 5 minutes, critical.
grep -A4 'alert: KilnGpuUtilizationHigh' kiln-alerts.yml | grep -q 'for: 5m' || fail "GPU rule must hold for 5m"
for alert in KilnGpuUtilizationHigh KilnHighErrorRate KilnP99LatencyHigh KilnConfidenceCollapse KilnInputDrift \
             KilnFeatureImportanceShift KilnInstanceDown KilnModelUpdatesRejected KilnModelUpdateFailed KilnFeedbackDrift; do
  grep -q "alert: $alert\$" kiln-alerts.yml || fail "rule $alert missing"
  grep -q "alertname: $alert\$" kiln-alerts.test.yml || fail "rule $alert has no unit test"
done
echo "prometheus rules: all checks passed"
