#include <filesystem>
#include <iostream>
#include <memory>

#include "kiln/artifact/artifact.h"
#include "kiln/artifact/predictor.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/version.h"
#include "kiln/data/reader.h"
#include "kiln/explain/explainer.h"
#include "kiln/explain/render.h"
#include "kiln/nn/input_spec.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct ExplainFlags {
  std::string artifact, data, background, html, json, method = "auto", space = "logit", format = "auto";
  std::string ig_baseline = "pad";
  std::string text_col = "text", image_col;
  int64_t top = 10, nsamples = 0, steps = 50, background_k = 0;
  uint64_t seed = 0;
  bool global = false;
};

// The texts (and images) of `path`: the columns the model was trained with unless given.
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

}  // namespace

void add_explain(CLI::App& app) {
  auto f = std::make_shared<ExplainFlags>();
  auto* cmd = app.add_subcommand("explain", ml_verb_description("explain"));
  cmd->add_option("artifact", f->artifact, "Artifact directory (OUT/model of kiln train/run; OUT works too)")->required();
  cmd->add_option("--data", f->data, "CSV/TSV/JSONL/JSON file of examples to explain (with --global: default the held-out sample)");
  cmd->add_option("--method", f->method, "auto | linear (exact, linear family) | kernel | partition | ig")->capture_default_str();
  cmd->add_option("--background", f->background,
                  "Background examples: linear SHAP's E[x] (default: the artifact's held-out sample); with --method "
                  "kernel on a bag model, the values hidden features take");
  cmd->add_option("--background-k", f->background_k,
                  "Summarise the Kernel SHAP background into K weighted k-means centres (shap.kmeans; 0 = every row)")
      ->capture_default_str();
  cmd->add_option("--top", f->top, "Attributions printed and highlighted per example (the JSON keeps all)")->capture_default_str();
  cmd->add_option("--nsamples", f->nsamples, "Kernel SHAP coalitions per example (0 = 2M + 2048; all when 2^M - 2 fit)")->capture_default_str();
  cmd->add_option("--seed", f->seed, "Kernel SHAP sampler seed")->capture_default_str();
  cmd->add_option("--steps", f->steps, "Integrated-gradients steps")->capture_default_str();
  cmd->add_option("--ig-baseline", f->ig_baseline, "Integrated gradients on BERT: start from [PAD] or zero word embeddings")
      ->capture_default_str();
  cmd->add_option("--space", f->space, "Explain logit (before calibration) or probability outputs")->capture_default_str();
  cmd->add_option("--html", f->html, "Write a self-contained HTML page of the explanations here");
  cmd->add_option("--json", f->json, "Write one JSON line per example here (- = stdout instead of the text)");
  cmd->add_option("--format", f->format, "Data format (auto = from the extension)")->capture_default_str();
  cmd->add_option("--text-col", f->text_col, "Text column (default: the one the model was trained with)")->capture_default_str();
  cmd->add_option("--image-col", f->image_col, "Image-path column (default: the one the model was trained with)");
  cmd->add_flag("--global", f->global, "Write mean |phi| per feature and class to ARTIFACT/importance.json");
  cmd->callback([f, cmd]() {
    if (f->top < 1) throw ConfigError("--top must be >= 1 (attributions printed per example), got " + std::to_string(f->top));
    if (f->nsamples < 0) throw ConfigError("--nsamples must be >= 0 (0 = 2M + 2048), got " + std::to_string(f->nsamples));
    if (!f->global && f->data.empty()) {
      throw ConfigError("kiln explain needs --data FILE (the examples to explain), or --global for importance.json");
    }
    if (f->global && (!f->html.empty() || !f->json.empty())) {
      throw ConfigError("--global writes ARTIFACT/importance.json only; drop --html/--json, or run without --global");
    }
    const std::string dir = artifact_arg(f->artifact);
    artifact::Predictor predictor(dir);
    const ArtifactColumns trained = artifact_columns(predictor.manifest().training);
    const std::string image_col = cmd->count("--image-col") ? f->image_col : trained.image_col;
    const std::string text_col = cmd->count("--text-col") ? f->text_col : trained.text_col;
    explain::ExplainOptions o;
    o.method = explain::parse_method(f->method, "--method");
    o.space = explain::parse_space(f->space, "--space");
    o.kernel.nsamples = f->nsamples;
    o.kernel.seed = f->seed;
    o.ig_steps = f->steps;
    o.ig_baseline = explain::parse_ig_baseline(f->ig_baseline, "--ig-baseline");
    if (!f->background.empty()) o.background = read_examples(f->background, *f, text_col, image_col, "--background");
    if (f->background_k < 0) {
      throw ConfigError("--background-k must be >= 0 (0 = every background row), got " + std::to_string(f->background_k));
    }
    if (f->background_k > 0) {
      o.background_summary = explain::KMeansOptions{};
      o.background_summary->k = f->background_k;
      o.background_summary->seed = f->seed;
    }
    const explain::Explainer explainer(predictor, o);
    const bool tokens = predictor.manifest().inputs.tensors.size() > 0 &&
                        predictor.manifest().inputs.tensors.front().name == nn::kInputIds;
    if (cmd->count("--ig-baseline") && !tokens) {
      throw ConfigError("--ig-baseline applies to integrated gradients on BERT (token) models, and this artifact reads "
                        "no tokens; drop --ig-baseline");
    }
    if (cmd->count("--ig-baseline") && explainer.method() != explain::Method::kIntegratedGradients) {
      throw ConfigError("--ig-baseline applies to --method ig, and this run explains with method " +
                        explain::method_name(explainer.method()) + "; add --method ig or drop --ig-baseline");
    }
    if (f->global) {
      data::Examples ex;
      if (f->data.empty()) ex = artifact::load_heldout(dir);
      else ex = read_examples(f->data, *f, text_col, image_col, "--data");
      if (ex.size() == 0) {
        throw ConfigError(dir + " has no held-out sample (heldout.jsonl) to compute importance on; pass --data FILE");
      }
      explain::write_importance(dir, explainer.global_importance(ex));
      std::cerr << "kiln: wrote " << (std::filesystem::path(dir) / "importance.json").string() << " ("
                << explain::method_name(explainer.method()) << ", " << ex.size() << " rows)\n";
      return;
    }
    const data::Examples ex = read_examples(f->data, *f, text_col, image_col, "--data");
    const auto explanations = explainer.explain(ex);
    std::string lines;
    for (const auto& e : explanations) lines += explain::to_json(e).dump() + "\n";
    if (f->json == "-") {
      std::cout << lines;
    } else {
      std::string text;
      for (std::size_t i = 0; i < explanations.size(); ++i) {
        text += explain::render_text(explanations[i], i, static_cast<std::size_t>(f->top));
      }
      std::cout << text;
      if (!f->json.empty()) core::write_file_atomic(f->json, lines);
    }
    if (!f->html.empty()) {
      core::write_file_atomic(f->html, explain::render_html(explanations, ex.texts, static_cast<std::size_t>(f->top),
                                                            dir, "kiln " + kiln::version()));
    }
    std::cout.flush();
  });
}

}  // namespace kiln::cli
