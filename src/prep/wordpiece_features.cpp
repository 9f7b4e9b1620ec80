// The "wordpiece" preprocessor: BERT WordPiece ids (text::WordPieceTokenizer, identical to Hugging
// Face tokenizers) as input_ids / attention_mask / token_type_ids, int64 [batch, sequence], padded
// to the batch's longest. Without featurizer.vocab, fit() learns one on the training texts.
//
// long_text (persisted in kiln.json): what a text longer than max_length becomes.
//  - "truncate" (default): its first max_length - 2 tokens between [CLS] and [SEP].
//  - "window": overlapping windows, as Hugging Face's return_overflowing_tokens with `stride`: the
//    text's tokens (without [CLS]/[SEP]) are cut into windows of w = max_length - 2 tokens starting
//    at 0, w - stride, 2 (w - stride), ... until a window reaches the last token; each window is
//    encoded as [CLS] window [SEP]. The tensors are then [batch, window, sequence] (padding windows
//    have an all-zero attention_mask) and Model::forward averages a text's window logits.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "wordpiece_features.h"

#include "kiln/core/error.h"
#include "kiln/data/datasets.h"
#include "kiln/prep/text_features.h"
#include "kiln/text/wordpiece.h"
#include "kiln/text/wordpiece_trainer.h"

namespace kiln::prep {
namespace {

using nlohmann::json;

constexpr const char* kVocabFile = "vocab.txt";

struct WordPieceSpec {
  std::string vocab_path;  ///< where the vocabulary was read from ("" when loaded from an artifact)
  text::WordPieceOptions options;
  bool truncation = true;
  /// "truncate" | "window" (see the top of this file). Default "truncate".
  std::string long_text = "truncate";
  /// long_text window: tokens consecutive windows share, in [0, max_length - 2). Default
  /// (max_length - 2) / 4, resolved when the spec is read and persisted as a number.
  std::int64_t stride = 0;
  /// Tokens of the vocabulary learnt on the training texts when none is given. Default 8000.
  std::int64_t vocab_size = 8000;
};

template <typename T>
T field(const json& spec, const char* key, T fallback) {
  if (!spec.contains(key)) return fallback;
  try {
    return spec.at(key).get<T>();
  } catch (const json::exception&) {
    throw ConfigError(std::string("featurizer.") + key + " has the wrong type: " + spec.at(key).dump());
  }
}

WordPieceSpec parse_spec(const json& spec) {
  static const std::set<std::string> kKnown = {"vocab",      "lowercase",  "strip_accents", "max_length",
                                               "truncation", "vocab_size", "long_text",     "stride"};
  if (!spec.is_object()) throw ConfigError("featurizer must be a mapping with a \"type\", got " + spec.dump());
  for (const auto& [k, v] : spec.items()) {
    if (k != "type" && !kKnown.count(k)) {
      throw ConfigError("featurizer." + k +
                        " is not an option of featurizer type 'wordpiece'; valid options: long_text, lowercase, "
                        "max_length, stride, strip_accents, truncation, vocab, vocab_size");
    }
  }
  WordPieceSpec s;
  s.vocab_path = field<std::string>(spec, "vocab", "");
  s.options.lowercase = field(spec, "lowercase", true);
  if (spec.contains("strip_accents") && !spec.at("strip_accents").is_null())
    s.options.strip_accents = field(spec, "strip_accents", true);
  s.options.max_length = field<std::int64_t>(spec, "max_length", 128);
  s.truncation = field(spec, "truncation", true);
  s.vocab_size = field<std::int64_t>(spec, "vocab_size", 8000);
  if (s.vocab_size < 5) {
    throw ConfigError("featurizer.vocab_size must be >= 5 (the special tokens and one more), got " +
                      std::to_string(s.vocab_size));
  }
  if (s.options.max_length < 3) {
    throw ConfigError("featurizer.max_length must be >= 3 (room for [CLS], [SEP] and a token), got " +
                      std::to_string(s.options.max_length));
  }
  s.long_text = field<std::string>(spec, "long_text", "truncate");
  if (s.long_text != "truncate" && s.long_text != "window") {
    throw ConfigError("featurizer.long_text must be truncate or window (--long-text), got '" + s.long_text + "'");
  }
  const std::int64_t width = s.options.max_length - 2;
  const bool has_stride = spec.contains("stride") && !spec.at("stride").is_null();
  if (has_stride && s.long_text != "window") {
    throw ConfigError("featurizer.stride applies to long_text: window, but long_text is '" + s.long_text +
                      "'; drop stride or set long_text: window (--long-text window)");
  }
  s.stride = has_stride ? field<std::int64_t>(spec, "stride", 0) : width / 4;
  if (s.stride < 0 || s.stride >= width) {
    throw ConfigError("featurizer.stride must be in [0, max_length - 2 = " + std::to_string(width) +
                      ") tokens (windows overlap by stride and advance by max_length - 2 - stride), got " +
                      std::to_string(s.stride));
  }
  if (s.long_text == "window" && !s.truncation) {
    throw ConfigError("featurizer.truncation: false refuses texts longer than max_length, and long_text: window splits "
                      "them; drop truncation: false or use long_text: truncate");
  }
  return s;
}

class WordPiecePreprocessor final : public Preprocessor, public TextFeatures {
 public:
  explicit WordPiecePreprocessor(WordPieceSpec spec) : spec_(std::move(spec)) {}
  WordPiecePreprocessor(WordPieceSpec spec, const std::string& vocab_text, const std::string& name)
      : spec_(std::move(spec)) {
    set_vocab(vocab_text, name);
  }

  [[nodiscard]] std::string type() const override { return "wordpiece"; }
  [[nodiscard]] json options() const override {
    json j = {{"lowercase", spec_.options.lowercase},
              {"strip_accents", spec_.options.strip_accents.value_or(spec_.options.lowercase)},
              {"max_length", spec_.options.max_length},
              {"truncation", spec_.truncation},
              {"vocab_size", spec_.vocab_size},
              {"long_text", spec_.long_text}};
    if (windows()) j["stride"] = spec_.stride;
    if (!spec_.vocab_path.empty()) j["vocab"] = spec_.vocab_path;
    return j;
  }
  void fit(const data::Examples& examples) override {
    if (!examples.has_text() && examples.size() > 0) {
      throw DataError("the wordpiece preprocessor reads text, but these examples have none (images only); give the "
                      "data a text column (--text-col) or use an image model");
    }
    if (!tokenizer_) {
      set_vocab(train_wordpiece_vocabulary(examples.texts, spec_.vocab_size, spec_.options),
                "the vocabulary learnt on the training texts");
    }
  }
  [[nodiscard]] nn::Batch encode(const data::Examples& examples) const override {
    if (!tokenizer_) throw ConfigError("the wordpiece preprocessor has no vocabulary yet (featurizer.vocab)");
    if (!examples.has_text() && examples.size() > 0) {
      throw DataError("the wordpiece preprocessor reads text, but these examples have none (images only)");
    }
    if (windows()) return encode_windows(examples.texts);
    const auto& texts = examples.texts;
    const auto rows = static_cast<std::int64_t>(texts.size());
    text::WordPieceScratch scratch;
    std::vector<text::WordPieceEncoding> enc(texts.size());
    std::size_t longest = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      tokenizer_->encode(texts[i], nullptr, enc[i], scratch);
      if (!spec_.truncation && static_cast<std::int64_t>(enc[i].size()) > spec_.options.max_length) {
        throw DataError("example " + std::to_string(i) + " has " + std::to_string(enc[i].size()) +
                        " WordPiece tokens, more than featurizer.max_length " +
                        std::to_string(spec_.options.max_length) +
                        "; raise max_length or set featurizer.truncation: true");
      }
      longest = std::max(longest, enc[i].size());
    }
    const auto seq = static_cast<std::int64_t>(longest);
    auto ids = torch::full({rows, seq}, static_cast<std::int64_t>(tokenizer_->vocab().pad_id()), torch::kInt64);
    auto mask = torch::zeros({rows, seq}, torch::kInt64);
    auto types = torch::zeros({rows, seq}, torch::kInt64);
    auto* ip = ids.data_ptr<std::int64_t>();
    auto* mp = mask.data_ptr<std::int64_t>();
    auto* tp = types.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < enc.size(); ++i) {
      const std::size_t base = i * longest;
      for (std::size_t k = 0; k < enc[i].size(); ++k) {
        ip[base + k] = enc[i].ids[k];
        mp[base + k] = enc[i].attention_mask[k];
        tp[base + k] = enc[i].type_ids[k];
      }
    }
    nn::Batch batch(rows);
    batch.set(nn::kInputIds, ids);
    batch.set(nn::kAttentionMask, mask);
    batch.set(nn::kTokenTypeIds, types);
    return batch;
  }
  [[nodiscard]] nn::InputSpec input_spec() const override {
    nn::InputSpec spec;
    const std::int64_t vocab = tokenizer_ ? tokenizer_->vocab().size() : 0;
    const std::vector<std::string> dims = windows() ? std::vector<std::string>{"batch", "window", "sequence"}
                                                    : std::vector<std::string>{"batch", "sequence"};
    spec.tensors.push_back({nn::kInputIds, "int64", dims, vocab});
    spec.tensors.push_back({nn::kAttentionMask, "int64", dims, 0});
    spec.tensors.push_back({nn::kTokenTypeIds, "int64", dims, 0});
    return spec;
  }
  [[nodiscard]] std::string feature_name(std::int64_t j) const override {
    return tokenizer_ ? std::string(tokenizer_->vocab().token(j)) : std::string();
  }
  // Words cannot be placed as vocabulary features (subwords); only the mask token is offered.
  [[nodiscard]] std::optional<std::vector<FeatureSpan>> feature_spans(std::string_view) const override {
    return std::nullopt;
  }
  [[nodiscard]] std::string mask_token() const override { return "[MASK]"; }
  [[nodiscard]] std::optional<std::vector<std::pair<std::int64_t, std::int64_t>>> token_offsets(
      std::string_view text) const override {
    if (!tokenizer_ || windows()) return std::nullopt;
    const text::WordPieceEncoding enc = tokenizer_->encode(text);
    std::vector<std::pair<std::int64_t, std::int64_t>> out;
    out.reserve(enc.size());
    for (const auto& o : enc.offsets) out.emplace_back(o[0], o[1]);
    return out;
  }
  [[nodiscard]] StateFiles state_files() const override {
    if (!tokenizer_) return {};
    return {{kVocabFile, tokenizer_->vocab().to_text()}};
  }

 private:
  [[nodiscard]] bool windows() const { return spec_.long_text == "window"; }

  /// long_text window: int64 [texts, windows, sequence], windows and sequences padded to the longest.
  [[nodiscard]] nn::Batch encode_windows(const std::vector<std::string>& texts) const {
    const auto width = static_cast<std::size_t>(spec_.options.max_length - 2);
    text::WordPieceScratch scratch;
    text::WordPieceEncoding enc;
    std::vector<std::vector<std::int32_t>> content(texts.size());  // tokens between [CLS] and [SEP]
    std::vector<std::vector<std::pair<std::size_t, std::size_t>>> ranges(texts.size());
    std::size_t most = 1, longest = 2;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      tokenizer_->encode(texts[i], nullptr, enc, scratch);  // not truncated: the windows cover every token
      content[i].assign(enc.ids.begin() + 1, enc.ids.end() - 1);
      ranges[i] = text::window_ranges(content[i].size(), width, static_cast<std::size_t>(spec_.stride));
      most = std::max(most, ranges[i].size());
      for (const auto& [a, b] : ranges[i]) longest = std::max(longest, b - a + 2);
    }
    const auto rows = static_cast<std::int64_t>(texts.size());
    const auto W = static_cast<std::int64_t>(most), L = static_cast<std::int64_t>(longest);
    const auto& vocab = tokenizer_->vocab();
    auto ids = torch::full({rows, W, L}, static_cast<std::int64_t>(vocab.pad_id()), torch::kInt64);
    auto mask = torch::zeros({rows, W, L}, torch::kInt64);
    auto* ip = ids.data_ptr<std::int64_t>();
    auto* mp = mask.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < texts.size(); ++i) {
      for (std::size_t w = 0; w < ranges[i].size(); ++w) {
        const auto [a, b] = ranges[i][w];
        const std::size_t base = (i * most + w) * longest;
        ip[base] = vocab.cls_id();
        for (std::size_t k = a; k < b; ++k) ip[base + 1 + k - a] = content[i][k];
        ip[base + 1 + b - a] = vocab.sep_id();
        for (std::size_t k = 0; k < b - a + 2; ++k) mp[base + k] = 1;
      }
    }
    nn::Batch batch(rows);
    batch.set(nn::kInputIds, ids);
    batch.set(nn::kAttentionMask, mask);
    batch.set(nn::kTokenTypeIds, torch::zeros({rows, W, L}, torch::kInt64));
    return batch;
  }

  void set_vocab(const std::string& text, const std::string& name) {
    auto vocab = std::make_shared<const text::WordPieceVocab>(text::WordPieceVocab::parse(text, name));
    text::WordPieceOptions o = spec_.options;
    o.max_length = spec_.truncation && !windows() ? o.max_length : 0;
    tokenizer_ = std::make_unique<text::WordPieceTokenizer>(std::move(vocab), o);
  }

  WordPieceSpec spec_;
  std::unique_ptr<text::WordPieceTokenizer> tokenizer_;
};

std::unique_ptr<Preprocessor> make_wordpiece(const json& spec) {
  WordPieceSpec s = parse_spec(spec);
  if (s.vocab_path.empty()) return std::make_unique<WordPiecePreprocessor>(s);
  std::string path = s.vocab_path;
  // A vocabulary Kiln fetches may be named instead of given as a file (configs/bert_tiny.yaml).
  if (!std::filesystem::exists(path) && path.find('/') == std::string::npos) {
    for (const auto& d : data::known_datasets()) {
      if (d.name == path && path.size() > 6 && path.compare(path.size() - 6, 6, "-vocab") == 0) {
        path = data::fetch_dataset(path, {});
      }
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError("featurizer.vocab: cannot open '" + s.vocab_path +
                      "'; pass a BERT vocab.txt, e.g. the path `kiln data fetch bert-base-uncased-vocab` prints");
  }
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return std::make_unique<WordPiecePreprocessor>(s, text.str(), "featurizer.vocab " + s.vocab_path);
  } catch (const DataError& e) {
    throw ConfigError(e.what());
  }
}

std::unique_ptr<Preprocessor> load_wordpiece(const json& spec, const StateFiles& files) {
  const auto it = files.find(kVocabFile);
  if (it == files.end()) throw ArtifactError("the wordpiece preprocessor's state file vocab.txt is missing");
  try {
    return std::make_unique<WordPiecePreprocessor>(parse_spec(spec), it->second, "the artifact's vocab.txt");
  } catch (const DataError& e) {
    throw ArtifactError(e.what());
  }
}

}  // namespace

std::string train_wordpiece_vocabulary(const std::vector<std::string>& texts, std::int64_t size,
                                       const text::WordPieceOptions& options) {
  // Hugging Face's BertWordPieceTokenizer.train() settings for texts nobody curated: an alphabet of
  // at most 1,000 characters and pairs seen at least twice, so rare characters cannot fill the
  // vocabulary (see text::WordPieceTrainerOptions).
  text::WordPieceTrainerOptions o;
  o.vocab_size = size;
  o.lowercase = options.lowercase;
  o.strip_accents = options.strip_accents;
  o.limit_alphabet = 1000;
  o.min_frequency = 2;
  return text::wordpiece_vocab_text(text::train_wordpiece(texts, o).tokens);
}

PreprocessorType wordpiece_type() {
  PreprocessorType t;
  t.name = "wordpiece";
  t.description = "BERT WordPiece ids (input_ids, attention_mask, token_type_ids), identical to Hugging Face tokenizers";
  t.make = make_wordpiece;
  t.load = load_wordpiece;
  return t;
}

}  // namespace kiln::prep
