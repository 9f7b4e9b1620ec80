// Private: a run directory's metrics.jsonl, one JSON record per line, shared by the trainer and
// pretraining. A resumed run continues the log of the run it resumes: the records the interrupted
// run wrote after its last checkpoint (it is about to redo those steps) and a torn last line (the
// process was killed mid-write) are dropped first, so the log reads as one uninterrupted run.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace kiln::train {

/// Where a resumed log continues: records whose integer `key` ("epoch", "step") is above `upto`
/// are dropped; records without it are kept.
struct LogResume {
  std::string key;
  int64_t upto = 0;
};

class MetricsLog {
 public:
  /// No file (write() does nothing) when run_dir is empty. Without `resume` the log starts empty;
  /// with it, the existing log is trimmed to the checkpoint (rewritten atomically) and appended to.
  /// Throws IoError naming the file.
  MetricsLog(const std::string& run_dir, const LogResume* resume);
  void write(const nlohmann::json& record);
  void flush();
  [[nodiscard]] bool enabled() const { return out_.is_open(); }

 private:
  std::ofstream out_;
};

/// The lines of a metrics log to keep when resuming: complete ('\n'-terminated) lines holding a
/// JSON object whose resume.key is absent or <= resume.upto, joined with their newlines.
[[nodiscard]] std::string trim_log_for_resume(const std::string& content, const LogResume& resume);

}  // namespace kiln::train
