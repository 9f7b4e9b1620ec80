#include <iostream>

#include <nlohmann/json.hpp>

#include "kiln/artifact/predictor.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/data/dataset.h"
#include "kiln/train/metrics.h"
#include "kiln/core/log.h"
#include "kiln/pipeline/pipeline.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {

void add_evaluate(CLI::App& app) {
  struct Flags {
    std::string artifact, data, json_out, format = "auto", text_col = "text", label_col = "label", image_col, variant;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("evaluate", ml_verb_description("evaluate"));
  cmd->add_option("artifact", f->artifact, "Artifact directory (OUT/model of kiln train/run; the run directory OUT works too)")->required();
  cmd->add_option("--data", f->data, "Labelled CSV/TSV/JSONL/JSON file")->required();
  cmd->add_option("--json", f->json_out, "Also write the metrics as JSON to this file");
  cmd->add_option("--format", f->format, "Input format (auto|csv|tsv|jsonl|json)")->capture_default_str();
  cmd->add_option("--text-col", f->text_col, "Text column")->capture_default_str();
  cmd->add_option("--image-col", f->image_col, "Image-path column (default: the one the model was trained with)");
  cmd->add_option("--label-col", f->label_col, "Label column")->capture_default_str();
  cmd->add_option("--variant", f->variant,
                  "Weights to run: fp32 or a variant kiln optimize made (default: the artifact's default variant)");
  cmd->callback([f, cmd]() {
    artifact::PredictorOptions po;
    po.variant = f->variant;
    artifact::Predictor predictor(artifact_arg(f->artifact), po);
    if (predictor.variant() != "fp32") std::cerr << "kiln: running variant " << predictor.variant() << "\n";
    const ArtifactColumns trained = artifact_columns(predictor.manifest().training);
    data::LoadOptions lo;
    lo.reader.format = data::parse_format(f->format);
    lo.text_col = cmd->count("--text-col") ? f->text_col : trained.text_col;
    lo.image_col = cmd->count("--image-col") ? f->image_col : trained.image_col;
    lo.label_col = f->label_col;
    data::DataReport report;
    auto ds = data::load_labeled(f->data, lo, &report);
    const auto result = pipeline::evaluate(predictor, ds, f->data);
    if (!result.warning.empty()) core::warn(result.warning);
    const auto& metrics = result.metrics;
    const auto& labels = predictor.labels();
    std::cout << train::format_metrics_table(metrics, labels);
    if (!f->json_out.empty()) {
      nlohmann::json j = train::to_json(metrics, labels);
      j["variant"] = predictor.variant();  // the weights evaluated: fp32 or a kiln optimize variant
      core::write_file_atomic(f->json_out, j.dump(2) + "\n");
      std::cout << "metrics written to " << f->json_out << "\n";
    }
  });
}

}  // namespace kiln::cli
