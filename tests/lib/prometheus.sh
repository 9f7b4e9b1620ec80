# Shared by tests that need a real Prometheus (Debian package) on 127.0.0.1. Source it; the caller
# defines fail().

# free_port: a free TCP port on 127.0.0.1.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_prometheus DIR PORT: runs prometheus with DIR/prometheus.yml (storage DIR/data, log
# DIR/prometheus.log) on 127.0.0.1:PORT and waits until it is ready; sets PROM_PID.
start_prometheus() {
  local dir=$1 port=$2
  command -v prometheus >/dev/null ||
    fail "prometheus not found (Debian package prometheus; scripts/setup.sh installs it with KILN_TEST_TOOLS=1)"
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
  PROM_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && return 0
    kill -0 "$PROM_PID" 2>/dev/null || { cat "$dir/prometheus.log" >&2; fail "prometheus exited"; }
    sleep 0.2
  done
  tail -20 "$dir/prometheus.log" >&2
  fail "prometheus not ready after 20 s"
}

# wait_for_scrape PORT JOB: waits until Prometheus on 127.0.0.1:PORT has scraped JOB's target (up is
# 1). Ready is not scraping: Prometheus hands discovered targets to its scrapers in batches every
# 5 seconds, so traffic sent right after start can end before the first scrape and show no rate.
wait_for_scrape() {
  local port=$1 job=$2
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=up{job=\"$job\"} == 1" 2>/dev/null |
      grep -q '"value"' && return 0
    sleep 0.2
  done
  fail "Prometheus did not scrape job '$job' within 30 s"
}
