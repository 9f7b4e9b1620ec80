#include "linear_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln::train {

// Rows of Z (and of R below) are visited in an order the hardware prefetcher cannot guess: each
// entry asks for the row of the entry this many places ahead in X's columns.
constexpr int64_t kAhead = 8;

// Rows as wide as a padded Z or R row fit this buffer (up to 256 classes); wider ones take the
// unpadded loops.
constexpr int64_t kMaxPadded = 256;

// The loader picks the widest build the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default")))
void add_block_logits(const Columns& x, const int64_t* starts, int64_t stride, const float* W, float* Z, int64_t k,
                      int64_t zs) {
  // The entry kAhead places ahead in the flat column array: with one block of rows exactly the
  // next ones this loop visits; with several, those of other blocks are wasted requests, not
  // wrong ones. Most of WordNet's 124k bigram columns hold a few entries in scattered rows, and
  // waiting for Z's rows had taken two thirds of this loop's samples.
  const int64_t row_bytes = zs * static_cast<int64_t>(sizeof(float));
  // W's row copied into zs floats (zeros past k), so that the loop over each entry's Z row has no
  // remainder: for 45 classes, 3 AVX-512 vectors instead of 2 and 13 floats one by one.
  alignas(64) float wbuf[kMaxPadded];
  const bool padded = zs <= kMaxPadded;
  if (padded) std::fill(wbuf, wbuf + zs, 0.0f);
  for (int64_t f = 0; f < x.features; ++f, starts += stride) {
    const int64_t j0 = starts[0], j1 = starts[1];
    if (j0 == j1) continue;
    const float* __restrict w = W + f * k;
    if (padded) std::copy(w, w + k, wbuf);
    for (int64_t j = j0; j < j1; ++j) {
      if (j + kAhead < x.nnz) {
        const char* next = reinterpret_cast<const char*>(Z + static_cast<int64_t>(x.col_row[j + kAhead]) * zs);
        for (int64_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(next + line, 1);
      }
      const float v = x.col_val[j];
      float* __restrict z = Z + static_cast<int64_t>(x.col_row[j]) * zs;
      if (padded) {
        for (int64_t q = 0; q < zs; ++q) z[q] += v * wbuf[q];
      } else {
        for (int64_t q = 0; q < k; ++q) z[q] += v * w[q];
      }
    }
  }
}

// On Brown and fortunes the prefetching took 8-20% off the pass.
__attribute__((target_clones("avx512f", "avx2", "default")))
void feature_gradients(const Columns& x, const float* W, const float* R, float* G, int64_t k, int64_t rs, float l2,
                       int64_t f0, int64_t f1) {
  const int64_t row_bytes = rs * static_cast<int64_t>(sizeof(float));
  // Each feature's gradient summed in rs floats (R's padding adds zeros past k), stored once.
  alignas(64) float acc[kMaxPadded];
  const bool padded = rs <= kMaxPadded;
  if (padded) std::fill(acc, acc + rs, 0.0f);
  for (int64_t f = f0; f < f1; ++f) {
    float* __restrict g = padded ? acc : G + f * k;
    const float* __restrict w = W + f * k;
    for (int64_t q = 0; q < k; ++q) g[q] = l2 * w[q];
    for (int64_t j = x.col_ptr[f]; j < x.col_ptr[f + 1]; ++j) {
      if (j + kAhead < x.nnz) {
        const char* next = reinterpret_cast<const char*>(R + static_cast<int64_t>(x.col_row[j + kAhead]) * rs);
        for (int64_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(next + line);
      }
      const float v = x.col_val[j];
      const float* __restrict r = R + static_cast<int64_t>(x.col_row[j]) * rs;
      if (padded) {
        for (int64_t q = 0; q < rs; ++q) acc[q] += v * r[q];
      } else {
        for (int64_t q = 0; q < k; ++q) g[q] += v * r[q];
      }
    }
    if (padded) std::copy(acc, acc + k, G + f * k);
  }
}

namespace {

constexpr int64_t kBlock = 256;
constexpr int kLanes = 32;

// One block's products, over the lanes and then summed in a fixed tree.
inline float block_dot(const float* __restrict a, const float* __restrict b) {
  float lanes[kLanes] = {};
  for (int64_t k = 0; k < kBlock; k += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += a[k + l] * b[k + l];
  }
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w];
  }
  return lanes[0];
}

// e^x for x <= 0 (and NaN), in float operations alone: x = n ln 2 + r with |r| <= ln 2 / 2, e^r by
// its degree-7 Taylor-like minimax polynomial (the coefficients of Cephes' expf), times 2^n built in
// the exponent bits. Arguments below −87.3 give 2^−126 · e^r (about 1e-38) instead of a subnormal.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.3f);  // NaN stays NaN
  const float shifted = x * 1.44269504088896341f + 12582912.0f;  // round(x log2 e) in the low bits
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  const int32_t e = ((bits - 0x4B400000) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default")))
double softmax_residuals(float* Z, int64_t r0, int64_t r1, int64_t k, int64_t zs, const int64_t* y, const float* s,
                         double inv_n) {
  double loss = 0;
  for (int64_t i = r0; i < r1; ++i) {
    float* __restrict zp = Z + i * zs;
    float lanes[16];
    int64_t q = 0;
    float m = zp[0];
    if (k >= 16) {
      for (int l = 0; l < 16; ++l) lanes[l] = zp[l];
      for (q = 16; q + 16 <= k; q += 16) {
        for (int l = 0; l < 16; ++l) lanes[l] = std::max(lanes[l], zp[q + l]);
      }
      for (int l = 0; l < 16; ++l) m = std::max(m, lanes[l]);
    }
    for (; q < k; ++q) m = std::max(m, zp[q]);
    const int64_t yi = y[i];
    // −log p_y = log Σ exp(z − m) − (z_y − m), from z_y itself: exp(z_y − m) underflows in float32
    // far behind, and the log of it made the loss infinite (L-BFGS's line search tries long steps).
    const double zy = static_cast<double>(zp[yi]) - static_cast<double>(m);
    for (q = 0; q < k; ++q) zp[q] = exp_nonpositive(zp[q] - m);
    double sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (q = 0; q + 8 <= k; q += 8) {
      for (int l = 0; l < 8; ++l) sums[l] += static_cast<double>(zp[q + l]);
    }
    for (int l = 0; q < k; ++q, ++l) sums[l] += static_cast<double>(zp[q]);
    const double sum = ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
    const double si = static_cast<double>(s[i]);
    loss += si * (std::log(sum) - zy);
    const auto scale = static_cast<float>(si * inv_n / sum);
    for (q = 0; q < k; ++q) zp[q] *= scale;
    zp[yi] -= static_cast<float>(si * inv_n);
  }
  return loss;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
double dot_span(const float* a, const float* b, int64_t n) {
  double total = 0;
  int64_t j = 0;
  for (; j + kBlock <= n; j += kBlock) total += static_cast<double>(block_dot(a + j, b + j));
  for (; j < n; ++j) total += static_cast<double>(a[j]) * b[j];
  return total;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
float max_abs_span(const float* a, int64_t n) {
  // In lanes, which vectorise (one running maximum does not: its order would matter for NaNs).
  float lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] = std::max(lanes[l], std::abs(a[j + l]));
  }
  float m = 0;
  for (; j < n; ++j) m = std::max(m, std::abs(a[j]));
  for (int l = 0; l < kLanes; ++l) m = std::max(m, lanes[l]);
  return m;
}

}  // namespace kiln::train
