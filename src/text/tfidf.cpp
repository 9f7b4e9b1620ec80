#include "kiln/text/tfidf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "document_counts.h"
#include "numpy_argsort.h"
#include "row_builder.h"
#include "term_table.h"

namespace kiln::text {

struct TfidfVectorizer::Lookup {
  TermTable terms;
};

namespace {

using detail::count_documents;
using detail::RowCounts;

std::string format_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

/// Per-chunk vocabulary-mode counts: chunk-local term ids.
struct ChunkVocab {
  TermTable table;
  RowCounts rows;
};

/// Weights every row of every chunk (column remap, tf transform, idf, norm) as scikit-learn's
/// TfidfTransformer does in precision T, and concatenates the chunks.
template <typename T>
CsrMatrix<T> build_matrix(const TfidfOptions& o, const std::vector<RowCounts>& chunks,
                          const std::vector<const std::vector<std::int32_t>*>& remaps, const std::vector<double>& idf,
                          std::int64_t cols) {
  // idf in precision T, converted per entry: copying the whole vector would cost O(vocabulary)
  // per call (a served request of one text).
  const double* idf_t = idf.data();
  const bool use_idf = o.use_idf;
  // scikit-learn's sparse X * diag(idf) drops entries that became zero (hashing mode only).
  const bool drop_zeros = use_idf;
  std::vector<CsrMatrix<T>> pieces(chunks.size());
  core::parallel_chunks(
      chunks.size(),
      [&](std::size_t cb, std::size_t ce, std::size_t) {
        std::vector<std::pair<std::int32_t, std::int32_t>> row;
        for (std::size_t k = cb; k < ce; ++k) {
          const RowCounts& rc = chunks[k];
          const std::vector<std::int32_t>* remap = remaps[k];
          CsrMatrix<T>& piece = pieces[k];
          piece.indices.reserve(rc.cols.size());
          piece.data.reserve(rc.cols.size());
          for (std::size_t r = 0; r + 1 < rc.indptr.size(); ++r) {
            row.clear();
            for (std::int64_t e = rc.indptr[r]; e < rc.indptr[r + 1]; ++e) {
              std::int32_t col = remap ? (*remap)[rc.cols[e]] : rc.cols[e];
              if (col >= 0) row.emplace_back(col, rc.counts[e]);
            }
            std::sort(row.begin(), row.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
            const std::size_t start = piece.data.size();
            for (const auto& [col, cnt] : row) {
              T x = o.binary ? T(1) : static_cast<T>(cnt);
              if (o.sublinear_tf) x = std::log(x) + T(1);
              if (use_idf) x = x * static_cast<T>(idf_t[col]);
              if (drop_zeros && x == T(0)) continue;
              piece.indices.push_back(col);
              piece.data.push_back(x);
            }
            T* v = piece.data.data() + start;
            const std::size_t m = piece.data.size() - start;
            if (o.norm == Norm::kL2) {
              double sum = 0.0;
              for (std::size_t j = 0; j < m; ++j) sum += static_cast<T>(v[j] * v[j]);
              if (sum != 0.0) {
                sum = std::sqrt(sum);
                for (std::size_t j = 0; j < m; ++j) v[j] = static_cast<T>(static_cast<double>(v[j]) / sum);
              }
            } else if (o.norm == Norm::kL1) {
              double sum = 0.0;
              for (std::size_t j = 0; j < m; ++j) sum += std::fabs(v[j]);
              if (sum != 0.0) {
                for (std::size_t j = 0; j < m; ++j) v[j] = static_cast<T>(static_cast<double>(v[j]) / sum);
              }
            }
            piece.indptr.push_back(static_cast<std::int64_t>(piece.data.size()));
          }
        }
      },
      0);
  CsrMatrix<T> out;
  out.cols = cols;
  std::size_t nnz = 0, rows = 0;
  for (const auto& p : pieces) {
    nnz += p.data.size();
    rows += p.indptr.size() - 1;
  }
  out.rows = static_cast<std::int64_t>(rows);
  out.indptr.reserve(rows + 1);
  out.indices.resize(nnz);
  out.data.resize(nnz);
  std::size_t base = 0;
  for (const auto& p : pieces) {
    for (std::size_t r = 1; r < p.indptr.size(); ++r) out.indptr.push_back(static_cast<std::int64_t>(base) + p.indptr[r]);
    std::memcpy(out.indices.data() + base, p.indices.data(), p.indices.size() * sizeof(std::int32_t));
    std::memcpy(out.data.data() + base, p.data.data(), p.data.size() * sizeof(T));
    base += p.data.size();
  }
  return out;
}

/// idf in precision T: T(n + s) / (T(df) + s), log, + 1 (numpy's float32 or float64 arithmetic).
template <typename T>
double idf_value(std::int64_t n_documents, std::int64_t df, bool smooth) {
  const T s = smooth ? T(1) : T(0);
  const T n = static_cast<T>(n_documents + (smooth ? 1 : 0));
  const T d = static_cast<T>(df) + s;
  return static_cast<double>(std::log(n / d) + T(1));
}

std::vector<RowCounts> hashed_chunks(const CsrMatrix<std::int32_t>& counts) {
  std::vector<RowCounts> chunks(1);
  chunks[0].indptr = counts.indptr;
  chunks[0].cols = counts.indices;
  chunks[0].counts = counts.data;
  return chunks;
}

nlohmann::json options_to_json(const TfidfOptions& o) {
  auto df = [](const DfBound& b) -> nlohmann::json {
    if (b.is_count) return static_cast<std::int64_t>(b.value);
    return b.value;
  };
  nlohmann::json j = {{"lowercase", o.lowercase},
                      {"analyzer", analyzer_name(o.analyzer)},
                      {"ngram_range", {o.ngram_min, o.ngram_max}},
                      {"cjk", o.cjk},
                      {"min_df", df(o.min_df)},
                      {"max_df", df(o.max_df)},
                      {"max_features", o.max_features},
                      {"binary", o.binary},
                      {"norm", norm_name(o.norm)},
                      {"use_idf", o.use_idf},
                      {"smooth_idf", o.smooth_idf},
                      {"sublinear_tf", o.sublinear_tf},
                      {"dtype", dtype_name(o.dtype)}};
  if (o.hashing) {
    j["hashing"] = {{"n_features", o.hashing->n_features}, {"alternate_sign", o.hashing->alternate_sign}};
  } else {
    j["hashing"] = nullptr;
  }
  return j;
}

[[noreturn]] void bad_artifact(const std::string& field, const std::string& what) {
  throw ArtifactError("tfidf state: " + field + ": " + what +
                      "; the featurizer file is corrupt or was not written by kiln — refit and save it again");
}

template <typename V>
V get_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) bad_artifact(where + key, "missing");
  try {
    return j.at(key).get<V>();
  } catch (const nlohmann::json::exception& e) {
    bad_artifact(where + key, std::string("wrong type (") + j.at(key).type_name() + ")");
  }
}

DfBound df_from_json(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) bad_artifact(std::string("options.") + key, "missing");
  const auto& v = j.at(key);
  if (v.is_number_integer()) return DfBound::count(v.get<std::int64_t>());
  if (v.is_number_float()) return DfBound::proportion(v.get<double>());
  bad_artifact(std::string("options.") + key, std::string("must be a number, got ") + v.type_name());
}

TfidfOptions options_from_json(const nlohmann::json& j) {
  if (!j.is_object()) bad_artifact("options", "must be an object");
  const std::string w = "options.";
  TfidfOptions o;
  o.lowercase = get_field<bool>(j, "lowercase", w);
  o.analyzer = parse_analyzer(get_field<std::string>(j, "analyzer", w), "options.analyzer");
  auto range = get_field<std::vector<int>>(j, "ngram_range", w);
  if (range.size() != 2) bad_artifact("options.ngram_range", "must hold 2 numbers");
  o.ngram_min = range[0];
  o.ngram_max = range[1];
  o.cjk = get_field<bool>(j, "cjk", w);
  o.min_df = df_from_json(j, "min_df");
  o.max_df = df_from_json(j, "max_df");
  o.max_features = get_field<std::int64_t>(j, "max_features", w);
  o.binary = get_field<bool>(j, "binary", w);
  o.norm = parse_norm(get_field<std::string>(j, "norm", w), "options.norm");
  o.use_idf = get_field<bool>(j, "use_idf", w);
  o.smooth_idf = get_field<bool>(j, "smooth_idf", w);
  o.sublinear_tf = get_field<bool>(j, "sublinear_tf", w);
  o.dtype = parse_dtype(get_field<std::string>(j, "dtype", w), "options.dtype");
  if (j.contains("hashing") && !j.at("hashing").is_null()) {
    HashingOptions h;
    h.n_features = get_field<std::int64_t>(j.at("hashing"), "n_features", "options.hashing.");
    h.alternate_sign = get_field<bool>(j.at("hashing"), "alternate_sign", "options.hashing.");
    o.hashing = h;
  }
  return o;
}

}  // namespace

// ---- options ----------------------------------------------------------------------------------

DfBound DfBound::parse(const std::string& text, const std::string& field) {
  auto fail = [&]() -> DfBound {
    throw ConfigError(field + " must be a proportion like 0.5 (contains '.') or a document count like 2, got '" +
                      text + "'");
  };
  if (text.empty()) return fail();
  const bool proportion = text.find_first_of(".eE") != std::string::npos;
  std::size_t used = 0;
  try {
    if (proportion) {
      double v = std::stod(text, &used);
      if (used != text.size() || !std::isfinite(v)) return fail();
      return DfBound::proportion(v);
    }
    long long v = std::stoll(text, &used);
    if (used != text.size()) return fail();
    return DfBound::count(v);
  } catch (const std::logic_error&) {
    return fail();
  }
}

std::string DfBound::to_string() const {
  if (is_count) return std::to_string(static_cast<std::int64_t>(value));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string norm_name(Norm norm) {
  switch (norm) {
    case Norm::kL2: return "l2";
    case Norm::kL1: return "l1";
    case Norm::kNone: return "none";
  }
  return "l2";
}

Norm parse_norm(const std::string& name, const std::string& field) {
  if (name == "l2") return Norm::kL2;
  if (name == "l1") return Norm::kL1;
  if (name == "none") return Norm::kNone;
  throw ConfigError(field + " must be one of l2, l1, none, got '" + name + "'");
}

std::string dtype_name(Dtype dtype) { return dtype == Dtype::kFloat64 ? "float64" : "float32"; }

Dtype parse_dtype(const std::string& name, const std::string& field) {
  if (name == "float32") return Dtype::kFloat32;
  if (name == "float64") return Dtype::kFloat64;
  throw ConfigError(field + " must be float32 or float64, got '" + name + "'");
}

AnalyzerOptions TfidfOptions::analyzer_options() const {
  AnalyzerOptions a;
  a.lowercase = lowercase;
  a.analyzer = analyzer;
  a.ngram_min = ngram_min;
  a.ngram_max = ngram_max;
  a.cjk = cjk;
  return a;
}

void TfidfOptions::validate() const {
  analyzer_options().validate("tfidf.");
  if (min_df.is_count ? min_df.value < 1 : !(min_df.value >= 0.0 && min_df.value <= 1.0)) {
    throw ConfigError("tfidf.min_df must be in [0, 1] or an integer count >= 1, got " + min_df.to_string());
  }
  if (max_df.is_count ? max_df.value < 1 : !(max_df.value > 0.0 && max_df.value <= 1.0)) {
    throw ConfigError("tfidf.max_df must be in (0, 1] or an integer count >= 1, got " + max_df.to_string());
  }
  if (max_features < 0) {
    throw ConfigError("tfidf.max_features must be >= 0 (0 keeps every term), got " + std::to_string(max_features));
  }
  if (hashing) {
    hashing->validate("tfidf.hashing.");
    const bool default_df = min_df.is_count && min_df.value == 1 && !max_df.is_count && max_df.value == 1.0;
    if (!default_df || max_features != 0) {
      throw ConfigError("tfidf.hashing has no vocabulary to prune: min_df, max_df and max_features must keep "
                        "their defaults (got min_df=" + min_df.to_string() + ", max_df=" + max_df.to_string() +
                        ", max_features=" + std::to_string(max_features) + ")");
    }
    if (sublinear_tf && hashing->alternate_sign && !binary) {
      throw ConfigError("tfidf.sublinear_tf needs non-negative counts but tfidf.hashing.alternate_sign is true; "
                        "turn one of them off");
    }
  }
}

// ---- vectorizer -------------------------------------------------------------------------------

TfidfVectorizer::TfidfVectorizer(TfidfOptions options) : options_(std::move(options)) { options_.validate(); }

std::int64_t TfidfVectorizer::n_columns() const {
  return options_.hashing ? options_.hashing->n_features : static_cast<std::int64_t>(vocabulary_.size());
}

void TfidfVectorizer::finish_idf(const std::vector<std::int64_t>& df) {
  idf_.clear();
  if (!options_.use_idf) return;
  idf_.resize(df.size());
  for (std::size_t c = 0; c < df.size(); ++c) {
    idf_[c] = options_.dtype == Dtype::kFloat32 ? idf_value<float>(n_documents_, df[c], options_.smooth_idf)
                                                : idf_value<double>(n_documents_, df[c], options_.smooth_idf);
  }
}

void TfidfVectorizer::build_lookup() {
  auto lookup = std::make_shared<Lookup>();
  lookup->terms = TermTable(vocabulary_.size());
  for (const auto& t : vocabulary_) lookup->terms.insert(t);
  lookup_ = std::move(lookup);
}

template <typename T>
void TfidfVectorizer::check_dtype(const char* what) const {
  const Dtype want = std::is_same_v<T, float> ? Dtype::kFloat32 : Dtype::kFloat64;
  if (want != options_.dtype) {
    throw ConfigError(std::string("TfidfVectorizer::") + what + "<" + dtype_name(want) +
                      "> called but tfidf.dtype is " + dtype_name(options_.dtype));
  }
}

namespace {

/// The fit of vocabulary mode, shared by fit and fit_transform: counts per chunk plus the remap
/// from chunk-local ids to final columns (-1 = pruned).
struct VocabFit {
  std::vector<RowCounts> chunks;
  std::vector<std::vector<std::int32_t>> remaps;
  std::vector<std::string> vocabulary;
  std::vector<std::int64_t> df;
};

/// Ids of `table` in alphabetical order of their terms (UTF-8 byte order is code point order).
/// Compares the first 8 bytes as one big-endian integer before comparing whole terms.
std::vector<std::int32_t> sorted_ids(const TermTable& table) {
  struct Key {
    std::uint64_t prefix;  ///< first 8 bytes, big-endian, zero-padded
    std::int32_t id;
  };
  std::vector<Key> keys(table.size());
  for (std::size_t id = 0; id < keys.size(); ++id) {
    const std::string_view t = table.view(static_cast<std::int32_t>(id));
    std::uint64_t prefix = 0;
    for (std::size_t k = 0; k < 8; ++k) {
      prefix = (prefix << 8) | (k < t.size() ? static_cast<unsigned char>(t[k]) : 0U);
    }
    keys[id] = Key{prefix, static_cast<std::int32_t>(id)};
  }
  // Equal prefixes (which zero padding can also give "ab" and "ab\0") fall back to the terms.
  std::sort(keys.begin(), keys.end(), [&](const Key& a, const Key& b) {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return table.view(a.id) < table.view(b.id);
  });
  std::vector<std::int32_t> sorted(keys.size());
  for (std::size_t k = 0; k < keys.size(); ++k) sorted[k] = keys[k].id;
  return sorted;
}

VocabFit fit_vocabulary(const TfidfOptions& o, const Analyzer& analyzer, const std::vector<std::string>& docs) {
  const std::size_t n = docs.size();
  std::vector<ChunkVocab> chunks(core::chunk_count(n));
  core::parallel_chunks(n, [&](std::size_t begin, std::size_t end, std::size_t k) {
    ChunkVocab& cv = chunks[k];
    count_documents(analyzer, docs, begin, end, cv.table, cv.rows,
                    [&](const TermKey& k) { return cv.table.insert(k); });
  });
  // Merge chunk vocabularies.
  TermTable global(chunks.empty() ? 16 : chunks[0].table.size() * 2);
  VocabFit fit;
  fit.remaps.resize(chunks.size());
  for (std::size_t k = 0; k < chunks.size(); ++k) {
    auto& remap = fit.remaps[k];
    remap.resize(chunks[k].table.size());
    for (std::size_t id = 0; id < remap.size(); ++id) remap[id] = global.insert(chunks[k].table.view(static_cast<std::int32_t>(id)));
  }
  const std::size_t n_terms = global.size();
  if (n_terms == 0) {
    throw DataError(
        "tfidf: empty vocabulary: no document has a term (the word analyzer keeps tokens of 2 or more letters, "
        "digits or '_'); the documents may be empty or contain only punctuation and single characters");
  }
  const std::vector<std::int32_t> sorted = sorted_ids(global);
  std::vector<std::int64_t> df(n_terms, 0), tf(n_terms, 0);
  for (std::size_t k = 0; k < chunks.size(); ++k) {
    const auto& rows = chunks[k].rows;
    for (std::size_t e = 0; e < rows.cols.size(); ++e) {
      std::int32_t g = fit.remaps[k][rows.cols[e]];
      df[g] += 1;
      tf[g] += o.binary ? 1 : rows.counts[e];
    }
  }
  const auto n_doc = static_cast<std::int64_t>(n);
  const double high = o.max_df.documents(n_doc);
  const double low = o.min_df.documents(n_doc);
  if (high < low) {
    throw ConfigError("tfidf.max_df=" + o.max_df.to_string() + " allows fewer documents (" + format_double(high) +
                      ") than tfidf.min_df=" + o.min_df.to_string() + " requires (" + format_double(low) + ") for " +
                      std::to_string(n_doc) + " documents; raise max_df or lower min_df");
  }
  std::vector<char> keep(n_terms, 0);  // by sorted position
  std::vector<std::int64_t> masked;    // sorted positions passing the df bounds
  for (std::size_t p = 0; p < n_terms; ++p) {
    const double d = static_cast<double>(df[sorted[p]]);
    if (d <= high && d >= low) masked.push_back(static_cast<std::int64_t>(p));
  }
  if (o.max_features > 0 && static_cast<std::int64_t>(masked.size()) > o.max_features) {
    std::vector<double> neg_tf(masked.size());
    for (std::size_t m = 0; m < masked.size(); ++m) neg_tf[m] = -static_cast<double>(tf[sorted[masked[m]]]);
    const auto order = numpy_argsort(neg_tf);
    for (std::int64_t m = 0; m < o.max_features; ++m) keep[masked[order[m]]] = 1;
  } else {
    for (auto p : masked) keep[p] = 1;
  }
  std::vector<std::int32_t> column(n_terms, -1);  // by global id
  for (std::size_t p = 0; p < n_terms; ++p) {
    if (!keep[p]) continue;
    column[sorted[p]] = static_cast<std::int32_t>(fit.vocabulary.size());
    fit.vocabulary.emplace_back(global.view(sorted[p]));
    fit.df.push_back(df[sorted[p]]);
  }
  if (fit.vocabulary.empty()) {
    throw DataError("tfidf: no terms remain after pruning with min_df=" + o.min_df.to_string() +
                    " and max_df=" + o.max_df.to_string() + " over " + std::to_string(n_doc) +
                    " documents; lower min_df or raise max_df");
  }
  for (auto& remap : fit.remaps) {
    for (auto& id : remap) id = column[id];
  }
  fit.chunks.reserve(chunks.size());
  for (auto& c : chunks) fit.chunks.push_back(std::move(c.rows));
  return fit;
}

std::vector<std::int64_t> hashed_df(const CsrMatrix<std::int32_t>& counts) {
  std::vector<std::int64_t> df(static_cast<std::size_t>(counts.cols), 0);
  for (std::int32_t c : counts.indices) df[c] += 1;  // stored entries, zeros included (np.bincount)
  return df;
}

}  // namespace

void TfidfVectorizer::fit(const std::vector<std::string>& docs) {
  if (options_.dtype == Dtype::kFloat32) {
    (void)fit_transform<float>(docs);
  } else {
    (void)fit_transform<double>(docs);
  }
}

template <typename T>
CsrMatrix<T> TfidfVectorizer::fit_transform(const std::vector<std::string>& docs) {
  check_dtype<T>("fit_transform");
  const Analyzer analyzer(options_.analyzer_options());
  n_documents_ = static_cast<std::int64_t>(docs.size());
  if (options_.hashing) {
    HashingVectorizer hv(options_.analyzer_options(), *options_.hashing);
    const auto counts = hv.transform(docs);
    const auto df = hashed_df(counts);
    df_columns_.clear();
    df_counts_.clear();
    for (std::size_t c = 0; c < df.size(); ++c) {
      if (df[c] > 0) {
        df_columns_.push_back(static_cast<std::int32_t>(c));
        df_counts_.push_back(df[c]);
      }
    }
    vocabulary_.clear();
    finish_idf(df);
    fitted_ = true;
    auto chunks = hashed_chunks(counts);
    return build_matrix<T>(options_, chunks, {nullptr}, idf_, n_columns());
  }
  VocabFit fit = fit_vocabulary(options_, analyzer, docs);
  vocabulary_ = std::move(fit.vocabulary);
  finish_idf(fit.df);
  build_lookup();
  fitted_ = true;
  std::vector<const std::vector<std::int32_t>*> remaps;
  for (const auto& r : fit.remaps) remaps.push_back(&r);
  return build_matrix<T>(options_, fit.chunks, remaps, idf_, n_columns());
}

template <typename T>
CsrMatrix<T> TfidfVectorizer::transform(const std::vector<std::string>& docs) const {
  check_dtype<T>("transform");
  if (!fitted_) throw Error("TfidfVectorizer::transform called before fit (or from_json)");
  if (options_.hashing) {
    HashingVectorizer hv(options_.analyzer_options(), *options_.hashing);
    auto chunks = hashed_chunks(hv.transform(docs));
    return build_matrix<T>(options_, chunks, {nullptr}, idf_, n_columns());
  }
  const Analyzer analyzer(options_.analyzer_options());
  const std::size_t n = docs.size();
  std::vector<RowCounts> chunks(core::chunk_count(n));
  const TermTable& table = lookup_->terms;
  core::parallel_chunks(n, [&](std::size_t begin, std::size_t end, std::size_t k) {
    count_documents(analyzer, docs, begin, end, table, chunks[k],
                    [&](const TermKey& k) { return table.find(k); });
  });
  std::vector<const std::vector<std::int32_t>*> remaps(chunks.size(), nullptr);
  CsrMatrix<T> out = build_matrix<T>(options_, chunks, remaps, idf_, n_columns());
  if (chunks.empty()) out.rows = 0;
  return out;
}

template CsrMatrix<float> TfidfVectorizer::fit_transform<float>(const std::vector<std::string>&);
template CsrMatrix<double> TfidfVectorizer::fit_transform<double>(const std::vector<std::string>&);
template CsrMatrix<float> TfidfVectorizer::transform<float>(const std::vector<std::string>&) const;
template CsrMatrix<double> TfidfVectorizer::transform<double>(const std::vector<std::string>&) const;

// ---- persistence ------------------------------------------------------------------------------

std::string TfidfVectorizer::to_json() const {
  if (!fitted_) throw Error("TfidfVectorizer::to_json called before fit");
  nlohmann::json j;
  j["format"] = "kiln.tfidf";
  j["version"] = 1;
  j["options"] = options_to_json(options_);
  j["n_documents"] = n_documents_;
  if (options_.hashing) {
    if (options_.use_idf) j["document_frequency"] = {{"columns", df_columns_}, {"counts", df_counts_}};
  } else {
    j["vocabulary"] = vocabulary_;
    if (options_.use_idf) j["idf"] = idf_;
  }
  return j.dump();
}

TfidfVectorizer TfidfVectorizer::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    bad_artifact("json", std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) bad_artifact("json", "must be an object");
  if (get_field<std::string>(j, "format", "") != "kiln.tfidf") {
    bad_artifact("format", "expected \"kiln.tfidf\", got \"" + j.at("format").get<std::string>() + "\"");
  }
  const auto version = get_field<std::int64_t>(j, "version", "");
  if (version != 1) {
    bad_artifact("version", "this kiln reads version 1, got " + std::to_string(version) + " (written by a newer kiln?)");
  }
  if (!j.contains("options")) bad_artifact("options", "missing");
  TfidfOptions o = options_from_json(j.at("options"));
  TfidfVectorizer v = [&]() {
    try {
      return TfidfVectorizer(o);
    } catch (const ConfigError& e) {
      bad_artifact("options", e.what());
    }
  }();
  v.n_documents_ = get_field<std::int64_t>(j, "n_documents", "");
  if (v.n_documents_ < 1) bad_artifact("n_documents", "must be >= 1, got " + std::to_string(v.n_documents_));
  if (o.hashing) {
    std::vector<std::int64_t> df(static_cast<std::size_t>(o.hashing->n_features), 0);
    if (o.use_idf) {
      if (!j.contains("document_frequency")) bad_artifact("document_frequency", "missing");
      const auto& d = j.at("document_frequency");
      v.df_columns_ = get_field<std::vector<std::int32_t>>(d, "columns", "document_frequency.");
      v.df_counts_ = get_field<std::vector<std::int64_t>>(d, "counts", "document_frequency.");
      if (v.df_columns_.size() != v.df_counts_.size()) {
        bad_artifact("document_frequency", "columns and counts differ in length (" +
                                               std::to_string(v.df_columns_.size()) + " vs " +
                                               std::to_string(v.df_counts_.size()) + ")");
      }
      for (std::size_t k = 0; k < v.df_columns_.size(); ++k) {
        const auto c = v.df_columns_[k];
        if (c < 0 || c >= o.hashing->n_features) {
          bad_artifact("document_frequency.columns[" + std::to_string(k) + "]",
                       "column " + std::to_string(c) + " outside [0, " + std::to_string(o.hashing->n_features) + ")");
        }
        if (v.df_counts_[k] < 1 || v.df_counts_[k] > v.n_documents_) {
          bad_artifact("document_frequency.counts[" + std::to_string(k) + "]",
                       "must be in [1, n_documents], got " + std::to_string(v.df_counts_[k]));
        }
        df[c] = v.df_counts_[k];
      }
    }
    v.finish_idf(df);
  } else {
    v.vocabulary_ = get_field<std::vector<std::string>>(j, "vocabulary", "");
    if (v.vocabulary_.empty()) bad_artifact("vocabulary", "is empty");
    for (std::size_t k = 0; k < v.vocabulary_.size(); ++k) {
      if (v.vocabulary_[k].empty()) bad_artifact("vocabulary[" + std::to_string(k) + "]", "empty term");
      if (k > 0 && !(v.vocabulary_[k - 1] < v.vocabulary_[k])) {
        bad_artifact("vocabulary[" + std::to_string(k) + "]",
                     "\"" + v.vocabulary_[k] + "\" is a duplicate or out of order (terms must be sorted and unique)");
      }
    }
    if (o.use_idf) {
      v.idf_ = get_field<std::vector<double>>(j, "idf", "");
      if (v.idf_.size() != v.vocabulary_.size()) {
        bad_artifact("idf", "has " + std::to_string(v.idf_.size()) + " values for " +
                                std::to_string(v.vocabulary_.size()) + " terms");
      }
      for (std::size_t k = 0; k < v.idf_.size(); ++k) {
        if (!std::isfinite(v.idf_[k]) || v.idf_[k] < 1.0) {
          bad_artifact("idf[" + std::to_string(k) + "]", "must be a finite number >= 1, got " + format_double(v.idf_[k]));
        }
      }
    }
    v.build_lookup();
  }
  v.fitted_ = true;
  return v;
}

}  // namespace kiln::text
