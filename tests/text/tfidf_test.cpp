#include "kiln/text/tfidf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>

#include "golden_util.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/text/document_feed.h"

namespace kiln::text {
namespace {

using nlohmann::json;

TfidfOptions options_from_golden(const json& g) {
  TfidfOptions o;
  o.lowercase = g["lowercase"].get<bool>();
  o.analyzer = parse_analyzer(g["analyzer"].get<std::string>());
  o.ngram_min = g["ngram_range"][0].get<int>();
  o.ngram_max = g["ngram_range"][1].get<int>();
  auto df = [](const json& v) {
    return v.is_number_integer() ? DfBound::count(v.get<std::int64_t>()) : DfBound::proportion(v.get<double>());
  };
  o.min_df = df(g["min_df"]);
  o.max_df = df(g["max_df"]);
  o.max_features = g["max_features"].is_null() ? 0 : g["max_features"].get<std::int64_t>();
  o.binary = g["binary"].get<bool>();
  o.norm = g["norm"].is_null() ? Norm::kNone : parse_norm(g["norm"].get<std::string>());
  o.use_idf = g["use_idf"].get<bool>();
  o.smooth_idf = g["smooth_idf"].get<bool>();
  o.sublinear_tf = g["sublinear_tf"].get<bool>();
  o.dtype = parse_dtype(g["dtype"].get<std::string>());
  if (g["mode"] != "tfidf") {
    HashingOptions h;
    h.n_features = g["n_features"].get<std::int64_t>();
    h.alternate_sign = g["alternate_sign"].get<bool>();
    o.hashing = h;
  }
  return o;
}

/// Dense comparison (stored zeros and absent entries are equal), within 1e-6.
template <typename T>
void expect_matrix(const CsrMatrix<T>& m, const json& g, const std::string& name) {
  ASSERT_EQ(m.rows, g["shape"][0].get<std::int64_t>()) << name;
  ASSERT_EQ(m.cols, g["shape"][1].get<std::int64_t>()) << name;
  const auto indptr = g["indptr"].get<std::vector<std::int64_t>>();
  const auto indices = g["indices"].get<std::vector<std::int64_t>>();
  const auto data = g["data"].get<std::vector<double>>();
  ASSERT_EQ(m.indptr.size(), indptr.size()) << name;
  for (std::int64_t r = 0; r < m.rows; ++r) {
    std::map<std::int64_t, double> want, got;
    for (auto e = indptr[r]; e < indptr[r + 1]; ++e) want[indices[e]] = data[e];
    for (auto e = m.indptr[r]; e < m.indptr[r + 1]; ++e) {
      if (e > m.indptr[r]) {
        EXPECT_LT(m.indices[e - 1], m.indices[e]) << name << " row " << r << ": columns must ascend";
      }
      got[m.indices[e]] = static_cast<double>(m.data[e]);
    }
    for (const auto& [c, v] : want) {
      const double have = got.count(c) ? got[c] : 0.0;
      EXPECT_NEAR(have, v, 1e-6) << name << " row " << r << " col " << c;
    }
    for (const auto& [c, v] : got) {
      if (!want.count(c)) {
        EXPECT_EQ(v, 0.0) << name << " row " << r << " col " << c << " not in sklearn's output";
      }
    }
  }
  EXPECT_EQ(m.nnz(), static_cast<std::int64_t>(indices.size())) << name << ": stored entries differ from sklearn";
}

void expect_idf(const TfidfVectorizer& v, const json& g, const std::string& name) {
  const auto idf = g["idf"].get<std::vector<double>>();
  if (idf.empty()) {
    EXPECT_TRUE(v.idf().empty()) << name;
    return;
  }
  ASSERT_EQ(v.idf().size(), idf.size()) << name;
  for (std::size_t c = 0; c < idf.size(); ++c) EXPECT_NEAR(v.idf()[c], idf[c], 1e-6 * idf[c]) << name << " idf " << c;
}

template <typename T>
void check_case(const std::string& name, const json& g, const std::vector<std::string>& docs) {
  TfidfVectorizer v(options_from_golden(g["options"]));
  const CsrMatrix<T> m = v.fit_transform<T>(docs);
  EXPECT_EQ(v.vocabulary(), g["vocabulary"].get<std::vector<std::string>>()) << name;
  expect_idf(v, g, name);
  expect_matrix(m, g, name + " (fit_transform)");
  expect_matrix(v.transform<T>(docs), g, name + " (transform)");
  // The saved state reproduces the same matrix.
  const TfidfVectorizer loaded = TfidfVectorizer::from_json(v.to_json());
  EXPECT_EQ(loaded.vocabulary(), v.vocabulary()) << name;
  expect_matrix(loaded.transform<T>(docs), g, name + " (from_json)");
}

class TfidfGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TfidfGolden, MatchesScikitLearn) {
  const auto corpora = testing::load_golden("corpora.json");
  const auto g = testing::load_golden("case_" + GetParam() + ".json");
  const auto docs = corpora[g["corpus"].get<std::string>()].get<std::vector<std::string>>();
  for (int threads : {1, 2, 3}) {
    core::set_threads(threads);
    if (g["options"]["dtype"] == "float64") {
      check_case<double>(GetParam(), g, docs);
    } else {
      check_case<float>(GetParam(), g, docs);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TfidfGolden,
    ::testing::Values("default", "default_english", "ngram_1_2", "ngram_2_3", "char_wb_2_4", "char_wb_3_5", "char_1_3",
                      "char_2_2_nolower", "min_df_2", "min_df_0_2", "max_df_0_9", "max_df_3", "max_features_ties",
                      "max_features_ties_binary", "max_features_english", "max_features_char", "sublinear_tf",
                      "norm_l1", "norm_none", "no_idf", "no_smooth_idf", "binary", "nolower", "float64",
                      "float64_sublinear_l1", "hashing", "hashing_small", "hashing_no_sign", "hashing_binary_f64",
                      "hashing_tfidf", "hashing_tfidf_small"));

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TfidfOptions, RejectsBadMaxDf) {
  TfidfOptions o;
  o.max_df = DfBound::proportion(1.5);
  EXPECT_EQ(error_of([&] { o.validate(); }), "tfidf.max_df must be in (0, 1] or an integer count >= 1, got 1.5");
  o.max_df = DfBound::count(0);
  EXPECT_EQ(error_of([&] { o.validate(); }), "tfidf.max_df must be in (0, 1] or an integer count >= 1, got 0");
}

TEST(TfidfOptions, RejectsBadMinDf) {
  TfidfOptions o;
  o.min_df = DfBound::proportion(-0.1);
  EXPECT_EQ(error_of([&] { o.validate(); }), "tfidf.min_df must be in [0, 1] or an integer count >= 1, got -0.10000000000000001");
}

TEST(TfidfOptions, RejectsNegativeMaxFeatures) {
  TfidfOptions o;
  o.max_features = -3;
  EXPECT_EQ(error_of([&] { o.validate(); }), "tfidf.max_features must be >= 0 (0 keeps every term), got -3");
}

TEST(TfidfOptions, HashingRejectsPruning) {
  TfidfOptions o;
  o.hashing = HashingOptions{};
  o.min_df = DfBound::count(2);
  EXPECT_EQ(error_of([&] { o.validate(); }),
            "tfidf.hashing has no vocabulary to prune: min_df, max_df and max_features must keep their defaults "
            "(got min_df=2, max_df=1.0, max_features=0)");
}

TEST(TfidfOptions, ParsesDfBounds) {
  EXPECT_TRUE(DfBound::parse("2", "--min-df").is_count);
  EXPECT_FALSE(DfBound::parse("1.0", "--max-df").is_count);
  EXPECT_EQ(DfBound::parse("0.25", "--max-df").value, 0.25);
  EXPECT_EQ(error_of([] { (void)DfBound::parse("two", "--min-df"); }),
            "--min-df must be a proportion like 0.5 (contains '.') or a document count like 2, got 'two'");
  EXPECT_EQ(error_of([] { (void)DfBound::parse("2x", "--min-df"); }),
            "--min-df must be a proportion like 0.5 (contains '.') or a document count like 2, got '2x'");
}

TEST(TfidfVectorizer, MaxDfBelowMinDfIsAnError) {
  TfidfOptions o;
  o.min_df = DfBound::count(3);
  o.max_df = DfBound::proportion(0.5);
  TfidfVectorizer v(o);
  EXPECT_EQ(error_of([&] { v.fit({"aa bb", "aa cc", "bb cc"}); }),
            "tfidf.max_df=0.5 allows fewer documents (1.5) than tfidf.min_df=3 requires (3.0) for 3 documents; "
            "raise max_df or lower min_df");
}

TEST(TfidfVectorizer, EmptyVocabularyIsAnError) {
  TfidfVectorizer v;
  EXPECT_EQ(error_of([&] { v.fit({"a b c", "!!", ""}); }),
            "tfidf: empty vocabulary: no document has a term (the word analyzer keeps tokens of 2 or more letters, "
            "digits or '_'); the documents may be empty or contain only punctuation and single characters");
}

TEST(TfidfVectorizer, NothingLeftAfterPruningIsAnError) {
  TfidfOptions o;
  o.min_df = DfBound::count(2);
  TfidfVectorizer v(o);
  EXPECT_EQ(error_of([&] { v.fit({"aa", "bb"}); }),
            "tfidf: no terms remain after pruning with min_df=2 and max_df=1.0 over 2 documents; lower min_df or "
            "raise max_df");
}

TEST(TfidfVectorizer, TransformIgnoresUnknownTermsAndKeepsEmptyRows) {
  TfidfVectorizer v;
  (void)v.fit_transform<float>({"red green", "green blue"});
  const auto m = v.transform<float>({"purple", "blue blue red"});
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.indptr, (std::vector<std::int64_t>{0, 0, 2}));
}

TEST(TfidfVectorizer, DtypeMismatchIsAnError) {
  TfidfVectorizer v;
  EXPECT_EQ(error_of([&] { (void)v.fit_transform<double>({"aa"}); }),
            "TfidfVectorizer::fit_transform<float64> called but tfidf.dtype is float32");
}

TEST(TfidfVectorizer, TransformBeforeFitIsAnError) {
  TfidfVectorizer v;
  EXPECT_EQ(error_of([&] { (void)v.transform<float>({"aa"}); }),
            "TfidfVectorizer::transform called before fit (or from_json)");
}

TEST(TfidfVectorizer, CjkOptionCountsBigrams) {
  TfidfOptions o;
  o.cjk = true;
  TfidfVectorizer v(o);
  v.fit({"我爱北京", "北京欢迎你"});
  EXPECT_EQ(v.vocabulary(), (std::vector<std::string>{"京欢", "北京", "我爱", "欢迎", "爱北", "迎你"}));
}

// fastText's tokens in TF-IDF, unigrams of ASCII text included (the counting pass has a fast path of
// its own for scikit-learn's unigrams, which must not take these), in memory and from a feed, at 1
// and 2 threads; the option survives to_json/from_json and the state without it reads as before.
TEST(TfidfVectorizer, FasttextTokensCountOneLetterWordsAndPunctuation) {
  const std::vector<std::string> docs = {"A cat, a dog.", "I saw (a) cat!", "x/y"};
  const std::vector<std::string> expected = {"!", "(", ")", ",", ".", "/", "a", "cat", "dog", "i", "saw", "x", "y"};
  const int saved = core::threads();
  for (int threads : {1, 2}) {
    core::set_threads(threads);
    TfidfOptions o;
    o.fasttext_tokens = true;
    TfidfVectorizer v(o);
    const auto m = v.fit_transform<float>(docs);
    EXPECT_EQ(v.vocabulary(), expected) << threads << " threads";
    EXPECT_EQ(m.nnz(), 5 + 7 + 3) << threads << " threads";
    DocumentFeed feed;
    feed.push(docs);
    feed.close();
    TfidfVectorizer fed(o);
    (void)fed.fit_transform<float>(feed);
    EXPECT_EQ(fed.vocabulary(), expected) << threads << " threads, from a feed";
    const auto loaded = TfidfVectorizer::from_json(v.to_json());
    EXPECT_TRUE(loaded.options().fasttext_tokens);
    EXPECT_EQ(loaded.to_json(), v.to_json());
  }
  core::set_threads(saved);
  TfidfVectorizer plain{TfidfOptions{}};
  plain.fit(docs);
  EXPECT_EQ(plain.vocabulary(), (std::vector<std::string>{"cat", "dog", "saw"}));
  EXPECT_FALSE(TfidfVectorizer::from_json(plain.to_json()).options().fasttext_tokens);
  EXPECT_EQ(plain.to_json().find("tokenizer"), std::string::npos) << "the default stays out of the state";
}

TEST(TfidfSerialization, RoundTripsOptionsAndState) {
  TfidfOptions o;
  o.ngram_max = 2;
  o.sublinear_tf = true;
  o.norm = Norm::kL1;
  o.min_df = DfBound::proportion(0.0);
  TfidfVectorizer v(o);
  v.fit({"aa bb cc", "bb cc dd", "cc dd ee"});
  const auto loaded = TfidfVectorizer::from_json(v.to_json());
  EXPECT_EQ(loaded.to_json(), v.to_json());
  EXPECT_EQ(loaded.options().ngram_max, 2);
  EXPECT_FALSE(loaded.options().min_df.is_count);
  EXPECT_EQ(loaded.idf(), v.idf());
}

TEST(TfidfSerialization, RejectsWrongFormat) {
  EXPECT_EQ(error_of([] { (void)TfidfVectorizer::from_json(R"({"format":"other","version":1})"); }),
            "tfidf state: format: expected \"kiln.tfidf\", got \"other\"; the featurizer file is corrupt or was not "
            "written by kiln — refit and save it again");
}

TEST(TfidfSerialization, RejectsNewerVersion) {
  EXPECT_EQ(error_of([] { (void)TfidfVectorizer::from_json(R"({"format":"kiln.tfidf","version":2})"); }),
            "tfidf state: version: this kiln reads version 1, got 2 (written by a newer kiln?); the featurizer file is "
            "corrupt or was not written by kiln — refit and save it again");
}

TEST(TfidfSerialization, RejectsIdfLengthMismatchAndDuplicates) {
  TfidfVectorizer v;
  v.fit({"aa bb", "bb cc"});
  auto j = json::parse(v.to_json());
  j["idf"].push_back(1.5);
  EXPECT_NE(error_of([&] { (void)TfidfVectorizer::from_json(j.dump()); }).find("tfidf state: idf: has 4 values for 3 terms"),
            std::string::npos);
  j = json::parse(v.to_json());
  j["vocabulary"][1] = "aa";
  EXPECT_NE(error_of([&] { (void)TfidfVectorizer::from_json(j.dump()); })
                .find("tfidf state: vocabulary[1]: \"aa\" is a duplicate or out of order"),
            std::string::npos);
  j = json::parse(v.to_json());
  j["options"]["norm"] = "l3";
  EXPECT_NE(error_of([&] { (void)TfidfVectorizer::from_json(j.dump()); }).find("options.norm must be one of l2, l1, none, got 'l3'"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)TfidfVectorizer::from_json("{not json"); }).find("tfidf state: json: not valid JSON"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln::text

namespace kiln::text {
namespace {

/// 3000 documents of mixed lengths: ASCII words of 1 to 20 letters (some capitalized, digits,
/// underscores) and now and then a non-ASCII word, so both analyzer paths, terms past 8 and 16
/// bytes, many work pieces and the per-id tallies (jobs of more than 64 documents) are exercised.
std::vector<std::string> mixed_corpus() {
  std::vector<std::string> docs;
  std::uint64_t state = 12345;
  auto next = [&](std::uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  const char* const extras[] = {"Café", "naïve", "ΟΔΟΣ", "İstanbul", "我爱北京", "snake_case", "3.14", "x"};
  for (int d = 0; d < 3000; ++d) {
    std::string doc;
    const std::uint64_t words = next(d % 50 == 0 ? 400 : 30);
    for (std::uint64_t w = 0; w < words; ++w) {
      if (next(40) == 0) {
        doc += extras[next(8)];
      } else {
        const std::uint64_t len = 1 + next(next(4) == 0 ? 20 : 7);
        for (std::uint64_t c = 0; c < len; ++c) {
          const std::uint64_t r = next(30);
          doc += r < 26 ? static_cast<char>((next(10) == 0 ? 'A' : 'a') + r) : r < 29 ? static_cast<char>('0' + r) : '_';
        }
      }
      doc += next(6) == 0 ? ", " : " ";
    }
    docs.push_back(doc);
  }
  return docs;
}

template <typename T>
void expect_same(const CsrMatrix<T>& a, const CsrMatrix<T>& b, const std::string& what) {
  EXPECT_EQ(a.rows, b.rows) << what;
  EXPECT_EQ(a.cols, b.cols) << what;
  EXPECT_EQ(a.indptr, b.indptr) << what;
  EXPECT_EQ(a.indices, b.indices) << what;
  EXPECT_EQ(a.data, b.data) << what;
}

TEST(TfidfVectorizer, ResultsDoNotDependOnThreadsOrBatchSize) {
  const auto docs = mixed_corpus();
  std::vector<TfidfOptions> variants(4);
  variants[1].max_features = 300;
  variants[2].binary = true;
  variants[2].sublinear_tf = true;
  variants[2].min_df = DfBound::count(2);
  variants[3].ngram_max = 2;
  variants[3].lowercase = false;
  for (std::size_t v = 0; v < variants.size(); ++v) {
    core::set_threads(1);
    TfidfVectorizer one(variants[v]);
    const CsrMatrix<float> want = one.fit_transform<float>(docs);
    // One document at a time takes the small-batch path (ids sorted, no tallies).
    for (std::size_t d = 0; d < docs.size(); d += 97) {
      const CsrMatrix<float> row = one.transform<float>({docs[d]});
      ASSERT_EQ(row.nnz(), want.indptr[d + 1] - want.indptr[d]) << "variant " << v << " doc " << d;
      for (std::int64_t e = 0; e < row.nnz(); ++e) {
        EXPECT_EQ(row.indices[e], want.indices[want.indptr[d] + e]) << "variant " << v << " doc " << d;
        EXPECT_EQ(row.data[e], want.data[want.indptr[d] + e]) << "variant " << v << " doc " << d;
      }
    }
    for (int threads : {2, 3, 5}) {
      core::set_threads(threads);
      TfidfVectorizer many(variants[v]);
      const std::string what = "variant " + std::to_string(v) + ", " + std::to_string(threads) + " threads";
      expect_same(many.fit_transform<float>(docs), want, what + " (fit_transform)");
      EXPECT_EQ(many.vocabulary(), one.vocabulary()) << what;
      EXPECT_EQ(many.idf(), one.idf()) << what;
      expect_same(many.transform<float>(docs), want, what + " (transform)");
    }
  }
  core::set_threads(1);
}

TEST(DocumentFeed, HandsOutEachPieceOnceInOrderAndEndsAfterClose) {
  DocumentFeed feed;
  std::vector<std::vector<const DocumentFeed::Piece*>> got(3);
  std::vector<std::thread> takers;
  for (auto& mine : got) {
    takers.emplace_back([&feed, &mine] {
      while (const DocumentFeed::Piece* p = feed.take()) mine.push_back(p);
    });
  }
  std::size_t pushed = 0;
  for (std::size_t i = 0; i < 40; ++i) {
    std::vector<std::string> docs(i % 5, "doc " + std::to_string(i));  // every 5th is empty: no piece
    pushed += docs.size();
    feed.push(docs);
    if (i % 7 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // takers wait
  }
  feed.close();
  for (auto& t : takers) t.join();
  std::vector<const DocumentFeed::Piece*> all;
  for (const auto& mine : got) {
    for (std::size_t k = 1; k < mine.size(); ++k) EXPECT_LT(mine[k - 1]->index, mine[k]->index);  // taken in order
    all.insert(all.end(), mine.begin(), mine.end());
  }
  std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->index < b->index; });
  ASSERT_EQ(all.size(), 32u);  // 40 pushes, 8 of them empty
  ASSERT_EQ(feed.pieces(), 32u);
  EXPECT_EQ(feed.documents(), pushed);
  std::size_t first = 0;
  for (std::size_t k = 0; k < all.size(); ++k) {
    EXPECT_EQ(all[k]->index, k);
    EXPECT_EQ(all[k]->first_doc, first);
    EXPECT_FALSE(all[k]->docs.empty());
    first += all[k]->docs.size();
  }
  EXPECT_EQ(feed.take(), nullptr);  // closed and all taken: no waiting
}

TEST(DocumentFeed, ARecycledPiecesBuffersCarryTheNextDocuments) {
  DocumentFeed feed;
  DocumentFeed::Piece first = feed.piece();
  first.add("a short one");
  first.add("");
  first.add(std::string(100, 'x'));
  feed.push(std::move(first));
  const DocumentFeed::Piece* p = feed.take();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->docs, (std::vector<std::string_view>{"a short one", "", std::string(100, 'x')}));
  feed.recycle(p);
  EXPECT_TRUE(p->docs.empty());
  DocumentFeed::Piece second = feed.piece();  // the first one's buffers, emptied
  EXPECT_EQ(second.size(), 0u);
  EXPECT_EQ(second.text_bytes(), 0u);
  second.add("b");
  second.add("cc");
  feed.push(std::move(second));
  feed.push(DocumentFeed::Piece{});  // empty: no piece
  feed.close();
  const DocumentFeed::Piece* q = feed.take();
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->docs, (std::vector<std::string_view>{"b", "cc"}));
  EXPECT_EQ(q->index, 1u);
  EXPECT_EQ(q->first_doc, 3u);
  EXPECT_EQ(feed.take(), nullptr);
  EXPECT_EQ(feed.documents(), 5u);
}

TEST(TfidfVectorizer, FitFromAFeedEqualsFitOnAllDocuments) {
  const auto docs = mixed_corpus();
  std::vector<TfidfOptions> variants(3);
  variants[1].max_features = 300;
  variants[1].binary = true;
  variants[2].ngram_max = 2;
  variants[2].min_df = DfBound::count(2);
  variants[2].sublinear_tf = true;
  for (std::size_t v = 0; v < variants.size(); ++v) {
    core::set_threads(1);
    TfidfVectorizer one(variants[v]);
    const CsrMatrix<float> want = one.fit_transform<float>(docs);
    for (int threads : {2, 3, 5}) {
      core::set_threads(threads);
      DocumentFeed feed;
      // Pieces of 1, 2, 4, ... 64 documents, pushed while the fit runs.
      std::thread reader([&] {
        std::size_t d = 0;
        for (std::size_t size = 1; d < docs.size(); size = size < 64 ? 2 * size : 1) {
          const std::size_t end = std::min(docs.size(), d + size);
          DocumentFeed::Piece piece = feed.piece();
          for (std::size_t k = d; k < end; ++k) piece.add(docs[k]);
          feed.push(std::move(piece));
          d = end;
        }
        feed.close();
      });
      TfidfVectorizer fed(variants[v]);
      const CsrMatrix<float> got = fed.fit_transform<float>(feed);
      reader.join();
      const std::string what = "variant " + std::to_string(v) + ", " + std::to_string(threads) + " threads";
      expect_same(got, want, what);
      EXPECT_EQ(fed.vocabulary(), one.vocabulary()) << what;
      EXPECT_EQ(fed.idf(), one.idf()) << what;
      EXPECT_EQ(fed.n_documents(), one.n_documents()) << what;
    }
  }
  TfidfOptions hashed;
  hashed.hashing = HashingOptions{};
  DocumentFeed feed;
  feed.close();
  EXPECT_EQ(error_of([&] { (void)TfidfVectorizer(hashed).fit_transform<float>(feed); }),
            "tfidf: fitting from a document feed needs vocabulary mode, not hashing");
  core::set_threads(1);
}

}  // namespace
}  // namespace kiln::text
