#include "linear_lbfgs.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "linear_kernels.h"

namespace kiln::train {

namespace {

// Parallel loops get at least this much work (nonzeros or rows × classes) per thread.
constexpr int64_t kGrain = 4096;

// ‖W‖² over fixed chunks of the table, each summed in double, the chunks in order: the same double
// at any thread count (one running sum over Brown's 1.35M weights took 7% of a fit's time).
double squared_norm(const float* w, int64_t n) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<std::size_t>(chunks), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double lanes[4] = {0, 0, 0, 0};
      const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
      int64_t j = b;
      for (; j + 4 <= e; j += 4) {
        for (int l = 0; l < 4; ++l) lanes[l] += static_cast<double>(w[j + l]) * w[j + l];
      }
      for (; j < e; ++j) lanes[0] += static_cast<double>(w[j]) * w[j];
      part[static_cast<std::size_t>(c)] = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
  });
  double total = 0;
  for (double p : part) total += p;
  return total;
}

}  // namespace

LinearObjective::LinearObjective(const nn::Batch& x, const std::vector<int64_t>& y,
                                 const std::vector<float>& class_weights, int64_t features, int64_t classes,
                                 double C)
    : features_(features), classes_(classes), C_(C) {
  if (!x.has(nn::kBagIndices) || !x.has(nn::kBagOffsets)) {
    throw ConfigError("the L-BFGS solver reads bag features (bag_indices, bag_offsets); this preprocessor gives none "
                      "— use train.solver minibatch");
  }
  if (!(C > 0) || !std::isfinite(C)) throw ConfigError("train.C must be > 0, got " + std::to_string(C));
  const auto indices = x.get(nn::kBagIndices).to(torch::kInt64).contiguous();
  const auto offsets = x.get(nn::kBagOffsets).to(torch::kInt64).contiguous();
  const torch::Tensor values = x.has(nn::kBagWeights) ? x.get(nn::kBagWeights).to(torch::kFloat32).contiguous()
                                                       : torch::ones({indices.numel()}, torch::kFloat32);
  rows_ = offsets.numel();
  const int64_t nnz = indices.numel();
  if (static_cast<int64_t>(y.size()) != rows_) {
    throw DataError("the L-BFGS solver got " + std::to_string(y.size()) + " labels for " + std::to_string(rows_) + " rows");
  }
  const int64_t* ip = indices.data_ptr<int64_t>();
  const int64_t* op = offsets.data_ptr<int64_t>();
  const float* vp = values.data_ptr<float>();
  // Rows (CSR) as given, then transposed to the columns (CSC) that both passes read.
  std::vector<int64_t> row_ptr(static_cast<std::size_t>(rows_ + 1));
  for (int64_t i = 0; i < rows_; ++i) row_ptr[static_cast<std::size_t>(i)] = op[i];
  row_ptr[static_cast<std::size_t>(rows_)] = nnz;
  std::vector<int32_t> row_col(static_cast<std::size_t>(nnz));
  std::vector<int64_t> per_col(static_cast<std::size_t>(features + 1), 0);
  for (int64_t j = 0; j < nnz; ++j) {
    if (ip[j] < 0 || ip[j] >= features) {
      throw DataError("bag_indices holds " + std::to_string(ip[j]) + ", outside the model's " +
                      std::to_string(features) + " features");
    }
    row_col[static_cast<std::size_t>(j)] = static_cast<int32_t>(ip[j]);
    ++per_col[static_cast<std::size_t>(ip[j]) + 1];
  }
  col_ptr_.assign(per_col.begin(), per_col.end());
  for (int64_t f = 0; f < features; ++f) col_ptr_[static_cast<std::size_t>(f + 1)] += col_ptr_[static_cast<std::size_t>(f)];
  col_row_.resize(static_cast<std::size_t>(nnz));
  col_val_.resize(static_cast<std::size_t>(nnz));
  std::vector<int64_t> fill(col_ptr_.begin(), col_ptr_.end() - 1);
  for (int64_t i = 0; i < rows_; ++i) {
    for (int64_t j = row_ptr[static_cast<std::size_t>(i)]; j < row_ptr[static_cast<std::size_t>(i + 1)]; ++j) {
      const auto at = static_cast<std::size_t>(fill[static_cast<std::size_t>(row_col[static_cast<std::size_t>(j)])]++);
      col_row_[at] = static_cast<int32_t>(i);
      col_val_[at] = vp[j];
    }
  }
  y_ = y;
  sample_weight_.resize(static_cast<std::size_t>(rows_));
  for (int64_t i = 0; i < rows_; ++i) {
    const int64_t c = y[static_cast<std::size_t>(i)];
    if (c < 0 || c >= classes) throw DataError("the L-BFGS solver got label " + std::to_string(c) + " outside [0, " + std::to_string(classes) + ")");
    sample_weight_[static_cast<std::size_t>(i)] = class_weights[static_cast<std::size_t>(c)];
    weight_sum_ += static_cast<double>(class_weights[static_cast<std::size_t>(c)]);
  }
  if (!(weight_sum_ > 0)) throw ConfigError("the L-BFGS solver: the class weights of the training examples sum to 0");
  stride_ = (classes_ + 15) / 16 * 16;
  const auto bytes = static_cast<std::size_t>(std::max<int64_t>(1, rows_) * stride_) * sizeof(float);
  residual_.reset(static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
  if (!residual_) throw Error("the L-BFGS solver: out of memory for " + std::to_string(rows_) + " rows of logits");
  std::fill(residual_.get(), residual_.get() + std::max<int64_t>(1, rows_) * stride_, 0.0f);
}

double LinearObjective::evaluate(const torch::Tensor& table, const torch::Tensor& bias, torch::Tensor& grad_table,
                                 torch::Tensor& grad_bias, double* data_loss) {
  auto check = [](const torch::Tensor& t, const char* what) {
    if (!t.defined() || t.scalar_type() != torch::kFloat32 || !t.device().is_cpu() || !t.is_contiguous()) {
      throw ConfigError(std::string("the L-BFGS solver needs the model's ") + what +
                        " as a contiguous float32 CPU tensor; train on the CPU in float32");
    }
  };
  check(table, "weight table");
  check(bias, "bias");
  if (table.size(0) != features_ || table.size(1) != classes_ || bias.numel() != classes_) {
    throw ConfigError("the L-BFGS solver: the model's weights do not match the features and classes it was given");
  }
  // Written in place when they fit (the optimizer's flat buffer), replaced when they do not.
  auto fits = [](const torch::Tensor& g, const torch::Tensor& like) {
    return g.defined() && g.scalar_type() == torch::kFloat32 && g.device().is_cpu() && g.is_contiguous() &&
           g.sizes() == like.sizes();
  };
  if (!fits(grad_table, table)) grad_table = torch::empty_like(table);
  if (!fits(grad_bias, bias)) grad_bias = torch::empty_like(bias);
  const float* W = table.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  const int64_t k = classes_;
  const double inv_n = 1.0 / weight_sum_;

  // Forward, logits first: Z = XW + b, kept in residual_ ([rows, classes]). Each thread owns a
  // block of rows and walks the features in order, adding x_if · W_f to its rows' logits: W is read
  // once, front to back, and the scattered accesses fall in the thread's own block of Z, which is
  // far smaller than W (gathering W's rows document by document was three times slower on Brown's
  // 90k bigram features). A column's rows are sorted, so a block's part of each column is one run.
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows_));
  if (block_count_ != blocks) {
    block_count_ = blocks;
    block_start_.assign(static_cast<std::size_t>(features_ * (blocks + 1)), 0);
    for (int64_t f = 0; f < features_; ++f) {
      const auto first = col_row_.begin() + col_ptr_[static_cast<std::size_t>(f)];
      const auto last = col_row_.begin() + col_ptr_[static_cast<std::size_t>(f + 1)];
      for (int64_t c = 0; c <= blocks; ++c) {
        const auto row = static_cast<int32_t>(rows_ * c / blocks);
        block_start_[static_cast<std::size_t>(f * (blocks + 1) + c)] = std::lower_bound(first, last, row) - col_row_.begin();
      }
    }
  }
  const Columns x{col_ptr_.data(), col_row_.data(), col_val_.data(), features_, static_cast<int64_t>(col_row_.size())};
  std::vector<double> block_loss(static_cast<std::size_t>(blocks), 0.0);
  float* Z = residual_.get();
  const int64_t zs = stride_;
  at::parallel_for(0, blocks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = rows_ * c / blocks, r1 = rows_ * (c + 1) / blocks;
      for (int64_t i = r0; i < r1; ++i) std::copy(b, b + k, Z + i * zs);  // the padding stays 0
      add_block_logits(x, block_start_.data() + c, blocks + 1, W, Z, k, zs);
      // Then row by row: residual_i = s_i (softmax(z_i) − onehot(y_i)) / n, in place of z_i;
      // loss_i = s_i · −log p_{y_i}.
      const double loss = softmax_residuals(Z, r0, r1, k, zs, y_.data(), sample_weight_.data(), inv_n);
      block_loss[static_cast<std::size_t>(c)] = loss;
    }
  });
  double loss = 0;
  for (double l : block_loss) loss += l;
  loss *= inv_n;
  if (data_loss) *data_loss = loss;

  // Gradient by features: ∂W_f = Σ_{i ∋ f} x_if · residual_i + W_f / (C n); ∂b = Σ_i residual_i.
  // ‖W‖² for the regularization term is summed after it, in one running sum.
  float* G = grad_table.data_ptr<float>();
  const auto l2 = static_cast<float>(inv_n / C_);
  at::parallel_for(int64_t{0}, features_, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, k)), [&](int64_t f0, int64_t f1) {
    feature_gradients(x, W, residual_.get(), G, k, stride_, l2, f0, f1);
  });
  const double w_norm = squared_norm(W, features_ * k);
  float* gb = grad_bias.data_ptr<float>();
  std::vector<double> bsum(static_cast<std::size_t>(k), 0.0);
  for (int64_t i = 0; i < rows_; ++i) {
    const float* r = residual_.get() + i * stride_;
    for (int64_t q = 0; q < k; ++q) bsum[static_cast<std::size_t>(q)] += r[q];
  }
  for (int64_t q = 0; q < k; ++q) gb[q] = static_cast<float>(bsum[static_cast<std::size_t>(q)]);
  return loss + w_norm * inv_n / (2.0 * C_);
}

double LinearObjective::penalty(const torch::Tensor& table) const {
  const double inv_n = 1.0 / weight_sum_;
  return squared_norm(table.data_ptr<float>(), table.numel()) * inv_n / (2.0 * C_);
}

}  // namespace kiln::train
