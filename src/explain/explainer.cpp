// Explainer: method choice, dispatch, and exact linear SHAP.
#include "kiln/explain/explainer.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "kiln/artifact/artifact.h"
#include "kiln/core/error.h"
#include "kiln/nn/bert.h"
#include "kiln/nn/input_spec.h"
#include "bag_row.h"
#include "text_features_of.h"

namespace kiln::explain {

std::string space_name(Space s) { return s == Space::kLogit ? "logit" : "probability"; }

std::optional<Method> parse_method(const std::string& name, const std::string& field) {
  if (name == "auto") return std::nullopt;
  if (name == "linear") return Method::kLinear;
  if (name == "kernel") return Method::kKernel;
  if (name == "partition") return Method::kPartition;
  if (name == "ig") return Method::kIntegratedGradients;
  throw ConfigError(field + " must be one of auto, linear, kernel, partition, ig, got '" + name + "'");
}

Space parse_space(const std::string& name, const std::string& field) {
  if (name == "logit") return Space::kLogit;
  if (name == "probability") return Space::kProbability;
  throw ConfigError(field + " must be logit or probability, got '" + name + "'");
}

IgBaseline parse_ig_baseline(const std::string& name, const std::string& field) {
  if (name == "pad") return IgBaseline::kPad;
  if (name == "zero") return IgBaseline::kZero;
  throw ConfigError(field + " must be pad ([PAD] word embeddings) or zero (zero word embeddings), got '" + name + "'");
}

void ExplainOptions::validate() const {
  kernel.validate();
  if (ig_steps < 1 || ig_steps > 100000) {
    throw ConfigError("ig_steps must be in [1, 100000], got " + std::to_string(ig_steps));
  }
  if (batch_size < 1) throw ConfigError("batch_size must be >= 1, got " + std::to_string(batch_size));
  if (background_summary) background_summary->validate();
}

namespace {

bool reads(const artifact::Predictor& p, const char* tensor) {
  for (const auto& t : p.manifest().inputs.tensors) {
    if (t.name == tensor) return true;
  }
  return false;
}

// Whether the model, or a member of an ensemble ("member<i>/<tensor>"), reads `tensor`.
bool some_member_reads(const artifact::Predictor& p, const char* tensor) {
  const std::string suffix = std::string("/") + tensor;
  for (const auto& t : p.manifest().inputs.tensors) {
    if (t.name == tensor) return true;
    if (t.name.size() > suffix.size() && t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return true;
    }
  }
  return false;
}

std::string family(const artifact::Predictor& p) { return p.manifest().model.family; }

}  // namespace

Explainer::Explainer(const artifact::Predictor& predictor, ExplainOptions options)
    : predictor_(predictor), options_(std::move(options)) {
  options_.validate();
  // An ensemble's members read text through their own tensors: Kernel SHAP over its words.
  const bool has_text = predictor_.manifest().inputs.tensors.empty() || some_member_reads(predictor_, nn::kBagIndices) ||
                        some_member_reads(predictor_, nn::kInputIds);
  auto linear = predictor_.model()->linear_parts();
  if (options_.method) {
    method_ = *options_.method;
  } else if (linear) {
    method_ = Method::kLinear;
  } else if (reads(predictor_, nn::kInputIds)) {
    method_ = Method::kPartition;
  } else if (has_text) {
    method_ = Method::kKernel;
  } else {
    method_ = Method::kIntegratedGradients;
  }
  const std::string fam = family(predictor_);
  if (options_.background_summary && method_ != Method::kKernel) {
    throw ConfigError("--background-k summarises Kernel SHAP's background, and this run explains with method " +
                      method_name(method_) + "; drop --background-k or use --method kernel");
  }
  if (options_.background_summary && options_.background.size() == 0) {
    throw ConfigError("--background-k summarises --background, and no background was given; add --background FILE or "
                      "drop --background-k");
  }
  if (options_.background.size() > 0 && (method_ == Method::kPartition || method_ == Method::kIntegratedGradients)) {
    throw ConfigError("--background applies to --method linear (E[x]) and kernel (hidden bag features take background "
                      "values), and this run explains with method " + method_name(method_) + "; drop --background");
  }
  if (method_ == Method::kLinear) {
    if (!linear) {
      throw ConfigError("--method linear (exact linear SHAP) needs a model of family linear (or the logreg preset), "
                        "this artifact's family is '" + fam + "'; use --method kernel or partition (or auto)");
    }
    if (options_.space != Space::kLogit) {
      throw ConfigError("exact linear SHAP is additive in logits only, got --space probability; use --space logit, "
                        "or --method kernel to explain probabilities");
    }
    weight_ = linear->table.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const auto b = linear->bias.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    bias_.assign(b.data_ptr<double>(), b.data_ptr<double>() + b.numel());
    data::Examples background = options_.background;
    if (background.size() == 0 && !predictor_.dir().empty()) background = artifact::load_heldout(predictor_.dir());
    if (background.size() == 0) {
      throw ConfigError("exact linear SHAP needs a background set for E[x], and this artifact has no held-out sample "
                        "(heldout.jsonl); pass --background FILE with texts like the training data");
    }
    const int64_t v = weight_.size(0), c = weight_.size(1);
    mean_.assign(static_cast<std::size_t>(v), 0.0);
    const nn::Batch batch = predictor_.encode(background);
    for (int64_t r = 0; r < batch.size(); ++r) {
      int64_t n = 0;
      auto [idx, w] = bag_row(batch, r, n);
      for (int64_t k = 0; k < n; ++k) mean_[static_cast<std::size_t>(idx[k])] += w[k];
    }
    const double rows = static_cast<double>(batch.size());
    weight_mean_.assign(static_cast<std::size_t>(c), 0.0);
    const float* wp = weight_.data_ptr<float>();
    for (int64_t j = 0; j < v; ++j) {
      double& m = mean_[static_cast<std::size_t>(j)];
      m /= rows;
      if (m == 0) continue;
      for (int64_t k = 0; k < c; ++k) weight_mean_[static_cast<std::size_t>(k)] += m * wp[j * c + k];
    }
    base_.resize(static_cast<std::size_t>(c));
    for (int64_t k = 0; k < c; ++k) base_[static_cast<std::size_t>(k)] = bias_[static_cast<std::size_t>(k)] + weight_mean_[static_cast<std::size_t>(k)];
  } else if (method_ == Method::kKernel && options_.background.size() > 0) {
    init_background();
  } else if ((method_ == Method::kKernel || method_ == Method::kPartition) && !has_text) {
    throw ConfigError("--method " + method_name(method_) + " hides words of the text, and this model (family '" + fam +
                      "') reads no text; use --method ig (or auto) for image models");
  } else if (method_ == Method::kIntegratedGradients && reads(predictor_, nn::kInputIds)) {
    if (dynamic_cast<const nn::BertModel*>(predictor_.model().get()) == nullptr) {
      throw ConfigError("--method ig on token ids differentiates at BERT's word embeddings, and this model's family is '" +
                        fam + "'; use --method partition (or auto)");
    }
    const auto& pre = *predictor_.preprocessors().front();
    const auto* tf = dynamic_cast<const prep::TextFeatures*>(&pre);
    if (tf == nullptr || !tf->token_offsets("a")) {
      throw ConfigError("--method ig needs one token row per text, and this artifact's " + pre.type() +
                        " preprocessor splits long texts into windows (long_text: window); use --method partition");
    }
  }
}

ClassAttributions Explainer::linear_one(const nn::Batch& batch, int64_t row, const std::string* text) const {
  const int64_t c = weight_.size(1);
  const float* wp = weight_.data_ptr<float>();
  int64_t n = 0;
  auto [idx, x] = bag_row(batch, row, n);
  // Features in column order, duplicates merged.
  std::map<int64_t, double> present;
  for (int64_t k = 0; k < n; ++k) present[idx[k]] += x[k];
  const auto spans = spans_by_feature(*predictor_.preprocessors().front(), text);
  const auto& pre = *predictor_.preprocessors().front();
  ClassAttributions out;
  out.base = base_;
  out.output = bias_;
  std::vector<double> absent(weight_mean_.size());
  for (std::size_t k = 0; k < absent.size(); ++k) absent[k] = -weight_mean_[k];
  for (const auto& [j, xj] : present) {
    if (xj == 0) continue;  // a stored zero is an absent feature
    out.features.push_back(feature_attribution(pre, j, spans));
    const double mj = mean_[static_cast<std::size_t>(j)];
    for (int64_t k = 0; k < c; ++k) {
      const double w = wp[j * c + k];
      out.values.push_back(w * (xj - mj));
      out.output[static_cast<std::size_t>(k)] += w * xj;
      absent[static_cast<std::size_t>(k)] += w * mj;
    }
  }
  Attribution rest;
  rest.feature = kAbsentFeatures;
  out.features.push_back(rest);
  out.values.insert(out.values.end(), absent.begin(), absent.end());
  return out;
}

torch::Tensor Explainer::outputs(const nn::Batch& batch) const {
  torch::Tensor logits = predictor_.forward(batch).to(torch::kCPU, torch::kFloat64);
  return options_.space == Space::kProbability ? torch::softmax(logits / predictor_.manifest().temperature(), 1) : logits;
}

torch::Tensor Explainer::outputs(const data::Examples& examples) const {
  const auto n = examples.size();
  const auto step = static_cast<std::size_t>(options_.batch_size);
  auto head = [&](const data::Examples& part) { return outputs(predictor_.encode(part)); };
  if (n > 0 && n <= step) return head(examples);  // one batch: no copy of the examples
  torch::Tensor out = torch::zeros({static_cast<int64_t>(n), static_cast<int64_t>(predictor_.labels().size())}, torch::kFloat64);
  for (std::size_t start = 0; start < n; start += step) {
    std::vector<std::size_t> ids;
    for (std::size_t i = start; i < std::min(n, start + step); ++i) ids.push_back(i);
    out.narrow(0, static_cast<int64_t>(start), static_cast<int64_t>(ids.size())).copy_(head(examples.select(ids)));
  }
  return out;
}

std::vector<ClassAttributions> Explainer::explain_all(const data::Examples& examples) const {
  std::vector<ClassAttributions> out;
  out.reserve(examples.size());
  if (method_ == Method::kLinear || bg_rows_.defined()) {
    const nn::Batch batch = predictor_.encode(examples);
    for (std::size_t i = 0; i < examples.size(); ++i) {
      const std::string* text = examples.has_text() ? &examples.texts[i] : nullptr;
      out.push_back(method_ == Method::kLinear ? linear_one(batch, static_cast<int64_t>(i), text)
                                               : kernel_bag_one(batch, static_cast<int64_t>(i), text));
    }
    return out;
  }
  for (std::size_t i = 0; i < examples.size(); ++i) {
    if (method_ != Method::kIntegratedGradients) {
      out.push_back(masked_one(examples, i));
    } else {
      out.push_back(reads(predictor_, nn::kInputIds) ? ig_tokens_one(examples, i) : ig_one(examples, i));
    }
  }
  return out;
}

std::vector<Explanation> Explainer::explain(const data::Examples& examples) const {
  std::vector<Explanation> out;
  const auto& labels = predictor_.labels();
  for (auto& all : explain_all(examples)) {
    const auto c = static_cast<int64_t>(all.output.size());
    Explanation e;
    e.class_id = std::max_element(all.output.begin(), all.output.end()) - all.output.begin();
    e.label = labels[static_cast<std::size_t>(e.class_id)];
    e.output = all.output[static_cast<std::size_t>(e.class_id)];
    e.base_value = all.base[static_cast<std::size_t>(e.class_id)];
    e.space = space_name(options_.space);
    e.method = method_;
    for (std::size_t f = 0; f < all.features.size(); ++f) {
      Attribution a = std::move(all.features[f]);
      a.value = all.values[f * static_cast<std::size_t>(c) + static_cast<std::size_t>(e.class_id)];
      e.attributions.push_back(std::move(a));
    }
    if (all.delta) e.delta = (*all.delta)[static_cast<std::size_t>(e.class_id)];
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace kiln::explain
