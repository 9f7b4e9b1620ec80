#include "kiln/learn/encoding_cache.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "learn_fixtures.h"

using namespace kiln;

namespace {

prep::Preprocessors fitted_tfidf() {
  auto config = learn_test::small_config();
  config.trainer.epochs = 1;
  return pipeline::run_pipeline(config, learn_test::topics(120, 1), nullptr, nullptr).artifact.preprocessors;
}

void expect_same_batch(const nn::Batch& got, const nn::Batch& want) {
  ASSERT_EQ(got.size(), want.size());
  ASSERT_EQ(got.tensors().size(), want.tensors().size());
  for (const auto& [name, t] : want.tensors()) {
    ASSERT_TRUE(got.has(name)) << name;
    EXPECT_TRUE(torch::equal(got.at(name), t)) << name;
  }
}

}  // namespace

// Rows taken from the cache, rows encoded now and repeated rows, in any order: the batch equals
// encoding the examples afresh, and only the examples never seen are encoded.
TEST(EncodingCache, GivesWhatEncodingAfreshGives) {
  const auto pre = fitted_tfidf();
  const auto a = learn_test::topics(30, 2), b = learn_test::topics(20, 3);
  learn::EncodingCache cache;
  expect_same_batch(cache.encode(pre, a), prep::encode_all(pre, a));
  EXPECT_EQ(cache.misses(), 30);
  EXPECT_EQ(cache.hits(), 0);

  data::Examples mix;  // b's rows between a's, one of a's twice
  for (std::size_t i = 0; i < 20; ++i) {
    mix.texts.push_back(b.texts[i]);
    mix.texts.push_back(a.texts[(7 * i) % 30]);
  }
  mix.texts.push_back(a.texts[0]);
  expect_same_batch(cache.encode(pre, mix), prep::encode_all(pre, mix));
  // topics() repeats some short texts: a text is kept once, and encoded again only in a later call.
  const std::set<std::string> seen(a.texts.begin(), a.texts.end());
  std::set<std::string> fresh;
  int64_t fresh_rows = 0;
  for (const auto& t : b.texts) {
    if (seen.count(t)) continue;
    fresh.insert(t);
    ++fresh_rows;
  }
  EXPECT_EQ(cache.misses(), 30 + fresh_rows);
  EXPECT_EQ(cache.hits(), static_cast<int64_t>(mix.size()) - fresh_rows);
  EXPECT_EQ(cache.size(), seen.size() + fresh.size());
}

// The byte budget holds: the least recently used rows leave first, and a budget of 0 keeps nothing.
TEST(EncodingCache, KeepsWithinItsBytes) {
  const auto pre = fitted_tfidf();
  const auto a = learn_test::topics(200, 4);
  learn::EncodingCache probe;
  (void)probe.encode(pre, a);
  const int64_t per_row = probe.bytes() / static_cast<int64_t>(probe.size());
  learn::EncodingCache cache(20 * per_row);
  expect_same_batch(cache.encode(pre, a), prep::encode_all(pre, a));
  EXPECT_LE(cache.bytes(), 20 * per_row);
  EXPECT_GT(cache.size(), 5u);
  EXPECT_LT(cache.size(), 60u);
  // The last rows encoded are the ones kept.
  data::Examples last;
  last.texts.push_back(a.texts.back());
  const int64_t misses = cache.misses();
  (void)cache.encode(pre, last);
  EXPECT_EQ(cache.misses(), misses);

  learn::EncodingCache none(0);
  expect_same_batch(none.encode(pre, a), prep::encode_all(pre, a));
  EXPECT_EQ(none.size(), 0u);
  (void)none.encode(pre, a);
  EXPECT_EQ(none.hits(), 0);
}

// An image is known by its resolved path: the same relative path under two folders is two images,
// and a relative and an absolute path to one file are one.
TEST(EncodingCache, KnowsImagesByTheirResolvedPath) {
  // The keys only: a text preprocessor encodes the texts, the images just name the rows.
  const auto pre = fitted_tfidf();
  data::Examples x;
  x.base_dir = "/data/one";
  x.texts = {"star moon", "star moon"};
  x.images = {{"a.png", ""}, {"/data/one/a.png", ""}};
  learn::EncodingCache cache;
  (void)cache.encode(pre, x);
  EXPECT_EQ(cache.size(), 1u);
  x.base_dir = "/data/two";
  x.images = {{"a.png", ""}, {"", "\x89PNG bytes"}};
  (void)cache.encode(pre, x);
  EXPECT_EQ(cache.size(), 3u);
}
