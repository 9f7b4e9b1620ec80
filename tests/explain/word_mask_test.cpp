// Kernel SHAP's fast path over a bag model's words (prep::TextFeatures::word_mask_encoder): the
// features it computes from the words a coalition keeps are the very tensors encode() makes of the
// masked text (n-grams across the gaps included), for every coalition of short texts and many of
// long ones, over the TF-IDF options that change the terms or their weights; where it cannot
// promise that (capital sigma, dotted capital I, character analyzers, hashing) it declines; and
// the explanations are identical with and without it.
#include "kiln/explain/explainer.h"
#include "test_artifacts.h"

#include <gtest/gtest.h>

#include <random>

#include "kiln/prep/preprocessor.h"
#include "kiln/prep/text_features.h"

namespace kiln::explain {
namespace {

using testing::golden_artifact;

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> c = {
      "The cat sat on the mat, and the old cat slept.",
      "A dog sat on the log; the dog barked at the cat!",
      "the mat was red and the log was brown",
      "Café au lait, naïve résumé -- the cat's café.",
      "Rain in Spain stays mainly in the plain, 2024 figures say.",
      "the old mat sat on the old log",
      "dog cat mat log cat dog",
      "東京の猫 and 大阪の犬 sat on the mat",
      "x y z the cat, y z the dog",
  };
  return c;
}

// Texts explained: repeated words, one-letter words (no tokens), punctuation joining words,
// numbers, accents, apostrophes, CJK, and words left out of the vocabulary.
const std::vector<std::string>& explained() {
  static const std::vector<std::string> t = {
      "The cat sat on the mat, the cat!",
      "a dog, the log -- and a mat; x the cat's café",
      "Old mat old log old cat sat sat sat",
      "naïve dog in Spain 2024, unknown words here, the plain cat",
      "東京の猫 sat on the mat and the 犬",
      "the old cat sat on the mat and the old dog sat on the log while rain stays mainly in the plain",
  };
  return t;
}

std::vector<std::pair<std::size_t, std::size_t>> pairs(const std::vector<Word>& words) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (const auto& w : words) out.emplace_back(w.begin, w.end);
  return out;
}

// Every coalition when there are at most 10 words, else the empty, the full, each single word
// kept or dropped, and 300 random ones.
std::vector<uint8_t> coalitions(int64_t m, int64_t& rows) {
  std::vector<uint8_t> masks;
  if (m <= 10) {
    rows = int64_t{1} << m;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = 0; k < m; ++k) masks.push_back(static_cast<uint8_t>((r >> k) & 1));
    }
    return masks;
  }
  std::mt19937 rng(7);
  rows = 0;
  auto add = [&](auto bit) {
    for (int64_t k = 0; k < m; ++k) masks.push_back(static_cast<uint8_t>(bit(k)));
    ++rows;
  };
  add([](int64_t) { return 0; });
  add([](int64_t) { return 1; });
  for (int64_t i = 0; i < m; ++i) {
    add([&](int64_t k) { return k == i; });
    add([&](int64_t k) { return k != i; });
  }
  for (int r = 0; r < 300; ++r) {
    const double p = std::uniform_real_distribution<double>(0.05, 0.95)(rng);
    add([&](int64_t) { return std::bernoulli_distribution(p)(rng); });
  }
  return masks;
}

void expect_same_batches(const nn::Batch& a, const nn::Batch& b, const std::string& where) {
  for (const char* name : {nn::kBagIndices, nn::kBagOffsets, nn::kBagWeights}) {
    const auto& x = a.at(name);
    const auto& y = b.at(name);
    ASSERT_EQ(x.sizes(), y.sizes()) << where << " " << name;
    EXPECT_TRUE(torch::equal(x, y)) << where << " " << name;  // bit for bit
  }
}

TEST(WordMaskEncoder, EqualsEncodingTheMaskedTexts) {
  const std::vector<nlohmann::json> featurizers = {
      {{"type", "tfidf"}},
      {{"type", "tfidf"}, {"ngram_range", {1, 2}}},
      {{"type", "tfidf"}, {"ngram_range", {1, 3}}, {"sublinear_tf", true}},
      {{"type", "tfidf"}, {"ngram_range", {2, 4}}, {"norm", "l1"}, {"binary", true}},
      {{"type", "tfidf"}, {"ngram_range", {1, 2}}, {"lowercase", false}, {"use_idf", false}, {"norm", "none"}},
      {{"type", "tfidf"}, {"ngram_range", {1, 2}}, {"cjk", true}, {"min_df", 2}},
  };
  int64_t compared = 0;
  for (const auto& spec : featurizers) {
    std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor(spec);
    pre->fit(testing::texts(nlohmann::json(corpus())));
    const auto* tf = dynamic_cast<const prep::TextFeatures*>(pre.get());
    ASSERT_NE(tf, nullptr);
    for (const auto& text : explained()) {
      // The words Kernel SHAP masks (those some feature covers), and every word.
      for (const auto& words : {text_words(text, tf->feature_spans(text)), text_words(text, std::nullopt)}) {
        const std::string where = spec.dump() + " on '" + text + "'";
        auto encoder = tf->word_mask_encoder(text, pairs(words));
        ASSERT_NE(encoder, nullptr) << where;
        const auto m = static_cast<int64_t>(words.size());
        int64_t rows = 0;
        const std::vector<uint8_t> masks = coalitions(m, rows);
        data::Examples masked;
        for (int64_t r = 0; r < rows; ++r) {
          masked.texts.push_back(masked_text(text, words, reinterpret_cast<const bool*>(masks.data() + r * m), ""));
        }
        expect_same_batches(encoder->encode(reinterpret_cast<const bool*>(masks.data()), rows), pre->encode(masked),
                            where);
        compared += rows;
      }
    }
  }
  EXPECT_GT(compared, 10000);
}

TEST(WordMaskEncoder, DeclinesWhereMaskingCouldChangeOtherWords) {
  auto encoder_of = [](const nlohmann::json& spec, const std::string& text) {
    std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor(spec);
    pre->fit(testing::texts(nlohmann::json(corpus())));
    const auto* tf = dynamic_cast<const prep::TextFeatures*>(pre.get());
    return tf->word_mask_encoder(text, pairs(text_words(text, std::nullopt)));
  };
  const nlohmann::json word = {{"type", "tfidf"}, {"ngram_range", {1, 2}}};
  EXPECT_NE(encoder_of(word, "the cat sat"), nullptr);
  // Python lowercases a capital sigma by the letters around it (final sigma), across a gap.
  EXPECT_EQ(encoder_of(word, "the ΟΔΟΣ.cat sat"), nullptr);
  // U+0130 lowercases to i + a combining dot, which is not a word character.
  EXPECT_EQ(encoder_of(word, "İstanbul cat"), nullptr);
  // Without lowercasing both are plain letters.
  nlohmann::json cased = word;
  cased["lowercase"] = false;
  EXPECT_NE(encoder_of(cased, "the ΟΔΟΣ.cat İstanbul"), nullptr);
  // Character n-grams see the gaps; hashed columns and long n-grams are left to encode().
  EXPECT_EQ(encoder_of({{"type", "tfidf"}, {"analyzer", "char_wb"}}, "the cat"), nullptr);
  EXPECT_EQ(encoder_of({{"type", "tfidf"}, {"hashing", 1024}}, "the cat"), nullptr);
  EXPECT_EQ(encoder_of({{"type", "tfidf"}, {"ngram_range", {1, 5}}}, "the cat"), nullptr);
  EXPECT_EQ(encoder_of({{"type", "hashed_ngrams"}}, "the cat"), nullptr);
  EXPECT_EQ(encoder_of({{"type", "wordpiece"}, {"vocab_size", 120}}, "the cat"), nullptr);
}

TEST(WordMaskEncoder, ExplanationsAreIdenticalWithAndWithoutIt) {
  data::Examples ex;
  ex.texts = {"The cat sat on the mat, the cat!",  // 8 words: every coalition
              "the old cat sat on the mat and the old dog sat on the log while the cat slept"};  // sampled
  for (const std::string family : {"linear", "mlp"}) {
    torch::manual_seed(5);
    const artifact::Predictor p(golden_artifact(family));
    for (Method method : {Method::kKernel, Method::kPartition}) {
      std::vector<std::vector<double>> values;
      for (bool fast : {true, false}) {
        ExplainOptions o;
        o.method = method;
        o.space = Space::kProbability;
        o.word_mask_encoder = fast;
        o.kernel.nsamples = 300;
        o.batch_size = 64;  // several batches per explanation
        for (const auto& a : Explainer(p, o).explain_all(ex)) {
          values.push_back(a.values);
          values.back().insert(values.back().end(), a.base.begin(), a.base.end());
        }
      }
      ASSERT_EQ(values.size(), 4u);
      EXPECT_GT(values[1].size(), 30u);
      EXPECT_EQ(values[0], values[2]) << family << " " << method_name(method);
      EXPECT_EQ(values[1], values[3]) << family << " " << method_name(method);
    }
  }
}

}  // namespace
}  // namespace kiln::explain
