#include "child_process.h"

#include <gtest/gtest.h>

#include <chrono>

#include "kiln/core/error.h"

using kiln::data::ChildOptions;
using kiln::data::run_child;

TEST(RunChild, CapturesStdoutStderrAndExitCode) {
  const auto r = run_child({"sh", "-c", "echo out; echo oops >&2; exit 3"}, ChildOptions{});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "oops\n");
}

TEST(RunChild, ArgumentsAreNotInterpretedByAShell) {
  const auto r = run_child({"echo", "a;b", "$(x)", "*"}, ChildOptions{});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "a;b $(x) *\n");
}

TEST(RunChild, RunsInTheGivenDirectory) {
  ChildOptions o;
  o.cwd = "/";
  const auto r = run_child({"pwd"}, o);
  EXPECT_EQ(r.out, "/\n");
}

TEST(RunChild, TimeoutKillsTheChildAndItsChildren) {
  ChildOptions o;
  o.timeout_s = 1;
  const auto start = std::chrono::steady_clock::now();
  // The grandchild `sleep` holds the pipes open: only killing the process group ends the wait.
  const auto r = run_child({"sh", "-c", "echo started >&2; sleep 30 & sleep 30"}, o);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + 9);
  EXPECT_EQ(r.err, "started\n");
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(RunChild, MissingProgramIsIoErrorNamingIt) {
  try {
    (void)run_child({"kiln-no-such-program-xyz", "arg"}, ChildOptions{});
    FAIL() << "expected IoError";
  } catch (const kiln::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("'kiln-no-such-program-xyz' was not found in PATH"),
              std::string::npos)
        << e.what();
  }
}

TEST(RunChild, StderrKeepsTheLastBytes) {
  ChildOptions o;
  o.max_stderr = 16;
  const auto r = run_child({"sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line$i >&2; i=$((i+1)); done"}, o);
  EXPECT_EQ(r.err.size(), 16u);
  EXPECT_EQ(r.err.substr(r.err.size() - 9), "line1999\n");
}

TEST(LastLines, KeepsTheLastNonEmptyLines) {
  EXPECT_EQ(kiln::data::last_lines("a\n\nb\nc\n\n", 2), "b\nc");
  EXPECT_EQ(kiln::data::last_lines("", 3), "");
}
