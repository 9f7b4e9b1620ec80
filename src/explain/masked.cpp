// Kernel SHAP and Owen values over the words of a text: a coalition keeps some words and masks the
// others ([MASK] for WordPiece models, dropped for bag models); all coalitions of one explanation
// are encoded and forwarded through the Predictor in batches.
#include <algorithm>
#include <cstring>

#include "kiln/core/error.h"
#include "kiln/explain/explainer.h"
#include "kiln/text/unicode.h"
#include "text_features_of.h"

namespace kiln::explain {

std::vector<Word> text_words(const std::string& text, const std::optional<std::vector<prep::FeatureSpan>>& bag) {
  std::vector<Word> words;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t begin = i;
    if (!text::is_word_char(text::next_code_point(text, i))) continue;
    std::size_t end = i;
    while (i < text.size()) {
      std::size_t j = i;
      if (!text::is_word_char(text::next_code_point(text, j))) break;
      i = end = j;
    }
    words.push_back({begin, end});
  }
  if (!bag) return words;
  // Keep the words some feature covers (a bag cannot see the others, only their gaps).
  std::vector<Word> kept;
  for (const auto& w : words) {
    const bool covered = std::any_of(bag->begin(), bag->end(),
                                     [&](const prep::FeatureSpan& s) { return s.begin < w.end && w.begin < s.end; });
    if (covered) kept.push_back(w);
  }
  return kept;
}

std::string masked_text(const std::string& text, const std::vector<Word>& words, const bool* mask,
                        const std::string& mask_token) {
  std::size_t size = text.size();
  for (std::size_t k = 0; k < words.size(); ++k) {
    if (!mask[k]) size = size - (words[k].end - words[k].begin) + mask_token.size();
  }
  std::string out;
  out.reserve(size);
  std::size_t at = 0;
  const char* p = text.data();
  for (std::size_t k = 0; k < words.size(); ++k) {
    if (mask[k]) continue;
    out.append(p + at, words[k].begin - at);
    out.append(mask_token);
    at = words[k].end;
  }
  out.append(p + at, text.size() - at);
  return out;
}

ClassAttributions Explainer::masked_one(const data::Examples& examples, std::size_t i) const {
  if (!examples.has_text()) {
    throw DataError("--method " + method_name(method_) + " explains texts, and these examples have none; give the "
                    "data a text column (--text-col)");
  }
  const std::string& text = examples.texts[i];
  const auto& pre = *predictor_.preprocessors().front();
  const std::vector<Word> words = text_words(text, feature_spans_of(pre, text));
  const std::string mask_token = mask_token_of(pre);
  const auto m = static_cast<int64_t>(words.size());
  const bool has_image = examples.has_images();
  // A bag model reading the text alone: each coalition's features straight from the words it
  // keeps, where the preprocessor can compute them (the same tensors as encoding the masked text).
  std::unique_ptr<prep::WordMaskEncoder> direct;
  if (options_.word_mask_encoder && mask_token.empty() && !has_image && predictor_.preprocessors().size() == 1) {
    if (const auto* tf = dynamic_cast<const prep::TextFeatures*>(&pre)) {
      std::vector<std::pair<std::size_t, std::size_t>> spans;
      spans.reserve(words.size());
      for (const auto& w : words) spans.emplace_back(w.begin, w.end);
      direct = tf->word_mask_encoder(text, spans);
    }
  }
  // Coalitions are turned into texts (or bags) one batch at a time (batch_size) and forwarded at once.
  CoalitionValue value = [&](const torch::Tensor& masks) {
    const int64_t n = masks.size(0);
    const bool* mp = masks.data_ptr<bool>();
    torch::Tensor out;
    for (int64_t start = 0; start < n; start += options_.batch_size) {
      const int64_t rows = std::min(options_.batch_size, n - start);
      torch::Tensor part;
      if (direct) {
        part = outputs(direct->encode(mp + start * m, rows));
      } else {
        data::Examples batch;
        batch.base_dir = examples.base_dir;
        batch.texts.reserve(static_cast<std::size_t>(rows));
        for (int64_t r = start; r < start + rows; ++r) {
          batch.texts.push_back(masked_text(text, words, mp + r * m, mask_token));
          if (has_image) batch.images.push_back(examples.images[i]);
        }
        part = outputs(batch);
      }
      if (!out.defined()) out = torch::empty({n, part.size(1)}, torch::kFloat64);
      out.narrow(0, start, rows).copy_(part);
    }
    return out.defined() ? out : torch::zeros({0, static_cast<int64_t>(predictor_.labels().size())}, torch::kFloat64);
  };
  const ShapValues shap = method_ == Method::kKernel ? kernel_shap(m, value, options_.kernel) : owen_values(m, value);
  ClassAttributions out;
  const auto c = shap.base.size(0);
  out.base.assign(shap.base.data_ptr<double>(), shap.base.data_ptr<double>() + c);
  out.output.assign(shap.output.data_ptr<double>(), shap.output.data_ptr<double>() + c);
  const auto values = shap.values.contiguous();
  out.values.assign(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  for (const auto& w : words) {
    Attribution a;
    a.feature = text.substr(w.begin, w.end - w.begin);
    a.spans.emplace_back(code_point_offset(text, w.begin), code_point_offset(text, w.end));
    out.features.push_back(std::move(a));
  }
  return out;
}

}  // namespace kiln::explain
