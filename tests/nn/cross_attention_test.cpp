// CrossModalAttention against python3-torch goldens (tests/golden/make_cross_attention_golden.py),
// and the "multimodal" family: shapes for every fusion, text and image both mattering, bad params.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "cross_attention.h"
#include "kiln/core/error.h"
#include "kiln/nn/model.h"
#include "nn_test_util.h"

namespace {

using nlohmann::json;

torch::Tensor pattern(bool cosine, double scale, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  const auto k = scale * torch::arange(n, torch::kFloat64);
  return (cosine ? torch::cos(k) : torch::sin(k)).to(torch::kFloat32).view(shape);
}

kiln::nn::InputSpec text_image_spec() {
  kiln::nn::InputSpec s;
  s.tensors.push_back({kiln::nn::kBagIndices, "int64", {"nnz"}, 50});
  s.tensors.push_back({kiln::nn::kBagOffsets, "int64", {"batch"}, 0});
  s.tensors.push_back({kiln::nn::kBagWeights, "float32", {"nnz"}, 0});
  s.tensors.push_back({kiln::nn::kPixelValues, "float32", {"batch", "1", "8", "8"}, 0});
  return s;
}

kiln::nn::Batch text_image_batch() {
  kiln::nn::Batch b(2);
  b.set(kiln::nn::kBagIndices, torch::tensor({1, 7, 3, 49}, torch::kInt64));
  b.set(kiln::nn::kBagOffsets, torch::tensor({0, 2}, torch::kInt64));
  b.set(kiln::nn::kBagWeights, torch::ones({4}));
  b.set(kiln::nn::kPixelValues, pattern(false, 0.3, {2, 1, 8, 8}));
  return b;
}

}  // namespace

TEST(CrossModalAttention, MatchesTorchGoldens) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/nn/cross_attention_golden.json");
  ASSERT_TRUE(in) << "run tests/golden/make_cross_attention_golden.py";
  const json g = json::parse(in);
  ASSERT_EQ(g["cases"].size(), 3u);
  for (const auto& c : g["cases"]) {
    const int64_t heads = c["heads"], b = c["batch"], lt = c["text_len"], li = c["image_len"], d = c["dim"];
    kiln::nn::CrossModalAttention m(d, heads);
    std::vector<std::string> names;
    for (const auto& p : m->named_parameters()) names.push_back(p.key());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, c["names"].get<std::vector<std::string>>());
    kiln::nn::testing::fill_like_golden(*m);
    m->eval();
    torch::NoGradGuard no_grad;
    const auto out = m->forward(pattern(false, 0.1, {b, lt, d}), pattern(true, 0.07, {b, li, d}));
    const auto want = torch::tensor(c["output"].get<std::vector<float>>()).view_as(out);
    const double err = (out - want).abs().max().item<double>();
    EXPECT_LT(err, 1e-5) << "heads " << heads << ": max |kiln - torch| = " << err;
  }
  EXPECT_THROW(kiln::nn::CrossModalAttention(10, 4), kiln::ConfigError);
}

TEST(Multimodal, EveryFusionClassifiesAndBothModalitiesMatter) {
  for (const char* fusion : {"cross_attention", "concat", "gated"}) {
    for (int heads : {1, 4}) {
      if (heads > 1 && std::string(fusion) != "cross_attention") continue;
      torch::manual_seed(0);
      kiln::nn::ModelSpec spec;
      spec.family = "multimodal";
      spec.params = {{"fusion", fusion}, {"dim", 16}, {"heads", heads}};
      auto m = kiln::nn::make_model(spec, text_image_spec(), 3);
      m->eval();
      torch::NoGradGuard no_grad;
      auto b = text_image_batch();
      const auto logits = m->forward(b);
      ASSERT_EQ(logits.sizes().vec(), (std::vector<int64_t>{2, 3})) << fusion;
      EXPECT_EQ(m->embed(b).size(1), m->embedding_dim()) << fusion;
      auto other_text = b;
      other_text.set(kiln::nn::kBagIndices, torch::tensor({2, 8, 4, 5}, torch::kInt64));
      EXPECT_FALSE(torch::allclose(m->forward(other_text), logits)) << fusion << ": text ignored";
      auto other_image = b;
      other_image.set(kiln::nn::kPixelValues, pattern(true, 0.9, {2, 1, 8, 8}));
      EXPECT_FALSE(torch::allclose(m->forward(other_image), logits)) << fusion << ": image ignored";
    }
  }
}

TEST(Multimodal, BadParamsAndInputs) {
  kiln::nn::ModelSpec spec;
  spec.family = "multimodal";
  spec.params = {{"dim", 10}, {"heads", 4}};
  try {
    (void)kiln::nn::make_model(spec, text_image_spec(), 2);
    FAIL();
  } catch (const kiln::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.params.dim (10) must be divisible by model.params.heads (4)"),
              std::string::npos) << e.what();
  }
  spec.params = {{"fusion", "sum"}};
  EXPECT_THROW((void)kiln::nn::make_model(spec, text_image_spec(), 2), kiln::ConfigError);
  spec.params = json::object();
  kiln::nn::InputSpec text_only;
  text_only.tensors.push_back({kiln::nn::kBagIndices, "int64", {"nnz"}, 50});
  text_only.tensors.push_back({kiln::nn::kBagOffsets, "int64", {"batch"}, 0});
  try {
    (void)kiln::nn::make_model(spec, text_only, 2);
    FAIL();
  } catch (const kiln::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pixel_values"), std::string::npos) << e.what();
  }
}
