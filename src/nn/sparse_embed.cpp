#include "sparse_embed.h"

#include <string>

#include "kiln/core/error.h"

namespace kiln::nn {

SparseBatch SparseBatch::to(torch::Device device) const {
  SparseBatch out;
  if (indices.defined()) out.indices = indices.to(device);
  if (offsets.defined()) out.offsets = offsets.to(device);
  if (weights.defined()) out.weights = weights.to(device);
  return out;
}

namespace {

std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string shape = "[";
  for (int64_t d = 0; d < t.dim(); ++d) shape += (d ? ", " : "") + std::to_string(t.size(d));
  return std::string(c10::toString(t.scalar_type())) + " " + shape + "]";
}

}  // namespace

void check_sparse_batch(const SparseBatch& batch, int64_t input_dim) {
  if (!batch.indices.defined() || batch.indices.dim() != 1 || batch.indices.scalar_type() != torch::kInt64) {
    throw DataError("SparseBatch.indices must be an int64 tensor [nnz], got " + describe(batch.indices));
  }
  if (!batch.offsets.defined() || batch.offsets.dim() != 1 || batch.offsets.scalar_type() != torch::kInt64) {
    throw DataError("SparseBatch.offsets must be an int64 tensor [batch], got " + describe(batch.offsets));
  }
  const int64_t nnz = batch.indices.size(0);
  if (batch.weights.defined() &&
      (batch.weights.dim() != 1 || batch.weights.size(0) != nnz || !batch.weights.is_floating_point())) {
    throw DataError("SparseBatch.weights must be undefined or a floating tensor [" + std::to_string(nnz) +
                    "] matching indices, got " + describe(batch.weights));
  }
  if (nnz > 0) {
    const int64_t lo = batch.indices.min().item<int64_t>();
    const int64_t hi = batch.indices.max().item<int64_t>();
    if (lo < 0 || hi >= input_dim) {
      throw DataError("SparseBatch.indices has value " + std::to_string(lo < 0 ? lo : hi) + " outside [0, " +
                      std::to_string(input_dim) + ") (the model's input_dim); featurizer and model disagree");
    }
  }
  const int64_t rows = batch.offsets.size(0);
  if (rows > 0) {
    const int64_t first = batch.offsets[0].item<int64_t>();
    const int64_t last = batch.offsets[rows - 1].item<int64_t>();
    if (first != 0) throw DataError("SparseBatch.offsets[0] must be 0, got " + std::to_string(first));
    if (last > nnz) {
      throw DataError("SparseBatch.offsets[" + std::to_string(rows - 1) + "] = " + std::to_string(last) +
                      " exceeds nnz = " + std::to_string(nnz));
    }
    if (rows > 1 && (batch.offsets.slice(0, 1) < batch.offsets.slice(0, 0, rows - 1)).any().item<bool>()) {
      throw DataError("SparseBatch.offsets must be non-decreasing");
    }
  } else if (nnz > 0) {
    throw DataError("SparseBatch.offsets is empty but indices has " + std::to_string(nnz) + " entries");
  }
}

torch::Tensor embed_sparse(torch::nn::EmbeddingBag& bag, const SparseBatch& batch, Pooling pooling) {
  const auto& weight = bag->weight;
  check_sparse_batch(batch, weight.size(0));
  const int64_t rows = batch.offsets.size(0);
  if (rows == 0) return torch::zeros({0, weight.size(1)}, weight.options());

  torch::Tensor w;
  if (batch.weights.defined()) w = batch.weights.to(weight.scalar_type());
  const torch::Tensor pooled = bag->forward(batch.indices, batch.offsets, w);
  if (pooling == Pooling::kSum) return pooled;

  // Mean: divide each row by the sum of its weights (its entry count when unweighted). Dividing the
  // pooled sum equals renormalising the weights, at O(batch) instead of O(nnz) extra work.
  const int64_t nnz = batch.indices.size(0);
  const auto ends = torch::cat({batch.offsets.slice(0, 1), torch::full({1}, nnz, batch.offsets.options())});
  const auto counts = ends - batch.offsets;
  torch::Tensor totals;
  if (w.defined()) {
    const auto row_of_entry = torch::repeat_interleave(torch::arange(rows, counts.options()), counts);
    totals = torch::zeros({rows}, pooled.options()).index_add_(0, row_of_entry, w);
  } else {
    totals = counts.to(pooled.scalar_type());
  }
  totals = torch::where(totals == 0, torch::ones_like(totals), totals);
  return pooled / totals.unsqueeze(1);
}

}  // namespace kiln::nn
