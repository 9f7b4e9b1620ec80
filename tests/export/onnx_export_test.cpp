#include "kiln/export/onnx.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"
#include "kiln/core/subprocess.h"
#include "kiln/nn/bert.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

constexpr int64_t kFeatures = 40;

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_onnx_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

nn::InputSpec bag_spec() {
  nn::InputSpec s;
  s.tensors.push_back({nn::kBagIndices, "int64", {"nnz"}, kFeatures});
  s.tensors.push_back({nn::kBagOffsets, "int64", {"batch"}, 0});
  s.tensors.push_back({nn::kBagWeights, "float32", {"nnz"}, 0});
  return s;
}

artifact::Artifact bag_artifact(const std::string& family, const nlohmann::json& params) {
  artifact::Artifact a;
  nn::ModelSpec spec;
  spec.family = family;
  spec.params = params;
  a.manifest.model = nn::resolve_spec(spec);
  a.manifest.labels = {"a", "b", "c"};
  torch::manual_seed(4);
  a.model = nn::make_model(a.manifest.model, bag_spec(), 3);
  // Non-zero biases so the graph's Adds are exercised.
  torch::NoGradGuard g;
  for (auto& p : a.model->named_parameters()) {
    if (p.key().find("bias") != std::string::npos) p.value().uniform_(-0.5, 0.5);
  }
  a.model->eval();
  return a;
}

// Five rows: one empty bag, one with a repeated id, TF-IDF-like weights.
nn::Batch bag_batch() {
  nn::Batch b(5);
  b.set(nn::kBagIndices, torch::tensor({1, 5, 7, 3, 3, 39, 0, 12, 20, 21, 22}, torch::kLong));
  b.set(nn::kBagOffsets, torch::tensor({0, 3, 5, 5, 6}, torch::kLong));
  b.set(nn::kBagWeights, torch::tensor({0.5f, 0.25f, 1.0f, 0.3f, 0.2f, 0.9f, 0.1f, 0.4f, 0.7f, 0.2f, 0.6f}));
  return b;
}

artifact::Artifact bert_artifact(nn::BertPooling pooling, const std::string& act, bool pre_ln = false) {
  nn::BertOptions o;
  nn::apply_bert_preset("tiny", o.config);
  o.config.vocab_size = 50;
  o.config.num_hidden_layers = 2;
  o.config.hidden_size = 32;
  o.config.num_attention_heads = 4;
  o.config.intermediate_size = 64;
  o.config.max_position_embeddings = 16;
  o.config.hidden_act = act;
  o.pooling = pooling;
  o.pre_ln = pre_ln;
  o.num_classes = 3;
  torch::manual_seed(5);
  artifact::Artifact a;
  a.manifest.model.family = "bert";
  a.manifest.labels = {"x", "y", "z"};
  a.model = std::make_shared<nn::BertModel>(o);
  a.model->eval();
  return a;
}

nn::InputSpec image_spec(bool with_bag) {
  nn::InputSpec s = with_bag ? bag_spec() : nn::InputSpec{};
  s.tensors.push_back({nn::kPixelValues, "float32", {"batch", "3", "height", "width"}, 0});
  return s;
}

// A cnn or multimodal model with random BatchNorm statistics (a trained model's are not 0 and 1).
artifact::Artifact image_artifact(const std::string& family, const nlohmann::json& params) {
  artifact::Artifact a;
  nn::ModelSpec spec;
  spec.family = family;
  spec.params = params;
  a.manifest.model = nn::resolve_spec(spec);
  a.manifest.labels = {"a", "b", "c"};
  torch::manual_seed(6);
  a.model = nn::make_model(a.manifest.model, image_spec(family == "multimodal"), 3);
  torch::NoGradGuard g;
  for (auto& b : a.model->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.2, 0.2);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
  }
  for (auto& p : a.model->named_parameters()) {
    if (p.key().find("bias") != std::string::npos) p.value().uniform_(-0.3, 0.3);
  }
  a.model->eval();
  return a;
}

// A multimodal model whose text side is a small BERT (vocabulary 50), random BatchNorm statistics.
artifact::Artifact multimodal_bert_artifact(const nlohmann::json& params) {
  nn::InputSpec s;
  s.tensors.push_back({nn::kInputIds, "int64", {"batch", "sequence"}, 50});
  s.tensors.push_back({nn::kAttentionMask, "int64", {"batch", "sequence"}, 0});
  s.tensors.push_back({nn::kTokenTypeIds, "int64", {"batch", "sequence"}, 0});
  s.tensors.push_back({nn::kPixelValues, "float32", {"batch", "3", "height", "width"}, 0});
  artifact::Artifact a;
  nn::ModelSpec spec;
  spec.family = "multimodal";
  spec.params = params;
  spec.params["text_encoder"] = "bert";
  spec.params["bert"] = {{"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"intermediate_size", 48}};
  a.manifest.model = nn::resolve_spec(spec);
  a.manifest.labels = {"a", "b", "c"};
  torch::manual_seed(7);
  a.model = nn::make_model(a.manifest.model, s, 3);
  torch::NoGradGuard g;
  for (auto& b : a.model->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.2, 0.2);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
  }
  a.model->eval();
  return a;
}

nn::Batch image_batch(bool with_bag, int64_t size) {
  nn::Batch b = with_bag ? bag_batch() : nn::Batch(5);
  torch::manual_seed(8);
  b.set(nn::kPixelValues, torch::randn({5, 3, size, size}));
  return b;
}

nn::Batch bert_batch() {
  nn::Batch b(3);
  b.set(nn::kInputIds, torch::tensor({{2, 7, 9, 11, 3, 0}, {2, 40, 3, 0, 0, 0}, {2, 5, 6, 7, 8, 3}}, torch::kLong));
  b.set(nn::kAttentionMask, torch::tensor({{1, 1, 1, 1, 1, 0}, {1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 1}}, torch::kLong));
  b.set(nn::kTokenTypeIds, torch::tensor({{0, 0, 0, 1, 1, 0}, {0, 0, 0, 0, 0, 0}, {0, 0, 1, 1, 1, 1}}, torch::kLong));
  return b;
}

nlohmann::json rows(const torch::Tensor& t) {
  nlohmann::json out = nlohmann::json::array();
  const auto c = t.contiguous();
  for (int64_t i = 0; i < c.size(0); ++i) {
    nlohmann::json r = nlohmann::json::array();
    for (int64_t j = 0; j < c.size(1); ++j) {
      if (c.scalar_type() == torch::kFloat32) {
        r.push_back(c[i][j].item<float>());
      } else {
        r.push_back(c[i][j].item<int64_t>());
      }
    }
    out.push_back(r);
  }
  return out;
}

// Exports, runs ONNX Runtime through tests/export/check_onnx.sh and returns its max |diff| with
// Kiln's logits; -1 when the references are missing (skipped).
double onnx_runtime_diff(const artifact::Artifact& a, const nn::Batch& batch, const std::string& name) {
  const auto dir = fresh_dir(name);
  {
    std::ofstream(dir / "model.onnx", std::ios::binary) << onnx::export_onnx(a, {});
  }
  torch::InferenceMode guard;
  nlohmann::json ex;
  for (const auto& [n, t] : onnx::onnx_inputs(a, batch)) {
    if (t.dim() == 2) {
      ex["inputs"][n] = rows(t);
    } else {
      const auto c = t.contiguous().to(torch::kFloat32);
      ex["inputs"][n] = {{"dims", t.sizes().vec()},
                         {"data", std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())}};
    }
  }
  ex["logits"] = rows(a.model->forward(batch));
  std::ofstream(dir / "examples.json") << ex.dump();
  core::SubprocessOptions so;
  so.timeout_s = 300;
  const auto r = core::run_subprocess(
      {"bash", std::string(KILN_TESTS_DIR) + "/export/check_onnx.sh", (dir / "model.onnx").string(), (dir / "examples.json").string()},
      so, {});
  if (r.exit_code == 77) return -1;
  EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err_tail << r.out_tail;
  if (r.exit_code != 0) return 1e9;
  const auto j = nlohmann::json::parse(core::last_lines(r.out_tail, 1));
  EXPECT_EQ(j["rows"], batch.size());
  fs::remove_all(dir);
  return j["max_abs_diff"].get<double>();
}

#define CHECK_ORT(artifact, batch, name)                                                  \
  do {                                                                                    \
    const double d = onnx_runtime_diff(artifact, batch, name);                            \
    if (d < 0) GTEST_SKIP() << "python3-onnx or onnxruntime-node missing (see stderr)";   \
    EXPECT_LT(d, 1e-4) << name;                                                           \
  } while (0)

}  // namespace

TEST(OnnxExport, LinearMatchesOnnxRuntime) { CHECK_ORT(bag_artifact("linear", nlohmann::json::object()), bag_batch(), "linear"); }

TEST(OnnxExport, MlpMatchesOnnxRuntime) {
  CHECK_ORT(bag_artifact("mlp", {{"hidden", {16, 16, 8}}, {"activation", "relu"}}), bag_batch(), "mlp_relu");
  CHECK_ORT(bag_artifact("mlp", {{"hidden", {16, 16}}, {"activation", "gelu"}, {"layer_norm", true}, {"residual", true}}),
            bag_batch(), "mlp_gelu_ln_residual");
}

TEST(OnnxExport, EmbedBagMatchesOnnxRuntime) {
  CHECK_ORT(bag_artifact("embedbag", {{"dim", 12}, {"pooling", "mean"}}), bag_batch(), "embedbag_mean");
  CHECK_ORT(bag_artifact("embedbag", {{"dim", 12}, {"pooling", "sum"}, {"hidden", 8}, {"activation", "tanh"}}), bag_batch(),
            "embedbag_sum_hidden");
}

TEST(OnnxExport, BertMatchesOnnxRuntime) {
  CHECK_ORT(bert_artifact(nn::BertPooling::kCls, "gelu"), bert_batch(), "bert_cls");
  CHECK_ORT(bert_artifact(nn::BertPooling::kMean, "relu"), bert_batch(), "bert_mean");
}

TEST(OnnxExport, BertPreLnMatchesOnnxRuntime) {
  CHECK_ORT(bert_artifact(nn::BertPooling::kCls, "gelu", /*pre_ln=*/true), bert_batch(), "bert_pre_ln");
}

TEST(OnnxExport, CnnMatchesOnnxRuntime) {
  CHECK_ORT(image_artifact("cnn", {{"widths", {8, 16}}, {"blocks", {1, 2}}}), image_batch(false, 12), "cnn_small");
  CHECK_ORT(image_artifact("cnn", {{"preset", "resnet18"}, {"widths", {8, 8, 16, 16}}, {"blocks", {2, 2, 2, 2}}}),
            image_batch(false, 32), "cnn_resnet18_layout");
  CHECK_ORT(image_artifact("cnn", {{"widths", {8, 16}}, {"blocks", {1, 1}}, {"residual", false}}), image_batch(false, 10),
            "cnn_plain");
}

TEST(OnnxExport, MultimodalMatchesOnnxRuntime) {
  // concat's ops (ReduceMean, Concat) are a subset of gated's.
  for (const char* fusion : {"cross_attention", "gated"}) {
    CHECK_ORT(image_artifact("multimodal", {{"fusion", fusion}, {"dim", 16}}), image_batch(true, 12),
              std::string("multimodal_") + fusion);
  }
  // Multi-head cross attention (torch's MultiheadAttention, residual, LayerNorm).
  CHECK_ORT(image_artifact("multimodal", {{"fusion", "cross_attention"}, {"dim", 16}, {"heads", 4}}), image_batch(true, 12),
            "multimodal_cross_attention_4_heads");
}

TEST(OnnxExport, MultimodalWithABertTextSideMatchesOnnxRuntime) {
  // Padded token rows (bert_batch) and images: cross attention over every token (1 and 4 heads),
  // averaged over the attended ones; gated fusion reads the pooler's [CLS] vector.
  nn::Batch b = bert_batch();
  torch::manual_seed(9);
  b.set(nn::kPixelValues, torch::randn({3, 3, 12, 12}));
  const std::vector<nlohmann::json> configs = {{{"fusion", "cross_attention"}, {"dim", 16}},
                                               {{"fusion", "cross_attention"}, {"dim", 16}, {"heads", 4}},
                                               {{"fusion", "gated"}, {"dim", 16}}};
  for (const auto& params : configs) {
    CHECK_ORT(multimodal_bert_artifact(params), b, "multimodal_bert_" +
                                                       params["fusion"].get<std::string>() +
                                                       (params.contains("heads") ? "_4_heads" : ""));
  }
}

TEST(OnnxExport, DenseFeaturesAreTheBagSums) {
  const auto a = bag_artifact("linear", nlohmann::json::object());
  const auto in = onnx::onnx_inputs(a, bag_batch());
  const auto& x = in.at("features");
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{5, kFeatures}));
  EXPECT_FLOAT_EQ(x[1][3].item<float>(), 0.5f);  // id 3 twice in row 1: 0.3 + 0.2
  EXPECT_EQ(x[2].abs().sum().item<float>(), 0.0f);  // the empty bag
}

TEST(OnnxExport, BadInputsAreNamed) {
  auto a = bag_artifact("linear", nlohmann::json::object());
  onnx::OnnxExportOptions o;
  o.opset = 11;
  try {
    (void)onnx::export_onnx(a, o);
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("onnx.opset (--opset) must be in [14, 17], got 11"), std::string::npos) << e.what();
  }
  a.manifest.model.family = "transformer";
  try {
    (void)onnx::export_onnx(a, {});
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("family 'transformer' has no ONNX exporter in this Kiln (known: bert, cnn, embedbag, "
                                         "linear, mlp, multimodal)"),
              std::string::npos)
        << e.what();
  }
}
