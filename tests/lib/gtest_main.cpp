// main() of every test binary: the same process preparation as kiln-ml (BLAS kernels, OpenMP wait
// policy), so goldens are checked with the kernels Kiln runs with. After a passing run it removes
// this process's scratch entries from the temp directory (test files name them kiln_<what>_<pid>;
// some keep a per-process directory to the end), so repeated suites do not fill /tmp; a failing
// run leaves them for inspection.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "kiln/core/cpu.h"

namespace {

void remove_scratch_of_this_process() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path tmp = fs::temp_directory_path(ec);
  if (ec) return;
  const std::string suffix = "_" + std::to_string(::getpid());
  std::vector<fs::path> mine;
  for (fs::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("kiln_", 0) == 0 && name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      mine.push_back(it->path());
    }
  }
  for (const auto& p : mine) fs::remove_all(p, ec);
}

}  // namespace

int main(int argc, char** argv) {
  kiln::core::prepare_process(argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (rc == 0) remove_scratch_of_this_process();
  return rc;
}
