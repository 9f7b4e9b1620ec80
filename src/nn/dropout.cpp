#include "kiln/nn/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/MT19937RNGEngine.h>

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

// at::mt19937_engine::next_state.
void next_state(uint32_t* state) {
  uint32_t* p = state;
  for (int j = kStateN - kStateM + 1; --j; p++) *p = p[kStateM] ^ twist(p[0], p[1]);
  for (int j = kStateM; --j; p++) *p = p[kStateM - kStateN] ^ twist(p[0], p[1]);
  *p = p[kStateM - kStateN] ^ twist(p[0], state[0]);
}

// torch's bernoulli_(q) on the CPU without MKL: per element, u = uniform_real<double>(random64())
// with random64 = (first 32-bit draw << 32) | second draw, keeping the low 53 bits; the element
// is (u < q). Here the kept elements get `scale` (what noise.div_(1 - p) makes of a 1). The
// engine's draws are replayed with its counters in registers and written back afterwards.
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
  auto draw = [&]() -> uint64_t {
    if (--left == 0) {
      next_state(state);
      left = kStateN;
      next = 0;
    }
    uint32_t y = state[next++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
  };
  constexpr uint64_t kMask = (uint64_t{1} << 53) - 1;
  // u = k * 2^-53 < q  <=>  k < q * 2^53 (both sides exact in double).
  const double threshold = q * static_cast<double>(uint64_t{1} << 53);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t hi = draw();
    const uint64_t lo = draw();
    const auto k = static_cast<int64_t>(((hi << 32) | lo) & kMask);
    out[i] = static_cast<double>(k) < threshold ? scale : T(0);
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
