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

// A vocabulary file in a temporary directory, removed with the fixture.
class WordPieceFeatures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln-wp-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& contents) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }
  std::string vocab() { return write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n,\n"); }
  std::string message_of(const json& spec) {
    try {
      auto p = make_preprocessor(spec);
      p->fit(texts({"x"}));
    } catch (const kiln::Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
};

std::vector<int64_t> row(const torch::Tensor& t, int64_t i) {
  const auto r = t[i].contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

TEST_F(WordPieceFeatures, EncodesPaddedToTheBatchLongest) {
  auto p = make_preprocessor({{"type", "wordpiece"}, {"vocab", vocab()}});
  p->fit(texts({"hello"}));
  const auto b = p->encode(texts({"Hello, worlds", "hello"}));
  const auto ids = b.get(kiln::nn::kInputIds);
  ASSERT_EQ(ids.sizes().vec(), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(row(ids, 0), (std::vector<int64_t>{2, 5, 8, 6, 7, 3}));
  EXPECT_EQ(row(ids, 1), (std::vector<int64_t>{2, 5, 3, 0, 0, 0}));
  EXPECT_EQ(row(b.get(kiln::nn::kAttentionMask), 1), (std::vector<int64_t>{1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(row(b.get(kiln::nn::kTokenTypeIds), 0), (std::vector<int64_t>{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(p->input_spec().find(kiln::nn::kInputIds)->vocab_size, 9);
}

TEST_F(WordPieceFeatures, TruncatesToMaxLength) {
  auto p = make_preprocessor({{"type", "wordpiece"}, {"vocab", vocab()}, {"max_length", 4}});
  const auto ids = p->encode(texts({"hello world hello world"})).get(kiln::nn::kInputIds);
  EXPECT_EQ(row(ids, 0), (std::vector<int64_t>{2, 5, 6, 3}));
}

TEST_F(WordPieceFeatures, StateFileRoundTrips) {
  auto p = make_preprocessor({{"type", "wordpiece"}, {"vocab", vocab()}, {"lowercase", false}});
  const auto files = p->state_files();
  ASSERT_EQ(files.count("vocab.txt"), 1u);
  json spec = p->spec();
  spec.erase("vocab");
  auto q = kiln::prep::load_preprocessor(spec, files);
  EXPECT_EQ(row(q->encode(texts({"hello Hello"})).get(kiln::nn::kInputIds), 0), (std::vector<int64_t>{2, 5, 1, 3}));
  EXPECT_THROW((void)kiln::prep::load_preprocessor(spec, {}), kiln::ArtifactError);
}

TEST_F(WordPieceFeatures, FitWithoutVocabularyLearnsOneOnTheTrainingTexts) {
  // No featurizer.vocab: an uncased WordPiece vocabulary of vocab_size is learnt on the texts (the
  // trainer's own tests pin its tokens); the special tokens come first, and the texts' words encode
  // without [UNK].
  auto p = make_preprocessor({{"type", "wordpiece"}, {"vocab_size", 40}});
  std::vector<std::string> corpus;
  for (int i = 0; i < 20; ++i) corpus.push_back(i % 2 ? "Hello hello world" : "hello worlds, hello");
  p->fit(texts(corpus));
  const auto files = p->state_files();
  ASSERT_EQ(files.count("vocab.txt"), 1u);
  EXPECT_EQ(files.at("vocab.txt").rfind("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", 0), 0u) << files.at("vocab.txt");
  EXPECT_LE(p->input_spec().find(kiln::nn::kInputIds)->vocab_size, 40);
  const auto ids = p->encode(texts({"hello worlds"})).get(kiln::nn::kInputIds);
  for (const auto id : row(ids, 0)) EXPECT_NE(id, 1) << "[UNK] in the encoding of a training word";
  EXPECT_NE(message_of({{"type", "wordpiece"}, {"vocab_size", 2}})
                .find("featurizer.vocab_size must be >= 5 (the special tokens and one more), got 2"),
            std::string::npos);
}

TEST_F(WordPieceFeatures, MissingVocabFileNamesIt) {
  const std::string m = message_of({{"type", "wordpiece"}, {"vocab", (dir_ / "nope.txt").string()}});
  EXPECT_NE(m.find("featurizer.vocab: cannot open '" + (dir_ / "nope.txt").string() + "'; pass a BERT vocab.txt"),
            std::string::npos)
      << m;
}

TEST_F(WordPieceFeatures, EmptyVocabFileIsAnError) {
  const std::string path = write("empty.txt", "");
  const std::string m = message_of({{"type", "wordpiece"}, {"vocab", path}});
  EXPECT_NE(m.find("featurizer.vocab " + path + ": the vocabulary is empty"), std::string::npos) << m;
}

TEST_F(WordPieceFeatures, VocabWithoutSpecialTokensNamesThem) {
  const std::string path = write("plain.txt", "[PAD]\nhello\nworld\n");
  const std::string m = message_of({{"type", "wordpiece"}, {"vocab", path}});
  EXPECT_NE(m.find(path + ": the vocabulary lacks [UNK], [CLS], [SEP] (3 tokens read)"), std::string::npos) << m;
}

TEST_F(WordPieceFeatures, BadMaxLengthAndUnknownOption) {
  EXPECT_NE(message_of({{"type", "wordpiece"}, {"vocab", vocab()}, {"max_length", 2}})
                .find("featurizer.max_length must be >= 3 (room for [CLS], [SEP] and a token), got 2"),
            std::string::npos);
  EXPECT_NE(message_of({{"type", "wordpiece"}, {"max_len", 2}}).find("featurizer.max_len is not an option"),
            std::string::npos);
}

TEST_F(WordPieceFeatures, NoTruncationRejectsLongTexts) {
  auto p = make_preprocessor({{"type", "wordpiece"}, {"vocab", vocab()}, {"max_length", 3}, {"truncation", false}});
  try {
    (void)p->encode(texts({"hello world"}));
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("example 0 has 4 WordPiece tokens, more than featurizer.max_length 3"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
