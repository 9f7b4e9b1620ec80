// Integrated gradients (Sundararajan et al. 2017) over a model's float input: the bag weights of a
// bag model (baseline: the empty bag) or the pixels of an image model (baseline: zeros, the
// normalized mean image), midpoint Riemann sum over `ig_steps` points of the straight path, all
// steps forwarded as one batch (chunks of batch_size) with gradients. Pixels are reported per
// patch of an 8 × 8 grid, summed over channels.
#include <algorithm>
#include <cmath>

#include "kiln/core/error.h"
#include "kiln/explain/explainer.h"
#include "kiln/nn/input_spec.h"
#include "text_features_of.h"

namespace kiln::explain {

ClassAttributions Explainer::ig_one(const data::Examples& examples, std::size_t i) const {
  const nn::Batch one = predictor_.encode(examples.select({i}));
  const char* name = one.has(nn::kBagWeights) ? nn::kBagWeights : one.has(nn::kPixelValues) ? nn::kPixelValues : nullptr;
  if (name == nullptr) {
    throw ConfigError("--method ig needs a float input (bag weights or pixels), and this model reads only ids; use "
                      "--method partition or kernel");
  }
  const torch::Tensor x = one.at(name).to(torch::kFloat32);
  const int64_t steps = options_.ig_steps;
  const double t = predictor_.manifest().temperature();
  auto head = [&](const torch::Tensor& logits) {
    return options_.space == Space::kProbability ? torch::softmax(logits / t, 1) : logits;
  };
  const auto c = static_cast<int64_t>(predictor_.labels().size());
  torch::Tensor total = torch::zeros({c, x.numel()}, torch::kFloat64);
  torch::Tensor ends;
  {
    nn::Batch pair = nn::Batch::concat({one, one});
    pair.set(name, torch::cat({torch::zeros_like(x), x}, 0));
    ends = head(predictor_.forward(pair)).to(torch::kCPU, torch::kFloat64);  // [2, C]: f(0), f(x)
  }
  for (int64_t start = 0; start < steps; start += options_.batch_size) {
    const int64_t n = std::min(options_.batch_size, steps - start);
    std::vector<nn::Batch> copies(static_cast<std::size_t>(n), one);
    nn::Batch batch = nn::Batch::concat(copies);
    std::vector<torch::Tensor> scaled;
    for (int64_t k = 0; k < n; ++k) scaled.push_back(x * ((static_cast<double>(start + k) + 0.5) / static_cast<double>(steps)));
    torch::Tensor input = torch::cat(scaled, 0).to(predictor_.device()).requires_grad_(true);
    batch.set(name, input);
    const torch::Tensor out = head(predictor_.forward(batch, /*gradients=*/true));
    for (int64_t k = 0; k < c; ++k) {
      auto g = torch::autograd::grad({out.select(1, k).sum()}, {input}, {}, /*retain_graph=*/k + 1 < c)[0];
      total[k] += g.detach().to(torch::kCPU, torch::kFloat64).reshape({n, x.numel()}).sum(0);
    }
  }
  const torch::Tensor attr = total / static_cast<double>(steps) * x.to(torch::kFloat64).reshape({1, -1});  // [C, numel]
  ClassAttributions out;
  const torch::Tensor f0 = ends[0].contiguous(), fx = ends[1].contiguous();
  out.base.assign(f0.data_ptr<double>(), f0.data_ptr<double>() + c);
  out.output.assign(fx.data_ptr<double>(), fx.data_ptr<double>() + c);
  torch::Tensor grouped;  // [features, C]
  if (std::string(name) == nn::kBagWeights) {
    grouped = attr.t().contiguous();
    const auto& pre = *predictor_.preprocessors().front();
    const auto idx = one.at(nn::kBagIndices);
    std::optional<std::vector<prep::FeatureSpan>> spans;
    if (examples.has_text()) spans = feature_spans_of(pre, examples.texts[i]);
    for (int64_t k = 0; k < idx.size(0); ++k) {
      const int64_t j = idx.data_ptr<int64_t>()[k];
      Attribution a;
      a.feature = pre.feature_name(j);
      if (a.feature.empty()) a.feature = "feature:" + std::to_string(j);
      if (spans) {
        const std::string& text = examples.texts[i];
        for (const auto& s : *spans) {
          if (s.feature == j) a.spans.emplace_back(code_point_offset(text, s.begin), code_point_offset(text, s.end));
        }
      }
      out.features.push_back(std::move(a));
    }
  } else {
    const int64_t channels = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t grid = 8, ph = (h + grid - 1) / grid, pw = (w + grid - 1) / grid;
    auto map = attr.reshape({c, channels, h, w}).sum(1);  // [C, H, W]
    std::vector<torch::Tensor> rows;
    for (int64_t r = 0; r * ph < h; ++r) {
      for (int64_t q = 0; q * pw < w; ++q) {
        rows.push_back(map.slice(1, r * ph, std::min(h, (r + 1) * ph)).slice(2, q * pw, std::min(w, (q + 1) * pw)).sum({1, 2}));
        Attribution a;
        a.feature = "patch(" + std::to_string(r) + "," + std::to_string(q) + ") rows " + std::to_string(r * ph) + "-" +
                    std::to_string(std::min(h, (r + 1) * ph) - 1) + " cols " + std::to_string(q * pw) + "-" +
                    std::to_string(std::min(w, (q + 1) * pw) - 1);
        out.features.push_back(std::move(a));
      }
    }
    grouped = torch::stack(rows, 0).contiguous();
  }
  out.values.assign(grouped.data_ptr<double>(), grouped.data_ptr<double>() + grouped.numel());
  const torch::Tensor sums = grouped.sum(0);
  std::vector<double> delta(static_cast<std::size_t>(c));
  for (int64_t k = 0; k < c; ++k) {
    delta[static_cast<std::size_t>(k)] = std::abs(out.output[static_cast<std::size_t>(k)] - out.base[static_cast<std::size_t>(k)] - sums[k].item<double>());
  }
  out.delta = delta;
  return out;
}

}  // namespace kiln::explain
