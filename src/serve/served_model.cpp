#include "served_model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/utf8.h"

namespace kiln::serve {

ServedModel::ServedModel(const std::string& artifact_dir, std::size_t drift_window) : dir_(artifact_dir) {
  predictor_ = std::make_unique<artifact::Predictor>(artifact_dir);
  const auto& m = predictor_->manifest();
  labels_ = m.labels;
  // created_at has one-second resolution: add a digest of the manifest so two artifacts written in
  // the same second (or copies retrained elsewhere) still differ.
  nlohmann::json info = artifact::to_json(m);
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (const unsigned char c : info.dump()) h = (h ^ c) * 1099511628211ull;
  char digest[17];
  std::snprintf(digest, sizeof(digest), "%016llx", static_cast<unsigned long long>(h));
  version_ = m.created_at + "-" + std::string(digest, 8);
  family_ = m.model.family;
  // /v1/model: the manifest without its data profile (drift's reference, large), plus where and
  // which version.
  info.erase("data_profile");
  info["artifact"] = artifact_dir;
  info["version"] = version_;
  info_json_ = info.dump();

  const auto& profile = m.data_profile;
  if (profile.is_object() && profile.contains("text_length") && profile.contains("top_features")) {
    window_ = std::make_unique<DriftWindow>(profile, drift_window);
    int32_t pos = 0;
    for (const auto& f : profile["top_features"]) {
      if (f.contains("index") && f["index"].is_number_integer()) top_position_[f["index"].get<int64_t>()] = pos;
      ++pos;
    }
    const auto& featurizer = predictor_->featurizer();
    if (featurizer.type() == "tfidf") {
      tfidf_ = std::make_unique<text::TfidfVectorizer>(text::TfidfVectorizer::from_json(featurizer.state().dump()));
      if (!tfidf_->vocabulary().empty()) {
        analyzer_ = std::make_unique<text::Analyzer>(tfidf_->options().analyzer_options());
        vocabulary_.reserve(tfidf_->vocabulary().size());
        for (const auto& term : tfidf_->vocabulary()) vocabulary_.insert(term);
      }
    }
  } else {
    core::warn("artifact " + artifact_dir + " has no data profile (kiln.json data_profile): drift metrics stay 0");
  }
}

std::vector<float> ServedModel::predict_proba(const std::vector<std::string>& texts) const {
  auto probs = predictor_->predict_proba(texts).contiguous();
  const auto* p = probs.data_ptr<float>();
  return std::vector<float>(p, p + probs.numel());
}

void ServedModel::observe_drift(const std::vector<std::string>& texts) const {
  if (!window_ || texts.empty()) return;
  const auto x = predictor_->featurizer().transform(texts);
  text::AnalyzerScratch scratch;
  std::vector<std::string_view> terms;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    DriftSample s;
    s.length = static_cast<int64_t>(core::utf8_length(texts[i]));
    if (analyzer_) {
      analyzer_->analyze(texts[i], scratch, terms);
      std::size_t oov = 0;
      for (const auto& t : terms) oov += vocabulary_.count(t) == 0;
      s.oov_rate = terms.empty() ? 0.0 : static_cast<double>(oov) / static_cast<double>(terms.size());
    }
    for (auto k = x.indptr[i]; k < x.indptr[i + 1]; ++k) {
      const auto it = top_position_.find(static_cast<int64_t>(x.indices[static_cast<std::size_t>(k)]));
      if (it != top_position_.end()) s.top_features.push_back(it->second);
    }
    std::sort(s.top_features.begin(), s.top_features.end());
    s.top_features.erase(std::unique(s.top_features.begin(), s.top_features.end()), s.top_features.end());
    window_->observe(s);
  }
}

DriftReport ServedModel::drift() const { return window_ ? window_->report() : DriftReport{}; }

}  // namespace kiln::serve
