// Trains a BERT WordPiece vocabulary the way Hugging Face tokenizers' WordPieceTrainer does (the
// Rust library, as npm tokenizers@0.23.2 runs it): word counts after BertNormalizer +
// BertPreTokenizer (Kiln's, identical to HF's), then HF's BPE merge learner with the "##"
// continuation prefix:
//   1. the special tokens, in the order given;
//   2. the alphabet: every character of the words, by code point (with limit_alphabet, only the
//      most frequent ones: characters of equal count keep the lower code points);
//   3. "##c" for each alphabet character c that occurs after a word's first character;
//   4. merges: repeatedly the pair of adjacent pieces with the highest count (count = sum of the
//      counts of the words it occurs in; ties: the pair of lower ids, first piece first), joined
//      ("ab" + "##cd" = "abcd"), until vocab_size tokens or no pair counts min_frequency.
// The vocabulary lists them in that order (the line number is the id, as in BERT's vocab.txt).
//
// Known difference: HF numbers the "##c" pieces in its hash map's iteration order, which changes
// from run to run, and pieces' ids break ties between pairs of equal count, so two HF runs on the
// same corpus differ in a few of the last merges (on Brown at 30,000: 47 tokens). Kiln numbers them
// by code point (or by `continuation_order`), so its result is deterministic; given the order an
// HF run used, it reproduces that run token for token (tests/cli/vocab_golden_test.sh).
//
// Typical use (a corpus streamed in batches):
//   kiln::text::WordPieceTrainerOptions options;
//   options.vocab_size = 8000;
//   kiln::text::WordPieceTrainer trainer(options);
//   while (read_batch(texts)) trainer.feed(texts);
//   std::vector<std::string> tokens = trainer.train().tokens;       // id = index
//   WordPieceVocab vocab = WordPieceVocab::parse(wordpiece_vocab_text(tokens), "trained");
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::text {

struct WordPieceTrainerOptions {
  /// Tokens in the vocabulary, special tokens included. Training stops when it is reached. Must be
  /// >= the special tokens + the alphabet + the "##" pieces the corpus needs (train() says how
  /// many); HF would silently return more tokens than asked then. Default 30000 (HF's).
  std::int64_t vocab_size = 30000;
  /// A pair is merged only if it counts at least this many occurrences. Default 0 (HF's: every
  /// pair that occurs).
  std::int64_t min_frequency = 0;
  /// Keep at most this many alphabet characters (the most frequent); words lose the others.
  /// Default: no limit (the trainer's, and what npm tokenizers' train() uses). HF's Python
  /// BertWordPieceTokenizer.train() passes 1000 (and min_frequency 2): set it when training on
  /// texts you do not control, so that rare characters cannot fill (or overflow) vocab_size.
  std::optional<std::int64_t> limit_alphabet;
  /// Listed first, in this order (duplicates kept once). Default BERT's. The vocabulary must hold
  /// [PAD], [UNK], [CLS] and [SEP] for WordPieceVocab::parse (kiln tokenize) to load it.
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  /// Marks a piece that continues a word. Default "##" (BERT's). Must not be empty.
  std::string continuing_subword_prefix = "##";
  /// BertNormalizer's lowercase. Default true (uncased, bert-base-uncased).
  bool lowercase = true;
  /// BertNormalizer's strip_accents. Default: follows `lowercase`, as in HF.
  std::optional<bool> strip_accents;
  /// Order of the single-character continuation pieces ("##c"), as characters (UTF-8, one code
  /// point each); those not listed follow by code point. Default empty: by code point. Pass the
  /// order of an HF run's "##c" tokens to reproduce that run exactly.
  std::vector<std::string> continuation_order;

  /// Throws ConfigError naming `prefix` + field, the value and the fix.
  void validate(const std::string& prefix = "") const;
};

/// A trained vocabulary and how it was made.
struct WordPieceTrainerResult {
  std::vector<std::string> tokens;    ///< the vocabulary; id = index
  std::int64_t special_tokens = 0;    ///< tokens [0, special_tokens) are the special tokens
  std::int64_t alphabet = 0;          ///< then this many single characters
  std::int64_t continuations = 0;     ///< then this many "##c" pieces
  std::int64_t merges = 0;            ///< merge steps (a step may make a token that exists)
  std::int64_t words = 0;             ///< words counted (with repeats)
  std::int64_t distinct_words = 0;    ///< distinct words
  std::int64_t dropped_characters = 0;  ///< alphabet characters limit_alphabet removed
};

/// Counts words, then learns a vocabulary from them. feed() is not thread-safe (call it from one
/// thread), but splits each batch of texts across core::threads(); train() is const.
class WordPieceTrainer {
 public:
  /// Throws ConfigError when `options` are invalid.
  explicit WordPieceTrainer(WordPieceTrainerOptions options = {});
  ~WordPieceTrainer();
  WordPieceTrainer(WordPieceTrainer&&) noexcept;
  WordPieceTrainer& operator=(WordPieceTrainer&&) noexcept;

  /// Adds the words of each text (one text = one line of HF's train(files)). Special tokens
  /// written in a text are ordinary text here, as in HF's trainer. Invalid UTF-8 counts as U+FFFD,
  /// which the normalizer removes.
  void feed(const std::vector<std::string>& texts);
  void feed(std::string_view text);

  /// Words counted so far (with repeats) and distinct.
  [[nodiscard]] std::int64_t words() const;
  [[nodiscard]] std::int64_t distinct_words() const;

  /// Learns the vocabulary from the words fed so far. Throws DataError when no word was fed, or
  /// when vocab_size is smaller than the special tokens + alphabet + "##" pieces (naming both
  /// numbers and the fix).
  [[nodiscard]] WordPieceTrainerResult train() const;

  [[nodiscard]] const WordPieceTrainerOptions& options() const { return options_; }

 private:
  struct Counts;
  WordPieceTrainerOptions options_;
  std::unique_ptr<Counts> counts_;
};

/// One call: feeds `texts` and trains.
[[nodiscard]] WordPieceTrainerResult train_wordpiece(const std::vector<std::string>& texts,
                                                     const WordPieceTrainerOptions& options = {});

/// vocab.txt contents: one token a line (WordPieceVocab::parse reads it back with the same ids).
[[nodiscard]] std::string wordpiece_vocab_text(const std::vector<std::string>& tokens);

}  // namespace kiln::text
