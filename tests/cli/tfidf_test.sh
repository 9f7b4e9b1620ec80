#!/usr/bin/env bash
# kiln tfidf against scikit-learn on a small CSV, plus the messages for bad flags.
# Usage: tfidf_test.sh /path/to/kiln
set -euo pipefail
KILN=${1:?usage: tfidf_test.sh /path/to/kiln}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/../lib/require_tools.sh"  # missing_tool

cat > "$TMP/in.csv" <<'CSV'
id,text,label
1,"The quick brown fox, the lazy dog.",a
2,"Café naïve résumé — déjà vu!",b
3,"我爱北京天安门",a
4,"ΟΔΟΣ ΣΟΦΟΣ and İstanbul",b
5,"emoji 😀 party 🎉 2023 3.14 snake_case",a
6,"the fox and the dog, again the fox",b
7,"",a
CSV

# The front binary starts without PostgreSQL's client library or TLS libraries (libpq is opened
# when a postgres:// study storage is, and report --server URL runs in kiln-ml): loading them
# added about 7 ms to every data verb.
if command -v ldd >/dev/null; then
  heavy=$(ldd "$KILN" | grep -E 'libpq|libssl|libcrypto|libgnutls|libkrb5|libldap' || true)
  [[ -z $heavy ]] || fail "kiln links libraries its data verbs never use: $heavy"
  # One C++ runtime: a shared library built on libstdc++ may load only where kiln itself uses the
  # shared libstdc++ (KILN_STATIC_FRONT links it and every C++ library in).
  if command -v readelf >/dev/null && ! readelf -d "$KILN" | grep -q 'NEEDED.*libstdc++'; then
    while read -r lib; do
      [[ -f $lib ]] || continue
      if ldd "$lib" 2>/dev/null | grep -q 'libstdc++'; then fail "kiln has libstdc++ linked in but loads $lib, which loads another"; fi
    done < <(ldd "$KILN" | awk '$2 == "=>" {print $3}')
  fi
fi

# Bad flags: exit 2 and a message naming the flag.
expect_error() {
  local want=$1; shift
  set +e
  out=$("$KILN" tfidf --input "$TMP/in.csv" --out "$TMP/bad" "$@" 2>&1)
  rc=$?
  set -e
  [[ $rc -eq 2 ]] || fail "$* exited $rc, want 2 ($out)"
  [[ $out == *"$want"* ]] || fail "$*: message '$out' lacks '$want'"
}
expect_error "--max-df must be a proportion like 0.5 (contains '.') or a document count like 2, got 'lots'" --max-df lots
expect_error "tfidf.max_df must be in (0, 1] or an integer count >= 1, got 1.5" --max-df 1.5
expect_error "tfidf.min_df must be in [0, 1] or an integer count >= 1, got 0" --min-df 0
expect_error "--ngram-range must be MIN,MAX with 1 <= MIN <= MAX (e.g. 1,2), got '2,1'" --ngram-range 2,1
expect_error "--norm must be one of l2, l1, none, got 'l3'" --norm l3
expect_error "--analyzer must be one of word, char, char_wb, got 'words'" --analyzer words
expect_error "--dtype must be float32 or float64, got 'half'" --dtype half
expect_error "--matrix-format must be npz (scipy.sparse.load_npz) or mtx (Matrix Market text), got 'csv'" --matrix-format csv
expect_error "--hashing has no vocabulary to prune" --hashing 1024 --min-df 2
expect_error "cjk applies to the word analyzer only" --cjk --analyzer char
[[ ! -e "$TMP/bad" ]] || fail "a failed run left $TMP/bad behind"

if ! /usr/bin/python3 -c 'import sklearn, scipy' 2>/dev/null; then
  missing_tool "/usr/bin/python3 with sklearn and scipy" "python3-sklearn python3-scipy" \
    "the comparison with scikit-learn (only flag errors were checked)"
  exit 77
fi

compare() {  # compare DIR then sklearn kwargs as Python literal
  local dir=$1 kwargs=$2
  /usr/bin/python3 - "$TMP/in.csv" "$dir" "$kwargs" <<'PY'
import ast, csv, sys
import os
import numpy as np, scipy.io, scipy.sparse
from sklearn.feature_extraction.text import TfidfVectorizer, HashingVectorizer
path, out, kwargs = sys.argv[1], sys.argv[2], ast.literal_eval(sys.argv[3])
docs = [r["text"] for r in csv.DictReader(open(path, encoding="utf-8", newline=""))]
mode = kwargs.pop("mode", "tfidf")
if isinstance(kwargs.get("dtype"), str):
    kwargs["dtype"] = getattr(np, kwargs["dtype"])
if mode == "hashing":
    X = HashingVectorizer(**kwargs).transform(docs)
    vocab = None
else:
    v = TfidfVectorizer(**kwargs)
    X = v.fit_transform(docs)
    vocab = list(v.get_feature_names_out())
# matrix.npz by default (exactly one of the two files), matrix.mtx with --matrix-format mtx
npz, mtx = os.path.exists(f"{out}/matrix.npz"), os.path.exists(f"{out}/matrix.mtx")
assert npz != mtx, f"expected one of matrix.npz and matrix.mtx in {out}: {os.listdir(out)}"
if npz:
    got = scipy.sparse.load_npz(f"{out}/matrix.npz")
    assert got.format == "csr" and got.indices.dtype == np.int32 and got.indptr.dtype == np.int32, got
    assert got.dtype == kwargs.get("dtype", np.float32), (got.dtype, kwargs)  # kiln's default is float32
    assert got.has_sorted_indices, "columns not ascending within a row"
else:
    got = scipy.io.mmread(f"{out}/matrix.mtx").tocsr()
assert got.shape == X.shape, (got.shape, X.shape)
diff = abs(got - X).max() if X.nnz or got.nnz else 0
assert diff <= 1e-6, f"max |kiln - sklearn| = {diff}"
if vocab is not None:
    mine = open(f"{out}/vocabulary.txt", encoding="utf-8").read().split("\n")[:-1]
    assert mine == vocab, (mine, vocab)
    idf = np.loadtxt(f"{out}/idf.txt", ndmin=1) if kwargs.get("use_idf", True) else None
    if idf is not None:
        assert np.allclose(idf, v.idf_, rtol=1e-6, atol=0), (idf, v.idf_)
PY
}

run() {
  local name=$1 kwargs=$2; shift 2
  "$KILN" tfidf --input "$TMP/in.csv" --out "$TMP/$name" "$@" > "$TMP/$name.log" || fail "kiln tfidf $* failed"
  grep -q "^tfidf: 7 docs" "$TMP/$name.log" || fail "$name: summary line missing: $(cat "$TMP/$name.log")"
  compare "$TMP/$name" "$kwargs" || fail "$name: differs from scikit-learn"
  echo "ok $name"
}
run default "{}"
run ngrams "{'ngram_range': (1, 2), 'sublinear_tf': True}" --ngram-range 1,2 --sublinear-tf
run char_wb "{'analyzer': 'char_wb', 'ngram_range': (2, 4), 'norm': 'l1'}" --analyzer char_wb --ngram-range 2,4 --norm l1
run df "{'min_df': 2, 'max_df': 0.9, 'binary': True}" --min-df 2 --max-df 0.9 --binary
run maxf "{'max_features': 4, 'use_idf': False, 'lowercase': False}" --max-features 4 --no-idf --no-lowercase
run f64b "{'dtype': 'float64', 'smooth_idf': False}" --dtype float64 --no-smooth-idf
run mtx "{'ngram_range': (1, 2)}" --ngram-range 1,2 --matrix-format mtx
run hashing "{'mode': 'hashing', 'n_features': 64}" --hashing 64 --no-idf
# --timings: one line on stderr with the read / fit_transform / write seconds (what
# bench/tfidf_vs_sklearn.sh parses); stdout keeps only the summary line.
"$KILN" --threads 1 tfidf --input "$TMP/in.csv" --out "$TMP/timed" --timings > "$TMP/timed.out" 2> "$TMP/timed.err" ||
  fail "--timings run failed: $(cat "$TMP/timed.err")"
grep -Eq '^timings: read [0-9.]+ s, fit_transform [0-9.]+ s, write [0-9.]+ s \(1 threads\); text [0-9.]+ MB, ' \
  "$TMP/timed.err" || fail "--timings line missing or changed: $(cat "$TMP/timed.err")"
! grep -q timings "$TMP/timed.out" || fail "--timings wrote to stdout: $(cat "$TMP/timed.out")"
"$KILN" tfidf --input "$TMP/in.csv" --out "$TMP/untimed" > /dev/null 2> "$TMP/untimed.err" || fail "untimed run failed"
! grep -q '^timings:' "$TMP/untimed.err" || fail "timings printed without --timings: $(cat "$TMP/untimed.err")"
echo "ok timings"
# Rerunning onto an earlier output replaces it; an unrelated non-empty directory is refused.
"$KILN" tfidf --input "$TMP/in.csv" --out "$TMP/default" > /dev/null || fail "rerun onto an earlier output failed"
mkdir -p "$TMP/other" && touch "$TMP/other/keep.txt"
set +e
out=$("$KILN" tfidf --input "$TMP/in.csv" --out "$TMP/other" 2>&1); rc=$?
set -e
[[ $rc -eq 2 && $out == *"is not the output of kiln tfidf"* ]] || fail "unrelated --out dir: rc=$rc $out"
[[ -e "$TMP/other/keep.txt" ]] || fail "unrelated --out dir was touched"
echo "PASS tfidf_test"
