# Sourced by tests that compare against a reference tool (python3-sklearn, promtool, PostgreSQL,
# strace, ...). Where the tools are expected — CI (CI set) or KILN_REQUIRE_TOOLS=1, which
# scripts/test.sh sets after installing them — a missing tool fails the test; elsewhere the test
# may skip what needs it, saying what is missing.

# tools_required: true (0) in CI or with KILN_REQUIRE_TOOLS=1.
tools_required() {
  [[ "${KILN_REQUIRE_TOOLS:-0}" == 1 ]] && return 0
  local ci="${CI:-}"
  [[ -n "$ci" && "$ci" != 0 && "${ci,,}" != false ]]
}

# missing_tool WHAT PACKAGE [SKIPPED]: WHAT (e.g. "promtool") from Debian package PACKAGE is not
# installed. Exits 1 where tools are required; otherwise prints "SKIP: ..." naming SKIPPED (what is
# not checked) and returns, so the caller skips that part (or exits 77: CTest's "skipped").
missing_tool() {
  local what="$1" package="$2" skipped="${3:-}"
  local pkg_word=package
  [[ "$package" == *" "* ]] && pkg_word=packages
  local fix="install it with 'bash scripts/setup.sh' and KILN_TEST_TOOLS=1 (scripts/test.sh does both), or apt-get install $package"
  if tools_required; then
    echo "FAIL: $what not found (Debian $pkg_word $package); CI and KILN_REQUIRE_TOOLS=1 require it: $fix" >&2
    exit 1
  fi
  echo "SKIP: $what not found (Debian $pkg_word $package)${skipped:+; not checked: $skipped}; $fix" >&2
}
