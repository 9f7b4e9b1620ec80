#include "kiln/core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kiln/core/process_memory.h"

namespace {

// Every index once, in chunks that tile [0, n) in order, whatever thread ran them.
TEST(ParallelChunks, CoversEveryIndexOnceInOrderedChunks) {
  for (int chunks : {1, 2, 3, 7}) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{1000}}) {
      std::vector<int> hits(n, 0);
      std::mutex mu;
      std::vector<std::pair<std::size_t, std::size_t>> ranges(kiln::core::chunk_count(n, chunks));
      kiln::core::parallel_chunks(
          n,
          [&](std::size_t b, std::size_t e, std::size_t c) {
            for (std::size_t i = b; i < e; ++i) ++hits[i];
            std::lock_guard<std::mutex> lock(mu);
            ranges.at(c) = {b, e};
          },
          chunks);
      for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i], 1) << "n " << n << " index " << i;
      for (std::size_t c = 1; c < ranges.size(); ++c) EXPECT_EQ(ranges[c].first, ranges[c - 1].second);
      if (n > 0) {
        EXPECT_EQ(ranges.back().second, n);
      }
    }
  }
}

// The caller takes the chunks no pool thread has claimed: a call finishes even when every pool
// thread is busy elsewhere (here, inside the outer call's other chunks, which wait for it).
TEST(ParallelChunks, NestedCallsFinishWhileThePoolIsBusy) {
  std::atomic<int> inner{0};
  kiln::core::parallel_chunks(
      4,
      [&](std::size_t, std::size_t, std::size_t) {
        kiln::core::parallel_chunks(
            100, [&](std::size_t b, std::size_t e, std::size_t) { inner += static_cast<int>(e - b); }, 3);
      },
      4);
  EXPECT_EQ(inner.load(), 400);
}

// The first exception is rethrown after every chunk has finished (none is left running on the
// caller's stack frame).
TEST(ParallelChunks, RethrowsAfterEveryChunkFinished) {
  std::atomic<int> finished{0};
  EXPECT_THROW(kiln::core::parallel_chunks(
                   6,
                   [&](std::size_t b, std::size_t, std::size_t) {
                     if (b == 0) throw std::runtime_error("chunk 0");
                     std::this_thread::sleep_for(std::chrono::milliseconds(5));
                     ++finished;
                   },
                   6),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 5);
}

// Chunks run concurrently when there are threads for them: two chunks that each wait for the
// other to start cannot both finish on one thread.
TEST(ParallelChunks, UsesPoolThreadsWhenTheyAreFree) {
  std::atomic<int> started{0};
  std::atomic<bool> overlapped{false};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  kiln::core::parallel_chunks(
      2,
      [&](std::size_t, std::size_t, std::size_t) {
        ++started;
        while (started.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        if (started.load() == 2) overlapped = true;
      },
      2);
  EXPECT_TRUE(overlapped.load());
}

// With the batch heap settings, memory is still ordinary memory.
TEST(KeepHeapForBatch, AllocationsStillWork) {
  kiln::core::keep_heap_for_batch();
  std::vector<char> big(std::size_t{40} << 20, 'x');  // above the mmap threshold
  std::vector<int> small(1000, 7);
  EXPECT_EQ(big.back(), 'x');
  EXPECT_EQ(small[999], 7);
}

}  // namespace
