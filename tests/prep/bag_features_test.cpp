#include "kiln/prep/preprocessor.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"

using namespace kiln;

namespace {
const std::vector<std::string> kDocs = {"The cat sat on the mat", "Dogs chase cats", "the mat is red",
                                        "猫が好きです", "red dogs and red cats"};

data::Examples texts(const std::vector<std::string>& t) {
  data::Examples e;
  e.texts = t;
  return e;
}

std::vector<int64_t> ints(const torch::Tensor& t) { return {t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel()}; }
std::vector<float> floats(const torch::Tensor& t) { return {t.data_ptr<float>(), t.data_ptr<float>() + t.numel()}; }

std::string make_error(const nlohmann::json& spec) {
  try {
    (void)prep::make_preprocessor(spec);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(BagFeatures, TfidfStateRoundTripGivesTheSameRows) {
  auto f = prep::make_preprocessor({{"type", "tfidf"}, {"ngram_range", {1, 2}}, {"sublinear_tf", true}});
  f->fit(texts(kDocs));
  auto a = f->encode(texts(kDocs));
  auto g = prep::load_preprocessor(f->spec(), f->state_files());
  auto b = g->encode(texts(kDocs));
  EXPECT_EQ(f->input_spec().describe(), g->input_spec().describe());
  EXPECT_EQ(ints(a.at(nn::kBagOffsets)), ints(b.at(nn::kBagOffsets)));
  EXPECT_EQ(ints(a.at(nn::kBagIndices)), ints(b.at(nn::kBagIndices)));
  EXPECT_EQ(floats(a.at(nn::kBagWeights)), floats(b.at(nn::kBagWeights)));
  EXPECT_EQ(f->spec()["ngram_range"], nlohmann::json::array({1, 2}));
  EXPECT_EQ(f->feature_name(0), "and");
}

TEST(BagFeatures, HashedNgramsAreStatelessCounts) {
  auto f = prep::make_preprocessor({{"type", "hashed_ngrams"}, {"buckets", 1024}});
  f->fit(texts({}));
  auto x = f->encode(texts({"red red cat", "猫が好き"}));
  EXPECT_EQ(f->input_spec().find(nn::kBagIndices)->vocab_size, 1024);
  EXPECT_TRUE(f->state_files().empty());
  // "red red cat": words red (x2), cat and bigrams "red red", "red cat" -> counts sum to 5.
  const auto offsets = ints(x.at(nn::kBagOffsets));
  const auto weights = floats(x.at(nn::kBagWeights));
  float sum = 0;
  for (int64_t k = offsets[0]; k < offsets[1]; ++k) sum += weights[static_cast<std::size_t>(k)];
  EXPECT_FLOAT_EQ(sum, 5.0f);
  EXPECT_GT(static_cast<int64_t>(weights.size()) - offsets[1], 0) << "CJK text must yield features (character bigrams)";
  EXPECT_EQ(f->feature_name(3), "bucket:3");
  auto g = prep::load_preprocessor(f->spec(), f->state_files());
  auto y = g->encode(texts({"red red cat", "猫が好き"}));
  EXPECT_EQ(ints(x.at(nn::kBagIndices)), ints(y.at(nn::kBagIndices)));
}

TEST(BagFeatures, HashedNgramsWithFasttextTokens) {
  // "A cat, a dog." -> fastText's tokens a cat , a dog . (6) and 5 bigrams, where scikit-learn's
  // token pattern keeps cat dog (2) and 1 bigram.
  auto f = prep::make_preprocessor({{"type", "hashed_ngrams"}, {"buckets", 1 << 20}, {"tokenizer", "fasttext"}});
  auto plain = prep::make_preprocessor({{"type", "hashed_ngrams"}, {"buckets", 1 << 20}});
  auto row_sum = [](const nn::Batch& x) {
    float s = 0;
    for (float w : floats(x.at(nn::kBagWeights))) s += w;
    return s;
  };
  EXPECT_FLOAT_EQ(row_sum(f->encode(texts({"A cat, a dog."}))), 11.0f);
  EXPECT_FLOAT_EQ(row_sum(plain->encode(texts({"A cat, a dog."}))), 3.0f);
  EXPECT_EQ(f->spec()["tokenizer"], "fasttext");
  EXPECT_FALSE(plain->spec().contains("tokenizer")) << "the default stays out of the spec (older artifacts load as before)";
  auto g = prep::load_preprocessor(f->spec(), f->state_files());
  EXPECT_EQ(ints(g->encode(texts({"A cat, a dog."})).at(nn::kBagIndices)),
            ints(f->encode(texts({"A cat, a dog."})).at(nn::kBagIndices)));
  const auto msg = make_error({{"type", "hashed_ngrams"}, {"tokenizer", "spacy"}});
  EXPECT_NE(msg.find("featurizer.tokenizer must be word (scikit-learn's tokens of 2+ word characters) or fasttext"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("got 'spacy'"), std::string::npos) << msg;
}

TEST(BagFeatures, BadSpecsNameTheField) {
  EXPECT_NE(make_error({{"type", "bow"}}).find("featurizer.type 'bow' is unknown"), std::string::npos);
  EXPECT_NE(make_error({{"max_features", 5}}).find("with a \"type\""), std::string::npos);
  auto msg = make_error({{"type", "tfidf"}, {"max_featurs", 5}});
  EXPECT_NE(msg.find("featurizer.max_featurs is not an option"), std::string::npos) << msg;
  EXPECT_NE(msg.find("max_features"), std::string::npos) << msg;
  msg = make_error({{"type", "tfidf"}, {"ngram_range", 2}});
  EXPECT_NE(msg.find("featurizer.ngram_range must be [min, max]"), std::string::npos) << msg;
  msg = make_error({{"type", "hashed_ngrams"}, {"buckets", 0}});
  EXPECT_NE(msg.find("n_features"), std::string::npos) << msg;
}

TEST(BagFeatures, CorruptStateIsAnArtifactError) {
  EXPECT_THROW((void)prep::load_preprocessor({{"type", "tfidf"}}, {{"state", R"({"format": "nope"})"}}), ArtifactError);
  EXPECT_THROW((void)prep::load_preprocessor({{"type", "gru"}}, {}), ArtifactError);
}

TEST(BagFeatures, HashedCharNgramsAreFastTextsSubwords) {
  // "where" with minn = maxn = 3: <wh whe her ere re> (5 subwords, fastText's computeSubwords) plus
  // the word itself; "été" counts code points, not bytes: <ét été té> (3) plus the word.
  auto f = prep::make_preprocessor(
      {{"type", "hashed_ngrams"}, {"ngram_range", {1, 1}}, {"char_ngram_range", {3, 3}}, {"buckets", 1 << 20}});
  auto x = f->encode(texts({"where", "été", "where where"}));
  const auto offsets = ints(x.at(nn::kBagOffsets));
  const auto weights = floats(x.at(nn::kBagWeights));
  auto row_sum = [&](std::size_t r) {
    const int64_t end = r + 1 < offsets.size() ? offsets[r + 1] : static_cast<int64_t>(weights.size());
    float s = 0;
    for (int64_t k = offsets[r]; k < end; ++k) s += weights[static_cast<std::size_t>(k)];
    return s;
  };
  EXPECT_FLOAT_EQ(row_sum(0), 6.0f);
  EXPECT_FLOAT_EQ(row_sum(1), 4.0f);
  EXPECT_FLOAT_EQ(row_sum(2), 12.0f);  // every feature of "where", counted twice
  EXPECT_EQ(offsets[2] - offsets[1], 4) << "the subwords of été land in distinct buckets";
  EXPECT_EQ(f->spec()["char_ngram_range"], nlohmann::json::array({3, 3}));
  auto g = prep::load_preprocessor(f->spec(), f->state_files());
  EXPECT_EQ(ints(g->encode(texts({"where"})).at(nn::kBagIndices)), ints(f->encode(texts({"where"})).at(nn::kBagIndices)));
  // Without char_ngram_range the encoding is what it always was (no subwords).
  auto plain = prep::make_preprocessor({{"type", "hashed_ngrams"}, {"ngram_range", {1, 1}}, {"buckets", 1 << 20}});
  EXPECT_EQ(ints(plain->encode(texts({"where"})).at(nn::kBagIndices)).size(), 1u);
  const auto msg = make_error({{"type", "hashed_ngrams"}, {"char_ngram_range", {4, 2}}});
  EXPECT_NE(msg.find("featurizer.char_ngram_range must be [min, max] with 1 <= min <= max <= 32"), std::string::npos) << msg;
}

// With subwords, rows are built per thread and laid into the batch's tensors: the same tensors on
// one thread and on two (rows split across chunks, empty texts among them), and none for no rows.
TEST(BagFeatures, HashedNgramsWithSubwordsAreTheSameOnAnyThreadCount) {
  auto f = prep::make_preprocessor(
      {{"type", "hashed_ngrams"}, {"ngram_range", {1, 2}}, {"char_ngram_range", {3, 6}}, {"buckets", 1 << 16}});
  std::vector<std::string> docs;
  for (int i = 0; i < 301; ++i) {
    std::string d;
    for (int w = 0; w < i % 7; ++w) d += (w ? " " : "") + std::string("w") + std::to_string((i * 31 + w * 17) % 97) + "été";
    docs.push_back(d);
  }
  const int before = core::threads();
  std::vector<std::vector<int64_t>> offsets, indices;
  std::vector<std::vector<float>> weights;
  for (const int threads : {1, 2}) {
    core::set_threads(threads);
    auto x = f->encode(texts(docs));
    EXPECT_EQ(x.size(), 301);
    offsets.push_back(ints(x.at(nn::kBagOffsets)));
    indices.push_back(ints(x.at(nn::kBagIndices)));
    weights.push_back(floats(x.at(nn::kBagWeights)));
  }
  core::set_threads(before);
  EXPECT_EQ(offsets[0], offsets[1]);
  EXPECT_EQ(indices[0], indices[1]);
  EXPECT_EQ(weights[0], weights[1]);
  ASSERT_EQ(offsets[0].size(), 301u);
  EXPECT_EQ(offsets[0][0], 0);
  EXPECT_EQ(offsets[0][1], 0) << "the first text is empty";
  EXPECT_TRUE(std::is_sorted(offsets[0].begin(), offsets[0].end()));
  EXPECT_LT(offsets[0].back(), static_cast<int64_t>(indices[0].size()));
  auto none = f->encode(texts({}));
  EXPECT_EQ(none.size(), 0);
  EXPECT_EQ(none.at(nn::kBagIndices).numel(), 0);
  EXPECT_EQ(none.at(nn::kBagOffsets).numel(), 0);
}
