// Explains a Predictor's outputs: exact linear SHAP for the linear family, Kernel SHAP and Owen
// values over the words of a text (absent words dropped for bag models, [MASK] for WordPiece),
// Kernel SHAP over a bag model's features with a (k-means summarised) background, integrated
// gradients over a model's float inputs or BERT's word embeddings; and global importance (mean
// |φ| per feature and class) over a data set. Every model evaluation goes through the Predictor, batched.
// Thread-safe after construction (const members only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/artifact/predictor.h"
#include "kiln/data/dataset.h"
#include "kiln/explain/explanation.h"
#include "kiln/explain/kernel_shap.h"
#include "kiln/explain/kmeans.h"
#include "kiln/prep/text_features.h"

namespace kiln::explain {

/// Persisted by name ("logit", "probability"): never rename.
enum class Space { kLogit, kProbability };
[[nodiscard]] std::string space_name(Space s);
/// "auto" → nullopt; throws ConfigError naming `field`, the value and the choices.
[[nodiscard]] std::optional<Method> parse_method(const std::string& name, const std::string& field = "method");
[[nodiscard]] Space parse_space(const std::string& name, const std::string& field = "space");

/// Integrated gradients' starting point for token models (BERT): every token but [CLS]/[SEP] has
/// the [PAD] token's word embedding, or a zero word embedding (position and token-type
/// embeddings are kept either way). Bag and image inputs always start from zeros.
enum class IgBaseline { kPad, kZero };
/// "pad" | "zero"; throws ConfigError naming `field`, the value and the choices.
[[nodiscard]] IgBaseline parse_ig_baseline(const std::string& name, const std::string& field = "ig_baseline");

struct ExplainOptions {
  /// nullopt = auto: linear for the linear family, partition for WordPiece (BERT) models, kernel
  /// for the other text models, ig for image-only models. Default auto.
  std::optional<Method> method;
  /// Outputs explained: logits before calibration, or calibrated probabilities (kernel,
  /// partition; exact linear SHAP is additive in logits only). Default logit.
  Space space = Space::kLogit;
  /// Kernel SHAP's budget and seed.
  KernelShapOptions kernel;
  /// Integrated gradients' steps along the straight path from the baseline. Default 50.
  int64_t ig_steps = 50;
  /// Integrated gradients' baseline for token models. Default kPad.
  IgBaseline ig_baseline = IgBaseline::kPad;
  /// Coalitions (or IG steps) encoded and forwarded at once. Default 512.
  int64_t batch_size = 512;
  /// Kernel SHAP / Owen values over a bag model's words: compute each masked text's features from
  /// the words it keeps (prep::TextFeatures::word_mask_encoder) where the preprocessor can, instead
  /// of rendering and re-encoding every masked text. The same tensors, hence the same values,
  /// either way; false is for tests and benchmarks. Default true.
  bool word_mask_encoder = true;
  /// Linear SHAP's background: E[x] is their mean. Empty = the artifact's held-out sample. With
  /// method kernel on a bag model, a background makes Kernel SHAP interventional over the bag's
  /// features (shap's KernelExplainer with data): a hidden feature takes each background row's
  /// value, f(coalition) = Σ_b w_b f(x_S, b_rest); the features are the text's bag features plus
  /// one group, "(absent features)", for every other column. Empty = words are masked instead.
  data::Examples background;
  /// Kernel SHAP's background summarised by k-means (shap.kmeans: background_summary->k weighted
  /// centres); nullopt = every background row, equally weighted. Default nullopt.
  std::optional<KMeansOptions> background_summary;

  /// Throws ConfigError naming the field and the value.
  void validate() const;
};

/// Every class's attributions for one example: values[f * classes + c].
struct ClassAttributions {
  std::vector<Attribution> features;  ///< names and spans; `value` unused
  std::vector<double> values;
  std::vector<double> base;    ///< [classes]
  std::vector<double> output;  ///< [classes]
  std::optional<std::vector<double>> delta;  ///< IG: per class completeness gap
};

/// Mean |φ| per feature, per class and overall (the mean over classes), over `rows` examples.
struct GlobalImportance {
  Method method = Method::kLinear;
  Space space = Space::kLogit;
  int64_t rows = 0;
  std::vector<std::string> labels;
  /// Per class: (feature, mean |φ|), descending.
  std::vector<std::vector<std::pair<std::string, double>>> classes;
  std::vector<std::pair<std::string, double>> overall;
};

/// How many features per list importance.json keeps.
constexpr std::size_t kImportanceTop = 100;
/// importance.json: {"method", "space", "rows", "classes": [{"label", "features": [{"feature",
/// "mean_abs"}]}], "overall": [...]}, the `top` largest per list.
[[nodiscard]] nlohmann::json to_json(const GlobalImportance& g, std::size_t top = kImportanceTop);
/// Writes `dir`/importance.json through the atomic writer.
void write_importance(const std::string& dir, const GlobalImportance& g, std::size_t top = kImportanceTop);

/// Training-time importance: for a linear-family model with a held-out sample, writes
/// `dir`/importance.json (exact linear SHAP, background and rows = the held-out sample) and returns
/// true; returns false and writes nothing for other families or an empty sample.
bool write_linear_importance(const artifact::Artifact& artifact, const data::Examples& heldout, const std::string& dir);

class Explainer {
 public:
  /// Throws ConfigError when the method does not apply to the model (linear SHAP on another
  /// family, masking methods without text, IG on integer-only inputs) or when linear SHAP has no
  /// background (no held-out sample and no background given).
  Explainer(const artifact::Predictor& predictor, ExplainOptions options);

  [[nodiscard]] Method method() const { return method_; }
  [[nodiscard]] Space space() const { return options_.space; }

  /// One explanation per example, of its predicted class (the largest output).
  [[nodiscard]] std::vector<Explanation> explain(const data::Examples& examples) const;
  /// Every class's attributions for each example.
  [[nodiscard]] std::vector<ClassAttributions> explain_all(const data::Examples& examples) const;
  /// Mean |φ| over `examples` (linear: every vocabulary feature, computed sparsely), each list cut
  /// to its `top` largest.
  [[nodiscard]] GlobalImportance global_importance(const data::Examples& examples,
                                                   std::size_t top = static_cast<std::size_t>(-1)) const;

 private:
  [[nodiscard]] ClassAttributions linear_one(const nn::Batch& batch, int64_t row, const std::string* text) const;
  [[nodiscard]] ClassAttributions masked_one(const data::Examples& examples, std::size_t i) const;
  [[nodiscard]] ClassAttributions ig_one(const data::Examples& examples, std::size_t i) const;
  [[nodiscard]] ClassAttributions ig_tokens_one(const data::Examples& examples, std::size_t i) const;
  void init_background();
  [[nodiscard]] ClassAttributions kernel_bag_one(const nn::Batch& batch, int64_t row, const std::string* text) const;
  [[nodiscard]] torch::Tensor outputs(const data::Examples& examples) const;
  /// The explained outputs (logits, or probabilities) of an encoded batch, float64 [rows, classes].
  [[nodiscard]] torch::Tensor outputs(const nn::Batch& batch) const;

  const artifact::Predictor& predictor_;
  ExplainOptions options_;
  Method method_ = Method::kLinear;
  // Linear SHAP: W [features, classes] and b, E[x] (dense) and base = b + Wᵀ E[x].
  torch::Tensor weight_;
  std::vector<double> bias_, mean_, base_, weight_mean_;
  // Kernel SHAP with a background (bag models): the background rows (or their k-means summary)
  // over the columns they use, and their weights.
  std::vector<int64_t> bg_columns_;
  torch::Tensor bg_rows_;  // [rows, columns] float64
  std::vector<double> bg_weights_;
};

/// The words a masking method turns on and off: maximal runs of word characters (Python `\w+`),
/// as [begin, end) byte offsets; with `bag` spans (Preprocessor::feature_spans), only the words
/// inside some feature span (the others cannot change a bag's features).
struct Word {
  std::size_t begin = 0, end = 0;
};
[[nodiscard]] std::vector<Word> text_words(const std::string& text,
                                           const std::optional<std::vector<prep::FeatureSpan>>& bag);
/// `text` with every word whose mask byte is 0 replaced by `mask_token` ("" drops it).
[[nodiscard]] std::string masked_text(const std::string& text, const std::vector<Word>& words, const bool* mask,
                                      const std::string& mask_token);

}  // namespace kiln::explain
