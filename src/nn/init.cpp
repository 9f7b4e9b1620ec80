#include "init.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdint>
#include <mutex>
#include <stdexcept>

#include "kiln/core/process_memory.h"

namespace kiln::nn {

void init_uniform(torch::Tensor weight, double bound) {
  torch::NoGradGuard no_grad;
  weight.uniform_(-bound, bound);
}

namespace {

// A 32-bit integer hash (xorshift-multiply; every input bit flips each output bit with probability
// close to 1/2).
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Elements [begin, end) of the table keyed by `key`: two rounds of the hash over the index, the
// upper 24 bits as a float in [0, 1) mapped to [-bound, bound). Vectorised with AVX2 where the CPU
// has it (32-bit multiplies), SSE2 otherwise.
[[gnu::target_clones("avx2", "default")]] void fill_uniform(float* out, int64_t begin, int64_t end, uint64_t key,
                                                           float bound) {
  const auto k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  const float scale = 2.0F * bound / 16777216.0F;
  for (int64_t i = begin; i < end; ++i) {
    const auto lo = static_cast<uint32_t>(i), hi = static_cast<uint32_t>(static_cast<uint64_t>(i) >> 32);
    const uint32_t h = mix32(mix32(lo ^ k0) + (hi ^ k1));
    out[i] = static_cast<float>(h >> 8) * scale - bound;
  }
}

}  // namespace

void init_uniform_fast(torch::Tensor weight, double bound) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(weight.scalar_type() == torch::kFloat32 && weight.is_contiguous() && weight.device().is_cpu(),
              "init_uniform_fast needs a contiguous float32 CPU tensor");
  uint64_t key = 0;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    key = at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
  }
  float* out = weight.data_ptr<float>();
  const auto b = static_cast<float>(bound);
  at::parallel_for(0, weight.numel(), 1 << 16,
                   [&](int64_t begin, int64_t end) { fill_uniform(out, begin, end, key, b); });
}

void init_zeros(torch::Tensor weight) {
  torch::NoGradGuard no_grad;
  weight.zero_();
}

void init_weight(torch::Tensor weight, const std::string& scheme, int64_t fan_in, int64_t fan_out) {
  torch::NoGradGuard no_grad;
  if (scheme == "xavier") {
    weight.uniform_(-1.0, 1.0).mul_(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
  } else if (scheme == "kaiming") {
    weight.uniform_(-1.0, 1.0).mul_(std::sqrt(6.0 / static_cast<double>(fan_in)));
  } else if (scheme == "normal") {
    weight.normal_(0.0, 0.02);
  } else if (scheme == "zeros") {
    weight.zero_();
  } else {
    throw std::invalid_argument("unknown init scheme \"" + scheme + "\"");
  }
}

torch::Tensor empty_table(int64_t rows, int64_t cols) {
  auto t = torch::empty({rows, cols});
  core::advise_huge_pages(t.data_ptr(), static_cast<std::size_t>(t.nbytes()));
  return t;
}

torch::nn::EmbeddingBag embedding_bag_on_table(int64_t rows, int64_t cols) {
  auto table = empty_table(rows, cols);
  {
    torch::NoGradGuard no_grad;
    torch::nn::init::normal_(table);  // EmbeddingBagImpl::reset_parameters' draw
  }
  return torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(rows, cols).mode(torch::kSum)._weight(table));
}

}  // namespace kiln::nn
