#include "kiln/text/featurizer.h"

#include <gtest/gtest.h>

#include "kiln/core/error.h"

using namespace kiln;

namespace {
const std::vector<std::string> kDocs = {"The cat sat on the mat", "Dogs chase cats", "the mat is red",
                                        "猫が好きです", "red dogs and red cats"};

std::string make_error(const nlohmann::json& spec) {
  try {
    (void)text::make_featurizer(spec);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(Featurizer, TfidfStateRoundTripGivesTheSameRows) {
  auto f = text::make_featurizer({{"type", "tfidf"}, {"ngram_range", {1, 2}}, {"sublinear_tf", true}});
  f->fit(kDocs);
  auto a = f->transform(kDocs);
  auto g = text::load_featurizer(f->spec(), f->state());
  auto b = g->transform(kDocs);
  EXPECT_EQ(f->dim(), g->dim());
  EXPECT_EQ(a.indptr, b.indptr);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(f->spec()["ngram_range"], nlohmann::json::array({1, 2}));
  EXPECT_EQ(f->feature_name(0), "and");
}

TEST(Featurizer, HashedNgramsAreStatelessCounts) {
  auto f = text::make_featurizer({{"type", "hashed_ngrams"}, {"buckets", 1024}});
  f->fit({});
  auto x = f->transform({"red red cat", "猫が好き"});
  EXPECT_EQ(x.cols, 1024);
  EXPECT_EQ(f->dim(), 1024);
  // "red red cat": words red (x2), cat and bigrams "red red", "red cat" -> counts sum to 5.
  float sum = 0;
  for (int64_t k = x.indptr[0]; k < x.indptr[1]; ++k) sum += x.data[static_cast<std::size_t>(k)];
  EXPECT_FLOAT_EQ(sum, 5.0f);
  EXPECT_GT(x.indptr[2] - x.indptr[1], 0) << "CJK text must yield features (character bigrams)";
  auto g = text::load_featurizer(f->spec(), f->state());
  auto y = g->transform({"red red cat", "猫が好き"});
  EXPECT_EQ(x.indices, y.indices);
}

TEST(Featurizer, BadSpecsNameTheField) {
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

TEST(Featurizer, CorruptStateIsAnArtifactError) {
  EXPECT_THROW((void)text::load_featurizer({{"type", "tfidf"}}, {{"format", "nope"}}), ArtifactError);
  EXPECT_THROW((void)text::load_featurizer({{"type", "gru"}}, nlohmann::json::object()), ArtifactError);
}
