# Shared by the bench/*.sh training benchmarks (sourced, not run). Expects `set -euo pipefail`.
#   KILN     kiln binary (default ./build/kiln, relative to where the script was started)
#   THREADS  threads for every system (default 2)
#   PY       Python with scikit-learn (default /usr/bin/python3: Debian's python3-sklearn 1.2)

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KILN=${KILN:-./build/kiln}
THREADS=${THREADS:-2}
PY=${PY:-/usr/bin/python3}
LIB="$BENCH_ROOT/bench/lib"

die() { echo "error: $*" >&2; exit 2; }

# Resolves KILN against the starting directory, then checks it runs.
require_kiln() {
  if [[ $KILN != /* ]]; then
    if [[ -x $KILN ]]; then KILN="$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")"
    else KILN=$(command -v "$KILN" || true); fi
  fi
  [[ -n $KILN && -x $KILN ]] || die "kiln binary not found (set KILN=path/to/kiln; build with cmake --build build)"
  "$KILN" train --help > /dev/null 2>&1 || die "$KILN has no working 'train' verb"
}

require_python() {
  [[ -x $PY ]] || die "$PY not found (apt-get install -y --no-install-recommends python3)"
  "$PY" -c 'import sklearn, numpy' 2> /dev/null ||
    die "$PY cannot import scikit-learn (apt-get install -y --no-install-recommends python3-sklearn)"
}

require_fasttext() {
  command -v fasttext > /dev/null ||
    die "fasttext CLI not found (apt-get install -y --no-install-recommends fasttext)"
}

# fetch_dataset NAME -> prints the cached CSV path.
fetch_dataset() {
  local path
  path=$("$KILN" -q data fetch "$1" | tail -n 1) || die "kiln data fetch $1 failed"
  [[ -f $path ]] || die "kiln data fetch $1 printed '$path', which is not a file"
  echo "$path"
}

# split_dataset CSV DIR [SEED]: stratified 70/10/20 train/val/test, seed 42 unless given (same split
# for every system).
split_dataset() {
  "$KILN" -q prepare --input "$1" --out "$2" --test-size 0.2 --val-size 0.1 --seed "${3:-42}" \
    --on-bad-utf8 replace --rare-classes train-only > "$2.log" 2>&1 ||
    { cat "$2.log" >&2; die "kiln prepare failed on $1"; }
}

# timed VAR CMD...: runs CMD, stores its wall seconds in VAR, returns CMD's status.
timed() {
  local __var=$1; shift
  local t0=$EPOCHREALTIME rc=0
  "$@" || rc=$?
  local t1=$EPOCHREALTIME
  printf -v "$__var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
  return "$rc"
}

# record OUT.jsonl JSON_SCORE key=value...: appends the score object plus the given fields
# (numbers stay numbers, anything else is a string).
record() {
  local out=$1 score=$2; shift 2
  "$PY" - "$score" "$@" >> "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    try:
        v = float(v) if any(c in v for c in ".e") else int(v)
    except ValueError:
        pass
    d[k] = v
print(json.dumps(d))
PY
}

# count_rows CSV... -> data rows (records, not lines: texts may hold newlines).
count_rows() {
  "$PY" -c 'import csv, sys
csv.field_size_limit(sys.maxsize)
print(sum(sum(1 for _ in csv.DictReader(open(p, newline="", encoding="utf-8"))) for p in sys.argv[1:]))' "$@"
}
