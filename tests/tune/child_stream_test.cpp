#include "kiln/tune/child_stream.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "kiln/core/error.h"

namespace kiln::tune {
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

ChildStreamResult sh(const std::string& script, const LineHandler& h, ChildStreamOptions o = {},
                     const std::atomic<bool>* cancel = nullptr) {
  return run_streaming({"/bin/sh", "-c", script}, o, h, cancel);
}

TEST(ChildStream, StreamsLinesOfBothStreamsAndExitCode) {
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

TEST(ChildStream, LinesArriveWhileTheChildRuns) {
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

TEST(ChildStream, HandlerReturningFalseStopsTheWholeProcessGroup) {
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

TEST(ChildStream, TimeoutKillsAChildThatIgnoresSigterm) {
  ChildStreamOptions o;
  o.timeout_s = 0.3;
  o.kill_grace_s = 0.2;
  const auto r = sh("trap '' TERM; echo started; sleep 20 & wait; sleep 20", {}, o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_LT(r.seconds, 3);
}

TEST(ChildStream, CancelFlagStopsTheChild) {
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

TEST(ChildStream, EnvironmentAndWorkingDirectory) {
  Lines l;
  ChildStreamOptions o;
  o.cwd = "/tmp";
  o.env = {{"KILN_PARAM_LR", "0.001"}, {"HOME", "/nowhere"}};
  const auto r = sh("pwd; echo $KILN_PARAM_LR $HOME; test -n \"$PATH\" && echo has-path", l.handler(), o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(l.out, (std::vector<std::string>{"/tmp", "0.001 /nowhere", "has-path"}));
}

TEST(ChildStream, MissingProgramOrDirectoryIsAnIoErrorNamingIt) {
  try {
    (void)run_streaming({"kiln-no-such-program-xyz", "--flag"}, {}, {});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("'kiln-no-such-program-xyz' was not found in PATH"), std::string::npos) << e.what();
  }
  try {
    (void)run_streaming({"/bin/no/such/program"}, {}, {});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot run `/bin/no/such/program`"), std::string::npos) << e.what();
  }
  ChildStreamOptions o;
  o.cwd = "/no/such/dir";
  EXPECT_THROW((void)run_streaming({"/bin/true"}, o, {}), IoError);
}

TEST(ChildStream, ManyLinesAndConcurrentChildren) {
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

}  // namespace
}  // namespace kiln::tune
