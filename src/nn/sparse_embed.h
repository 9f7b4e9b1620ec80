// The sparse first layer every family shares: an EmbeddingBag in sum mode over a SparseBatch.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "kiln/nn/text_classifier.h"

namespace kiln::nn {

/// Throws kiln::DataError naming the field unless `batch` is well formed for `input_dim`:
/// indices int64 [nnz] in [0, input_dim), offsets int64 [batch] starting at 0, non-decreasing and
/// <= nnz, weights undefined or floating [nnz].
void check_sparse_batch(const SparseBatch& batch, int64_t input_dim);

enum class Pooling { kSum, kMean };

/// [batch, embedding_dim]: row b is sum_i w_i * E[indices_i] over the row's entries (kSum), or the
/// same with the row's weights renormalised to sum to 1 (kMean). An empty row, or one whose weights
/// sum to 0, is the zero vector. Validates `batch` first (check_sparse_batch). When the table is
/// trained with sparse gradients on the CPU, the backward pass builds the coalesced row gradient
/// (distinct rows, sorted) in one accumulation instead of torch's per-entry [nnz, dim] gradient.
[[nodiscard]] torch::Tensor embed_sparse(torch::nn::EmbeddingBag& bag, const SparseBatch& batch, Pooling pooling);

}  // namespace kiln::nn
