#include "kiln/text/featurizer.h"

#include <set>

#include "kiln/core/error.h"
#include "kiln/text/hashing_vectorizer.h"
#include "kiln/text/tfidf.h"

namespace kiln::text {
namespace {

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

TfidfOptions tfidf_options(const json& spec) {
  SpecReader r(spec, {"lowercase", "analyzer", "ngram_range", "cjk", "min_df", "max_df", "max_features", "binary",
                      "norm", "use_idf", "smooth_idf", "sublinear_tf", "hashing"});
  TfidfOptions o;
  o.lowercase = r.get("lowercase", o.lowercase);
  o.analyzer = parse_analyzer(r.get<std::string>("analyzer", "word"), "featurizer.analyzer");
  std::tie(o.ngram_min, o.ngram_max) = ngram_from(r, {1, 1});
  o.cjk = r.get("cjk", o.cjk);
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
  if (o.hashing) j["hashing"] = o.hashing->n_features;
  return j;
}

class TfidfFeaturizer final : public Featurizer {
 public:
  explicit TfidfFeaturizer(TfidfVectorizer v) : v_(std::move(v)) {}
  [[nodiscard]] std::string type() const override { return "tfidf"; }
  void fit(const std::vector<std::string>& texts) override { v_.fit(texts); }
  [[nodiscard]] CsrMatrix<float> transform(const std::vector<std::string>& texts) const override {
    return v_.transform<float>(texts);
  }
  [[nodiscard]] int64_t dim() const override { return v_.n_columns(); }
  [[nodiscard]] json spec() const override { return tfidf_spec(v_.options()); }
  [[nodiscard]] json state() const override { return json::parse(v_.to_json()); }
  [[nodiscard]] std::string feature_name(int64_t j) const override {
    const auto& vocab = v_.vocabulary();
    if (j >= 0 && j < static_cast<int64_t>(vocab.size())) return vocab[static_cast<std::size_t>(j)];
    return "bucket:" + std::to_string(j);
  }

 private:
  TfidfVectorizer v_;
};

// Words and word n-grams hashed into buckets (fastText's bucket trick), counts as weights.
// Stateless: fit() learns nothing, so it suits streams and many machines.
class HashedNgramFeaturizer final : public Featurizer {
 public:
  HashedNgramFeaturizer(AnalyzerOptions a, HashingOptions h) : hv_(a, h) {}
  [[nodiscard]] std::string type() const override { return "hashed_ngrams"; }
  void fit(const std::vector<std::string>&) override {}
  [[nodiscard]] CsrMatrix<float> transform(const std::vector<std::string>& texts) const override {
    auto counts = hv_.transform(texts);
    CsrMatrix<float> out;
    out.rows = counts.rows;
    out.cols = counts.cols;
    out.indptr = std::move(counts.indptr);
    out.indices = std::move(counts.indices);
    out.data.assign(counts.data.begin(), counts.data.end());
    return out;
  }
  [[nodiscard]] int64_t dim() const override { return hv_.options().n_features; }
  [[nodiscard]] json spec() const override {
    const auto& a = hv_.analyzer().options();
    return {{"type", "hashed_ngrams"},
            {"lowercase", a.lowercase},
            {"ngram_range", {a.ngram_min, a.ngram_max}},
            {"cjk", a.cjk},
            {"buckets", hv_.options().n_features}};
  }
  [[nodiscard]] json state() const override { return json::object(); }
  [[nodiscard]] std::string feature_name(int64_t j) const override { return "bucket:" + std::to_string(j); }

 private:
  HashingVectorizer hv_;
};

std::unique_ptr<Featurizer> make_hashed(const json& spec) {
  SpecReader r(spec, {"lowercase", "ngram_range", "cjk", "buckets"});
  AnalyzerOptions a;
  a.lowercase = r.get("lowercase", true);
  std::tie(a.ngram_min, a.ngram_max) = ngram_from(r, {1, 2});
  a.cjk = r.get("cjk", true);
  a.validate("featurizer.");
  HashingOptions h;
  h.n_features = r.get<int64_t>("buckets", int64_t{1} << 18);
  h.alternate_sign = false;
  h.validate("featurizer.");
  return std::make_unique<HashedNgramFeaturizer>(a, h);
}

}  // namespace

std::unique_ptr<Featurizer> make_featurizer(const json& spec) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    throw ConfigError("featurizer must be a mapping with a \"type\" (tfidf or hashed_ngrams), got " + spec.dump());
  }
  const std::string type = spec["type"].get<std::string>();
  if (type == "tfidf") return std::make_unique<TfidfFeaturizer>(TfidfVectorizer(tfidf_options(spec)));
  if (type == "hashed_ngrams") return make_hashed(spec);
  throw ConfigError("featurizer.type '" + type + "' is unknown; use tfidf or hashed_ngrams");
}

std::unique_ptr<Featurizer> load_featurizer(const json& spec, const json& state) {
  const std::string type = spec.is_object() ? spec.value("type", std::string()) : std::string();
  try {
    if (type == "tfidf") return std::make_unique<TfidfFeaturizer>(TfidfVectorizer::from_json(state.dump()));
    if (type == "hashed_ngrams") return make_hashed(spec);
  } catch (const ConfigError& e) {
    throw ArtifactError(std::string("featurizer spec: ") + e.what());
  }
  throw ArtifactError("featurizer type '" + type + "' is unknown to this Kiln (known: tfidf, hashed_ngrams)");
}

}  // namespace kiln::text
