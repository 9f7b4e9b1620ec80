// Family "multimodal" with a BERT text side: forward parity with python3-torch for every fusion
// (tests/golden/make_multimodal_golden.py), names, training reaching the text encoder, starting the
// text side from a Hugging Face checkpoint, and the messages when inputs and params disagree.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include "kiln/core/error.h"
#include "kiln/nn/bert.h"
#include "kiln/nn/model.h"
#include "nn_test_util.h"

namespace fs = std::filesystem;

namespace kiln::nn {
namespace {

using nlohmann::json;
using testing::expect_config_error;

InputSpec token_image_spec(int64_t vocab, int64_t channels, int64_t size, bool windows = false) {
  InputSpec s;
  std::vector<std::string> seq = windows ? std::vector<std::string>{"batch", "window", "sequence"}
                                         : std::vector<std::string>{"batch", "sequence"};
  s.tensors.push_back({kInputIds, "int64", seq, vocab});
  s.tensors.push_back({kAttentionMask, "int64", seq, 0});
  s.tensors.push_back({kTokenTypeIds, "int64", seq, 0});
  s.tensors.push_back({kPixelValues, "float32", {"batch", std::to_string(channels), std::to_string(size), std::to_string(size)}, 0});
  return s;
}

ModelSpec multimodal(const json& params) {
  ModelSpec spec;
  spec.family = "multimodal";
  spec.params = params;
  return spec;
}

torch::Tensor int_tensor(const json& rows) {
  std::vector<int64_t> flat;
  for (const auto& r : rows) {
    for (const auto& v : r) flat.push_back(v.get<int64_t>());
  }
  return torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(rows.size()), -1});
}

const json kTinyBert = {{"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                        {"intermediate_size", 64}, {"max_position_embeddings", 64}};

}  // namespace

TEST(MultimodalBert, ForwardMatchesTorchGoldens) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/nn/multimodal_golden.json");
  ASSERT_TRUE(in) << "run tests/golden/make_multimodal_golden.py";
  const json g = json::parse(in);
  const auto shape = g["image_shape"].get<std::vector<int64_t>>();
  const json& c = g["bert"];
  Batch b(shape[0]);
  b.set(kInputIds, int_tensor(g["input_ids"]));
  b.set(kAttentionMask, int_tensor(g["attention_mask"]));
  b.set(kTokenTypeIds, int_tensor(g["token_type_ids"]));
  int64_t n = 1;
  for (auto d : shape) n *= d;
  b.set(kPixelValues, torch::sin(0.1 * torch::arange(n, torch::kFloat64)).to(torch::kFloat32).view(shape));
  ASSERT_EQ(g["cases"].size(), 4u);
  for (const auto& k : g["cases"]) {
    const json bert = {{"hidden_size", c["hidden_size"]}, {"num_hidden_layers", c["num_hidden_layers"]},
                       {"num_attention_heads", c["num_attention_heads"]}, {"intermediate_size", c["intermediate_size"]},
                       {"max_position_embeddings", c["max_position_embeddings"]}, {"layer_norm_eps", c["layer_norm_eps"]}};
    auto m = make_model(multimodal({{"text_encoder", "bert"}, {"bert", bert}, {"fusion", k["fusion"]}, {"heads", k["heads"]},
                                    {"dim", g["dim"]}}),
                        token_image_spec(c["vocab_size"], shape[1], shape[2]), g["classes"]);
    const std::string what = k["fusion"].get<std::string>() + " heads " + std::to_string(k["heads"].get<int>());
    EXPECT_EQ(testing::fill_like_golden(*m), k["names"].get<std::vector<std::string>>()) << what;
    m->eval();
    torch::NoGradGuard no_grad;
    const auto logits = m->forward(b);
    const auto want = torch::tensor(k["logits"].get<std::vector<float>>()).view_as(logits);
    const double err = (logits - want).abs().max().item<double>();
    EXPECT_LT(err, 1e-5) << what << ": max |kiln - torch| = " << err;
  }
}

// The text side is a BERT without its classifier; one training step reaches every part, and the
// BERT's own rules (no decay on biases and LayerNorms, the key bias without gradient) hold inside it.
TEST(MultimodalBert, TrainsTheTextEncoderWithTheImage) {
  torch::manual_seed(3);
  auto m = make_model(multimodal({{"bert", kTinyBert}, {"dim", 16}}), token_image_spec(50, 1, 8), 3);
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  EXPECT_TRUE(names.count("text.embeddings.word_embeddings.weight"));
  EXPECT_TRUE(names.count("text.pooler.dense.weight"));
  EXPECT_TRUE(names.count("text_proj.weight"));
  EXPECT_FALSE(names.count("text.classifier.weight"));
  EXPECT_FALSE(names.count("text_embedding.weight"));
  EXPECT_TRUE(m->weight_decay_exempt("text.encoder.layer.0.attention.output.LayerNorm.weight"));
  EXPECT_TRUE(m->weight_decay_exempt("text.encoder.layer.0.output.dense.bias"));
  EXPECT_FALSE(m->weight_decay_exempt("text.encoder.layer.0.output.dense.weight"));
  EXPECT_FALSE(m->weight_decay_exempt("output.bias"));  // outside the BERT: the family's rule
  EXPECT_TRUE(m->zero_gradient_by_design("text.encoder.layer.1.attention.self.key.bias"));

  Batch b(2);
  b.set(kInputIds, torch::tensor({2, 7, 9, 3, 2, 11, 0, 0}, torch::kInt64).view({2, 4}));
  b.set(kAttentionMask, torch::tensor({1, 1, 1, 1, 1, 1, 0, 0}, torch::kInt64).view({2, 4}));
  b.set(kPixelValues, torch::rand({2, 1, 8, 8}));
  m->train();
  const auto loss = torch::nn::functional::cross_entropy(m->forward(b), torch::tensor({0, 2}, torch::kInt64));
  loss.backward();
  for (const auto& p : m->named_parameters()) {
    // Cross-attention reads the hidden states, not the pooler (concat and gated read it).
    if (m->zero_gradient_by_design(p.key()) || p.key().rfind("text.pooler.", 0) == 0) continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
  // Padding after the last attended column changes nothing.
  m->eval();
  torch::NoGradGuard no_grad;
  Batch wide = b;
  wide.set(kInputIds, torch::cat({b.at(kInputIds), torch::zeros({2, 3}, torch::kInt64)}, 1));
  wide.set(kAttentionMask, torch::cat({b.at(kAttentionMask), torch::zeros({2, 3}, torch::kInt64)}, 1));
  EXPECT_LT((m->forward(wide) - m->forward(b)).abs().max().item<double>(), 1e-6);
}

TEST(MultimodalBert, TheTextSideMustMatchTheInputs) {
  expect_config_error([] { (void)make_model(multimodal({{"text_encoder", "bert"}}), [] {
                         auto s = bag_spec(30);
                         s.tensors.push_back({kPixelValues, "float32", {"batch", "1", "8", "8"}, 0});
                         return s;
                       }(), 2); },
                      {"the bert text encoder reads input_ids", "wordpiece featurizer", "text_encoder: bag"});
  expect_config_error([] { (void)make_model(multimodal({{"text_encoder", "bag"}}), token_image_spec(30, 1, 8), 2); },
                      {"the bag text encoder reads bag_indices", "tfidf or hashed_ngrams", "text_encoder: bert"});
  expect_config_error([] { (void)make_model(multimodal({{"bert", kTinyBert}}), token_image_spec(30, 1, 8, true), 2); },
                      {"long_text: window", "long_text: truncate"});
  expect_config_error([] { (void)make_model(multimodal({{"bert", {{"preset", "huge"}}}}), token_image_spec(30, 1, 8), 2); },
                      {"multimodal text encoder (model.params.bert)", "preset"});
  expect_config_error([] { (void)resolve_spec(multimodal({{"bert", "mini"}})); },
                      {"model.params.bert must be an object of bert parameters", "\"mini\""});
  expect_config_error([] { (void)pretrained_start(multimodal({{"text_encoder", "bag"}}), "/nonexistent"); },
                      {"starts a BERT text encoder", "--text-encoder bert"});
}

// --init DIR: a Hugging Face BERT directory starts the text side (every BERT weight copied), the
// featurizer takes its vocabulary, and the params its sizes.
TEST(MultimodalBert, InitStartsTheTextSideFromABertCheckpoint) {
  const fs::path dir = fs::temp_directory_path() / ("kiln_mm_init_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  torch::manual_seed(5);
  BertOptions o = parse_bert_params(kTinyBert, 40, 2);
  BertModel source(o);
  save_hf_checkpoint(source, dir);
  {
    std::ofstream v(dir / "vocab.txt");
    for (int i = 0; i < 40; ++i) v << "tok" << i << "\n";
  }
  const auto start = pretrained_start(multimodal({{"text_encoder", "bert"}, {"dim", 16}}), dir.string());
  EXPECT_EQ(start.featurizer.value("type", ""), "wordpiece");
  EXPECT_EQ(start.featurizer.value("vocab", ""), (dir / "vocab.txt").string());
  EXPECT_EQ(start.params["bert"]["hidden_size"], 32);
  EXPECT_EQ(start.params["dim"], 16);
  ModelSpec spec = multimodal(start.params);
  torch::manual_seed(6);
  auto m = make_model(spec, token_image_spec(40, 1, 8), 3);
  (void)start.load_weights(*m);
  auto from = source.named_parameters();
  int copied = 0;
  for (const auto& p : m->named_parameters()) {
    if (p.key().rfind("text.", 0) != 0) continue;
    ASSERT_TRUE(from.contains(p.key().substr(5))) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), from[p.key().substr(5)])) << p.key();
    ++copied;
  }
  EXPECT_GT(copied, 20);
  fs::remove_all(dir);
}

}  // namespace kiln::nn
