// Private to kiln_nn: the gradient of a sum-mode bag (EmbeddingBag) with respect to its table's
// touched rows, on raw arrays, in a translation unit of its own (no LibTorch header) so it can be
// built for several vector widths, without contraction into FMA: every width computes the same bits.
#pragma once

#include <cstdint>

namespace kiln::nn::detail {

/// For each bag b in [0, bags) and each entry k of it ([offsets[b], offsets[b+1]), the last bag
/// ending at nnz): out[slots[indices[k]] * dim + c] += w_k * grad[b * dim + c] for c in [c0, c1),
/// in entry order; w_k = weights[k], or 1 when weights is null.
void bag_sum_backward(float* out, const float* grad, const int64_t* offsets, const int64_t* indices,
                      const int64_t* slots, const float* weights, int64_t bags, int64_t nnz, int64_t dim, int64_t c0,
                      int64_t c1);
void bag_sum_backward(double* out, const double* grad, const int64_t* offsets, const int64_t* indices,
                      const int64_t* slots, const double* weights, int64_t bags, int64_t nnz, int64_t dim, int64_t c0,
                      int64_t c1);

}  // namespace kiln::nn::detail
