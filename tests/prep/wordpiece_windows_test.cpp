// The wordpiece preprocessor's long_text: window (Hugging Face's return_overflowing_tokens with
// stride): window ranges, tensor layout, persistence, and one test per bad value.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "kiln/core/error.h"
#include "kiln/prep/preprocessor.h"

namespace {

namespace fs = std::filesystem;
using kiln::prep::make_preprocessor;
using nlohmann::json;

kiln::data::Examples texts(std::vector<std::string> t) {
  kiln::data::Examples e;
  e.texts = std::move(t);
  return e;
}

// Vocabulary: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then a..j = 5..14.
class WordPieceWindows : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln-wpw-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    vocab_ = (dir_ / "vocab.txt").string();
    std::ofstream(vocab_) << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  json spec(json extra) const {
    json s = {{"type", "wordpiece"}, {"vocab", vocab_}};
    s.merge_patch(extra);
    return s;
  }
  std::string message_of(const json& extra) const {
    try {
      auto p = make_preprocessor(spec(extra));
      p->fit(texts({"a"}));
    } catch (const kiln::ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
  std::string vocab_;
};

std::vector<int64_t> row(const torch::Tensor& t) {
  const auto r = t.contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

TEST_F(WordPieceWindows, WindowsOverlapByStrideUntilTheLastToken) {
  // 10 tokens, max_length 6 (windows of 4 tokens), stride 1: starts 0, 3, 6 -> [0,4) [3,7) [6,10).
  auto p = make_preprocessor(spec({{"max_length", 6}, {"long_text", "window"}, {"stride", 1}}));
  const auto b = p->encode(texts({"a b c d e f g h i j", "b c"}));
  const auto ids = b.at(kiln::nn::kInputIds);
  ASSERT_EQ(ids.sizes().vec(), (std::vector<int64_t>{2, 3, 6}));
  EXPECT_EQ(row(ids[0][0]), (std::vector<int64_t>{2, 5, 6, 7, 8, 3}));
  EXPECT_EQ(row(ids[0][1]), (std::vector<int64_t>{2, 8, 9, 10, 11, 3}));
  EXPECT_EQ(row(ids[0][2]), (std::vector<int64_t>{2, 11, 12, 13, 14, 3}));
  // A short text: one window, then padding windows with no attended token.
  EXPECT_EQ(row(ids[1][0]), (std::vector<int64_t>{2, 6, 7, 3, 0, 0}));
  const auto mask = b.at(kiln::nn::kAttentionMask);
  EXPECT_EQ(row(mask[1][0]), (std::vector<int64_t>{1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(mask[1][1].sum().item<int64_t>(), 0);
  EXPECT_EQ(mask[1][2].sum().item<int64_t>(), 0);
  EXPECT_EQ(b.at(kiln::nn::kTokenTypeIds).abs().sum().item<int64_t>(), 0);
  EXPECT_EQ(p->input_spec().find(kiln::nn::kInputIds)->shape, (std::vector<std::string>{"batch", "window", "sequence"}));
}

TEST_F(WordPieceWindows, LastWindowMayBeShortAndStrideZeroTiles) {
  // 9 tokens, windows of 4, stride 0: [0,4) [4,8) [8,9).
  auto p = make_preprocessor(spec({{"max_length", 6}, {"long_text", "window"}, {"stride", 0}}));
  const auto ids = p->encode(texts({"a b c d e f g h i"})).at(kiln::nn::kInputIds);
  ASSERT_EQ(ids.sizes().vec(), (std::vector<int64_t>{1, 3, 6}));
  EXPECT_EQ(row(ids[0][2]), (std::vector<int64_t>{2, 13, 3, 0, 0, 0}));
}

TEST_F(WordPieceWindows, DefaultStrideIsAQuarterWindowAndIsPersisted) {
  auto p = make_preprocessor(spec({{"max_length", 10}, {"long_text", "window"}}));
  EXPECT_EQ(p->options().at("long_text"), "window");
  EXPECT_EQ(p->options().at("stride"), 2);  // (10 - 2) / 4
  json saved = p->spec();
  saved.erase("vocab");
  auto q = kiln::prep::load_preprocessor(saved, p->state_files());
  const auto text = texts({"a b c d e f g h i j a b c"});
  EXPECT_TRUE(torch::equal(p->encode(text).at(kiln::nn::kInputIds), q->encode(text).at(kiln::nn::kInputIds)));
  // truncate (the default) keeps [batch, sequence] and persists no stride.
  auto t = make_preprocessor(spec({{"max_length", 10}}));
  EXPECT_EQ(t->options().at("long_text"), "truncate");
  EXPECT_FALSE(t->options().contains("stride"));
  EXPECT_EQ(t->encode(text).at(kiln::nn::kInputIds).dim(), 2);
}

TEST_F(WordPieceWindows, BadValuesNameTheFieldAndTheFix) {
  auto has = [](const std::string& msg, std::initializer_list<const char*> parts) {
    for (const char* part : parts) EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
  };
  has(message_of({{"long_text", "slide"}}), {"featurizer.long_text must be truncate or window", "'slide'"});
  has(message_of({{"long_text", "window"}, {"max_length", 6}, {"stride", 4}}),
      {"featurizer.stride must be in [0, max_length - 2 = 4)", "got 4"});
  has(message_of({{"long_text", "window"}, {"stride", -1}}), {"featurizer.stride must be in", "got -1"});
  has(message_of({{"stride", 3}}), {"featurizer.stride applies to long_text: window", "--long-text window"});
  has(message_of({{"long_text", "window"}, {"truncation", false}}),
      {"featurizer.truncation: false refuses texts longer than max_length", "long_text: truncate"});
  has(message_of({{"long_text", 3}}), {"featurizer.long_text has the wrong type"});
}

}  // namespace
