// The words Hugging Face's BertNormalizer + BertPreTokenizer make of a text, shared by the
// WordPiece tokenizer (wordpiece.cpp) and the vocabulary trainer (wordpiece_trainer.cpp).
#pragma once

#include <cstdint>
#include <string_view>

#include "kiln/text/wordpiece.h"

namespace kiln::text {

/// Normalizes `text` (clean_text, CJK padding, strip_accents when `strip_accents`, lowercase when
/// `lowercase`) and splits it as BertPreTokenizer does, into `s`: s.normalized holds the words'
/// UTF-8 back to back, s.char_bytes[i] the byte where normalized character i ends, s.char_origin[i]
/// its code point index in `text` plus `cp_base`, and s.word_ends[k] the character index where word
/// k ends (word k starts where word k - 1 ends). Special tokens written in the text are not split
/// out here (the tokenizer does that first; HF's trainer does not). Invalid UTF-8 counts as U+FFFD,
/// which clean_text removes. Thread-safe with one scratch per thread.
void bert_words(std::string_view text, bool lowercase, bool strip_accents, std::int32_t cp_base,
                WordPieceScratch& s);

}  // namespace kiln::text
