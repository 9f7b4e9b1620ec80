// One loaded artifact as the server uses it: the Predictor behind the batcher, what /v1/model
// shows, and the drift probe that measures live texts against the artifact's training profile.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/artifact/predictor.h"
#include "kiln/serve/batcher.h"
#include "kiln/serve/drift.h"
#include "importance_window.h"
#include "kiln/serve/request.h"

namespace kiln::serve {

/// Thread-safe after construction.
class ServedModel : public BatchModel {
 public:
  /// Loads and validates the artifact (ArtifactError). `drift_window`: texts in the drift window;
  /// `device`: where the model runs ("cpu", "cuda[:N]").
  ServedModel(const std::string& artifact_dir, std::size_t drift_window, const std::string& device = "cpu");

  [[nodiscard]] std::size_t num_classes() const override { return labels_.size(); }
  /// The texts encoded by the artifact's preprocessors (an nn::Batch), on the calling thread.
  [[nodiscard]] std::shared_ptr<const Input> encode(const std::vector<std::string>& texts) const override;
  /// A request's inputs (texts and/or image bytes, see PredictRequest) encoded as encode() does.
  [[nodiscard]] std::shared_ptr<const Input> encode(const PredictRequest& request) const;
  /// Whether the model reads text / images (from its preprocessors' types).
  [[nodiscard]] bool reads_text() const { return reads_text_; }
  [[nodiscard]] bool reads_images() const { return reads_images_; }
  /// Checks that `request` carries exactly the modalities the model reads (400 missing_modality /
  /// unexpected_modality, naming the input and the request shape to send) and decodes each image
  /// under `limits` (413 image_too_large beyond max_image_pixels, 400 invalid_image for a file that
  /// does not decode; the message names inputs[i].image, or with `v2` the Open Inference Protocol's
  /// inputs[image].data[i]). Returns false with `error` filled.
  [[nodiscard]] bool check_inputs(const PredictRequest& request, const RequestLimits& limits, RequestError& error,
                                  bool v2 = false) const;
  /// One forward pass over the inputs joined with Batch::concat.
  [[nodiscard]] std::vector<float> predict_proba(const std::vector<const Input*>& inputs) const override;
  /// Encode + forward of `texts` (what a request alone gets).
  [[nodiscard]] std::vector<float> predict_proba(const std::vector<std::string>& texts) const;

  [[nodiscard]] const std::vector<std::string>& labels() const { return labels_; }
  /// labels() and version() as JSON strings (quoted, escaped), made once for the answers.
  [[nodiscard]] const std::vector<std::string>& labels_json() const { return labels_json_; }
  [[nodiscard]] const std::string& version_json() const { return version_json_; }
  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] const std::string& version() const { return version_; }
  [[nodiscard]] const std::string& family() const { return family_; }
  /// The weights it runs: "fp32" or the name of a kiln optimize variant.
  [[nodiscard]] std::string variant() const { return predictor_->variant(); }
  /// The artifact's Predictor (explanations run through it).
  [[nodiscard]] const artifact::Predictor& predictor() const { return *predictor_; }
  /// The GET /v1/model body.
  [[nodiscard]] const std::string& info_json() const { return info_json_; }

  /// Measures `texts` (and `images`, their PNG/JPEG bytes, one per input, when the model reads
  /// images) and adds them to the drift window, reading text features and out-of-vocabulary rates
  /// from `encoded` (what encode() made of them for the prediction, with the preprocessors'
  /// observations: nothing is analyzed twice); null encodes them here. An image's mean intensity
  /// and size come from decoding it again. Slow enough that the server calls it off the request path.
  void observe_drift(const std::vector<std::string>& texts, const Input* encoded = nullptr,
                     const std::vector<std::string>& images = {}) const;
  [[nodiscard]] DriftReport drift() const;
  [[nodiscard]] bool has_drift() const { return window_ != nullptr; }
  /// kiln_feature_importance_shift (importance_window.h): nullopt without the window (not a linear
  /// model, no importance.json) or before the first text.
  [[nodiscard]] std::optional<double> importance_shift() const;

 private:
  std::string dir_;
  std::unique_ptr<artifact::Predictor> predictor_;
  std::vector<std::string> labels_, labels_json_;
  std::string version_json_;
  std::string version_, family_, info_json_;
  bool reads_text_ = true, reads_images_ = false;
  // Drift: the training profile's window and its top features by column (out-of-vocabulary rates come
  // from the first preprocessor, where it has a vocabulary).
  std::unique_ptr<DriftWindow> window_;
  std::unordered_map<int64_t, int32_t> top_position_;
  std::unique_ptr<ImportanceWindow> importance_;
};

}  // namespace kiln::serve
