// Artifacts built in memory for the explain tests: TF-IDF word 1-2-grams + family linear (or mlp)
// with the golden weights of tests/golden/make_shap_golden.py, and a tiny random BERT over a
// WordPiece vocabulary learnt on the golden texts.
#pragma once

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/data/dataset.h"
#include "kiln/nn/model.h"
#include "kiln/prep/preprocessor.h"

namespace kiln::explain::testing {

inline const nlohmann::json& golden() {
  static const nlohmann::json g = [] {
    std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/explain/shap_golden.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str())["linear"];
  }();
  return g;
}

inline data::Examples texts(const nlohmann::json& list) {
  data::Examples ex;
  ex.texts = list.get<std::vector<std::string>>();
  return ex;
}

inline artifact::Artifact golden_artifact(const std::string& family = "linear") {
  const auto& g = golden();
  std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor({{"type", "tfidf"}, {"ngram_range", {1, 2}}});
  pre->fit(texts(g["train"]));
  artifact::Artifact a;
  a.preprocessors = {pre};
  nn::ModelSpec spec;
  spec.family = family;
  a.model = nn::make_model(spec, pre->input_spec(), g["classes"].get<int64_t>());
  a.model->eval();
  a.manifest.labels = {"a", "b", "c"};
  a.manifest.model = nn::resolve_spec(spec);
  a.manifest.inputs = pre->input_spec();
  if (auto parts = a.model->linear_parts()) {
    torch::NoGradGuard no_grad;
    const int64_t v = parts->table.size(0);
    for (int64_t j = 0; j < v; ++j) {
      const auto w = g["weights"].at(pre->feature_name(j)).get<std::vector<double>>();
      for (int64_t c = 0; c < 3; ++c) parts->table[j][c] = w[static_cast<std::size_t>(c)];
    }
    const auto b = g["bias"].get<std::vector<double>>();
    for (int64_t c = 0; c < 3; ++c) parts->bias[c] = b[static_cast<std::size_t>(c)];
  }
  return a;
}

inline artifact::Artifact tiny_bert(const nlohmann::json& featurizer = {{"type", "wordpiece"}, {"vocab_size", 60}}) {
  std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor(featurizer);
  pre->fit(texts(golden()["train"]));
  artifact::Artifact a;
  a.preprocessors = {pre};
  nn::ModelSpec spec;
  spec.family = "bert";
  spec.params = {{"preset", "tiny"}};
  torch::manual_seed(3);
  a.model = nn::make_model(spec, pre->input_spec(), 3);
  a.model->eval();
  a.manifest.labels = {"a", "b", "c"};
  a.manifest.model = nn::resolve_spec(spec);
  a.manifest.inputs = pre->input_spec();
  return a;
}

}  // namespace kiln::explain::testing
