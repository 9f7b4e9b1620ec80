// Private: one example's bag in an encoded batch, and its features merged by column.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "kiln/nn/batch.h"
#include "kiln/nn/input_spec.h"

namespace kiln::explain {

/// The bag (indices, weights) of row `row` of an encoded batch; `count` gets its length.
inline std::pair<const int64_t*, const float*> bag_row(const nn::Batch& batch, int64_t row, int64_t& count) {
  const auto& idx = batch.at(nn::kBagIndices);
  const auto& off = batch.at(nn::kBagOffsets);
  const int64_t begin = off.data_ptr<int64_t>()[row];
  const int64_t end = row + 1 < off.size(0) ? off.data_ptr<int64_t>()[row + 1] : idx.size(0);
  count = end - begin;
  return {idx.data_ptr<int64_t>() + begin, batch.at(nn::kBagWeights).data_ptr<float>() + begin};
}

/// Row `row`'s features in column order, repeated columns summed, stored zeros dropped.
inline std::map<int64_t, double> bag_features(const nn::Batch& batch, int64_t row) {
  int64_t n = 0;
  auto [idx, w] = bag_row(batch, row, n);
  std::map<int64_t, double> out;
  for (int64_t k = 0; k < n; ++k) out[idx[k]] += w[k];
  for (auto it = out.begin(); it != out.end();) it = it->second == 0 ? out.erase(it) : std::next(it);
  return out;
}

}  // namespace kiln::explain
