// Integrated gradients over BERT's word embeddings (Sundararajan et al. 2017, as Captum's
// LayerIntegratedGradients on embeddings.word_embeddings computes them): the path runs from the
// baseline embeddings e' (every token but [CLS]/[SEP] given the [PAD] row, or zeros) to the
// text's e, position and token-type embeddings unchanged; attribution of token t for class k is
// Σ_h (e − e')[t, h] · mean over the `ig_steps` midpoints α of ∂f_k/∂e[t, h] at e' + α (e − e').
// All steps of one text forward as one batch (chunks of batch_size) with gradients; the
// completeness gap |f(x) − f(baseline) − Σ attributions| is reported per class as `delta`.
#include <algorithm>
#include <cmath>

#include "kiln/core/error.h"
#include "kiln/explain/explainer.h"
#include "kiln/nn/bert.h"
#include "kiln/nn/input_spec.h"

namespace kiln::explain {

ClassAttributions Explainer::ig_tokens_one(const data::Examples& examples, std::size_t i) const {
  if (!examples.has_text()) {
    throw DataError("--method ig on a BERT model explains texts, and these examples have none; give the data a text "
                    "column (--text-col)");
  }
  const auto* bert = dynamic_cast<const nn::BertModel*>(predictor_.model().get());
  const auto& pre = *predictor_.preprocessors().front();
  const auto* tf = dynamic_cast<const prep::TextFeatures*>(&pre);
  const std::string& text = examples.texts[i];
  const auto offsets = tf ? tf->token_offsets(text) : std::nullopt;
  const nn::Batch one = predictor_.encode(examples.select({i}));
  const torch::Tensor ids = one.at(nn::kInputIds);
  if (bert == nullptr || !offsets || ids.dim() != 2 || ids.size(1) != static_cast<int64_t>(offsets->size())) {
    throw Error("explain: integrated gradients over tokens need a BERT model with one token row per text");
  }
  const int64_t length = ids.size(1);
  const torch::Device device = predictor_.device();
  torch::Tensor x, base;  // [1, L, H] word embeddings of the text and of the baseline
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor table = bert->word_embeddings_weight().detach();
    const torch::Tensor dev_ids = ids.to(device);
    x = table.index_select(0, dev_ids.reshape({-1})).reshape({1, length, -1});
    const auto special = torch::zeros({1, length, 1}, torch::kBool);
    for (int64_t t = 0; t < length; ++t) {
      const auto& [s, e] = (*offsets)[static_cast<std::size_t>(t)];
      special[0][t][0] = s == 0 && e == 0;
    }
    const torch::Tensor keep = special.to(device);
    torch::Tensor start;
    if (options_.ig_baseline == IgBaseline::kPad) {
      const int64_t pad = bert->options().config.pad_token_id;
      start = table[pad].reshape({1, 1, -1}).expand_as(x);
    } else {
      start = torch::zeros_like(x);
    }
    base = torch::where(keep, x, start).contiguous();
  }
  const int64_t steps = options_.ig_steps;
  const double t = predictor_.manifest().temperature();
  auto head = [&](const torch::Tensor& logits) {
    return options_.space == Space::kProbability ? torch::softmax(logits / t, 1) : logits;
  };
  auto batch_of = [&](int64_t n, const torch::Tensor& embeds) {
    nn::Batch b = nn::Batch::concat(std::vector<nn::Batch>(static_cast<std::size_t>(n), one));
    b.set(nn::kInputsEmbeds, embeds);
    return b;
  };
  const auto c = static_cast<int64_t>(predictor_.labels().size());
  torch::Tensor ends;  // [2, C]: f(baseline), f(x)
  {
    torch::NoGradGuard no_grad;
    ends = head(predictor_.forward(batch_of(2, torch::cat({base, x}, 0)))).to(torch::kCPU, torch::kFloat64);
  }
  const torch::Tensor diff = x - base;  // [1, L, H]
  torch::Tensor total = torch::zeros({c, length}, torch::kFloat64);
  for (int64_t start = 0; start < steps; start += options_.batch_size) {
    const int64_t n = std::min(options_.batch_size, steps - start);
    const torch::Tensor alphas =
        (torch::arange(start, start + n, torch::TensorOptions().dtype(torch::kFloat32).device(device)) + 0.5) /
        static_cast<double>(steps);
    torch::Tensor input = (base + alphas.reshape({n, 1, 1}) * diff).detach().requires_grad_(true);
    const torch::Tensor out = head(predictor_.forward(batch_of(n, input), /*gradients=*/true));
    for (int64_t k = 0; k < c; ++k) {
      const auto g = torch::autograd::grad({out.select(1, k).sum()}, {input}, {}, /*retain_graph=*/k + 1 < c)[0];
      total[k] += (g.sum(0) * diff[0]).sum(1).detach().to(torch::kCPU, torch::kFloat64);  // [L]
    }
  }
  const torch::Tensor attr = (total / static_cast<double>(steps)).contiguous();  // [C, L]
  ClassAttributions out;
  const torch::Tensor f0 = ends[0].contiguous(), fx = ends[1].contiguous();
  out.base.assign(f0.data_ptr<double>(), f0.data_ptr<double>() + c);
  out.output.assign(fx.data_ptr<double>(), fx.data_ptr<double>() + c);
  const double* ap = attr.data_ptr<double>();
  const int64_t* ip = ids.data_ptr<int64_t>();
  std::vector<double> sums(static_cast<std::size_t>(c), 0.0);
  for (int64_t p = 0; p < length; ++p) {
    const auto& [s, e] = (*offsets)[static_cast<std::size_t>(p)];
    if (s == 0 && e == 0) continue;  // [CLS], [SEP]: equal to the baseline, attribution 0
    Attribution a;
    a.feature = pre.feature_name(ip[p]);
    a.spans.emplace_back(s, e);
    out.features.push_back(std::move(a));
    for (int64_t k = 0; k < c; ++k) {
      out.values.push_back(ap[k * length + p]);
      sums[static_cast<std::size_t>(k)] += ap[k * length + p];
    }
  }
  std::vector<double> delta(static_cast<std::size_t>(c));
  for (std::size_t k = 0; k < delta.size(); ++k) delta[k] = std::abs(out.output[k] - out.base[k] - sums[k]);
  out.delta = delta;
  return out;
}

}  // namespace kiln::explain
