// The two passes of the L-BFGS solver's objective (linear_lbfgs.h) over X by columns (CSC, rows
// ascending in each), and the fused L-BFGS's vector kernels (fused_lbfgs.h), on raw arrays, in a
// translation unit of their own (no LibTorch header) so they can be built for several vector
// widths, without contraction into FMA: every width computes the same bits. Private to kiln_train.
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
/// of the block are [starts[f * stride], starts[f * stride + 1]). W rows have k floats; Z rows are
/// zs floats apart (zs a multiple of 16, at least k, 64-byte aligned; Z's padding gets only zeros).
void add_block_logits(const Columns& x, const int64_t* starts, int64_t stride, const float* W, float* Z, int64_t k,
                      int64_t zs);

/// For f in [f0, f1): G[f] = l2 · W[f] + Σ_{j in column f} x_j R[row_j], the entries in row order.
/// W and G rows have k floats; R rows are rs floats apart (as Z's above, the padding zeros).
/// (‖W‖² is summed apart, in fixed chunks: a running double sum in this loop could not vectorise
/// and took 15% of its time on WordNet's table.)
void feature_gradients(const Columns& x, const float* W, const float* R, float* G, int64_t k, int64_t rs, float l2,
                       int64_t f0, int64_t f1);

/// For rows [r0, r1) of Z (rows zs floats apart, logits in their first k): residual_i = s_i · inv_n · (softmax(z_i) − onehot(y_i))
/// in place of z_i; returns Σ_i s_i · (log Σ_q exp(z_iq − m_i) − (z_iy − m_i)), m_i = max_q z_iq. The
/// exponentials are a polynomial of its own (within 1 ulp of e^x for arguments above −87.3, ~1e-38
/// below) that vectorises; each row's sum is taken in 8 double lanes.
double softmax_residuals(float* Z, int64_t r0, int64_t r1, int64_t k, int64_t zs, const int64_t* y, const float* s,
                         double inv_n);

/// Σ_j a_j b_j over [0, n): blocks of 256 products summed in float over 32 lanes, each block's
/// sum added in double, the tail in double. The same bits at every vector width.
double dot_span(const float* a, const float* b, int64_t n);

/// max_j |a_j| over [0, n) (0 when n is 0).
float max_abs_span(const float* a, int64_t n);

}  // namespace kiln::train
