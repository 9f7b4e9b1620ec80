// The sparse first layer every family shares: an EmbeddingBag in sum mode over a Batch's bag of features.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "kiln/nn/batch.h"

namespace kiln::nn {

/// A Batch's bag of features in EmbeddingBag layout: row b's features are
/// indices[offsets[b] : offsets[b+1]] with weights at the same positions (weights undefined = 1).
struct SparseBatch {
  torch::Tensor indices;  ///< int64 [nnz], each in [0, input_dim)
  torch::Tensor offsets;  ///< int64 [batch], offsets[0] == 0, non-decreasing
  torch::Tensor weights;  ///< float32 [nnz] or undefined
  [[nodiscard]] SparseBatch to(torch::Device device) const;
};

/// The bag_indices / bag_offsets / bag_weights tensors of `batch` (bag_weights optional). Throws
/// DataError naming the missing tensor.
[[nodiscard]] SparseBatch bag_of(const Batch& batch);

/// Throws kiln::DataError naming the field unless `batch` is well formed for `input_dim`:
/// indices int64 [nnz] in [0, input_dim), offsets int64 [batch] starting at 0, non-decreasing and
/// <= nnz, weights undefined or floating [nnz].
void check_sparse_batch(const SparseBatch& batch, int64_t input_dim);

enum class Pooling { kSum, kMean, kSqrtN };

/// [batch, embedding_dim]: row b is sum_i w_i * E[indices_i] over the row's entries (kSum), or the
/// same with the row's weights renormalised to sum to 1 (kMean), or divided by the root of the sum
/// of their squares (kSqrtN, TensorFlow's "sqrtn" combiner: sqrt(n) for n unit weights). An empty row, or one whose weights
/// sum to 0, is the zero vector. Validates `batch` first (check_sparse_batch). When the table is
/// trained with sparse gradients on the CPU, the backward pass builds the coalesced row gradient
/// (distinct rows, sorted) in one accumulation instead of torch's per-entry [nnz, dim] gradient.
[[nodiscard]] torch::Tensor embed_sparse(torch::nn::EmbeddingBag& bag, const SparseBatch& batch, Pooling pooling);

}  // namespace kiln::nn
