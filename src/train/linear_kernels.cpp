#include "linear_kernels.h"

namespace kiln::train {

// Rows of Z (and of R below) are visited in an order the hardware prefetcher cannot guess: each
// entry asks for the row of the entry this many places ahead in X's columns.
constexpr int64_t kAhead = 8;

// The loader picks the widest build the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default")))
void add_block_logits(const Columns& x, const int64_t* starts, int64_t stride, const float* W, float* Z, int64_t k) {
  // The entry kAhead places ahead in the flat column array: with one block of rows exactly the
  // next ones this loop visits; with several, those of other blocks are wasted requests, not
  // wrong ones. Most of WordNet's 124k bigram columns hold a few entries in scattered rows, and
  // waiting for Z's rows had taken two thirds of this loop's samples.
  const int64_t row_bytes = k * static_cast<int64_t>(sizeof(float));
  for (int64_t f = 0; f < x.features; ++f, starts += stride) {
    const int64_t j0 = starts[0], j1 = starts[1];
    const float* __restrict w = W + f * k;
    for (int64_t j = j0; j < j1; ++j) {
      if (j + kAhead < x.nnz) {
        const char* next = reinterpret_cast<const char*>(Z + static_cast<int64_t>(x.col_row[j + kAhead]) * k);
        for (int64_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(next + line, 1);
      }
      const float v = x.col_val[j];
      float* __restrict z = Z + static_cast<int64_t>(x.col_row[j]) * k;
      for (int64_t q = 0; q < k; ++q) z[q] += v * w[q];
    }
  }
}

// The rows of R are gathered likewise (kAhead; on Brown and fortunes, 8-20% off the pass).
__attribute__((target_clones("avx512f", "avx2", "default")))
void feature_gradients(const Columns& x, const float* W, const float* R, float* G, int64_t k, float l2, int64_t f0,
                       int64_t f1) {
  const int64_t row_bytes = k * static_cast<int64_t>(sizeof(float));
  for (int64_t f = f0; f < f1; ++f) {
    float* __restrict g = G + f * k;
    const float* __restrict w = W + f * k;
    for (int64_t q = 0; q < k; ++q) g[q] = l2 * w[q];
    for (int64_t j = x.col_ptr[f]; j < x.col_ptr[f + 1]; ++j) {
      if (j + kAhead < x.nnz) {
        const char* next = reinterpret_cast<const char*>(R + static_cast<int64_t>(x.col_row[j + kAhead]) * k);
        for (int64_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(next + line);
      }
      const float v = x.col_val[j];
      const float* __restrict r = R + static_cast<int64_t>(x.col_row[j]) * k;
      for (int64_t q = 0; q < k; ++q) g[q] += v * r[q];
    }
  }
}

}  // namespace kiln::train
