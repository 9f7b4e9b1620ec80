// fit_tfidf_files and its writers (what `kiln tfidf` runs): the files and their formats, and the
// bad-input paths.
#include "kiln/text/tfidf_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <type_traits>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"

namespace fs = std::filesystem;

namespace kiln::text {
namespace {

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("kiln_tfidf_files_test_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return dir;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string write_file(const std::string& name, const std::string& content) {
  const fs::path p = temp_dir() / name;
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TfidfFiles, NgramRangeParsesMinMaxAndNamesTheFieldOtherwise) {
  EXPECT_EQ(parse_ngram_range("1,2", "--ngram-range"), std::make_pair(1, 2));
  EXPECT_EQ(parse_ngram_range("3,3", "x"), std::make_pair(3, 3));
  for (const char* bad : {"2,1", "0,1", "1", "1,2,3", "a,b", " 1,2", ""}) {
    EXPECT_EQ(error_of([&] { (void)parse_ngram_range(bad, "--ngram-range"); }),
              std::string("--ngram-range must be MIN,MAX with 1 <= MIN <= MAX (e.g. 1,2), got '") + bad + "'");
  }
}

TEST(TfidfFiles, MatrixMarketIsOneBasedWithShortestValues) {
  CsrMatrix<float> m;
  m.rows = 3;
  m.cols = 4;
  m.indptr = {0, 2, 2, 3};
  m.indices = {0, 3, 1};
  m.data = {0.5f, 0.1f, 1.0f};
  const fs::path p = temp_dir() / "m.mtx";
  write_matrix_market(p, m);
  EXPECT_EQ(read(p), "%%MatrixMarket matrix coordinate real general\n3 4 3\n1 1 0.5\n1 4 0.100000001\n3 2 1\n");
  // Missing folders are created; a file in the way is an error naming the output.
  std::ofstream(temp_dir() / "not-a-dir") << "x";
  const std::string error = error_of([&] { write_matrix_market(temp_dir() / "not-a-dir" / "m.mtx", m); });
  EXPECT_NE(error.find("writing " + (temp_dir() / "not-a-dir" / "m.mtx").string() + ": cannot create directory"),
            std::string::npos)
      << error;
}

// The reference: one snprintf per entry. The matrix spans several write batches (one row longer than
// a batch, empty rows), with and without the per-column text table (cols > nnz skips it).
template <typename T>
void expect_matrix_market_matches_printf(std::int64_t cols) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(cols));
  CsrMatrix<T> m;
  m.cols = cols;
  m.rows = 3000;
  for (std::int64_t r = 0; r < m.rows; ++r) {
    const std::uint64_t len = r == 7 ? 70000 : r % 5 == 0 ? 0 : rng() % 120;
    for (std::uint64_t i = 0; i < len; ++i) {
      m.indices.push_back(static_cast<int>(rng() % static_cast<std::uint64_t>(cols)));
      const auto bits = rng();
      T v = std::uniform_real_distribution<T>(0, 1)(rng);
      if (bits % 7 == 0) std::memcpy(&v, &bits, sizeof v);  // any value: negative, huge, denormal, nan
      m.data.push_back(v);
    }
    m.indptr.push_back(static_cast<std::int64_t>(m.indices.size()));
  }
  std::string want = "%%MatrixMarket matrix coordinate real general\n" + std::to_string(m.rows) + " " +
                     std::to_string(m.cols) + " " + std::to_string(m.nnz()) + "\n";
  for (std::int64_t r = 0; r < m.rows; ++r) {
    for (std::int64_t e = m.indptr[r]; e < m.indptr[r + 1]; ++e) {
      char line[96];
      std::snprintf(line, sizeof line, std::is_same_v<T, float> ? "%lld %d %.9g\n" : "%lld %d %.17g\n",
                    static_cast<long long>(r + 1), m.indices[e] + 1, static_cast<double>(m.data[e]));
      want += line;
    }
  }
  const fs::path p = temp_dir() / "big.mtx";
  write_matrix_market(p, m);
  EXPECT_TRUE(read(p) == want) << "cols " << cols;  // not EXPECT_EQ: megabytes of diff
}

TEST(TfidfFiles, MatrixMarketOfManyBatchesMatchesPrintf) {
  expect_matrix_market_matches_printf<float>(5000);
  expect_matrix_market_matches_printf<float>(100000000);
  expect_matrix_market_matches_printf<double>(37);
}

TEST(TfidfFiles, LinesWriters) {
  EXPECT_EQ(vocabulary_lines({"a", "bc"}), "a\nbc\n");
  EXPECT_EQ(idf_lines({1.0, 0.1}, false), "1\n0.10000000000000001\n");
  EXPECT_EQ(idf_lines({1.0, 0.1}, true), "1\n0.100000001\n");
}

TEST(TfidfFiles, WritesEveryFileForAVocabulary) {
  const std::string in = write_file("docs.csv", "text,label\nthe cat,a\nthe dog,b\n");
  TfidfFilesOptions o;
  o.tfidf.norm = Norm::kNone;
  const fs::path out = temp_dir() / "out";
  const TfidfFilesReport r = fit_tfidf_files(in, out / "", o);
  EXPECT_EQ(r.documents, 2);
  EXPECT_EQ(r.columns, 3);
  EXPECT_EQ(r.nnz, 4);
  EXPECT_EQ(r.text_bytes, 14);
  EXPECT_EQ(r.out_dir, out.string());
  EXPECT_EQ(read(out / "vocabulary.txt"), "cat\ndog\nthe\n");
  // idf = ln((1 + 2) / (1 + df)) + 1
  EXPECT_EQ(read(out / "idf.txt"), "1.40546513\n1.40546513\n1\n");
  // matrix.npz by default: a zip whose first entry is format.npy (b"csr"), then shape, data, indices
  // and indptr (tests/cli/tfidf_test.sh loads it with scipy.sparse.load_npz).
  const std::string npz = read(out / "matrix.npz");
  EXPECT_EQ(npz.substr(0, 4), "PK\x03\x04");
  EXPECT_EQ(npz.substr(30, 10), "format.npy");
  for (const char* entry : {"shape.npy", "data.npy", "indices.npy", "indptr.npy"}) {
    EXPECT_NE(npz.find(entry), std::string::npos) << entry;
  }
  EXPECT_FALSE(fs::exists(out / "matrix.mtx"));
  EXPECT_TRUE(fs::exists(out / "tfidf.json"));

  o.matrix_format = MatrixFormat::kMtx;
  (void)fit_tfidf_files(in, out, o);
  EXPECT_EQ(read(out / "matrix.mtx").substr(0, 52), "%%MatrixMarket matrix coordinate real general\n2 3 4\n");
  EXPECT_FALSE(fs::exists(out / "matrix.npz")) << "the directory is replaced whole";
}

TEST(TfidfFiles, MatrixFormatNamesAreParsedAndBadOnesNamed) {
  EXPECT_EQ(parse_matrix_format("npz", "--matrix-format"), MatrixFormat::kNpz);
  EXPECT_EQ(parse_matrix_format("mtx", "--matrix-format"), MatrixFormat::kMtx);
  EXPECT_EQ(error_of([] { (void)parse_matrix_format("MTX", "--matrix-format"); }),
            "--matrix-format must be npz (scipy.sparse.load_npz) or mtx (Matrix Market text), got 'MTX'");
  EXPECT_STREQ(matrix_file_name(MatrixFormat::kNpz), "matrix.npz");
  EXPECT_STREQ(matrix_file_name(MatrixFormat::kMtx), "matrix.mtx");
}

TEST(TfidfFiles, HashingWritesNoVocabularyAndNoIdfWithoutIt) {
  const std::string in = write_file("docs.jsonl", "{\"body\": \"a b\"}\n{\"body\": \"b c\"}\n");
  TfidfFilesOptions o;
  o.text_col = "body";
  o.tfidf.use_idf = false;
  HashingOptions h;
  h.n_features = 16;
  o.tfidf.hashing = h;
  const fs::path out = temp_dir() / "hashed";
  const TfidfFilesReport r = fit_tfidf_files(in, out, o);
  EXPECT_EQ(r.columns, 16);
  EXPECT_FALSE(fs::exists(out / "vocabulary.txt"));
  EXPECT_FALSE(fs::exists(out / "idf.txt"));
  EXPECT_TRUE(fs::exists(out / "matrix.npz"));
}

TEST(TfidfFiles, NoRowsIsADataErrorAndWritesNothing) {
  const std::string in = write_file("empty.jsonl", "[]");
  TfidfFilesOptions o;
  o.reader.format = data::Format::kJson;
  const fs::path out = temp_dir() / "never";
  EXPECT_EQ(error_of([&] { (void)fit_tfidf_files(in, out, o); }),
            in + ": no rows; kiln tfidf needs at least one document");
  EXPECT_FALSE(fs::exists(out));
}

TEST(TfidfFiles, InvalidOptionsAreRejectedBeforeReading) {
  TfidfFilesOptions o;
  o.tfidf.max_df = DfBound::proportion(1.5);
  EXPECT_EQ(error_of([&] { (void)fit_tfidf_files("/nonexistent.csv", temp_dir() / "bad", o); }),
            "tfidf.max_df must be in (0, 1] or an integer count >= 1, got 1.5");
}

// With more than one thread the documents are counted while they are read (pieces of at least
// 64 KiB of text); with one, read first. The files and the errors do not depend on which.
TEST(TfidfFiles, ReadingWhileFittingWritesTheSameFilesAndGivesTheSameErrors) {
  std::mt19937 rng(7);
  const char* words[] = {"ember", "glaze", "kiln", "clay", "fire", "slip", "bisque", "cone", "ash", "wheel"};
  std::string csv = "text,label\n";
  for (int d = 0; d < 6000; ++d) {
    std::string text;
    for (int w = 0; w < 4 + d % 9; ++w) text += std::string(words[rng() % 10]) + std::to_string(rng() % 50) + " ";
    csv += "\"" + text + "\"," + std::to_string(d % 3) + "\n";
  }
  ASSERT_GT(csv.size(), std::size_t{3} << 16);  // several pieces
  const std::string good = write_file("pieces.csv", csv);
  const std::string bad = write_file("late_error.csv", csv + "\"never closed,1\n");
  const std::string blank = write_file("blank.csv", "text,label\n,a\n\" \",b\n");
  const std::string header = write_file("header_only.csv", "text,label\n");
  TfidfFilesOptions o;
  o.tfidf.ngram_max = 2;
  o.tfidf.max_features = 200;
  const int before = core::threads();
  std::map<std::string, std::string> want;
  for (int threads : {1, 2, 3}) {
    core::set_threads(threads);
    const std::string what = std::to_string(threads) + " threads";
    const fs::path out = temp_dir() / ("pieces_" + std::to_string(threads));
    const TfidfFilesReport r = fit_tfidf_files(good, out, o);
    EXPECT_EQ(r.documents, 6000) << what;
    EXPECT_EQ(r.fit_overlaps_read, threads > 1) << what;
    for (const char* name : {"matrix.npz", "vocabulary.txt", "idf.txt", "tfidf.json"}) {
      if (threads == 1) {
        want[name] = read(out / name);
      } else {
        EXPECT_EQ(read(out / name), want[name]) << name << ", " << what;
      }
    }
    for (const auto& [input, error] : std::map<std::string, std::string>{
             {bad, ":6003:1: unterminated quoted field (opened at 6002:1)"},
             {blank, "empty vocabulary"},
             {header, header + ": no rows; kiln tfidf needs at least one document"}}) {
      const fs::path never = temp_dir() / ("never_" + std::to_string(threads));
      const std::string message = error_of([&] { (void)fit_tfidf_files(input, never, o); });
      EXPECT_NE(message.find(error), std::string::npos) << message << ", " << what;
      if (threads == 1) {
        want[input] = message;
      } else {
        EXPECT_EQ(message, want[input]) << what;
      }
      EXPECT_FALSE(fs::exists(never)) << input << ", " << what;
    }
  }
  core::set_threads(before);
}

}  // namespace
}  // namespace kiln::text
