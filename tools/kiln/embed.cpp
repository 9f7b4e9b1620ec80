// kiln embed: the pooled vector of every text, from a Kiln artifact (any family's Model::embed) or a
// Hugging Face-layout BERT directory (config.json, model.safetensors, vocab.txt), as JSON lines or
// a float32 .npy matrix.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/artifact/predictor.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/data/reader.h"
#include "kiln/nn/bert.h"
#include "kiln/prep/preprocessor.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace kiln::cli {
namespace {

struct EmbedFlags {
  std::string model, input = "-", format = "lines", text_col = "text", pooling, out;
  int64_t batch = 64;
  int64_t max_length = 0;
};

std::vector<std::string> read_texts(const EmbedFlags& f) {
  std::vector<std::string> texts;
  if (f.format == "lines") {
    std::unique_ptr<std::ifstream> file;
    std::istream* in = &std::cin;
    if (f.input != "-") {
      core::require_regular_file(f.input, "--input");
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

// A float32 [rows, cols] matrix in NumPy's .npy format (version 1.0, C order, little-endian).
std::string npy_bytes(const torch::Tensor& m) {
  const auto t = m.to(torch::kFloat32).contiguous();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(t.size(0)) + ", " +
                       std::to_string(t.size(1)) + "), }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(t.data_ptr<float>()), static_cast<std::size_t>(t.numel()) * sizeof(float));
  return out;
}

std::optional<nn::BertPooling> parse_pooling(const std::string& p) {
  if (p.empty()) return std::nullopt;
  return p == "mean" ? nn::BertPooling::kMean : nn::BertPooling::kCls;
}

void run_embed(const EmbedFlags& f) {
  const auto texts = read_texts(f);
  std::shared_ptr<nn::Model> model;
  prep::Preprocessors preprocessors;
  std::unique_ptr<artifact::Predictor> predictor;
  const bool is_artifact = fs::exists(fs::path(f.model) / "kiln.json") || fs::exists(fs::path(f.model) / "model" / "kiln.json");
  if (is_artifact) {
    if (f.max_length > 0) {
      throw ConfigError("--max-length applies to a Hugging Face directory; an artifact keeps the max_length it was "
                        "trained with; drop --max-length");
    }
    predictor = std::make_unique<artifact::Predictor>(artifact::locate_artifact(f.model).dir);
    model = predictor->model();
    preprocessors = predictor->preprocessors();
  } else {
    if (!fs::exists(fs::path(f.model) / "config.json") && !fs::exists(fs::path(f.model) / "model" / "config.json")) {
      throw ArtifactError(f.model + " holds neither kiln.json (a Kiln artifact, the --out of kiln train or its "
                          "model/) nor config.json (a Hugging Face BERT directory, the --out of kiln pretrain or its "
                          "model/); pass one of those");
    }
    auto start = nn::bert_pretrained_start(f.model, nlohmann::json::object());
    nn::BertLoadOptions lo;
    lo.pooling = parse_pooling(f.pooling);
    const fs::path dir = fs::path(start.featurizer["vocab"].get<std::string>()).parent_path();
    auto loaded = nn::load_hf_checkpoint(dir, lo);
    const int64_t max_pos = loaded.model->options().config.max_position_embeddings;
    if (f.max_length > max_pos) {
      throw ConfigError("--max-length " + std::to_string(f.max_length) + " exceeds the model's max_position_embeddings " +
                        std::to_string(max_pos) + " (" + (dir / "config.json").string() + "); lower --max-length");
    }
    start.featurizer["max_length"] = f.max_length > 0 ? f.max_length : std::min<int64_t>(512, max_pos);
    std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor(start.featurizer);
    pre->fit({});
    preprocessors = {pre};
    model = loaded.model;
    model->eval();
  }
  if (!f.pooling.empty()) {
    auto* bert = dynamic_cast<nn::BertModel*>(model.get());
    if (!bert) throw ConfigError("--pooling applies to bert models; this artifact's model pools as its family does");
    bert->set_pooling(*parse_pooling(f.pooling));
  }
  std::vector<torch::Tensor> parts;
  torch::InferenceMode guard;
  for (std::size_t start = 0; start < texts.size(); start += static_cast<std::size_t>(f.batch)) {
    data::Examples ex;
    ex.texts.assign(texts.begin() + static_cast<std::ptrdiff_t>(start),
                    texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), start + static_cast<std::size_t>(f.batch))));
    const auto batch = prep::encode_all(preprocessors, ex);
    parts.push_back(model->embed_examples(batch).to(torch::kCPU));
  }
  const auto matrix = parts.empty() ? torch::zeros({0, model->embedding_dim()}) : torch::cat(parts, 0).contiguous();
  const bool npy = !f.out.empty() && fs::path(f.out).extension() == ".npy";
  if (npy) {
    core::write_file_atomic(f.out, npy_bytes(matrix));
  } else {
    std::string out;
    const float* p = matrix.data_ptr<float>();
    const int64_t d = matrix.size(1);
    for (int64_t i = 0; i < matrix.size(0); ++i) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t k = 0; k < d; ++k) row.push_back(p[i * d + k]);
      out += nlohmann::json{{"embedding", row}}.dump() + "\n";
    }
    if (f.out.empty() || f.out == "-") {
      std::cout << out;
      std::cout.flush();
    } else {
      core::write_file_atomic(f.out, out);
    }
  }
  if (!f.out.empty() && f.out != "-") {
    core::info(std::to_string(matrix.size(0)) + " embeddings of " + std::to_string(matrix.size(1)) + " dimensions -> " + f.out);
  }
}

}  // namespace

void add_embed(CLI::App& app) {
  auto f = std::make_shared<EmbedFlags>();
  auto* cmd = app.add_subcommand("embed", ml_verb_description("embed"));
  cmd->add_option("model", f->model,
                  "A Kiln artifact (or kiln train's run directory) or a Hugging Face BERT directory (config.json, "
                  "model.safetensors, vocab.txt; or kiln pretrain's run directory)")
      ->required();
  cmd->add_option("--input", f->input, "Input file, or - for stdin")->capture_default_str();
  cmd->add_option("--format", f->format, "Input format")
      ->check(CLI::IsMember({"lines", "csv", "tsv", "jsonl", "json"}))
      ->capture_default_str();
  cmd->add_option("--text-col", f->text_col, "Text column for csv/tsv/jsonl/json input")->capture_default_str();
  cmd->add_option("--pooling", f->pooling, "bert: cls (the pooler's output) | mean (masked mean); default: the model's")
      ->check(CLI::IsMember({"cls", "mean"}));
  cmd->add_option("--max-length", f->max_length, "Hugging Face directory: longest input in tokens (default min(512, max_position_embeddings))")
      ->check(CLI::Range(int64_t{3}, int64_t{1} << 20));
  cmd->add_option("--batch-size", f->batch, "Texts per forward pass")->check(CLI::Range(int64_t{1}, int64_t{1} << 20))->capture_default_str();
  cmd->add_option("--out", f->out, "Output: FILE.jsonl (one {\"embedding\": [...]} a line), FILE.npy (float32 [texts, dim]); default stdout (JSON lines)");
  cmd->callback([f]() { run_embed(*f); });
}

}  // namespace kiln::cli
