// The two passes of the L-BFGS solver's objective (linear_lbfgs.h) over X by columns (CSC, rows
// ascending in each), on raw arrays, in a translation unit of their own (no LibTorch header) so
// they can be built for several vector widths, without contraction into FMA: every width computes
// the same bits. Private to kiln_train.
#pragma once

#include <cstdint>

namespace kiln::train {

/// X by columns: column f's entries are [col_ptr[f], col_ptr[f+1]), row col_row[j], value col_val[j].
struct Columns {
  const int64_t* col_ptr;
  const int32_t* col_row;
  const float* col_val;
  int64_t features, nnz;
};

/// Z[i] += Σ_f x_if W[f] for the entries of one block of rows, feature by feature: column f's entries
/// of the block are [starts[f * stride], starts[f * stride + 1]). W and Z rows have k floats.
void add_block_logits(const Columns& x, const int64_t* starts, int64_t stride, const float* W, float* Z, int64_t k);

/// For f in [f0, f1): G[f] = l2 · W[f] + Σ_{j in column f} x_j R[row_j], the entries in row order.
/// (‖W‖² is summed apart, in fixed chunks: a running double sum in this loop could not vectorise
/// and took 15% of its time on WordNet's table.)
void feature_gradients(const Columns& x, const float* W, const float* R, float* G, int64_t k, float l2, int64_t f0,
                       int64_t f1);

}  // namespace kiln::train
