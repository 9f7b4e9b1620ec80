// The bag-of-features preprocessors: "tfidf" (scikit-learn's TfidfVectorizer) and "hashed_ngrams"
// (words and word n-grams hashed into buckets). Both produce bag_indices / bag_offsets / bag_weights.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "bag_features.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/text/analyzer.h"
#include "kiln/text/hashing_vectorizer.h"
#include "kiln/text/term_spans.h"
#include "kiln/text/tfidf.h"
#include "kiln/prep/text_features.h"
#include "word_mask_encoder.h"

namespace kiln::prep {

using text::AnalyzerOptions;
using text::CsrMatrix;
using text::DfBound;
using text::HashingOptions;
using text::HashingVectorizer;
using text::TfidfOptions;
using text::TfidfVectorizer;
using text::analyzer_name;
using text::norm_name;
using text::parse_analyzer;
using text::parse_norm;

nn::Batch bag_batch(const CsrMatrix<float>& x) {
  const int64_t rows = x.rows, nnz = x.nnz();
  nn::Batch batch(rows);
  auto indices = torch::empty({nnz}, torch::kInt64);
  auto weights = torch::empty({nnz}, torch::kFloat32);
  auto offsets = torch::empty({rows}, torch::kInt64);
  auto* ip = indices.data_ptr<int64_t>();
  for (int64_t k = 0; k < nnz; ++k) ip[k] = static_cast<int64_t>(x.indices[static_cast<std::size_t>(k)]);
  if (nnz > 0) std::memcpy(weights.data_ptr<float>(), x.data.data(), static_cast<std::size_t>(nnz) * sizeof(float));
  if (rows > 0) std::memcpy(offsets.data_ptr<int64_t>(), x.indptr.data(), static_cast<std::size_t>(rows) * sizeof(int64_t));
  batch.set(nn::kBagIndices, indices);
  batch.set(nn::kBagOffsets, offsets);
  batch.set(nn::kBagWeights, weights);
  return batch;
}

nn::InputSpec bag_input_spec(int64_t features) {
  nn::InputSpec spec;
  spec.tensors.push_back({nn::kBagIndices, "int64", {"nnz"}, features});
  spec.tensors.push_back({nn::kBagOffsets, "int64", {"batch"}, 0});
  spec.tensors.push_back({nn::kBagWeights, "float32", {"nnz"}, 0});
  return spec;
}

namespace {

const std::vector<std::string>& texts_of(const data::Examples& examples, const char* type) {
  if (!examples.has_text() && examples.size() > 0) {
    throw DataError(std::string("the ") + type + " preprocessor reads text, but these examples have none (images only); "
                    "give the data a text column (--text-col) or use an image model");
  }
  return examples.texts;
}

using nlohmann::json;

// Reads spec fields with type checks and rejects unknown keys, naming "featurizer.<field>".
class SpecReader {
 public:
  SpecReader(const json& spec, std::set<std::string> known) : spec_(spec), known_(std::move(known)) {
    if (!spec_.is_object()) throw ConfigError("featurizer must be a mapping with a \"type\", got " + spec_.dump());
    for (const auto& [k, v] : spec_.items()) {
      if (k != "type" && !known_.count(k)) {
        std::string list;
        for (const auto& n : known_) list += (list.empty() ? "" : ", ") + n;
        throw ConfigError("featurizer." + k + " is not an option of featurizer type '" +
                          spec_.value("type", std::string()) + "'; valid options: " + list);
      }
    }
  }
  template <typename T>
  T get(const std::string& key, T fallback) const {
    if (!spec_.contains(key)) return fallback;
    try {
      return spec_.at(key).get<T>();
    } catch (const json::exception&) {
      throw ConfigError("featurizer." + key + " has the wrong type: " + spec_.at(key).dump());
    }
  }
  [[nodiscard]] bool has(const std::string& key) const { return spec_.contains(key); }
  [[nodiscard]] const json& at(const std::string& key) const { return spec_.at(key); }

 private:
  const json& spec_;
  std::set<std::string> known_;
};

DfBound df_from_json(const json& v, const std::string& field) {
  if (v.is_number_integer()) return DfBound::count(v.get<int64_t>());
  if (v.is_number_float()) return DfBound::proportion(v.get<double>());
  if (v.is_string()) return DfBound::parse(v.get<std::string>(), field);
  throw ConfigError(field + " must be a proportion (0.5) or a document count (2), got " + v.dump());
}

json df_to_json(const DfBound& b) {
  return b.is_count ? json(static_cast<int64_t>(b.value)) : json(b.value);
}

std::pair<int, int> ngram_from(const SpecReader& r, std::pair<int, int> fallback) {
  if (!r.has("ngram_range")) return fallback;
  const auto& v = r.at("ngram_range");
  if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer()) {
    throw ConfigError("featurizer.ngram_range must be [min, max] integers, got " + v.dump());
  }
  return {v[0].get<int>(), v[1].get<int>()};
}

/// featurizer.tokenizer: word (scikit-learn's token pattern, the default) or fasttext.
bool fasttext_tokenizer(const SpecReader& r) {
  const auto tokenizer = r.get<std::string>("tokenizer", "word");
  if (tokenizer != "word" && tokenizer != "fasttext") {
    throw ConfigError("featurizer.tokenizer must be word (scikit-learn's tokens of 2+ word characters) or fasttext "
                      "(whitespace-separated, with . ! ? , ' / ( ) as tokens of their own), got '" + tokenizer + "'");
  }
  return tokenizer == "fasttext";
}

TfidfOptions tfidf_options(const json& spec) {
  SpecReader r(spec, {"lowercase", "analyzer", "ngram_range", "cjk", "min_df", "max_df", "max_features", "binary",
                      "norm", "use_idf", "smooth_idf", "sublinear_tf", "hashing", "tokenizer"});
  TfidfOptions o;
  o.lowercase = r.get("lowercase", o.lowercase);
  o.analyzer = parse_analyzer(r.get<std::string>("analyzer", "word"), "featurizer.analyzer");
  std::tie(o.ngram_min, o.ngram_max) = ngram_from(r, {1, 1});
  o.cjk = r.get("cjk", o.cjk);
  o.fasttext_tokens = fasttext_tokenizer(r);
  if (r.has("min_df")) o.min_df = df_from_json(r.at("min_df"), "featurizer.min_df");
  if (r.has("max_df")) o.max_df = df_from_json(r.at("max_df"), "featurizer.max_df");
  o.max_features = r.get<int64_t>("max_features", 0);
  o.binary = r.get("binary", o.binary);
  o.norm = parse_norm(r.get<std::string>("norm", "l2"), "featurizer.norm");
  o.use_idf = r.get("use_idf", o.use_idf);
  o.smooth_idf = r.get("smooth_idf", o.smooth_idf);
  o.sublinear_tf = r.get("sublinear_tf", o.sublinear_tf);
  if (r.has("hashing")) {
    HashingOptions h;
    h.n_features = r.get<int64_t>("hashing", h.n_features);
    o.hashing = h;
  }
  o.validate();
  return o;
}

json tfidf_spec(const TfidfOptions& o) {
  json j = {{"type", "tfidf"},
            {"lowercase", o.lowercase},
            {"analyzer", analyzer_name(o.analyzer)},
            {"ngram_range", {o.ngram_min, o.ngram_max}},
            {"cjk", o.cjk},
            {"min_df", df_to_json(o.min_df)},
            {"max_df", df_to_json(o.max_df)},
            {"max_features", o.max_features},
            {"binary", o.binary},
            {"norm", norm_name(o.norm)},
            {"use_idf", o.use_idf},
            {"smooth_idf", o.smooth_idf},
            {"sublinear_tf", o.sublinear_tf}};
  if (o.fasttext_tokens) j["tokenizer"] = "fasttext";
  if (o.hashing) j["hashing"] = o.hashing->n_features;
  return j;
}

class TfidfPreprocessor final : public Preprocessor, public TextFeatures {
 public:
  explicit TfidfPreprocessor(TfidfVectorizer v) : v_(std::move(v)) {}
  [[nodiscard]] std::string type() const override { return "tfidf"; }
  [[nodiscard]] json options() const override {
    json j = tfidf_spec(v_.options());
    j.erase("type");
    return j;
  }
  void fit(const data::Examples& examples) override {
    v_.fit(texts_of(examples, "tfidf"));
    vocabulary_.reset();
  }
  [[nodiscard]] nn::Batch encode(const data::Examples& examples) const override {
    return bag_batch(v_.transform<float>(texts_of(examples, "tfidf")));
  }
  [[nodiscard]] nn::Batch fit_encode(const data::Examples& examples) override {
    nn::Batch batch = bag_batch(v_.fit_transform<float>(texts_of(examples, "tfidf")));
    vocabulary_.reset();
    return batch;
  }
  [[nodiscard]] nn::Batch encode_observed(const data::Examples& examples, EncodeObservations& observed) const override {
    observed = {};
    std::vector<text::TermCounts> counts;
    nn::Batch batch = bag_batch(v_.transform<float>(texts_of(examples, "tfidf"), &counts));
    observed.oov_rates.reserve(counts.size());
    for (const auto& c : counts) {
      observed.oov_rates.push_back(c.terms == 0 ? 0.0 : static_cast<double>(c.out_of_vocabulary) / static_cast<double>(c.terms));
    }
    return batch;
  }
  [[nodiscard]] nn::InputSpec input_spec() const override { return bag_input_spec(v_.n_columns()); }
  [[nodiscard]] StateFiles state_files() const override { return {{"state", v_.to_json()}}; }
  [[nodiscard]] std::string feature_name(int64_t j) const override {
    const auto& vocab = v_.vocabulary();
    if (j >= 0 && j < static_cast<int64_t>(vocab.size())) return vocab[static_cast<std::size_t>(j)];
    return "bucket:" + std::to_string(j);
  }
  [[nodiscard]] std::optional<std::vector<FeatureSpan>> feature_spans(std::string_view text) const override {
    if (v_.options().analyzer != text::AnalyzerKind::kWord) return std::nullopt;
    const text::Analyzer analyzer(v_.options().analyzer_options());
    const auto& vocab = v_.vocabulary();  // sorted by code point = by UTF-8 bytes: the column order
    std::vector<FeatureSpan> out;
    for (const auto& t : text::term_spans(analyzer, text)) {
      int64_t column = -1;
      if (v_.options().hashing) {
        column = text::hash_term(t.term, *v_.options().hashing).column;
      } else {
        const auto it = std::lower_bound(vocab.begin(), vocab.end(), t.term);
        if (it != vocab.end() && *it == t.term) column = it - vocab.begin();
      }
      if (column >= 0) out.push_back({column, t.begin, t.end});
    }
    return out;
  }
  [[nodiscard]] std::unique_ptr<WordMaskEncoder> word_mask_encoder(
      std::string_view text, const std::vector<std::pair<std::size_t, std::size_t>>& words) const override {
    return tfidf_word_mask_encoder(v_, text, words);
  }
  [[nodiscard]] std::optional<std::vector<double>> oov_rates(const std::vector<std::string>& texts) const override {
    if (v_.vocabulary().empty()) return std::nullopt;  // hashed columns: no out-of-vocabulary terms
    std::call_once(vocabulary_once_, [this] {
      vocabulary_ = std::make_unique<std::unordered_set<std::string_view>>(v_.vocabulary().begin(), v_.vocabulary().end());
      analyzer_ = std::make_unique<text::Analyzer>(v_.options().analyzer_options());
    });
    text::AnalyzerScratch scratch;
    std::vector<std::string_view> terms;
    std::vector<double> out;
    out.reserve(texts.size());
    for (const auto& t : texts) {
      analyzer_->analyze(t, scratch, terms);
      std::size_t oov = 0;
      for (const auto& term : terms) oov += vocabulary_->count(term) == 0;
      out.push_back(terms.empty() ? 0.0 : static_cast<double>(oov) / static_cast<double>(terms.size()));
    }
    return out;
  }

 private:
  TfidfVectorizer v_;
  mutable std::once_flag vocabulary_once_;
  mutable std::unique_ptr<std::unordered_set<std::string_view>> vocabulary_;
  mutable std::unique_ptr<text::Analyzer> analyzer_;
};

// The bucket of character n-gram `gram`: hashed with another seed than words, so that the n-gram
// "the" of "there" and the word "the" get different rows (fastText keeps them apart too).
int32_t char_gram_bucket(std::string_view gram, int64_t buckets) {
  const int64_t h = text::murmurhash3_32(gram, 0x6b696c6eU);
  return static_cast<int32_t>((h < 0 ? -h : h) % buckets);
}

// fastText's subwords of one word: the character n-grams, minn <= n <= maxn code points, of
// "<" + word + ">", leaving out the lone "<" and ">" (computeSubwords in fastText's dictionary.cc).
void add_char_grams(std::string_view word, int minn, int maxn, int64_t buckets, std::string& padded,
                    std::vector<int32_t>& out) {
  padded.assign("<");
  padded.append(word);
  padded.push_back('>');
  const std::size_t size = padded.size();
  for (std::size_t i = 0; i < size; ++i) {
    if ((static_cast<unsigned char>(padded[i]) & 0xC0) == 0x80) continue;
    std::size_t j = i;
    for (int n = 1; j < size && n <= maxn; ++n) {
      ++j;
      while (j < size && (static_cast<unsigned char>(padded[j]) & 0xC0) == 0x80) ++j;
      if (n >= minn && !(n == 1 && (i == 0 || j == size))) {
        out.push_back(char_gram_bucket(std::string_view(padded).substr(i, j - i), buckets));
      }
    }
  }
}

// Words and word n-grams hashed into buckets (fastText's bucket trick), counts as weights; with
// char_ngram_range, also each word's character n-grams (fastText's subword information).
// Stateless: fit() learns nothing, so it suits streams and many machines.
class HashedNgramPreprocessor final : public Preprocessor, public TextFeatures {
 public:
  HashedNgramPreprocessor(AnalyzerOptions a, HashingOptions h, int minn, int maxn) : hv_(a, h), minn_(minn), maxn_(maxn) {}
  [[nodiscard]] std::string type() const override { return "hashed_ngrams"; }
  void fit(const data::Examples&) override {}
  [[nodiscard]] nn::Batch encode(const data::Examples& examples) const override {
    const auto& texts = texts_of(examples, "hashed_ngrams");
    if (maxn_ > 0) return char_gram_batch(texts);
    auto counts = hv_.transform(texts);
    CsrMatrix<float> out;
    out.rows = counts.rows;
    out.cols = counts.cols;
    out.indptr = std::move(counts.indptr);
    out.indices = std::move(counts.indices);
    out.data.assign(counts.data.begin(), counts.data.end());
    return bag_batch(out);
  }
  [[nodiscard]] nn::InputSpec input_spec() const override { return bag_input_spec(hv_.options().n_features); }
  [[nodiscard]] json options() const override {
    const auto& a = hv_.analyzer().options();
    json j = {{"lowercase", a.lowercase},
              {"ngram_range", {a.ngram_min, a.ngram_max}},
              {"cjk", a.cjk},
              {"buckets", hv_.options().n_features}};
    if (maxn_ > 0) j["char_ngram_range"] = {minn_, maxn_};
    if (a.fasttext_tokens) j["tokenizer"] = "fasttext";
    return j;
  }
  [[nodiscard]] StateFiles state_files() const override { return {}; }
  [[nodiscard]] std::string feature_name(int64_t j) const override { return "bucket:" + std::to_string(j); }
  [[nodiscard]] std::optional<std::vector<FeatureSpan>> feature_spans(std::string_view text) const override {
    std::vector<FeatureSpan> out;
    std::vector<int32_t> grams;
    std::string padded;
    for (const auto& t : text::term_spans(hv_.analyzer(), text)) {
      out.push_back({text::hash_term(t.term, hv_.options()).column, t.begin, t.end});
      if (maxn_ == 0 || t.term.find(' ') != std::string::npos) continue;
      grams.clear();  // a word's subwords lie inside the word
      add_char_grams(t.term, minn_, maxn_, hv_.options().n_features, padded, grams);
      for (int32_t g : grams) out.push_back({g, t.begin, t.end});
    }
    return out;
  }

 private:
  // Word n-gram buckets (as HashingVectorizer without signs) plus the character n-grams of every
  // single-word term; per row, columns ascending with their counts; as bag_batch lays them out.
  // Each chunk's rows go into vectors reserved for its text (about 4 n-grams a character, so they
  // rarely grow: growing copied them, page faults included, a tenth of the fasttext candidate's run
  // on Brown), then straight into the batch's tensors, with no CSR matrix between.
  [[nodiscard]] nn::Batch char_gram_batch(const std::vector<std::string>& docs) const {
    const std::size_t n = docs.size();
    struct Rows {
      std::vector<int64_t> ends;
      std::vector<int32_t> cols;
      std::vector<float> counts;
    };
    std::vector<Rows> chunks(core::chunk_count(n));
    const int64_t buckets = hv_.options().n_features;
    core::parallel_chunks(n, [&](std::size_t begin, std::size_t end, std::size_t chunk) {
      Rows& rows = chunks[chunk];
      std::size_t bytes = 0;
      for (std::size_t d = begin; d < end; ++d) bytes += docs[d].size();
      rows.ends.reserve(end - begin);
      rows.cols.reserve(bytes * 5 + 64);
      rows.counts.reserve(bytes * 5 + 64);
      text::AnalyzerScratch scratch;
      std::vector<std::string_view> terms;
      std::vector<std::pair<int32_t, int32_t>> ids;  // (column, count)
      std::vector<int32_t> grams;
      std::unordered_map<std::string_view, int32_t> words;
      std::string padded;
      for (std::size_t d = begin; d < end; ++d) {
        hv_.analyzer().analyze(docs[d], scratch, terms);
        ids.clear();
        words.clear();
        for (std::string_view t : terms) {
          ids.emplace_back(text::hash_term(t, hv_.options()).column, 1);
          if (t.find(' ') == std::string_view::npos) ++words[t];
        }
        // Each distinct word's subwords once, counted as often as the word occurs: long texts repeat
        // their words, and hashing the n-grams is the expensive part.
        for (const auto& [word, count] : words) {
          grams.clear();
          add_char_grams(word, minn_, maxn_, buckets, padded, grams);
          for (int32_t g : grams) ids.emplace_back(g, count);
        }
        std::sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (std::size_t k = 0; k < ids.size();) {
          const int32_t col = ids[k].first;
          int64_t total = 0;
          for (; k < ids.size() && ids[k].first == col; ++k) total += ids[k].second;
          rows.cols.push_back(col);
          rows.counts.push_back(static_cast<float>(total));
        }
        rows.ends.push_back(static_cast<int64_t>(rows.cols.size()));
      }
    });
    std::vector<int64_t> nnz_before(chunks.size() + 1, 0), rows_before(chunks.size() + 1, 0);
    for (std::size_t c = 0; c < chunks.size(); ++c) {
      nnz_before[c + 1] = nnz_before[c] + static_cast<int64_t>(chunks[c].cols.size());
      rows_before[c + 1] = rows_before[c] + static_cast<int64_t>(chunks[c].ends.size());
    }
    const int64_t nnz = nnz_before.back();
    auto indices = torch::empty({nnz}, torch::kInt64);
    auto weights = torch::empty({nnz}, torch::kFloat32);
    auto offsets = torch::empty({static_cast<int64_t>(n)}, torch::kInt64);
    int64_t* ip = indices.data_ptr<int64_t>();
    float* wp = weights.data_ptr<float>();
    int64_t* op = offsets.data_ptr<int64_t>();
    core::parallel_chunks(chunks.size(), [&](std::size_t begin, std::size_t end, std::size_t) {
      for (std::size_t c = begin; c < end; ++c) {
        const Rows& rows = chunks[c];
        if (rows.ends.empty()) continue;
        const int64_t base = nnz_before[c];
        std::copy(rows.cols.begin(), rows.cols.end(), ip + base);  // int32 -> int64
        std::copy(rows.counts.begin(), rows.counts.end(), wp + base);
        int64_t* o = op + rows_before[c];
        o[0] = base;  // a row starts where the previous one ended
        for (std::size_t r = 0; r + 1 < rows.ends.size(); ++r) o[r + 1] = base + rows.ends[r];
      }
    });
    nn::Batch batch(static_cast<int64_t>(n));
    batch.set(nn::kBagIndices, indices);
    batch.set(nn::kBagOffsets, offsets);
    batch.set(nn::kBagWeights, weights);
    return batch;
  }

  HashingVectorizer hv_;
  int minn_ = 0, maxn_ = 0;
};

std::unique_ptr<Preprocessor> make_hashed(const json& spec) {
  SpecReader r(spec, {"lowercase", "ngram_range", "char_ngram_range", "cjk", "buckets", "tokenizer"});
  AnalyzerOptions a;
  a.lowercase = r.get("lowercase", true);
  a.fasttext_tokens = fasttext_tokenizer(r);
  std::tie(a.ngram_min, a.ngram_max) = ngram_from(r, {1, 2});
  a.cjk = r.get("cjk", true);
  a.validate("featurizer.");
  HashingOptions h;
  h.n_features = r.get<int64_t>("buckets", int64_t{1} << 18);
  h.alternate_sign = false;
  h.validate("featurizer.");
  int minn = 0, maxn = 0;
  if (r.has("char_ngram_range")) {
    const auto& v = r.at("char_ngram_range");
    if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer() ||
        v[0].get<int>() < 1 || v[1].get<int>() < v[0].get<int>() || v[1].get<int>() > 32) {
      throw ConfigError("featurizer.char_ngram_range must be [min, max] with 1 <= min <= max <= 32 (fastText's "
                        "-minn/-maxn, e.g. [3, 6]), got " + v.dump());
    }
    minn = v[0].get<int>();
    maxn = v[1].get<int>();
  }
  return std::make_unique<HashedNgramPreprocessor>(a, h, minn, maxn);
}

std::unique_ptr<Preprocessor> load_tfidf(const json& spec, const StateFiles& files) {
  const auto it = files.find("state");
  if (it == files.end()) throw ArtifactError("the tfidf preprocessor's state file (vocabulary and idf) is missing");
  return std::make_unique<TfidfPreprocessor>(TfidfVectorizer::from_json(it->second));
}

}  // namespace

PreprocessorType tfidf_type() {
  PreprocessorType t;
  t.name = "tfidf";
  t.description = "TF-IDF over word or character n-grams, identical to scikit-learn's TfidfVectorizer";
  t.make = [](const json& spec) { return std::make_unique<TfidfPreprocessor>(TfidfVectorizer(tfidf_options(spec))); };
  t.load = load_tfidf;
  return t;
}

PreprocessorType hashed_ngrams_type() {
  PreprocessorType t;
  t.name = "hashed_ngrams";
  t.description = "word n-gram counts hashed into buckets (no vocabulary to fit)";
  t.make = make_hashed;
  t.load = [](const json& spec, const StateFiles&) { return make_hashed(spec); };
  return t;
}

}  // namespace kiln::prep
