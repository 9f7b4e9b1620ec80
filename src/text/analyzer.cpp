#include "kiln/text/analyzer.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "byte_class.h"
#include "kiln/core/error.h"
#include "kiln/text/unicode.h"

namespace kiln::text {
namespace {

using detail::byte_class;

/// If the code point at s[i] (i < s.size()) is a word character, moves i past it and returns true.
inline bool take_word(std::string_view s, std::size_t& i) {
  const detail::ByteClass c = byte_class(static_cast<unsigned char>(s[i]));
  if (c == detail::kWord) {
    ++i;
    return true;
  }
  if (c != detail::kHigh) return false;
  std::size_t j = i;
  if (!is_word_char_slow(next_code_point(s, j))) return false;
  i = j;
  return true;
}

/// If the code point at s[i] (i < s.size()) is whitespace, moves i past it and returns true.
inline bool take_space(std::string_view s, std::size_t& i) {
  const detail::ByteClass c = byte_class(static_cast<unsigned char>(s[i]));
  if (c == detail::kSpace) {
    ++i;
    return true;
  }
  if (c != detail::kHigh) return false;
  std::size_t j = i;
  if (!is_space_char_slow(next_code_point(s, j))) return false;
  i = j;
  return true;
}

/// Fast word-character test for the code point at s[i]; decodes multibyte sequences. Advances i.
inline bool next_is_word(std::string_view s, std::size_t& i, char32_t& c) {
  c = next_code_point(s, i);
  return is_word_char(c);
}

/// Writes `text` with runs of 2+ whitespace characters replaced by one " " (Python
/// `re.sub(r"\s\s+", " ", text)`) into `out`. Returns true if the result is all ASCII.
bool normalize_whitespace(std::string_view text, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  out.resize(n);  // never grows
  char* o = out.data();
  std::size_t w = 0;
  bool ascii = true;
  std::size_t i = 0;
  while (i < n) {
    const std::size_t begin = i;
    if (!take_space(text, i)) {
      if (p[i] >= 0x80) {
        ascii = false;
        (void)next_code_point(text, i);
      } else {
        ++i;
      }
      std::memcpy(o + w, p + begin, i - begin);
      w += i - begin;
      continue;
    }
    const std::size_t first_end = i;
    int run = 1;
    while (i < n && take_space(text, i)) ++run;
    if (run >= 2) {
      o[w++] = ' ';
    } else {
      if (first_end - begin > 1) ascii = false;
      std::memcpy(o + w, p + begin, first_end - begin);
      w += first_end - begin;
    }
  }
  out.resize(w);
  return ascii;
}

/// Byte offsets of each code point of `s`, plus s.size() at the end.
void code_point_offsets(std::string_view s, std::vector<std::uint32_t>& offsets) {
  offsets.clear();
  std::size_t i = 0;
  while (i < s.size()) {
    offsets.push_back(static_cast<std::uint32_t>(i));
    (void)next_code_point(s, i);
  }
  offsets.push_back(static_cast<std::uint32_t>(s.size()));
}

/// Python's `[text[i:i + n] for n in range(min_n, max_n + 1) for i in range(len(text) - n + 1)]`
/// for ASCII `text` (one byte per character).
void ascii_char_ngrams(std::string_view text, std::size_t min_n, std::size_t max_n,
                       std::vector<std::string_view>& terms) {
  const std::size_t len = text.size();
  for (std::size_t n = min_n; n <= max_n && n <= len; ++n) {
    for (std::size_t i = 0; i + n <= len; ++i) terms.emplace_back(text.data() + i, n);
  }
}

/// scikit-learn's _char_wb_ngrams for one padded word " w ", given byte offsets of its code points
/// (`off` is null when the word is ASCII: offset k is then byte k).
void padded_word_ngrams(std::string_view padded, const std::uint32_t* off, std::size_t w_len, std::size_t min_n,
                        std::size_t max_n, std::vector<std::string_view>& terms) {
  auto slice = [&](std::size_t from, std::size_t count) {
    const std::size_t to = std::min(from + count, w_len);
    if (off == nullptr) return std::string_view(padded.data() + from, to - from);
    return std::string_view(padded.data() + off[from], off[to] - off[from]);
  };
  for (std::size_t n = min_n; n <= max_n; ++n) {
    std::size_t offset = 0;
    terms.push_back(slice(offset, n));
    while (offset + n < w_len) {
      ++offset;
      terms.push_back(slice(offset, n));
    }
    if (offset == 0) break;  // a short word (w_len <= n) is counted once
  }
}

}  // namespace

std::string analyzer_name(AnalyzerKind kind) {
  switch (kind) {
    case AnalyzerKind::kWord: return "word";
    case AnalyzerKind::kChar: return "char";
    case AnalyzerKind::kCharWb: return "char_wb";
  }
  return "word";
}

AnalyzerKind parse_analyzer(const std::string& name, const std::string& field) {
  if (name == "word") return AnalyzerKind::kWord;
  if (name == "char") return AnalyzerKind::kChar;
  if (name == "char_wb") return AnalyzerKind::kCharWb;
  throw ConfigError(field + " must be one of word, char, char_wb, got '" + name + "'");
}

void AnalyzerOptions::validate(const std::string& prefix) const {
  if (ngram_min < 1 || ngram_max < ngram_min) {
    throw ConfigError(prefix + "ngram_range must be (min, max) with 1 <= min <= max, got (" +
                      std::to_string(ngram_min) + ", " + std::to_string(ngram_max) + ")");
  }
  if (fasttext_tokens && analyzer != AnalyzerKind::kWord) {
    throw ConfigError(prefix + "fastText tokens apply to the word analyzer only, got analyzer=" + analyzer_name(analyzer) +
                      "; use analyzer=word");
  }
  if (cjk && analyzer != AnalyzerKind::kWord) {
    throw ConfigError(prefix + "cjk applies to the word analyzer only, got analyzer=" + analyzer_name(analyzer) +
                      "; drop cjk or use analyzer=word");
  }
}

Analyzer::Analyzer(AnalyzerOptions options) : options_(options) { options_.validate(); }

void Analyzer::word_tokens(std::string_view text, std::vector<std::string_view>& tokens) const {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  if (!options_.cjk) {
    // Python `re.findall(r"(?u)\b\w\w+\b", text)`: maximal runs of 2+ word characters. ASCII
    // bytes take one table lookup each; only bytes >= 0x80 are decoded.
    // Tokens are 2+ bytes apart by 1+ bytes, so (n + 1) / 3 bound their number: writing through
    // a pointer avoids a capacity check per token (resize only initializes the grown part).
    tokens.resize(n / 3 + 1);
    std::string_view* out = tokens.data();
    std::size_t found = 0;
    const unsigned char* const end = p + n;
    const unsigned char* s = p;
    while (s < end) {
      // kOther and kSpace are even, kWord and kHigh odd.
      while (s < end && (detail::kByteClasses[*s] & 1) == 0) ++s;
      if (s == end) break;
      const unsigned char* begin = s;
      std::size_t count = 0;
      while (true) {
        const unsigned char* run = s;
        while (s < end && detail::kByteClasses[*s] == detail::kWord) ++s;
        count += static_cast<std::size_t>(s - run);
        if (s == end || *s < 0x80) break;
        std::size_t k = static_cast<std::size_t>(s - p);
        if (!take_word(text, k)) break;
        s = p + k;
        ++count;
      }
      if (count >= 2) {
        out[found++] = std::string_view(reinterpret_cast<const char*>(begin), static_cast<std::size_t>(s - begin));
      } else if (count == 0) {
        std::size_t k = static_cast<std::size_t>(s - p);
        (void)next_code_point(text, k);  // a multibyte character that is not \w: skip it
        s = p + k;
      }
    }
    tokens.resize(found);
    return;
  }
  tokens.clear();
  char32_t c = 0;
  while (i < n) {
    // Skip non-word characters.
    std::size_t begin = i;
    if (!next_is_word(text, i, c)) continue;
    // cjk: split the word run into CJK runs (bigrams) and the rest (tokens of 2+ characters).
    std::size_t seg_begin = begin;
    bool seg_cjk = is_cjk_char(c);
    std::size_t seg_count = 1;
    std::size_t prev_begin = begin;  // start of the previous code point in a CJK run
    auto flush_other = [&](std::size_t end) {
      if (!seg_cjk && seg_count >= 2) tokens.emplace_back(text.data() + seg_begin, end - seg_begin);
      if (seg_cjk && seg_count == 1) tokens.emplace_back(text.data() + seg_begin, end - seg_begin);
    };
    std::size_t pos = i;
    while (true) {
      std::size_t cp_begin = pos;
      std::size_t j = pos;
      bool more = pos < n && next_is_word(text, j, c);
      if (!more) {
        flush_other(pos);
        i = pos;
        break;
      }
      bool cjk = is_cjk_char(c);
      if (cjk != seg_cjk) {
        flush_other(cp_begin);
        seg_begin = cp_begin;
        seg_cjk = cjk;
        seg_count = 1;
      } else {
        ++seg_count;
        if (cjk) tokens.emplace_back(text.data() + prev_begin, j - prev_begin);
      }
      prev_begin = cp_begin;
      pos = j;
    }
  }
}

namespace {

/// fastText's separate punctuation: . ! ? , ' / ( )
constexpr bool is_fasttext_punct(unsigned char b) {
  return b == '.' || b == '!' || b == '?' || b == ',' || b == '\'' || b == '/' || b == '(' || b == ')';
}

/// Appends the tokens of one piece (no whitespace, no separate punctuation) with CJK runs as
/// character bigrams (a lone CJK character a unigram) and the text between them as tokens.
void cjk_piece(std::string_view piece, std::vector<std::string_view>& tokens) {
  std::size_t other_begin = 0;   // start of the current non-CJK part
  std::size_t prev = std::string_view::npos;  // start of the previous code point of a CJK run
  std::size_t run = 0;           // CJK characters in the current run
  std::size_t i = 0;
  auto end_run = [&](std::size_t at) {
    if (run == 1) tokens.push_back(piece.substr(prev, at - prev));
    run = 0;
  };
  while (i < piece.size()) {
    const std::size_t begin = i;
    const char32_t c = next_code_point(piece, i);
    if (is_cjk_char(c)) {
      if (run == 0 && begin > other_begin) tokens.push_back(piece.substr(other_begin, begin - other_begin));
      if (run > 0) tokens.push_back(piece.substr(prev, i - prev));
      prev = begin;
      ++run;
      other_begin = i;
    } else if (run > 0) {
      end_run(begin);
      other_begin = begin;
    }
  }
  if (run > 0) {
    end_run(piece.size());
  } else if (piece.size() > other_begin) {
    tokens.push_back(piece.substr(other_begin));
  }
}

}  // namespace

void Analyzer::fasttext_tokens(std::string_view text, std::vector<std::string_view>& tokens) const {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  tokens.clear();
  auto piece = [&](std::size_t begin, std::size_t end, bool high) {
    if (end <= begin) return;
    const std::string_view t(text.data() + begin, end - begin);
    if (options_.cjk && high) {
      cjk_piece(t, tokens);
    } else {
      tokens.push_back(t);
    }
  };
  std::size_t i = 0;
  std::size_t begin = 0;
  bool high = false;  // the current piece has a byte >= 0x80
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      if (detail::kByteClasses[b] == detail::kSpace) {
        piece(begin, i, high);
        begin = ++i;
        high = false;
      } else if (is_fasttext_punct(b)) {
        piece(begin, i, high);
        tokens.emplace_back(text.data() + i, 1);
        begin = ++i;
        high = false;
      } else {
        ++i;
      }
      continue;
    }
    const std::size_t at = i;
    if (is_space_char_slow(next_code_point(text, i))) {
      piece(begin, at, high);
      begin = i;
      high = false;
    } else {
      high = true;
    }
  }
  piece(begin, n, high);
}

void Analyzer::word_ngrams(AnalyzerScratch& scratch, std::vector<std::string_view>& terms) const {
  const auto& tokens = scratch.tokens;
  int min_n = options_.ngram_min;
  const int max_n = options_.ngram_max;
  const std::size_t count = tokens.size();
  terms.clear();
  if (min_n == 1) {
    terms.assign(tokens.begin(), tokens.end());
    min_n = 2;
  }
  // Exact size of all joined n-grams, so the views into `joined` never move.
  std::size_t total = 0;
  for (int n = min_n; n <= max_n && static_cast<std::size_t>(n) <= count; ++n) {
    std::size_t window = 0;
    for (int k = 0; k < n; ++k) window += tokens[k].size();
    total += window + (n - 1);
    for (std::size_t i = 1; i + n <= count; ++i) {
      window += tokens[i + n - 1].size() - tokens[i - 1].size();
      total += window + (n - 1);
    }
  }
  std::string& joined = scratch.joined;
  joined.clear();
  joined.reserve(total);
  for (int n = min_n; n <= max_n && static_cast<std::size_t>(n) <= count; ++n) {
    for (std::size_t i = 0; i + n <= count; ++i) {
      std::size_t start = joined.size();
      for (int k = 0; k < n; ++k) {
        if (k) joined.push_back(' ');
        joined.append(tokens[i + k]);
      }
      terms.emplace_back(joined.data() + start, joined.size() - start);
    }
  }
}

void Analyzer::char_ngrams(std::string_view text, AnalyzerScratch& scratch,
                           std::vector<std::string_view>& terms) const {
  const bool ascii = normalize_whitespace(text, scratch.text);
  const std::string_view t = scratch.text;
  terms.clear();
  const auto min_n = static_cast<std::size_t>(options_.ngram_min);
  const auto max_n = static_cast<std::size_t>(options_.ngram_max);
  if (ascii) {
    ascii_char_ngrams(t, min_n, max_n, terms);
    return;
  }
  code_point_offsets(t, scratch.offsets);
  const auto& off = scratch.offsets;
  const std::size_t len = off.size() - 1;
  for (std::size_t n = min_n; n <= max_n && n <= len; ++n) {
    for (std::size_t i = 0; i + n <= len; ++i) terms.emplace_back(t.data() + off[i], off[i + n] - off[i]);
  }
}

void Analyzer::char_wb_ngrams(std::string_view text, AnalyzerScratch& scratch,
                              std::vector<std::string_view>& terms) const {
  // Whitespace normalization cannot change how str.split() cuts the text, so split directly.
  // The padded words " w " are written as " w1 w2 ... wk " into scratch.text (sized once, so the
  // views stay valid), neighbours sharing their space.
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::string& out = scratch.text;
  out.resize(n + 2);  // every word but the last is followed by at least one whitespace byte
  char* o = out.data();
  std::size_t w = 0;
  o[w++] = ' ';
  terms.clear();
  const auto min_n = static_cast<std::size_t>(options_.ngram_min);
  const auto max_n = static_cast<std::size_t>(options_.ngram_max);
  std::size_t i = 0;
  while (i < n) {
    if (take_space(text, i)) continue;
    const std::size_t begin = i;
    bool ascii = true;
    while (i < n) {
      const detail::ByteClass c = byte_class(p[i]);
      if (c == detail::kSpace) break;
      if (c != detail::kHigh) {
        ++i;
        continue;
      }
      ascii = false;
      std::size_t j = i;
      if (is_space_char_slow(next_code_point(text, j))) break;
      i = j;
    }
    std::memcpy(o + w, p + begin, i - begin);
    const std::size_t start = w - 1;
    w += i - begin;
    o[w++] = ' ';
    const std::string_view padded(o + start, w - start);
    if (ascii) {
      padded_word_ngrams(padded, nullptr, padded.size(), min_n, max_n, terms);
    } else {
      code_point_offsets(padded, scratch.offsets);
      padded_word_ngrams(padded, scratch.offsets.data(), scratch.offsets.size() - 1, min_n, max_n, terms);
    }
  }
}

void Analyzer::analyze(std::string_view doc, AnalyzerScratch& scratch, std::vector<std::string_view>& terms) const {
  std::string_view text = doc;
  if (options_.lowercase) {
    python_lower(doc, scratch.lowered);
    text = scratch.lowered;
  }
  switch (options_.analyzer) {
    case AnalyzerKind::kWord:
      if (options_.ngram_max == 1) {  // unigrams: the tokens are the terms
        if (options_.fasttext_tokens) {
          fasttext_tokens(text, terms);
        } else {
          word_tokens(text, terms);
        }
        return;
      }
      if (options_.fasttext_tokens) {
        fasttext_tokens(text, scratch.tokens);
      } else {
        word_tokens(text, scratch.tokens);
      }
      word_ngrams(scratch, terms);
      return;
    case AnalyzerKind::kChar:
      char_ngrams(text, scratch, terms);
      return;
    case AnalyzerKind::kCharWb:
      char_wb_ngrams(text, scratch, terms);
      return;
  }
}

std::vector<std::string> Analyzer::analyze(std::string_view doc) const {
  AnalyzerScratch scratch;
  std::vector<std::string_view> terms;
  analyze(doc, scratch, terms);
  return {terms.begin(), terms.end()};
}

}  // namespace kiln::text
