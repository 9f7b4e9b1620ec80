#include "word_mask_encoder.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "bag_features.h"
#include "kiln/text/analyzer.h"
#include "kiln/text/term_spans.h"
#include "kiln/text/unicode.h"

namespace kiln::prep {
namespace {

// Whether Python's lower() of `text` is, code point by code point, a string of code points that
// are word characters exactly when the original is: then the lowered text's runs of word
// characters are the lowercased runs of `text`, whatever words are dropped. A capital sigma
// fails (its lowercase depends on the letters around it, across gaps).
bool lowercase_keeps_words(std::string_view text) {
  std::string piece;
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t begin = i;
    const char32_t c = text::next_code_point(text, i);
    if (c == 0x3A3) return false;
    text::python_lower(text.substr(begin, i - begin), piece);
    const bool word = text::is_word_char(c);
    const std::string_view lowered(piece);
    for (std::size_t j = 0; j < lowered.size();) {
      if (text::is_word_char(text::next_code_point(lowered, j)) != word) return false;
    }
  }
  return true;
}

class TfidfWordMasks final : public WordMaskEncoder {
 public:
  TfidfWordMasks(const text::TfidfVectorizer& v, int64_t words, std::vector<int32_t> token_string,
                 std::vector<int32_t> token_word, std::vector<std::string> strings)
      : v_(v),
        words_(words),
        token_string_(std::move(token_string)),
        token_word_(std::move(token_word)),
        strings_(std::move(strings)) {
    const auto s = strings_.size();
    unigram_.reserve(s);
    for (const auto& t : strings_) {
      unigram_.push_back(slot_of(v_.column_of(t)));
      if (unigram_.back() >= 0) unigram_order_.push_back(unigram_.back());
    }
    std::sort(unigram_order_.begin(), unigram_order_.end(), [&](int32_t a, int32_t b) { return column(a) < column(b); });
    // Bigrams by (first, second) distinct token in a dense table while it stays small.
    if (v_.options().ngram_max >= 2 && s <= 2048) bigram_.assign(s * s, kUnknown);
  }

  nn::Batch encode(const bool* masks, int64_t rows) override {
    const auto& o = v_.options();
    text::CsrMatrix<int32_t> counts;
    counts.rows = rows;
    counts.cols = v_.n_columns();
    counts.indptr.reserve(static_cast<std::size_t>(rows) + 1);
    std::vector<int32_t> kept;
    kept.reserve(token_string_.size());
    std::size_t used = 0;  // entries of `counts` written
    for (int64_t r = 0; r < rows; ++r) {
      const bool* keep = masks + r * words_;
      kept.clear();
      for (std::size_t t = 0; t < token_string_.size(); ++t) {
        const int32_t w = token_word_[t];
        if (w < 0 || keep[w]) kept.push_back(token_string_[t]);
      }
      // Unigrams counted into their slots, longer n-grams' slots listed as first seen; then both
      // emitted merged in column order (the weighing then finds each row sorted).
      touched_.clear();
      const auto k = static_cast<int64_t>(kept.size());
      for (int n = o.ngram_min; n <= o.ngram_max && n <= k; ++n) {
        if (n == 1) {
          for (int32_t s : kept) {
            const int32_t slot = unigram_[static_cast<std::size_t>(s)];
            if (slot >= 0) ++count_[static_cast<std::size_t>(slot)];
          }
        } else {
          for (int64_t i = 0; i + n <= k; ++i) add(ngram_slot(kept.data() + i, n));
        }
      }
      std::sort(touched_.begin(), touched_.end(), [&](int32_t a, int32_t b) { return column(a) < column(b); });
      const std::size_t need = used + unigram_order_.size() + touched_.size();
      if (counts.indices.size() < need) {
        counts.indices.resize(std::max(need, 2 * counts.indices.size()));
        counts.data.resize(counts.indices.size());
      }
      int32_t* cols = counts.indices.data();
      int32_t* vals = counts.data.data();
      // Every slot written, kept when its count is not 0 (no branch on the count: half the
      // unigrams of a coalition are absent, in no pattern a predictor learns).
      auto emit = [&](int32_t slot) {
        int32_t& c = count_[static_cast<std::size_t>(slot)];
        cols[used] = column(slot);
        vals[used] = c;
        used += static_cast<std::size_t>(c != 0);
        c = 0;
      };
      std::size_t j = 0;
      for (int32_t slot : unigram_order_) {
        for (; j < touched_.size() && column(touched_[j]) < column(slot); ++j) emit(touched_[j]);
        emit(slot);
      }
      for (; j < touched_.size(); ++j) emit(touched_[j]);
      counts.indptr.push_back(static_cast<int64_t>(used));
    }
    counts.indices.resize(used);
    counts.data.resize(used);
    return bag_batch(v_.weigh<float>(counts));
  }

 private:
  static constexpr int32_t kUnknown = -2;  // a cached n-gram not looked up yet

  [[nodiscard]] int32_t column(int32_t slot) const { return slot_column_[static_cast<std::size_t>(slot)]; }

  void add(int32_t slot) {
    if (slot < 0) return;
    if (count_[static_cast<std::size_t>(slot)]++ == 0) touched_.push_back(slot);
  }

  // The counting slot of vocabulary column `column` (one per distinct column), -1 for none.
  int32_t slot_of(int64_t column) {
    if (column < 0) return -1;
    const auto [it, fresh] = slots_.try_emplace(column, static_cast<int32_t>(slot_column_.size()));
    if (fresh) {
      slot_column_.push_back(static_cast<int32_t>(column));
      count_.push_back(0);
    }
    return it->second;
  }

  int32_t lookup(const int32_t* s, int n) {
    term_.clear();
    for (int k = 0; k < n; ++k) {
      if (k) term_.push_back(' ');
      term_.append(strings_[static_cast<std::size_t>(s[k])]);
    }
    return slot_of(v_.column_of(term_));
  }

  int32_t ngram_slot(const int32_t* s, int n) {
    if (n == 2 && !bigram_.empty()) {
      int32_t& e = bigram_[static_cast<std::size_t>(s[0]) * strings_.size() + static_cast<std::size_t>(s[1])];
      if (e == kUnknown) e = lookup(s, 2);
      return e;
    }
    uint64_t key = 0;  // distinct-token ids + 1 (< 2^16), 16 bits each: n <= 4 fits, and n tells itself
    for (int k = 0; k < n; ++k) key |= static_cast<uint64_t>(s[k] + 1) << (16 * k);
    const auto [it, fresh] = longer_.try_emplace(key, kUnknown);
    if (fresh) it->second = lookup(s, n);
    return it->second;
  }

  const text::TfidfVectorizer& v_;
  int64_t words_;
  std::vector<int32_t> token_string_;  // per token of the text: its distinct-token id
  std::vector<int32_t> token_word_;    // per token: the word it lies in, -1 = in no droppable word
  std::vector<std::string> strings_;   // distinct tokens
  std::vector<int32_t> unigram_;       // per distinct token: its slot
  std::vector<int32_t> unigram_order_;  // the unigrams' slots by column
  std::vector<int32_t> bigram_;        // [first * distinct + second]: slot, -1 none, kUnknown
  std::unordered_map<uint64_t, int32_t> longer_;
  std::unordered_map<int64_t, int32_t> slots_;
  std::vector<int32_t> slot_column_, count_, touched_;
  std::string term_;
};

}  // namespace

std::unique_ptr<WordMaskEncoder> tfidf_word_mask_encoder(const text::TfidfVectorizer& v, std::string_view text,
                                                         const std::vector<std::pair<std::size_t, std::size_t>>& words) {
  const auto& o = v.options();
  if (!v.fitted() || o.analyzer != text::AnalyzerKind::kWord || o.hashing || o.ngram_max > 4) return nullptr;
  if (o.lowercase && !lowercase_keeps_words(text)) return nullptr;
  text::AnalyzerOptions unigram = o.analyzer_options();
  unigram.ngram_min = unigram.ngram_max = 1;
  const text::Analyzer analyzer(unigram);
  std::vector<int32_t> token_string, token_word;
  std::vector<std::string> strings;
  std::unordered_map<std::string, int32_t> ids;
  for (auto& t : text::term_spans(analyzer, text)) {
    // The word holding the token: the last one starting at or before it.
    const auto next = std::upper_bound(words.begin(), words.end(), t.begin,
                                       [](std::size_t at, const auto& w) { return at < w.first; });
    int32_t word = -1;
    if (next != words.begin()) {
      const auto& w = *(next - 1);
      if (t.begin < w.second) {
        if (t.end > w.second) return nullptr;  // a token across a word's end: not a run of word characters
        word = static_cast<int32_t>(next - 1 - words.begin());
      }
    }
    if (next != words.end() && next->first < t.end) return nullptr;  // overlaps the next word
    const auto [it, fresh] = ids.try_emplace(std::move(t.term), static_cast<int32_t>(strings.size()));
    if (fresh) {
      if (strings.size() >= 65535) return nullptr;
      strings.push_back(it->first);
    }
    token_string.push_back(it->second);
    token_word.push_back(word);
  }
  return std::make_unique<TfidfWordMasks>(v, static_cast<int64_t>(words.size()), std::move(token_string),
                                          std::move(token_word), std::move(strings));
}

}  // namespace kiln::prep
