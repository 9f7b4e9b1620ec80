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
  std::string device = "cpu";
  std::string variant;
  int top_k = 1;
  int64_t batch = 1024;
};

// Reads the input texts: "lines" = one text per line (stdin allowed), csv/jsonl via the data readers.
std::vector<std::string> read_inputs(const PredictFlags& f) {
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
  return data::read_column(f.input, ro, f.text_col);
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
  cmd->add_option("--device", flags->device, "Where the model runs: cpu | cuda[:N]")->capture_default_str();
  cmd->add_option("--variant", flags->variant,
                  "Weights to run: fp32 or a variant kiln optimize made (default: the artifact's default variant)");
  cmd->add_option("--top-k", flags->top_k, "Also list the K most probable labels")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->callback([flags]() {
    artifact::PredictorOptions po;
    po.device = flags->device;
    po.variant = flags->variant;
    artifact::Predictor predictor(artifact_arg(flags->artifact), po);
    if (predictor.variant() != "fp32") std::cerr << "kiln: running variant " << predictor.variant() << "\n";
    auto texts = read_inputs(*flags);
    std::string out;
    // Predict in slices so output starts early and memory stays bounded on large inputs.
    const std::size_t slice = 4096;
    for (std::size_t start = 0; start < texts.size(); start += slice) {
      std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                     texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), start + slice)));
      auto preds = predictor.predict(chunk, flags->top_k);
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
