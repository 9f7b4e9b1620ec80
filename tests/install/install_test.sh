#!/usr/bin/env bash
# Kiln as a library: `cmake --install` of this build into a temporary prefix puts every module's
# library, the public headers, the binaries and the CMake package in place; a project outside the
# tree (tests/install/example) then finds it with find_package(Kiln), links kiln::data and
# kiln::text (no LibTorch), builds, and prints what TF-IDF learned from a small CSV.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD="$1"
SRC="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
prefix="$tmp/prefix"

cmake --install "$BUILD" --prefix "$prefix" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log" >&2; fail "cmake --install $BUILD failed"; }

# Every module (a kiln_module() call in src/*/CMakeLists.txt): its library, its export, its headers.
config="$(find "$prefix" -name KilnConfig.cmake)"
[[ -n "$config" ]] || fail "no KilnConfig.cmake under $prefix"
cmakedir="$(dirname "$config")"
for f in KilnConfigVersion.cmake KilnTargets.cmake; do
  [[ -f "$cmakedir/$f" ]] || fail "$f not installed next to KilnConfig.cmake"
done
modules="$(sed -n 's/^[[:space:]]*kiln_module(\([a-z0-9_]*\).*/\1/p' "$SRC"/src/*/CMakeLists.txt)"
[[ -n "$modules" ]] || fail "found no kiln_module() call under $SRC/src"
for m in $modules; do
  [[ -n "$(find "$prefix" -name "libkiln_$m.a")" ]] || fail "module $m: libkiln_$m.a not installed"
  grep -q "^add_library(kiln::$m STATIC IMPORTED)" "$cmakedir/KilnTargets.cmake" || fail "module $m: kiln::$m not exported"
  if [[ -d "$SRC/include/kiln/$m" ]]; then
    for h in $(cd "$SRC/include" && find "kiln/$m" -type f); do
      [[ -f "$prefix/include/$h" ]] || fail "header $h not installed"
    done
  fi
done
# Build-tree helpers and paths stay out of the package.
! grep -l "kiln_torch_pch" "$cmakedir"/*.cmake || fail "the build-only target kiln_torch_pch leaked into the export"
! grep -lF -e "$(cd "$SRC" && pwd -P)/" -e "$(cd "$BUILD" && pwd -P)/" "$cmakedir"/*.cmake \
  || fail "the installed package names the source or build tree"

# The binaries: the front binary runs, and forwards model verbs to the kiln-ml installed next to it.
"$prefix/bin/kiln" version >"$tmp/version.txt" || fail "installed kiln version failed"
grep -q "^kiln " "$tmp/version.txt" || { cat "$tmp/version.txt"; fail "installed kiln version printed no version"; }
"$prefix/bin/kiln" train --help >"$tmp/train-help.txt" 2>&1 || { cat "$tmp/train-help.txt"; fail "installed kiln train --help"; }
grep -q -- "--resume" "$tmp/train-help.txt" || fail "installed kiln did not reach kiln-ml for train --help"
# kiln-ml loads the empty stand-ins installed for LibTorch's unused libraries, when the build made them.
if [[ -d "$BUILD/torch-unused-libs" ]] && ls "$BUILD/torch-unused-libs" | grep -q .; then
  ldd "$prefix/bin/kiln-ml" >"$tmp/ldd.txt"  # a file, not a pipe: grep -q would cut ldd off (pipefail)
  for f in "$BUILD"/torch-unused-libs/*; do
    soname="$(basename "$f")"
    grep -q "$soname => $prefix/.*/torch-unused-libs/$soname" "$tmp/ldd.txt" \
      || { grep "$soname" "$tmp/ldd.txt"; fail "installed kiln-ml does not load the stand-in for $soname"; }
  done
fi

# The example project, built against the prefix only.
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$tmp"  # the prefix moves each run: hash paths relative to it
fi
cmake -S "$SRC/tests/install/example" -B "$tmp/example" "${gen[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 \
  || { cat "$tmp/configure.log" >&2; fail "configuring the example against the installed Kiln failed"; }
cmake --build "$tmp/example" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; fail "building the example failed"; }
exe="$tmp/example/tfidf_example"
ldd "$exe" >"$tmp/ldd-example.txt"
if grep -q libtorch "$tmp/ldd-example.txt"; then
  cat "$tmp/ldd-example.txt" >&2
  fail "the example links LibTorch, though kiln::data and kiln::text do not need it"
fi

printf 'text,label\nthe cat sat,pets\nthe dog ran,pets\n"the market fell",news\n' >"$tmp/data.csv"
"$exe" "$tmp/data.csv" >"$tmp/out.txt" || { cat "$tmp/out.txt"; fail "the example failed"; }
cat >"$tmp/want.txt" <<'TXT'
rows 3, labels 2, nnz 9
vocabulary cat=1.6931 dog=1.6931 fell=1.6931 market=1.6931 ran=1.6931 sat=1.6931 the=1.0000
TXT
diff "$tmp/want.txt" "$tmp/out.txt" >&2 || fail "the example's output differs (want, got above)"
echo "install: all checks passed"
