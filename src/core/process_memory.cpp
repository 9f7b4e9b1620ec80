#include "kiln/core/process_memory.h"

#include <fstream>

#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#endif

namespace kiln::core {

double process_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == field) {
      double kb = 0;
      in >> kb;
      return kb * 1024.0;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

bool reset_peak_resident() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

void keep_heap_for_batch() {
#if defined(__linux__) && defined(__GLIBC__)
  (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed value
  (void)mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace kiln::core
