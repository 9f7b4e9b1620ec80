// Family "cnn": forward parity with torchvision's resnet18 and the same BasicBlock stack for "small"
// (goldens from tests/golden/make_cnn_golden.py), torchvision's state_dict names, init, shapes, and
// the bad-parameter and bad-input messages.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "kiln/core/error.h"
#include "kiln/nn/model.h"
#include "nn_test_util.h"

namespace {

using kiln::nn::InputSpec;
using kiln::nn::ModelSpec;
using nlohmann::json;

InputSpec pixel_spec(int64_t c, int64_t h, int64_t w) {
  InputSpec s;
  s.tensors.push_back({kiln::nn::kPixelValues, "float32", {"batch", std::to_string(c), std::to_string(h), std::to_string(w)}, 0});
  return s;
}

std::shared_ptr<kiln::nn::Model> make(const json& params, int64_t c, int64_t classes, int64_t h = 8, int64_t w = 8) {
  ModelSpec spec;
  spec.family = "cnn";
  spec.params = params;
  return kiln::nn::make_model(spec, pixel_spec(c, h, w), classes);
}

json golden() {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/nn/cnn_golden.json");
  EXPECT_TRUE(in) << "run tests/golden/make_cnn_golden.py";
  return json::parse(in);
}

}  // namespace

TEST(CnnModel, ForwardMatchesTorchvisionGoldens) {
  const json g = golden();
  ASSERT_EQ(g["cases"].size(), 3u);
  for (const auto& c : g["cases"]) {
    const auto shape = c["input_shape"].get<std::vector<int64_t>>();
    const std::string name = c["name"];
    const json params = name == "resnet18" ? json{{"preset", "resnet18"}} : json::object();
    auto m = make(params, shape[1], c["classes"], shape[2], shape[3]);
    // torchvision's state_dict keys, exactly.
    EXPECT_EQ(kiln::nn::testing::fill_like_golden(*m), c["state_dict_names"].get<std::vector<std::string>>()) << name;
    m->eval();
    int64_t n = 1;
    for (auto d : shape) n *= d;
    const auto x = torch::sin(0.1 * torch::arange(n, torch::kFloat64)).to(torch::kFloat32).view(shape);
    kiln::nn::Batch b(shape[0]);
    b.set(kiln::nn::kPixelValues, x);
    torch::NoGradGuard no_grad;
    const auto logits = m->forward(b);
    const auto want = torch::tensor(c["logits"].get<std::vector<float>>()).view_as(logits);
    const double err = (logits - want).abs().max().item<double>();
    EXPECT_LT(err, 1e-5) << name << ": max |kiln - torch| = " << err;
  }
}

TEST(CnnModel, ShapesInitAndPlainBlocks) {
  torch::manual_seed(0);
  auto m = make({{"widths", {8, 16}}, {"blocks", {1, 2}}, {"residual", false}}, 3, 5, 12, 12);
  kiln::nn::Batch b(4);
  b.set(kiln::nn::kPixelValues, torch::randn({4, 3, 12, 12}));
  EXPECT_EQ(m->forward(b).sizes().vec(), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(m->embed(b).sizes().vec(), (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(m->embedding_dim(), 16);
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  EXPECT_FALSE(names.count("layer2.0.downsample.0.weight"));  // no shortcut without residual
  EXPECT_TRUE(names.count("layer2.1.conv2.weight"));
  // Kaiming normal (fan_out): std sqrt(2 / (16 * 9)) for layer2's 3x3 convolutions.
  auto p = m->named_parameters();
  const double sd = p["layer2.1.conv1.weight"].std().item<double>();
  EXPECT_NEAR(sd, std::sqrt(2.0 / 144.0), 0.02);
  EXPECT_EQ(p["bn1.weight"].min().item<double>(), 1.0);
  auto r = make({}, 1, 3);
  std::set<std::string> rnames;
  for (const auto& q : r->named_parameters()) rnames.insert(q.key());
  EXPECT_TRUE(rnames.count("layer2.0.downsample.0.weight"));
}

TEST(CnnModel, BadParamsAndInputsNameTheField) {
  auto msg = [](const json& params) {
    try {
      (void)make(params, 1, 2);
    } catch (const kiln::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(msg({{"preset", "vgg"}}).find("model.params.preset"), std::string::npos);
  EXPECT_NE(msg({{"widths", {8, 16}}}).find("model.params.blocks must have one entry per stage"), std::string::npos);
  EXPECT_NE(msg({{"widths", {0}}, {"blocks", {1}}}).find("model.params.widths must be a non-empty list of integers >= 1"),
            std::string::npos);
  EXPECT_NE(msg({{"dropout", 1.5}}).find("model.params.dropout"), std::string::npos);
  EXPECT_NE(msg({{"depth", 3}}).find("depth"), std::string::npos);
  // Text inputs: the family names pixel_values and the image preprocessor.
  InputSpec bag;
  bag.tensors.push_back({kiln::nn::kBagIndices, "int64", {"nnz"}, 10});
  bag.tensors.push_back({kiln::nn::kBagOffsets, "int64", {"batch"}, 0});
  ModelSpec spec;
  spec.family = "cnn";
  try {
    (void)kiln::nn::make_model(spec, bag, 2);
    FAIL();
  } catch (const kiln::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pixel_values"), std::string::npos) << e.what();
  }
  auto m = make({}, 3, 2);
  kiln::nn::Batch b(1);
  b.set(kiln::nn::kPixelValues, torch::zeros({1, 1, 8, 8}));
  try {
    (void)m->forward(b);
    FAIL();
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("needs pixel_values [batch, 3, height, width], got shape [1, 1, 8, 8]"),
              std::string::npos) << e.what();
  }
}
