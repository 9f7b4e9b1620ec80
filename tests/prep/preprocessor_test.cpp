#include "kiln/prep/preprocessor.h"

#include <gtest/gtest.h>

#include "kiln/core/error.h"
#include "kiln/text/tfidf.h"

namespace kiln::prep {
namespace {

data::Examples texts(std::vector<std::string> t) {
  data::Examples e;
  e.texts = std::move(t);
  return e;
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const std::vector<std::string> kDocs = {"the cat sat", "the dog sat down", "a cat and a dog", "down the road"};

TEST(Preprocessor, TfidfEncodesWhatTheVectorizerComputes) {
  auto p = make_preprocessor({{"type", "tfidf"}, {"ngram_range", {1, 2}}});
  p->fit(texts(kDocs));
  text::TfidfOptions o;
  o.ngram_max = 2;
  text::TfidfVectorizer v(o);
  const auto x = v.fit_transform<float>(kDocs);
  const auto b = p->encode(texts(kDocs));
  EXPECT_EQ(b.size(), 4);
  ASSERT_EQ(b.at(nn::kBagIndices).numel(), x.nnz());
  for (int64_t k = 0; k < x.nnz(); ++k) {
    EXPECT_EQ(b.at(nn::kBagIndices)[k].item<int64_t>(), x.indices[static_cast<std::size_t>(k)]);
    EXPECT_EQ(b.at(nn::kBagWeights)[k].item<float>(), x.data[static_cast<std::size_t>(k)]);
  }
  for (int64_t r = 0; r < 4; ++r) EXPECT_EQ(b.at(nn::kBagOffsets)[r].item<int64_t>(), x.indptr[static_cast<std::size_t>(r)]);
  const auto spec = p->input_spec();
  EXPECT_EQ(spec.find(nn::kBagIndices)->vocab_size, x.cols);
  EXPECT_EQ(p->feature_name(0), v.vocabulary()[0]);
  EXPECT_EQ(p->spec()["type"], "tfidf");
  EXPECT_EQ(p->spec()["ngram_range"], nlohmann::json::array({1, 2}));
}

TEST(Preprocessor, StateFilesRestoreTheSameEncoding) {
  for (const char* type : {"tfidf", "hashed_ngrams"}) {
    auto p = make_preprocessor({{"type", type}});
    p->fit(texts(kDocs));
    auto back = load_preprocessor(p->spec(), p->state_files());
    const auto a = p->encode(texts({"the cat", "a road"})), b = back->encode(texts({"the cat", "a road"}));
    for (const auto& [name, t] : a.tensors()) EXPECT_TRUE(torch::equal(t, b.at(name))) << type << " " << name;
  }
}

TEST(Preprocessor, OutOfVocabularyRates) {
  auto p = make_preprocessor({{"type", "tfidf"}});
  p->fit(texts(kDocs));
  const auto rates = p->oov_rates({"the cat zebra yak", ""});
  ASSERT_TRUE(rates.has_value());
  EXPECT_DOUBLE_EQ((*rates)[0], 0.5);
  EXPECT_DOUBLE_EQ((*rates)[1], 0.0);
  EXPECT_FALSE(make_preprocessor({{"type", "hashed_ngrams"}})->oov_rates({"x"}).has_value());
}

// Serving measures drift from what encoding saw (encode_observed), not from a second analysis
// (oov_rates): both must give the same numbers, on the ASCII fast path, the general analyzer
// (non-ASCII, n-grams) and batches large enough to be split over threads.
// fit_encode (the training rows encoded from the fit's own analysis) gives the tensors, state and
// vocabulary of fit() then encode(), for every preprocessor type, pruning included.
TEST(Preprocessor, FitEncodeEqualsFitThenEncode) {
  std::vector<std::string> docs = {"the cat zebra yak", "", "Zebra, THE dog!! sat-down café naïve", "the the the",
                                   "x y z", "down the road to the sea", "日本語 the cat"};
  for (int i = 0; i < 300; ++i) docs.push_back(docs[static_cast<std::size_t>(i) % 7] + " w" + std::to_string(i % 13));
  for (const auto& spec :
       {nlohmann::json{{"type", "tfidf"}}, nlohmann::json{{"type", "tfidf"}, {"ngram_range", {1, 2}}, {"min_df", 2}},
        nlohmann::json{{"type", "tfidf"}, {"max_features", 20}, {"sublinear_tf", true}},
        nlohmann::json{{"type", "tfidf"}, {"analyzer", "char_wb"}, {"ngram_range", {2, 3}}},
        nlohmann::json{{"type", "hashed_ngrams"}}}) {
    SCOPED_TRACE(spec.dump());
    auto once = make_preprocessor(spec);
    auto twice = make_preprocessor(spec);
    const auto fitted = once->fit_encode(texts(docs));
    twice->fit(texts(docs));
    const auto encoded = twice->encode(texts(docs));
    ASSERT_EQ(fitted.tensors().size(), encoded.tensors().size());
    for (const auto& [name, t] : encoded.tensors()) EXPECT_TRUE(torch::equal(t, fitted.at(name))) << name;
    EXPECT_EQ(once->state_files(), twice->state_files());
    // And what it fitted encodes new texts as the other does.
    const auto a = once->encode(texts({"the cat sat down", "w3 w4 the"}));
    const auto b = twice->encode(texts({"the cat sat down", "w3 w4 the"}));
    for (const auto& [name, t] : b.tensors()) EXPECT_TRUE(torch::equal(t, a.at(name))) << name;
  }
}

TEST(Preprocessor, EncodeObservedReportsTheOutOfVocabularyRatesOfASecondAnalysis) {
  std::vector<std::string> input = {"the cat zebra yak", "", "Zebra, THE dog!! sat-down café naïve", "the the the",
                                    "x y z", "down the road to the sea", "日本語 the cat"};
  for (int i = 0; i < 150; ++i) input.push_back(input[static_cast<std::size_t>(i) % 7] + " w" + std::to_string(i % 11));
  for (const auto& spec : {nlohmann::json{{"type", "tfidf"}}, nlohmann::json{{"type", "tfidf"}, {"ngram_range", {1, 2}}},
                           nlohmann::json{{"type", "tfidf"}, {"analyzer", "char_wb"}, {"ngram_range", {2, 3}}}}) {
    SCOPED_TRACE(spec.dump());
    auto p = make_preprocessor(spec);
    p->fit(texts(kDocs));
    for (const std::size_t n : {std::size_t{7}, input.size()}) {
      const std::vector<std::string> batch(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(n));
      EncodeObservations observed;
      const auto encoded = p->encode_observed(texts(batch), observed);
      const auto again = p->oov_rates(batch);
      ASSERT_TRUE(again.has_value());
      ASSERT_EQ(observed.oov_rates.size(), n);
      for (std::size_t i = 0; i < n; ++i) EXPECT_DOUBLE_EQ(observed.oov_rates[i], (*again)[i]) << batch[i];
      EXPECT_GT(observed.oov_rates[0], 0.0);
      // The encoding itself is encode()'s.
      const auto plain = p->encode(texts(batch));
      for (const auto& [name, t] : plain.tensors()) EXPECT_TRUE(torch::equal(t, encoded.at(name))) << name;
    }
  }
  // A preprocessor without a vocabulary observes nothing, and encode_all passes observations on.
  EncodeObservations observed;
  observed.oov_rates = {1.0};
  (void)make_preprocessor({{"type", "hashed_ngrams"}})->encode_observed(texts({"x"}), observed);
  EXPECT_TRUE(observed.oov_rates.empty());
  Preprocessors both;
  auto tfidf = make_preprocessor({{"type", "tfidf"}});
  tfidf->fit(texts(kDocs));
  both.push_back(std::move(tfidf));
  (void)encode_all(both, texts({"the cat zebra yak"}), &observed);
  EXPECT_EQ(observed.oov_rates, std::vector<double>{0.5});
}

TEST(Preprocessor, BadSpecsAndStatesAreNamed) {
  EXPECT_NE(error_of([] { (void)make_preprocessor({{"type", "wordpeace"}}); })
                .find("featurizer.type 'wordpeace' is unknown; use one of: ensemble, hashed_ngrams, image, tfidf"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)make_preprocessor({{"type", "tfidf"}, {"min_dff", 2}}); })
                .find("featurizer.min_dff is not an option of featurizer type 'tfidf'"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)load_preprocessor({{"type", "tfidf"}}, {}); })
                .find("the tfidf preprocessor's state file (vocabulary and idf) is missing"),
            std::string::npos);
  data::Examples images;
  images.images = {data::ImageRef{"a.png", {}}};
  auto p = make_preprocessor({{"type", "hashed_ngrams"}});
  EXPECT_NE(error_of([&] { (void)p->encode(images); })
                .find("the hashed_ngrams preprocessor reads text, but these examples have none"),
            std::string::npos);
}

TEST(Preprocessor, RegistryTakesNewTypes) {
  PreprocessorType t;
  t.name = "test_constant";
  t.make = [](const nlohmann::json&) { return make_preprocessor({{"type", "hashed_ngrams"}, {"buckets", 8}}); };
  t.load = [](const nlohmann::json&, const StateFiles&) {
    return make_preprocessor({{"type", "hashed_ngrams"}, {"buckets", 8}});
  };
  register_preprocessor(t);
  const auto types = preprocessor_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "test_constant"), types.end());
  EXPECT_EQ(make_preprocessor({{"type", "test_constant"}})->input_spec().find(nn::kBagIndices)->vocab_size, 8);
}

TEST(Preprocessor, SeveralPreprocessorsEncodeIntoOneBatch) {
  std::shared_ptr<Preprocessor> a = make_preprocessor({{"type", "hashed_ngrams"}, {"buckets", 16}});
  Preprocessors one = {a};
  EXPECT_EQ(encode_all(one, texts(kDocs)).size(), 4);
  Preprocessors two = {a, a};
  EXPECT_NE(error_of([&] { (void)combined_input_spec(two); }).find("both produce the tensor 'bag_indices'"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln::prep
