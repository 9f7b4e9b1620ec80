// BERT's WordPiece tokenizer, identical to Hugging Face tokenizers (the Rust library) configured as
// bert-base-uncased's tokenizer.json is: BertNormalizer, BertPreTokenizer, WordPiece ("##"
// continuations, 100 characters per word at most), the "[CLS] A [SEP] (B [SEP])" template with
// token type ids, longest_first truncation and right padding. Special tokens written in the text
// ([CLS], [SEP], [PAD], [MASK], [UNK]) are split out before normalization, as HF's added tokens
// are. Character tables come from probing HF itself (tests/golden/make_wordpiece_tables.js).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::text {

/// A WordPiece vocabulary: token strings by id, as in BERT's vocab.txt (one token a line, the line
/// number is the id, "##" marks a continuation piece). Immutable; thread-safe.
class WordPieceVocab {
 public:
  /// Parses vocab.txt contents as HF's WordPiece::read_file does (trailing whitespace trimmed; a
  /// token listed twice keeps its last id). `name` (a path) is used in messages. Throws DataError
  /// when the vocabulary is empty or lacks [UNK], [CLS], [SEP] or [PAD], naming `name` and the fix.
  static WordPieceVocab parse(std::string_view contents, const std::string& name);

  [[nodiscard]] std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }
  /// The token of `id` ("" when out of range).
  [[nodiscard]] std::string_view token(std::int64_t id) const;
  /// The id of `token`, or -1.
  [[nodiscard]] std::int32_t find(std::string_view token) const;
  /// The id of a continuation piece: find("##" + piece), or -1.
  [[nodiscard]] std::int32_t find_continuation(std::string_view piece) const;
  /// vocab.txt contents (one token a line); parse(to_text()) gives the same vocabulary.
  [[nodiscard]] std::string to_text() const;

  [[nodiscard]] std::int32_t unk_id() const { return unk_; }
  [[nodiscard]] std::int32_t cls_id() const { return cls_; }
  [[nodiscard]] std::int32_t sep_id() const { return sep_; }
  [[nodiscard]] std::int32_t pad_id() const { return pad_; }
  /// [PAD], [UNK], [CLS], [SEP], [MASK] (those the vocabulary has) with their ids: the tokens
  /// recognised when written in the text.
  [[nodiscard]] const std::vector<std::pair<std::string, std::int32_t>>& special_tokens() const { return specials_; }

 private:
  struct Table {
    std::vector<std::uint64_t> slots;  ///< (hash high 32 bits << 32) | (id + 1); 0 = empty
    std::uint64_t mask = 0;
  };
  void insert(Table& t, std::string_view key, std::int32_t id);
  [[nodiscard]] std::int32_t lookup(const Table& t, std::string_view key, std::size_t skip) const;

  std::vector<std::string> tokens_;
  Table words_;          ///< every token
  Table continuations_;  ///< tokens starting with "##", keyed without it
  std::int32_t unk_ = -1, cls_ = -1, sep_ = -1, pad_ = -1;
  std::vector<std::pair<std::string, std::int32_t>> specials_;
};

struct WordPieceOptions {
  /// Lowercase (Rust's char::to_lowercase, one code point at a time). Default true (uncased).
  bool lowercase = true;
  /// Strip accents (NFD, then drop nonspacing marks). Default: follows `lowercase`, as in HF.
  std::optional<bool> strip_accents;
  /// Longest sequence, special tokens included; longer ones are truncated (longest_first for
  /// pairs). 0 = no truncation. Default 0. Must be 0 or >= 3.
  std::int64_t max_length = 0;
  /// Pad every encoding to max_length with [PAD] (needs max_length > 0). Default false.
  bool pad_to_max_length = false;
  /// A word longer than this many code points becomes one [UNK]. Default 100 (HF's).
  std::int64_t max_input_chars_per_word = 100;

  /// Throws ConfigError naming `prefix` + field, the value and the fix.
  void validate(const std::string& prefix = "") const;
};

/// One encoded text (or pair). Offsets are [start, end) in code points of the original text the
/// token came from (A or B); [0, 0] for [CLS], [SEP] and padding.
struct WordPieceEncoding {
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> type_ids;
  std::vector<std::int32_t> attention_mask;
  std::vector<std::array<std::int32_t, 2>> offsets;

  [[nodiscard]] std::size_t size() const { return ids.size(); }
  void clear();
};

/// Per-thread buffers of WordPieceTokenizer::encode; reusing one makes encoding allocation-free
/// once the buffers have grown to the longest text.
struct WordPieceScratch {
  struct Token {
    std::int32_t id, start, end;
  };
  std::string normalized;                ///< normalized text of the current segment (UTF-8)
  std::vector<std::uint32_t> char_bytes; ///< byte offset in `normalized` where each character ends
  std::vector<std::int32_t> char_origin; ///< original code point index of each character
  std::vector<std::uint32_t> word_ends;  ///< character index where each word of the segment ends
  std::vector<Token> a, b;               ///< tokens of the first and second text
};

/// [start, stop) of each window over `n` content tokens (the tokens between [CLS] and [SEP]):
/// windows of `width` tokens starting at 0, width - stride, 2 (width - stride), ... until one
/// reaches the last token (the last may be shorter; n = 0 gives one empty window), as the Rust core
/// of Hugging Face tokenizers cuts overflowing tokens (Encoding::truncate with a stride).
/// Requires stride < width.
[[nodiscard]] std::vector<std::pair<std::size_t, std::size_t>> window_ranges(std::size_t n, std::size_t width,
                                                                            std::size_t stride);

/// Thread-safe: encode() is const; give each thread its own scratch.
class WordPieceTokenizer {
 public:
  /// Throws ConfigError when `options` are invalid.
  WordPieceTokenizer(std::shared_ptr<const WordPieceVocab> vocab, WordPieceOptions options);

  /// Encodes `a` (and `b` when given) into `out` (cleared first). Invalid UTF-8 bytes count as
  /// U+FFFD (which clean_text removes).
  void encode(std::string_view a, const std::string_view* b, WordPieceEncoding& out, WordPieceScratch& scratch) const;
  [[nodiscard]] WordPieceEncoding encode(std::string_view a, const std::string_view* b = nullptr) const;

  [[nodiscard]] const WordPieceVocab& vocab() const { return *vocab_; }
  [[nodiscard]] const std::shared_ptr<const WordPieceVocab>& vocab_ptr() const { return vocab_; }
  [[nodiscard]] const WordPieceOptions& options() const { return options_; }

 private:
  // Appends the tokens of `text` (special tokens, then normalized words) to `out`.
  void tokenize(std::string_view text, std::vector<WordPieceScratch::Token>& out, WordPieceScratch& s) const;
  void tokenize_segment(std::string_view text, std::int32_t cp_base, std::vector<WordPieceScratch::Token>& out,
                        WordPieceScratch& s) const;
  void word_pieces(WordPieceScratch& s, std::uint32_t first, std::uint32_t last,
                   std::vector<WordPieceScratch::Token>& out) const;

  std::shared_ptr<const WordPieceVocab> vocab_;
  WordPieceOptions options_;
  bool strip_accents_ = true;
};

}  // namespace kiln::text
