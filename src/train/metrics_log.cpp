#include "metrics_log.h"

#include <filesystem>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"

namespace fs = std::filesystem;

namespace kiln::train {

std::string trim_log_for_resume(const std::string& content, const LogResume& resume) {
  std::string kept;
  std::size_t at = 0;
  while (at < content.size()) {
    const std::size_t end = content.find('\n', at);
    if (end == std::string::npos) break;  // a torn last line: the writer was killed mid-record
    const std::string_view line(content.data() + at, end - at);
    at = end + 1;
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;  // not a record (a torn line glued to the next one)
    const auto it = j.find(resume.key);
    if (it != j.end() && it->is_number_integer() && it->get<int64_t>() > resume.upto) continue;
    kept.append(line);
    kept.push_back('\n');
  }
  return kept;
}

MetricsLog::MetricsLog(const std::string& run_dir, const LogResume* resume) {
  if (run_dir.empty()) return;
  const fs::path path = fs::path(run_dir) / "metrics.jsonl";
  if (resume != nullptr && fs::exists(path)) {
    core::write_file_atomic(path, trim_log_for_resume(core::read_file(path), *resume));
  }
  out_.open(path, resume != nullptr ? std::ios::app : std::ios::trunc);
  if (!out_) throw IoError(path.string() + ": cannot write; check the run directory's permissions");
}

void MetricsLog::write(const nlohmann::json& record) {
  if (out_.is_open()) out_ << record.dump() << '\n';
}

void MetricsLog::flush() {
  if (out_.is_open()) out_.flush();
}

}  // namespace kiln::train
