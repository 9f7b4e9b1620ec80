#!/usr/bin/env bash
# Runs every shell example in README.md and docs/*.md (fenced blocks marked ```sh; synopses and
# outputs are ```text) as a user would, in a scratch directory that holds the repository's configs/,
# deploy/ and build/, with `kiln` on PATH. Each block runs as one bash script (errexit, pipefail), in
# document order, so later examples see what earlier ones made (README's `./build/kiln run` writes the
# run directory its serving example serves). Rewrites, all mechanical and printed:
#   - `bash scripts/setup.sh` / `bash scripts/test.sh`: skipped (this test runs inside the latter);
#   - long-running servers (`kiln serve`, `prometheus`): started in the background on a free port,
#     waited for (ready endpoint), and stopped at the end of their block; `:8080` becomes that port;
#   - `kiln tune ... --trials N`: N becomes 2 (the flags, paths and study still have to be right).
# A block fails the test when any command in it fails; the message names FILE:LINE of the block.
set -euo pipefail
KILN="$1"
SRC="${KILN_SOURCE_DIR:?KILN_SOURCE_DIR must point at the source tree}"
BUILD="$(cd "$(dirname "$KILN")" && pwd)"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$SRC/tests/lib/prometheus.sh"  # free_port

work="$tmp/work"
mkdir -p "$work" "$tmp/bin"
ln -s "$SRC/configs" "$work/configs"
ln -s "$SRC/deploy" "$work/deploy"
ln -s "$BUILD" "$work/build"
ln -s "$BUILD/kiln" "$tmp/bin/kiln"
ln -s "$BUILD/kiln-ml" "$tmp/bin/kiln-ml"

# extract FILE: prints "LINE<TAB>command" for each logical line of each ```sh block (continuations
# joined), and "LINE<TAB>#END" after each block.
extract() {
  awk -v OFS='\t' '
    /^```sh[ \t]*$/ { inb = 1; start = NR; next }
    /^```/ && inb { if (cur != "") print cl, cur; print start, "#END"; inb = 0; cur = ""; next }
    inb {
      line = $0
      if (cur == "") cl = NR
      if (line ~ /\\$/) { sub(/\\$/, "", line); cur = cur line; next }
      cur = cur line
      if (cur !~ /^[ \t]*(#|$)/) print cl, cur
      cur = ""
    }' "$1"
}

# Helpers the rewritten commands call.
cat >"$tmp/prelude.sh" <<'EOF'
set -euo pipefail
bg_pids=()
# start_server READY_URL LOG CMD...: runs CMD in the background until READY_URL answers 2xx.
start_server() {
  local url=$1 log=$2; shift 2
  "$@" >"$log" 2>&1 &
  bg_pids+=($!)
  echo $! >>"$BG_PID_FILE"
  for _ in $(seq 1 300); do
    curl -fsS "$url" >/dev/null 2>&1 && return 0
    kill -0 "${bg_pids[-1]}" 2>/dev/null || { tail -20 "$log" >&2; echo "server exited: $*" >&2; return 1; }
    sleep 0.1
  done
  tail -20 "$log" >&2
  echo "server not ready after 30 s: $*" >&2
  return 1
}
stop_servers() { for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap stop_servers EXIT
EOF

# rewrite LINE: the command as this test runs it (see the header).
rewrite() {
  local cmd=$1 port=$2 prom_port=$3
  cmd="${cmd//bash scripts\/setup.sh && /}"
  if [[ "$cmd" =~ ^[[:space:]]*bash\ scripts/(setup|test)\.sh ]]; then echo ":"; return; fi
  cmd="${cmd//localhost:8080/127.0.0.1:$port}"
  cmd="${cmd//127.0.0.1:8080/127.0.0.1:$port}"
  if [[ "$cmd" =~ ^[[:space:]]*kiln\ serve ]]; then
    cmd="${cmd%%#*}"
    cmd="${cmd//--port 8080/--port $port}"
    [[ "$cmd" == *"--port"* ]] || cmd="$cmd --port $port"
    echo "start_server http://127.0.0.1:$port/readyz \"\$SCRATCH/serve-$port.log\" $cmd"
    return
  fi
  if [[ "$cmd" =~ ^[[:space:]]*prometheus\  ]]; then
    cmd="${cmd%%#*}"
    echo "start_server http://127.0.0.1:$prom_port/-/ready \"\$SCRATCH/prometheus.log\" $cmd" \
      "--web.listen-address=127.0.0.1:$prom_port --storage.tsdb.path=\"\$SCRATCH/prometheus-data\""
    return
  fi
  if [[ "$cmd" =~ ^[[:space:]]*kiln\ tune ]]; then
    cmd="$(sed -E 's/--trials [0-9]+/--trials 2/' <<<"$cmd")"
  fi
  echo "$cmd"
}

blocks=0
commands=0
for doc in "$SRC/README.md" "$SRC"/docs/*.md; do
  rel="${doc#"$SRC"/}"
  script=""
  start=""
  port="$(free_port)"
  prom_port="$(free_port)"
  while IFS=$'\t' read -r line cmd; do
    if [[ "$cmd" == "#END" ]]; then
      [[ -n "$script" ]] || continue
      blocks=$((blocks + 1))
      printf 'source %q\n%s' "$tmp/prelude.sh" "$script" >"$tmp/block.sh"
      echo "== $rel:$start" >&2
      sed 's/^/   /' <<<"$script" >&2
      if ! (cd "$work" && PATH="$tmp/bin:$PATH" SCRATCH="$tmp" BG_PID_FILE="$tmp/bg.pids" \
              timeout 900 bash "$tmp/block.sh" >"$tmp/block.out" 2>"$tmp/block.err"); then
        tail -30 "$tmp/block.out" >&2
        tail -30 "$tmp/block.err" >&2
        fail "the example at $rel:$start failed (fix the example or the code it shows)"
      fi
      script=""
      port="$(free_port)"
      continue
    fi
    [[ -n "$script" ]] || start=$line
    script+="$(rewrite "$cmd" "$port" "$prom_port")"$'\n'
    commands=$((commands + 1))
  done < <(extract "$doc")
done
if [[ -f "$tmp/bg.pids" ]]; then while read -r p; do pids+=("$p"); done <"$tmp/bg.pids"; fi
((blocks >= 8)) || fail "found only $blocks example blocks; the extractor or the docs changed"
echo "docs examples: $blocks blocks, $commands commands passed"
