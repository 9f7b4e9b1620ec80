#include "kiln/text/wordpiece.h"

#include <algorithm>
#include <cstring>

#include "kiln/core/error.h"
#include "bert_words.h"
#include "wordpiece_chars.h"

namespace kiln::text {
namespace {

namespace wc = wordpiece_chars;
using Token = WordPieceScratch::Token;

std::uint64_t hash_bytes(const char* p, std::size_t n) {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xFF51AFD7ED558CCDULL);
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
  }
  h ^= h >> 32;
  h *= 0xFF51AFD7ED558CCDULL;
  return h ^ (h >> 33);
}

bool is_trailing_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

constexpr const char* kSpecialNames[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

// Decodes one code point of possibly invalid UTF-8 at s[i]; advances i. Invalid bytes give U+FFFD.
char32_t decode(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  const std::size_t n = s.size();
  auto cont = [&](std::size_t k) { return k < n && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(i + 1)) {
    const char32_t c = ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
    i += 2;
    return c;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(i + 1) && cont(i + 2)) {
    const char32_t c = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
                       (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
    if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) {
      i += 3;
      return c;
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
    const char32_t c = ((b0 & 0x07u) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
                       ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) |
                       (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
    if (c >= 0x10000 && c < 0x110000) {
      i += 4;
      return c;
    }
  }
  ++i;
  return 0xFFFD;
}

// Builds the normalized words of one segment into the scratch buffers.
class Normalizer {
 public:
  Normalizer(WordPieceScratch& s, bool lowercase, bool strip) : s_(s), lowercase_(lowercase), strip_(strip) {}

  void ascii(char c, std::int32_t origin) {
    append_byte(c, origin);
  }
  void end_word() {
    const auto chars = static_cast<std::uint32_t>(s_.char_origin.size());
    if (s_.word_ends.empty() ? chars > 0 : s_.word_ends.back() != chars) s_.word_ends.push_back(chars);
  }
  // One original code point (not ASCII).
  void code_point(char32_t c, std::int32_t origin) {
    const std::uint8_t f = wc::flags(c);
    if (f & wc::kRemoved) return;
    if (f & wc::kCleanSpace) return end_word();
    const bool cjk = (f & wc::kChinese) != 0;
    if (cjk) end_word();
    if (strip_ && (f & wc::kHasStrip)) {
      char buf[16];
      const std::string_view d = wc::strip(c, buf);
      for (std::size_t i = 0; i < d.size();) lowered(decode(d, i), origin);
    } else {
      lowered(c, origin, f);
    }
    if (cjk) end_word();
  }

 private:
  void lowered(char32_t c, std::int32_t origin) { lowered(c, origin, wc::flags(c)); }
  void lowered(char32_t c, std::int32_t origin, std::uint8_t f) {
    if (lowercase_ && (f & wc::kHasLower)) {
      const std::string_view l = wc::lower(c);
      for (std::size_t i = 0; i < l.size();) emit(decode(l, i), origin);
    } else {
      emit(c, origin, f);
    }
  }
  void emit(char32_t c, std::int32_t origin) { emit(c, origin, wc::flags(c)); }
  // A normalized character, through BertPreTokenizer's rules.
  void emit(char32_t c, std::int32_t origin, std::uint8_t f) {
    if (f & wc::kSplitSpace) return end_word();
    if (f & wc::kPunct) end_word();
    char buf[4];
    std::size_t n;
    if (c < 0x80) {
      buf[0] = static_cast<char>(c);
      n = 1;
    } else if (c < 0x800) {
      buf[0] = static_cast<char>(0xC0 | (c >> 6));
      buf[1] = static_cast<char>(0x80 | (c & 0x3F));
      n = 2;
    } else if (c < 0x10000) {
      buf[0] = static_cast<char>(0xE0 | (c >> 12));
      buf[1] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      buf[2] = static_cast<char>(0x80 | (c & 0x3F));
      n = 3;
    } else {
      buf[0] = static_cast<char>(0xF0 | (c >> 18));
      buf[1] = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      buf[2] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      buf[3] = static_cast<char>(0x80 | (c & 0x3F));
      n = 4;
    }
    s_.normalized.append(buf, n);
    s_.char_origin.push_back(origin);
    s_.char_bytes.push_back(static_cast<std::uint32_t>(s_.normalized.size()));
    if (f & wc::kPunct) end_word();
  }
  void append_byte(char c, std::int32_t origin) {
    s_.normalized.push_back(c);
    s_.char_origin.push_back(origin);
    s_.char_bytes.push_back(static_cast<std::uint32_t>(s_.normalized.size()));
  }

  WordPieceScratch& s_;
  bool lowercase_, strip_;
};

// What an ASCII byte does: 0 removed, 1 whitespace (split), 2 punctuation (isolated), 3 letter.
struct AsciiTable {
  std::uint8_t action[128];
  char lower[128];
};

const AsciiTable& ascii_table() {
  static const AsciiTable t = [] {
    AsciiTable a{};
    for (int c = 0; c < 128; ++c) {
      const std::uint8_t f = wc::flags(static_cast<char32_t>(c));
      a.action[c] = (f & wc::kRemoved) ? 0 : (f & (wc::kCleanSpace | wc::kSplitSpace)) ? 1 : (f & wc::kPunct) ? 2 : 3;
      a.lower[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return a;
  }();
  return t;
}

}  // namespace

// ---- WordPieceVocab ----

void WordPieceVocab::insert(Table& t, std::string_view key, std::int32_t id) {
  const std::uint64_t h = hash_bytes(key.data(), key.size());
  std::uint64_t i = h & t.mask;
  while (true) {
    std::uint64_t& slot = t.slots[i];
    if (slot == 0) {
      slot = (h & 0xFFFFFFFF00000000ULL) | static_cast<std::uint64_t>(id + 1);
      return;
    }
    if ((slot >> 32) == (h >> 32)) {
      const auto other = static_cast<std::int32_t>((slot & 0xFFFFFFFFULL) - 1);
      std::string_view ok = tokens_[static_cast<std::size_t>(other)];
      if (&t == &continuations_) ok.remove_prefix(2);
      if (ok == key) {  // listed twice: the last id wins, as in HF's HashMap
        slot = (h & 0xFFFFFFFF00000000ULL) | static_cast<std::uint64_t>(id + 1);
        return;
      }
    }
    i = (i + 1) & t.mask;
  }
}

std::int32_t WordPieceVocab::lookup(const Table& t, std::string_view key, std::size_t skip) const {
  const std::uint64_t h = hash_bytes(key.data(), key.size());
  std::uint64_t i = h & t.mask;
  while (true) {
    const std::uint64_t slot = t.slots[i];
    if (slot == 0) return -1;
    if ((slot >> 32) == (h >> 32)) {
      const auto id = static_cast<std::int32_t>((slot & 0xFFFFFFFFULL) - 1);
      const std::string& tok = tokens_[static_cast<std::size_t>(id)];
      if (tok.size() == key.size() + skip && std::memcmp(tok.data() + skip, key.data(), key.size()) == 0) return id;
    }
    i = (i + 1) & t.mask;
  }
}

WordPieceVocab WordPieceVocab::parse(std::string_view contents, const std::string& name) {
  WordPieceVocab v;
  std::size_t pos = 0;
  while (pos < contents.size()) {
    std::size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(pos, end - pos);
    while (!line.empty() && is_trailing_space(line.back())) line.remove_suffix(1);
    v.tokens_.emplace_back(line);
    pos = end + 1;
  }
  if (v.tokens_.empty()) {
    throw DataError(name + ": the vocabulary is empty; pass a BERT vocab.txt (one token a line), e.g. "
                           "the one `kiln data fetch bert-base-uncased-vocab` writes");
  }
  if (v.tokens_.size() >= 0x7FFFFFFF) throw DataError(name + ": more than 2^31 - 2 tokens");
  std::size_t capacity = 16;
  while (capacity < v.tokens_.size() * 2) capacity *= 2;
  v.words_.slots.assign(capacity, 0);
  v.words_.mask = capacity - 1;
  v.continuations_.slots.assign(capacity, 0);
  v.continuations_.mask = capacity - 1;
  for (std::size_t id = 0; id < v.tokens_.size(); ++id) {
    const std::string_view tok = v.tokens_[id];
    v.insert(v.words_, tok, static_cast<std::int32_t>(id));
    if (tok.size() >= 2 && tok[0] == '#' && tok[1] == '#')
      v.insert(v.continuations_, tok.substr(2), static_cast<std::int32_t>(id));
  }
  std::string missing;
  for (const char* s : {"[UNK]", "[CLS]", "[SEP]", "[PAD]"}) {
    if (v.find(s) < 0) missing += std::string(missing.empty() ? "" : ", ") + s;
  }
  if (!missing.empty()) {
    throw DataError(name + ": the vocabulary lacks " + missing + " (" + std::to_string(v.tokens_.size()) +
                    " tokens read); a BERT vocab.txt lists [PAD], [UNK], [CLS], [SEP] and [MASK] as tokens of "
                    "their own line: add them, or use `kiln data fetch bert-base-uncased-vocab`");
  }
  v.unk_ = v.find("[UNK]");
  v.cls_ = v.find("[CLS]");
  v.sep_ = v.find("[SEP]");
  v.pad_ = v.find("[PAD]");
  for (const char* s : kSpecialNames) {
    if (const std::int32_t id = v.find(s); id >= 0) v.specials_.emplace_back(s, id);
  }
  return v;
}

std::string_view WordPieceVocab::token(std::int64_t id) const {
  if (id < 0 || id >= size()) return {};
  return tokens_[static_cast<std::size_t>(id)];
}

std::int32_t WordPieceVocab::find(std::string_view token) const { return lookup(words_, token, 0); }
std::int32_t WordPieceVocab::find_continuation(std::string_view piece) const {
  return lookup(continuations_, piece, 2);
}

std::string WordPieceVocab::to_text() const {
  std::string out;
  for (const auto& t : tokens_) {
    out += t;
    out += '\n';
  }
  return out;
}

// ---- options, encoding ----

void WordPieceOptions::validate(const std::string& prefix) const {
  if (max_length != 0 && max_length < 3) {
    throw ConfigError(prefix + "max_length must be 0 (no truncation) or >= 3 (room for [CLS], [SEP] and a token), got " +
                      std::to_string(max_length));
  }
  if (max_length > 0x7FFFFFFF) {
    throw ConfigError(prefix + "max_length must be < 2^31, got " + std::to_string(max_length));
  }
  if (pad_to_max_length && max_length == 0) {
    throw ConfigError(prefix + "padding to max_length needs a max_length (>= 3)");
  }
  if (max_input_chars_per_word < 1) {
    throw ConfigError(prefix + "max_input_chars_per_word must be >= 1, got " + std::to_string(max_input_chars_per_word));
  }
}

void WordPieceEncoding::clear() {
  ids.clear();
  type_ids.clear();
  attention_mask.clear();
  offsets.clear();
}

// ---- tokenizer ----

WordPieceTokenizer::WordPieceTokenizer(std::shared_ptr<const WordPieceVocab> vocab, WordPieceOptions options)
    : vocab_(std::move(vocab)), options_(options) {
  if (!vocab_) throw ConfigError("WordPieceTokenizer needs a vocabulary");
  options_.validate();
  strip_accents_ = options_.strip_accents.value_or(options_.lowercase);
}

void WordPieceTokenizer::word_pieces(WordPieceScratch& s, std::uint32_t first, std::uint32_t last,
                                     std::vector<Token>& out) const {
  const std::int32_t word_start = s.char_origin[first], word_end = s.char_origin[last - 1] + 1;
  if (static_cast<std::int64_t>(last - first) > options_.max_input_chars_per_word) {
    out.push_back({vocab_->unk_id(), word_start, word_end});
    return;
  }
  const std::size_t mark = out.size();
  const char* base = s.normalized.data();
  std::uint32_t start = first;
  while (start < last) {
    std::uint32_t end = last;
    std::int32_t id = -1;
    const std::uint32_t from = start == 0 ? 0 : s.char_bytes[start - 1];
    for (; end > start; --end) {
      const std::string_view piece(base + from, s.char_bytes[end - 1] - from);
      id = start == first ? vocab_->find(piece) : vocab_->find_continuation(piece);
      if (id >= 0) break;
    }
    if (id < 0) {
      out.resize(mark);
      out.push_back({vocab_->unk_id(), word_start, word_end});
      return;
    }
    out.push_back({id, s.char_origin[start], s.char_origin[end - 1] + 1});
    start = end;
  }
}

void bert_words(std::string_view text, bool lowercase, bool strip_accents, std::int32_t cp_base,
                WordPieceScratch& s) {
  s.normalized.clear();
  s.char_bytes.clear();  // char_bytes[i] = end byte of character i
  s.char_origin.clear();
  s.word_ends.clear();
  Normalizer norm(s, lowercase, strip_accents);
  const AsciiTable& at = ascii_table();
  std::int32_t cp = cp_base;
  for (std::size_t i = 0; i < text.size(); ++cp) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      ++i;
      switch (at.action[b]) {
        case 0: break;
        case 1: norm.end_word(); break;
        case 2:
          norm.end_word();
          norm.ascii(static_cast<char>(b), cp);
          norm.end_word();
          break;
        default: norm.ascii(lowercase ? at.lower[b] : static_cast<char>(b), cp);
      }
    } else {
      norm.code_point(decode(text, i), cp);
    }
  }
  norm.end_word();
}

void WordPieceTokenizer::tokenize_segment(std::string_view text, std::int32_t cp_base, std::vector<Token>& out,
                                          WordPieceScratch& s) const {
  bert_words(text, options_.lowercase, strip_accents_, cp_base, s);
  std::uint32_t first = 0;
  for (const std::uint32_t end : s.word_ends) {
    word_pieces(s, first, end, out);
    first = end;
  }
}

void WordPieceTokenizer::tokenize(std::string_view text, std::vector<Token>& out, WordPieceScratch& s) const {
  // Special tokens are matched in the original text first (HF's added tokens, normalized: false).
  const auto& specials = vocab_->special_tokens();
  std::size_t seg = 0, pos = 0;
  std::int32_t cp = 0;
  auto count_cps = [](std::string_view t) {
    std::int32_t n = 0;
    for (std::size_t i = 0; i < t.size();) {
      (void)decode(t, i);
      ++n;
    }
    return n;
  };
  while ((pos = text.find('[', pos)) != std::string_view::npos) {
    const std::pair<std::string, std::int32_t>* hit = nullptr;
    for (const auto& sp : specials) {
      if (text.compare(pos, sp.first.size(), sp.first) == 0) {
        hit = &sp;
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    const std::string_view before = text.substr(seg, pos - seg);
    tokenize_segment(before, cp, out, s);
    cp += count_cps(before);
    const auto len = static_cast<std::int32_t>(hit->first.size());
    out.push_back({hit->second, cp, cp + len});
    cp += len;
    pos += hit->first.size();
    seg = pos;
  }
  tokenize_segment(text.substr(seg), cp, out, s);
}

void WordPieceTokenizer::encode(std::string_view a, const std::string_view* b, WordPieceEncoding& out,
                                WordPieceScratch& s) const {
  out.clear();
  s.a.clear();
  s.b.clear();
  tokenize(a, s.a, s);
  if (b != nullptr) tokenize(*b, s.b, s);
  std::size_t na = s.a.size(), nb = s.b.size();
  if (options_.max_length > 0) {
    // HF's truncate_encodings with max_length less the template's special tokens.
    const auto limit = static_cast<std::size_t>(options_.max_length - (b != nullptr ? 3 : 2));
    if (limit == 0) {
      na = nb = 0;
    } else if (na + nb > limit) {
      if (b == nullptr) {
        na = limit;
      } else {
        // HF's longest_first (truncate_encodings), as tokenizers 0.23.2 behaves: measured, since
        // its source reads otherwise, when the shorter text alone reaches max_length both get
        // limit / 2 and limit / 2 + limit % 2 in order, without the swap back.
        std::size_t n1 = na, n2 = nb;
        if (std::min(n1, n2) >= static_cast<std::size_t>(options_.max_length)) {
          na = limit / 2;
          nb = limit / 2 + limit % 2;
        } else {
          const bool swap = n1 > n2;
          if (swap) std::swap(n1, n2);
          n2 = n1 > limit ? n1 : std::max(n1, limit - n1);
          if (n1 + n2 > limit) {
            n1 = limit / 2;
            n2 = n1 + limit % 2;
          }
          if (swap) std::swap(n1, n2);
          na = std::min(na, n1);
          nb = std::min(nb, n2);
        }
      }
    }
  }
  auto push = [&out](std::int32_t id, std::int32_t type, std::int32_t start, std::int32_t end) {
    out.ids.push_back(id);
    out.type_ids.push_back(type);
    out.attention_mask.push_back(1);
    out.offsets.push_back({start, end});
  };
  const std::int32_t cls = vocab_->cls_id(), sep = vocab_->sep_id();
  push(cls, 0, 0, 0);
  for (std::size_t i = 0; i < na; ++i) push(s.a[i].id, 0, s.a[i].start, s.a[i].end);
  push(sep, 0, 0, 0);
  if (b != nullptr) {
    for (std::size_t i = 0; i < nb; ++i) push(s.b[i].id, 1, s.b[i].start, s.b[i].end);
    push(sep, 1, 0, 0);
  }
  if (options_.pad_to_max_length) {
    const auto target = static_cast<std::size_t>(options_.max_length);
    while (out.ids.size() < target) {
      out.ids.push_back(vocab_->pad_id());
      out.type_ids.push_back(0);
      out.attention_mask.push_back(0);
      out.offsets.push_back({0, 0});
    }
  }
}

WordPieceEncoding WordPieceTokenizer::encode(std::string_view a, const std::string_view* b) const {
  WordPieceScratch s;
  WordPieceEncoding out;
  encode(a, b, out, s);
  return out;
}

std::vector<std::pair<std::size_t, std::size_t>> window_ranges(std::size_t n, std::size_t width, std::size_t stride) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (std::size_t start = 0;; start += width - stride) {
    const std::size_t stop = std::min(start + width, n);
    out.emplace_back(start, stop);
    if (stop == n) break;
  }
  return out;
}

}  // namespace kiln::text
