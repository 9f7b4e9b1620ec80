#!/usr/bin/env bash
# Sets up a Debian 12 machine for Kiln and builds it. Idempotent: re-running installs nothing new
# and rebuilds only what changed.
#   KILN_BUILD_DIR   build directory (default: build)
#   KILN_BUILD_TYPE  CMake build type (default: Release)
#   KILN_SKIP_APT=1  skip package installation (packages already present)
#   KILN_TEST_TOOLS=1 also install the reference tools the tests and benchmarks compare against
#   KILN_BUILD_ALL=1 build every target (tests, load client), not only build/kiln and build/kiln-ml
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR="${KILN_BUILD_DIR:-build}"
BUILD_TYPE="${KILN_BUILD_TYPE:-Release}"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Packages Kiln builds and runs with.
PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git ca-certificates
  libtorch-dev libgloo-dev libopenblas0-pthread libopenblas-dev
  libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libutf8proc-dev libsqlite3-dev libpq-dev libcpp-httplib-dev
  libpng-dev libjpeg62-turbo-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
)
# Reference tools used by tests (goldens) and benchmarks. scripts/test.sh makes a missing one a test
# failure (KILN_REQUIRE_TOOLS=1): python3 + sklearn/scipy (tfidf, safetensors, data generators),
# prometheus (promtool, the Prometheus tests), postgresql (study storage), strace (doctor), curl
# (serving tests), chromium (report pages in a browser), python3-onnx (kiln export checker); fasttext,
# hyperfine, wrk, gunicorn/flask, optuna, pandas, plotly for bench/.
TEST_PACKAGES=(python3 python3-sklearn python3-torch python3-torchvision strace python3-pandas python3-numpy python3-scipy hyperfine prometheus curl postgresql python3-optuna
  python3-flask gunicorn wrk fasttext chromium python3-plotly python3-onnx)

missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || printf '%s\n' "$p"
  done
}

if [[ "${KILN_SKIP_APT:-0}" != 1 ]]; then
  want=("${PACKAGES[@]}")
  [[ "${KILN_TEST_TOOLS:-0}" == 1 ]] && want+=("${TEST_PACKAGES[@]}")
  # npm fetches datasets; a Node.js from another source may already provide it.
  command -v npm >/dev/null 2>&1 || want+=(npm)
  mapfile -t todo < <(missing_packages "${want[@]}")
  if ((${#todo[@]})); then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    say "installing ${#todo[@]} Debian packages: ${todo[*]}"
    $SUDO apt-get update -qq || die "apt-get update failed; check the network and /etc/apt/sources.list"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${todo[@]}" >/dev/null \
      || die "apt-get install failed for: ${todo[*]}"
  else
    say "all Debian packages present"
  fi
fi

# LibTorch on the system BLAS: the reference BLAS makes training ~40x slower. Require OpenBLAS.
blas="$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)"
if [[ "$blas" != *openblas* ]]; then
  die "libblas.so.3 resolves to '${blas:-nothing}', not OpenBLAS; fix with:
  sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"
fi
say "libblas.so.3 -> $blas"

# ccache makes rebuilds (and repeated CI runs on the same machine) fast; PCH needs this sloppiness.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Paths relative to the checkout: a fresh clone elsewhere (CI) still hits the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"

GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [[ -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" >/dev/null
else
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${KILN_CMAKE_ARGS:-} >/dev/null
fi
jobs="$(nproc 2>/dev/null || echo 2)"
# The main job needs only the two binaries; scripts/test.sh builds the rest (KILN_BUILD_ALL=1).
targets=(--target kiln kiln-ml)
[[ "${KILN_BUILD_ALL:-0}" == 1 ]] && targets=()
say "building ${targets[*]:-everything} in $BUILD_DIR with $jobs jobs"
cmake --build "$BUILD_DIR" -j "$jobs" "${targets[@]}"
say "done: $BUILD_DIR/kiln"
