#include "bag_sgd.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "kiln/core/error.h"

namespace kiln::train {
namespace {

struct Tables {
  float* table = nullptr;
  float* weight = nullptr;
  float* bias = nullptr;
  int64_t dim = 0, classes = 0;
  const int64_t* indices = nullptr;
  const int64_t* offsets = nullptr;
  const float* weights = nullptr;
  int64_t rows = 0, nnz = 0;
  nn::BagLinearParts::Pooling pooling = nn::BagLinearParts::Pooling::kMean;
  const int64_t* y = nullptr;
  const float* class_weights = nullptr;
};

struct SpanResult {
  double loss_sum = 0;
  int64_t done = 0;
  bool finite = true;
};

// One example after another; `lr` holds each example's learning rate. Built for several vector
// widths; the loader picks the widest the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default")))
SpanResult run_span(const Tables& t, const int64_t* order, const double* lr, int64_t count, float* scratch) {
  const int64_t d = t.dim, classes = t.classes;
  float* __restrict h = scratch;
  float* __restrict gh = scratch + d;
  float* __restrict z = scratch + 2 * d;
  SpanResult out;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = order[k];
    const int64_t begin = t.offsets[i];
    const int64_t end = i + 1 < t.rows ? t.offsets[i + 1] : t.nnz;
    float norm = 1.0F;
    if (t.pooling == nn::BagLinearParts::Pooling::kMean) {
      float sum = 0.0F;
      for (int64_t j = begin; j < end; ++j) sum += t.weights[j];
      norm = sum;
    } else if (t.pooling == nn::BagLinearParts::Pooling::kSqrtN) {
      float sum = 0.0F;
      for (int64_t j = begin; j < end; ++j) sum += t.weights[j] * t.weights[j];
      norm = std::sqrt(sum);
    }
    const bool empty = !(norm != 0.0F) || begin == end;
    std::fill(h, h + d, 0.0F);
    if (!empty) {
      // The rows are scattered over a table of hundreds of MB: each is fetched from memory
      // kPrefetch rows ahead of its use, its cache lines (16 floats each) in turn.
      constexpr int64_t kPrefetch = 16;
      for (int64_t j = begin; j < end; ++j) {
        if (j + kPrefetch < end) {
          const float* ahead = t.table + t.indices[j + kPrefetch] * d;
          for (int64_t c = 0; c < d; c += 16) __builtin_prefetch(ahead + c);
        }
        const float a = t.weights[j] / norm;
        const float* __restrict row = t.table + t.indices[j] * d;
        for (int64_t c = 0; c < d; ++c) h[c] += a * row[c];
      }
    }
    float zmax = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) {
      const float* __restrict w = t.weight + c * d;
      float s = 0.0F;
      for (int64_t q = 0; q < d; ++q) s += w[q] * h[q];
      z[c] = s + t.bias[c];
      zmax = std::max(zmax, z[c]);
    }
    const int64_t label = t.y[i];
    const double shifted_label_logit = static_cast<double>(z[label]) - zmax;
    double total = 0;
    for (int64_t c = 0; c < classes; ++c) {
      z[c] = std::exp(z[c] - zmax);
      total += z[c];
    }
    const float cw = t.class_weights[label];
    // −log p_y = log Σ exp(z − max) − (z_y − max): finite even when p_y underflows.
    const double loss = cw * (std::log(total) - shifted_label_logit);
    if (!std::isfinite(loss)) {
      out.finite = false;
      return out;
    }
    out.loss_sum += loss;
    const auto inv = static_cast<float>(1.0 / total);
    const auto rate = static_cast<float>(lr[k]);
    std::fill(gh, gh + d, 0.0F);
    for (int64_t c = 0; c < classes; ++c) {
      const float g = (z[c] * inv - (c == label ? 1.0F : 0.0F)) * cw;
      if (g == 0.0F) continue;
      float* __restrict w = t.weight + c * d;
      const float step = rate * g;
      for (int64_t q = 0; q < d; ++q) {
        gh[q] += g * w[q];
        w[q] -= step * h[q];
      }
      t.bias[c] -= step;
    }
    if (k + 1 < count) {
      // The next example's first rows, while this one's update runs from cache.
      const int64_t next = order[k + 1];
      const int64_t nb = t.offsets[next], ne = next + 1 < t.rows ? t.offsets[next + 1] : t.nnz;
      for (int64_t j = nb; j < std::min(ne, nb + 8); ++j) {
        const float* row = t.table + t.indices[j] * d;
        for (int64_t c = 0; c < d; c += 16) __builtin_prefetch(row + c);
      }
    }
    if (!empty) {
      for (int64_t j = begin; j < end; ++j) {
        const float a = rate * t.weights[j] / norm;
        float* __restrict row = t.table + t.indices[j] * d;
        for (int64_t q = 0; q < d; ++q) row[q] -= a * gh[q];
      }
    }
    ++out.done;
  }
  return out;
}

float* float_data(const torch::Tensor& x, const char* what) {
  if (!x.defined() || x.scalar_type() != torch::kFloat32 || !x.device().is_cpu() || !x.is_contiguous()) {
    throw ConfigError(std::string("the per-example SGD solver needs the model's ") + what +
                      " as a contiguous float32 CPU tensor; train on the CPU in float32");
  }
  return x.data_ptr<float>();
}

}  // namespace

BagSgdResult bag_sgd_epoch(const BagSgdEpoch& e) {
  const nn::BagLinearParts& p = *e.parts;
  Tables t;
  t.table = float_data(p.table, "embedding table");
  t.weight = float_data(p.weight, "output weight");
  t.bias = float_data(p.bias, "output bias");
  t.dim = p.table.size(1);
  t.classes = p.weight.size(0);
  t.pooling = p.pooling;
  if (p.weight.size(1) != t.dim || p.bias.size(0) != t.classes) {
    throw ConfigError("the per-example SGD solver: the output layer's shape does not match the embedding table");
  }
  const nn::Batch& x = *e.x;
  if (!x.has(nn::kBagIndices) || !x.has(nn::kBagOffsets)) {
    throw ConfigError("the per-example SGD solver reads bag features (bag_indices, bag_offsets); this preprocessor "
                      "gives none — use solver minibatch");
  }
  const auto indices = x.get(nn::kBagIndices).contiguous();
  const auto offsets = x.get(nn::kBagOffsets).contiguous();
  torch::Tensor weights = x.has(nn::kBagWeights) ? x.get(nn::kBagWeights).to(torch::kFloat32).contiguous()
                                                 : torch::ones({indices.numel()}, torch::kFloat32);
  t.indices = indices.data_ptr<int64_t>();
  t.offsets = offsets.data_ptr<int64_t>();
  t.weights = weights.data_ptr<float>();
  t.rows = offsets.numel();
  t.nnz = indices.numel();
  const int64_t features = p.table.size(0);
  for (int64_t j = 0; j < t.nnz; ++j) {
    if (t.indices[j] < 0 || t.indices[j] >= features) {
      throw DataError("bag_indices holds " + std::to_string(t.indices[j]) + ", outside the embedding table's " +
                      std::to_string(features) + " rows");
    }
  }
  t.y = e.y->data();
  t.class_weights = e.class_weights->data();

  const auto n = static_cast<int64_t>(e.order->size());
  const int threads = static_cast<int>(std::clamp<int64_t>(e.threads, 1, std::max<int64_t>(1, n / 1024)));
  constexpr int64_t kBlock = 4096;
  // With several threads running at once, the k-th example of part w is the (k·threads + w)-th
  // example of the epoch in time, so the learning rate decays over the epoch as with one thread.
  auto run_part = [&](int64_t from, int64_t to, int part, bool report) {
    std::vector<float> scratch(static_cast<std::size_t>(2 * t.dim + t.classes));
    std::vector<double> lr(static_cast<std::size_t>(kBlock));
    SpanResult total;
    for (int64_t start = from; start < to; start += kBlock) {
      const int64_t count = std::min(kBlock, to - start);
      for (int64_t k = 0; k < count; ++k) {
        lr[static_cast<std::size_t>(k)] = e.base_lr * e.factor(e.first_step + (start + k - from) * threads + part);
      }
      const SpanResult r = run_span(t, e.order->data() + start, lr.data(), count, scratch.data());
      total.loss_sum += r.loss_sum;
      total.done += r.done;
      if (!r.finite) {
        total.finite = false;
        break;
      }
      if (report && e.on_block) e.on_block(start + count - from, r.done ? r.loss_sum / static_cast<double>(r.done) : 0.0);
    }
    return total;
  };

  BagSgdResult out;
  if (threads == 1) {
    const SpanResult r = run_part(0, n, 0, true);
    out.loss_sum = r.loss_sum;
    out.examples = r.done;
    out.finite = r.finite;
    return out;
  }
  std::vector<SpanResult> parts(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) {
    pool.emplace_back([&, w] { parts[static_cast<std::size_t>(w)] = run_part(n * w / threads, n * (w + 1) / threads, w, false); });
  }
  parts[0] = run_part(0, n / threads, 0, false);
  for (auto& th : pool) th.join();
  for (const auto& r : parts) {
    out.loss_sum += r.loss_sum;
    out.examples += r.done;
    out.finite = out.finite && r.finite;
  }
  if (e.on_block) e.on_block(out.examples, out.examples ? out.loss_sum / static_cast<double>(out.examples) : 0.0);
  return out;
}

}  // namespace kiln::train
