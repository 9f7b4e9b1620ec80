#include "kiln/text/hashing_vectorizer.h"

#include <gtest/gtest.h>

#include "golden_util.h"
#include "kiln/core/error.h"

namespace kiln::text {
namespace {

TEST(Hashing, MurmurMatchesScikitLearn) {
  for (const auto& pair : testing::load_golden("murmur.json")) {
    EXPECT_EQ(murmurhash3_32(pair[0].get<std::string>()), pair[1].get<std::int32_t>()) << pair[0];
  }
}

TEST(Hashing, ColumnAndSignFollowHash) {
  HashingOptions o;
  o.n_features = 16;
  const std::int32_t h = murmurhash3_32("hello");
  const HashedTerm t = hash_term("hello", o);
  EXPECT_EQ(t.column, std::abs(static_cast<std::int64_t>(h)) % 16);
  EXPECT_EQ(t.sign, h < 0 ? -1 : 1);
  o.alternate_sign = false;
  EXPECT_EQ(hash_term("hello", o).sign, 1);
}

TEST(Hashing, KeepsCancelledCountsAsStoredZeros) {
  // Find two terms sharing a column with opposite signs, as scikit-learn would store a 0 for them.
  HashingOptions o;
  o.n_features = 8;
  std::string a, b;
  for (int i = 0; i < 100 && a.empty(); ++i) {
    for (int k = 0; k < 100; ++k) {
      std::string s = "t" + std::to_string(i), u = "t" + std::to_string(k);
      auto hs = hash_term(s, o), hu = hash_term(u, o);
      if (hs.column == hu.column && hs.sign != hu.sign) {
        a = s;
        b = u;
        break;
      }
    }
  }
  ASSERT_FALSE(a.empty());
  HashingVectorizer v(AnalyzerOptions{}, o);
  const auto m = v.transform({a + " " + b});
  ASSERT_EQ(m.nnz(), 1);
  EXPECT_EQ(m.data[0], 0);
}

TEST(Hashing, RejectsBadFeatureCount) {
  HashingOptions o;
  o.n_features = 0;
  try {
    HashingVectorizer v(AnalyzerOptions{}, o);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "hashing.n_features must be in [1, 2147483647], got 0");
  }
}

}  // namespace
}  // namespace kiln::text
