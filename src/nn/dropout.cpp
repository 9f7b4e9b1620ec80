#include "kiln/nn/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/MT19937RNGEngine.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>

namespace kiln::nn {
namespace {

constexpr int kStateN = 624;  // MT19937 as at::mt19937 (ATen/core/MT19937RNGEngine.h)
constexpr int kStateM = 397;
constexpr uint32_t kMatrixA = 0x9908b0df;

inline uint32_t twist(uint32_t u, uint32_t v) {
  return ((((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ ((v & 1u) ? kMatrixA : 0u));
}

// at::mt19937_engine::next_state. Built for several vector widths (integer operations: the same
// bits on every CPU); the first loop reads only words the pass has not rewritten yet, the second
// words it rewrote 227 places back, so both vectorize.
__attribute__((target_clones("avx512f", "avx2", "default")))
void next_state(uint32_t* state) {
  uint32_t* p = state;
  for (int j = kStateN - kStateM + 1; --j; p++) *p = p[kStateM] ^ twist(p[0], p[1]);
  for (int j = kStateM; --j; p++) *p = p[kStateM - kStateN] ^ twist(p[0], p[1]);
  *p = p[kStateM - kStateN] ^ twist(p[0], state[0]);
}

// MT19937's tempering of every word of the state: the engine's outputs until its next refresh.
__attribute__((target_clones("avx512f", "avx2", "default")))
void temper(const uint32_t* state, uint32_t* out) {
  for (int i = 0; i < kStateN; ++i) {
    uint32_t y = state[i];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    out[i] = y;
  }
}

// out[e] = scale when k_e < limit, else 0, for e < m, where k_e is the low 53 bits of
// (words[2e] << 32) | words[2e + 1].
template <typename T>
inline void keep_where_below(const uint32_t* words, int64_t m, uint64_t limit, T scale, T* out) {
  constexpr uint64_t kMask = (uint64_t{1} << 53) - 1;
  for (int64_t e = 0; e < m; ++e) {
    const uint64_t k = ((static_cast<uint64_t>(words[2 * e]) << 32) | words[2 * e + 1]) & kMask;
    out[e] = k < limit ? scale : T(0);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void keep_where_below_f(const uint32_t* words, int64_t m, uint64_t limit, float scale, float* out) {
  keep_where_below(words, m, limit, scale, out);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void keep_where_below_d(const uint32_t* words, int64_t m, uint64_t limit, double scale, double* out) {
  keep_where_below(words, m, limit, scale, out);
}

inline void keep_where_below_any(const uint32_t* words, int64_t m, uint64_t limit, float scale, float* out) {
  keep_where_below_f(words, m, limit, scale, out);
}
inline void keep_where_below_any(const uint32_t* words, int64_t m, uint64_t limit, double scale, double* out) {
  keep_where_below_d(words, m, limit, scale, out);
}

// torch's bernoulli_(q) on the CPU without MKL: per element, u = uniform_real<double>(random64())
// with random64 = (first 32-bit draw << 32) | second draw, keeping the low 53 bits; the element
// is (u < q). Here the kept elements get `scale` (what noise.div_(1 - p) makes of a 1). The
// engine's draws are replayed from its state (tempered a refresh at a time) and its counters
// written back afterwards.
template <typename T>
void fill_noise(T* out, int64_t n, double q, T scale) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  auto* impl = gen.get<at::CPUGeneratorImpl>();
  at::mt19937 engine = impl->engine();
  at::mt19937_data_pod data = engine.data();
  uint32_t* state = data.state_.data();
  int left = data.left_;
  uint32_t next = data.next_;
  uint32_t words[kStateN];
  temper(state, words);
  auto draw = [&]() -> uint64_t {
    if (--left == 0) {
      next_state(state);
      temper(state, words);
      left = kStateN;
      next = 0;
    }
    return words[next++];
  };
  // u = k * 2^-53 < q  <=>  k < q * 2^53 (exact in double)  <=>  k < ceil(q * 2^53) for integer k.
  const auto limit = static_cast<uint64_t>(std::ceil(q * static_cast<double>(uint64_t{1} << 53)));
  constexpr uint64_t kMask = (uint64_t{1} << 53) - 1;
  for (int64_t i = 0; i < n;) {
    // Elements whose two draws both come before the engine's next refresh (left - 1 draws do).
    const int64_t m = std::min<int64_t>(n - i, (left - 1) / 2);
    if (m > 0) {
      keep_where_below_any(words + next, m, limit, scale, out + i);
      next += static_cast<uint32_t>(2 * m);
      left -= static_cast<int>(2 * m);
      i += m;
      if (i == n) break;
    }
    const uint64_t hi = draw();
    const uint64_t lo = draw();
    out[i++] = (((hi << 32) | lo) & kMask) < limit ? scale : T(0);
  }
  data.left_ = left;
  data.next_ = next;
  engine.set_data(data);
  impl->set_engine(engine);
}

}  // namespace

torch::Tensor dropout(const torch::Tensor& input, double p, bool training) {
  const bool fast = training && p > 0 && p < 1 && input.numel() > 0 && input.device().is_cpu() &&
                    (input.scalar_type() == torch::kFloat32 || input.scalar_type() == torch::kFloat64);
  if (!fast) return torch::dropout(input, p, training);
  auto noise = torch::empty(input.sizes(), input.options().requires_grad(false));
  const double q = 1 - p;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "kiln_dropout", [&] {
    // As torch: the scale is 1 / (1 - p) evaluated in the tensor's dtype.
    const scalar_t scale = static_cast<scalar_t>(1) / static_cast<scalar_t>(q);
    fill_noise<scalar_t>(noise.data_ptr<scalar_t>(), noise.numel(), q, scale);
  });
  return input * noise;
}

}  // namespace kiln::nn
