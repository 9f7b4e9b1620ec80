#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (packages, build) and runs Kiln's whole test suite:
# unit tests, CLI tests, integration tests (real datasets from package registries), and each fuzz
# target for 30 seconds when clang is present.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KILN_TEST_TOOLS=1 KILN_BUILD_ALL=1 bash scripts/setup.sh
# setup.sh installed every reference tool the tests compare against: a missing one is a failure here,
# not a skip (tests/lib/require_tools.sh, tests/lib/require_tools.h).
export KILN_REQUIRE_TOOLS=1
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"

ctest --test-dir build --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" --timeout 1500

if command -v clang++ >/dev/null 2>&1 && [[ "${KILN_SKIP_FUZZ:-0}" != 1 ]]; then
  bash scripts/fuzz.sh 30
fi
