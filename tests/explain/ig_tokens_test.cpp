// Integrated gradients over BERT's word embeddings against tests/golden/make_bert_ig_golden.py
// (python3-torch, the golden BERT checkpoint of make_bert_golden.py run by its reference model).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kiln/explain/explainer.h"
#include "kiln/nn/bert.h"
#include "kiln/nn/input_spec.h"
#include "kiln/prep/preprocessor.h"

namespace kiln::explain {
namespace {

nlohmann::json golden() {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/explain/bert_ig_golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

artifact::Artifact golden_bert() {
  artifact::Artifact a;
  std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor(
      {{"type", "wordpiece"}, {"vocab", std::string(KILN_GOLDEN_DIR) + "/explain/bert_ig_vocab.txt"}});
  a.preprocessors = {pre};
  auto loaded = nn::load_hf_checkpoint(std::string(KILN_GOLDEN_DIR) + "/nn/bert");
  a.model = loaded.model;
  a.model->eval();
  a.manifest.labels = {"a", "b", "c"};
  a.manifest.inputs = pre->input_spec();
  a.manifest.model.family = "bert";
  return a;
}

TEST(IgTokens, EqualTheGoldenAttributions) {
  const artifact::Predictor p(golden_bert());
  const auto g = golden();
  int checked = 0;
  for (const auto& c : g["cases"]) {
    ExplainOptions o;
    o.method = Method::kIntegratedGradients;
    o.ig_steps = g["steps"];
    o.ig_baseline = parse_ig_baseline(c["baseline"]);
    const Explainer e(p, o);
    data::Examples ex;
    ex.texts = {c["text"].get<std::string>()};
    const auto ids = p.encode(ex).at(nn::kInputIds);
    ASSERT_EQ(ids.size(1), static_cast<int64_t>(c["input_ids"].size()));
    for (int64_t t = 0; t < ids.size(1); ++t) ASSERT_EQ(ids[0][t].item<int64_t>(), c["input_ids"][t].get<int64_t>());
    const auto all = e.explain_all(ex);
    const auto& want = c["attributions"];
    ASSERT_EQ(all[0].features.size(), want.size());
    for (std::size_t k = 0; k < 3; ++k) {
      EXPECT_NEAR(all[0].output[k], c["logits"][k].get<double>(), 1e-5);
      EXPECT_NEAR(all[0].base[k], c["base_logits"][k].get<double>(), 1e-5);
      for (std::size_t f = 0; f < want.size(); ++f) {
        EXPECT_NEAR(all[0].values[f * 3 + k], want[f][k].get<double>(), 1e-5) << c["text"] << " token " << f;
      }
      EXPECT_NEAR((*all[0].delta)[k], c["delta"][k].get<double>(), 1e-5);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

}  // namespace
}  // namespace kiln::explain
