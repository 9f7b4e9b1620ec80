// kiln tfidf: fit a TF-IDF (or hashed) featurizer on one text column and write
// DIR/{matrix.npz (or matrix.mtx), vocabulary.txt, idf.txt, tfidf.json}, whole or not at all.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/core/process_memory.h"
#include "kiln/text/tfidf_files.h"
#include "output_dir.h"
#include "verbs.h"

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
  std::string matrix_format = "npz";
  bool timings = false;
  std::string out;
};

text::TfidfOptions options_from_flags(const TfidfFlags& f) {
  text::TfidfOptions o;
  o.lowercase = !f.no_lowercase;
  o.analyzer = text::parse_analyzer(f.analyzer, "--analyzer");
  std::tie(o.ngram_min, o.ngram_max) = text::parse_ngram_range(f.ngram_range, "--ngram-range");
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

void run_tfidf(const TfidfFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  core::keep_heap_for_batch();
  text::TfidfFilesOptions options;
  options.tfidf = options_from_flags(f);
  options.matrix_format = text::parse_matrix_format(f.matrix_format, "--matrix-format");
  check_output_dir(f.out, "tfidf.json", "kiln tfidf");
  options.reader.format = data::parse_format(f.format);
  options.reader.on_bad_utf8 = data::parse_bad_utf8_policy(f.on_bad_utf8);
  options.text_col = f.text_col;
  const text::TfidfFilesReport r = text::fit_tfidf_files(f.input, f.out, options);
  if (f.timings) {
    const double mb = static_cast<double>(r.text_bytes) / 1e6;
    std::fprintf(stderr,
                 "timings: read %.3f s, fit_transform %.3f s%s, write %.3f s (%d threads); text %.1f MB, "
                 "fit_transform %.1f MB/s, %.1f MB/s per thread\n",
                 r.read_s, r.fit_s, r.fit_overlaps_read ? " (from the start of reading, which it overlaps)" : "",
                 r.write_s, core::threads(), mb, mb / r.fit_s, mb / r.fit_s / core::threads());
  }
  const std::string columns = options.tfidf.hashing ? "hashed columns " + std::to_string(r.columns)
                                                    : "vocabulary " + std::to_string(r.columns);
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("tfidf: %lld docs, %s, nnz %lld, %.3f s -> %s\n", static_cast<long long>(r.documents), columns.c_str(),
              static_cast<long long>(r.nnz), total_s, r.out_dir.c_str());
}

}  // namespace

void add_tfidf(CLI::App& app) {
  auto flags = std::make_shared<TfidfFlags>();
  auto* cmd = app.add_subcommand(
      "tfidf",
      "Fit TF-IDF features (identical to scikit-learn's TfidfVectorizer) on a text column and write "
      "DIR/matrix.npz (or matrix.mtx), vocabulary.txt, idf.txt and tfidf.json");
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
  cmd->add_option("--matrix-format", flags->matrix_format,
                  "The matrix file: npz (matrix.npz, binary CSR for scipy.sparse.load_npz) or mtx (matrix.mtx, "
                  "Matrix Market text)")
      ->capture_default_str();
  cmd->add_flag("--timings", flags->timings,
                "Print a read / fit_transform / write time breakdown and fit_transform's MB/s of text to stderr");
  cmd->add_option("--out", flags->out, "Output directory (replaced whole if it holds an earlier tfidf output)")
      ->required();
  cmd->callback([flags]() { run_tfidf(*flags); });
}

}  // namespace kiln::cli
