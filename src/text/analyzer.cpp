#include "kiln/text/analyzer.h"

#include <string>

#include "kiln/core/error.h"
#include "kiln/text/unicode.h"

namespace kiln::text {
namespace {

/// Fast word-character test for the byte at s[i]; decodes multibyte sequences. Advances i.
inline bool next_is_word(std::string_view s, std::size_t& i, char32_t& c) {
  c = next_code_point(s, i);
  return is_word_char(c);
}

/// Replaces runs of 2+ whitespace characters by one " " (Python `re.sub(r"\s\s+", " ", text)`).
void normalize_whitespace(std::string_view text, std::string& out) {
  out.clear();
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t begin = i;
    char32_t c = next_code_point(text, i);
    if (!is_space_char(c)) {
      out.append(text.data() + begin, i - begin);
      continue;
    }
    std::size_t run_end = i;
    int run = 1;
    while (run_end < text.size()) {
      std::size_t j = run_end;
      if (!is_space_char(next_code_point(text, j))) break;
      run_end = j;
      ++run;
    }
    if (run >= 2) {
      out.push_back(' ');
    } else {
      out.append(text.data() + begin, i - begin);
    }
    i = run_end;
  }
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
  if (cjk && analyzer != AnalyzerKind::kWord) {
    throw ConfigError(prefix + "cjk applies to the word analyzer only, got analyzer=" + analyzer_name(analyzer) +
                      "; drop cjk or use analyzer=word");
  }
}

Analyzer::Analyzer(AnalyzerOptions options) : options_(options) { options_.validate(); }

void Analyzer::word_tokens(std::string_view text, std::vector<std::string_view>& tokens) const {
  tokens.clear();
  const std::size_t n = text.size();
  std::size_t i = 0;
  char32_t c = 0;
  while (i < n) {
    // Skip non-word characters.
    std::size_t begin = i;
    if (!next_is_word(text, i, c)) continue;
    if (!options_.cjk) {
      std::size_t end = i;
      std::size_t count = 1;
      while (end < n) {
        std::size_t j = end;
        if (!next_is_word(text, j, c)) break;
        end = j;
        ++count;
      }
      if (count >= 2) tokens.emplace_back(text.data() + begin, end - begin);
      i = end;
      continue;
    }
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

void Analyzer::word_ngrams(AnalyzerScratch& scratch, std::vector<std::string_view>& terms) const {
  const auto& tokens = scratch.tokens;
  int min_n = options_.ngram_min;
  const int max_n = options_.ngram_max;
  const std::size_t count = tokens.size();
  terms.clear();
  if (max_n == 1) {
    terms.assign(tokens.begin(), tokens.end());
    return;
  }
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
  normalize_whitespace(text, scratch.text);
  const std::string& t = scratch.text;
  code_point_offsets(t, scratch.offsets);
  const auto& off = scratch.offsets;
  const std::size_t len = off.size() - 1;
  terms.clear();
  std::size_t min_n = static_cast<std::size_t>(options_.ngram_min);
  const std::size_t max_n = static_cast<std::size_t>(options_.ngram_max);
  if (min_n == 1) {
    for (std::size_t i = 0; i < len; ++i) terms.emplace_back(t.data() + off[i], off[i + 1] - off[i]);
    min_n = 2;
  }
  for (std::size_t n = min_n; n <= max_n && n <= len; ++n) {
    for (std::size_t i = 0; i + n <= len; ++i) terms.emplace_back(t.data() + off[i], off[i + n] - off[i]);
  }
}

void Analyzer::char_wb_ngrams(std::string_view text, AnalyzerScratch& scratch,
                              std::vector<std::string_view>& terms) const {
  // Whitespace normalization cannot change how str.split() cuts the text, so split directly.
  // Padded words " w " go into `joined`, sized first so views stay valid.
  auto& words = scratch.tokens;
  words.clear();
  std::size_t i = 0;
  std::size_t total = 0;
  while (i < text.size()) {
    std::size_t begin = i;
    if (is_space_char(next_code_point(text, i))) continue;
    std::size_t end = i;
    while (end < text.size()) {
      std::size_t j = end;
      if (is_space_char(next_code_point(text, j))) break;
      end = j;
    }
    words.emplace_back(text.data() + begin, end - begin);
    total += end - begin + 2;
    i = end;
  }
  std::string& joined = scratch.joined;
  joined.clear();
  joined.reserve(total);
  terms.clear();
  const std::size_t min_n = static_cast<std::size_t>(options_.ngram_min);
  const std::size_t max_n = static_cast<std::size_t>(options_.ngram_max);
  auto& off = scratch.offsets;
  for (std::string_view w : words) {
    std::size_t start = joined.size();
    joined.push_back(' ');
    joined.append(w);
    joined.push_back(' ');
    std::string_view padded(joined.data() + start, joined.size() - start);
    code_point_offsets(padded, off);
    const std::size_t w_len = off.size() - 1;
    for (std::size_t n = min_n; n <= max_n; ++n) {
      std::size_t offset = 0;
      auto slice = [&](std::size_t from, std::size_t count) {
        std::size_t to = std::min(from + count, w_len);
        return std::string_view(padded.data() + off[from], off[to] - off[from]);
      };
      terms.push_back(slice(offset, n));
      while (offset + n < w_len) {
        ++offset;
        terms.push_back(slice(offset, n));
      }
      if (offset == 0) break;  // a short word (w_len <= n) is counted once
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
      word_tokens(text, scratch.tokens);
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
