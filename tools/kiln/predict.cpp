#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "kiln/artifact/predictor.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/data/reader.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct PredictFlags {
  std::string artifact;
  std::string input = "-";
  std::string format = "lines";
  std::string text_col = "text";
  std::string image_col;
  std::string device = "cpu";
  std::string variant;
  int top_k = 1;
  int64_t batch = 1024;
};

// Reads the input texts: "lines" = one text per line (stdin allowed), csv/jsonl via the data readers.
std::vector<std::string> read_inputs(const PredictFlags& f, const std::string& text_col) {
  std::vector<std::string> texts;
  if (f.format == "lines") {
    std::unique_ptr<std::ifstream> file;
    std::istream* in = &std::cin;
    if (f.input != "-") {
      core::require_regular_file(f.input, "input file");
      file = std::make_unique<std::ifstream>(f.input, std::ios::binary);
      in = file.get();
    }
    std::string line;
    while (std::getline(*in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      texts.push_back(std::move(line));
    }
    return texts;
  }
  if (f.input == "-") throw ConfigError("--input - (stdin) needs --format lines; csv and jsonl are read from files");
  data::ReaderOptions ro;
  ro.format = data::parse_format(f.format);
  return data::read_column(f.input, ro, text_col);
}

// The examples of an image (or text + image) model: image paths from --image-col (relative to the
// input file's folder), or one path per line (relative to the current directory) with --format lines.
data::Examples read_image_inputs(const PredictFlags& f, const std::string& text_col, const std::string& image_col) {
  data::Examples ex;
  if (f.format == "lines") {
    for (auto& p : read_inputs(f, text_col)) ex.images.push_back({std::move(p), {}});
    return ex;
  }
  if (f.input == "-") throw ConfigError("--input - (stdin) needs --format lines; csv and jsonl are read from files");
  data::ReaderOptions ro;
  ro.format = data::parse_format(f.format);
  for (auto& p : data::read_column(f.input, ro, image_col)) ex.images.push_back({std::move(p), {}});
  if (!text_col.empty()) ex.texts = data::read_column(f.input, ro, text_col);
  ex.base_dir = std::filesystem::path(f.input).parent_path().string();
  return ex;
}

}  // namespace

void add_predict(CLI::App& app) {
  auto flags = std::make_shared<PredictFlags>();
  auto* cmd = app.add_subcommand("predict", ml_verb_description("predict"));
  cmd->add_option("artifact", flags->artifact, "Artifact directory (OUT/model of kiln train/run; the run directory OUT works too)")->required();
  cmd->add_option("--input", flags->input, "Input file, or - for stdin")->capture_default_str();
  cmd->add_option("--format", flags->format, "Input format")
      ->check(CLI::IsMember({"lines", "csv", "tsv", "jsonl", "json"}))
      ->capture_default_str();
  cmd->add_option("--text-col", flags->text_col, "Text column for csv/tsv/jsonl/json input")->capture_default_str();
  cmd->add_option("--image-col", flags->image_col,
                  "Image-path column for csv/tsv/jsonl/json input (paths relative to the file's folder); default: the "
                  "one an image model was trained with. With --format lines, each line is an image path");
  cmd->add_option("--device", flags->device, "Where the model runs: cpu | cuda[:N]")->capture_default_str();
  cmd->add_option("--variant", flags->variant,
                  "Weights to run: fp32 or a variant kiln optimize made (default: the artifact's default variant)");
  cmd->add_option("--top-k", flags->top_k, "Also list the K most probable labels")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->callback([flags, cmd]() {
    artifact::PredictorOptions po;
    po.device = flags->device;
    po.variant = flags->variant;
    artifact::Predictor predictor(artifact_arg(flags->artifact), po);
    if (predictor.variant() != "fp32") std::cerr << "kiln: running variant " << predictor.variant() << "\n";
    const ArtifactColumns trained = artifact_columns(predictor.manifest().training);
    const std::string image_col = cmd->count("--image-col") ? flags->image_col : trained.image_col;
    const std::string text_col = cmd->count("--text-col") ? flags->text_col : (image_col.empty() ? flags->text_col : trained.text_col);
    data::Examples examples;
    if (image_col.empty()) examples.texts = read_inputs(*flags, text_col);
    else examples = read_image_inputs(*flags, text_col, image_col);
    std::string out;
    // Predict in slices so output starts early and memory stays bounded on large inputs.
    const std::size_t slice = 4096;
    for (std::size_t start = 0; start < examples.size(); start += slice) {
      std::vector<std::size_t> ids;
      for (std::size_t i = start; i < std::min(examples.size(), start + slice); ++i) ids.push_back(i);
      auto preds = predictor.predict(examples.select(ids), flags->top_k);
      out.clear();
      for (const auto& p : preds) {
        nlohmann::json j = {{"label", p.label}, {"probability", p.probability}};
        if (flags->top_k > 1) {
          nlohmann::json top = nlohmann::json::array();
          for (const auto& [label, prob] : p.top_k) top.push_back({{"label", label}, {"probability", prob}});
          j["top_k"] = top;
        }
        out += j.dump();
        out += '\n';
      }
      std::cout << out;
    }
    std::cout.flush();
  });
}

}  // namespace kiln::cli
