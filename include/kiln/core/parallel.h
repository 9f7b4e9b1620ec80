// One thread policy for Kiln: a process-wide thread count (CLI --threads, default all cores) used
// both by Kiln's own parallel loops and by LibTorch's intra-op pool.
#pragma once

#include <cstddef>
#include <functional>

namespace kiln::core {

/// Cores this process may use (std::thread::hardware_concurrency, at least 1).
[[nodiscard]] int hardware_threads();

/// Sets the process-wide thread count (>= 1). Throws ConfigError for n < 1. Call once at start-up,
/// before parallel work begins. LibTorch's intra-op threads are set by the caller
/// (at::set_num_threads), so that this module stays free of LibTorch.
void set_threads(int n);

/// The process-wide thread count (default: hardware_threads()).
[[nodiscard]] int threads();

/// Runs fn(begin, end, chunk_index) over [0, n) split into at most `threads()` contiguous chunks
/// (or `max_chunks` if > 0). Chunk i covers a range before chunk i+1. The calling thread and a
/// process-wide pool of threads (started on first use, kept sleeping between calls) each claim the
/// next unclaimed chunk until none is left, so chunks may run one after another on one thread and
/// must not wait for each other; the caller takes every chunk a pool thread has not woken up for.
/// Calls may nest. Exceptions from any chunk are rethrown (the first one) after all chunks finish.
void parallel_chunks(std::size_t n, const std::function<void(std::size_t, std::size_t, std::size_t)>& fn,
                     int max_chunks = 0);

/// Number of chunks parallel_chunks(n, ..., max_chunks) will use.
[[nodiscard]] std::size_t chunk_count(std::size_t n, int max_chunks = 0);

}  // namespace kiln::core
