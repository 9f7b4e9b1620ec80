#include "served_model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/utf8.h"
#include "kiln/prep/ensemble.h"
#include "kiln/artifact/profile.h"
#include "kiln/data/image.h"

namespace kiln::serve {

ServedModel::ServedModel(const std::string& artifact_dir, std::size_t drift_window, const std::string& device)
    : dir_(artifact_dir) {
  artifact::PredictorOptions options;
  options.device = device;
  predictor_ = std::make_unique<artifact::Predictor>(artifact_dir, options);
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
  for (const auto& l : labels_) labels_json_.push_back(nlohmann::json(l).dump());
  version_json_ = nlohmann::json(version_).dump();
  reads_text_ = false;
  for (const auto& pre : predictor_->preprocessors()) {
    if (pre->type() == "image") {
      reads_images_ = true;
    } else {
      reads_text_ = true;
    }
  }
  // /v1/model: the manifest without its data profile (drift's reference, large), plus where and
  // which version.
  info.erase("data_profile");
  info["artifact"] = artifact_dir;
  info["version"] = version_;
  info["variant"] = predictor_->variant();  // the weights this server runs: fp32 or a kiln optimize variant
  info_json_ = info.dump();

  const auto& profile = m.data_profile;
  const bool text_profile = profile.is_object() && profile.contains("text_length") && profile.contains("top_features");
  const bool image_profile = reads_images_ && profile.is_object() && profile.contains("image_intensity");
  if (text_profile || image_profile) {
    window_ = std::make_unique<DriftWindow>(profile, drift_window);
    int32_t pos = 0;
    if (profile.contains("top_features")) {
      for (const auto& f : profile["top_features"]) {
        if (f.contains("index") && f["index"].is_number_integer()) top_position_[f["index"].get<int64_t>()] = pos;
        ++pos;
      }
    }
    try {  // live importance shift: linear-family artifacts with importance.json (kiln train writes it)
      importance_ = ImportanceWindow::load(*predictor_, drift_window);
    } catch (const Error& e) {
      core::warn("artifact " + artifact_dir + ": no feature-importance shift metric: " + e.what());
    }
  } else {
    core::warn("artifact " + artifact_dir + " has no data profile (kiln.json data_profile): drift metrics stay 0");
  }
}

namespace {

/// The prediction's encoding and what the preprocessors saw making it (drift reads both).
struct EncodedTexts final : BatchModel::Input {
  nn::Batch batch;
  prep::EncodeObservations observed;
};

}  // namespace

std::shared_ptr<const BatchModel::Input> ServedModel::encode(const std::vector<std::string>& texts) const {
  data::Examples examples;
  examples.texts = texts;
  auto out = std::make_shared<EncodedTexts>();
  out->batch = predictor_->encode(examples, window_ ? &out->observed : nullptr);
  return out;
}

std::shared_ptr<const BatchModel::Input> ServedModel::encode(const PredictRequest& request) const {
  if (request.images.empty()) return encode(request.texts);  // the batcher's (virtual) text path
  data::Examples examples;
  examples.texts = request.texts;
  examples.images.reserve(request.images.size());
  for (const auto& bytes : request.images) examples.images.push_back(data::ImageRef{{}, bytes});
  auto out = std::make_shared<EncodedTexts>();
  out->batch = predictor_->encode(examples, window_ && !request.texts.empty() ? &out->observed : nullptr);
  return out;
}

bool ServedModel::check_inputs(const PredictRequest& request, const RequestLimits& limits, RequestError& error,
                               bool v2) const {
  std::string shape;
  if (v2) {
    shape = reads_text_ && reads_images_ ? "inputs 'text' and 'image' (BYTES, one image per text)"
            : reads_images_              ? "input 'image' (BYTES: PNG/JPEG files)"
                                         : "input 'text' (BYTES)";
  } else {
    shape = reads_text_ && reads_images_ ? R"({"inputs": [{"text": "...", "image": "<base64 PNG/JPEG>"}]})"
            : reads_images_              ? R"({"inputs": [{"image": "<base64 PNG/JPEG>"}]})"
                                         : R"({"texts": ["..."]} or {"inputs": [{"text": "..."}]})";
  }
  const char* reads = reads_text_ && reads_images_ ? "text and an image" : reads_images_ ? "an image only" : "text only";
  auto refuse = [&](const char* code, const std::string& modality, bool missing) {
    error.status = 400;
    error.code = code;
    const std::string what = v2 ? (missing ? "the request has no input '" : "the request has an input '") + modality + "'"
                                : (missing ? "inputs[0] has no '" : modality == "image" ? "inputs[0] has an '" : "inputs[0] has a '") +
                                    modality + "'";
    error.message = what + "; this model reads " + reads + " per input: send " + shape;
    return false;
  };
  if (reads_text_ && request.texts.empty()) return refuse("missing_modality", "text", true);
  if (reads_images_ && request.images.empty()) return refuse("missing_modality", "image", true);
  if (!reads_text_ && !request.texts.empty()) return refuse("unexpected_modality", "text", false);
  if (!reads_images_ && !request.images.empty()) return refuse("unexpected_modality", "image", false);
  data::ImageLimits image_limits;
  image_limits.max_bytes = static_cast<std::int64_t>(limits.max_image_bytes);
  image_limits.max_pixels = limits.max_image_pixels;
  for (std::size_t i = 0; i < request.images.size(); ++i) {
    try {
      (void)data::decode_image(request.images[i], image_limits);
    } catch (const DataError& e) {
      const std::string what = e.what();
      const bool too_large = what.find("more than the limit") != std::string::npos;
      error.status = too_large ? 413 : 400;
      error.code = too_large ? "image_too_large" : "invalid_image";
      error.message = (v2 ? "inputs[image].data[" + std::to_string(i) + "]: " : "inputs[" + std::to_string(i) + "].image: ") +
                      what + (too_large ? " (kiln serve --max-image-pixels / --max-image-bytes)" : "");
      return false;
    }
  }
  return true;
}

std::vector<float> ServedModel::predict_proba(const std::vector<const Input*>& inputs) const {
  std::vector<nn::Batch> parts;
  parts.reserve(inputs.size());
  for (const Input* in : inputs) parts.push_back(static_cast<const EncodedTexts*>(in)->batch);
  auto probs = predictor_->predict_proba(nn::Batch::concat(parts)).contiguous();
  const auto* p = probs.data_ptr<float>();
  return std::vector<float>(p, p + probs.numel());
}

std::vector<float> ServedModel::predict_proba(const std::vector<std::string>& texts) const {
  auto probs = predictor_->predict_proba(texts).contiguous();
  const auto* p = probs.data_ptr<float>();
  return std::vector<float>(p, p + probs.numel());
}

void ServedModel::observe_drift(const std::vector<std::string>& texts, const Input* encoded,
                                const std::vector<std::string>& images) const {
  if (!window_ || (texts.empty() && images.empty())) return;
  const std::size_t n = texts.empty() ? images.size() : texts.size();
  std::vector<DriftSample> samples(n);
  if (!texts.empty() && window_->has_text_profile()) {
    std::shared_ptr<const Input> own;
    if (!encoded) {
      own = encode(texts);
      encoded = own.get();
    }
    const auto& enc = *static_cast<const EncodedTexts*>(encoded);
    const nn::Batch& batch = enc.batch;
    // Out-of-vocabulary rates as the preprocessor counted them while encoding (none without a vocabulary).
    const std::vector<double>& oov = enc.observed.oov_rates;
    // Sparse features, when the model reads them: the columns each text contains.
    // An ensemble's member 0's (the features its data profile holds).
    const nn::InputSpec& inputs = predictor_->manifest().inputs;
    const torch::Tensor indices = batch.get(prep::primary_tensor_name(inputs, nn::kBagIndices));
    const torch::Tensor offsets = batch.get(prep::primary_tensor_name(inputs, nn::kBagOffsets));
    const int64_t* ip = indices.defined() ? indices.data_ptr<int64_t>() : nullptr;
    const int64_t* op = offsets.defined() ? offsets.data_ptr<int64_t>() : nullptr;
    const int64_t nnz = indices.defined() ? indices.numel() : 0;
    const torch::Tensor values = batch.get(prep::primary_tensor_name(inputs, nn::kBagWeights));
    const float* wp = values.defined() ? values.data_ptr<float>() : nullptr;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      DriftSample& s = samples[i];
      s.length = static_cast<int64_t>(core::utf8_length(texts[i]));
      if (i < oov.size()) s.oov_rate = oov[i];
      const int64_t begin = op ? op[i] : 0, end = op ? (i + 1 < texts.size() ? op[i + 1] : nnz) : 0;
      for (int64_t k = begin; k < end; ++k) {
        const auto it = top_position_.find(ip[k]);
        if (it != top_position_.end()) s.top_features.push_back(it->second);
      }
      if (importance_ && ip && wp) importance_->observe(ip + begin, wp + begin, end - begin);
      std::sort(s.top_features.begin(), s.top_features.end());
      s.top_features.erase(std::unique(s.top_features.begin(), s.top_features.end()), s.top_features.end());
    }
  } else {
    for (auto& s : samples) s.has_text = false;
  }
  // Images: decoded once more here, off the request path (checked already: they decode).
  for (std::size_t i = 0; i < images.size() && i < n && window_->has_image_profile(); ++i) {
    try {
      const data::Image im = data::decode_image(images[i]);
      samples[i].has_image = true;
      samples[i].intensity = artifact::mean_intensity(im);
      samples[i].pixels = static_cast<double>(im.width) * im.height;
    } catch (const DataError&) {
    }
  }
  for (const auto& s : samples) window_->observe(s);
}

DriftReport ServedModel::drift() const { return window_ ? window_->report() : DriftReport{}; }

std::optional<double> ServedModel::importance_shift() const {
  return importance_ ? importance_->shift() : std::nullopt;
}

}  // namespace kiln::serve
