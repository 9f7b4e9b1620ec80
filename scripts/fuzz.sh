#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for N seconds (default 30),
# as many at once as there are cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-30}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DKILN_FUZZ=ON -DKILN_BUILD_TESTS=OFF >/dev/null
fi
cmake --build build-fuzz -j "$(nproc)" --target kiln_fuzzers
shopt -s nullglob
targets=(build-fuzz/fuzz/fuzz_*)
((${#targets[@]})) || { echo "fuzz: no targets built" >&2; exit 1; }
# The targets run side by side, one per core: each is single-threaded, and CI waits for the slowest.
lanes="$(nproc 2>/dev/null || echo 2)"
pids=() names=()
finish() {  # waits for the oldest running target and reports it
  local pid="${pids[0]}" name="${names[0]}"
  pids=("${pids[@]:1}") names=("${names[@]:1}")
  if ! wait "$pid"; then
    tail -40 "build-fuzz/$name.log"
    echo "fuzz: $name found a failure" >&2
    kill "${pids[@]}" 2>/dev/null || true
    exit 1
  fi
  echo "fuzz: $name: $(grep -E "^Done|#[0-9]+ *DONE" "build-fuzz/$name.log" | tail -1 || true)"
}
for t in "${targets[@]}"; do
  name="$(basename "$t")"
  corpus="build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  seeds="fuzz/seeds/${name#fuzz_}"
  echo "fuzz: $name for ${secs}s"
  args=("$corpus")
  [[ -d "$seeds" ]] && args+=("$seeds")
  "$t" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "${args[@]}" 2>"build-fuzz/$name.log" &
  pids+=("$!") names+=("$name")
  ((${#pids[@]} < lanes)) || finish
done
while ((${#pids[@]})); do finish; done
echo "fuzz: all targets clean"
