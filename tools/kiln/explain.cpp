#include <filesystem>
#include <iostream>
#include <memory>

#include "kiln/artifact/artifact.h"
#include "kiln/artifact/predictor.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/version.h"
#include "kiln/explain/explainer.h"
#include "kiln/explain/render.h"
#include "explain_flags.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {

void add_explain(CLI::App& app) {
  auto f = std::make_shared<ExplainFlags>();
  auto* cmd = app.add_subcommand("explain", ml_verb_description("explain"));
  add_explain_flags(*cmd, *f);
  cmd->callback([f, cmd]() {
    if (f->top < 1) throw ConfigError("--top must be >= 1 (attributions printed per example), got " + std::to_string(f->top));
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
    const explain::Explainer explainer(predictor, explain_options(*f, text_col, image_col));
    check_method_flags(*cmd, predictor, explainer);
    // Kernel SHAP and Owen values on a bag model evaluate thousands of small batches (matmuls a few
    // hundred wide): OpenBLAS's second thread mostly spin-waits between them (a third of the CPU time
    // of an mlp explanation, measured with perf), while LibTorch's threads still split the embedding
    // lookups. Transformers, CNNs and integrated gradients keep their BLAS threads.
    const std::string& family = predictor.manifest().model.family;
    if (explainer.method() != explain::Method::kIntegratedGradients &&
        (family == "linear" || family == "mlp" || family == "embedbag")) {
      core::set_blas_threads(1);
    }
    if (f->global) {
      data::Examples ex;
      if (f->data.empty()) ex = artifact::load_heldout(dir);
      else ex = read_examples(f->data, *f, text_col, image_col, "--data");
      if (ex.size() == 0) {
        throw ConfigError(dir + " has no held-out sample (heldout.jsonl) to compute importance on; pass --data FILE");
      }
      explain::write_importance(dir, explainer.global_importance(ex, explain::kImportanceTop));
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
