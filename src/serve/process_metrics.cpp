#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/serve/metrics.h"

namespace kiln::serve {
namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces and parentheses):
// fields[0] is field 3 (state) of proc(5).
std::vector<std::string> stat_fields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    std::string skip;
    std::getline(in, skip);
  }
  return 0;
}

double open_fds() {
  std::error_code ec;
  double n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

}  // namespace

void register_process_metrics(MetricsRegistry& registry) {
  auto& cpu = registry.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
  auto& rss = registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  auto& vms = registry.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.");
  auto& fds = registry.gauge("process_open_fds", "Number of open file descriptors.");
  auto& max_fds = registry.gauge("process_max_fds", "Maximum number of open file descriptors.");
  auto& start = registry.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
  auto& threads = registry.gauge("process_threads", "Number of OS threads in the process.");
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double boot = boot_time_seconds();
  registry.on_collect([&, ticks, page, boot] {
    const auto f = stat_fields();
    // proc(5): utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24 (1-based).
    if (f.size() >= 22) {
      auto at = [&](int field) { return std::stod(f[static_cast<std::size_t>(field - 3)]); };
      cpu.labels({}).mirror((at(14) + at(15)) / ticks);
      threads.labels({}).set(at(20));
      start.labels({}).set(boot + at(22) / ticks);
      vms.labels({}).set(at(23));
      rss.labels({}).set(at(24) * page);
    }
    fds.labels({}).set(open_fds());
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) max_fds.labels({}).set(static_cast<double>(lim.rlim_cur));
  });
}

}  // namespace kiln::serve
