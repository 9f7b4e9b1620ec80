#include "kiln/text/wordpiece_trainer.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/text/wordpiece.h"

namespace kiln::text {
namespace {

using Tokens = std::vector<std::string>;
const Tokens kSpecials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

Tokens with_specials(const Tokens& rest) {
  Tokens t = kSpecials;
  t.insert(t.end(), rest.begin(), rest.end());
  return t;
}

std::string thrown(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

// The corpus "Hug hug pug" + "hugs", derived by hand (ids after the 5 special tokens):
//   words: hug x2, pug x1, hugs x1 (lowercased)
//   alphabet by code point: g(5) h(6) p(7) s(8) u(9); pieces seen after a first character, by
//   code point: ##g(10) ##s(11) ##u(12)
//   hug = 6 12 10, pug = 7 12 10, hugs = 6 12 10 11
//   pair counts: (h,##u) 3, (##u,##g) 4, (p,##u) 1, (##g,##s) 1
//   merge 1: (##u,##g) 4 -> ##ug(13); now (h,##ug) 3, (p,##ug) 1, (##ug,##s) 1
//   merge 2: (h,##ug) 3 -> hug(14); now (hug,##s) 1
//   merge 3: count 1 ties (p,##ug) = (7,13) and (hug,##s) = (14,11): the lower pair first -> pug(15)
//   merge 4: (hug,##s) -> hugs(16); no pair is left.
const std::vector<std::string> kHugs = {"Hug hug pug", "hugs"};

TEST(WordPieceTrainer, HandDerivedVocabulary) {
  const auto r = train_wordpiece(kHugs);
  EXPECT_EQ(r.tokens, with_specials({"g", "h", "p", "s", "u", "##g", "##s", "##u", "##ug", "hug", "pug", "hugs"}));
  EXPECT_EQ(r.special_tokens, 5);
  EXPECT_EQ(r.alphabet, 5);
  EXPECT_EQ(r.continuations, 3);
  EXPECT_EQ(r.merges, 4);
  EXPECT_EQ(r.words, 4);
  EXPECT_EQ(r.distinct_words, 3);
}

TEST(WordPieceTrainer, StopsAtVocabSize) {
  WordPieceTrainerOptions o;
  o.vocab_size = 15;
  EXPECT_EQ(train_wordpiece(kHugs, o).tokens,
            with_specials({"g", "h", "p", "s", "u", "##g", "##s", "##u", "##ug", "hug"}));
}

TEST(WordPieceTrainer, MinFrequencyStopsAtRarePairs) {
  WordPieceTrainerOptions o;
  o.min_frequency = 2;  // merges 3 and 4 count 1
  EXPECT_EQ(train_wordpiece(kHugs, o).tokens,
            with_specials({"g", "h", "p", "s", "u", "##g", "##s", "##u", "##ug", "hug"}));
  o.min_frequency = 4;  // only merge 1
  EXPECT_EQ(train_wordpiece(kHugs, o).tokens, with_specials({"g", "h", "p", "s", "u", "##g", "##s", "##u", "##ug"}));
}

TEST(WordPieceTrainer, LimitAlphabetKeepsFrequentCharacters) {
  // Character counts: g 4, u 4, h 3, p 1, s 1. Keeping 4 drops one of the two of count 1: the
  // higher code point (s). "hugs" becomes "hug".
  WordPieceTrainerOptions o;
  o.limit_alphabet = 4;
  auto r = train_wordpiece(kHugs, o);
  EXPECT_EQ(r.tokens, with_specials({"g", "h", "p", "u", "##g", "##u", "##ug", "hug", "pug"}));
  EXPECT_EQ(r.dropped_characters, 1);
  // Keeping 3 drops p too: "pug" starts with a dropped character, so its next one is a
  // continuation ("##u ##g", as HF does); (##u,##g) counts 4, then (h,##ug) 3.
  o.limit_alphabet = 3;
  r = train_wordpiece(kHugs, o);
  EXPECT_EQ(r.tokens, with_specials({"g", "h", "u", "##g", "##u", "##ug", "hug"}));
}

TEST(WordPieceTrainer, ContinuationOrderRenumbersPiecesAndTies) {
  WordPieceTrainerOptions o;
  o.continuation_order = {"u", "s", "x"};  // x does not occur: ignored; g follows by code point
  // Ids: ##u 10, ##s 11, ##g 12. The tie at merge 3 is now (p,##ug) = (7,13) vs (hug,##s) =
  // (14,11): still pug first.
  EXPECT_EQ(train_wordpiece(kHugs, o).tokens,
            with_specials({"g", "h", "p", "s", "u", "##u", "##s", "##g", "##ug", "hug", "pug", "hugs"}));
}

TEST(WordPieceTrainer, TiesGoToTheLowerPair) {
  // "ab" and "cd" once each: (a,##b) = (5,9) and (c,##d) = (7,10) tie; a's pair first.
  EXPECT_EQ(train_wordpiece({"cd ab"}).tokens,
            with_specials({"a", "b", "c", "d", "##b", "##d", "ab", "cd"}));
}

TEST(WordPieceTrainer, RepeatedPairsMergeLeftToRight) {
  // "aaa" x1: a ##a ##a; (a,##a) 1, (##a,##a) 1: (a,##a) = (5,6) first -> aa(7); the word is
  // aa ##a: (aa,##a) -> aaa(8).
  EXPECT_EQ(train_wordpiece({"aaa"}).tokens, with_specials({"a", "##a", "aa", "aaa"}));
}

TEST(WordPieceTrainer, SpecialTokensInTextAreOrdinaryText) {
  // As in HF's trainer: [MASK] is split by the pre-tokenizer into "[", "mask", "]".
  WordPieceTrainerOptions o;
  o.vocab_size = 5 + 6 + 3;  // specials, alphabet [ ] a k m s, ##a ##k ##s
  const auto r = train_wordpiece({"[MASK]"}, o);
  EXPECT_EQ(r.tokens, with_specials({"[", "]", "a", "k", "m", "s", "##a", "##k", "##s"}));
}

TEST(WordPieceTrainer, CasedKeepsCaseAndAccents) {
  WordPieceTrainerOptions o;
  o.lowercase = false;
  EXPECT_EQ(train_wordpiece({"Éa"}, o).tokens, with_specials({"a", "\xC3\x89", "##a", "\xC3\x89" "a"}));
  o.lowercase = true;  // strip_accents follows: é -> e
  EXPECT_EQ(train_wordpiece({"Éa"}, o).tokens, with_specials({"a", "e", "##a", "ea"}));
}

TEST(WordPieceTrainer, FeedInBatchesEqualsOneCall) {
  std::vector<std::string> texts;
  for (int i = 0; i < 3000; ++i) texts.push_back("w" + std::to_string(i * 7919 % 1000) + " the cat, sat");
  WordPieceTrainerOptions o;
  o.vocab_size = 200;
  WordPieceTrainer t(o);
  t.feed(std::vector<std::string>(texts.begin(), texts.begin() + 1000));
  t.feed(std::vector<std::string>(texts.begin() + 1000, texts.end()));
  EXPECT_EQ(t.words(), 3000 * 5);
  const auto r = t.train();
  EXPECT_EQ(r.tokens, train_wordpiece(texts, o).tokens);
  WordPieceTrainer one(o);
  for (const auto& s : texts) one.feed(std::string_view(s));
  EXPECT_EQ(one.train().tokens, r.tokens);
  EXPECT_EQ(r.tokens.size(), 200U);
}

TEST(WordPieceTrainer, ThreadsDoNotChangeTheResult) {
  // 20,000 distinct words sharing pairs: merge steps over >= 4096 words run on several threads.
  std::vector<std::string> texts;
  for (int i = 0; i < 20000; ++i) {
    std::string w = "qu";
    for (int k = i; k > 0; k /= 26) w += static_cast<char>('a' + k % 26);
    texts.push_back(w + " " + w + "ing");
  }
  WordPieceTrainerOptions o;
  o.vocab_size = 400;
  const int before = core::threads();
  core::set_threads(1);
  const auto one = train_wordpiece(texts, o);
  core::set_threads(4);
  const auto four = train_wordpiece(texts, o);
  core::set_threads(before);
  EXPECT_EQ(one.tokens, four.tokens);
  EXPECT_EQ(one.tokens.size(), 400U);
  EXPECT_EQ(one.tokens[5 + 26 + 26], "qu");  // the first merge: (q,##u) is in all 40,000 words
}

TEST(WordPieceTrainer, VocabularyLoadsAndTokenizes) {
  const auto r = train_wordpiece(kHugs);
  const auto vocab = std::make_shared<const WordPieceVocab>(WordPieceVocab::parse(wordpiece_vocab_text(r.tokens), "t"));
  EXPECT_EQ(vocab->size(), static_cast<std::int64_t>(r.tokens.size()));
  const WordPieceTokenizer tok(vocab, {});
  const auto e = tok.encode("hugs pugs");
  std::vector<std::string> got;
  for (auto id : e.ids) got.emplace_back(vocab->token(id));
  EXPECT_EQ(got, (Tokens{"[CLS]", "hugs", "pug", "##s", "[SEP]"}));
}

TEST(WordPieceTrainer, EmptyCorpusIsAnError) {
  EXPECT_EQ(thrown([] { (void)train_wordpiece({"", " \t", "\x01"}); }),
            "no words to learn a vocabulary from: the texts are empty or only whitespace and control "
            "characters; check the input file and its text column");
}

TEST(WordPieceTrainer, VocabSizeBelowTheInitialTokensIsAnError) {
  WordPieceTrainerOptions o;
  o.vocab_size = 12;
  EXPECT_EQ(thrown([&] { (void)train_wordpiece(kHugs, o); }),
            "vocab_size 12 is smaller than the 13 tokens every vocabulary of this corpus starts with (5 special "
            "tokens, 5 alphabet characters, 3 \"##\" pieces); ask for at least 13 tokens, or limit the alphabet to "
            "the most frequent characters (limit_alphabet)");
  o.vocab_size = 13;  // exactly the initial tokens: no merge
  EXPECT_EQ(train_wordpiece(kHugs, o).tokens.size(), 13U);
}

TEST(WordPieceTrainer, OptionsAreValidated) {
  auto bad = [](const std::function<void(WordPieceTrainerOptions&)>& set) {
    WordPieceTrainerOptions o;
    set(o);
    return thrown([&] { WordPieceTrainer t(o); });
  };
  EXPECT_EQ(bad([](auto& o) { o.vocab_size = 0; }),
            "vocab_size must be in [1, 2^31 - 2], got 0; BERT vocabularies hold 8,000 to 30,000 tokens");
  EXPECT_EQ(bad([](auto& o) { o.min_frequency = -1; }),
            "min_frequency must be >= 0 (0 = merge every pair that occurs), got -1");
  EXPECT_EQ(bad([](auto& o) { o.limit_alphabet = -2; }),
            "limit_alphabet must be >= 0 (or unset for no limit), got -2");
  EXPECT_EQ(bad([](auto& o) { o.continuing_subword_prefix = ""; }),
            "continuing_subword_prefix must not be empty; BERT's is \"##\"");
  EXPECT_EQ(bad([](auto& o) { o.special_tokens = {"[A B]"}; }),
            "special_tokens: '[A B]' cannot be a line of vocab.txt (empty or with whitespace); use tokens like [PAD]");
  EXPECT_EQ(bad([](auto& o) { o.continuation_order = {"ab"}; }),
            "continuation_order: 'ab' is not one character (one UTF-8 code point)");
}

}  // namespace
}  // namespace kiln::text
