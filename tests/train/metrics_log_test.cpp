#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "kiln/core/error.h"
#include "metrics_log.h"

namespace fs = std::filesystem;
using kiln::train::LogResume;
using kiln::train::MetricsLog;
using kiln::train::trim_log_for_resume;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_metrics_log_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST(MetricsLog, ResumeDropsRecordsAfterTheCheckpointAndATornLine) {
  // Epochs 1-2 finished (checkpoint at epoch 2); the run was killed in epoch 3, mid-record.
  const std::string log =
      "{\"type\":\"step\",\"epoch\":1,\"step\":1}\n"
      "{\"type\":\"epoch\",\"epoch\":1}\n"
      "{\"type\":\"warning\",\"message\":\"no epoch\"}\n"
      "{\"type\":\"step\",\"epoch\":2,\"step\":2}\n"
      "{\"type\":\"epoch\",\"epoch\":2}\n"
      "{\"type\":\"step\",\"epoch\":3,\"step\":3}\n"
      "{\"type\":\"step\",\"epoch\":3,\"st";
  const std::string kept = trim_log_for_resume(log, LogResume{"epoch", 2});
  EXPECT_EQ(kept,
            "{\"type\":\"step\",\"epoch\":1,\"step\":1}\n"
            "{\"type\":\"epoch\",\"epoch\":1}\n"
            "{\"type\":\"warning\",\"message\":\"no epoch\"}\n"
            "{\"type\":\"step\",\"epoch\":2,\"step\":2}\n"
            "{\"type\":\"epoch\",\"epoch\":2}\n");
  // By step, as pretraining resumes; a torn line glued to the next record is no record.
  EXPECT_EQ(trim_log_for_resume("{\"step\":1}\n{\"step\":2}{\"step\":3}\n{\"step\":4}\n", LogResume{"step", 3}),
            "{\"step\":1}\n");
  EXPECT_EQ(trim_log_for_resume("", LogResume{"step", 3}), "");
}

TEST(MetricsLog, ResumingRewritesTheFileThenAppendsAndAFreshRunTruncates) {
  const fs::path dir = fresh_dir("resume");
  const fs::path file = dir / "metrics.jsonl";
  {
    std::ofstream out(file);
    out << "{\"epoch\":1}\n{\"epoch\":2}\n{\"epoch\":3,\"to";
  }
  const LogResume resume{"epoch", 1};
  {
    MetricsLog log(dir.string(), &resume);
    EXPECT_TRUE(log.enabled());
    log.write({{"epoch", 2}});
  }
  EXPECT_EQ(slurp(file), "{\"epoch\":1}\n{\"epoch\":2}\n");
  {
    MetricsLog log(dir.string(), nullptr);
    log.write({{"epoch", 1}});
  }
  EXPECT_EQ(slurp(file), "{\"epoch\":1}\n");
  // No run directory: nothing written anywhere.
  MetricsLog none("", &resume);
  EXPECT_FALSE(none.enabled());
  none.write({{"epoch", 1}});
  fs::remove_all(dir);
}

TEST(MetricsLog, UnwritableRunDirectoryNamesTheFile) {
  const fs::path dir = fresh_dir("missing") / "not_there";
  try {
    MetricsLog log(dir.string(), nullptr);
    FAIL() << "expected an IoError";
  } catch (const kiln::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("not_there/metrics.jsonl: cannot write"), std::string::npos) << e.what();
  }
  fs::remove_all(dir.parent_path());
}
