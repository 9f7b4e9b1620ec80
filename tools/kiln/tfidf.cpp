// kiln tfidf: fit a TF-IDF (or hashed) featurizer on one text column and write
// DIR/{matrix.mtx, vocabulary.txt, idf.txt, tfidf.json}, whole or not at all.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/atomic_output.h"
#include "kiln/core/decimal.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/data/reader.h"
#include "kiln/text/tfidf.h"
#include "output_dir.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace kiln::cli {
namespace {

struct TfidfFlags {
  std::string input;
  std::string format = "auto";
  std::string text_col = "text";
  std::string on_bad_utf8 = "error";
  std::string analyzer = "word";
  std::string ngram_range = "1,1";
  std::string min_df = "1";
  std::string max_df = "1.0";
  std::int64_t max_features = 0;
  bool binary = false;
  std::string norm = "l2";
  bool no_idf = false;
  bool no_smooth_idf = false;
  bool sublinear_tf = false;
  bool no_lowercase = false;
  bool cjk = false;
  std::int64_t hashing = 0;
  bool no_alternate_sign = false;
  std::string dtype = "float32";
  bool timings = false;
  std::string out;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::pair<int, int> parse_ngram_range(const std::string& s) {
  auto fail = [&]() -> std::pair<int, int> {
    throw ConfigError("--ngram-range must be MIN,MAX with 1 <= MIN <= MAX (e.g. 1,2), got '" + s + "'");
  };
  const auto comma = s.find(',');
  if (comma == std::string::npos) return fail();
  int lo = 0, hi = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto r1 = std::from_chars(b, b + comma, lo);
  auto r2 = std::from_chars(b + comma + 1, e, hi);
  if (r1.ec != std::errc() || r1.ptr != b + comma || r2.ec != std::errc() || r2.ptr != e) return fail();
  if (lo < 1 || hi < lo) return fail();
  return {lo, hi};
}

text::TfidfOptions options_from_flags(const TfidfFlags& f) {
  text::TfidfOptions o;
  o.lowercase = !f.no_lowercase;
  o.analyzer = text::parse_analyzer(f.analyzer, "--analyzer");
  std::tie(o.ngram_min, o.ngram_max) = parse_ngram_range(f.ngram_range);
  o.cjk = f.cjk;
  o.min_df = text::DfBound::parse(f.min_df, "--min-df");
  o.max_df = text::DfBound::parse(f.max_df, "--max-df");
  if (f.max_features < 0) {
    throw ConfigError("--max-features must be >= 0 (0 keeps every term), got " + std::to_string(f.max_features));
  }
  o.max_features = f.max_features;
  o.binary = f.binary;
  o.norm = text::parse_norm(f.norm, "--norm");
  o.use_idf = !f.no_idf;
  o.smooth_idf = !f.no_smooth_idf;
  o.sublinear_tf = f.sublinear_tf;
  o.dtype = text::parse_dtype(f.dtype, "--dtype");
  if (f.no_alternate_sign && f.hashing == 0) {
    throw ConfigError("--no-alternate-sign applies to --hashing only; add --hashing N or drop it");
  }
  if (f.hashing != 0) {
    if (f.hashing < 1 || f.hashing > 2147483647) {
      throw ConfigError("--hashing must be a column count in [1, 2147483647], got " + std::to_string(f.hashing));
    }
    if (f.min_df != "1" || f.max_df != "1.0" || f.max_features != 0) {
      throw ConfigError("--hashing has no vocabulary to prune: drop --min-df, --max-df and --max-features");
    }
    text::HashingOptions h;
    h.n_features = f.hashing;
    h.alternate_sign = !f.no_alternate_sign;
    o.hashing = h;
  }
  o.validate();
  return o;
}

/// Matrix Market coordinate file, 1-based; values as printf's %.9g (float) or %.17g (double).
/// Rows are formatted in parallel, each chunk into one uninitialized buffer.
template <typename T>
void write_mtx(const fs::path& path, const text::CsrMatrix<T>& m) {
  struct Part {
    std::unique_ptr<char[]> bytes;
    std::size_t size = 0;
  };
  const auto rows = static_cast<std::size_t>(m.rows);
  std::vector<Part> parts(core::chunk_count(rows));
  core::parallel_chunks(rows, [&](std::size_t begin, std::size_t end, std::size_t k) {
    constexpr std::size_t kIndexChars = 20;  // a 1-based int64 index and its separator
    const std::size_t entries = static_cast<std::size_t>(m.indptr[end] - m.indptr[begin]);
    Part& part = parts[k];
    part.bytes.reset(new char[entries * (2 * kIndexChars + core::kGeneralMaxChars + 1) + 1]);
    char* p = part.bytes.get();
    for (std::size_t r = begin; r < end; ++r) {
      char row[kIndexChars + 1];
      char* row_end = std::to_chars(row, row + kIndexChars, static_cast<std::int64_t>(r) + 1).ptr;
      *row_end++ = ' ';
      const auto row_len = static_cast<std::size_t>(row_end - row);
      for (std::int64_t e = m.indptr[r]; e < m.indptr[r + 1]; ++e) {
        std::memcpy(p, row, row_len);
        p += row_len;
        p = std::to_chars(p, p + kIndexChars, static_cast<std::int64_t>(m.indices[e]) + 1).ptr;
        *p++ = ' ';
        p = core::write_general(p, m.data[e]);
        *p++ = '\n';
      }
    }
    part.size = static_cast<std::size_t>(p - part.bytes.get());
  });
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw IoError(path.string() + ": cannot create; check that the directory is writable");
  std::string header = "%%MatrixMarket matrix coordinate real general\n" + std::to_string(m.rows) + " " +
                       std::to_string(m.cols) + " " + std::to_string(m.nnz()) + "\n";
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const auto& part : parts) ok = ok && std::fwrite(part.bytes.get(), 1, part.size, f) == part.size;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw IoError(path.string() + ": write failed (disk full?)");
}

std::string lines(const std::vector<std::string>& terms) {
  std::string s;
  std::size_t total = 0;
  for (const auto& t : terms) total += t.size() + 1;
  s.reserve(total);
  for (const auto& t : terms) {
    s += t;
    s += '\n';
  }
  return s;
}

std::string idf_lines(const std::vector<double>& idf, bool is_float) {
  std::string s;
  s.resize(idf.size() * (core::kGeneralMaxChars + 1));
  char* p = s.data();
  for (double v : idf) {
    p = is_float ? core::write_general(p, static_cast<float>(v)) : core::write_general(p, v);
    *p++ = '\n';
  }
  s.resize(static_cast<std::size_t>(p - s.data()));
  return s;
}

template <typename T>
void run_typed(const TfidfFlags& f, text::TfidfVectorizer& v, const std::vector<std::string>& docs,
               Clock::time_point start, double read_s) {
  auto t = Clock::now();
  const text::CsrMatrix<T> m = v.fit_transform<T>(docs);
  const double fit_s = seconds_since(t);
  t = Clock::now();
  core::AtomicDirectory out(f.out);
  write_mtx(out.path() / "matrix.mtx", m);
  if (!v.options().hashing) core::write_file_atomic(out.path() / "vocabulary.txt", lines(v.vocabulary()));
  if (v.options().use_idf) {
    core::write_file_atomic(out.path() / "idf.txt", idf_lines(v.idf(), std::is_same_v<T, float>));
  }
  core::write_file_atomic(out.path() / "tfidf.json", v.to_json() + "\n");
  out.commit();
  const double write_s = seconds_since(t);
  if (f.timings) {
    double mb = 0;
    for (const auto& d : docs) mb += static_cast<double>(d.size());
    mb /= 1e6;
    std::fprintf(stderr,
                 "timings: read %.3f s, fit_transform %.3f s, write %.3f s (%d threads); text %.1f MB, "
                 "fit_transform %.1f MB/s, %.1f MB/s per thread\n",
                 read_s, fit_s, write_s, core::threads(), mb, mb / fit_s, mb / fit_s / core::threads());
  }
  const std::string columns = v.options().hashing ? "hashed columns " + std::to_string(v.n_columns())
                                                  : "vocabulary " + std::to_string(v.n_columns());
  std::printf("tfidf: %lld docs, %s, nnz %lld, %.3f s -> %s\n", static_cast<long long>(m.rows), columns.c_str(),
              static_cast<long long>(m.nnz()), seconds_since(start), out.target().c_str());
}

void run_tfidf(const TfidfFlags& f) {
  const auto start = Clock::now();
  text::TfidfOptions options = options_from_flags(f);
  check_output_dir(f.out, "tfidf.json", "kiln tfidf");
  data::ReaderOptions ro;
  ro.format = data::parse_format(f.format);
  ro.on_bad_utf8 = data::parse_bad_utf8_policy(f.on_bad_utf8);
  auto t = Clock::now();
  const std::vector<std::string> docs = data::read_column(f.input, ro, f.text_col);
  const double read_s = seconds_since(t);
  if (docs.empty()) throw DataError(f.input + ": no rows; kiln tfidf needs at least one document");
  text::TfidfVectorizer v(options);
  if (options.dtype == text::Dtype::kFloat32) {
    run_typed<float>(f, v, docs, start, read_s);
  } else {
    run_typed<double>(f, v, docs, start, read_s);
  }
}

}  // namespace

void add_tfidf(CLI::App& app) {
  auto flags = std::make_shared<TfidfFlags>();
  auto* cmd = app.add_subcommand(
      "tfidf",
      "Fit TF-IDF features (identical to scikit-learn's TfidfVectorizer) on a text column and write "
      "DIR/matrix.mtx, vocabulary.txt, idf.txt and tfidf.json");
  cmd->add_option("--input", flags->input, "Input file (CSV, TSV, JSONL or JSON)")->required();
  cmd->add_option("--format", flags->format, "Input format: auto (by extension), csv, tsv, jsonl, json")
      ->capture_default_str();
  cmd->add_option("--text-col", flags->text_col, "Column (CSV/TSV) or key (JSON) holding the text")
      ->capture_default_str();
  cmd->add_option("--on-bad-utf8", flags->on_bad_utf8, "Invalid UTF-8 in the text: error, replace or skip")
      ->capture_default_str();
  cmd->add_option("--analyzer", flags->analyzer,
                  "word (tokens of 2+ letters/digits/_), char (character n-grams) or char_wb (n-grams inside words)")
      ->capture_default_str();
  cmd->add_option("--ngram-range", flags->ngram_range, "MIN,MAX n-gram lengths (words or characters)")
      ->capture_default_str();
  cmd->add_option("--min-df", flags->min_df,
                  "Drop terms in fewer documents: a proportion if it contains '.', e.g. 0.01, else a count, e.g. 2")
      ->capture_default_str();
  cmd->add_option("--max-df", flags->max_df,
                  "Drop terms in more documents: a proportion if it contains '.', e.g. 0.9, else a count")
      ->capture_default_str();
  cmd->add_option("--max-features", flags->max_features, "Keep the N most frequent terms; 0 keeps all")
      ->capture_default_str();
  cmd->add_flag("--binary", flags->binary, "Count presence (0/1) instead of occurrences");
  cmd->add_option("--norm", flags->norm, "Row normalization: l2, l1 or none")->capture_default_str();
  cmd->add_flag("--no-idf", flags->no_idf, "Do not multiply by idf");
  cmd->add_flag("--no-smooth-idf", flags->no_smooth_idf, "idf = ln(n/df) + 1 instead of ln((1+n)/(1+df)) + 1");
  cmd->add_flag("--sublinear-tf", flags->sublinear_tf, "tf = 1 + ln(tf)");
  cmd->add_flag("--no-lowercase", flags->no_lowercase, "Keep case (default: lowercase as Python's str.lower())");
  cmd->add_flag("--cjk", flags->cjk, "Split runs of Chinese/Japanese/Korean characters into character bigrams");
  cmd->add_option("--hashing", flags->hashing,
                  "Hash terms into N columns (scikit-learn's HashingVectorizer) instead of fitting a vocabulary; "
                  "0 = off")
      ->capture_default_str();
  cmd->add_flag("--no-alternate-sign", flags->no_alternate_sign, "With --hashing: count every term as +1");
  cmd->add_option("--dtype", flags->dtype, "Arithmetic and output precision: float32 or float64")
      ->capture_default_str();
  cmd->add_flag("--timings", flags->timings,
                "Print a read / fit_transform / write time breakdown and fit_transform's MB/s of text to stderr");
  cmd->add_option("--out", flags->out, "Output directory (replaced whole if it holds an earlier tfidf output)")
      ->required();
  cmd->callback([flags]() { run_tfidf(*flags); });
}

}  // namespace kiln::cli
