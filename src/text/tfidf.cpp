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
#include "vocabulary_fit.h"
#include "weighted_rows.h"
#include "work_pieces.h"

namespace kiln::text {

struct TfidfVectorizer::Lookup {
  TermTable terms;
};

namespace {

using detail::build_matrix;
using detail::format_double;
using detail::RowCounts;

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
  chunks[0].cols.assign(counts.indices.begin(), counts.indices.end());
  chunks[0].counts.assign(counts.data.begin(), counts.data.end());
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
  if (o.fasttext_tokens) j["tokenizer"] = "fasttext";  // absent: scikit-learn's tokens (older states too)
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
  if (j.contains("tokenizer")) {
    const auto tokenizer = get_field<std::string>(j, "tokenizer", w);
    if (tokenizer != "word" && tokenizer != "fasttext") bad_artifact("options.tokenizer", "must be word or fasttext, got '" + tokenizer + "'");
    o.fasttext_tokens = tokenizer == "fasttext";
  }
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
  a.fasttext_tokens = fasttext_tokens;
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
CsrMatrix<T> TfidfVectorizer::fit_transform(const std::vector<std::string>& docs, const std::function<void()>& fitted) {
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
    if (fitted) fitted();
    auto chunks = hashed_chunks(counts);
    return build_matrix<T>(options_, chunks, {nullptr}, idf_, n_columns());
  }
  return finish_fit<T>(detail::fit_vocabulary(options_, analyzer, docs), fitted);
}

template <typename T>
CsrMatrix<T> TfidfVectorizer::fit_transform(DocumentFeed& feed, const std::function<void()>& fitted) {
  check_dtype<T>("fit_transform");
  if (options_.hashing) throw ConfigError("tfidf: fitting from a document feed needs vocabulary mode, not hashing");
  const Analyzer analyzer(options_.analyzer_options());
  detail::VocabFit fit = detail::fit_vocabulary(options_, analyzer, feed);
  n_documents_ = static_cast<std::int64_t>(feed.documents());
  return finish_fit<T>(std::move(fit), fitted);
}

template <typename T>
CsrMatrix<T> TfidfVectorizer::finish_fit(detail::VocabFit fit, const std::function<void()>& fitted) {
  vocabulary_ = std::move(fit.vocabulary);
  finish_idf(fit.df);
  build_lookup();
  fitted_ = true;
  if (fitted) fitted();
  std::vector<const std::vector<std::int32_t>*> remaps;
  for (std::size_t owner : fit.owner) remaps.push_back(&fit.remaps[owner]);
  return build_matrix<T>(options_, fit.chunks, remaps, idf_, n_columns());
}

template <typename T>
CsrMatrix<T> TfidfVectorizer::transform(const std::vector<std::string>& docs, std::vector<TermCounts>* counts) const {
  check_dtype<T>("transform");
  if (!fitted_) throw Error("TfidfVectorizer::transform called before fit (or from_json)");
  if (counts) counts->clear();
  if (options_.hashing) {
    HashingVectorizer hv(options_.analyzer_options(), *options_.hashing);
    auto chunks = hashed_chunks(hv.transform(docs));
    return build_matrix<T>(options_, chunks, {nullptr}, idf_, n_columns());
  }
  const Analyzer analyzer(options_.analyzer_options());
  const std::size_t workers = detail::worker_count(docs.size());
  const std::vector<std::size_t> bounds = detail::work_pieces(docs, workers);
  std::vector<RowCounts> chunks(bounds.size() - 1);
  const TermTable& table = lookup_->terms;
  if (counts) counts->assign(docs.size(), TermCounts{});
  detail::run_workers(workers, chunks.size(), [&](std::size_t, auto&& next) {
    detail::DocumentCounter counter(analyzer, docs.size() > detail::kSmallBatchDocs);
    for (std::size_t p = next(); p < chunks.size(); p = next()) {
      if (!counts) {
        counter.count(docs, bounds[p], bounds[p + 1], table, chunks[p], [&](const TermKey& k) { return table.find(k); });
        continue;
      }
      // The document being counted is the one after the rows finished so far.
      RowCounts& rows = chunks[p];
      TermCounts* const first = counts->data() + bounds[p];
      const std::size_t finished = rows.indptr.size();
      counter.count(docs, bounds[p], bounds[p + 1], table, rows, [&](const TermKey& k) {
        const std::int32_t id = table.find(k);
        TermCounts& c = first[rows.indptr.size() - finished];
        ++c.terms;
        c.out_of_vocabulary += id < 0;
        return id;
      });
    }
  });
  std::vector<const std::vector<std::int32_t>*> remaps(chunks.size(), nullptr);
  CsrMatrix<T> out = build_matrix<T>(options_, chunks, remaps, idf_, n_columns());
  if (chunks.empty()) out.rows = 0;
  return out;
}

std::int64_t TfidfVectorizer::column_of(std::string_view term) const {
  if (!fitted_ || options_.hashing) {
    throw Error("TfidfVectorizer::column_of needs a fitted vocabulary (not hashing mode, after fit or from_json)");
  }
  return lookup_->terms.find(term);
}

template <typename T>
CsrMatrix<T> TfidfVectorizer::weigh(const CsrMatrix<std::int32_t>& counts) const {
  check_dtype<T>("weigh");
  if (!fitted_) throw Error("TfidfVectorizer::weigh called before fit (or from_json)");
  auto chunks = hashed_chunks(counts);
  CsrMatrix<T> out = build_matrix<T>(options_, chunks, {nullptr}, idf_, n_columns());
  out.rows = counts.rows;
  return out;
}

template CsrMatrix<float> TfidfVectorizer::weigh<float>(const CsrMatrix<std::int32_t>&) const;
template CsrMatrix<double> TfidfVectorizer::weigh<double>(const CsrMatrix<std::int32_t>&) const;
template CsrMatrix<float> TfidfVectorizer::fit_transform<float>(const std::vector<std::string>&,
                                                                 const std::function<void()>&);
template CsrMatrix<double> TfidfVectorizer::fit_transform<double>(const std::vector<std::string>&,
                                                                   const std::function<void()>&);
template CsrMatrix<float> TfidfVectorizer::fit_transform<float>(DocumentFeed&, const std::function<void()>&);
template CsrMatrix<double> TfidfVectorizer::fit_transform<double>(DocumentFeed&, const std::function<void()>&);
template CsrMatrix<float> TfidfVectorizer::transform<float>(const std::vector<std::string>&,
                                                            std::vector<TermCounts>*) const;
template CsrMatrix<double> TfidfVectorizer::transform<double>(const std::vector<std::string>&,
                                                              std::vector<TermCounts>*) const;

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
