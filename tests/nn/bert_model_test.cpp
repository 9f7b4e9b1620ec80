// The "bert" family: building from specs, names, checkpoints written and read back, and one test
// per bad-input path (asserting the message).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/safetensors.h"
#include "kiln/nn/bert.h"
#include "nn_test_util.h"

namespace fs = std::filesystem;

namespace kiln::nn {
namespace {

using testing::expect_config_error;

const fs::path kGolden = fs::path(KILN_GOLDEN_DIR) / "nn" / "bert";

InputSpec token_spec(int64_t vocab) {
  InputSpec spec;
  spec.tensors.push_back({kInputIds, "int64", {"batch", "sequence"}, vocab});
  spec.tensors.push_back({kAttentionMask, "int64", {"batch", "sequence"}, 0});
  spec.tensors.push_back({kTokenTypeIds, "int64", {"batch", "sequence"}, 0});
  return spec;
}

ModelSpec bert_spec(const nlohmann::json& params) {
  ModelSpec spec;
  spec.family = "bert";
  spec.params = params;
  return spec;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("kiln_bert_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

Batch token_batch(const std::vector<std::vector<int64_t>>& rows, int64_t length) {
  const auto n = static_cast<int64_t>(rows.size());
  auto ids = torch::zeros({n, length}, torch::kInt64);
  auto mask = torch::zeros({n, length}, torch::kInt64);
  for (int64_t r = 0; r < n; ++r) {
    for (size_t i = 0; i < rows[r].size(); ++i) {
      ids[r][static_cast<int64_t>(i)] = rows[r][i];
      mask[r][static_cast<int64_t>(i)] = 1;
    }
  }
  Batch b(n);
  b.set(kInputIds, ids);
  b.set(kAttentionMask, mask);
  return b;
}

template <typename E, typename Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

void expect_contains(const std::string& msg, const std::vector<std::string>& parts) {
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
}

TEST(BertFamily, PresetBuildsHuggingFaceNames) {
  torch::manual_seed(0);
  auto model = make_model(bert_spec({{"preset", "tiny"}}), token_spec(50), 3);
  EXPECT_EQ(model->embedding_dim(), 128);
  const auto params = model->named_parameters();
  for (const char* name :
       {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
        "encoder.layer.0.attention.self.query.weight", "encoder.layer.0.attention.self.key.bias",
        "encoder.layer.1.attention.self.value.weight", "encoder.layer.1.attention.output.dense.weight",
        "encoder.layer.1.attention.output.LayerNorm.bias", "encoder.layer.1.intermediate.dense.weight",
        "encoder.layer.1.output.dense.bias", "encoder.layer.1.output.LayerNorm.weight", "pooler.dense.weight",
        "classifier.weight", "classifier.bias"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
  EXPECT_FALSE(params.contains("encoder.layer.2.output.dense.bias"));
  EXPECT_EQ(params["embeddings.word_embeddings.weight"].sizes(), (std::vector<int64_t>{50, 128}));
  EXPECT_EQ(params["encoder.layer.0.intermediate.dense.weight"].sizes(), (std::vector<int64_t>{512, 128}));
  // BERT's initialisation: padding row zero, LayerNorm (1, 0), biases 0, weights ~ N(0, 0.02).
  EXPECT_EQ(params["embeddings.word_embeddings.weight"][0].abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(params["embeddings.LayerNorm.weight"], torch::ones({128})));
  EXPECT_EQ(params["encoder.layer.0.attention.self.query.bias"].abs().max().item<float>(), 0.0f);
  const double std = params["encoder.layer.0.intermediate.dense.weight"].std().item<double>();
  EXPECT_NEAR(std, 0.02, 0.002);

  const auto resolved = resolve_spec(bert_spec({{"preset", "mini"}, {"num_hidden_layers", 1}}));
  EXPECT_EQ(resolved.params["pooling"], "cls");
  auto mini = make_model(resolved, token_spec(30), 2);
  EXPECT_EQ(mini->embedding_dim(), 256);
  EXPECT_FALSE(mini->named_parameters().contains("encoder.layer.1.output.dense.bias"));
}

TEST(BertFamily, PresetSizes) {
  const std::vector<std::vector<int64_t>> want = {
      {2, 128, 2, 512}, {4, 256, 4, 1024}, {4, 512, 8, 2048}, {8, 512, 8, 2048}, {12, 768, 12, 3072}, {24, 1024, 16, 4096}};
  ASSERT_EQ(want.size(), kBertPresets.size());
  for (size_t i = 0; i < kBertPresets.size(); ++i) {
    BertConfig c;
    apply_bert_preset(kBertPresets[i], c);
    EXPECT_EQ((std::vector<int64_t>{c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size}),
              want[i])
        << kBertPresets[i];
  }
}

TEST(BertFamily, NeedsTokenInputs) {
  expect_config_error([] { (void)make_model(bert_spec({{"preset", "tiny"}}), bag_spec(10), 2); },
                      {"bert", "input_ids"});
}

TEST(BertFamily, BadParamsNameTheField) {
  expect_config_error([] { (void)resolve_spec(bert_spec({{"hidden_act", "gelu2"}})); },
                      {"model.params.hidden_act must be one of", "\"gelu_new\"", "got \"gelu2\""});
  expect_config_error([] { (void)resolve_spec(bert_spec({{"preset", "huge"}})); },
                      {"model.params.preset must be one of", "\"tiny\"", "\"huge\""});
  expect_config_error([] { (void)resolve_spec(bert_spec({{"hidden_size", 100}, {"num_attention_heads", 3}})); },
                      {"hidden_size (100) must be a multiple of num_attention_heads (3)"});
  expect_config_error([] { (void)resolve_spec(bert_spec({{"pooling", "max"}})); }, {"model.params.pooling", "\"mean\""});
  expect_config_error([] { (void)resolve_spec(bert_spec({{"residual_scale", -1}})); },
                      {"model.params.residual_scale must be a number >= 0", "-1"});
  expect_config_error([] { (void)resolve_spec(bert_spec({{"layer_norm", "no"}})); },
                      {"model.params.layer_norm must be true or false", "\"no\""});
  expect_config_error([] { (void)resolve_spec(bert_spec({{"init", "xavier"}})); },
                      {"model.params.init must be one of", "\"torch\"", "\"xavier\""});
  expect_config_error([] { (void)make_model(bert_spec({{"preset", "tiny"}, {"vocab_size", 10}}), token_spec(50), 2); },
                      {"model.params.vocab_size is 10", "50"});
}

TEST(BertFamily, InputLongerThanMaxPositionsSaysToTruncate) {
  torch::manual_seed(0);
  auto model = make_model(bert_spec({{"preset", "tiny"}, {"max_position_embeddings", 8}}), token_spec(20), 2);
  model->eval();
  const auto msg = message_of<DataError>([&] { (void)model->forward(token_batch({std::vector<int64_t>(9, 3)}, 9)); });
  expect_contains(msg, {"9 tokens", "max_position_embeddings is 8", "set max_length <= 8"});
  const auto ids_msg = message_of<DataError>([&] { (void)model->forward(token_batch({{2, 25}}, 2)); });
  expect_contains(ids_msg, {"input_ids holds 25", "vocab_size 20"});
}

TEST(BertFamily, TrailingPaddingColumnsDoNotChangeOutputs) {
  torch::manual_seed(1);
  auto model = make_model(bert_spec({{"preset", "tiny"}}), token_spec(20), 2);
  model->eval();
  torch::InferenceMode guard;
  const auto a = model->forward(token_batch({{2, 5, 6}, {2, 7}}, 3));
  const auto b = model->forward(token_batch({{2, 5, 6}, {2, 7}}, 10));
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-6);
}

TEST(BertCheckpoint, SaveLoadRoundTrip) {
  TempDir dir;
  for (const bool pre_ln : {false, true}) {
    torch::manual_seed(2);
    BertOptions o;
    o.config.vocab_size = 30;
    o.config.hidden_size = 16;
    o.config.num_hidden_layers = 2;
    o.config.num_attention_heads = 2;
    o.config.intermediate_size = 32;
    o.config.max_position_embeddings = 16;
    o.pre_ln = pre_ln;
    o.residual_scale = pre_ln ? 1.5 : 1.0;
    o.pooling = BertPooling::kMean;
    o.num_classes = 4;
    BertModel model(o);
    model.eval();
    const auto path = dir.path / (pre_ln ? "pre" : "post");
    save_hf_checkpoint(model, path);
    const auto file = core::SafetensorsFile::load(path / "model.safetensors");
    EXPECT_TRUE(file.has("bert.embeddings.word_embeddings.weight"));
    EXPECT_TRUE(file.has("classifier.weight"));
    EXPECT_EQ(file.has("bert.LayerNorm.weight"), pre_ln);
    auto loaded = load_hf_checkpoint(path);
    EXPECT_TRUE(loaded.report.missing.empty());
    EXPECT_TRUE(loaded.report.unexpected.empty());
    EXPECT_TRUE(loaded.report.classifier_loaded);
    EXPECT_EQ(loaded.model->num_classes(), 4);
    EXPECT_EQ(loaded.model->options().pre_ln, pre_ln);
    EXPECT_EQ(loaded.model->options().pooling, BertPooling::kMean);
    loaded.model->eval();
    const auto batch = token_batch({{2, 5, 6, 7}, {2, 9}}, 4);
    torch::InferenceMode guard;
    EXPECT_TRUE(torch::equal(model.forward(batch), loaded.model->forward(batch)));
  }
}

// The golden checkpoint rewritten as `names(name) -> new name` (empty: dropped), config.json as is or replaced.
fs::path rewrite_golden(const fs::path& dir, const std::function<std::string(const std::string&)>& rename,
                        const std::string& config = "") {
  fs::create_directories(dir);
  if (config.empty()) {
    fs::copy_file(kGolden / "config.json", dir / "config.json");
  } else {
    core::write_file_atomic(dir / "config.json", config);
  }
  const auto file = core::SafetensorsFile::load(kGolden / "model.safetensors");
  std::vector<std::pair<std::string, core::TensorView>> tensors;
  for (const auto& name : file.names()) {
    const auto to = rename(name);
    if (!to.empty()) tensors.emplace_back(to, file.get(name));
  }
  core::save_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

TEST(BertCheckpoint, BertModelLayoutWithoutPrefixOrClassifier) {
  TempDir tmp;
  const auto dir = rewrite_golden(tmp.path / "plain", [](const std::string& n) -> std::string {
    if (n.rfind("bert.", 0) == 0) return n.substr(5);
    if (n.rfind("classifier.", 0) == 0 || n.rfind("cls.", 0) == 0) return "";
    return n;
  });
  BertLoadOptions o;
  o.num_classes = 2;
  const auto loaded = load_hf_checkpoint(dir, o);
  EXPECT_FALSE(loaded.report.prefixed);
  EXPECT_TRUE(loaded.report.missing.empty());
  EXPECT_FALSE(loaded.report.classifier_loaded);
  EXPECT_NE(loaded.report.classifier_reinitialized.find("no classifier"), std::string::npos);
  EXPECT_EQ(loaded.model->num_classes(), 2);
}

TEST(BertCheckpoint, ReportsMissingUnexpectedAndClassCountMismatch) {
  TempDir tmp;
  const auto dir = rewrite_golden(tmp.path / "odd", [](const std::string& n) -> std::string {
    if (n == "bert.pooler.dense.bias") return "";
    if (n == "bert.embeddings.LayerNorm.weight") return "bert.embeddings.LayerNorm.gamma";  // TF-era name
    if (n == "cls.predictions.bias") return "something.else";
    return n;
  });
  BertLoadOptions o;
  o.num_classes = 5;
  const auto loaded = load_hf_checkpoint(dir, o);
  ASSERT_EQ(loaded.report.missing.size(), 1u);
  EXPECT_EQ(loaded.report.missing[0], "bert.pooler.dense.bias");
  ASSERT_EQ(loaded.report.unexpected.size(), 1u);
  EXPECT_EQ(loaded.report.unexpected[0], "something.else");
  EXPECT_EQ(loaded.report.heads_ignored.size(), 4u);
  EXPECT_FALSE(loaded.report.classifier_loaded);
  expect_contains(loaded.report.classifier_reinitialized, {"classifier.", "[3", "5 classes"});
}

TEST(BertCheckpoint, WrongShapeNamesTensorFileAndShapes) {
  TempDir tmp;
  std::ifstream in(kGolden / "config.json");
  auto config = nlohmann::json::parse(in);
  config["intermediate_size"] = 48;
  const auto dir = rewrite_golden(tmp.path / "shape", [](const std::string& n) { return n; }, config.dump());
  const auto msg = message_of<ArtifactError>([&] { (void)load_hf_checkpoint(dir); });
  expect_contains(msg, {(dir / "model.safetensors").string(), "'bert.encoder.layer.0.intermediate.dense.",
                        "has shape [64", "expected [48", "config.json"});
}

TEST(BertCheckpoint, UnknownHiddenActNamesConfigField) {
  TempDir tmp;
  std::ifstream in(kGolden / "config.json");
  auto config = nlohmann::json::parse(in);
  config["hidden_act"] = "gelu_11";
  const auto dir = rewrite_golden(tmp.path / "act", [](const std::string& n) { return n; }, config.dump());
  const auto msg = message_of<ConfigError>([&] { (void)load_hf_checkpoint(dir); });
  expect_contains(msg, {(dir / "config.json").string(), "hidden_act must be one of", "\"gelu\"", "\"gelu_new\"",
                        "\"relu\"", "got \"gelu_11\""});
}

TEST(BertCheckpoint, MissingConfigJson) {
  TempDir tmp;
  fs::copy_file(kGolden / "model.safetensors", tmp.path / "model.safetensors");
  const auto msg = message_of<ArtifactError>([&] { (void)load_hf_checkpoint(tmp.path); });
  expect_contains(msg, {(tmp.path / "config.json").string(), "is missing", "save_pretrained"});
}

TEST(BertCheckpoint, PytorchBinOnlySaysHowToConvert) {
  TempDir tmp;
  fs::copy_file(kGolden / "config.json", tmp.path / "config.json");
  std::ofstream(tmp.path / "pytorch_model.bin") << "not really a pickle";
  const auto msg = message_of<ArtifactError>([&] { (void)load_hf_checkpoint(tmp.path); });
  expect_contains(msg, {"pytorch_model.bin but no model.safetensors", "safetensors.torch import save_file",
                        "save_pretrained(", "safe_serialization=True"});
}

TEST(BertMlmHead, VocabularyLogitsTiedToEmbeddings) {
  torch::manual_seed(3);
  BertOptions o;
  o.config.vocab_size = 40;
  o.config.hidden_size = 16;
  o.config.num_hidden_layers = 1;
  o.config.num_attention_heads = 2;
  o.config.intermediate_size = 32;
  BertModel model(o);
  BertMlmHead head(o.config, model.word_embeddings_weight());
  const auto names = head.named_parameters();
  EXPECT_TRUE(names.contains("transform.dense.weight"));
  EXPECT_TRUE(names.contains("transform.LayerNorm.bias"));
  EXPECT_TRUE(names.contains("bias"));
  EXPECT_EQ(names.size(), 5u);  // the decoder weight is the embeddings', not the head's
  auto ids = torch::tensor({{2, 5, 7, 1}}, torch::kInt64);
  auto out = model.encode(ids, torch::ones_like(ids), torch::Tensor());
  auto logits = head.forward(out.last_hidden_state);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 4, 40}));
  torch::nn::functional::cross_entropy(logits.view({4, 40}), torch::tensor({5, 7, 1, 3}, torch::kInt64)).backward();
  EXPECT_TRUE(model.word_embeddings_weight().grad().defined());
  EXPECT_GT(model.word_embeddings_weight().grad()[3].abs().sum().item<double>(), 0.0);  // only through the decoder
}

}  // namespace
}  // namespace kiln::nn
