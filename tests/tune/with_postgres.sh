#!/usr/bin/env bash
# Runs CMD... against a throwaway PostgreSQL server, then stops it and deletes its files:
#   tests/tune/with_postgres.sh ./build/tests/kiln_tune_tests --gtest_filter='Postgres*'
# The server listens on 127.0.0.1 on a free port, in a temporary directory; CMD sees
#   KILN_TEST_POSTGRES_URL=postgresql://kiln:<password>@127.0.0.1:<port>/kiln_test
# As root (PostgreSQL refuses to run as root) the server runs as the `postgres` system user.
# Exit status: CMD's; 77 (CTest: skipped) when PostgreSQL is not installed, 1 instead in CI or with
# KILN_REQUIRE_TOOLS=1 (tests/lib/require_tools.sh); 1 when it won't start.
#   PG_BIN  directory of initdb/pg_ctl (default: the newest /usr/lib/postgresql/*/bin)
set -euo pipefail

say() { printf 'with_postgres: %s\n' "$*" >&2; }
(($# > 0)) || { say "usage: $0 CMD [ARGS...]"; exit 2; }

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" || ! -x "$PG_BIN/pg_ctl" ]]; then
  source "$(dirname "${BASH_SOURCE[0]}")/../lib/require_tools.sh"
  missing_tool "PostgreSQL server binaries (initdb, pg_ctl; PG_BIN='${PG_BIN}')" postgresql "the PostgreSQL cases"
  exit 77
fi

as_server=()
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || { say "running as root but there is no 'postgres' user to run the server; apt-get install postgresql creates it"; exit 1; }
  command -v runuser >/dev/null || { say "runuser not found (util-linux)"; exit 1; }
  as_server=(runuser -u postgres --)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-pg.XXXXXX")
chmod 700 "$WORK"
if [[ ${#as_server[@]} -gt 0 ]]; then
  chown postgres: "$WORK"
  if ! "${as_server[@]}" test -w "$WORK"; then  # TMPDIR under a directory `postgres` cannot enter
    rm -rf "$WORK"
    WORK=$(mktemp -d /tmp/kiln-pg.XXXXXX)
    chmod 700 "$WORK"
    chown postgres: "$WORK"
  fi
fi
DATA="$WORK/data"
LOG="$WORK/server.log"
PASSWORD="kiln-$RANDOM$RANDOM"

# Runs a server-side command as the server's user, from a directory it may enter.
server() { (cd "$WORK" && "${as_server[@]}" "$@"); }

stop() {
  local rc=$?
  if [[ -f "$DATA/postmaster.pid" ]]; then
    server "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || say "pg_ctl stop failed; see $LOG"
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf '%s\n' "$PASSWORD" >"$WORK/pwfile"
[[ ${#as_server[@]} -gt 0 ]] && chown postgres: "$WORK/pwfile"
if ! server "$PG_BIN/initdb" -D "$DATA" -U kiln --pwfile="$WORK/pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1; then
  say "initdb failed:"; cat "$WORK/initdb.log" >&2; exit 1
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
started=0
for attempt in 1 2 3 4 5 6 7 8; do
  port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
  port_in_use "$port" && continue
  # Small settings: CI machines have 2 cores and little shared memory.
  if server "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $port \
      -c unix_socket_directories=$WORK -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
      -c shared_buffers=16MB -c max_connections=60" start >/dev/null 2>&1; then
    started=1
    break
  fi
  say "server did not start on port $port (attempt $attempt); retrying on another port"
done
if ((started == 0)); then
  say "PostgreSQL did not start; its log:"; cat "$LOG" >&2 2>/dev/null || true; exit 1
fi

server "$PG_BIN/createdb" -h "$WORK" -p "$port" -U kiln kiln_test
export KILN_TEST_POSTGRES_URL="postgresql://kiln:$PASSWORD@127.0.0.1:$port/kiln_test"
say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $WORK)"
# In the background so that a signal stops CMD at once and the EXIT trap still stops the server.
set +e
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; exit 143' TERM
trap 'kill -INT "$child" 2>/dev/null; exit 130' INT
wait "$child"
rc=$?
set -e
exit "$rc"
