#include "bag_kernels.h"

namespace kiln::nn::detail {
namespace {

template <typename T>
inline void backward(T* __restrict out, const T* __restrict grad, const int64_t* offsets, const int64_t* indices,
                     const int64_t* slots, const T* weights, int64_t bags, int64_t nnz, int64_t dim, int64_t c0,
                     int64_t c1) {
  for (int64_t b = 0; b < bags; ++b) {
    const int64_t end = b + 1 < bags ? offsets[b + 1] : nnz;
    const T* __restrict g = grad + b * dim;
    for (int64_t k = offsets[b]; k < end; ++k) {
      const T w = weights ? weights[k] : T(1);
      T* __restrict row = out + slots[indices[k]] * dim;
      for (int64_t c = c0; c < c1; ++c) row[c] += w * g[c];
    }
  }
}

}  // namespace

// The loader picks the widest build the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default")))
void bag_sum_backward(float* out, const float* grad, const int64_t* offsets, const int64_t* indices,
                      const int64_t* slots, const float* weights, int64_t bags, int64_t nnz, int64_t dim, int64_t c0,
                      int64_t c1) {
  backward(out, grad, offsets, indices, slots, weights, bags, nnz, dim, c0, c1);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void bag_sum_backward(double* out, const double* grad, const int64_t* offsets, const int64_t* indices,
                      const int64_t* slots, const double* weights, int64_t bags, int64_t nnz, int64_t dim, int64_t c0,
                      int64_t c1) {
  backward(out, grad, offsets, indices, slots, weights, bags, nnz, dim, c0, c1);
}

}  // namespace kiln::nn::detail
