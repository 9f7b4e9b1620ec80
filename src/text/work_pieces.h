// Private: how the text vectorizers split a corpus over threads. Documents are cut into contiguous
// pieces of about equal text, more pieces than threads, and each thread takes the next piece when
// it finishes one: a thread that shares its core with another process simply takes fewer pieces.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

#include "kiln/core/parallel.h"

namespace kiln::text::detail {

/// Pieces per thread when there is more than one thread.
constexpr std::size_t kPiecesPerThread = 16;

/// Splits docs into at most `max_pieces` contiguous ranges of about equal text bytes (a document
/// also weighs a fixed per-document cost). Returns bounds: piece p is [b[p], b[p+1]);
/// b.front() == 0, b.back() == docs.size(), no piece is empty unless docs is.
[[nodiscard]] std::vector<std::size_t> balanced_pieces(const std::vector<std::string>& docs, std::size_t max_pieces);

/// Workers (threads) for a job of n items: core::threads(), at most n, at least 1.
[[nodiscard]] inline std::size_t worker_count(std::size_t n) { return core::chunk_count(n); }

/// Piece bounds for splitting docs over `workers` threads: one piece for one worker, else up to
/// kPiecesPerThread per worker.
[[nodiscard]] inline std::vector<std::size_t> work_pieces(const std::vector<std::string>& docs, std::size_t workers) {
  return balanced_pieces(docs, workers <= 1 ? 1 : workers * kPiecesPerThread);
}

/// Runs worker(w, next) for w in [0, workers) as core::parallel_chunks chunks (on up to `workers` threads),
/// where next() hands out 0, 1, ..., n_pieces - 1 once each across all workers and then returns
/// n_pieces. Exceptions are rethrown after all workers finish (core::parallel_chunks).
template <typename Worker>
void run_workers(std::size_t workers, std::size_t n_pieces, Worker&& worker) {
  std::atomic<std::size_t> next_piece{0};
  auto next = [&]() { return std::min(next_piece.fetch_add(1, std::memory_order_relaxed), n_pieces); };
  core::parallel_chunks(
      workers,
      [&](std::size_t wb, std::size_t we, std::size_t) {
        for (std::size_t w = wb; w < we; ++w) worker(w, next);
      },
      static_cast<int>(workers));
}

}  // namespace kiln::text::detail
