// kiln export ARTIFACT --format onnx --out model.onnx: the model as an ONNX graph for ONNX Runtime,
// TensorRT or Triton. Flags, files and exit codes only; the graph is built in kiln::onnx.
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "kiln/artifact/predictor.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/export/onnx.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

// Rows for 2-D tensors; {"dims", "data"} (flattened) for other ranks (pixel_values).
nlohmann::json nested(const torch::Tensor& t) {
  const auto c = t.contiguous();
  const bool f = c.scalar_type() == torch::kFloat32;
  if (c.dim() != 2) {
    const auto x = c.to(torch::kFloat32);
    return {{"dims", c.sizes().vec()}, {"data", std::vector<float>(x.data_ptr<float>(), x.data_ptr<float>() + x.numel())}};
  }
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = 0; i < c.size(0); ++i) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t j = 0; j < c.size(1); ++j) {
      if (f) {
        row.push_back(c[i][j].item<float>());
      } else {
        row.push_back(c[i][j].item<int64_t>());
      }
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

void add_export(CLI::App& app) {
  struct Flags {
    std::string artifact, format = "onnx", out, examples, examples_out;
    int64_t opset = 14;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("export", ml_verb_description("export"));
  cmd->add_option("artifact", f->artifact, "Artifact directory (OUT/model of kiln train/run; the run directory OUT works too)")
      ->required();
  cmd->add_option("--format", f->format, "Output format (onnx)")->capture_default_str();
  cmd->add_option("--out", f->out, "Model file to write (model.onnx)")->required();
  cmd->add_option("--opset", f->opset, "ONNX opset of the default domain (14..17)")->capture_default_str();
  cmd->add_option("--examples", f->examples,
                  "Texts (image paths for cnn), one per line: also write the graph's inputs and Kiln's logits to --examples-out");
  cmd->add_option("--examples-out", f->examples_out, "JSON file for --examples: {\"inputs\": {...}, \"logits\": [...]}");
  cmd->callback([f]() {
    if (f->format != "onnx") throw ConfigError("--format must be onnx, got '" + f->format + "'");
    if (f->examples.empty() != f->examples_out.empty()) {
      throw ConfigError("--examples and --examples-out go together: pass both or neither");
    }
    onnx::OnnxExportOptions o;
    o.opset = f->opset;
    onnx::validate(o);
    artifact::PredictorOptions po;
    po.variant = "fp32";
    artifact::Predictor predictor(artifact_arg(f->artifact), po);
    auto art = artifact::load_artifact(predictor.dir());
    const std::string bytes = onnx::export_onnx(art, o);
    core::write_file_atomic(f->out, bytes);
    std::cout << "ONNX model (opset " << o.opset << ", family " << art.manifest.model.family << ", "
              << art.manifest.labels.size() << " labels) written to " << f->out << " (" << bytes.size() << " bytes)\n";
    if (!f->examples.empty()) {
      core::require_regular_file(f->examples, "--examples file");
      std::ifstream in(f->examples);
      std::vector<std::string> texts;
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) texts.push_back(line);
      }
      if (texts.empty()) throw DataError(f->examples + ": no texts (one per line)");
      data::Examples ex;
      const auto& family = art.manifest.model.family;
      if (family == "multimodal") {
        throw ConfigError("--examples reads one text or image path per line; a multimodal model needs both: export "
                          "without --examples");
      }
      if (family == "cnn") {
        for (auto& t : texts) ex.images.push_back({std::move(t), {}});
      } else {
        ex.texts = texts;
      }
      const auto batch = predictor.encode(ex);
      nlohmann::json inputs = nlohmann::json::object();
      for (const auto& [name, t] : onnx::onnx_inputs(art, batch)) inputs[name] = nested(t);
      const auto logits = predictor.forward(batch).to(torch::kCPU);
      core::write_file_atomic(f->examples_out, nlohmann::json{{"inputs", inputs}, {"logits", nested(logits)}}.dump() + "\n");
      std::cout << "inputs and Kiln's logits for " << texts.size() << " texts written to " << f->examples_out << "\n";
    }
  });
}

}  // namespace kiln::cli
