#include "explain_flags.h"

#include <filesystem>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/data/reader.h"
#include "kiln/nn/input_spec.h"

namespace kiln::cli {

void add_explain_flags(CLI::App& cmd, ExplainFlags& f) {
  cmd.add_option("artifact", f.artifact, "Artifact directory (OUT/model of kiln train/run; OUT works too)")->required();
  cmd.add_option("--data", f.data, "CSV/TSV/JSONL/JSON file of examples to explain (with --global: default the held-out sample)");
  cmd.add_option("--method", f.method, "auto | linear (exact, linear family) | kernel | partition | ig")->capture_default_str();
  cmd.add_option("--background", f.background,
                 "Background examples: linear SHAP's E[x] (default: the artifact's held-out sample); with --method "
                 "kernel on a bag model, the values hidden features take");
  cmd.add_option("--background-k", f.background_k,
                 "Summarise the Kernel SHAP background into K weighted k-means centres (shap.kmeans; 0 = every row)")
      ->capture_default_str();
  cmd.add_option("--top", f.top, "Attributions printed and highlighted per example (the JSON keeps all)")->capture_default_str();
  cmd.add_option("--nsamples", f.nsamples, "Kernel SHAP coalitions per example (0 = 2M + 2048; all when 2^M - 2 fit)")->capture_default_str();
  cmd.add_option("--seed", f.seed, "Kernel SHAP sampler and k-means seed")->capture_default_str();
  cmd.add_option("--l1", f.l1, "Kernel SHAP feature selection (shap's l1_reg): none | num_features(K) | aic | bic")
      ->capture_default_str();
  cmd.add_option("--steps", f.steps, "Integrated-gradients steps")->capture_default_str();
  cmd.add_option("--ig-baseline", f.ig_baseline, "Integrated gradients on BERT: start from [PAD] or zero word embeddings")
      ->capture_default_str();
  cmd.add_option("--space", f.space, "Explain logit (before calibration) or probability outputs")->capture_default_str();
  cmd.add_option("--html", f.html, "Write a self-contained HTML page of the explanations here");
  cmd.add_option("--json", f.json, "Write one JSON line per example here (- = stdout instead of the text)");
  cmd.add_option("--format", f.format, "Data format (auto = from the extension)")->capture_default_str();
  cmd.add_option("--text-col", f.text_col, "Text column (default: the one the model was trained with)")->capture_default_str();
  cmd.add_option("--image-col", f.image_col, "Image-path column (default: the one the model was trained with)");
  cmd.add_flag("--global", f.global, "Write mean |phi| per feature and class to ARTIFACT/importance.json");
}

data::Examples read_examples(const std::string& path, const ExplainFlags& f, const std::string& text_col,
                             const std::string& image_col, const char* flag) {
  core::require_regular_file(path, std::string(flag) + " file");
  data::ReaderOptions ro;
  ro.format = data::parse_format(f.format);
  data::Examples ex;
  if (!image_col.empty()) {
    for (auto& p : data::read_column(path, ro, image_col)) ex.images.push_back({std::move(p), {}});
    ex.base_dir = std::filesystem::path(path).parent_path().string();
  }
  if (!text_col.empty()) ex.texts = data::read_column(path, ro, text_col);
  if (ex.size() == 0) {
    throw DataError(path + ": no rows to explain (" + flag + " is empty); give a file with at least one example");
  }
  return ex;
}

explain::ExplainOptions explain_options(const ExplainFlags& f, const std::string& text_col, const std::string& image_col) {
  if (f.nsamples < 0) throw ConfigError("--nsamples must be >= 0 (0 = 2M + 2048), got " + std::to_string(f.nsamples));
  if (f.background_k < 0) {
    throw ConfigError("--background-k must be >= 0 (0 = every background row), got " + std::to_string(f.background_k));
  }
  explain::ExplainOptions o;
  o.method = explain::parse_method(f.method, "--method");
  o.space = explain::parse_space(f.space, "--space");
  o.kernel.nsamples = f.nsamples;
  o.kernel.seed = f.seed;
  explain::parse_l1(f.l1, o.kernel, "--l1");
  o.ig_steps = f.steps;
  o.ig_baseline = explain::parse_ig_baseline(f.ig_baseline, "--ig-baseline");
  if (!f.background.empty()) o.background = read_examples(f.background, f, text_col, image_col, "--background");
  if (f.background_k > 0) {
    o.background_summary = explain::KMeansOptions{};
    o.background_summary->k = f.background_k;
    o.background_summary->seed = f.seed;
  }
  return o;
}

void check_method_flags(const CLI::App& cmd, const artifact::Predictor& predictor, const explain::Explainer& explainer) {
  const auto& inputs = predictor.manifest().inputs.tensors;
  const bool tokens = !inputs.empty() && inputs.front().name == nn::kInputIds;
  const std::string method = explain::method_name(explainer.method());
  if (cmd.count("--ig-baseline") && !tokens) {
    throw ConfigError("--ig-baseline applies to integrated gradients on BERT (token) models, and this artifact reads "
                      "no tokens; drop --ig-baseline");
  }
  if (cmd.count("--ig-baseline") && explainer.method() != explain::Method::kIntegratedGradients) {
    throw ConfigError("--ig-baseline applies to --method ig, and this run explains with method " + method +
                      "; add --method ig or drop --ig-baseline");
  }
  if (cmd.count("--l1") && explainer.method() != explain::Method::kKernel) {
    throw ConfigError("--l1 selects features for Kernel SHAP, and this run explains with method " + method +
                      "; add --method kernel or drop --l1");
  }
}

}  // namespace kiln::cli
