// Tests that compare against a reference tool (promtool, python3, ...): where the tools are expected
// — CI (CI set) or KILN_REQUIRE_TOOLS=1, which scripts/test.sh sets after installing them — a
// missing tool fails the test; elsewhere it is skipped with a message naming what is missing.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <string>

namespace kiln::testing {

/// True in CI (CI set, not "0"/"false") or with KILN_REQUIRE_TOOLS=1 (tests/lib/require_tools.sh agrees).
inline bool tools_required() {
  const char* req = std::getenv("KILN_REQUIRE_TOOLS");
  if (req && std::string(req) == "1") return true;
  const char* ci = std::getenv("CI");
  if (!ci || !*ci) return false;
  std::string v(ci);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v != "0" && v != "false";
}

inline std::string missing_tool_message(const std::string& what, const std::string& package) {
  return what + " not found (Debian package " + package + "); install it with 'bash scripts/setup.sh' and " +
         "KILN_TEST_TOOLS=1 (scripts/test.sh does both), or apt-get install " + package;
}

}  // namespace kiln::testing

/// In a TEST body: unless `available`, fail (tools required) or skip, naming WHAT and its PACKAGE.
#define KILN_REQUIRE_TOOL(available, what, package)                                                   \
  do {                                                                                                \
    if (!(available)) {                                                                               \
      if (::kiln::testing::tools_required()) {                                                        \
        FAIL() << ::kiln::testing::missing_tool_message(what, package)                                \
               << " (CI and KILN_REQUIRE_TOOLS=1 require it)";                                        \
      }                                                                                               \
      GTEST_SKIP() << ::kiln::testing::missing_tool_message(what, package);                           \
    }                                                                                                 \
  } while (0)
