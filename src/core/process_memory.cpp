#include "kiln/core/process_memory.h"

#include <algorithm>
#include <fstream>

#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
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

void reserve_batch_heap(std::size_t bytes) {
#if defined(__linux__) && defined(__GLIBC__)
  constexpr std::size_t kMmapThreshold = std::size_t{32} << 20;  // glibc's largest allowed
  constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;
  (void)mallopt(M_ARENA_MAX, 1);
  (void)mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold));
  (void)mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::size_t{1} << 30));
  if (bytes == 0) return;
  bytes = std::min(bytes, std::size_t{1} << 30);
  // The next growth of the heap adds `bytes` beyond the request; a request larger than what the
  // young heap has free makes that growth happen now. volatile: the pair must not be elided.
  const auto before = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  (void)mallopt(M_TOP_PAD, static_cast<int>(bytes));
  void* volatile probe = std::malloc(std::size_t{1} << 20);
  std::free(probe);
  (void)mallopt(M_TOP_PAD, static_cast<int>(std::size_t{16} << 20));
  const auto after = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  const std::uintptr_t first = (before + kHugePage - 1) & ~(kHugePage - 1);
  const std::uintptr_t last = after & ~(kHugePage - 1);
  if (last > first) (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)bytes;
#endif
}

}  // namespace kiln::core
