#!/usr/bin/env bash
# End to end on a real dataset: kiln run fetches SpamAssassin, splits, trains, evaluates; then
# evaluate and predict through the saved artifact.
set -euo pipefail
KILN="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$KILN" -q run --dataset spamassassin --epochs 3 --out "$tmp/run" >"$tmp/run.out" 2>"$tmp/run.err" \
  || { cat "$tmp/run.err"; fail "kiln run failed"; }
grep -q "artifact: $tmp/run/model" "$tmp/run.out" || fail "kiln run did not print the artifact path"
acc="$(awk '/^ *accuracy/ {print $2}' "$tmp/run.out")"
awk -v a="$acc" 'BEGIN { exit !(a > 0.85) }' || fail "accuracy $acc on SpamAssassin is too low"

csv="$("$KILN" data fetch spamassassin)"
head -c 200000 "$csv" >/dev/null
"$KILN" prepare --input "$csv" --out "$tmp/prep" --seed 7 >/dev/null
"$KILN" evaluate "$tmp/run/model" --data "$tmp/prep/test.csv" --json "$tmp/eval.json" >/dev/null
/usr/bin/python3 -c "
import json,sys
m=json.load(open('$tmp/eval.json'))
assert m['n'] > 1000 and m['accuracy'] > 0.85, m['accuracy']
assert len(m['labels']) == 5
" || fail "evaluate metrics"
n="$("$KILN" predict "$tmp/run/model" --input "$tmp/prep/test.csv" --format csv | wc -l)"
rows="$(/usr/bin/python3 -c "import csv; csv.field_size_limit(1 << 30); print(sum(1 for _ in csv.DictReader(open('$tmp/prep/test.csv'))))")"
[[ "$n" == "$rows" ]] || fail "predict printed $n lines for $rows rows"
echo "run integration: all checks passed"
