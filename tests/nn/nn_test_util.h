// Shared helpers for the nn tests: building SparseBatches from row lists, dense references, and a
// separable synthetic sparse problem.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/core/error.h"
#include "kiln/nn/model.h"
#include "kiln/nn/sparse_embed.h"

namespace kiln::nn {

/// The inputs of a bag-of-features preprocessor with `input_dim` columns.
inline InputSpec bag_spec(int64_t input_dim) {
  InputSpec spec;
  spec.tensors.push_back({kBagIndices, "int64", {"nnz"}, input_dim});
  spec.tensors.push_back({kBagOffsets, "int64", {"batch"}, 0});
  spec.tensors.push_back({kBagWeights, "float32", {"nnz"}, 0});
  return spec;
}

/// Tests build bag models by their column count.
inline std::shared_ptr<Model> make_model(const ModelSpec& spec, int64_t input_dim, int64_t num_classes) {
  return make_model(spec, bag_spec(input_dim), num_classes);
}

/// The Batch holding a SparseBatch's tensors (weights only when defined).
inline Batch to_batch(const SparseBatch& sb) {
  Batch b(sb.offsets.defined() && sb.offsets.dim() == 1 ? sb.offsets.size(0) : 0);
  if (sb.indices.defined()) b.set(kBagIndices, sb.indices);
  if (sb.offsets.defined()) b.set(kBagOffsets, sb.offsets);
  if (sb.weights.defined()) b.set(kBagWeights, sb.weights);
  return b;
}

}  // namespace kiln::nn

namespace kiln::nn::testing {

using Row = std::vector<std::pair<int64_t, float>>;

inline SparseBatch make_sparse_batch(const std::vector<Row>& rows, bool weighted = true) {
  std::vector<int64_t> indices, offsets;
  std::vector<float> weights;
  for (const auto& row : rows) {
    offsets.push_back(static_cast<int64_t>(indices.size()));
    for (const auto& [index, weight] : row) {
      indices.push_back(index);
      weights.push_back(weight);
    }
  }
  SparseBatch batch;
  batch.indices = torch::tensor(indices, torch::kInt64).reshape({static_cast<int64_t>(indices.size())});
  batch.offsets = torch::tensor(offsets, torch::kInt64).reshape({static_cast<int64_t>(offsets.size())});
  if (weighted) batch.weights = torch::tensor(weights, torch::kFloat32).reshape({static_cast<int64_t>(weights.size())});
  return batch;
}

inline Batch make_batch(const std::vector<Row>& rows, bool weighted = true) {
  return to_batch(make_sparse_batch(rows, weighted));
}

/// Dense [rows, input_dim] matrix of a row list (duplicates add up), for reference computations.
inline torch::Tensor dense(const std::vector<Row>& rows, int64_t input_dim, bool weighted = true) {
  auto x = torch::zeros({static_cast<int64_t>(rows.size()), input_dim});
  for (size_t r = 0; r < rows.size(); ++r) {
    for (const auto& [index, weight] : rows[r]) x[r][index] += weighted ? weight : 1.0f;
  }
  return x;
}

/// The parameter `name` of `model` (a view: writes under NoGradGuard change the model).
inline torch::Tensor param(torch::nn::Module& model, const std::string& name) {
  auto params = model.named_parameters();
  EXPECT_TRUE(params.contains(name)) << "missing parameter " << name;
  return params[name];
}

/// A separable problem: class c owns features [c * block, (c + 1) * block); each row draws
/// `signal` features from its class's block and `noise` features from anywhere, with weights in
/// [0.5, 1.5].
struct SyntheticProblem {
  std::vector<Row> rows;
  std::vector<int64_t> labels;
  int64_t input_dim = 0;
  int64_t num_classes = 0;
};

inline SyntheticProblem synthetic_problem(int64_t num_classes, int64_t rows_per_class, uint32_t seed) {
  const int64_t block = 30, signal = 3, noise = 4;
  SyntheticProblem p;
  p.num_classes = num_classes;
  p.input_dim = num_classes * block + 50;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> in_block(0, block - 1), anywhere(0, p.input_dim - 1);
  std::uniform_real_distribution<float> weight(0.5f, 1.5f);
  for (int64_t c = 0; c < num_classes; ++c) {
    for (int64_t i = 0; i < rows_per_class; ++i) {
      Row row;
      for (int64_t s = 0; s < signal; ++s) row.emplace_back(c * block + in_block(rng), weight(rng));
      for (int64_t s = 0; s < noise; ++s) row.emplace_back(anywhere(rng), weight(rng));
      p.rows.push_back(row);
      p.labels.push_back(c);
    }
  }
  return p;
}

/// Fills every parameter and buffer of `m`, by name in sorted order (index j), with the formula of
/// the golden scripts (tests/golden/make_cnn_golden.py): running_var 0.5 + 0.5·sin(0.37k + j)²,
/// num_batches_tracked left as it is, tensors of rank >= 2 sin(0.37k + 1.3j)·√(2 / fan_in), the
/// rest 0.1·sin(0.37k + 1.3j), k the flat index. Returns the names in that order.
inline std::vector<std::string> fill_like_golden(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& p : m.named_parameters()) state[p.key()] = p.value();
  for (const auto& b : m.named_buffers()) state[b.key()] = b.value();
  const auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  torch::NoGradGuard no_grad;
  std::vector<std::string> names;
  for (auto& [name, t] : state) {
    const double j = static_cast<double>(names.size());
    names.push_back(name);
    if (ends_with(name, "num_batches_tracked")) continue;
    const auto k = torch::arange(t.numel(), torch::kFloat64);
    torch::Tensor v;
    if (ends_with(name, "running_var")) {
      v = 0.5 + 0.5 * torch::sin(0.37 * k + j).pow(2);
    } else if (t.dim() >= 2) {
      v = torch::sin(0.37 * k + 1.3 * j) * std::sqrt(2.0 / (static_cast<double>(t.numel()) / t.size(0)));
    } else {
      v = 0.1 * torch::sin(0.37 * k + 1.3 * j);
    }
    t.copy_(v.view(t.sizes()).to(t.dtype()));
  }
  return names;
}

/// Runs `fn`, expecting a ConfigError whose message contains every string in `parts`.
template <typename Fn>
void expect_config_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected kiln::ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    for (const auto& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg << "\nmissing: " << part;
  }
}

}  // namespace kiln::nn::testing
