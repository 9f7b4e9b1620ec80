// Masked-LM pretraining: the loss against python3-torch (tests/golden/make_mlm_golden.py), masking
// statistics, whole-word masking, packing, a tiny model learning, exact resume, and the BertForMaskedLM
// directory it writes read back by load_hf_checkpoint and bert_pretrained_start.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "kiln/nn/bert.h"
#include "kiln/train/pretrain.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("kiln_pretrain_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

torch::Tensor int_matrix(const nlohmann::json& rows) {
  const auto r = static_cast<int64_t>(rows.size()), c = static_cast<int64_t>(rows[0].size());
  auto t = torch::empty({r, c}, torch::kInt64);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) t[i][j] = rows[i][j].get<int64_t>();
  return t;
}

train::MlmVocab toy_vocab(int64_t size) {
  train::MlmVocab v;
  v.size = size;
  v.pad_id = 0;
  v.mask_id = 4;
  v.special_ids = {0, 1, 2, 3, 4};
  return v;
}

nn::BertOptions tiny_options(int64_t vocab) {
  nn::BertOptions o;
  nn::apply_bert_preset("tiny", o.config);
  o.config.hidden_size = 32;
  o.config.num_attention_heads = 2;
  o.config.intermediate_size = 64;
  o.config.vocab_size = vocab;
  o.config.max_position_embeddings = 32;
  return o;
}

// Documents of one topic token (ids 10..29) each, 44 tokens long with a few noise tokens: a masked
// token is predictable from the rest of its sequence (packed at 24: 22 tokens of one document).
std::vector<std::vector<int32_t>> periodic_corpus(int docs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int d = 0; d < docs; ++d) {
    const auto topic = static_cast<int32_t>(10 + rng() % 20);
    std::vector<int32_t> doc;
    for (int k = 0; k < 44; ++k) doc.push_back(rng() % 8 == 0 ? static_cast<int32_t>(30 + rng() % 10) : topic);
    out.push_back(doc);
  }
  return out;
}

TEST(Pretrain, MlmLossMatchesPythonTorch) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/train/mlm_golden.json");
  ASSERT_TRUE(in) << "missing golden; run tests/golden/make_mlm_golden.py";
  const auto golden = nlohmann::json::parse(in);
  const fs::path dir = fs::path(KILN_GOLDEN_DIR) / golden["checkpoint"].get<std::string>();
  auto loaded = nn::load_hf_checkpoint(dir);
  train::MlmModel model(loaded.model);
  nn::load_hf_mlm_head(dir, model.head());
  model.eval();
  for (const auto& [name, c] : golden["cases"].items()) {
    torch::NoGradGuard no_grad;
    const double loss = model.loss(int_matrix(c["input_ids"]), int_matrix(c["attention_mask"]), int_matrix(c["labels"]))
                            .item<double>();
    EXPECT_NEAR(loss, c["loss"].get<double>(), 1e-5 * c["loss"].get<double>()) << name;
  }
}

TEST(Pretrain, MaskingFollowsBert801010) {
  const auto vocab = toy_vocab(1000);
  auto ids = torch::randint(5, 1000, {64, 256}, torch::kInt64);
  ids.select(1, 0).fill_(2);
  ids.select(1, 255).fill_(3);
  const auto m = train::mask_tokens(ids, vocab, {}, 7);
  const auto chosen = m.labels.ne(train::kMlmIgnore);
  const double n = static_cast<double>(chosen.sum().item<int64_t>());
  const double candidates = 64.0 * 254.0;
  EXPECT_NEAR(n / candidates, 0.15, 0.01);
  EXPECT_EQ(chosen.select(1, 0).sum().item<int64_t>(), 0) << "[CLS] is never chosen";
  EXPECT_EQ(chosen.select(1, 255).sum().item<int64_t>(), 0) << "[SEP] is never chosen";
  EXPECT_TRUE(torch::equal(m.labels.masked_select(chosen), ids.masked_select(chosen)));
  const double masked = static_cast<double>(m.input_ids.masked_select(chosen).eq(4).sum().item<int64_t>());
  const double kept = static_cast<double>(m.input_ids.masked_select(chosen).eq(ids.masked_select(chosen)).sum().item<int64_t>());
  EXPECT_NEAR(masked / n, 0.8, 0.02);
  EXPECT_NEAR(kept / n, 0.1, 0.02);
  EXPECT_NEAR((n - masked - kept) / n, 0.1, 0.02);
  EXPECT_TRUE(torch::equal(m.input_ids.masked_select(~chosen), ids.masked_select(~chosen)));
  // Deterministic in the seed, different across seeds.
  EXPECT_TRUE(torch::equal(train::mask_tokens(ids, vocab, {}, 7).labels, m.labels));
  EXPECT_FALSE(torch::equal(train::mask_tokens(ids, vocab, {}, 8).labels, m.labels));
}

TEST(Pretrain, WholeWordMaskingKeepsWordsTogether) {
  auto vocab = toy_vocab(100);
  vocab.continuation.assign(100, false);
  for (int id = 50; id < 100; ++id) vocab.continuation[id] = true;  // "##" pieces
  std::mt19937_64 rng(3);
  auto ids = torch::empty({32, 64}, torch::kInt64);
  for (int r = 0; r < 32; ++r)
    for (int t = 0; t < 64; ++t) ids[r][t] = static_cast<int64_t>(t == 0 ? 2 : (rng() % 3 == 0 ? 50 + rng() % 50 : 5 + rng() % 45));
  train::MlmMaskingOptions o;
  o.whole_word = true;
  const auto m = train::mask_tokens(ids, vocab, o, 1);
  const auto chosen = m.labels.ne(train::kMlmIgnore);
  int64_t total = 0;
  for (int r = 0; r < 32; ++r) {
    for (int t = 2; t < 64; ++t) {
      if (ids[r][t].item<int64_t>() >= 50) {  // a continuation shares its word's fate
        EXPECT_EQ(chosen[r][t].item<bool>(), chosen[r][t - 1].item<bool>()) << r << "," << t;
      }
    }
    total += chosen[r].sum().item<int64_t>();
  }
  EXPECT_NEAR(static_cast<double>(total) / (32.0 * 63.0), 0.15, 0.03);
}

TEST(Pretrain, PacksStreamIntoClsChunkSep) {
  const auto seqs = train::pack_sequences({{10, 11, 12}, {13, 14, 15, 16}, {17}}, 5, 2, 3, 0);
  ASSERT_EQ(seqs.sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_TRUE(torch::equal(seqs[0], torch::tensor({2, 10, 11, 12, 3}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(seqs[1], torch::tensor({2, 13, 14, 15, 3}, torch::kInt64)));
  const auto one = train::pack_sequences({{10, 11}}, 8, 2, 3, 0);
  EXPECT_TRUE(torch::equal(one[0], torch::tensor({2, 10, 11, 3, 0, 0, 0, 0}, torch::kInt64)));
  try {
    (void)train::pack_sequences({{}, {}}, 8, 2, 3, 0);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("pretraining input holds no token"), std::string::npos) << e.what();
  }
}

TEST(Pretrain, TinyModelLossFalls) {
  torch::manual_seed(1);
  const auto seqs = train::pack_sequences(periodic_corpus(60, 5), 24, 2, 3, 0);
  train::MlmModel model(std::make_shared<nn::BertModel>(tiny_options(40)));
  train::PretrainOptions o;
  o.steps = 300;
  o.batch_size = 16;
  o.optimizer.lr = 3e-3;
  o.schedule.warmup_ratio = 0.05;
  const auto r = train::pretrain_mlm(model, seqs, toy_vocab(40), o);
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.steps, 300);
  EXPECT_GT(r.first_loss, 3.0);  // ~ln(40) at init
  EXPECT_LT(r.mean_last_loss, 0.5 * r.first_loss) << "first " << r.first_loss << ", last " << r.mean_last_loss;
  std::printf("masked-LM loss %.3f -> %.3f\n", r.first_loss, r.mean_last_loss);
}

TEST(Pretrain, ResumeContinuesExactly) {
  const auto seqs = train::pack_sequences(periodic_corpus(30, 9), 16, 2, 3, 0);
  train::PretrainOptions o;
  o.steps = 6;
  o.batch_size = 8;
  auto run = [&](const fs::path& dir, int64_t stop_after, bool resume) {
    torch::manual_seed(2);
    auto model = std::make_shared<train::MlmModel>(std::make_shared<nn::BertModel>(tiny_options(40)));
    auto opts = o;
    opts.run_dir = dir.string();
    opts.stop_after_steps = stop_after;
    opts.resume = resume;
    (void)train::pretrain_mlm(*model, seqs, toy_vocab(40), opts);
    return model;
  };
  const auto straight = run(temp_dir("straight"), 0, false);
  const auto dir = temp_dir("split");
  (void)run(dir, 3, false);
  std::ifstream state(dir / "checkpoint.json");
  EXPECT_EQ(nlohmann::json::parse(state)["extra"]["step"], 3);
  const auto resumed = run(dir, 0, true);
  auto a = straight->named_parameters(), b = resumed->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  // metrics.jsonl holds the 6 steps once each.
  std::ifstream log(dir / "metrics.jsonl");
  std::string line;
  int steps = 0;
  while (std::getline(log, line)) steps += nlohmann::json::parse(line)["type"] == "step";
  EXPECT_EQ(steps, 6);
}

TEST(Pretrain, WritesBertForMaskedLmDirectory) {
  torch::manual_seed(3);
  train::MlmModel model(std::make_shared<nn::BertModel>(tiny_options(40)));
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 5; i < 40; ++i) vocab += "w" + std::to_string(i) + "\n";
  const auto dir = temp_dir("hf") / "model";
  nn::save_hf_mlm_checkpoint(model.bert(), model.head(), vocab, dir);
  std::ifstream cfg(dir / "config.json");
  const auto j = nlohmann::json::parse(cfg);
  EXPECT_EQ(j["architectures"][0], "BertForMaskedLM");
  EXPECT_EQ(j["hidden_size"], 32);
  EXPECT_TRUE(fs::exists(dir / "vocab.txt"));

  const auto loaded = nn::load_hf_checkpoint(dir);
  EXPECT_TRUE(loaded.report.prefixed);
  EXPECT_TRUE(loaded.report.unexpected.empty());
  // BertForMaskedLM has no pooler: the only tensors a classifier lacks.
  EXPECT_EQ(loaded.report.missing, (std::vector<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias"}));
  auto from = model.bert().named_parameters();
  for (const auto& item : loaded.model->named_parameters()) {
    if (item.key().rfind("pooler.", 0) == 0 || item.key().rfind("classifier.", 0) == 0) continue;
    EXPECT_TRUE(torch::equal(item.value(), from[item.key()])) << item.key();
  }
  train::MlmModel again(loaded.model);
  nn::load_hf_mlm_head(dir, again.head());
  auto h0 = model.head().named_parameters(), h1 = again.head().named_parameters();
  for (const auto& item : h0) EXPECT_TRUE(torch::equal(item.value(), h1[item.key()])) << item.key();

  // kiln train --init reads it (its run directory too).
  const auto start = nn::bert_pretrained_start(dir.parent_path().string(), {{"pooling", "mean"}});
  EXPECT_EQ(start.params["hidden_size"], 32);
  EXPECT_EQ(start.params["pooling"], "mean");
  EXPECT_FALSE(start.params.contains("preset"));
  EXPECT_EQ(start.featurizer["vocab"], (dir / "vocab.txt").string());
}

TEST(Pretrain, InitDirectoryErrorsNameTheFileAndFix) {
  const auto dir = temp_dir("bad");
  auto expect = [&](const std::string& want) {
    try {
      (void)nn::bert_pretrained_start(dir.string(), nlohmann::json::object());
      FAIL() << "expected an error containing: " << want;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  expect((dir / "config.json").string() + " is missing; expected a Hugging Face BERT directory");
  std::ofstream(dir / "config.json") << R"({"model_type": "bert", "vocab_size": 6, "hidden_size": 8,
    "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16})";
  expect((dir / "vocab.txt").string() + " is missing; the checkpoint's vocabulary must come with it");
  std::ofstream(dir / "vocab.txt") << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\n";
  std::ofstream(dir / "pytorch_model.bin") << "x";
  expect("has pytorch_model.bin but no model.safetensors");
  fs::remove(dir / "pytorch_model.bin");
  torch::manual_seed(0);
  nn::BertOptions o;
  o.config.vocab_size = 6;
  o.config.hidden_size = 8;
  o.config.num_hidden_layers = 1;
  o.config.num_attention_heads = 2;
  o.config.intermediate_size = 16;
  nn::BertModel m(o);
  nn::save_hf_checkpoint(m, dir / "saved");
  fs::copy_file(dir / "saved" / "model.safetensors", dir / "model.safetensors");
  expect("vocab.txt has 7 tokens but " + (dir / "config.json").string() + " says vocab_size 6");
  std::ofstream(dir / "vocab.txt") << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n";
  try {
    (void)nn::bert_pretrained_start(dir.string(), {{"hidden_size", 16}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.params.hidden_size is set (16) but the pretrained directory"),
              std::string::npos) << e.what();
  }
  // A config.json whose sizes disagree with the weights: the tensor, both shapes and the file.
  std::ofstream(dir / "config.json") << R"({"model_type": "bert", "vocab_size": 6, "hidden_size": 8,
    "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32})";
  auto start = nn::bert_pretrained_start(dir.string(), nlohmann::json::object());
  nn::BertOptions wide = o;
  wide.config.intermediate_size = 32;
  nn::BertModel target(wide);
  try {
    (void)start.load_weights(target);
    FAIL();
  } catch (const ArtifactError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'bert.encoder.layer.0.intermediate.dense.bias' has shape [16], "
                                         "expected [32]"),
              std::string::npos) << e.what();
  }
}

}  // namespace
