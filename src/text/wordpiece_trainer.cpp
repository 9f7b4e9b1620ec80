#include "kiln/text/wordpiece_trainer.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <utility>

#include "bert_words.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/core/utf8.h"

namespace kiln::text {

// ---- word counts ----

// Distinct words (UTF-8, back to back in one buffer) with their counts; open addressing.
class WordTable {
 public:
  void add(std::string_view w, std::uint64_t n) {
    if ((size() + 1) * 2 > slots_.size()) grow();
    const std::uint64_t h = std::hash<std::string_view>{}(w);
    const std::uint64_t tag = h & 0xFFFFFFFF00000000ULL;
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const std::uint64_t slot = slots_[i];
      if (slot == 0) {
        slots_[i] = tag | (size() + 1);
        starts_.push_back(bytes_.size());
        bytes_.append(w);
        counts_.push_back(n);
        return;
      }
      if ((slot & 0xFFFFFFFF00000000ULL) == tag) {
        const std::size_t id = (slot & 0xFFFFFFFFULL) - 1;
        if (word(id) == w) {
          counts_[id] += n;
          return;
        }
      }
    }
  }
  void add_all(const WordTable& other) {
    for (std::size_t i = 0; i < other.size(); ++i) add(other.word(i), other.counts_[i]);
  }
  [[nodiscard]] std::size_t size() const { return counts_.size(); }
  [[nodiscard]] std::string_view word(std::size_t i) const {
    const std::size_t end = i + 1 < starts_.size() ? starts_[i + 1] : bytes_.size();
    return std::string_view(bytes_).substr(starts_[i], end - starts_[i]);
  }
  [[nodiscard]] std::uint64_t count(std::size_t i) const { return counts_[i]; }
  [[nodiscard]] std::uint64_t total() const {
    std::uint64_t t = 0;
    for (const std::uint64_t c : counts_) t += c;
    return t;
  }

 private:
  void grow() {
    if (size() >= 0xFFFFFFFEULL) throw DataError("more than 2^32 - 2 distinct words; train on a sample of the corpus");
    const std::size_t capacity = std::max<std::size_t>(64, slots_.size() * 2);
    std::vector<std::uint64_t> old = std::move(slots_);
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (const std::uint64_t slot : old) {
      if (slot == 0) continue;
      const std::size_t id = (slot & 0xFFFFFFFFULL) - 1;
      std::size_t i = std::hash<std::string_view>{}(word(id)) & mask_;
      while (slots_[i] != 0) i = (i + 1) & mask_;
      slots_[i] = slot;
    }
  }

  std::string bytes_;
  std::vector<std::size_t> starts_;
  std::vector<std::uint64_t> counts_;
  std::vector<std::uint64_t> slots_;  ///< (hash high 32 bits) | (id + 1); 0 = empty
  std::size_t mask_ = 0;
};

struct WordPieceTrainer::Counts {
  WordTable words;
};

namespace {

// Feeds one text's words into `table`.
void count_words(std::string_view text, const WordPieceTrainerOptions& o, WordPieceScratch& s, WordTable& table) {
  bert_words(text, o.lowercase, o.strip_accents.value_or(o.lowercase), 0, s);
  std::uint32_t first = 0;
  for (const std::uint32_t end : s.word_ends) {
    const std::uint32_t from = first == 0 ? 0 : s.char_bytes[first - 1];
    table.add(std::string_view(s.normalized).substr(from, s.char_bytes[end - 1] - from), 1);
    first = end;
  }
}

// ---- the merge learner (HF's BpeTrainer::do_train) ----

using Pair = std::uint64_t;  // (first id << 32) | second id: ordering pairs orders (first, second)
Pair make_pair_key(std::uint32_t a, std::uint32_t b) { return (static_cast<std::uint64_t>(a) << 32) | b; }
std::uint32_t first_of(Pair p) { return static_cast<std::uint32_t>(p >> 32); }
std::uint32_t second_of(Pair p) { return static_cast<std::uint32_t>(p & 0xFFFFFFFFULL); }

// Pair -> count (signed, as HF's; a pair's count never goes below 0). Keys are never removed.
class PairCounts {
 public:
  std::int64_t& operator[](Pair key) {
    if ((size_ + 1) * 2 > keys_.size()) grow();
    std::size_t i = slot(key);
    if (keys_[i] != key) {
      keys_[i] = key;
      values_[i] = 0;
      ++size_;
    }
    return values_[i];
  }
  [[nodiscard]] std::int64_t get(Pair key) const {
    if (keys_.empty()) return 0;
    const std::size_t i = slot(key);
    return keys_[i] == key ? values_[i] : 0;
  }

 private:
  static constexpr Pair kEmpty = ~0ULL;  // (2^32 - 1, 2^32 - 1): no token has that id
  [[nodiscard]] std::size_t slot(Pair key) const {
    std::uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
    std::size_t i = h & (keys_.size() - 1);
    while (keys_[i] != key && keys_[i] != kEmpty) i = (i + 1) & (keys_.size() - 1);
    return i;
  }
  void grow() {
    std::vector<Pair> old_keys = std::move(keys_);
    std::vector<std::int64_t> old_values = std::move(values_);
    const std::size_t capacity = std::max<std::size_t>(1024, old_keys.size() * 2);
    keys_.assign(capacity, kEmpty);
    values_.assign(capacity, 0);
    for (std::size_t j = 0; j < old_keys.size(); ++j) {
      if (old_keys[j] == kEmpty) continue;
      const std::size_t i = slot(old_keys[j]);
      keys_[i] = old_keys[j];
      values_[i] = old_values[j];
    }
  }

  std::vector<Pair> keys_;
  std::vector<std::int64_t> values_;
  std::size_t size_ = 0;
};

// A candidate merge in the queue: HF's `Merge` (count when queued, the pair, the words where it
// was seen when queued). A pair can be queued several times with different words.
struct Candidate {
  std::uint64_t count;
  Pair pair;
  std::vector<std::uint32_t> words;
};
// Heap order: the highest count on top; equal counts, the lower pair.
bool below(const Candidate& x, const Candidate& y) {
  return x.count != y.count ? x.count < y.count : x.pair > y.pair;
}

// Words as piece ids, back to back; merges compact a word in place.
struct Words {
  std::vector<std::uint32_t> pieces;
  std::vector<std::size_t> start;
  std::vector<std::uint32_t> length;
  std::vector<std::uint64_t> count;
};

// Pair-count changes of one merge step, and where new pairs appeared (HF's `where_to_update`).
class Changes {
 public:
  void add(Pair p, int delta, std::uint32_t word, std::uint64_t count, PairCounts& counts) {
    counts[p] += delta * static_cast<std::int64_t>(count);
    if (delta <= 0) return;
    auto [it, fresh] = index_.try_emplace(p, appeared_.size());
    if (fresh) appeared_.push_back({p, {}});
    auto& words = appeared_[it->second].second;
    if (words.empty() || words.back() != word) words.push_back(word);
  }
  std::vector<std::pair<Pair, std::vector<std::uint32_t>>>& appeared() { return appeared_; }
  void clear() {
    index_.clear();
    appeared_.clear();
  }

 private:
  std::unordered_map<Pair, std::size_t> index_;
  std::vector<std::pair<Pair, std::vector<std::uint32_t>>> appeared_;
};

// HF's Word::merge: replaces each (a, b) of word w, left to right, by `merged`, reporting to
// `change(pair, delta)` the pair counts that change: the pair with the previous piece and with the
// next one each lose one occurrence and gain one with `merged`. (The pair (a, b) itself keeps its
// count, as in HF.) Words are independent: different words can be merged on different threads.
template <typename Change>
void merge_word(Words& ws, std::uint32_t w, std::uint32_t a, std::uint32_t b, std::uint32_t merged,
                const Change& change) {
  std::uint32_t* p = ws.pieces.data() + ws.start[w];
  const std::uint32_t n = ws.length[w];
  std::uint32_t out = 0, in = 0;
  while (in < n) {
    if (p[in] == a && in + 1 < n && p[in + 1] == b) {
      if (out > 0) {
        change(make_pair_key(p[out - 1], a), -1);
        change(make_pair_key(p[out - 1], merged), 1);
      }
      p[out++] = merged;
      in += 2;
      if (in < n) {
        change(make_pair_key(b, p[in]), -1);
        change(make_pair_key(merged, p[in]), 1);
      }
    } else {
      p[out++] = p[in++];
    }
  }
  ws.length[w] = out;
}

// One merge step over the words of `where`: on several threads when there are many (each records
// its changes, applied afterwards in word order, so the result is the sequential one).
void merge_words(Words& ws, const std::vector<std::uint32_t>& where, std::uint32_t a, std::uint32_t b,
                 std::uint32_t merged, Changes& changes, PairCounts& counts) {
  constexpr std::size_t kParallelWords = 4096;
  const std::size_t chunks = where.size() >= kParallelWords ? core::chunk_count(where.size()) : 1;
  if (chunks <= 1) {
    for (const std::uint32_t w : where) {
      merge_word(ws, w, a, b, merged,
                 [&](Pair p, int delta) { changes.add(p, delta, w, ws.count[w], counts); });
    }
    return;
  }
  struct Raw {
    Pair pair;
    std::int32_t delta;
    std::uint32_t word;
  };
  std::vector<std::vector<Raw>> raw(chunks);
  core::parallel_chunks(where.size(), [&](std::size_t begin, std::size_t end, std::size_t c) {
    for (std::size_t i = begin; i < end; ++i) {
      const std::uint32_t w = where[i];
      merge_word(ws, w, a, b, merged, [&](Pair p, int delta) { raw[c].push_back({p, delta, w}); });
    }
  }, static_cast<int>(chunks));
  for (const auto& r : raw)
    for (const Raw& x : r) changes.add(x.pair, x.delta, x.word, ws.count[x.word], counts);
}

struct Vocabulary {
  std::vector<std::string> tokens;
  std::unordered_map<std::string, std::uint32_t> ids;

  // The id of `token`, adding it at the end when new.
  std::uint32_t add(const std::string& token) {
    auto [it, fresh] = ids.try_emplace(token, static_cast<std::uint32_t>(tokens.size()));
    if (fresh) tokens.push_back(token);
    return it->second;
  }
  [[nodiscard]] bool has(const std::string& token) const { return ids.count(token) != 0; }
};

std::string utf8_of(char32_t cp) {
  std::string s;
  core::append_utf8(s, cp);
  return s;
}

std::string number(std::int64_t v) { return std::to_string(v); }

}  // namespace

// ---- options ----

void WordPieceTrainerOptions::validate(const std::string& prefix) const {
  if (vocab_size < 1 || vocab_size > 0x7FFFFFFE) {
    throw ConfigError(prefix + "vocab_size must be in [1, 2^31 - 2], got " + number(vocab_size) +
                      "; BERT vocabularies hold 8,000 to 30,000 tokens");
  }
  if (min_frequency < 0) {
    throw ConfigError(prefix + "min_frequency must be >= 0 (0 = merge every pair that occurs), got " +
                      number(min_frequency));
  }
  if (limit_alphabet && *limit_alphabet < 0) {
    throw ConfigError(prefix + "limit_alphabet must be >= 0 (or unset for no limit), got " + number(*limit_alphabet));
  }
  if (continuing_subword_prefix.empty()) {
    throw ConfigError(prefix + "continuing_subword_prefix must not be empty; BERT's is \"##\"");
  }
  for (const auto& t : special_tokens) {
    if (t.empty() || t.find_first_of(" \t\r\n\v\f") != std::string::npos) {
      throw ConfigError(prefix + "special_tokens: '" + t +
                        "' cannot be a line of vocab.txt (empty or with whitespace); use tokens like [PAD]");
    }
  }
  for (const auto& c : continuation_order) {
    bool one = !c.empty() && core::find_invalid_utf8(c) == std::string::npos;
    if (one) {
      std::size_t i = 0;
      (void)core::decode_utf8(c, i);
      one = i == c.size();
    }
    if (!one) {
      throw ConfigError(prefix + "continuation_order: '" + c + "' is not one character (one UTF-8 code point)");
    }
  }
}

// ---- trainer ----

WordPieceTrainer::WordPieceTrainer(WordPieceTrainerOptions options)
    : options_(std::move(options)), counts_(std::make_unique<Counts>()) {
  options_.validate();
}
WordPieceTrainer::~WordPieceTrainer() = default;
WordPieceTrainer::WordPieceTrainer(WordPieceTrainer&&) noexcept = default;
WordPieceTrainer& WordPieceTrainer::operator=(WordPieceTrainer&&) noexcept = default;

void WordPieceTrainer::feed(std::string_view text) {
  WordPieceScratch s;
  count_words(text, options_, s, counts_->words);
}

void WordPieceTrainer::feed(const std::vector<std::string>& texts) {
  if (texts.empty()) return;
  const std::size_t chunks = core::chunk_count(texts.size());
  if (chunks == 1) {
    WordPieceScratch s;
    for (const auto& t : texts) count_words(t, options_, s, counts_->words);
    return;
  }
  std::vector<WordTable> tables(chunks);
  core::parallel_chunks(texts.size(), [&](std::size_t begin, std::size_t end, std::size_t c) {
    WordPieceScratch s;
    for (std::size_t i = begin; i < end; ++i) count_words(texts[i], options_, s, tables[c]);
  });
  for (const auto& t : tables) counts_->words.add_all(t);
}

std::int64_t WordPieceTrainer::words() const { return static_cast<std::int64_t>(counts_->words.total()); }
std::int64_t WordPieceTrainer::distinct_words() const { return static_cast<std::int64_t>(counts_->words.size()); }

WordPieceTrainerResult WordPieceTrainer::train() const {
  const WordTable& table = counts_->words;
  const WordPieceTrainerOptions& o = options_;
  WordPieceTrainerResult result;
  result.words = words();
  result.distinct_words = distinct_words();
  if (table.size() == 0) {
    throw DataError("no words to learn a vocabulary from: the texts are empty or only whitespace and control "
                    "characters; check the input file and its text column");
  }

  // 1. Special tokens.
  Vocabulary v;
  for (const auto& t : o.special_tokens) v.add(t);
  result.special_tokens = static_cast<std::int64_t>(v.tokens.size());

  // 2. The alphabet: characters by total count; limit_alphabet keeps the most frequent.
  std::unordered_map<char32_t, std::uint64_t> char_counts;
  for (std::size_t w = 0; w < table.size(); ++w) {
    const std::string_view word = table.word(w);
    for (std::size_t i = 0; i < word.size();) char_counts[core::decode_utf8(word, i)] += table.count(w);
  }
  std::vector<std::pair<char32_t, std::uint64_t>> alphabet(char_counts.begin(), char_counts.end());
  if (o.limit_alphabet && alphabet.size() > static_cast<std::size_t>(*o.limit_alphabet)) {
    // HF sorts by count only (unstable, so its ties fall randomly); Kiln keeps lower code points.
    std::sort(alphabet.begin(), alphabet.end(), [](const auto& x, const auto& y) {
      return x.second != y.second ? x.second > y.second : x.first < y.first;
    });
    result.dropped_characters = static_cast<std::int64_t>(alphabet.size()) - *o.limit_alphabet;
    alphabet.resize(static_cast<std::size_t>(*o.limit_alphabet));
  }
  std::sort(alphabet.begin(), alphabet.end());
  for (const auto& [cp, n] : alphabet) v.add(utf8_of(cp));
  result.alphabet = static_cast<std::int64_t>(v.tokens.size()) - result.special_tokens;

  // 3. Continuation pieces "##c" for the characters seen after a word's first one.
  std::unordered_map<char32_t, std::uint32_t> first_id, next_id;
  auto allowed = [&](char32_t cp) -> bool {
    auto it = first_id.find(cp);
    if (it != first_id.end()) return true;
    const std::string s = utf8_of(cp);
    auto found = v.ids.find(s);  // an alphabet character (or a special token of one character, as HF)
    if (found == v.ids.end()) return false;
    first_id.emplace(cp, found->second);
    return true;
  };
  std::vector<char32_t> continued;
  {
    std::unordered_map<char32_t, bool> seen;
    for (std::size_t w = 0; w < table.size(); ++w) {
      const std::string_view word = table.word(w);
      std::size_t i = 0;
      (void)core::decode_utf8(word, i);
      while (i < word.size()) {
        const char32_t cp = core::decode_utf8(word, i);
        if (seen.try_emplace(cp, true).second && allowed(cp)) continued.push_back(cp);
      }
    }
  }
  std::sort(continued.begin(), continued.end());
  std::vector<char32_t> order;
  {
    std::unordered_map<char32_t, bool> placed;
    std::unordered_map<char32_t, bool> present;
    for (const char32_t cp : continued) present[cp] = true;
    for (const auto& c : o.continuation_order) {
      std::size_t i = 0;
      const char32_t cp = core::decode_utf8(c, i);
      if (present.count(cp) && placed.try_emplace(cp, true).second) order.push_back(cp);
    }
    for (const char32_t cp : continued)
      if (!placed.count(cp)) order.push_back(cp);
  }
  const std::size_t before_continuations = v.tokens.size();
  for (const char32_t cp : order) next_id[cp] = v.add(o.continuing_subword_prefix + utf8_of(cp));
  result.continuations = static_cast<std::int64_t>(v.tokens.size() - before_continuations);

  const auto needed = static_cast<std::int64_t>(v.tokens.size());
  if (needed > o.vocab_size) {
    throw DataError("vocab_size " + number(o.vocab_size) + " is smaller than the " + number(needed) +
                    " tokens every vocabulary of this corpus starts with (" + number(result.special_tokens) +
                    " special tokens, " + number(result.alphabet) + " alphabet characters, " +
                    number(result.continuations) + " \"" + o.continuing_subword_prefix +
                    "\" pieces); ask for at least " + number(needed) +
                    " tokens, or limit the alphabet to the most frequent characters (limit_alphabet)");
  }

  // 4. Words as pieces; words of one piece never take part in a merge.
  Words ws;
  for (std::size_t w = 0; w < table.size(); ++w) {
    const std::string_view word = table.word(w);
    const std::size_t start = ws.pieces.size();
    bool first = true;
    for (std::size_t i = 0; i < word.size(); first = false) {
      const char32_t cp = core::decode_utf8(word, i);
      if (!allowed(cp)) continue;  // dropped by limit_alphabet; the next one still continues the word
      ws.pieces.push_back(first ? first_id.at(cp) : next_id.at(cp));
    }
    const std::size_t n = ws.pieces.size() - start;
    if (n < 2) {
      ws.pieces.resize(start);
      continue;
    }
    ws.start.push_back(start);
    ws.length.push_back(static_cast<std::uint32_t>(n));
    ws.count.push_back(table.count(w));
  }

  // 5. Pair counts and the queue.
  PairCounts counts;
  std::vector<Candidate> queue;
  {
    std::unordered_map<Pair, std::size_t> at;
    for (std::uint32_t w = 0; w < ws.start.size(); ++w) {
      const std::uint32_t* p = ws.pieces.data() + ws.start[w];
      for (std::uint32_t i = 0; i + 1 < ws.length[w]; ++i) {
        const Pair pair = make_pair_key(p[i], p[i + 1]);
        counts[pair] += static_cast<std::int64_t>(ws.count[w]);
        auto [it, fresh] = at.try_emplace(pair, queue.size());
        if (fresh) queue.push_back({0, pair, {}});
        auto& where = queue[it->second].words;
        if (where.empty() || where.back() != w) where.push_back(w);
      }
    }
    for (auto& c : queue) c.count = static_cast<std::uint64_t>(counts.get(c.pair));
    std::make_heap(queue.begin(), queue.end(), below);
  }

  // 6. Merges.
  const auto vocab_size = static_cast<std::size_t>(o.vocab_size);
  const auto min_frequency = static_cast<std::uint64_t>(o.min_frequency);
  const std::string& prefix = o.continuing_subword_prefix;
  Changes changes;
  while (v.tokens.size() < vocab_size && !queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), below);
    Candidate top = std::move(queue.back());
    queue.pop_back();
    const auto now = static_cast<std::uint64_t>(counts.get(top.pair));
    if (top.count != now) {  // stale: queue it again with the count it has now
      top.count = now;
      queue.push_back(std::move(top));
      std::push_heap(queue.begin(), queue.end(), below);
      continue;
    }
    if (top.count < 1 || min_frequency > top.count) break;

    const std::uint32_t a = first_of(top.pair), b = second_of(top.pair);
    std::string joined = v.tokens[a];
    const std::string& right = v.tokens[b];
    if (right.compare(0, prefix.size(), prefix) == 0) {
      joined.append(right, prefix.size(), std::string::npos);
    } else {
      joined += right;
    }
    const std::uint32_t merged = v.add(joined);
    ++result.merges;

    changes.clear();
    merge_words(ws, top.words, a, b, merged, changes, counts);
    for (auto& [pair, where] : changes.appeared()) {
      const std::int64_t c = counts.get(pair);
      if (c > 0) {
        queue.push_back({static_cast<std::uint64_t>(c), pair, std::move(where)});
        std::push_heap(queue.begin(), queue.end(), below);
      }
    }
  }
  result.tokens = std::move(v.tokens);
  return result;
}

WordPieceTrainerResult train_wordpiece(const std::vector<std::string>& texts, const WordPieceTrainerOptions& options) {
  WordPieceTrainer trainer(options);
  trainer.feed(texts);
  return trainer.train();
}

std::string wordpiece_vocab_text(const std::vector<std::string>& tokens) {
  std::size_t n = 0;
  for (const auto& t : tokens) n += t.size() + 1;
  std::string out;
  out.reserve(n);
  for (const auto& t : tokens) {
    out += t;
    out += '\n';
  }
  return out;
}

}  // namespace kiln::text
