#include "kiln/core/parallel.h"


#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::core {
namespace {
std::atomic<int> g_threads{0};
}  // namespace

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_threads(int n) {
  if (n < 1) {
    throw ConfigError("threads must be >= 1, got " + std::to_string(n) +
                      "; omit --threads to use all " + std::to_string(hardware_threads()) + " cores");
  }
  g_threads = n;
}

int threads() {
  int n = g_threads.load();
  return n > 0 ? n : hardware_threads();
}

std::size_t chunk_count(std::size_t n, int max_chunks) {
  std::size_t k = static_cast<std::size_t>(max_chunks > 0 ? max_chunks : threads());
  return std::max<std::size_t>(1, std::min(k, n));
}

void parallel_chunks(std::size_t n, const std::function<void(std::size_t, std::size_t, std::size_t)>& fn,
                     int max_chunks) {
  const std::size_t k = chunk_count(n, max_chunks);
  if (k <= 1) {
    fn(0, n, 0);
    return;
  }
  std::vector<std::thread> pool;
  std::exception_ptr first;
  std::mutex mu;
  pool.reserve(k - 1);
  auto run = [&](std::size_t c) {
    std::size_t begin = n * c / k, end = n * (c + 1) / k;
    try {
      fn(begin, end, c);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!first) first = std::current_exception();
    }
  };
  for (std::size_t c = 1; c < k; ++c) pool.emplace_back(run, c);
  run(0);
  for (auto& t : pool) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace kiln::core
