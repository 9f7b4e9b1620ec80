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

TEST(Preprocessor, BadSpecsAndStatesAreNamed) {
  EXPECT_NE(error_of([] { (void)make_preprocessor({{"type", "wordpeace"}}); })
                .find("featurizer.type 'wordpeace' is unknown; use one of: hashed_ngrams, image, tfidf"),
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
